//! Integration-test harness: real upstream servers, the real `rampart` binary on ephemeral
//! ports, certificates made at test time, real HTTP clients, and polling with deadlines
//! instead of sleeps. Use it from a test file with `mod common; use common::*;`.
//!
//! Every test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

mod certs;
mod client;
mod h2_client;
mod namespace;
mod process;
mod rampart;
mod socket_backend;
mod upstream;

// A test file may use only part of the harness.
#[allow(unused_imports)]
pub use {
    certs::*, client::*, h2_client::*, namespace::*, process::*, rampart::*, socket_backend::*,
    upstream::*,
};

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often `poll_until` and friends look again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Ports handed out by this test process (by `free_port` or to an upstream), so that two
/// tests running in parallel are never given the same one.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Binds 127.0.0.1:0 on a port this process has not handed out before, and records it.
pub(crate) fn bind_unused() -> TcpListener {
    let mut held = Vec::new(); // keeps colliding ports bound so the kernel picks others
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().unwrap().port();
        if HANDED_OUT.lock().unwrap().insert(port) {
            return l;
        }
        held.push(l);
    }
}

/// A port nobody listens on right now (bound, read, released).
pub fn free_port() -> u16 {
    bind_unused().local_addr().unwrap().port()
}

/// `"127.0.0.1:PORT"` for a free port.
pub fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Calls `f` every 20 ms until it returns `Some`, or panics after `deadline` naming `what`.
pub fn poll_until<T>(deadline: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The access log's text once it has `n` lines (polled for 5 s).
pub fn log_lines(log: &std::path::Path, n: usize) -> String {
    poll_until(
        Duration::from_secs(5),
        &format!("{n} lines in the log"),
        || {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            (text.lines().count() == n).then_some(text)
        },
    )
}

/// Waits for the access log at `log` to have `n` lines and checks that each of `expected` is
/// one of them (in any order); returns the text.
pub fn assert_logged(log: &std::path::Path, n: usize, expected: &[&str]) -> String {
    let text = log_lines(log, n);
    for line in expected {
        assert!(text.lines().any(|l| l == *line), "{line:?} in\n{text}");
    }
    text
}

/// `poll_until` for async tests: awaits `f()` every 20 ms until it yields `Some`.
pub async fn poll_until_async<T, F, Fut>(deadline: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// What an upstream received, as it echoes it back in the response body (JSON).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Echo {
    /// The name the upstream was started with.
    pub upstream: String,
    pub method: String,
    /// Path and query exactly as received.
    pub uri: String,
    /// `"HTTP/1.1"`, `"HTTP/2.0"`, `"HTTP/1.0"`.
    pub version: String,
    /// Lower-case header name → every value, in the order received.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The request URI's authority (HTTP/2 `:authority`, or an absolute-form HTTP/1 URI).
    #[serde(default)]
    pub authority: Option<String>,
    /// The request body (lossy UTF-8).
    #[serde(default)]
    pub body: String,
}

impl Echo {
    /// First value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).into_iter().next()
    }

    /// Every value of header `name` (any case), in order; empty when absent.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// `Host` header, or the authority for HTTP/2.
    pub fn host(&self) -> Option<&str> {
        self.header("host").or(self.authority.as_deref())
    }
}
