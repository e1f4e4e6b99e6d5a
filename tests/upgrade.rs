//! Graceful upgrade as systemd's reload does it: a new `rampart run -u -d` takes the listening
//! sockets over `server.upgrade_sock`, the old process gets SIGQUIT and drains; no request
//! fails. A new process with a broken config exits non-zero and the old one keeps serving.

mod common;
use common::*;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

fn read_pid(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Kills whatever the pid file names when the test ends, passed or failed: daemons are not
/// our children and would outlive the test otherwise.
struct KillOnDrop(std::path::PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = read_pid(&self.0) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[test]
fn upgrades_under_load_lose_no_request_and_a_broken_config_changes_nothing() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "server: {{ threads: 2, pid_file: {d}/rampart.pid, upgrade_sock: {d}/upgrade.sock, grace_period_seconds: 1, graceful_shutdown_timeout_seconds: 2, error_log: {d}/error.log }}\nadmin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        up.addr_string()
    );
    let config = dir.path().join("rampart.yaml");
    std::fs::write(&config, &yaml).unwrap();
    let pid_file = dir.path().join("rampart.pid");
    let _cleanup = KillOnDrop(pid_file.clone());
    let run = |args: &[&str], cfg: &std::path::Path| {
        Command::new(rampart_bin())
            .args(args)
            .arg("-c")
            .arg(cfg)
            .status()
            .unwrap()
    };

    assert!(run(&["run", "-d"], &config).success(), "daemon start");
    let first = poll_until(Duration::from_secs(10), "the pid file", || {
        read_pid(&pid_file)
    });
    let base = format!("http://{http}");
    poll_until(Duration::from_secs(10), "serving", || {
        client()
            .get(format!("{base}/"))
            .send()
            .ok()
            .filter(|r| r.status() == 200)
    });

    // Load: one keep-alive client and one opening a new connection per request.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let retried = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = [true, false]
        .into_iter()
        .map(|keep_alive| {
            let (stop, done, failures, base, retried) = (
                stop.clone(),
                done.clone(),
                failures.clone(),
                base.clone(),
                retried.clone(),
            );
            std::thread::spawn(move || {
                let shared = client();
                while !stop.load(Relaxed) {
                    let c = if keep_alive {
                        shared.clone()
                    } else {
                        reqwest::blocking::Client::builder()
                            .pool_max_idle_per_host(0)
                            .no_proxy()
                            .build()
                            .unwrap()
                    };
                    let mut result = c.get(format!("{base}/x")).send();
                    // A keep-alive connection the old process closes while idle can race with
                    // a request sent on it (RFC 9112 §9.3.1): clients retry such idempotent
                    // requests on a new connection, as browsers do. Counted, and retried once.
                    if keep_alive && result.as_ref().is_err_and(|e| e.is_request()) {
                        retried.fetch_add(1, Relaxed);
                        result = c.get(format!("{base}/x")).send();
                    }
                    match result {
                        Ok(r) if r.status() == 200 => {
                            done.fetch_add(1, Relaxed);
                        }
                        Ok(r) => failures
                            .lock()
                            .unwrap()
                            .push(format!("status {}", r.status())),
                        Err(e) => failures.lock().unwrap().push(format!("{e:?}")),
                    }
                }
            })
        })
        .collect();

    let mut old = first;
    for round in 0..3 {
        assert!(
            run(&["run", "-u", "-d"], &config).success(),
            "round {round}: new process starts"
        );
        Command::new("kill")
            .args(["-QUIT", &old.to_string()])
            .status()
            .unwrap();
        let new = poll_until(
            Duration::from_secs(10),
            "the pid file to name the new process",
            || read_pid(&pid_file).filter(|p| *p != old),
        );
        poll_until(
            Duration::from_secs(15),
            "the old process to drain and exit",
            || (!alive(old)).then_some(()),
        );
        assert!(alive(new));
        old = new;
    }

    // A broken config: the new process refuses to start, the old one is untouched.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, yaml.replace("pools:", "poolz:")).unwrap();
    let status = run(&["run", "-u", "-d"], &broken);
    assert!(!status.success(), "a broken config must not start");
    assert_eq!(read_pid(&pid_file), Some(old));
    assert!(alive(old));

    let before = done.load(Relaxed);
    poll_until(
        Duration::from_secs(5),
        "traffic after the broken reload",
        || (done.load(Relaxed) > before + 20).then_some(()),
    );
    stop.store(true, Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    Command::new("kill")
        .args(["-INT", &old.to_string()])
        .status()
        .unwrap();
    poll_until(Duration::from_secs(10), "the last process to exit", || {
        (!alive(old)).then_some(())
    });
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed requests of {}: {:?}",
        failures.len(),
        done.load(Relaxed),
        &failures[..failures.len().min(5)]
    );
    assert!(done.load(Relaxed) > 100, "the load ran");
    eprintln!("{} requests, {} keep-alive requests retried after the old process closed an idle connection", done.load(Relaxed), retried.load(Relaxed));
}
