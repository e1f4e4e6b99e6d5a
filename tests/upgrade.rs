//! Reload as systemd does it (`ExecReload`: `rampart check`, then `rampart run -u -d`, then
//! SIGQUIT to the old main process), ten times in a row and twice back to back under continuous load: keep-alive
//! clients, a client opening a new connection per request, and slow requests in flight. No
//! request may fail or be reset (no client retries), new connections are not held up while the
//! sockets change hands, every slow request completes, the pid file
//! always names a live process and, once a reload is done, the process that answers. A reload
//! with a broken config, or adding a listener on an address another process holds, then
//! changes nothing.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the load saw: completed requests per kind, and every failure.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    ok: [AtomicUsize; 3],
    slow_started: AtomicUsize,
    /// The longest a request on a new connection took, in milliseconds.
    longest_new_connection_ms: AtomicUsize,
    /// Requests on a new connection that took [`STALLED`] or more.
    stalled_new_connections: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

const KEEP_ALIVE: usize = 0;
const NEW_CONNECTION: usize = 1;
const SLOW: usize = 2;

impl Load {
    /// One client thread: `kind` chooses the connection handling and the path.
    fn spawn(self: &Arc<Self>, kind: usize, base: String) -> std::thread::JoinHandle<()> {
        let load = self.clone();
        std::thread::spawn(move || {
            let keep_alive = client();
            while !load.stop.load(Relaxed) {
                let (c, path) = match kind {
                    NEW_CONNECTION => (
                        reqwest::blocking::Client::builder()
                            .pool_max_idle_per_host(0)
                            .no_proxy()
                            .build()
                            .unwrap(),
                        "/x",
                    ),
                    SLOW => (keep_alive.clone(), "/slow?ms=1200"),
                    _ => (keep_alive.clone(), "/x"),
                };
                if kind == SLOW {
                    load.slow_started.fetch_add(1, Relaxed);
                }
                let sent = std::time::Instant::now();
                let result = c
                    .get(format!("{base}{path}"))
                    .timeout(Duration::from_secs(20))
                    .send();
                if kind == NEW_CONNECTION {
                    let took = sent.elapsed();
                    load.longest_new_connection_ms
                        .fetch_max(took.as_millis() as usize, Relaxed);
                    if took >= STALLED {
                        load.stalled_new_connections.fetch_add(1, Relaxed);
                    }
                }
                match result {
                    Ok(r) if r.status() == 200 => {
                        load.ok[kind].fetch_add(1, Relaxed);
                    }
                    Ok(r) => load
                        .failures
                        .lock()
                        .unwrap()
                        .push(format!("{path}: status {}", r.status())),
                    Err(e) => load.failures.lock().unwrap().push(format!(
                        "kind {kind} {path} at {:?}: {e:?}",
                        std::time::SystemTime::now()
                    )),
                }
            }
        })
    }

    fn completed(&self) -> usize {
        self.ok.iter().map(|c| c.load(Relaxed)).sum()
    }
}

struct Host {
    dir: tempfile::TempDir,
    config: PathBuf,
    pid_file: PathBuf,
    admin: String,
}

impl Host {
    /// `systemctl reload`: check, start the new process taking the sockets over, quit the old.
    /// Returns whether the sequence succeeded (systemd stops at the first failing command).
    fn reload(&self, config: &Path, main_pid: u32) -> bool {
        let ok = |args: &[&str]| {
            Command::new(rampart_bin())
                .args(args)
                .arg("-c")
                .arg(config)
                .output()
                .unwrap()
                .status
                .success()
        };
        if !ok(&["check"]) || !ok(&["run", "-u", "-d"]) {
            return false;
        }
        signal("-QUIT", main_pid);
        true
    }

    /// The pid of the process that answered `/status` on a new connection.
    fn answering_pid(&self) -> Option<u32> {
        let body = reqwest::blocking::Client::builder()
            .pool_max_idle_per_host(0)
            .no_proxy()
            .build()
            .ok()?
            .get(format!("http://{}/status", self.admin))
            .send()
            .ok()?
            .json::<serde_json::Value>()
            .ok()?;
        body["pid"].as_u64().map(|p| p as u32)
    }
}

/// Writes `yaml` to `config` and runs `rampart run -u` on it, which must fail: its stderr.
fn refused_upgrade(config: &Path, yaml: &str) -> String {
    std::fs::write(config, yaml).unwrap();
    let out = Command::new(rampart_bin())
        .args(["run", "-u", "-d", "-c"])
        .arg(config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    stderr
}

#[test]
fn ten_reloads_under_load_lose_no_request_and_a_broken_reload_changes_nothing() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "server: {{ threads: 2, pid_file: {d}/rampart.pid, upgrade_sock: {d}/upgrade.sock, grace_period_seconds: 3, graceful_shutdown_timeout_seconds: 2, error_log: {d}/error.log }}\nadmin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        up.addr_string()
    );
    let host = Host {
        config: dir.path().join("rampart.yaml"),
        pid_file: dir.path().join("rampart.pid"),
        admin,
        dir,
    };
    std::fs::write(&host.config, &yaml).unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    let _cleanup = KillOnDrop(started.clone());

    let status = Command::new(rampart_bin())
        .args(["run", "-d", "-c"])
        .arg(&host.config)
        .status()
        .unwrap();
    assert!(status.success(), "daemon start");
    let mut main_pid = poll_until(Duration::from_secs(10), "the pid file", || {
        read_pid(&host.pid_file)
    });
    started.lock().unwrap().push(main_pid);
    let base = format!("http://{http}");
    poll_until(Duration::from_secs(10), "serving", || {
        (host.answering_pid() == Some(main_pid)).then_some(())
    });

    let load = Arc::new(Load::default());
    let mut workers: Vec<_> = [KEEP_ALIVE, KEEP_ALIVE, NEW_CONNECTION, SLOW, SLOW, SLOW]
        .into_iter()
        .map(|kind| load.spawn(kind, base.clone()))
        .collect();
    // The pid file must name a live process at every moment, reloads included.
    let pid_file = host.pid_file.clone();
    let sampler_load = load.clone();
    workers.push(std::thread::spawn(move || {
        while !sampler_load.stop.load(Relaxed) {
            match read_pid(&pid_file) {
                Some(pid) if alive(pid) => {}
                other => sampler_load
                    .failures
                    .lock()
                    .unwrap()
                    .push(format!("pid file names {other:?}, not a live process")),
            }
            std::thread::sleep(Duration::from_millis(10)); // sampling period, not a sync
        }
    }));
    poll_until(Duration::from_secs(10), "slow requests in flight", || {
        (up.in_flight() >= 3).then_some(())
    });

    let mut old_pids = Vec::new();
    for round in 0..10 {
        assert!(host.reload(&host.config, main_pid), "round {round}: reload");
        let new = read_pid(&host.pid_file).unwrap();
        assert_ne!(
            new, main_pid,
            "round {round}: the pid file names the new process"
        );
        started.lock().unwrap().push(new);
        // Done when the new process answers (the old one still does while it drains).
        poll_until(Duration::from_secs(10), "the new process to answer", || {
            (host.answering_pid() == Some(new)).then_some(())
        });
        old_pids.push(main_pid);
        main_pid = new;
        let before = load.completed();
        poll_until(Duration::from_secs(10), "traffic after the reload", || {
            (load.completed() > before + 10).then_some(())
        });
    }
    // Two reloads back to back (a reload, then a package upgrade, say): the second new process
    // replaces one that may still be taking the sockets from its own predecessor, and waits
    // for it instead of failing or leaving no process to hand the sockets on.
    for round in 10..12 {
        assert!(
            host.reload(&host.config, main_pid),
            "round {round}: back-to-back reload"
        );
        let new = read_pid(&host.pid_file).unwrap();
        started.lock().unwrap().push(new);
        old_pids.push(main_pid);
        main_pid = new;
    }
    poll_until(
        Duration::from_secs(10),
        "the last new process to answer",
        || (host.answering_pid() == Some(main_pid)).then_some(()),
    );
    for old in &old_pids {
        poll_until(
            Duration::from_secs(30),
            "every old process to drain and exit",
            || (!alive(*old)).then_some(()),
        );
    }
    assert_eq!(read_pid(&host.pid_file), Some(main_pid));
    assert_eq!(
        host.answering_pid(),
        Some(main_pid),
        "only the last process serves"
    );

    // A broken config: the reload stops at `check`; without `check`, `run -u` refuses too.
    let broken = host.dir.path().join("broken.yaml");
    std::fs::write(&broken, yaml.replace("pools:", "poolz:")).unwrap();
    assert!(
        !host.reload(&broken, main_pid),
        "a broken config must not reload"
    );
    let direct = Command::new(rampart_bin())
        .args(["run", "-u", "-d", "-c"])
        .arg(&broken)
        .status()
        .unwrap();
    assert!(!direct.success(), "a broken config must not start");
    assert_eq!(read_pid(&host.pid_file), Some(main_pid));
    assert!(alive(main_pid));

    // A reload adding a listener on an address another process holds is refused by `run -u`
    // itself, before SIGQUIT; the old process's own addresses are not mistaken for taken ones.
    let taken = bind_unused();
    let taken_addr = taken.local_addr().unwrap();
    let adding = host.dir.path().join("adding.yaml");
    let stderr = refused_upgrade(
        &adding,
        &yaml.replace(
            "listeners:\n",
            &format!("listeners:\n  extra: {{ address: \"{taken_addr}\" }}\n"),
        ),
    );
    assert!(
        stderr.contains(&format!(
            "listeners.extra.address: cannot listen on {taken_addr}: Address already in use"
        )) && stderr.contains("not the rampart being replaced"),
        "{stderr}"
    );
    assert!(!host.reload(&adding, main_pid), "the reload stops there");
    assert_eq!(read_pid(&host.pid_file), Some(main_pid));
    assert!(alive(main_pid));
    drop(taken);
    // Widening the listener to the wildcard on its port: the old process's own socket is in
    // the way, and the message says so (not "another process").
    let port = http.rsplit_once(':').unwrap().1;
    let widening = host.dir.path().join("widening.yaml");
    let widened = format!("address: \"0.0.0.0:{port}\"");
    let stderr = refused_upgrade(
        &widening,
        &yaml.replace(&format!("address: \"{http}\""), &widened),
    );
    assert!(
        stderr.contains(&format!(
            "listeners.http.address: cannot listen on 0.0.0.0:{port}: Address already in use"
        )) && stderr.contains(&format!(
            "(the rampart being replaced listens on {http}, the same port"
        )) && stderr.contains("systemctl restart rampart"),
        "{stderr}"
    );
    assert_eq!(read_pid(&host.pid_file), Some(main_pid));
    assert!(alive(main_pid));
    let before = load.completed();
    poll_until(
        Duration::from_secs(10),
        "traffic after the broken reload",
        || (load.completed() > before + 20).then_some(()),
    );

    load.stop.store(true, Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    signal("-INT", main_pid);
    poll_until(Duration::from_secs(10), "the last process to exit", || {
        (!alive(main_pid)).then_some(())
    });
    // Neither Rampart's pid file nor Pingora's copies of it (`.daemon`, `.daemon.old`).
    let left: Vec<_> = std::fs::read_dir(host.dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("rampart.pid"))
        .collect();
    assert!(left.is_empty(), "left after the last process: {left:?}");
    let failures = load.failures.lock().unwrap();
    let [keep_alive, new_conn, slow] =
        [KEEP_ALIVE, NEW_CONNECTION, SLOW].map(|k| load.ok[k].load(Relaxed));
    let longest = load.longest_new_connection_ms.load(Relaxed);
    eprintln!("completed: {keep_alive} keep-alive, {new_conn} new-connection, {slow} slow requests over 12 reloads; longest new-connection request {longest} ms, {} over {STALLED:?}", load.stalled_new_connections.load(Relaxed));
    let log = std::fs::read_to_string(host.dir.path().join("error.log")).unwrap_or_default();
    assert_eq!(
        log.matches("upgrade: stopped accepting on 2 listening sockets")
            .count(),
        12,
        "each old process stops accepting (proxy and admin listeners) after the hand-over:\n{log}"
    );
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(
        slow,
        load.slow_started.load(Relaxed),
        "every slow request completed"
    );
    let stalled = load.stalled_new_connections.load(Relaxed);
    assert!(
        stalled < 6,
        "{stalled} requests on new connections waited over {STALLED:?} (12 reloads): the old process stops accepting before the new one takes the sockets"
    );
    assert!(
        keep_alive > 100 && new_conn > 50 && slow > 20,
        "the load ran"
    );
}

/// A SIGQUIT with no new process waiting for the listening sockets (a stray `kill -QUIT`, or a
/// reload whose new process died) is logged and ignored: the process keeps accepting and
/// serving. Pingora alone would stop accepting, fail the hand-over and exit.
#[test]
fn a_stray_sigquit_is_ignored_and_serving_goes_on() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("upgrade.sock");
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "server: {{ upgrade_sock: \"{}\" }}\nadmin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        sock.display(),
        up.addr_string()
    );
    let mut r = Rampart::start_in(dir, &yaml);
    let keep_alive = client();
    let url = format!("http://{http}/before");
    assert_eq!(keep_alive.get(&url).send().unwrap().status(), 200);

    assert!(r.signal("QUIT"));
    let log = r.wait_for_log("SIGQUIT ignored", Duration::from_secs(20));
    assert!(
        log.contains(&sock.display().to_string()),
        "the warning names the socket it waited on:\n{log}"
    );
    assert!(r.is_running(), "the process must not stop:\n{log}");
    assert!(!log.contains("stopped accepting"), "{log}");
    // New connections are accepted, and the kept-alive one is still served without a close.
    let fresh = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            fresh
                .get(format!("http://{http}/after"))
                .send()
                .unwrap()
                .status(),
            200
        );
    }
    let resp = keep_alive.get(&url).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_ne!(
        resp.headers()
            .get("connection")
            .map(|v| v.to_str().unwrap()),
        Some("close"),
        "not draining"
    );
    // SIGTERM still stops it.
    assert!(r.signal("TERM"));
    assert!(r.wait_exit(Duration::from_secs(30)).success());
}

/// In the foreground Pingora writes no pid file; Rampart does, so that scripts (and `run -u`'s
/// check of the addresses the old process holds) find the serving process, and removes it when
/// the process exits.
#[test]
fn a_foreground_process_writes_its_pid_file_and_removes_it_at_exit() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("rampart.pid");
    let yaml = format!(
        "server: {{ pid_file: \"{}\", grace_period_seconds: 1, graceful_shutdown_timeout_seconds: 1 }}\nadmin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        pid_file.display(),
        free_addr(),
        free_addr(),
        up.addr_string()
    );
    let dir_path = dir.path().to_path_buf();
    let mut r = Rampart::start_in(dir, &yaml);
    let pid = r.pid();
    poll_until(Duration::from_secs(10), "the pid file", || {
        (read_pid(&pid_file) == Some(pid)).then_some(())
    });
    assert!(r.signal("TERM"));
    assert!(r.wait_exit(Duration::from_secs(30)).success());
    assert!(
        !pid_file.exists(),
        "the pid file outlived the process that wrote it"
    );

    // The fast stop (SIGINT, Ctrl-C) removes it too.
    let keep = tempfile::tempdir().unwrap();
    let yaml = yaml.replace(
        &dir_path.display().to_string(),
        &keep.path().display().to_string(),
    );
    let pid_file = keep.path().join("rampart.pid");
    let mut r = Rampart::start_in(keep, &yaml);
    let pid = r.pid();
    poll_until(Duration::from_secs(10), "the pid file", || {
        (read_pid(&pid_file) == Some(pid)).then_some(())
    });
    assert!(r.signal("INT"));
    r.wait_exit(Duration::from_secs(30));
    assert!(!pid_file.exists(), "SIGINT left the pid file");
}

/// A SIGQUIT to a new process still taking the sockets over (say a `kill -QUIT` of the pid
/// file's process in the second after a reload) is ignored, and the reload completes. That
/// process listens on the upgrade socket itself, so it looked like "a new process waiting";
/// Pingora, with no sockets to send, then exited, possibly with the old process's sockets on
/// their way to it.
#[test]
fn a_sigquit_to_a_process_taking_the_sockets_over_is_ignored() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let yaml = format!(
        "server: {{ pid_file: {d}/rampart.pid, upgrade_sock: {d}/upgrade.sock, grace_period_seconds: 30 }}\nadmin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        free_addr(),
        free_addr(),
        up.addr_string()
    );
    let mut old = Rampart::start_in(dir, &yaml);
    let mut new = Rampart::spawn_upgrade(&yaml, &old.dir().join("upgrade.sock"));
    // Pingora may not watch signals yet: its main loop can start only once the sockets have
    // arrived. Either way the signal is ignored, at once or then.
    assert!(new.signal("QUIT"));

    // The reload goes on: the old process hands the sockets over and the new one serves.
    assert!(old.signal("QUIT"));
    new.wait_ready(Duration::from_secs(10));
    old.wait_for_log("upgrade: stopped accepting", Duration::from_secs(10));
    let served_by = |r: &Rampart| r.status()["pid"].as_u64();
    poll_until(Duration::from_secs(10), "the new process to answer", || {
        (served_by(&new) == Some(u64::from(new.pid()))).then_some(())
    });
    assert!(old.wait_exit(Duration::from_secs(20)).success());
    // With the old process gone, the new one alone accepts and serves. (Taking the signal as
    // its own upgrade, it stopped accepting once it had the sockets, then exited.)
    let url = format!("{}/x", new.listener_url("http"));
    assert_eq!(get(&url, "a.test").status(), 200);
    assert!(new.is_running());
    new.wait_for_log("SIGQUIT ignored", Duration::from_secs(5));
    assert!(
        !new.stderr().contains("stopped accepting"),
        "{}",
        new.stderr()
    );
}

/// Start problems Pingora would find only after forking or while waiting for sockets are
/// refused at once, with the fix: `run -d` with no directory for its pid file (the daemon
/// panicked and its parent waited 10 minutes), `run -u` with no directory for the upgrade
/// socket, and `run -u` with no running rampart (it exited 0, then the new process died).
#[test]
fn unusable_paths_and_nothing_to_upgrade_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().display().to_string();
    let yaml = |pid_dir: &str, sock_dir: &str| {
        format!(
            "server: {{ pid_file: \"{base}/{pid_dir}/r.pid\", upgrade_sock: \"{base}/{sock_dir}/u.sock\" }}\nadmin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{}\" }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], rules: [ {{ id: ok, respond: {{ status: 200 }} }} ] }}\n",
            free_addr(),
            free_addr()
        )
    };
    std::fs::create_dir(dir.path().join("run")).unwrap();
    let started = std::time::Instant::now();
    for (args, config, says) in [
        (
            &["run", "-d"][..],
            yaml("missing", "run"),
            "server.pid_file: cannot use the directory of",
        ),
        (
            &["run", "-u"][..],
            yaml("run", "missing"),
            "server.upgrade_sock: cannot use the directory of",
        ),
        (
            &["run", "-u", "-d"][..],
            yaml("run", "run"),
            "upgrade: no running rampart to take the listening sockets over from",
        ),
    ] {
        let out = rampart_with_config(tempfile::tempdir().unwrap(), &config, args, &[]);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        !dir.path().join("run/r.pid").exists(),
        "no pid file left behind"
    );
}
