//! Mistakes found by an audit of `rampart check`: each is reported at its place, none hides
//! another of the same round, and nothing that is not a mistake is reported.

mod common;
use common::*;

const LISTENER: &str = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\n";

/// A key error, a type error and an unknown `server:` key are listed together; plain numbers
/// where text is expected (an id `7`, a body `404`) are not errors, even beside real ones.
#[test]
fn key_and_type_errors_come_together_and_plain_scalars_are_text() {
    let yaml = format!(
        "instance_name: 123\nserver:\n  thread: 2\n{LISTENER}pools:\n  app: {{ backends: [127.0.0.1:3000], retries: many }}\nprojects:\n  - name: shop\n    hosts: [a.test]\n    pool: app\n    rules:\n      - {{ id: 7, respond: {{ status: 200, body: 404 }} }}\n"
    );
    let c = assert_check_errors(
        &yaml,
        &[
            (
                3,
                3,
                "server.thread",
                "unknown key: not a Pingora server setting",
            ),
            (7, 47, "pools.app.retries", "expected a whole number"),
        ],
    );
    assert!(c.stderr.contains(": 2 error(s)"), "{}", c.stderr);
    let fixed = yaml.replace("  thread: 2\n", "").replace("many", "1");
    let c = rampart_check(&fixed);
    assert_eq!(c.code, 0, "{}", c.stderr);
}

/// Past 16 errors in one entry, the first 16 are listed in file order and a line says more
/// are left (they were dropped from the middle, silently).
#[test]
fn an_entry_with_many_errors_lists_the_first_and_says_so() {
    let keys: String = (1..=20).map(|i| format!("    bad{i}: 1\n")).collect();
    let yaml = format!("{LISTENER}pools:\n  app:\n    backends: [127.0.0.1:3000]\n{keys}projects:\n  - {{ name: s, hosts: [a.test], pool: app }}\n");
    let mut expected: Vec<(usize, usize, String, &str)> = (1..=16)
        .map(|i| (5 + i, 5, format!("pools.app.bad{i}"), "unknown field"))
        .collect();
    expected.push((
        4,
        3,
        "pools.app".into(),
        "more errors in this entry than the 16 listed",
    ));
    let expected: Vec<_> = expected
        .iter()
        .map(|(l, c, k, m)| (*l, *c, k.as_str(), *m))
        .collect();
    let c = assert_check_errors(&yaml, &expected);
    assert!(!c.stderr.contains("bad17"), "{}", c.stderr);
}

/// Rule errors, pools rules route to and every mistake of a CSV file (a repeated source
/// among them) are listed in one run.
#[test]
fn rule_errors_of_every_kind_come_together() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/r.csv"),
        "/d,/e,200\n\"/unterminated,/x\n/a,/b\n/a,/dup\n/q?x=1,/r\n",
    )
    .unwrap();
    let yaml = format!(
        "{LISTENER}pools:\n  app: {{ backends: [127.0.0.1:3000] }}\nprojects:\n  - name: shop\n    hosts: [a.test]\n    pool: app\n    rules_files: [rules/*.csv]\n    rules:\n      - {{ id: r1, pool: nope }}\n      - {{ id: r2, respond: {{ status: 204, body: x }} }}\n      - {{ id: r3, match: {{ path_regex: \"^/(a\" }} }}\n"
    );
    let c = rampart_with_config(dir, &yaml, &["check"], &[]);
    assert_eq!(c.code, 1, "{}", c.stderr);
    let csv = c.path.replace("rampart.yaml", "rules/r.csv");
    for line in [
        format!("{}:11:19: projects[0].rules[0].pool: a rule routes to pool `nope`, which is not defined", c.path),
        format!("{}:12:43: projects[0].rules[1].respond.body: a 204 response has no body", c.path),
        format!("{}:13:28: projects[0].rules[2].match.path_regex: invalid regular expression (Rust regex syntax, no look-around): unclosed group: `(` at character 3 of `^/(a`", c.path),
        format!("{csv}:1:1: redirect.status: 200 is not a redirect status"),
        format!("{csv}:2:1: a quoted field is not closed: a `\"` is missing"),
        format!("{csv}:4:1: source `/a` is already redirected on line 3"),
        format!("{csv}:5:1: match.path: `/q?x=1` must be a bare path"),
    ] {
        assert!(c.stderr.lines().any(|l| l.starts_with(&line)), "`{line}` in:\n{}", c.stderr);
    }
}

/// Settings that pass YAML's types but cannot work: a project on no listener, names listed
/// twice, backends on port 0 or in an ambiguous IPv6 form, server keys Pingora ignores
/// alone or refuses when it runs, an access log that is a directory.
#[test]
fn settings_that_cannot_work_are_refused() {
    let logdir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "server:\n  upstream_connect_offload_threadpools: 2\n  runtime_metrics_poll_time_histogram_buckets: 5000\n  pid_file: run/r.pid\naccess_log: {{ target: {} }}\n{LISTENER}pools:\n  app:\n    backends: [\"127.0.0.1:0\", \"::1:81\", {{ address: \"127.0.0.1:3001\", weight: 2 }}]\nprojects:\n  - {{ name: shop, hosts: [a.test, A.TEST], pool: app, listeners: [http, http] }}\n  - {{ name: blog, hosts: [b.test], pool: app, listeners: [] }}\n",
        logdir.path().display()
    );
    assert_check_errors(
        &yaml,
        &[
            (2, 3, "server.upstream_connect_offload_threadpools", "needs `upstream_connect_offload_thread_per_pool` too"),
            (3, 3, "server.runtime_metrics_poll_time_histogram_buckets", "5000 buckets: must be from 1 to 1024"),
            (4, 3, "server.pid_file", "`run/r.pid` must be an absolute path (systemd and the upgrade find the process by it)"),
            (5, 15, "access_log.target", "is a directory: name the file to write"),
            (10, 16, "pools.app.backends[0]", "`127.0.0.1:0`: port 0 is not a port a backend listens on"),
            (10, 31, "pools.app.backends[1]", "`::1:81`: write an IPv6 backend in brackets"),
            (12, 35, "projects[0].hosts[1]", "`A.TEST` is listed twice"),
            (12, 73, "projects[0].listeners[1]", "listener `http` is listed twice"),
            (13, 47, "projects[1].listeners", "lists no listener, so nothing would reach the project"),
        ],
    );
}

/// Messages that used to mislead: a misspelt key in a backend mapping, a YAML merge key, a
/// whole file that is a list, a tab, an unset variable (now with its key path), a nested
/// variable in a default.
#[test]
fn messages_name_the_real_mistake() {
    let yaml = format!("{LISTENER}pools:\n  app:\n    backends: [127.0.0.1:3000, {{ address: \"127.0.0.1:3001\", wieght: 2 }}]\n    health_check: {{ <<: x, interval: 2s }}\nprojects:\n  - {{ name: s, hosts: [a.test], pool: app }}\n");
    assert_check_errors(
        &yaml,
        &[
            (
                5,
                15,
                "pools.app.backends[1]",
                "unknown field `wieght`, expected `address` or `weight` (did you mean `weight`?",
            ),
            (
                6,
                21,
                "pools.app.health_check.<<",
                "YAML merge keys (`<<: *anchor`) are not supported",
            ),
        ],
    );
    let c = rampart_check("- a\n- b\n");
    assert!(c.stderr.contains(":1:1: invalid type: sequence, expected a mapping of sections (`listeners:`, `pools:`, `projects:`, ...)"), "{}", c.stderr);
    let c = rampart_check("listeners:\n\thttp: 1\n");
    assert!(c.stderr.contains(":2:1: listeners: found character that cannot start any token (YAML indents with spaces, never tabs)"), "{}", c.stderr);
    let yaml = format!("{LISTENER}pools:\n  app: {{ backends: [\"127.0.0.1:${{RAMPART_TEST_UNSET_PORT}}\"] }}\nprojects:\n  - {{ name: s, hosts: [a.test], pool: app, rules: [{{ id: r, respond: {{ status: 200, body: \"${{A:-${{B}}}}\" }} }}] }}\n");
    assert_check_errors(
        &yaml,
        &[
            (
                4,
                32,
                "pools.app.backends[0]",
                "environment variable `RAMPART_TEST_UNSET_PORT` is not set",
            ),
            (
                6,
                92,
                "projects[0].rules[0].respond.body",
                "the default of `${A:-...}` holds another variable",
            ),
        ],
    );
}

/// A `server:` value is read as the file writes it: `pid_file: 123` is the text `123` (not an
/// absolute path), not a reason to drop every server setting silently.
#[test]
fn server_values_are_read_as_the_file_writes_them() {
    let yaml = format!("server:\n  pid_file: 123\n  threads: 3\n{LISTENER}pools:\n  app: {{ backends: [127.0.0.1:3000] }}\nprojects:\n  - {{ name: s, hosts: [a.test], pool: app }}\n");
    assert_check_errors(
        &yaml,
        &[(2, 3, "server.pid_file", "`123` must be an absolute path")],
    );
}
