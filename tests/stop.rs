//! Stopping (`systemctl stop`: SIGTERM) and the end of an old process after a reload: requests
//! in flight are answered and logged, and the process exits as soon as they are done rather
//! than at the end of `server.grace_period_seconds` (set to a minute here, so a process that
//! waits it out fails every test). A request still running when the grace period ends is cut,
//! and the process exits then. A SIGTERM during the 5 s Pingora waits after a hand-over is
//! acted on, once the sockets have changed hands; SIGINT keeps the lines already logged, and
//! stops at once even during a graceful stop.

mod common;
use common::*;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Long enough that waiting it out fails the tests, which allow half of it.
const GRACE_S: u64 = 60;

/// An upstream, and Rampart proxying to it with this grace period and an access log file.
fn start(grace_s: u64) -> (Upstream, Rampart, String) {
    let upstream = Upstream::start("app");
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(dir.path(), &upstream, grace_s);
    let r = Rampart::start_in(dir, &yaml);
    (upstream, r, yaml)
}

fn config(dir: &Path, upstream: &Upstream, grace_s: u64) -> String {
    let d = dir.display();
    format!(
        "server: {{ pid_file: {d}/rampart.pid, upgrade_sock: {d}/upgrade.sock, grace_period_seconds: {grace_s}, graceful_shutdown_timeout_seconds: 5 }}\nadmin: {{ listen: \"{}\" }}\naccess_log: {{ target: {d}/access.log }}\nlisteners:\n  http: {{ address: \"{}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        free_addr(),
        free_addr(),
        upstream.addr_string()
    )
}

/// A request made on a thread: its status and body, or why it failed.
type Outcome = JoinHandle<Result<(u16, String), String>>;

/// A GET of `url` on its own thread: the status and body, or the error.
fn request(url: String) -> Outcome {
    std::thread::spawn(move || {
        let resp = client()
            .get(url)
            .timeout(Duration::from_secs(30))
            .send()
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().map_err(|e| e.to_string())?))
    })
}

/// Waits until the upstream has the request and Rampart counts it in flight.
fn wait_in_flight(r: &Rampart, upstream: &Upstream, n: usize) {
    poll_until(
        Duration::from_secs(10),
        "the request to be in flight",
        || {
            let counted = r.metric("rampart_requests_in_flight") == Some(n as f64)
                && r.status()["requests_in_flight"] == n;
            (counted && upstream.in_flight() == n).then_some(())
        },
    );
}

fn access_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("access.log")).unwrap_or_default()
}

#[test]
fn sigterm_answers_and_logs_requests_in_flight_then_exits_without_waiting_the_grace_period() {
    let (upstream, mut r, _) = start(GRACE_S);
    let addr = r.listener_addr("http");
    let slow = request(format!("http://{addr}/slow?ms=1500"));
    wait_in_flight(&r, &upstream, 1);

    assert!(r.signal("TERM"));
    let stopping = Instant::now();
    poll_until(
        Duration::from_secs(10),
        "new connections to be refused",
        || std::net::TcpStream::connect(addr).is_err().then_some(()),
    );
    let (status, body) = slow
        .join()
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"upstream\":\"app\""), "{body}");

    let exit = r.wait_exit(Duration::from_secs(GRACE_S / 2));
    assert!(exit.success(), "{exit:?}");
    assert!(
        r.stderr().contains("shutdown: no request in flight"),
        "{}",
        r.stderr()
    );
    // Pingora alone dropped the log writer at SIGTERM: this line was lost.
    let log = access_log(r.dir());
    assert!(
        log.lines()
            .any(|l| l.contains("\"GET /slow?ms=1500 HTTP/1.1\" 200")),
        "access log:\n{log}"
    );
    eprintln!("stopped {:?} after SIGTERM", stopping.elapsed());
}

#[test]
fn a_request_still_running_when_the_grace_period_ends_is_cut_and_the_process_exits() {
    let (upstream, mut r, _) = start(1);
    let slow = request(r.listener_url("http") + "/slow?ms=20000");
    wait_in_flight(&r, &upstream, 1);

    assert!(r.signal("TERM"));
    let exit = r.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
    let cut = r.wait_for_log("still in flight", Duration::from_secs(1));
    assert!(
        cut.contains("grace period (1s)") && cut.contains("1 request"),
        "{cut}"
    );
    assert!(
        slow.join().unwrap().is_err(),
        "the 20 s request was not cut"
    );
}

/// A reload while `path` is in flight on the old process: returns the upstream, the old
/// process (its sockets handed over), the new one (serving), the listener's URL and the
/// request's outcome.
fn reload_during(path: &str) -> (Upstream, Rampart, Rampart, String, Outcome) {
    let (upstream, old, yaml) = start(GRACE_S);
    let base = old.listener_url("http");
    let slow = request(format!("{base}{path}"));
    wait_in_flight(&old, &upstream, 1);
    let mut new = Rampart::spawn_upgrade(&yaml, &old.dir().join("upgrade.sock"));
    assert!(old.signal("QUIT"));
    old.wait_for_log("upgrade: stopped accepting", Duration::from_secs(10));
    new.wait_ready(Duration::from_secs(10));
    (upstream, old, new, base, slow)
}

#[test]
fn after_a_reload_the_old_process_logs_its_last_request_and_exits_when_it_is_answered() {
    // Outlives Pingora's 5 s between the hand-over and the shutdown of the old process.
    let (_upstream, mut old, mut new, base, slow) = reload_during("/slow?ms=7000");
    let fresh = get(&format!("{base}/x"), "a.test");
    assert_eq!(fresh.status(), 200);

    let (status, body) = slow.join().unwrap().expect("the old process answers it");
    assert_eq!(status, 200, "{body}");
    let exit = old.wait_exit(Duration::from_secs(GRACE_S / 2));
    assert!(exit.success(), "{exit:?}");
    let log = access_log(old.dir());
    assert!(
        log.lines()
            .any(|l| l.contains("\"GET /slow?ms=7000 HTTP/1.1\" 200")),
        "access log:\n{log}"
    );
    assert!(new.is_running());
}

#[test]
fn sigint_stops_at_once_and_keeps_the_log_lines_of_the_requests_answered() {
    let (_upstream, mut r, _) = start(GRACE_S);
    let base = r.listener_url("http");
    for i in 0..20 {
        assert_eq!(get(&format!("{base}/seq/{i}"), "a.test").status(), 200);
    }
    // At once: the writer drains its queue every 50 ms, and Pingora drops it at SIGINT.
    assert!(r.signal("INT"));
    assert!(r.wait_exit(Duration::from_secs(10)).success());
    let log = access_log(r.dir());
    for i in 0..20 {
        let line = format!("\"GET /seq/{i} HTTP/1.1\" 200");
        assert!(log.contains(&line), "no {line} in the access log:\n{log}");
    }
}

/// A SIGINT to `r`, gracefully stopping with `slow` in flight: it exits at once, saying it cut
/// the request, which fails.
fn sigint_cuts(r: &mut Rampart, slow: Outcome) {
    let interrupted = Instant::now();
    assert!(r.signal("INT"));
    let exit = r.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
    assert!(interrupted.elapsed() < Duration::from_secs(5));
    let cut = r.wait_for_log("SIGINT during the graceful stop", Duration::from_secs(1));
    assert!(cut.contains("1 request(s) in flight are cut"), "{cut}");
    assert!(slow.join().unwrap().is_err(), "the slow request is cut");
}

/// A graceful stop waits for the requests in flight; a SIGINT then (a second Ctrl-C, or an
/// operator who will not wait for a long download) stops at once, as SIGINT does, cutting
/// them and keeping the access log's lines of the requests answered before.
#[test]
fn sigint_during_a_graceful_stop_stops_at_once() {
    let (upstream, mut r, _) = start(GRACE_S);
    let base = r.listener_url("http");
    assert_eq!(get(&format!("{base}/before"), "a.test").status(), 200);
    let slow = request(format!("{base}/slow?ms=20000"));
    wait_in_flight(&r, &upstream, 1);

    assert!(r.signal("TERM"));
    r.wait_for_log("Graceful shutdown", Duration::from_secs(10));
    assert!(r.is_running(), "waiting for the request in flight");
    sigint_cuts(&mut r, slow);
    let log = access_log(r.dir());
    assert!(
        log.contains("\"GET /before HTTP/1.1\" 200"),
        "access log:\n{log}"
    );
}

/// A replaced process drains its requests in flight after a reload, up to the grace period;
/// a SIGINT stops it at once, as in any graceful stop, cutting them: a long download need not
/// keep the old binary running. The new process serves on.
#[test]
fn sigint_to_a_replaced_process_draining_a_request_stops_it_at_once() {
    let (_upstream, mut old, _new, base, slow) = reload_during("/slow?ms=30000");
    // Past Pingora's 5 s close timeout: its shutdown has begun and waits for the request.
    old.wait_for_log("Broadcasting graceful shutdown", Duration::from_secs(15));
    assert!(old.is_running(), "waiting for the request in flight");
    sigint_cuts(&mut old, slow);
    assert_eq!(get(&format!("{base}/x"), "a.test").status(), 200);
}

/// A reload whose old process gets SIGTERM (what `systemctl stop` right after a reload sends
/// to every process of the service) once its log shows `then`; returns the upstream, the old
/// process, exited with success (its directory holds the new one's files), and the new one.
fn sigterm_during_a_reload(then: &str) -> (Upstream, Rampart, Rampart) {
    let (upstream, mut old, yaml) = start(GRACE_S);
    let new = Rampart::spawn_upgrade(&yaml, &old.dir().join("upgrade.sock"));
    assert!(old.signal("QUIT"));
    old.wait_for_log(then, Duration::from_secs(10));
    assert!(old.signal("TERM"));
    assert!(old.wait_exit(Duration::from_secs(GRACE_S / 2)).success());
    (upstream, old, new)
}

#[test]
fn sigterm_to_a_replaced_process_stops_it_before_pingoras_close_timeout_ends() {
    let (_upstream, old, mut new) = sigterm_during_a_reload("upgrade: stopped accepting");
    let stderr = old.stderr();
    // Pingora's own shutdown begins 5 s after the hand-over: the process was gone before.
    assert!(stderr.contains("upgrade: asked to stop"), "{stderr}");
    assert!(
        !stderr.contains("Broadcasting graceful shutdown"),
        "{stderr}"
    );
    new.wait_ready(Duration::from_secs(10));
}

#[test]
fn sigterm_right_after_sigquit_still_hands_the_sockets_over() {
    // Once the upgrade has begun (before that the signals race, and SIGTERM may win: a stop).
    let (_upstream, old, mut new) = sigterm_during_a_reload("SIGQUIT received");
    let stderr = old.stderr();
    assert!(stderr.contains("upgrade: stopped accepting"), "{stderr}");
    // The old process is gone: the new one has the sockets, or nothing would answer.
    new.wait_ready(Duration::from_secs(10));
    let url = format!("{}/x", new.listener_url("http"));
    assert_eq!(get(&url, "a.test").status(), 200);
}
