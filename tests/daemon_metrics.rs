//! A daemon (`run -d`, as the packaged unit runs Rampart) exports its own process metrics:
//! dashboards and alerts read memory, descriptors and restarts from them.

mod common;
use common::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[test]
fn a_daemon_exports_its_own_process_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    let _cleanup = KillOnDrop(started.clone());
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let (pid, _http, admin) = start_site_daemon(dir.path(), &started);
    let page = poll_until(Duration::from_secs(10), "/metrics", || {
        raw_get(&admin, "/metrics", &[])
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.text())
    });

    let start = metric_in(&page, "process_start_time_seconds")
        .unwrap_or_else(|| panic!("process_start_time_seconds: {page}"));
    assert!(
        (start - before.as_secs_f64()).abs() < 30.0,
        "the daemon's start, not another process's: {start} (test began {before:?})"
    );
    let rss = metric_in(&page, "process_resident_memory_bytes").expect("memory");
    assert!(rss > 1e6, "{rss}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(metric_in(&page, "process_threads"), Some(threads), "{page}");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;
    let open = metric_in(&page, "process_open_fds").expect("open fds");
    assert!((open - fds).abs() <= 3.0, "{open} open, /proc says {fds}");
    assert!(metric_in(&page, "process_max_fds").is_some_and(|m| m >= fds));
    assert!(metric_in(&page, "process_cpu_seconds_total").is_some_and(|s| s >= 0.0));
    assert_eq!(
        page.matches("\nprocess_resident_memory_bytes ").count(),
        1,
        "one series per metric"
    );
}
