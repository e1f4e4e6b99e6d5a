//! `rampart check` on bad configurations: each error is printed as
//! `FILE:LINE:COLUMN: key.path: message` with a hint, and the exit code is 1.

mod common;
use common::*;

fn check(yaml: &str) -> CheckOutput {
    rampart_check(yaml)
}

fn assert_error(yaml: &str, line: usize, col: usize, key: &str, message: &str) {
    assert_check_errors(yaml, &[(line, col, key, message)]);
}

/// `prefix`, then [`BASE`] and a project `shop` on `a.test`.
fn shop_after(prefix: &str) -> String {
    format!("{prefix}{BASE}projects:\n  - {{ name: shop, hosts: [a.test], pool: app }}\n")
}

const BASE: &str = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app:\n    backends: [127.0.0.1:3000]\n";

/// A fleet's file stays one screen: `systemctl reload` prints the summary into the journal on
/// every reload. Long lists show their first entries and count the rest; `--all` lists all.
#[test]
fn a_large_config_summary_stays_one_screen_unless_all_is_asked() {
    let mut yaml = String::from("listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n");
    for i in 0..50 {
        yaml += &format!("  p{i}: {{ backends: [\"127.0.0.1:{}\"] }}\n", 3000 + i);
    }
    yaml += "  wide: { backends: [127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3, 127.0.0.1:4, 127.0.0.1:5, 127.0.0.1:6, 127.0.0.1:7] }\n";
    yaml += "projects:\n  - { name: many, hosts: [h1.test, h2.test, h3.test, h4.test, h5.test, h6.test, h7.test, h8.test, h9.test], pool: wide }\n";
    for i in 0..50 {
        yaml += &format!("  - {{ name: s{i}, hosts: [s{i}.test, www.s{i}.test], pool: p{i}, rules: [{{ id: r, match: {{ path: /a }}, redirect: {{ to: /b }} }}] }}\n");
    }
    let c = check(&yaml);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stdout.lines().count() <= 30, "{}", c.stdout);
    assert!(
        c.stdout
            .contains("hosts h1.test,h2.test,h3.test,h4.test,+5 more"),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout.contains(
            "  ... and 41 more projects; 109 hosts and 50 rules in all (`rampart check --all` lists every one)"
        ),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout
            .contains("... and 41 more pools; 57 backends in all"),
        "{}",
        c.stdout
    );
    let all = rampart_with_config(
        tempfile::tempdir().unwrap(),
        &yaml,
        &["check", "--all"],
        &[],
    );
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert!(!all.stdout.contains("more"), "{}", all.stdout);
    for name in ["  s49 ", "  p49 ", "h9.test", "127.0.0.1:7"] {
        assert!(all.stdout.contains(name), "{name}: {}", all.stdout);
    }
}

#[test]
fn valid_config_prints_a_summary() {
    let yaml = format!("{BASE}projects:\n  - name: shop\n    hosts: [shop.example.com, \"*.shop.example.com\"]\n    pool: app\n    rules:\n      - {{ id: r1, match: {{ path: /a }}, redirect: {{ to: /b }} }}\n");
    let c = check(&yaml);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stdout.contains("OK"), "{}", c.stdout);
    assert!(
        c.stdout.contains("shop") && c.stdout.contains("rules 1"),
        "{}",
        c.stdout
    );
    assert!(c.stdout.contains("127.0.0.1:3000"), "{}", c.stdout);
    // Settings in the file's own spelling.
    assert!(
        c.stdout.contains("round_robin  health none") && c.stdout.contains("fail_mode open"),
        "{}",
        c.stdout
    );
    // Limits shown when set, in sizes the file accepts.
    let limited = "listeners:\n  http: { address: \"127.0.0.1:8080\", max_header_size: 16384 }\npools:\n  app: { backends: [127.0.0.1:3000] }\nprojects:\n  - { name: up, hosts: [\"*\"], pool: app, max_body_size: 1500 }\n";
    let l = check(limited);
    assert_eq!(l.code, 0, "{}", l.stderr);
    assert!(
        l.stdout.contains("plain http, max_header_size 16KiB")
            && l.stdout.contains("fail_mode open  max_body_size 1500B"),
        "{}",
        l.stdout
    );
    assert!(
        !c.stdout.contains("max_"),
        "defaults are not shown: {}",
        c.stdout
    );
    // No instance_name: the machine's name, not one name for the whole fleet.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(
        c.stdout.contains(&format!("instance {}", host.trim())),
        "{}",
        c.stdout
    );
}

#[test]
fn shipped_configs_are_valid() {
    for file in ["conf/rampart.yaml", "conf/examples/fleet.yaml"] {
        let out = std::process::Command::new(rampart_bin())
            .args(["check", "-c", file])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env(
                "RAMPART_EXAMPLE_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/conf/examples"),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn server_files_pingora_would_read_at_start() {
    let yaml = format!(
        "server:\n  ca_file: /nonexistent/ca.pem\n  error_log: /nonexistent/dir/error.log\n  max_blocking_threads: 0\n  listener_tasks_per_fd: 0\n  client_bind_to_ipv4: [10.0.0.10, not-an-ip]\n  client_bind_to_ipv6: [\"10.0.0.10\"]\n{BASE}"
    );
    assert_check_errors(
        &yaml,
        &[
            (2, 3, "server.ca_file", "cannot read `/nonexistent/ca.pem`"),
            (
                3,
                3,
                "server.error_log",
                "the directory of `/nonexistent/dir/error.log` does not exist",
            ),
            (4, 3, "server.max_blocking_threads", "at least 1"),
            (5, 3, "server.listener_tasks_per_fd", "at least 1"),
            // Pingora parses them when it starts, and panicked on these.
            (
                6,
                36,
                "server.client_bind_to_ipv4[1]",
                "`not-an-ip` is not an IPv4 address (one of this host's, e.g. 10.0.0.10)",
            ),
            (
                7,
                25,
                "server.client_bind_to_ipv6[0]",
                "`10.0.0.10` is not an IPv6 address",
            ),
        ],
    );
}

#[test]
fn unknown_top_level_key() {
    assert_error(
        &format!("{BASE}projectz: []\n"),
        6,
        1,
        "projectz",
        "unknown field `projectz`",
    );
}

#[test]
fn unknown_nested_key_is_a_typo() {
    let yaml = format!("{BASE}projects:\n  - name: shop\n    hostz: [a.test]\n    pool: app\n");
    assert_check_errors(
        &yaml,
        &[
            (8, 5, "projects[0].hostz", "unknown field `hostz`"),
            (8, 5, "projects[0].hostz", "(did you mean `hosts`?"),
        ],
    );
    let yaml = "listeners:\n  http: { adress: \"127.0.0.1:8080\" }\n";
    // The message starts with what is wrong, not with the parent's path again.
    assert_error(
        yaml,
        2,
        11,
        "listeners.http.adress",
        "adress: unknown field `adress`, expected one of `address`, `tls`, `keepalive_timeout`, `keepalive_requests`, `max_connections`, `header_timeout`, `send_timeout`, `max_header_size`, `h2c`, `proxy_protocol` (did you mean `address`?",
    );
}

#[test]
fn missing_pool_reference() {
    let yaml = format!("{BASE}projects:\n  - name: shop\n    hosts: [a.test]\n    pool: nope\n");
    assert_error(&yaml, 9, 5, "projects[0].pool", "no pool named `nope`");
}

#[test]
fn missing_listener_reference() {
    let yaml = format!("{BASE}projects:\n  - name: shop\n    hosts: [a.test]\n    listeners: [https]\n    pool: app\n");
    assert_error(
        &yaml,
        9,
        17,
        "projects[0].listeners[0]",
        "no listener named `https`",
    );
}

#[test]
fn duplicate_rule_ids() {
    let yaml = format!("{BASE}projects:\n  - name: shop\n    hosts: [a.test]\n    pool: app\n    rules:\n      - {{ id: r1, match: {{ path: /a }} }}\n      - {{ id: r1, match: {{ path: /b }} }}\n");
    assert_error(
        &yaml,
        12,
        11,
        "projects[0].rules[1].id",
        "`r1` is also the id of rule 0",
    );
}

#[test]
fn bad_regex() {
    let yaml = format!("{BASE}projects:\n  - name: shop\n    hosts: [a.test]\n    pool: app\n    rules:\n      - id: r1\n        match:\n          path_regex: '^/p/([0-9+$'\n");
    assert_error(
        &yaml,
        13,
        11,
        "projects[0].rules[0].match.path_regex",
        "invalid regular expression (Rust regex syntax, no look-around): unclosed character class: `[` at character 6 of `^/p/([0-9+$`",
    );
}

#[test]
fn bad_cidr() {
    let yaml = format!("{BASE}projects:\n  - name: shop\n    hosts: [a.test]\n    pool: app\n    rules:\n      - id: r1\n        match:\n          client_ip: [10.0.0.0/8, 300.1.0.0/16]\n");
    assert_error(
        &yaml,
        13,
        35,
        "projects[0].rules[0].match.client_ip[1]",
        "is not an IP address or network",
    );
}

#[test]
fn unreadable_certificate() {
    let yaml = "listeners:\n  https:\n    address: \"127.0.0.1:8443\"\n    tls: { cert: /nonexistent/site.crt, key: /nonexistent/site.key }\npools:\n  app:\n    backends: [127.0.0.1:3000]\nprojects:\n  - { name: shop, hosts: [a.test], pool: app }\n";
    assert_error(
        yaml,
        4,
        12,
        "listeners.https.tls.cert",
        "cannot read `/nonexistent/site.crt`",
    );
}

#[test]
fn unset_environment_variable() {
    let yaml = shop_after("instance_name: ${RAMPART_TEST_SURELY_UNSET}\n");
    assert_error(
        &yaml,
        1,
        16,
        "instance_name",
        "environment variable `RAMPART_TEST_SURELY_UNSET` is not set",
    );
}

#[test]
fn environment_variables_and_defaults_are_used() {
    let yaml = shop_after("instance_name: ${RAMPART_TEST_NAME}-${RAMPART_TEST_UNSET:-edge}\n");
    let c = rampart_check_with_env(&yaml, &[("RAMPART_TEST_NAME", "fra1")]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stdout.contains("instance fra1-edge"), "{}", c.stdout);
}

#[test]
fn bad_duration() {
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app:\n    backends: [127.0.0.1:3000]\n    timeouts: { connect: fast }\nprojects:\n  - { name: shop, hosts: [a.test], pool: app }\n";
    assert_error(
        yaml,
        6,
        17,
        "pools.app.timeouts.connect",
        "is not a duration",
    );
}

#[test]
fn listener_counts_must_be_positive() {
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\", keepalive_requests: 0 }\nprojects:\n  - { name: shop, hosts: [a.test], rules: [ { id: r, respond: { status: 200 } } ] }\n";
    assert_error(
        yaml,
        2,
        58,
        "listeners.http.keepalive_requests",
        "invalid value: integer `0`, expected a whole number from 1 to 4294967295",
    );
    let yaml = yaml.replace("keepalive_requests: 0", "keepalive_requests: -5");
    assert_error(
        &yaml,
        2,
        58,
        "listeners.http.keepalive_requests",
        "invalid type: integer `-5`, expected a whole number from 1 to 4294967295",
    );
    let yaml = yaml.replace("keepalive_requests: -5", "max_connections: 0");
    assert_error(
        &yaml,
        2,
        55,
        "listeners.http.max_connections",
        "invalid value: integer `0`, expected a whole number from 1 to 4294967295",
    );
}

#[test]
fn max_header_size_is_a_size_within_what_a_listener_can_hold() {
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\", max_header_size: 64 kilos }\nprojects:\n  - { name: shop, hosts: [a.test], rules: [ { id: r, respond: { status: 200 } } ] }\n";
    assert_error(
        yaml,
        2,
        38,
        "listeners.http.max_header_size",
        "`64 kilos` is not a size: write bytes, or e.g. \"64KiB\" (1 KiB = 1024 bytes, 1 kB = 1000)",
    );
    let yaml = yaml.replace("64 kilos", "512");
    assert_error(
        &yaml,
        2,
        38,
        "listeners.http.max_header_size",
        "512 bytes is outside 1KiB to 1MiB - 1 byte",
    );
    let yaml = yaml.replace("512", "2MiB");
    assert_error(
        &yaml,
        2,
        38,
        "listeners.http.max_header_size",
        "2097152 bytes is outside 1KiB to 1MiB - 1 byte",
    );
    // A plain number of bytes and the units of nginx's users are taken.
    for ok in ["16384", "16KiB", "16k", "1048575"] {
        let yaml = yaml.replace("2MiB", ok);
        let c = check(&yaml);
        assert_eq!(c.code, 0, "{ok}: {}", c.stderr);
    }
}

#[test]
fn max_body_size_is_a_size() {
    let yaml = shop_after("").replace("pool: app }", "pool: app, max_body_size: ten megs }");
    let c = check(&yaml);
    assert_eq!(c.code, 1);
    assert!(
        c.stderr.contains(
            ": projects[0].max_body_size: `ten megs` is not a size: write bytes, or e.g. \"64KiB\""
        ),
        "{}",
        c.stderr
    );
    let c = check(&yaml.replace("ten megs", "10MiB"));
    assert_eq!(c.code, 0, "{}", c.stderr);
}

#[test]
fn zero_weight_and_bad_selection() {
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app:\n    backends:\n      - { address: 127.0.0.1:3000, weight: 0 }\nprojects:\n  - { name: shop, hosts: [a.test], pool: app }\n";
    assert_error(
        yaml,
        6,
        36,
        "pools.app.backends[0].weight",
        "must be at least 1",
    );
    assert!(
        !check(yaml).stderr.contains("no pool named"),
        "an invalid pool is still a pool: no cascading error"
    );
    // A huge weight passed `check`, then `run` died allocating one entry per unit of it.
    let huge = yaml.replace("weight: 0", "weight: 18446744073709551615");
    assert_error(
        &huge,
        6,
        36,
        "pools.app.backends[0].weight",
        "must be at most 1000",
    );
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app:\n    backends: [127.0.0.1:3000]\n    selection: fastest\nprojects:\n  - { name: shop, hosts: [a.test], pool: app }\n";
    assert_error(
        yaml,
        6,
        16,
        "pools.app.selection",
        "unknown variant `fastest`",
    );
}

#[test]
fn bad_listener_address_and_host_conflict() {
    let yaml = "listeners:\n  http: { address: \"localhost\" }\npools:\n  app:\n    backends: [127.0.0.1:3000]\nprojects:\n  - { name: shop, hosts: [a.test], pool: app }\n";
    assert_error(
        yaml,
        2,
        11,
        "listeners.http.address",
        "not an IP:port address",
    );
    let yaml = format!("{BASE}projects:\n  - {{ name: one, hosts: [a.test], pool: app }}\n  - {{ name: two, hosts: [A.test], pool: app }}\n");
    assert_error(
        &yaml,
        8,
        18,
        "projects[1].hosts",
        "already served by project `one`",
    );
}

#[test]
fn redirect_status_and_template_errors() {
    let yaml = format!("{BASE}projects:\n  - name: shop\n    hosts: [a.test]\n    pool: app\n    rules:\n      - id: r1\n        match: {{ path: /a }}\n        redirect: {{ to: \"/b/{{rest}}\", status: 200 }}\n");
    let c = check(&yaml);
    assert_eq!(c.code, 1);
    assert!(
        c.stderr.contains(&format!(
            "{}:13:38: projects[0].rules[0].redirect.status: 200 is not a redirect status",
            c.path
        )),
        "{}",
        c.stderr
    );
    assert!(
        c.stderr.contains(&format!(
            "{}:13:21: projects[0].rules[0].redirect.to: `{{rest}}` is only known for `path_prefix` rules",
            c.path
        )),
        "{}",
        c.stderr
    );
}

#[test]
fn unknown_server_setting() {
    let yaml = shop_after("server:\n  threads: 2\n  thread: 4\n");
    assert_error(&yaml, 3, 3, "server.thread", "not a Pingora server setting");
}

#[test]
fn yaml_syntax_error_has_a_position() {
    let c = check("listeners:\n  http: { address: \"127.0.0.1:8080\"\npools: {}\n");
    assert_eq!(c.code, 1);
    assert!(
        c.stderr.starts_with(&format!("{}:", c.path)) && c.stderr.contains(":3:"),
        "{}",
        c.stderr
    );
}

/// A required key with a wrong type is reported once, as a type error, not also as missing.
#[test]
fn a_required_key_of_the_wrong_type_is_not_also_missing() {
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app: { backends: 5, retries: x }\nprojects:\n  - { name: [s], hosts: [\"*\"], pool: app }\n";
    let c = assert_check_errors(
        yaml,
        &[
            (
                4,
                20,
                "pools.app.backends",
                "invalid type: integer `5`, expected a sequence",
            ),
            (
                4,
                23,
                "pools.app.retries",
                "expected a whole number, 0 or more",
            ),
            (6, 7, "projects[0].name", "expected a string"),
        ],
    );
    assert!(
        c.stderr.contains(": 3 error(s)") && !c.stderr.contains("missing field"),
        "{}",
        c.stderr
    );
}

/// `rampart run` on an address another process holds: a clear error and exit 1, not a
/// process that answers /healthz without serving the port. One line, even with
/// `RUST_BACKTRACE` set, as operators often have it.
#[test]
fn run_fails_cleanly_when_a_listener_address_is_taken() {
    let taken = bind_unused();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("server: {{ pid_file: {0}/r.pid, upgrade_sock: {0}/u.sock }}\nadmin: {{ listen: \"{1}\" }}\nlisteners:\n  http: {{ address: \"{addr}\" }}\npools:\n  app:\n    backends: [127.0.0.1:3000]\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n", dir.path().display(), free_addr());
    let c = rampart_with_config(dir, &yaml, &["run"], &[("RUST_BACKTRACE", "1")]);
    let stderr = &c.stderr;
    assert_eq!(c.code, 1, "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("rampart: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        error.contains(&format!("listeners.http.address: cannot listen on {addr}"))
            && error.contains("another process listens there"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
    assert!(
        !stderr.contains("backtrace") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// `tls: true` verifies backend certificates: the name comes from the backends when they are
/// all given by one host name, and IP backends need an explicit `sni`.
#[test]
fn upstream_tls_true_takes_the_backends_host_name() {
    let by_name = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app:\n    backends: [\"localhost:8443\", { address: \"LOCALHOST:8444\", weight: 2 }]\n    tls: true\nprojects:\n  - { name: shop, hosts: [a.test], pool: app }\n";
    let c = check(by_name);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let by_ip = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app:\n    backends: [\"127.0.0.1:8443\"]\n    tls: true\nprojects:\n  - { name: shop, hosts: [a.test], pool: app }\n";
    assert_error(
        by_ip,
        6,
        5,
        "pools.app.tls",
        "`verify: true` needs `sni: NAME`",
    );
    // A name and an IP: the IP has no name to check its certificate against.
    let mixed = by_ip.replace(
        "[\"127.0.0.1:8443\"]",
        "[\"localhost:8443\", \"127.0.0.1:8444\"]",
    );
    assert_error(
        &mixed,
        6,
        5,
        "pools.app.tls",
        "`verify: true` needs `sni: NAME`",
    );
}

/// `sni` is a host name: an empty one (from `${VAR:-}`) would turn verification off in
/// Pingora, and a port, an IP or a wildcard would fail every request at run time.
#[test]
fn upstream_sni_must_be_a_host_name() {
    let yaml = |sni: &str| {
        format!("listeners:\n  http: {{ address: \"127.0.0.1:8080\" }}\npools:\n  app:\n    backends: [\"127.0.0.1:8443\"]\n    tls: {{ sni: \"{sni}\", verify: true }}\nprojects:\n  - {{ name: shop, hosts: [a.test], pool: app }}\n")
    };
    assert_error(
        &yaml(""),
        6,
        5,
        "pools.app.tls",
        "`verify: true` needs `sni: NAME`",
    );
    for (sni, says) in [
        (
            "api.internal:443",
            "has a port: write the name alone (`sni: api.internal`)",
        ),
        ("10.0.0.5", "is an IP address"),
        ("*.internal", "is a wildcard"),
        ("a b", "is not a host name"),
    ] {
        assert_error(&yaml(sni), 6, 12, "pools.app.tls.sni", says);
    }
    assert_eq!(check(&yaml("api-1.internal")).code, 0);
}

/// serde stops at the first error; `check` goes on section by section, entry by entry and key
/// by key, so one run lists every mistake, each at its own position, even several in one
/// entry (a misspelt required key is both unknown and missing).
#[test]
fn every_parse_error_is_reported_in_one_run() {
    let yaml = "admin: { listen: \"127.0.0.1:9090\", tokn: x }\nlisteners:\n  http: { adress: \"127.0.0.1:8080\" }\npools:\n  app: { backends: [\"127.0.0.1:3000\"], retries: many, timout: 1s }\n  api: { backends: [\"127.0.0.1:3001\"], selection: fastest }\nprojects:\n  - { name: site, hosts: [\"*\"], pool: [app], prio: 3 }\n  - { name: b, hosts: x, pool: api }\npoolz: {}\n";
    let c = assert_check_errors(
        yaml,
        &[
            (1, 36, "admin.tokn", "did you mean `token`?"),
            (3, 3, "listeners.http", "missing field `address`"),
            (3, 11, "listeners.http.adress", "did you mean `address`?"),
            (5, 40, "pools.app.retries", "invalid type: string \"many\""),
            (5, 55, "pools.app.timout", "did you mean `timeouts`?"),
            (6, 40, "pools.api.selection", "unknown variant `fastest`"),
            (
                8,
                33,
                "projects[0].pool",
                "invalid type: sequence, expected a string",
            ),
            (8, 46, "projects[0].prio", "unknown field `prio`"),
            (9, 16, "projects[1].hosts", "expected a sequence"),
            (10, 1, "poolz", "did you mean `pools`?"),
        ],
    );
    assert!(
        c.stderr.contains(": 10 error(s), configuration not loaded"),
        "each once, nothing else:\n{}",
        c.stderr
    );
}

/// YAML keeps the last of two equal keys without a word: a second `http:` listener or pool
/// replaced the first.
#[test]
fn a_key_given_twice_is_an_error_at_the_repeat() {
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\n  http: { address: \"127.0.0.1:8081\" }\npools:\n  app:\n    backends: [127.0.0.1:3000]\nprojects:\n  - { name: shop, hosts: [a.test], pool: app, rules: [{ id: a, request_headers: { set: { X-A: '1', X-A: '2' } } }] }\n";
    assert_check_errors(
        yaml,
        &[
            (
                3,
                3,
                "listeners.http",
                "given twice in the same mapping (first on line 2)",
            ),
            (
                8,
                100,
                "projects[0].rules[0].request_headers.set.X-A",
                "given twice",
            ),
        ],
    );
}

/// Editors on Windows start files with a byte-order mark.
#[test]
fn a_byte_order_mark_is_ignored() {
    let yaml = shop_after("\u{feff}");
    let c = check(&yaml);
    assert_eq!(c.code, 0, "{}", c.stderr);
}

/// Sockets that would take the same connections: the second never served (it retried the
/// bind forever), or the admin service answered on the proxy's port.
#[test]
fn overlapping_listener_and_admin_addresses() {
    let yaml = "admin: { listen: \"127.0.0.1:8080\" }\nlisteners:\n  a: { address: \"127.0.0.1:8080\" }\n  b: { address: \"0.0.0.0:8080\" }\n  c: { address: \"[::]:8081\" }\n  d: { address: \"127.0.0.2:8081\" }\n  e: { address: \"127.0.0.1:8082\" }\n  f: { address: \"127.0.0.2:8082\" }\npools:\n  app:\n    backends: [127.0.0.1:3000]\nprojects:\n  - { name: shop, hosts: [a.test], pool: app }\n";
    let c = assert_check_errors(
        yaml,
        &[
            (
                1,
                10,
                "admin.listen",
                "127.0.0.1:8080 is already used by listener `a`",
            ),
            (
                4,
                8,
                "listeners.b.address",
                "0.0.0.0:8080 overlaps 127.0.0.1:8080 of listener `a`",
            ),
            (
                6,
                8,
                "listeners.d.address",
                "127.0.0.2:8081 overlaps [::]:8081 of listener `c`",
            ),
        ],
    );
    assert!(
        !c.stderr.contains("listeners.f"),
        "different IPs: {}",
        c.stderr
    );
}

/// OpenSSL asked for the passphrase on the terminal (`check` hung) or, with none, the key was
/// called "not a PEM private key".
#[test]
fn an_encrypted_private_key_is_named_as_such() {
    // `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -pass pass:secret`
    const ENCRYPTED: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgFpS7DFdq6pAICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEKd7xbZzLD4wpaP5M4xQDUUEgZDC
B8mFrn2Mt5+k2dBgQ9664BeAjPeME4qYV8bW/iyazHyIOrtBGyi0MNgCZunuovRK
EbjE/c5MYt8X9bt7/uQua+5J9Q/QhYVWMe7bDVSu034LTTWxeVbxc+sMyLMfU5Y2
rDCd2VcbG3t4VTYFkCi2mH+y+iO4GaMKQrDnj32/vzVt0F3mz4joThlDKwvkdKM=
-----END ENCRYPTED PRIVATE KEY-----
";
    let certs = self_signed(&["a.test"]);
    let encrypted = ENCRYPTED;
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("enc.key");
    std::fs::write(&key_path, encrypted).unwrap();
    let yaml = format!(
        "listeners:\n  https:\n    address: \"127.0.0.1:8443\"\n    tls: {{ key: {}, cert: {} }}\npools:\n  app:\n    backends: [127.0.0.1:3000]\nprojects:\n  - {{ name: shop, hosts: [a.test], pool: app }}\n",
        key_path.display(),
        certs.cert_path.display()
    );
    let c = assert_check_errors(&yaml, &[(4, 12, "listeners.https.tls.key", "is encrypted")]);
    assert!(c.stderr.contains("openssl pkey -in"), "{}", c.stderr);
}

/// h2c is HTTP/2 without TLS: on a TLS listener it would mean nothing (ALPN offers h2 there).
#[test]
fn h2c_on_a_tls_listener_points_at_tls_http2() {
    let certs = self_signed(&["a.test"]);
    let yaml = format!(
        "listeners:\n  https:\n    address: \"127.0.0.1:8443\"\n    h2c: true\n    tls: {{ cert: {}, key: {} }}\n{}projects:\n  - {{ name: shop, hosts: [a.test], pool: app }}\n",
        certs.cert_path.display(),
        certs.key_path.display(),
        &BASE[BASE.find("pools:").unwrap()..]
    );
    assert_error(
        &yaml,
        4,
        5,
        "listeners.https.h2c",
        "h2c is HTTP/2 without TLS, for plain listeners: a TLS listener offers HTTP/2 through ALPN (`tls.http2`)",
    );
}

/// `target: OFF` wrote a file named OFF in the working directory, and `format: JSON` logged
/// the word JSON for every request.
#[test]
fn access_log_keywords_paths_and_templates() {
    let yaml = shop_after("access_log: { target: logs/access.log, format: common }\n");
    assert_check_errors(
        &yaml,
        &[
            (
                1,
                15,
                "access_log.target",
                "not stdout, stderr, off or an absolute path",
            ),
            (1, 40, "access_log.format", "at least one {field}"),
        ],
    );
    let yaml = shop_after("access_log: { target: OFF, format: JSON }\n");
    let c = check(&yaml);
    assert_eq!(c.code, 0, "keywords in any case: {}", c.stderr);
}

/// A misplaced `hash_key` stopped the pool's checks: its other mistakes showed only once it
/// was fixed. Errors come in file order.
#[test]
fn a_pool_reports_all_its_mistakes_at_once_in_file_order() {
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app:\n    backends: [127.0.0.1:3000]\n    hash_key: uri\n    health_check: { expect_status: [999], rise: 0 }\nprojects:\n  - { name: shop, hosts: [a.test], pool: app }\n";
    let c = assert_check_errors(
        yaml,
        &[
            (6, 5, "pools.app.hash_key", "only used with"),
            (7, 21, "pools.app.health_check.expect_status", "100 and 599"),
            (7, 43, "pools.app.health_check.rise", "at least 1"),
        ],
    );
    let lines: Vec<usize> = c
        .stderr
        .lines()
        .filter_map(|l| l.split(':').nth(1)?.parse().ok())
        .collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "{}", c.stderr);
}

/// Mistakes that do not stop the config: `check` prints them as warnings and exits 0.
#[test]
fn warnings_for_expired_or_misnamed_certificates_and_an_open_admin() {
    let dir = tempfile::tempdir().unwrap();
    let soon = chrono::Utc::now().date_naive() + chrono::Days::new(6);
    let write_cert = |name: &str, names: &[&str], end: Option<chrono::NaiveDate>| {
        use chrono::Datelike;
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        if let Some(end) = end {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (c, k) = (
            dir.path().join(format!("{name}.crt")),
            dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c.display().to_string(), k.display().to_string())
    };
    let (old_c, old_k) = write_cert(
        "old",
        &["default.test"],
        chrono::NaiveDate::from_ymd_opt(2020, 1, 1),
    );
    let (other_c, other_k) = write_cert("other", &["other.test"], None);
    let (wild_c, wild_k) = write_cert("wild", &["*.shop.test"], Some(soon));
    let yaml = format!(
        "admin: {{ listen: \"0.0.0.0:9090\" }}\naccess_log: {{ target: {}/nodir/access.log }}\nlisteners:\n  https: {{ address: \"127.0.0.1:8443\", tls: {{ cert: {old_c}, key: {old_k} }} }}\n  http: {{ address: \"127.0.0.1:8080\" }}\npools:\n  app:\n    backends: [127.0.0.1:3000]\nprojects:\n  - {{ name: a, hosts: [a.test], pool: app, tls: {{ cert: {other_c}, key: {other_k} }} }}\n  - {{ name: shop, hosts: [\"*.shop.test\", www.shop.test], pool: app, tls: {{ cert: {wild_c}, key: {wild_k} }} }}\n  - {{ name: all, hosts: [\"*\"], pool: app, tls: {{ cert: {wild_c}, key: {wild_k} }} }}\n  - {{ name: plain, hosts: [plain.test], listeners: [http], pool: app, tls: {{ cert: {other_c}, key: {other_k} }} }}\n",
        dir.path().display()
    );
    let c = check(&yaml);
    assert_eq!(c.code, 0, "warnings do not fail the check: {}", c.stderr);
    for says in [
        "admin.listen: warning: the admin service listens on every address",
        "listeners.https.tls.cert: warning: ",
        "expired on Jan  1 00:00:00 2020 GMT",
        "projects[0].tls.cert: warning: ",
        "does not name host `a.test` (it names: other.test)",
        "access_log.target: warning: the directory of",
        "projects[2].tls: warning: the project serves only `*`",
        "projects[3].tls: warning: the project is on no TLS listener",
        // Between 5 and 6 days, depending on the time of day.
        format!("projects[1].tls.cert: warning: `{wild_c}` expires on ").as_str(),
        "day(s): renew it, then reload Rampart",
    ] {
        assert!(c.stderr.contains(says), "`{says}` in:\n{}", c.stderr);
    }
    assert!(
        !c.stderr.contains(&format!(
            "projects[1].tls.cert: warning: `{wild_c}` does not name"
        )),
        "a wildcard covers: {}",
        c.stderr
    );
}

/// One HTTPS listener serving `cert` with `key`, and a project answering on it.
fn tls_listener_yaml(cert: &std::path::Path, key: &str) -> String {
    format!(
        "listeners:\n  https: {{ address: \"127.0.0.1:8443\", tls: {{ cert: \"{}\", key: \"{key}\" }} }}\nprojects:\n  - {{ name: a, hosts: [\"*\"], rules: [ {{ id: r, respond: {{ status: 200 }} }} ] }}\n",
        cert.display()
    )
}

/// A chain is refused once the server's certificate or its issuer's has ended: an issuer that
/// ends soon is warned about by name, even though the server's own certificate runs for years.
/// An unrelated certificate left in the file that has long expired (an old cross-sign in a
/// `fullchain.pem`) is not: clients do without it.
#[test]
fn a_chain_certificate_that_ends_soon_is_named() {
    use chrono::Datelike;
    let soon = chrono::Utc::now().date_naive() + chrono::Days::new(6);
    let intermediate = TestCa::until((soon.year(), soon.month() as u8, soon.day() as u8));
    let leaf = intermediate.issue(&["shop.test"]);
    let old_cross_sign = TestCa::new().issue_until(&["old-root.test"], (2021, 9, 30));
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.crt");
    std::fs::write(
        &chain,
        leaf.cert_pem.clone() + &intermediate.ca_pem() + &old_cross_sign.cert_pem,
    )
    .unwrap();
    let c = check(&tls_listener_yaml(&chain, &leaf.key()));
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(
        c.stderr.contains(&format!(
            "listeners.https.tls.cert: warning: `{}` (its chain certificate CN=Rampart Test CA) expires on ",
            chain.display()
        )),
        "{}",
        c.stderr
    );
    assert!(!c.stderr.contains("expired"), "{}", c.stderr);
    // The summary gives the day the chain stops working: the issuer's end.
    let line = format!(
        "tls (min 1.2, h2 on)  certificate until {}",
        soon.format("%Y-%m-%d")
    );
    assert!(c.stdout.contains(&line), "{}", c.stdout);
}

/// A certificate file with the chain in the wrong order (intermediate first) is named as such,
/// not as a key that does not match.
#[test]
fn a_chain_in_the_wrong_order_is_named() {
    let ca = TestCa::new();
    let leaf = ca.issue(&["shop.test"]);
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong-order.crt");
    let leaf_pem = std::fs::read_to_string(leaf.cert()).unwrap();
    std::fs::write(&wrong, ca.ca_pem() + &leaf_pem).unwrap();
    let c = check(&tls_listener_yaml(&wrong, &leaf.key()));
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert!(
        c.stderr.contains("listeners.https.tls.key: ")
            && c.stderr.contains("belongs to a later certificate of")
            && c.stderr
                .contains("the server's own certificate must come first"),
        "{}",
        c.stderr
    );
}

#[test]
fn unreadable_config_file_has_no_made_up_position() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let out = std::process::Command::new(rampart_bin())
        .args(["check", "-c"])
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "{}: cannot read the configuration file: No such file or directory",
            missing.display()
        )),
        "{stderr}"
    );
}

/// A file of two YAML documents (a `---` between two configs pasted together) is refused at
/// the `---` that begins the second, not at 1:1.
#[test]
fn a_second_yaml_document_is_pointed_at() {
    for (yaml, line) in [
        (format!("{BASE}---\nprojects: []\n"), 6),
        (
            format!("# rampart\n---\n{BASE}--- # again\nprojects: []\n"),
            8,
        ),
    ] {
        let c = check(&yaml);
        assert_eq!(c.code, 1, "{}", c.stderr);
        let expected = format!(
            "{}:{line}:1: a second YAML document begins here (`---`)",
            c.path
        );
        assert!(c.stderr.contains(&expected), "{expected}\n{}", c.stderr);
    }
}

#[test]
fn backend_names_need_a_port_and_a_sane_resolve_interval() {
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app:\n    backends: [localhost, \"localhost:3000\", \"localhost:3000\"]\n    resolve_interval: 10ms\nprojects:\n  - { name: shop, hosts: [a.test], pool: app }\n";
    assert_check_errors(
        yaml,
        &[
            (
                5,
                16,
                "pools.app.backends[0]",
                "`localhost` has no port: write host:port",
            ),
            (
                5,
                45,
                "pools.app.backends[2]",
                "localhost:3000 is listed twice in this pool",
            ),
            (
                6,
                5,
                "pools.app.resolve_interval",
                "must be at least 100ms (or `never`)",
            ),
        ],
    );
    // `never`, and an interval on a pool of addresses (which has no names to resolve), pass.
    for extra in [
        "    resolve_interval: never\n",
        "    resolve_interval: 5m\n",
    ] {
        let c = check(&format!(
            "{BASE}{extra}projects:\n  - {{ name: shop, hosts: [a.test], pool: app }}\n"
        ));
        assert_eq!(c.code, 0, "{}", c.stderr);
    }
}

/// Errors in `false | true | { ... }` values point at the value, or the key in the map.
#[test]
fn compression_is_true_false_or_a_level_from_1_to_9() {
    let yaml = |value: &str| {
        format!("{BASE}projects:\n  - name: shop\n    hosts: [a.test]\n    pool: app\n    compression: {value}\n")
    };
    assert_error(
        &yaml("{ level: 12 }"),
        10,
        20,
        "projects[0].compression.level",
        "12 is not a level: from 1 (fastest) to 9 (smallest)",
    );
    assert_error(
        &yaml("fast"),
        10,
        18,
        "projects[0].compression",
        "expected false, true or { level: N } (1 to 9)",
    );
    assert_eq!(check(&yaml("true")).code, 0);
    let summary = check(&yaml("{ level: 3 }")).stdout;
    assert!(
        summary.contains("fail_mode open  compression 3"),
        "{summary}"
    );
    // The pools' `tls` is read the same way: a wrong value or key is pointed at.
    let tls = |value: &str| {
        format!("listeners:\n  http: {{ address: \"127.0.0.1:8080\" }}\npools:\n  app:\n    backends: [127.0.0.1:3000]\n    tls: {value}\nprojects:\n  - {{ name: shop, hosts: [a.test], pool: app }}\n")
    };
    assert_error(
        &tls("fast"),
        6,
        10,
        "pools.app.tls",
        "expected false, true or { sni: NAME, verify: true, ca_file: PATH }",
    );
    assert_error(
        &tls("{ sni: a.test, verfy: true }"),
        6,
        25,
        "pools.app.tls.verfy",
        "unknown field `verfy`",
    );
}

#[test]
fn rate_limit_takes_at_least_one_request_a_second() {
    let yaml = |value: &str| {
        format!("{BASE}projects:\n  - name: shop\n    hosts: [a.test]\n    pool: app\n    rate_limit: {{ requests_per_second: {value} }}\n")
    };
    let zero = check(&yaml("0"));
    assert_eq!(zero.code, 1, "{}", zero.stderr);
    assert!(
        zero.stderr
            .contains("projects[0].rate_limit.requests_per_second: "),
        "{}",
        zero.stderr
    );
    let summary = check(&yaml("7")).stdout;
    assert!(
        summary.contains("fail_mode open  rate_limit 7/s"),
        "{summary}"
    );
}
