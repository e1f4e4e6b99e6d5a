//! The real `rampart` binary, started on a config the test writes, stopped on drop.

use super::poll_until;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Rampart {
    child: Child,
    dir: tempfile::TempDir,
    pub admin: String,
    token: Option<String>,
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rampart")
}

/// Listener and admin addresses named in the YAML, to wait for.
fn addresses(yaml: &str) -> (String, Vec<String>, Option<String>) {
    let v: serde_yaml::Value = serde_yaml::from_str(yaml).expect("test config is YAML");
    let admin = v["admin"]["listen"]
        .as_str()
        .expect("tests set admin.listen")
        .to_string();
    let token = v["admin"]["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let listeners = v["listeners"]
        .as_mapping()
        .map(|m| {
            m.values()
                .filter_map(|l| l["address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (admin, listeners, token)
}

impl Rampart {
    /// Writes `yaml` to a temp dir, starts `rampart run` on it and waits until the admin
    /// service answers /healthz and every listener accepts connections.
    pub fn start(yaml: &str) -> Rampart {
        Self::start_in(tempfile::tempdir().unwrap(), yaml)
    }

    /// Like `start`, in a directory the test prepared (rules files, certificates...).
    pub fn start_in(dir: tempfile::TempDir, yaml: &str) -> Rampart {
        let (admin, listeners, token) = addresses(yaml);
        let config = dir.path().join("rampart.yaml");
        std::fs::write(&config, yaml).unwrap();
        let child = Command::new(bin())
            .args(["run", "-c"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut r = Rampart {
            child,
            dir,
            admin,
            token,
        };
        let client = super::client();
        poll_until(Duration::from_secs(30), "rampart to serve", || {
            if let Ok(Some(status)) = r.child.try_wait() {
                panic!(
                    "rampart exited with {status} before serving\nstderr:\n{}",
                    r.stderr()
                );
            }
            let admin_ok = client
                .get(format!("http://{}/healthz", r.admin))
                .send()
                .is_ok_and(|resp| resp.status() == 200);
            (admin_ok
                && listeners
                    .iter()
                    .all(|a| std::net::TcpStream::connect(a).is_ok()))
            .then_some(())
        });
        r
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    pub fn wait_for_log(&self, needle: &str, deadline: Duration) {
        poll_until(deadline, &format!("`{needle}` in rampart's output"), || {
            (self.stderr().contains(needle) || self.stdout().contains(needle)).then_some(())
        });
    }

    pub fn admin_get(&self, path: &str) -> reqwest::blocking::Response {
        let mut req = super::client().get(format!("http://{}{path}", self.admin));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req.send().unwrap()
    }

    pub fn metrics(&self) -> String {
        self.admin_get("/metrics").text().unwrap()
    }

    /// The value of the sample printed exactly as `name{labels}` (or `name`), if any.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        self.metrics().lines().find_map(|l| {
            l.strip_prefix(sample)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    pub fn status(&self) -> serde_json::Value {
        self.admin_get("/status").json().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status();
    }

    /// Sends SIGINT and waits for the process to exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("-INT");
        poll_until(Duration::from_secs(15), "rampart to exit", || {
            self.child.try_wait().ok().flatten()
        })
    }
}

impl Drop for Rampart {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal("-INT");
            let exited = (0..500).any(|_| {
                std::thread::sleep(Duration::from_millis(10));
                self.child.try_wait().ok().flatten().is_some()
            });
            if !exited {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// `rampart run` on a config that must not start: its exit code and stderr.
pub fn start_expect_failure(yaml: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let config: PathBuf = dir.path().join("rampart.yaml");
    std::fs::write(&config, yaml).unwrap();
    let out = Command::new(bin())
        .args(["run", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
