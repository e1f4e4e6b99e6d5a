//! Active health checks take backends out and back in; connection failures are retried on
//! another backend; timeouts and dead pools give the right 5xx with the cause logged.

mod common;
use common::*;
use std::time::Duration;

fn config(backends: &[String], pool_extra: &str, project_extra: &str) -> (String, String, String) {
    let (http, admin) = (free_addr(), free_addr());
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    let yaml = format!(
        "server: {{ threads: 2 }}\nadmin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app:\n    backends: [{}]\n{pool_extra}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app{project_extra} }}\n",
        list.join(", ")
    );
    (yaml, format!("http://{http}"), admin)
}

fn backend_status(r: &Rampart, addr: &str) -> serde_json::Value {
    let s = r.status();
    s["pools"][0]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["address"] == addr)
        .cloned()
        .expect("backend in /status")
}

fn who(base: &str, n: usize) -> std::collections::HashMap<String, usize> {
    let c = client();
    let mut m = std::collections::HashMap::new();
    for _ in 0..n {
        let r = c.get(format!("{base}/x")).send().unwrap();
        assert_eq!(r.status(), 200);
        *m.entry(r.headers()["x-upstream"].to_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

/// A config of `count` pools `p0`, `p1`, ..., pool `i` written `{ pool(i) }`, and `projects`;
/// also the listener's address.
fn many_pools(count: usize, pool: impl Fn(usize) -> String, projects: &str) -> (String, String) {
    let (http, admin) = (free_addr(), free_addr());
    let mut yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n"
    );
    for i in 0..count {
        yaml += &format!("  p{i}: {{ {} }}\n", pool(i));
    }
    (yaml + "projects:\n" + projects, http)
}

#[test]
fn http_check_takes_a_backend_out_and_back_in() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let hc = "    health_check: { kind: http, path: /healthz, host: app.internal, expect_status: [200], interval: 100ms, timeout: 500ms, rise: 2, fall: 2 }";
    let (yaml, base, _) = config(&[a.addr_string(), b.addr_string()], hc, "");
    let r = Rampart::start(&yaml);
    let b_addr = b.addr_string();
    let gauge = format!("rampart_backend_healthy{{backend=\"{b_addr}\",pool=\"app\"}}");
    poll_until(Duration::from_secs(5), "first health checks", || {
        (backend_status(&r, &b_addr)["last_check_result"] == "ok").then_some(())
    });
    assert_eq!(who(&base, 10).len(), 2);

    b.set_healthy(false);
    poll_until(Duration::from_secs(5), "b to be marked down", || {
        (backend_status(&r, &b_addr)["healthy"] == false).then_some(())
    });
    let st = backend_status(&r, &b_addr);
    assert!(st["consecutive_failures"].as_u64().unwrap() >= 2, "{st}");
    assert!(
        st["last_check_result"].as_str().unwrap().contains("503"),
        "{st}"
    );
    assert!(st["last_check_ms"].as_u64().is_some(), "{st}");
    assert_eq!(r.metric(&gauge), Some(0.0));
    let hits_before = b.hits();
    let seen = who(&base, 20);
    assert_eq!(seen.get("a"), Some(&20), "{seen:?}");
    assert_eq!(b.hits(), hits_before);
    r.wait_for_log(
        &format!("backend {b_addr} is unhealthy"),
        Duration::from_secs(2),
    );

    b.set_healthy(true);
    poll_until(Duration::from_secs(5), "b to come back", || {
        (backend_status(&r, &b_addr)["healthy"] == true).then_some(())
    });
    assert_eq!(r.metric(&gauge), Some(1.0));
    assert_eq!(who(&base, 10).len(), 2, "traffic is shared again");
}

#[test]
fn tcp_check_follows_a_stopped_backend() {
    let (a, mut b) = (Upstream::start("a"), Upstream::start("b"));
    let hc = "    health_check: { kind: tcp, interval: 100ms, timeout: 300ms, rise: 1, fall: 1 }";
    let (yaml, base, _) = config(&[a.addr_string(), b.addr_string()], hc, "");
    let r = Rampart::start(&yaml);
    let b_addr = b.addr_string();
    b.stop();
    poll_until(Duration::from_secs(5), "b to be marked down", || {
        (backend_status(&r, &b_addr)["healthy"] == false).then_some(())
    });
    assert_eq!(who(&base, 10).get("a"), Some(&10));
    b.restart();
    poll_until(Duration::from_secs(5), "b to come back", || {
        (backend_status(&r, &b_addr)["healthy"] == true).then_some(())
    });
    assert_eq!(who(&base, 10).len(), 2);
}

/// A short outage marks a backend down through connection failures before the active checks
/// notice; the next good check must bring it back, in selection and in the metric.
#[test]
fn a_backend_marked_down_by_connect_failures_returns_after_a_good_check() {
    let a = Upstream::start("a");
    let mut b = Upstream::start("b");
    let (yaml, base, _) = config(
        &[a.addr_string(), b.addr_string()],
        "    retries: 1\n    health_check: { kind: tcp, interval: 200ms, timeout: 200ms, rise: 1, fall: 5 }",
        "",
    );
    let r = Rampart::start(&yaml);
    let gauge = format!(
        "rampart_backend_healthy{{backend=\"{}\",pool=\"app\"}}",
        b.addr_string()
    );
    b.stop();
    // Round robin: about half of these try b first, enough to reach `fall` connect failures.
    assert_eq!(who(&base, 20).get("a"), Some(&20));
    assert_eq!(
        r.metric(&gauge),
        Some(0.0),
        "marked down by connect failures"
    );
    b.restart();
    poll_until(Duration::from_secs(10), "b healthy again", || {
        (r.metric(&gauge) == Some(1.0)).then_some(())
    });
    poll_until(Duration::from_secs(10), "traffic back on b", || {
        who(&base, 10).contains_key("b").then_some(())
    });
}

#[test]
fn refused_connections_are_retried_on_another_backend() {
    let a = Upstream::start("a");
    let dead = free_addr();
    let (yaml, base, _) = config(
        &[dead.clone(), a.addr_string()],
        "    retries: 1\n    health_check: { kind: none, fall: 3 }",
        "",
    );
    let r = Rampart::start(&yaml);
    // Round robin sends every other request to the dead backend first: none may fail.
    assert_eq!(who(&base, 20).get("a"), Some(&20));
    assert!(
        r.metric("rampart_upstream_errors_total{kind=\"connect\",pool=\"app\"}")
            .unwrap()
            >= 3.0
    );
    // After `fall` connect failures the dead backend is taken out (passive health).
    assert_eq!(
        r.metric(&format!(
            "rampart_backend_healthy{{backend=\"{dead}\",pool=\"app\"}}"
        )),
        Some(0.0)
    );
    r.wait_for_log(
        &format!("backend {dead} marked down"),
        Duration::from_secs(2),
    );
}

#[test]
fn dead_pool_answers_502_with_the_cause_logged_and_timeouts_504() {
    let dead = free_addr();
    let (yaml, base, _) = config(
        std::slice::from_ref(&dead),
        "    retries: 0\n    health_check: { kind: none }",
        "",
    );
    let r = Rampart::start(&yaml);
    let resp = client().get(format!("{base}/x")).send().unwrap();
    assert_eq!(resp.status(), 502);
    assert!(resp.headers().contains_key("x-request-id"));
    r.wait_for_log("Connection refused", Duration::from_secs(2));
    drop(r);

    let slow = Upstream::start("slow");
    let (yaml, base, _) = config(
        &[slow.addr_string()],
        "    retries: 0\n    timeouts: { read: 300ms }",
        "",
    );
    let r = Rampart::start(&yaml);
    let resp = client().get(format!("{base}/slow?ms=3000")).send().unwrap();
    assert_eq!(resp.status(), 504);
    drop(r);

    // Timeouts of a second or more run on tokio's timers (server.fast_timeout_to_tokio_threshold_seconds
    // defaults to 0), shorter ones on Pingora's: both must fire.
    let (yaml, base, _) = config(
        &[slow.addr_string()],
        "    retries: 0\n    timeouts: { read: 1s }",
        "",
    );
    let _r = Rampart::start(&yaml);
    let asked = std::time::Instant::now();
    let resp = client()
        .get(format!("{base}/slow?ms=20000"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 504);
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "the 1 s read timeout fired after {:?}, not before the backend's answer",
        asked.elapsed()
    );
}

#[test]
fn upstream_tls_with_verification_and_h2() {
    let ca = TestCa::new();
    let cert = ca.issue(&["app.internal"]);
    let up = Upstream::start_tls("tls-up", &cert);
    let pool = format!("    tls: {{ sni: app.internal, verify: true, ca_file: \"{}\" }}\n    http2: true\n    health_check: {{ kind: http, path: /healthz, interval: 100ms }}", ca.ca_path().display());
    let (yaml, base, _) = config(&[up.addr_string()], &pool, "");
    let r = Rampart::start(&yaml);
    let echo = get_echo(&format!("{base}/over-tls"), "site.test");
    assert_eq!(echo.upstream, "tls-up");
    assert_eq!(echo.version, "HTTP/2.0", "h2 to the backend");
    poll_until(Duration::from_secs(5), "TLS health check", || {
        (backend_status(&r, &up.addr_string())["last_check_result"] == "ok").then_some(())
    });
    drop(r);

    // A backend whose certificate the CA did not sign is refused (verify: true).
    let other_ca = TestCa::new();
    let pool = format!(
        "    retries: 0\n    tls: {{ sni: app.internal, verify: true, ca_file: \"{}\" }}",
        other_ca.ca_path().display()
    );
    let (yaml, base, _) = config(&[up.addr_string()], &pool, "");
    let _r = Rampart::start(&yaml);
    assert_eq!(get(&format!("{base}/x"), "site.test").status(), 502);
}

/// Two pools on one TLS backend, each trusting its own CA: a connection one pool verified is
/// never handed to the other (Pingora's pool of idle connections does not key them by CA).
#[test]
fn pools_trusting_different_cas_never_share_connections() {
    let ca = TestCa::new();
    let other_ca = TestCa::new();
    let up = Upstream::start_tls("tls-up", &ca.issue(&["app.internal"]));
    let pool = |ca: &TestCa| {
        format!(
            "{{ backends: [\"{}\"], retries: 0, health_check: {{ kind: none }}, tls: {{ sni: app.internal, verify: true, ca_file: \"{}\" }} }}",
            up.addr_string(),
            ca.ca_path().display()
        )
    };
    let http = free_addr();
    let r = Rampart::start(&format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  trusting: {}\n  distrusting: {}\nprojects:\n  - name: site\n    hosts: [\"*\"]\n    pool: distrusting\n    rules:\n      - {{ id: t, match: {{ path_prefix: /trusting/ }}, pool: trusting }}\n",
        free_addr(),
        pool(&ca),
        pool(&other_ca)
    ));
    let base = format!("http://{http}");
    assert_eq!(
        get(&format!("{base}/distrusting/1"), "site.test").status(),
        502
    );
    assert_eq!(
        get(&format!("{base}/trusting/1"), "site.test").status(),
        200
    );
    // The trusting pool's connection is idle now; the other pool must not take it.
    assert_eq!(
        get(&format!("{base}/distrusting/2"), "site.test").status(),
        502
    );
    assert_eq!(
        get(&format!("{base}/trusting/2"), "site.test").status(),
        200
    );
    drop(r);
}

/// Without `sni`, the name the backend's certificate must carry comes from the backends'
/// shared host name (`localhost:PORT` here), and it is verified.
#[test]
fn upstream_tls_name_comes_from_the_backends_host_name() {
    use std::net::ToSocketAddrs;
    let ca = TestCa::new();
    // A host whose /etc/hosts also gives localhost `::1` makes it a second backend, where
    // nothing listens: the request then goes on to 127.0.0.1.
    let tls_pool = format!(
        "    retries: 1\n    tls: {{ verify: true, ca_file: \"{}\" }}",
        ca.ca_path().display()
    );
    let by_name = |up: &Upstream| {
        let name = format!("localhost:{}", up.addr().port());
        assert!(
            name.to_socket_addrs().unwrap().any(|a| a == up.addr()),
            "this test needs localhost to resolve to 127.0.0.1"
        );
        name
    };

    let up = Upstream::start_tls("named", &ca.issue(&["localhost"]));
    let (yaml, base, _) = config(&[by_name(&up)], &tls_pool, "");
    let r = Rampart::start(&yaml);
    assert_eq!(
        get_echo(&format!("{base}/x"), "site.test").upstream,
        "named"
    );
    drop(r);

    // A certificate for another name is refused: the inferred name is really checked.
    let other = Upstream::start_tls("other", &ca.issue(&["elsewhere.internal"]));
    let (yaml, base, _) = config(&[by_name(&other)], &tls_pool, "");
    let _r = Rampart::start(&yaml);
    assert_eq!(get(&format!("{base}/x"), "site.test").status(), 502);
}

/// A fleet's config with many checked pools: every pool's checks run in one service on one
/// thread, through one shared connector. Each pool used to get a thread, a runtime and its own
/// copy of the system's CA certificates: 300 pools took 12 s to start and 630 MB.
#[test]
fn many_checked_pools_are_checked_by_one_thread() {
    const POOLS: usize = 200;
    let live = Upstream::start("live");
    let dead = free_addr();
    let projects: String = (0..POOLS)
        .map(|i| format!("  - {{ name: s{i}, hosts: [s{i}.test], pool: p{i} }}\n"))
        .collect();
    let (yaml, http) = many_pools(
        POOLS,
        |i| {
            let backend = if i.is_multiple_of(2) {
                live.addr_string()
            } else {
                dead.clone()
            };
            let kind = if i % 4 < 2 {
                "tcp"
            } else {
                "http, path: /healthz"
            };
            format!("backends: [\"{backend}\"], health_check: {{ kind: {kind}, interval: 200ms, timeout: 500ms, rise: 1, fall: 1 }}")
        },
        &projects,
    );
    let r = Rampart::start(&yaml);
    poll_until(
        Duration::from_secs(10),
        "every pool's backend checked",
        || {
            let status = r.status();
            let pools = status["pools"].as_array().unwrap();
            pools
                .iter()
                .all(|p| {
                    let i: usize = p["name"].as_str().unwrap()[1..].parse().unwrap();
                    let b = &p["backends"][0];
                    b["last_check_ms"].is_u64() && b["healthy"] == i.is_multiple_of(2)
                })
                .then_some(())
        },
    );
    let proc_status = std::fs::read_to_string(format!("/proc/{}/status", r.pid())).unwrap();
    let field = |name: &str| -> u64 {
        let line = proc_status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert!(field("Threads:") < 30, "{proc_status}");
    assert!(field("VmRSS:") < 150 * 1024, "{proc_status}");
    assert_eq!(get(&format!("http://{http}/"), "s0.test").status(), 200);
    assert_eq!(get(&format!("http://{http}/"), "s1.test").status(), 502);
}

/// Pools on the same application servers are not all checked in the same millisecond: each
/// pool's rounds, the first included, come at its own point of the interval.
#[test]
fn pools_rounds_are_spread_over_the_interval() {
    const POOLS: usize = 10;
    let up = Upstream::start("up");
    let (yaml, _) = many_pools(
        POOLS,
        |_| {
            format!(
                "backends: [\"{}\"], health_check: {{ kind: tcp, interval: 1s, rise: 1, fall: 1 }}",
                up.addr_string()
            )
        },
        "  - { name: site, hosts: [\"*\"], pool: p0 }\n",
    );
    let r = Rampart::start(&yaml);
    let checked = |s: &serde_json::Value| -> Vec<u64> {
        s["pools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["backends"][0]["last_check_ms"].as_u64())
            .collect()
    };
    // Every pool's first round, within the first second.
    let start = poll_until(Duration::from_secs(10), "the first round", || {
        let times = checked(&r.status());
        (times.len() == POOLS).then(|| *times.iter().max().unwrap())
    });
    let times = poll_until(
        Duration::from_secs(15),
        "two more rounds of every pool",
        || {
            let times = checked(&r.status());
            times.iter().all(|&t| t > start + 2000).then_some(times)
        },
    );
    // Where in the second each pool's latest check fell, around the circle: the widest gap
    // between neighbours leaves the span they cover (~900 ms spread, ~0 all together).
    let mut phases: Vec<u64> = times.iter().map(|t| (t - start) % 1000).collect();
    phases.sort_unstable();
    let widest_gap = phases
        .windows(2)
        .map(|w| w[1] - w[0])
        .chain([phases[0] + 1000 - phases[POOLS - 1]])
        .max()
        .unwrap();
    assert!(1000 - widest_gap > 500, "checks bunched: {phases:?}");
}

/// A host out of file descriptors cannot open health-check connections: not the backends'
/// failure. They stay up (with `fail_mode: closed` every request would get 503 once the host
/// recovers, until the next good checks), and the log says why the checks did not run.
#[test]
fn checks_that_cannot_open_a_socket_do_not_mark_backends_down() {
    let up = Upstream::start("up");
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"], health_check: {{ kind: tcp, interval: 100ms, timeout: 300ms, rise: 1, fall: 1 }} }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app, fail_mode: closed }}\n",
        up.addr_string()
    );
    let r = Rampart::start_with_file_limit(tempfile::tempdir().unwrap(), &yaml, (64, 64));
    // Idle clients until Rampart has no descriptor left (the kernel still completes the
    // handshakes of those it cannot accept).
    let clients: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(&http).unwrap())
        .collect();
    let skipped = r.wait_for_log("not run: ", Duration::from_secs(10));
    assert!(skipped.contains("a problem on this host"), "{skipped}");
    drop(clients);
    poll_until(Duration::from_secs(10), "requests served again", || {
        let url = format!("http://{http}/x");
        client()
            .get(url)
            .send()
            .ok()
            .filter(|resp| resp.status() == 200)
    });
    let err = r.stderr();
    assert!(!err.contains("is unhealthy"), "{err}");
    assert!(!err.contains("marked down"), "{err}");
}

/// `server.ca_file`, the CAs trusted for backends whose pool names none, holds for the
/// health checks as for the traffic: a backend signed by it is checked healthy.
#[test]
fn tls_checks_trust_the_servers_ca_file() {
    let ca = TestCa::new();
    let up = Upstream::start_tls("tls-up", &ca.issue(&["app.internal"]));
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "server: {{ ca_file: \"{}\" }}\nadmin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app:\n    backends: [\"{}\"]\n    tls: {{ sni: app.internal, verify: true }}\n    health_check: {{ kind: http, path: /healthz, interval: 100ms, rise: 1, fall: 1 }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        ca.ca_path().display(),
        up.addr_string()
    );
    let r = Rampart::start(&yaml);
    assert_eq!(
        get_echo(&format!("http://{http}/x"), "site.test").upstream,
        "tls-up"
    );
    let status = poll_until(Duration::from_secs(5), "a TLS health check", || {
        let b = backend_status(&r, &up.addr_string());
        b["last_check_ms"].is_u64().then_some(b)
    });
    assert_eq!(status["last_check_result"], "ok", "{status}");
    assert_eq!(status["healthy"], true, "{status}");
}

/// A CA file named by many pools is read once: a 220 KB bundle named by each of 300 pools
/// was read 300 times at start (10 s, 250 MB), and as many times by `check`.
#[test]
fn a_ca_file_named_by_many_pools_is_read_once() {
    const POOLS: usize = 100;
    let ca = TestCa::new();
    let up = Upstream::start_tls("tls-up", &ca.issue(&["app.internal"]));
    // The signing CA, then a hundred others, like a distribution's bundle (first: the test
    // CAs all have one subject name, which a verifier looks issuers up by).
    let others: String = (0..100).map(|_| TestCa::new().ca_pem()).collect();
    let bundle = ca.ca_pem() + &others;
    let dir = tempfile::tempdir().unwrap();
    let bundle_path = dir.path().join("bundle.pem");
    std::fs::write(&bundle_path, &bundle).unwrap();
    let resident_with = |tls: &str| {
        let (yaml, http) = many_pools(
            POOLS,
            |_| format!("backends: [\"{}\"], tls: {tls}", up.addr_string()),
            "  - { name: site, hosts: [\"*\"], pool: p42 }\n",
        );
        let r = Rampart::start(&yaml);
        assert_eq!(
            get_echo(&format!("http://{http}/x"), "a.test").upstream,
            "tls-up"
        );
        r.metric("process_resident_memory_bytes").unwrap() / (1024.0 * 1024.0)
    };
    let with_bundle = resident_with(&format!(
        "{{ sni: app.internal, verify: true, ca_file: \"{}\" }}",
        bundle_path.display()
    ));
    let without = resident_with("{ sni: app.internal, verify: false }");
    assert!(
        with_bundle - without < 15.0,
        "{POOLS} pools naming one bundle: {with_bundle:.1} MiB, without it {without:.1} MiB"
    );
}
