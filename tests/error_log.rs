//! The error log under failure, as an operator reads it: one line per kind of failure with
//! its cause, throttled so that a dead pool under load does not flood the journal.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_dead_backend_is_logged_once_per_period_with_its_cause() {
    let dead = free_addr();
    let http = free_addr();
    let r = Rampart::start(&format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{dead}\"], retries: 0, health_check: {{ kind: none }} }}\nprojects:\n  - name: shop\n    hosts: [shop.test]\n    pool: app\n",
        free_addr()
    ));
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
