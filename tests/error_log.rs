//! The error log under failure, as an operator reads it: one line per kind of failure with
//! its cause, throttled so that a dead pool under load does not flood the journal.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

/// Project `shop` (`shop.test`) on a pool of one backend address nothing listens on, with
/// `retries`; returns Rampart, that address and the listener's.
fn shop_on_a_dead_backend(retries: usize) -> (Rampart, String, String) {
    let dead = free_addr();
    let http = free_addr();
    let r = Rampart::start(&format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{dead}\"], retries: {retries}, health_check: {{ kind: none }} }}\nprojects:\n  - name: shop\n    hosts: [shop.test]\n    pool: app\n",
        free_addr()
    ));
    (r, dead, http)
}

#[test]
fn a_dead_backend_is_logged_once_per_period_with_its_cause() {
    let (r, dead, http) = shop_on_a_dead_backend(0);
    let started = Instant::now();
    for _ in 0..40 {
        assert_eq!(get(&format!("http://{http}/x"), "shop.test").status(), 502);
    }
    // One line per period (5 s) and kind; a slow machine may have crossed a period.
    let allowed = 1 + started.elapsed().as_secs() as usize / 5;
    r.wait_for_log("answered 502", Duration::from_secs(5));
    let log = r.stderr();
    let connect = format!("pool app: cannot connect to {dead}: ConnectRefused (Connection refused");
    assert!((1..=allowed).contains(&lines_with(&log, &connect)), "{log}");
    let failed =
        format!("project shop: GET /x answered 502 after 1 try: backend {dead}: ConnectRefused");
    assert!((1..=allowed).contains(&lines_with(&log, &failed)), "{log}");
    // Pingora's own lines (a WARN per retry, an ERROR per failure) are left out.
    assert_eq!(lines_with(&log, "Fail to proxy"), 0, "{log}");

    // After the period, the next line says how many were left out.
    let summary = poll_until(
        Duration::from_secs(15),
        "a line counting the held ones",
        || {
            get(&format!("http://{http}/x"), "shop.test");
            let log = r.stderr();
            log.lines()
                .find(|l| {
                    l.contains(&failed) && l.contains("more like this since the previous one")
                })
                .map(str::to_string)
        },
    );
    assert!(
        summary.ends_with("more like this since the previous one]"),
        "{summary}"
    );
}

/// A throttled line holds back lines of its own kind only: a backend that times out and then
/// refuses connections gets a line for each within one throttle period (5 s), so the log
/// shows what changed.
#[test]
fn a_new_kind_of_failure_is_logged_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    // Takes the one connection of the first request and never answers it.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let silent = {
        let listener = listener.try_clone().unwrap();
        std::thread::spawn(move || {
            let held = listener.accept();
            let _ = released.recv();
            drop(held);
        })
    };
    let http = free_addr();
    let r = Rampart::start(&format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{backend}\"], retries: 0, timeouts: {{ read: 500ms }}, health_check: {{ kind: none }} }}\nprojects:\n  - name: shop\n    hosts: [shop.test]\n    pool: app\n",
        free_addr()
    ));
    let started = Instant::now();
    assert_eq!(get(&format!("http://{http}/x"), "shop.test").status(), 504);
    let timed_out =
        format!("project shop: GET /x answered 504 after 1 try: backend {backend}: ReadTimedout");
    r.wait_for_log(&timed_out, Duration::from_secs(5));
    // Now nothing listens there: refused.
    release.send(()).unwrap();
    silent.join().unwrap();
    drop(listener);
    assert_eq!(get(&format!("http://{http}/x"), "shop.test").status(), 502);
    let refused =
        format!("project shop: GET /x answered 502 after 1 try: backend {backend}: ConnectRefused");
    r.wait_for_log(&refused, Duration::from_secs(3));
    // Both within one throttle period (5 s), or the test shows nothing.
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Sends `head` and resets the connection at once (SO_LINGER 0), as a browser closing a tab.
fn send_and_reset(addr: &str, head: &str) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    // No std API for SO_LINGER: through libc.
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let fd = std::os::unix::io::AsRawFd::as_raw_fd(&s);
    let set = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0);
}

#[test]
fn what_clients_cause_is_logged_at_info_throttled_and_without_tokens() {
    let ca = TestCa::new();
    let cert = ca.issue(&["site.test"]);
    let up = Upstream::start("up");
    let (https, admin) = (free_addr(), free_addr());
    let r = Rampart::start(&format!(
        "admin: {{ listen: \"{admin}\", token: s3cr3t }}\naccess_log: {{ target: off }}\nlisteners:\n  https: {{ address: \"{https}\", tls: {{ cert: \"{}\", key: \"{}\" }} }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        cert.cert(),
        cert.key(),
        up.addr_string()
    ));

    // Plain HTTP to the TLS port, ten times: a failed handshake each, one line.
    for _ in 0..10 {
        let _ = raw_get(&https, "/", &[]);
    }
    let line = r.wait_for_log("Downstream handshake error", Duration::from_secs(5));
    assert!(line.contains(" INFO "), "{line}");
    assert_eq!(
        lines_with(&r.stderr(), "Downstream handshake error"),
        1,
        "{}",
        r.stderr()
    );

    // A browser leaving the dashboard while it loads: Pingora logs the request line.
    let head = format!("GET /dashboard?token=s3cr3t&x=1 HTTP/1.1\r\nHost: {admin}\r\n\r\n");
    let line = poll_until(
        Duration::from_secs(10),
        "a cut dashboard answer in the log",
        || {
            send_and_reset(&admin, &head);
            let log = r.stderr();
            log.lines()
                .find(|l| l.contains("/dashboard?token="))
                .map(str::to_string)
        },
    );
    assert!(line.contains("/dashboard?token=<redacted>&x=1"), "{line}");
    assert!(!r.stderr().contains("s3cr3t"), "{}", r.stderr());
    assert!(line.contains(" INFO "), "{line}");
}

/// A backend whose answer cannot be parsed makes Pingora quote the whole buffer it read, and
/// a request's target can be tens of kilobytes: the error log's line quotes a few hundred
/// bytes of the buffer and stays within 2 KiB (as nginx's error log), saying how much was cut.
#[test]
fn a_huge_malformed_answer_and_a_long_target_make_a_short_line() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    // Answers each request with a head that never ends: 30 000 headers of 100 bytes.
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n");
                let filler = format!("X-Filler: {}\r\n", "a".repeat(88));
                for _ in 0..30_000 {
                    if conn.write_all(filler.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let http = free_addr();
    let r = Rampart::start(&format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{backend}\"], retries: 0, health_check: {{ kind: none }} }}\nprojects:\n  - name: shop\n    hosts: [shop.test]\n    pool: app\n  - name: blog\n    hosts: [blog.test]\n    pool: app\n",
        free_addr()
    ));
    let long_target = format!("/search?q={}", "b".repeat(20_000));
    assert_eq!(
        get(&format!("http://{http}{long_target}"), "shop.test").status(),
        502
    );
    let line = r.wait_for_log("project shop: GET /search?q=bbb", Duration::from_secs(5));
    assert!(line.len() < 2048 + 200, "{} bytes: {line}", line.len());
    assert!(line.ends_with(" more bytes]"), "{line}");

    // With a short target (and another project: the same failure in the same project is held
    // back for 5 s), the backend's buffer is quoted in its first few hundred bytes.
    assert_eq!(
        get(&format!("http://{http}/short"), "blog.test").status(),
        502
    );
    let line = r.wait_for_log("project blog: GET /short", Duration::from_secs(5));
    let quoted = line
        .split("InvalidHTTPHeader (buf: HTTP/1.1 200 OK")
        .nth(1)
        .unwrap_or_else(|| panic!("the buffer quoted: {line}"));
    assert!(quoted.len() < 400, "{} bytes quoted: {line}", line.len());
    assert!(quoted.contains("... ["), "{line}");
}

/// A daemon's `server.error_log` renamed by logrotate (the packaged rule covers
/// `/var/log/rampart/*.log`, with `nocreate`): the next lines go to a new file at the path,
/// which says so first, instead of on into the rotated file.
#[test]
fn a_rotated_error_log_is_followed_to_a_new_file() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let started = Arc::new(Mutex::new(Vec::new()));
    let _cleanup = KillOnDrop(started.clone());
    let (pid, _http, _admin) = start_site_daemon(dir.path(), &started);
    let log = dir.path().join("error.log");
    let rotated = dir.path().join("error.log.1");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    poll_until(Duration::from_secs(10), "the start line", || {
        read(&log).contains("starting: listeners").then_some(())
    });

    assert!(
        !read(&log).contains("was moved or removed"),
        "no rotation at start: {}",
        read(&log)
    );
    std::fs::rename(&log, &rotated).unwrap();
    // Each SIGHUP logs a line (a rules reload); within a second of the rename one of them
    // finds the path gone and opens it again.
    poll_until(Duration::from_secs(10), "a new error.log", || {
        signal("-HUP", pid);
        std::thread::sleep(Duration::from_millis(100));
        read(&log)
            .contains("SIGHUP: reloading rules files")
            .then_some(())
    });
    let new = read(&log);
    let first = new.lines().next().unwrap_or_default();
    assert!(
        first.contains(&format!(
            "error log: {d}/error.log was moved or removed (rotated?); writing to a new file there"
        )),
        "{new}"
    );
    assert!(read(&rotated).contains("starting: listeners"));
}

/// `server.error_log` only applies to a daemon (Pingora opens it as the daemon's stderr): a
/// process run in the foreground says where its log goes instead of leaving the file empty
/// without a word.
#[test]
fn an_error_log_without_daemon_mode_is_named_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let error_log = dir.path().join("error.log");
    let yaml = format!(
        "server: {{ error_log: {} }}\nadmin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{}\" }}\npools:\n  app: {{ backends: [\"{}\"], health_check: {{ kind: none }} }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        error_log.display(),
        free_addr(),
        free_addr(),
        free_addr()
    );
    let r = Rampart::start_in(dir, &yaml);
    let line = r.wait_for_log("server.error_log", Duration::from_secs(5));
    assert!(
        line.contains(&format!(
            "WARN  rampart::server] server.error_log ({}) is for `run -d` only: this process logs to stderr",
            error_log.display()
        )),
        "{line}"
    );
    assert!(!error_log.exists(), "nothing is written there");
}

/// A pool's only backend refusing connections: `retries` has no other backend to use, so the
/// lines say what that backend met, and none promises another try.
#[test]
fn a_lone_dead_backend_is_not_said_to_be_retried() {
    let (r, dead, http) = shop_on_a_dead_backend(2);
    assert_eq!(get(&format!("http://{http}/x"), "shop.test").status(), 502);
    let failed =
        format!("project shop: GET /x answered 502 after 1 try: backend {dead}: ConnectRefused");
    r.wait_for_log(&failed, Duration::from_secs(5));
    let log = r.stderr();
    let connect = format!("pool app: cannot connect to {dead}: ConnectRefused (Connection refused");
    assert_eq!(lines_with(&log, &connect), 1, "{log}");
    assert_eq!(lines_with(&log, "trying another backend"), 0, "{log}");
}
