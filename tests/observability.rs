//! Metrics after known traffic, /status, the admin token, and the access log formats.

mod common;
use common::*;
use std::path::PathBuf;
use std::time::Duration;

fn yaml(up: &Upstream, http: &str, admin: &str, extra: &str, token: bool) -> String {
    format!(
        "instance_name: edge-test\nadmin: {{ listen: \"{admin}\" {extra_admin} }}\n{extra}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - name: shop\n    hosts: [shop.test]\n    pool: app\n    rules:\n      - {{ id: moved, match: {{ path: /moved }}, redirect: {{ to: /new }} }}\n",
        up.addr_string(),
        extra_admin = if token { ", token: s3cret" } else { "" },
    )
}

/// Rampart serving `shop.test` from `up` and logging to `access.log` in its directory, with
/// `format` when given; returns it, the log's path and the listener's address.
fn start_logging_to_file(up: &Upstream, format: Option<&str>) -> (Rampart, PathBuf, String) {
    let (http, admin) = (free_addr(), free_addr());
    let format = format.map(|f| format!(", format: {f}")).unwrap_or_default();
    let (r, log) = Rampart::start_logging(|log| {
        let extra = format!("access_log: {{ target: {}{format} }}", log.display());
        yaml(up, &http, &admin, &extra, false)
    });
    (r, log, http)
}

/// Rampart serving `shop.test` from `up` without an access log (`token`: the admin token
/// `s3cret`); returns it and the listener's and the admin service's addresses.
fn start_unlogged(up: &Upstream, token: bool) -> (Rampart, String, String) {
    let (http, admin) = (free_addr(), free_addr());
    let extra = "access_log: { target: off }";
    (
        Rampart::start(&yaml(up, &http, &admin, extra, token)),
        http,
        admin,
    )
}

#[test]
fn metrics_and_status_after_known_traffic() {
    let up = Upstream::start("up");
    let (r, http, admin) = start_unlogged(&up, true);
    let base = format!("http://{http}");
    for _ in 0..5 {
        assert_eq!(get(&format!("{base}/ok"), "shop.test").status(), 200);
    }
    for _ in 0..3 {
        assert_eq!(
            get(&format!("{base}/status/503"), "shop.test").status(),
            503
        );
    }
    for _ in 0..2 {
        assert_eq!(get(&format!("{base}/moved"), "shop.test").status(), 301);
    }
    assert_eq!(get(&format!("{base}/"), "nobody.test").status(), 421);
    // Codes a backend may invent, each its own series (a 599 must stay a 5xx).
    assert_eq!(
        get(&format!("{base}/status/700"), "shop.test").status(),
        700
    );
    assert_eq!(
        get(&format!("{base}/status/599"), "shop.test").status(),
        599
    );

    // Token required everywhere but /healthz.
    let c = client();
    assert_eq!(
        c.get(format!("http://{admin}/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(format!("http://{admin}/metrics"))
            .send()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.get(format!("http://{admin}/status"))
            .bearer_auth("wrong")
            .send()
            .unwrap()
            .status(),
        401
    );
    // The scheme's case does not matter (RFC 9110); the admin service only reads.
    let status = |req: reqwest::blocking::RequestBuilder| req.send().unwrap().status();
    let lower = c
        .get(format!("http://{admin}/status"))
        .header("authorization", "bearer s3cret");
    assert_eq!(status(lower), 200);
    let post = c
        .post(format!("http://{admin}/status"))
        .bearer_auth("s3cret");
    let refused = post.send().unwrap();
    assert_eq!(refused.status(), 405);
    assert_eq!(refused.headers()["allow"], "GET, HEAD");
    // Refusals are in the log (a client guessing tokens shows), without the token tried.
    let line = r.wait_for_log("admin: refused", Duration::from_secs(5));
    assert!(line.contains("GET /metrics from 127.0.0.1:"), "{line}");

    // The logging phase runs after the response is sent: poll until the counters settle.
    poll_until(Duration::from_secs(5), "request counters", || {
        (r.metric("rampart_requests_total{code=\"200\",project=\"shop\"}") == Some(5.0))
            .then_some(())
    });
    assert_eq!(
        r.metric("rampart_requests_total{code=\"503\",project=\"shop\"}"),
        Some(3.0)
    );
    assert_eq!(
        r.metric("rampart_requests_total{code=\"301\",project=\"shop\"}"),
        Some(2.0)
    );
    assert_eq!(
        r.metric("rampart_requests_total{code=\"421\",project=\"_none\"}"),
        Some(1.0)
    );
    assert_eq!(
        r.metric("rampart_requests_total{code=\"700\",project=\"shop\"}"),
        Some(1.0)
    );
    assert_eq!(
        r.metric("rampart_requests_total{code=\"599\",project=\"shop\"}"),
        Some(1.0)
    );
    assert_eq!(
        r.metric("rampart_request_duration_seconds_count{project=\"shop\"}"),
        Some(12.0)
    );
    assert_eq!(
        r.metric("rampart_rule_hits_total{project=\"shop\",rule=\"moved\"}"),
        Some(2.0)
    );
    assert_eq!(
        r.metric("rampart_rules_loaded{project=\"shop\"}"),
        Some(1.0)
    );
    assert_eq!(
        r.metric("rampart_rules_reloads_total{project=\"shop\",result=\"ok\"}"),
        Some(1.0)
    );
    assert_eq!(
        r.metric(&format!(
            "rampart_backend_healthy{{backend=\"{}\",pool=\"app\"}}",
            up.addr_string()
        )),
        Some(1.0)
    );
    assert_eq!(
        r.metric(&format!(
            "rampart_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        Some(1.0)
    );
    let m = r.metrics();
    assert!(
        m.contains("process_resident_memory_bytes"),
        "process metrics are exported"
    );
    assert!(
        m.contains("rampart_fail_open_total{project=\"shop\",reason=\"rule_error\"} 0"),
        "fail-open series exist at 0"
    );
    assert!(
        m.contains("rampart_upstream_errors_total{kind=\"connect\",pool=\"app\"} 0"),
        "upstream error series exist at 0"
    );

    let s = r.status();
    assert_eq!(s["instance"], "edge-test");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["uptime_seconds"].as_u64().is_some());
    assert_eq!(s["requests_in_flight"], 0, "every request was answered");
    let p = &s["projects"][0];
    assert_eq!(p["name"], "shop");
    assert_eq!(p["rules"], 1);
    assert_eq!(p["requests"], 12);
    assert_eq!(s["unrouted"]["requests"], 1, "the 421");
    // The start says what it serves.
    let start = r.wait_for_log("starting: listeners", Duration::from_secs(2));
    assert!(
        start.contains(&format!(
            "http http://{http}; admin on {admin}; 1 project(s) with 1 rule(s), 1 pool(s)"
        )),
        "{start}"
    );
    assert_eq!(p["errors"], 4);
    assert_eq!(s["pools"][0]["backends"][0]["address"], up.addr_string());
    assert_eq!(s["pools"][0]["backends"][0]["healthy"], true);
}

#[test]
fn access_log_formats_and_targets() {
    let up = Upstream::start("up");
    for (format, check) in [
        (
            "json",
            &(|line: &str| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["status"], 200);
                assert_eq!(v["uri"], "/logged?x=1");
                assert_eq!(v["project"], "shop");
                assert_eq!(v["request_id"], "rid-42");
                assert_eq!(v["client_ip"], "127.0.0.1");
                assert!(v["tls_version"].is_null() && v["tls_cipher"].is_null(), "{v}");
                // Every key, in the documented (alphabetical) order.
                let keys = [
                    "bytes", "client_ip", "duration_ms", "error", "host", "method", "project",
                    "protocol", "referer", "request_id", "rules", "status", "time", "tls_cipher",
                    "tls_version", "upstream", "uri", "user_agent",
                ];
                let at: Vec<usize> = keys
                    .iter()
                    .map(|k| line.find(&format!("\"{k}\":")).expect(k))
                    .collect();
                assert!(at.windows(2).all(|w| w[0] < w[1]), "{line}");
                assert_eq!(v.as_object().unwrap().len(), keys.len(), "{line}");
            }) as &dyn Fn(&str),
        ),
        ("combined", &|line| {
            assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
            assert!(line.contains("\"GET /logged?x=1 HTTP/1.1\" 200 "), "{line}");
            assert!(line.contains(" rid-42 "), "{line}");
        }),
        (
            "\"{client_ip} {method} {path} {status} {request_id} {project} {tls_version} {tls_cipher} {upstream}\"",
            &|line| {
                assert!(
                    line.starts_with("127.0.0.1 GET /logged 200 rid-42 shop - - 127.0.0.1:"),
                    "{line}"
                );
            },
        ),
    ] {
        let (r, log, http) = start_logging_to_file(&up, Some(format));
        let resp = client()
            .get(format!("http://{http}/logged?x=1"))
            .header("host", "shop.test")
            .header("x-request-id", "rid-42")
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        check(first_line(&log).trim_end());
        drop(r);
    }
}

/// Which TLS version and cipher each client used, e.g. to see who still needs TLS 1.2 before
/// setting `min_version: "1.3"`.
#[test]
fn access_log_names_the_tls_version_and_cipher() {
    let ca = TestCa::new();
    let cert = ca.issue(&["shop.test"]);
    let up = Upstream::start("up");
    let (https, admin) = (free_addr(), free_addr());
    let (_r, log) = Rampart::start_logging(|log| {
        format!(
            "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: {}, format: \"{{protocol}} {{tls_version}} {{tls_cipher}} {{path}}\" }}\nlisteners:\n  https: {{ address: \"{https}\", tls: {{ cert: \"{}\", key: \"{}\" }} }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: shop, hosts: [shop.test], pool: app }}\n",
            log.display(),
            cert.cert(),
            cert.key(),
            up.addr_string()
        )
    });
    let addr: std::net::SocketAddr = https.parse().unwrap();
    let url = |path: &str| format!("https://shop.test:{}{path}", addr.port());
    let c = h2_client_blocking(&ca, &[("shop.test", addr)]);
    assert_eq!(c.get(url("/h2")).send().unwrap().status(), 200);
    let tls12 = https_builder_blocking(&ca, &[("shop.test", addr)])
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .http1_only()
        .build()
        .unwrap();
    assert_eq!(tls12.get(url("/old")).send().unwrap().status(), 200);
    let text = log_lines(&log, 2);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("HTTP/2.0 TLSv1.3 TLS_"), "{text}");
    assert!(lines[0].ends_with(" /h2"), "{text}");
    let old: Vec<&str> = lines[1].split(' ').collect();
    assert_eq!(old[..2], ["HTTP/1.1", "TLSv1.2"], "{text}");
    assert!(old[2].starts_with("ECDHE-") && old[3] == "/old", "{text}");
}

/// Which rules matched each request, e.g. which of 100 000 redirects sent a client away.
#[test]
fn access_log_names_the_rules_that_matched() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let (http, admin) = (free_addr(), free_addr());
    std::fs::write(
        dir.path().join("moves.csv"),
        "/old-a,/new-a\n/old-b,/new-b\n",
    )
    .unwrap();
    let (_r, log) = Rampart::start_logging_in(dir, |log| {
        format!(
            "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: {}, format: \"{{status}} {{path}} {{rules}}\" }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - name: shop\n    hosts: [\"*\"]\n    pool: app\n    rules_files: [moves.csv]\n    rules:\n      - {{ id: tag, match: {{ path_prefix: /t/ }}, request_headers: {{ set: {{ X-Tag: a }} }} }}\n      - {{ id: moved, match: {{ path: /moved }}, redirect: {{ to: /new }} }}\n",
            log.display(),
            up.addr_string()
        )
    });
    for path in ["/moved", "/t/x", "/old-b", "/other"] {
        raw_request(
            &http,
            format!("GET {path} HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    }
    let text = log_lines(&log, 4);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "301 /moved moved",
            "200 /t/x tag",
            "301 /old-b moves.csv:2",
            "200 /other -"
        ],
        "{text}"
    );
}

#[test]
fn access_log_escapes_what_clients_send() {
    let up = Upstream::start("up");
    let request = "GET /q\"uote HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: a\"b\\c\tz café\r\nReferer: http://été.fr/\r\nX-Request-Id: id\"1\r\nConnection: close\r\n\r\n";
    for (format, check) in [
        (
            "combined",
            &(|line: &str| {
                // A parser's idea of the combined format still reads every field.
                let want = r#""GET /q\"uote HTTP/1.1" 200 "#;
                assert!(line.contains(want), "{line}");
                let want = r#" "http://\xC3\xA9t\xC3\xA9.fr/" "a\"b\\c\x09z caf\xC3\xA9" id\"1 "#;
                assert!(line.contains(want), "{line}");
            }) as &dyn Fn(&str),
        ),
        ("json", &|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["uri"], "/q\"uote");
            assert_eq!(v["user_agent"], "a\"b\\c\tz café");
            assert_eq!(v["referer"], "http://été.fr/");
            assert_eq!(v["request_id"], "id\"1");
        }),
        ("\"\\\"{uri}\\\" ua=\\\"{user_agent}\\\"\"", &|line| {
            assert_eq!(line, r#""/q\"uote" ua="a\"b\\c\x09z caf\xC3\xA9""#);
        }),
    ] {
        let (r, log, http) = start_logging_to_file(&up, Some(format));
        let answer = raw_request(&http, request.as_bytes()).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200 "), "{answer:?}");
        check(first_line(&log).trim_end());
        drop(r);
    }
}

/// A head Pingora cannot parse gets its `400` before any phase of Rampart runs: the line is
/// still in the access log, with `-` for the request it could not read, as nginx writes it.
#[test]
fn access_log_has_the_400_for_a_head_that_could_not_be_parsed() {
    let up = Upstream::start("up");
    // A header line without a colon.
    let garbage = b"GET /x HTTP/1.1\r\nHost shop.test\r\n\r\n";
    for (format, check) in [
        (
            "combined",
            &(|line: &str| {
                assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
                assert!(line.ends_with(r#"] "-" 400 37 "-" "-" - 0.000"#), "{line}");
            }) as &dyn Fn(&str),
        ),
        ("json", &|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["status"], 400);
            assert_eq!(v["client_ip"], "127.0.0.1");
            assert_eq!(v["method"], serde_json::Value::Null);
            assert_eq!(v["uri"], serde_json::Value::Null);
            assert_eq!(v["project"], "_none");
            assert_eq!(v["host"], serde_json::Value::Null);
            assert_eq!(v["request_id"], serde_json::Value::Null);
        }),
        (
            "\"{method} {path} {protocol} {status} {project} {host} {request_id}\"",
            &|line| {
                assert_eq!(line, "- - - 400 _none - -");
            },
        ),
    ] {
        let (r, log, http) = start_logging_to_file(&up, Some(format));
        let answer = raw_request(&http, garbage).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 400 "), "{answer:?}");
        check(first_line(&log).trim_end());
        drop(r);
    }
    assert_eq!(up.hits(), 0);
}

/// The access log's first line, once it is written whole.
fn first_line(log: &std::path::Path) -> String {
    poll_until(Duration::from_secs(5), "the access log line", || {
        std::fs::read_to_string(log)
            .ok()
            .filter(|s| s.ends_with('\n'))
    })
}

/// Paths of `/seq/N` requests in log text, each once.
fn logged_seq(text: &str) -> Vec<usize> {
    text.lines()
        .filter_map(|l| {
            l.split("\"GET /seq/")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Rotates `log` now with the real logrotate and the packages' configuration (its paths made
/// the test's; no `su`, the test's directory is its own).
fn logrotate(log: &std::path::Path) {
    let shipped = include_str!("../packaging/logrotate");
    let dir = log.parent().unwrap();
    let conf: String = shipped
        .replace("/var/log/rampart/*.log", &log.display().to_string())
        .lines()
        .filter(|l| !l.trim_start().starts_with("su "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(
        conf, shipped,
        "the shipped configuration names /var/log/rampart/*.log"
    );
    std::fs::write(dir.join("logrotate.conf"), conf).unwrap();
    // In /usr/sbin, which a user's PATH may lack.
    let bin = ["/usr/sbin/logrotate", "logrotate"]
        .into_iter()
        .find(|b| std::path::Path::new(b).exists())
        .unwrap_or("logrotate");
    let out = std::process::Command::new(bin)
        .arg("--force")
        .arg("--state")
        .arg(dir.join("logrotate.state"))
        .arg(dir.join("logrotate.conf"))
        .output()
        .expect("logrotate (scripts/deps.sh installs it)");
    assert!(out.status.success(), "logrotate: {out:?}");
}

#[test]
fn access_log_file_follows_logrotate_without_losing_a_line() {
    let up = Upstream::start("up");
    let (mut r, log, http) = start_logging_to_file(&up, None);
    let rotated = log.with_file_name("access.log.1");
    let mut sent = 0;
    let mut send = || {
        let url = format!("http://{http}/seq/{sent}");
        assert_eq!(get(&url, "shop.test").status(), 200);
        sent += 1;
    };
    for _ in 0..20 {
        send();
    }
    poll_until(Duration::from_secs(5), "20 lines in the log", || {
        (logged_seq(&std::fs::read_to_string(&log).unwrap_or_default()).len() == 20).then_some(())
    });

    logrotate(&log);
    assert!(
        rotated.exists() && !log.exists(),
        "logrotate renamed the log"
    );
    poll_until(
        Duration::from_secs(10),
        "a new log file at the path",
        || {
            send();
            std::fs::read_to_string(&log)
                .ok()
                .filter(|t| !logged_seq(t).is_empty())
        },
    );
    for _ in 0..20 {
        send();
    }
    assert!(r.signal("TERM"));
    assert!(r.wait_exit(Duration::from_secs(20)).success());

    let (old, new) = (
        logged_seq(&std::fs::read_to_string(&rotated).unwrap()),
        logged_seq(&std::fs::read_to_string(&log).unwrap()),
    );
    assert_eq!(old[..20], (0..20).collect::<Vec<_>>());
    // Lines written before the writer noticed stay in the rotated file, in order; none is
    // lost or written twice.
    let all: Vec<usize> = old.iter().chain(&new).copied().collect();
    assert_eq!(
        all,
        (0..sent).collect::<Vec<_>>(),
        "rotated {old:?}, new {new:?}"
    );
    assert!(new.len() >= 20, "{new:?}");
    assert!(
        r.stderr().contains("was moved or removed"),
        "{}",
        r.stderr()
    );
}

#[test]
fn access_log_on_a_full_disk_counts_the_lost_lines_and_warns_once() {
    let up = Upstream::start("up");
    let (http, admin) = (free_addr(), free_addr());
    // Every write to /dev/full fails with ENOSPC, as on a full disk.
    let extra = "access_log: { target: /dev/full }";
    let r = Rampart::start(&yaml(&up, &http, &admin, extra, false));
    let dropped = |n: f64| {
        poll_until(Duration::from_secs(5), "lines counted as dropped", || {
            (r.metric("rampart_access_log_dropped_total") == Some(n)).then_some(())
        })
    };
    // Two separate batches at least: the warning must not repeat per batch.
    for (sent, batch) in [(10, 10), (30, 20)] {
        for i in 0..batch {
            let url = format!("http://{http}/x/{i}");
            assert_eq!(get(&url, "shop.test").status(), 200, "requests are served");
        }
        dropped(f64::from(sent));
    }
    let stderr = r.stderr();
    assert_eq!(
        stderr.matches("access log: cannot write").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("No space left on device"), "{stderr}");
}

/// An idle writer to a file sleeps: it drained its empty queue every 50 ms (40 wake-ups in
/// 2 s), then looked at the file's path once a second; now only the next line wakes it, and
/// that line still goes to the file at the path if the log was rotated meanwhile.
#[test]
fn an_idle_access_log_writer_sleeps_until_the_next_line() {
    let up = Upstream::start("up");
    let (r, log, http) = start_logging_to_file(&up, None);
    let logged = |file: &std::path::Path, path: &str| {
        poll_until(Duration::from_secs(5), "the request logged", || {
            std::fs::read_to_string(file)
                .ok()
                .filter(|t| t.contains(&format!("GET {path} ")))
        })
    };
    assert_eq!(
        get(&format!("http://{http}/first"), "shop.test").status(),
        200
    );
    logged(&log, "/first");
    // The drain that finds nothing (and makes the writer quiet) may fall in the window.
    let woke = wakeups_while_idle(r.pid(), "access log", Duration::from_secs(2));
    assert!(woke <= 2, "the idle writer woke {woke} times in 2 s");
    // Rotated while idle, as logrotate does: the next line wakes the writer, which looks at
    // the path before writing it.
    let rotated = log.with_file_name("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    assert_eq!(
        get(&format!("http://{http}/next"), "shop.test").status(),
        200
    );
    logged(&log, "/next");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(
        old.contains("GET /first ") && !old.contains("GET /next "),
        "{old}"
    );
}

/// A writer to stdout, idle, sleeps until the next line, as a file's (above).
#[test]
fn an_idle_access_log_writer_to_stdout_does_not_wake() {
    let up = Upstream::start("up");
    let (http, admin) = (free_addr(), free_addr());
    let r = Rampart::start(&yaml(
        &up,
        &http,
        &admin,
        "access_log: { target: stdout }",
        false,
    ));
    assert_eq!(
        get(&format!("http://{http}/first"), "shop.test").status(),
        200
    );
    poll_until(Duration::from_secs(5), "the request logged", || {
        r.stdout().contains("GET /first ").then_some(())
    });
    // The drain that finds nothing (and makes the writer quiet) may fall in the window; a
    // writer that looked for a path every second woke 6 times.
    let woke = wakeups_while_idle(r.pid(), "access log", Duration::from_secs(3));
    assert!(woke <= 2, "the idle writer woke {woke} times in 3 s");
    assert_eq!(
        get(&format!("http://{http}/next"), "shop.test").status(),
        200
    );
    poll_until(Duration::from_secs(5), "the next request logged", || {
        r.stdout().contains("GET /next ").then_some(())
    });
}

/// With no rules files to watch, the rules reloader does not poll: an idle Rampart's
/// `rules reload` thread sleeps (it woke every second), and SIGHUP still reaches it.
#[test]
fn with_no_rules_files_the_reloader_does_not_poll() {
    let up = Upstream::start("up");
    let (r, http, _) = start_unlogged(&up, false);
    assert_eq!(get(&format!("http://{http}/x"), "shop.test").status(), 200);
    let woke = wakeups_while_idle(r.pid(), "rules reload", Duration::from_secs(3));
    assert!(woke <= 1, "the reloader woke {woke} times in 3 s");
    assert!(r.signal("HUP"));
    r.wait_for_log("SIGHUP: reloading rules files", Duration::from_secs(5));
}

/// Many projects' rules files are looked at in one blocking task per poll: one per project
/// woke the reloader's thread twice per project every second (7 % of a core, idle, for 2 000
/// projects). A changed file is still picked up.
#[test]
fn many_projects_rules_files_are_watched_in_one_task_per_poll() {
    const PROJECTS: usize = 100;
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let (http, admin) = (free_addr(), free_addr());
    let mut yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n",
        up.addr_string()
    );
    for i in 0..PROJECTS {
        std::fs::write(
            dir.path().join(format!("r{i}.csv")),
            format!("/old,/new/{i},301\n"),
        )
        .unwrap();
        yaml += &format!(
            "  - {{ name: s{i}, hosts: [s{i}.test], pool: app, rules_files: [r{i}.csv] }}\n"
        );
    }
    let r = Rampart::start_in(dir, &yaml);
    let woke = wakeups_while_idle(r.pid(), "rules reload", Duration::from_secs(3));
    assert!(woke <= 30, "the reloader woke {woke} times in 3 s");
    std::fs::write(r.dir().join("r57.csv"), "/old,/moved,301\n").unwrap();
    poll_until(Duration::from_secs(10), "the changed file in force", || {
        let resp = raw_get_host(&http, "s57.test", "/old", &[]).ok()?;
        (resp.header("location") == Some("/moved")).then_some(())
    });
}

#[test]
fn sigusr1_reopens_the_access_log_and_never_stops_rampart() {
    let up = Upstream::start("up");
    let (r, log, http) = start_logging_to_file(&up, None);
    // What nginx users send after rotating logs. Its default action ends a process.
    assert!(r.signal("USR1"));
    r.wait_for_log("reopened on SIGUSR1", Duration::from_secs(5));
    assert_eq!(
        get(&format!("http://{http}/after"), "shop.test").status(),
        200
    );
    poll_until(Duration::from_secs(5), "the request logged", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("GET /after "))
    });

    // With no access log, the signal is ignored.
    let (mut quiet, http, _) = start_unlogged(&up, false);
    assert!(quiet.signal("USR1"));
    assert_eq!(get(&format!("http://{http}/x"), "shop.test").status(), 200);
    assert!(quiet.is_running());
}

/// A token from the environment is the token, whatever it holds: `null` used to read as "no
/// token" (the admin service open to all), and `s3cr3t #x` as `s3cr3t` plus a comment.
#[test]
fn an_admin_token_from_the_environment_is_taken_as_text() {
    for token in ["null", "s3cr3t #x", "a: b"] {
        let (http, admin) = (free_addr(), free_addr());
        let yaml = format!(
            "admin: {{ listen: \"{admin}\", token: ${{TOK}} }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"127.0.0.1:9\"], health_check: {{ kind: none }} }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n"
        );
        let _r = Rampart::start_with(tempfile::tempdir().unwrap(), &yaml, &[], &[("TOK", token)]);
        let status = |auth: Option<&str>| {
            let mut req = client().get(format!("http://{admin}/status"));
            if let Some(t) = auth {
                req = req.bearer_auth(t);
            }
            req.send().unwrap().status()
        };
        assert_eq!(status(None), 401, "{token:?}");
        assert_eq!(status(Some("s3cr3t")), 401, "{token:?}");
        assert_eq!(status(Some(token)), 200, "{token:?}");
    }
}

/// A client that goes away before its answer is counted and logged as 499, as nginx does
/// (it was 0, which log tools read as "no status").
#[test]
fn a_client_that_leaves_before_its_answer_is_logged_499() {
    let up = Upstream::start("up");
    let (r, log, http) = start_logging_to_file(&up, Some("\"{status} {uri}\""));
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let sent = impatient
        .get(format!("http://{http}/slow?ms=3000"))
        .header("host", "shop.test")
        .send();
    assert!(sent.is_err(), "the client gives up first");
    poll_until(
        Duration::from_secs(10),
        "the abandoned request in the log",
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines().any(|l| l == "499 /slow?ms=3000").then_some(())
        },
    );
    assert_eq!(
        r.metric("rampart_requests_total{code=\"499\",project=\"shop\"}"),
        Some(1.0)
    );
    // Not sent again to a backend, and not the backend's error.
    assert_eq!(up.hits(), 1);
    assert_eq!(
        r.metric("rampart_upstream_errors_total{kind=\"closed\",pool=\"app\"}")
            .unwrap_or(0.0),
        0.0
    );
}

/// An HTTP/2 client that resets its stream (it no longer wants the answer) is a client gone
/// too: 499 in the access log and the metrics, and not said to be answered 400 in the
/// journal (Pingora reports the reset as an HTTP/2 error).
#[test]
fn an_http2_stream_reset_by_its_client_is_logged_499() {
    let up = Upstream::start("up");
    let ca = TestCa::new();
    let cert = ca.issue(&["shop.test"]);
    let (r, log, https) =
        Rampart::start_tls_site_logging(&up.addr_string(), &cert, "{status} {uri}", "");
    runtime().block_on(async {
        let client = h2_connect(&ca, &https, "shop.test", &h2::client::Builder::new()).await;
        let answer = h2_get(&client, "shop.test", "/slow?ms=5000").await;
        poll_until_async(
            Duration::from_secs(10),
            "the request at the backend",
            || {
                let there = (up.in_flight() == 1).then_some(());
                async move { there }
            },
        )
        .await;
        // Dropping the answer's future resets the stream.
        drop(answer);
        poll_until_async(Duration::from_secs(10), "the reset in the log", || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let logged = text.lines().any(|l| l == "499 /slow?ms=5000").then_some(());
            async move { logged }
        })
        .await;
    });
    assert_eq!(
        r.metric("rampart_requests_total{code=\"499\",project=\"site\"}"),
        Some(1.0)
    );
    let journal = r.stderr();
    assert!(!journal.contains("answered 400"), "{journal}");
}

/// Each failed request says in the access log what cut it short (the error log keeps one
/// line per 5 s per project): a refused backend, a backend too slow, a client gone, a head
/// that could not be parsed; `-` when nothing did.
#[test]
fn access_log_says_what_cut_each_request_short() {
    let up = Upstream::start("up");
    let (http, admin, gone) = (free_addr(), free_addr(), free_addr());
    let (_r, log) = Rampart::start_logging(|log| {
        format!(
            "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: {}, format: \"{{status}} {{path}} {{error}}\" }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"], timeouts: {{ read: 300ms }} }}\n  gone: {{ backends: [\"{gone}\"], retries: 0, health_check: {{ kind: none }} }}\n  retried: {{ backends: [\"{gone}\"], health_check: {{ kind: none }} }}\nprojects:\n  - name: shop\n    hosts: [\"*\"]\n    pool: app\n    rules:\n      - {{ id: gone, match: {{ path: /gone }}, pool: gone }}\n      - {{ id: retried, match: {{ path: /retried }}, pool: retried }}\n",
            log.display(),
            up.addr_string(),
        )
    });
    let c = client();
    assert_eq!(
        get(&format!("http://{http}/fine"), "shop.test").status(),
        200
    );
    assert_eq!(
        get(&format!("http://{http}/gone"), "shop.test").status(),
        502
    );
    // With retries, once no backend is left: what the last try met, not Rampart's verdict.
    assert_eq!(
        get(&format!("http://{http}/retried"), "shop.test").status(),
        502
    );
    let slow = c.get(format!("http://{http}/slow?ms=3000")).send().unwrap();
    assert_eq!(slow.status(), 504);
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let _ = impatient.get(format!("http://{http}/slow?ms=200")).send();
    let answer = raw_request(&http, b"GET /x HTTP/1.1\r\nHost shop.test\r\n\r\n").unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 400 "), "{answer:?}");
    let text = log_lines(&log, 6);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "200 /fine -",
            "400 - client:InvalidHTTPHeader",
            "499 /slow client:ConnectionClosed",
            "502 /gone upstream:ConnectRefused",
            "502 /retried upstream:ConnectRefused",
            "504 /slow upstream:ReadTimedout",
        ]
    );
}
