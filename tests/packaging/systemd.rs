//! The .deb under a real systemd: a Debian root (debootstrap, kept in the target dir between
//! runs) booted by `systemd-nspawn` as a container that shares this machine's network, so the
//! test's upstream and clients talk to the service over loopback. The postinst starts the
//! service; `systemctl reload` three times, a package upgrade, a broken config, a crash, a log
//! rotation and `systemctl stop` follow, under load, and systemd must track the main process
//! throughout.
//!
//! Skipped, saying why, where no container can be made: not root, no Debian mirror, or a
//! sandbox that cannot boot one. Everything after the boot is asserted.

use super::{packages, run};
use crate::common::{free_addr, poll_until, signal, Upstream, STALLED};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The service's grace period: long enough that a process waiting it out (rather than exiting
/// once its requests are answered) fails the drain and stop deadlines below.
const GRACE_S: u64 = 30;

/// A booted container; powered off (then killed, if it will not stop) when dropped.
struct Container {
    nspawn: Child,
    init: u32,
    console: PathBuf,
}

impl Container {
    /// Boots `root` and waits until systemd has started every unit. `Err` carries the reason
    /// the environment cannot boot it.
    fn boot(root: &Path, console: PathBuf) -> Result<Container, String> {
        let log = std::fs::File::create(&console).map_err(|e| e.to_string())?;
        let nspawn = Command::new("systemd-nspawn")
            .args(["--quiet", "--boot", "--register=no", "--keep-unit"])
            .arg(format!("--machine=rampart-test-{}", std::process::id()))
            .arg("--directory")
            .arg(root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("systemd-nspawn: {e}"))?;
        let mut c = Container {
            nspawn,
            init: 0,
            console,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        c.init = loop {
            if let Some(pid) = child_named(c.nspawn.id(), "systemd") {
                break pid;
            }
            if c.nspawn.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                return Err(format!("the container did not start:\n{}", c.console()));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        loop {
            let state = c.sh("systemctl is-system-running").stdout;
            match String::from_utf8_lossy(&state).trim() {
                "running" => return Ok(c),
                "degraded" => {
                    let failed = c.sh("systemctl --failed --no-legend").stdout;
                    eprintln!(
                        "the container's systemd is degraded (not Rampart's units):\n{}",
                        String::from_utf8_lossy(&failed)
                    );
                    return Ok(c);
                }
                _ if Instant::now() > deadline => {
                    return Err(format!("systemd did not finish booting:\n{}", c.console()))
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn console(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Runs `script` with `/bin/sh` inside the container, in all of its namespaces.
    fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args(["--target", &self.init.to_string(), "--all", "--"])
            .args(["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
            .args(["DEBIAN_FRONTEND=noninteractive", "/bin/sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("nsenter (util-linux)")
    }

    /// `sh`, panicking with the output and the service's journal unless it succeeds.
    fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "`{script}` failed ({}):\n{}{}\njournal:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.journal()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn journal(&self) -> String {
        String::from_utf8_lossy(
            &self
                .sh("journalctl -u rampart --no-pager -o short-precise | tail -n 60")
                .stdout,
        )
        .into_owned()
    }

    /// A property of the unit, as `systemctl show -p NAME --value` prints it.
    fn unit(&self, property: &str) -> String {
        self.ok(&format!("systemctl show rampart -p {property} --value"))
            .trim()
            .to_string()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // SIGRTMIN+4 asks systemd to power off; nspawn exits once the container has. (Not
        // before its init is known: `kill -RTMIN+4 0` would signal this test's process group.)
        if self.init != 0 {
            signal("-RTMIN+4", self.init);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.nspawn.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.nspawn.kill();
                let _ = self.nspawn.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The child process of `parent` whose command name is `name`.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == name)
        })
}

/// A minimal Debian root with systemd and logrotate, of this machine's release (the .deb's
/// libraries are this machine's), made once and kept in the target dir. `Err` says why it
/// cannot be made.
fn debian_root() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("systemd-root");
    let made = ["usr/lib/systemd/systemd", "usr/sbin/logrotate"];
    if made.iter().all(|f| root.join(f).exists()) {
        return Ok(root);
    }
    // A root kept from before logrotate was added is made again.
    let _ = std::fs::remove_dir_all(&root);
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let codename = release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .ok_or("no VERSION_CODENAME in /etc/os-release: not Debian")?;
    let partial = root.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    let out = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            "--include=systemd,systemd-sysv,libssl3,passwd,procps,logrotate",
        ])
        .arg(codename)
        .arg(&partial)
        .arg("http://deb.debian.org/debian")
        .output()
        .map_err(|e| format!("debootstrap: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "debootstrap failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    std::fs::rename(&partial, &root).map_err(|e| e.to_string())?;
    Ok(root)
}

/// Requests on new connections and on a keep-alive connection until stopped.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    ok: AtomicUsize,
    /// Requests that took [`STALLED`] or more (a reload that left connections unaccepted).
    stalled: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Load {
    fn spawn(self: &Arc<Self>, url: String, new_connections: bool) -> std::thread::JoinHandle<()> {
        let load = self.clone();
        std::thread::spawn(move || {
            let build = || {
                reqwest::blocking::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(if new_connections { 0 } else { 1 })
                    .timeout(Duration::from_secs(20))
                    .build()
                    .unwrap()
            };
            let keep_alive = build();
            while !load.stop.load(Relaxed) {
                let client = if new_connections {
                    build()
                } else {
                    keep_alive.clone()
                };
                let sent = Instant::now();
                let result = client.get(&url).send();
                if sent.elapsed() >= STALLED {
                    load.stalled.fetch_add(1, Relaxed);
                }
                match result {
                    Ok(r) if r.status() == 200 && r.headers().get("x-upstream").is_some() => {
                        load.ok.fetch_add(1, Relaxed);
                    }
                    Ok(r) => load
                        .failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", r.status())),
                    Err(e) => load.failures.lock().unwrap().push(format!("{e:?}")),
                }
            }
        })
    }

    /// Waits until `n` more requests have succeeded.
    fn wait_for(&self, n: usize, what: &str) {
        let before = self.ok.load(Relaxed);
        poll_until(Duration::from_secs(20), what, || {
            (self.ok.load(Relaxed) >= before + n).then_some(())
        });
    }
}

#[test]
fn deb_under_systemd_starts_reloads_upgrades_restarts_and_stops() {
    if !super::is_root() {
        eprintln!("SKIPPED the .deb under systemd: needs root (CI runs as root)");
        return;
    }
    let base = match debian_root() {
        Ok(r) => r,
        Err(why) => {
            eprintln!("SKIPPED the .deb under systemd: no Debian root: {why}");
            return;
        }
    };
    let p = packages();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let root = work.path().join("root");
    run(Command::new("cp").arg("-a").arg(&base).arg(&root));
    std::fs::copy(&p.deb, root.join("root/rampart-1.deb")).unwrap();
    std::fs::copy(&p.deb2, root.join("root/rampart-2.deb")).unwrap();

    // The operator's config, there before the package (as configuration management does it):
    // ephemeral ports on this machine's loopback, an upstream the test runs.
    let up = Upstream::start("up");
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "instance_name: ${{HOSTNAME:-rampart}}\nserver: {{ grace_period_seconds: {GRACE_S}, graceful_shutdown_timeout_seconds: 5 }}\nadmin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: /var/log/rampart/access.log }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        up.addr_string()
    );
    std::fs::create_dir_all(root.join("etc/rampart")).unwrap();
    std::fs::write(root.join("etc/rampart/rampart.yaml"), &yaml).unwrap();

    let c = match Container::boot(&root, work.path().join("console.log")) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED the .deb under systemd: {why}");
            return;
        }
    };

    // Install: the postinst creates the user, enables and starts the service.
    c.ok("dpkg -i --force-confold /root/rampart-1.deb");
    poll_until(Duration::from_secs(20), "the service to start", || {
        (c.unit("ActiveState") == "active").then_some(())
    });
    assert_eq!(c.unit("UnitFileState"), "enabled");
    let mut main_pid = c.unit("MainPID");
    assert_ne!(main_pid, "0");
    assert_eq!(
        c.ok("cat /run/rampart/rampart.pid").trim(),
        main_pid,
        "systemd follows the pid file"
    );
    assert_eq!(
        c.ok("ps -o user= -p $(cat /run/rampart/rampart.pid)")
            .trim(),
        "rampart"
    );
    // The unit gives the service the HOSTNAME the shipped config names the instance by.
    let status: serde_json::Value = crate::common::client()
        .get(format!("http://{admin}/status"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(status["instance"], c.ok("hostname").trim());

    let url = format!("http://{http}/x");
    let load = Arc::new(Load::default());
    let workers = [false, true, true].map(|new| load.spawn(url.clone(), new));
    load.wait_for(20, "traffic through the service");

    // Reloads: each one a new main process, none a restart, no request lost.
    let mut reload = |how: &str| {
        c.ok(how);
        let new = c.unit("MainPID");
        assert_ne!(
            new, main_pid,
            "`{how}`: systemd still names the old main process"
        );
        assert_eq!(c.unit("ActiveState"), "active");
        assert_eq!(c.unit("NRestarts"), "0", "`{how}` restarted the service");
        main_pid = new;
        load.wait_for(20, "traffic after the reload");
    };
    for _ in 0..3 {
        reload("systemctl reload rampart");
    }
    // A package upgrade reloads onto the new binary.
    reload("dpkg -i --force-confold /root/rampart-2.deb");
    assert!(c.ok("dpkg-query -W rampart").contains("-2"));
    // Pingora's 5 s close timeout after each hand-over, then as soon as they are idle.
    poll_until(
        Duration::from_secs(GRACE_S),
        "the old processes to drain and exit",
        || (c.ok("pgrep -x rampart").trim() == main_pid).then_some(()),
    );

    // A broken config: the reload fails, the running process serves on.
    c.ok("sed -i 's/^pools:/poolz:/' /etc/rampart/rampart.yaml");
    let broken = c.sh("systemctl reload rampart");
    assert!(!broken.status.success(), "a broken config reloaded");
    assert_eq!(c.unit("MainPID"), main_pid);
    assert_eq!(c.unit("ActiveState"), "active");
    c.ok("sed -i 's/^poolz:/pools:/' /etc/rampart/rampart.yaml");
    load.wait_for(20, "traffic after the broken reload");

    load.stop.store(true, Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let failures = load.failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed requests across reloads and the upgrade: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let stalled = load.stalled.load(Relaxed);
    assert!(
        stalled < 2,
        "{stalled} requests waited over {STALLED:?} across 4 reloads"
    );

    let journal = c.ok("journalctl -u rampart --no-pager -o short");
    assert_eq!(
        journal
            .matches("upgrade: stopped accepting on 2 listening sockets")
            .count(),
        4,
        "{journal}"
    );
    assert!(
        !journal.contains(" sh["),
        "the processes reloads start log as `sh`:\n{journal}"
    );
    assert!(
        c.ok("cat /var/log/rampart/access.log").lines().count() > 20,
        "the access log is written"
    );

    // A crash: systemd starts the service again.
    c.ok(&format!("kill -9 {main_pid}"));
    poll_until(
        Duration::from_secs(30),
        "systemd to restart the service",
        || (c.unit("NRestarts") == "1" && c.unit("ActiveState") == "active").then_some(()),
    );
    poll_until(Duration::from_secs(20), "serving after the restart", || {
        reqwest::blocking::get(&url)
            .ok()
            .filter(|r| r.status() == 200)
    });

    // The package's log rotation: logrotate renames the file as the service's user, and the
    // service opens a new one at the path by itself.
    c.ok("logrotate --force /etc/logrotate.d/rampart");
    assert!(c.ok("ls /var/log/rampart").contains("access.log.1"));
    poll_until(
        Duration::from_secs(10),
        "a new access log after the rotation",
        || {
            reqwest::blocking::get(&url).ok()?;
            let log = c.sh("cat /var/log/rampart/access.log");
            (log.status.success() && !log.stdout.is_empty()).then_some(())
        },
    );
    assert_eq!(
        c.ok("stat -c %U /var/log/rampart/access.log").trim(),
        "rampart"
    );

    // Stop: graceful, clean, quick when idle, and the port is released.
    let stopping = Instant::now();
    c.ok("systemctl stop rampart");
    assert!(
        stopping.elapsed() < Duration::from_secs(GRACE_S / 3),
        "an idle service took {:?} to stop: it waited out the grace period",
        stopping.elapsed()
    );
    assert_eq!(c.unit("ActiveState"), "inactive");
    assert_eq!(c.unit("Result"), "success");
    assert!(
        std::net::TcpStream::connect(&http).is_err(),
        "still listening after stop"
    );
    assert!(
        c.sh("pgrep -x rampart").stdout.is_empty(),
        "a rampart process outlived the stop"
    );
}
