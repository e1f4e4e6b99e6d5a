//! The real `rampart` binary: started on a config the test writes, waited for until it
//! serves, observed through its admin service and output files, stopped on drop.

use super::{poll_until, raw_get, RawResponse};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long `Rampart::start` waits for the process to serve.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// The binary under test: Cargo's `CARGO_BIN_EXE_rampart` in the main crate's integration
/// tests, else the `RAMPART_BIN` environment variable.
pub fn rampart_bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_rampart") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("RAMPART_BIN")
            .map(PathBuf::from)
            .expect("no rampart binary: not a main-crate test and RAMPART_BIN unset"),
    }
}

struct Listener {
    addr: SocketAddr,
    tls: bool,
}

/// A running `rampart run` process.
pub struct Rampart {
    child: Child,
    dir: tempfile::TempDir,
    config: PathBuf,
    admin: Option<SocketAddr>,
    token: Option<String>,
    listeners: BTreeMap<String, Listener>,
}

impl Rampart {
    /// Writes `yaml` to `rampart.yaml` in a new temp dir, runs `rampart run -c FILE` and
    /// waits until admin `/healthz` answers 200 and every listener accepts connections.
    pub fn start(yaml: &str) -> Rampart {
        Self::start_in(tempfile::tempdir().unwrap(), yaml)
    }

    /// Like `start`, in a directory the test prepared (rules files, certificates...).
    pub fn start_in(dir: tempfile::TempDir, yaml: &str) -> Rampart {
        Self::start_with(dir, yaml, &[], &[])
    }

    /// Like `start`, with the access log in the temp dir: `yaml` is made from the log's path,
    /// which is returned too.
    pub fn start_logging(yaml: impl FnOnce(&Path) -> String) -> (Rampart, PathBuf) {
        Self::start_logging_in(tempfile::tempdir().unwrap(), yaml)
    }

    /// One catch-all project `site` on pool `app` of `backend` (no retries, so that a failure
    /// is the client's answer), with an access log of `format`; returns it, its log and its
    /// listener's address.
    pub fn start_site(backend: &str, format: &str) -> (Rampart, PathBuf, String) {
        Self::start_site_with(backend, format, "")
    }

    /// [`Rampart::start_site`] with `listener_options` on its listener `http` (e.g.
    /// `"send_timeout: 1s"`).
    pub fn start_site_with(
        backend: &str,
        format: &str,
        listener_options: &str,
    ) -> (Rampart, PathBuf, String) {
        Self::site(backend, format, "http", listener_options.to_string())
    }

    /// [`Rampart::start_site_with`] on a TLS listener `https` serving `cert` (HTTP/2 offered).
    pub fn start_tls_site_logging(
        backend: &str,
        cert: &super::CertFiles,
        format: &str,
        listener_options: &str,
    ) -> (Rampart, PathBuf, String) {
        let mut options = format!(
            "tls: {{ cert: {}, key: {} }}",
            cert.cert_path.display(),
            cert.key_path.display()
        );
        if !listener_options.is_empty() {
            options = format!("{options}, {listener_options}");
        }
        Self::site(backend, format, "https", options)
    }

    fn site(
        backend: &str,
        format: &str,
        listener: &str,
        options: String,
    ) -> (Rampart, PathBuf, String) {
        let addr = super::free_addr();
        let options = if options.is_empty() {
            options
        } else {
            format!(", {options}")
        };
        let (r, log) = Self::start_logging(|log| {
            format!(
                "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: {}, format: \"{format}\" }}\nlisteners:\n  {listener}: {{ address: \"{addr}\"{options} }}\npools:\n  app: {{ backends: [\"{backend}\"], retries: 0 }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
                super::free_addr(),
                log.display()
            )
        });
        (r, log, addr)
    }

    /// Like `start_logging`, in a directory the test prepared.
    pub fn start_logging_in(
        dir: tempfile::TempDir,
        yaml: impl FnOnce(&Path) -> String,
    ) -> (Rampart, PathBuf) {
        let log = dir.path().join("access.log");
        let yaml = yaml(&log);
        (Self::start_in(dir, &yaml), log)
    }

    /// Like `start_in`, with extra `run` arguments and environment variables (also used to
    /// resolve `${VAR}` in the addresses the harness waits for).
    pub fn start_with(
        dir: tempfile::TempDir,
        yaml: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Rampart {
        let mut r = Self::spawn(dir, yaml, args, env);
        r.wait_ready(START_DEADLINE);
        r
    }

    /// One TLS listener `https` serving `cert` (with `listener_options`, e.g.
    /// `"max_connections: 1, "`), a pool `app` of `up` and a catch-all project `site`, no
    /// access log; also returns the listener's address.
    pub fn start_tls_site(
        cert: &super::CertFiles,
        listener_options: &str,
        up: &super::Upstream,
    ) -> (Rampart, SocketAddr) {
        let https = super::free_addr();
        let r = Self::start(&format!(
            "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  https: {{ address: \"{https}\", {listener_options}tls: {{ cert: \"{}\", key: \"{}\" }} }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
            super::free_addr(),
            cert.cert(),
            cert.key(),
            up.addr_string()
        ));
        (r, https.parse().unwrap())
    }

    /// Like `start_in`, with the process's open-file limit set to `soft` and `hard` before it
    /// runs, as a shell's `ulimit -Sn`/`-Hn` would.
    pub fn start_with_file_limit(
        dir: tempfile::TempDir,
        yaml: &str,
        (soft, hard): (u64, u64),
    ) -> Rampart {
        let mut r = Self::spawn_prepared(dir, yaml, &[], &[], |cmd| {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec the closure only makes one system call
            // (`setrlimit`), which is async-signal-safe, and allocates nothing.
            unsafe {
                cmd.pre_exec(move || rlimit::Resource::NOFILE.set(soft, hard));
            }
        });
        r.wait_ready(START_DEADLINE);
        r
    }

    /// Like `start_in`, in a mount namespace of its own with `mounts` (`in_mount_namespace`):
    /// an `/etc/hosts` of the test's for backends given by host name, a small disk to fill.
    pub fn start_with_mounts(
        dir: tempfile::TempDir,
        yaml: &str,
        mounts: &[super::Mount],
    ) -> Rampart {
        let mut r = Self::spawn_prepared(dir, yaml, &[], &[], |cmd| {
            super::in_mount_namespace(cmd, mounts)
        });
        r.wait_ready(START_DEADLINE);
        r
    }

    /// Starts the process without waiting for it (e.g. `--upgrade`); see `wait_ready`.
    pub fn spawn(
        dir: tempfile::TempDir,
        yaml: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Rampart {
        Self::spawn_prepared(dir, yaml, args, env, |_| {})
    }

    /// `spawn`, with `prepare` applied to the command before it runs.
    fn spawn_prepared(
        dir: tempfile::TempDir,
        yaml: &str,
        args: &[&str],
        env: &[(&str, &str)],
        prepare: impl FnOnce(&mut Command),
    ) -> Rampart {
        let v: serde_yaml::Value = serde_yaml::from_str(&interpolate(yaml, env))
            .unwrap_or_else(|e| panic!("test config is not YAML ({e}):\n{yaml}"));
        let admin = v["admin"]["listen"].as_str().map(connectable);
        let token = v["admin"]["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        let listeners = v["listeners"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(name, l)| {
                let addr = connectable(l["address"].as_str()?);
                let tls = !l["tls"].is_null() && l["tls"] != serde_yaml::Value::Bool(false);
                Some((name.as_str()?.to_string(), Listener { addr, tls }))
            })
            .collect();
        let config = dir.path().join("rampart.yaml");
        std::fs::write(&config, yaml).unwrap();
        let mut command = Command::new(rampart_bin());
        command
            .arg("run")
            .arg("-c")
            .arg(&config)
            .args(args)
            .envs(env.iter().copied())
            // RAMPART_TEST_RUST_LOG=debug to see Pingora's own steps when a test fails.
            .env(
                "RUST_LOG",
                std::env::var("RAMPART_TEST_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
        prepare(&mut command);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", rampart_bin().display()));
        Rampart {
            child,
            dir,
            config,
            admin,
            token,
            listeners,
        }
    }

    /// Starts `rampart run --upgrade` on `yaml`, whose `server.upgrade_sock` is `upgrade_sock`,
    /// and waits until it waits there for the sockets of the running process.
    pub fn spawn_upgrade(yaml: &str, upgrade_sock: &Path) -> Rampart {
        let new = Self::spawn(tempfile::tempdir().unwrap(), yaml, &["--upgrade"], &[]);
        poll_until(
            Duration::from_secs(10),
            "the new process to wait for the sockets",
            || upgrade_sock.exists().then_some(()),
        );
        new
    }

    /// Waits until admin `/healthz` answers 200 and every listener accepts a connection (and
    /// closes it); panics with the exit status and output if the process exits or time runs
    /// out.
    pub fn wait_ready(&mut self, deadline: Duration) {
        let end = Instant::now() + deadline;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "rampart exited ({}) before serving\n{}",
                    describe(status),
                    self.output()
                );
            }
            let admin_ok = self.admin.is_none_or(|a| {
                raw_get(&a.to_string(), "/healthz", &[]).is_ok_and(|r| r.status == 200)
            });
            let listening = admin_ok
                && self
                    .listeners
                    .values()
                    .all(|l| accepted_and_closed(&l.addr));
            if listening {
                return;
            }
            if Instant::now() > end {
                panic!(
                    "rampart not serving after {deadline:?} (admin {:?}, listeners {:?})\n{}",
                    self.admin,
                    self.listeners.values().map(|l| l.addr).collect::<Vec<_>>(),
                    self.output()
                );
            }
            std::thread::sleep(super::POLL_INTERVAL);
        }
    }

    /// The temp dir holding `rampart.yaml` and the output files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADMIN{path}` (panics when the config has no `admin.listen`).
    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.admin.expect("config has no admin.listen")
        )
    }

    /// Connectable address of listener `name` (`0.0.0.0` becomes `127.0.0.1`).
    pub fn listener_addr(&self, name: &str) -> SocketAddr {
        self.listeners
            .get(name)
            .unwrap_or_else(|| panic!("no listener `{name}` in the config"))
            .addr
    }

    /// `http://ADDR` or `https://ADDR` for listener `name`.
    pub fn listener_url(&self, name: &str) -> String {
        let l = &self.listeners[name];
        format!("{}://{}", if l.tls { "https" } else { "http" }, l.addr)
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    /// Polls stdout and stderr until a line contains `needle`; returns that line. On
    /// timeout, panics showing the output.
    pub fn wait_for_log(&self, needle: &str, deadline: Duration) -> String {
        let end = Instant::now() + deadline;
        loop {
            let (out, err) = (self.stdout(), self.stderr());
            if let Some(line) = out.lines().chain(err.lines()).find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if Instant::now() > end {
                panic!(
                    "timed out after {deadline:?} waiting for `{needle}` in rampart's output\n{}",
                    self.output()
                );
            }
            std::thread::sleep(super::POLL_INTERVAL);
        }
    }

    /// GET `path` on the admin service, with the bearer token when the config sets one.
    pub fn admin_get(&self, path: &str) -> RawResponse {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        let admin = self.admin.expect("config has no admin.listen").to_string();
        raw_get(&admin, path, &headers).unwrap_or_else(|e| panic!("admin GET {path}: {e}"))
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> String {
        let r = self.admin_get("/metrics");
        assert_eq!(r.status, 200, "GET /metrics: {}", r.text());
        r.text()
    }

    /// The value of the sample printed exactly as `name{labels}` (or bare `name`), labels
    /// in the order Rampart prints them (the prometheus crate sorts them by name).
    pub fn metric_value(&self, sample: &str) -> Option<f64> {
        metric_in(&self.metrics(), sample)
    }

    /// Alias of `metric_value`.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        self.metric_value(sample)
    }

    /// `/status` as JSON.
    pub fn status_json(&self) -> serde_json::Value {
        let r = self.admin_get("/status");
        assert_eq!(r.status, 200, "GET /status: {}", r.text());
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("/status ({e}): {}", r.text()))
    }

    /// Alias of `status_json`.
    pub fn status(&self) -> serde_json::Value {
        self.status_json()
    }

    /// Sends a signal by name (`"INT"`, `"HUP"`, `"QUIT"`, `"TERM"`...) with `kill`;
    /// false if it could not be delivered (e.g. the process is gone).
    pub fn signal(&self, sig: &str) -> bool {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// SIGINT (does not wait; see `wait_exit`).
    pub fn interrupt(&self) {
        self.signal("INT");
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit (panics after `deadline`).
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        poll_until(deadline, "rampart to exit", || {
            self.child.try_wait().ok().flatten()
        })
    }

    /// SIGINT, then waits up to 15 s for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.interrupt();
        self.wait_exit(Duration::from_secs(15))
    }
}

impl Drop for Rampart {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("rampart (pid {}) output:\n{}", self.pid(), self.output());
        }
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        self.signal("INT");
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(super::POLL_INTERVAL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name{labels} value` lookup in Prometheus text.
pub fn metric_in(text: &str, sample: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(sample)?.strip_prefix([' ', '\t'])?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// `"0.0.0.0:80"` → `127.0.0.1:80`, `"[::]:80"` → `[::1]:80`; names are resolved.
fn connectable(addr: &str) -> SocketAddr {
    let mut a = addr
        .parse::<SocketAddr>()
        .ok()
        .or_else(|| addr.to_socket_addrs().ok()?.next())
        .unwrap_or_else(|| panic!("harness cannot use the address `{addr}`"));
    match a.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => a.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => a.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    a
}

/// `${VAR}` / `${VAR:-default}` from `env`, then the process environment, by Rampart's own
/// interpolation (so values land in the YAML as Rampart reads them).
fn interpolate(s: &str, env: &[(&str, &str)]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .or_else(|| std::env::var(name).ok())
    };
    rampart::config::interpolate(s, lookup).unwrap_or_else(|e| panic!("test config: {e:?}"))
}

/// Connects to `addr` and half-closes: true once the server has accepted the connection and
/// closed it in turn. Accepting is first come, first served, so the earlier probes have been
/// accepted too: none is left in the listen queue to be accepted, and counted as an open
/// connection, after the test has begun.
fn accepted_and_closed(addr: &SocketAddr) -> bool {
    use std::io::Read;
    let Ok(mut probe) = TcpStream::connect_timeout(addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = probe.shutdown(std::net::Shutdown::Write);
    let _ = probe.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 1024];
    loop {
        match probe.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// Exit code, or -1 when killed by a signal.
fn code(status: ExitStatus) -> i32 {
    status.code().unwrap_or(-1)
}

impl Rampart {
    /// `rampart run` on a config that must not start: (exit code, stdout, stderr). Panics
    /// if the process is still running after 30 s (it started although it should not).
    pub fn start_expect_failure(yaml: &str) -> (i32, String, String) {
        let out = rampart_with_config(tempfile::tempdir().unwrap(), yaml, &["run"], &[]);
        (out.code, out.stdout, out.stderr)
    }
}

/// Output of a finished `rampart` command.
pub struct CheckOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The config file given with `-c` (error messages start with it).
    pub path: String,
    /// Keeps the config's directory alive.
    pub dir: tempfile::TempDir,
}

/// `rampart check -c FILE` on `yaml`.
pub fn rampart_check(yaml: &str) -> CheckOutput {
    rampart_check_with_env(yaml, &[])
}

/// Asserts exit 1 and, for each `(line, column, key, message)`, an error line
/// `PATH:LINE:COL: KEY: ...MESSAGE...`, from one run of `rampart check`.
pub fn assert_check_errors(yaml: &str, expected: &[(usize, usize, &str, &str)]) -> CheckOutput {
    let c = rampart_check(yaml);
    assert_eq!(
        c.code, 1,
        "must fail:\n{yaml}\nstdout: {}\nstderr: {}",
        c.stdout, c.stderr
    );
    for (line, col, key, message) in expected {
        let prefix = format!("{}:{line}:{col}: {key}: ", c.path);
        let found = c
            .stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(message));
        assert!(
            found,
            "expected a line starting `{prefix}` containing `{message}`, got:\n{}",
            c.stderr
        );
    }
    c
}

/// `rampart check -c FILE` with extra environment variables.
pub fn rampart_check_with_env(yaml: &str, env: &[(&str, &str)]) -> CheckOutput {
    rampart_with_config(tempfile::tempdir().unwrap(), yaml, &["check"], env)
}

/// Writes `yaml` to `DIR/rampart.yaml` and runs `rampart ARGS... -c FILE` to completion
/// (e.g. `&["rules", "test", "--project", "shop", "http://shop.test/x"]`); panics if it is
/// still running after 30 s.
pub fn rampart_with_config(
    dir: tempfile::TempDir,
    yaml: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> CheckOutput {
    let config = dir.path().join("rampart.yaml");
    std::fs::write(&config, yaml).unwrap();
    let (out_path, err_path) = (dir.path().join("cmd.stdout"), dir.path().join("cmd.stderr"));
    let mut child = Command::new(rampart_bin())
        .args(args)
        .arg("-c")
        .arg(&config)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", rampart_bin().display()));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`rampart {}` still running after 30 s\n--- stdout ---\n{}\n--- stderr ---\n{}",
                args.join(" "),
                read(&out_path),
                read(&err_path)
            );
        }
        std::thread::sleep(super::POLL_INTERVAL);
    };
    CheckOutput {
        code: code(status),
        stdout: read(&out_path),
        stderr: read(&err_path),
        path: config.display().to_string(),
        dir,
    }
}
