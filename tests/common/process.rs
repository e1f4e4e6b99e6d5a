//! Processes a test starts that are not its children (daemons): liveness, pid files, signals,
//! and clean-up when the test ends.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn alive(pid: u32) -> bool {
    // A zombie is not serving: only count processes that are not in state Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `kill SIG PID`, with `sig` as `kill` takes it (`-QUIT`).
pub fn signal(sig: &str, pid: u32) {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
}

/// A request on a new connection that took this long during a reload waited for a listening
/// socket nobody accepted on: Pingora's new process takes the sockets at its next try, once a
/// second, and an old process that stopped accepting at SIGQUIT left every reload with a ~1 s
/// pause. (A request this slow for another reason, a busy machine, happens too, but not at
/// most reloads.)
pub const STALLED: Duration = Duration::from_millis(700);

/// Kills every process the test started when it ends, passed or failed: daemons are not our
/// children and would outlive the test otherwise.
pub struct KillOnDrop(pub Arc<Mutex<Vec<u32>>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in self.0.lock().unwrap().iter() {
            if alive(*pid) {
                signal("-KILL", *pid);
            }
        }
    }
}

/// How many times the process's threads named `name` woke while `idle` lasted (the test's
/// thread sleeps through it: the window a quiet thread should sleep through too).
pub fn wakeups_while_idle(pid: u32, name: &str, idle: std::time::Duration) -> u64 {
    let before = thread_wakeups(pid, name);
    std::thread::sleep(idle);
    thread_wakeups(pid, name) - before
}

/// Voluntary context switches, so far, of the process's threads named `name` (Pingora names a
/// service's threads after it): each is the thread going to sleep, so each wake-up counts one.
fn thread_wakeups(pid: u32, name: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// `rampart run -d -c rampart.yaml` in `dir` (whose config names `rampart.pid` there): waits
/// for the daemon's pid file and adds the pid to `started`, for a [`KillOnDrop`] to kill.
pub fn start_daemon(dir: &Path, started: &Arc<Mutex<Vec<u32>>>) -> u32 {
    let status = Command::new(super::rampart_bin())
        .args(["run", "-d", "-c", "rampart.yaml"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "daemon start");
    let pid = super::poll_until(Duration::from_secs(10), "the pid file", || {
        read_pid(&dir.join("rampart.pid"))
    });
    started.lock().unwrap().push(pid);
    pid
}

/// The `server:` line of a daemon run in `dir`: its pid file, upgrade socket and error log
/// there, and a one-second grace period.
pub fn daemon_server_line(dir: &Path) -> String {
    let d = dir.display();
    format!("server: {{ pid_file: {d}/rampart.pid, upgrade_sock: {d}/upgrade.sock, error_log: {d}/error.log, grace_period_seconds: 1, graceful_shutdown_timeout_seconds: 1 }}\n")
}

/// [`start_daemon`] on a config of one catch-all project (its pool's backend unchecked and
/// unreachable), no access log; returns the pid, the listener's and the admin's addresses.
pub fn start_site_daemon(dir: &Path, started: &Arc<Mutex<Vec<u32>>>) -> (u32, String, String) {
    let (http, admin) = (super::free_addr(), super::free_addr());
    let yaml = format!(
        "{}admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"], health_check: {{ kind: none }} }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        daemon_server_line(dir),
        super::free_addr()
    );
    std::fs::write(dir.join("rampart.yaml"), yaml).unwrap();
    (start_daemon(dir, started), http, admin)
}
