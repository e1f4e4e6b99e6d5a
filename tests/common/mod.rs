//! Integration-test harness: real upstream servers, the real `rampart` binary on ephemeral
//! ports, certificates made at test time, and polling with deadlines instead of sleeps.
#![allow(dead_code)]

mod certs;
mod rampart;
mod upstream;

pub use certs::*;
pub use rampart::*;
pub use upstream::*;

use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A port nobody listens on right now (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A blocking HTTP client that does not follow redirects and ignores proxy settings.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The upstream's echo of what it received.
#[derive(Debug, serde::Deserialize)]
pub struct Echo {
    pub upstream: String,
    pub method: String,
    pub uri: String,
    pub version: String,
    pub headers: std::collections::BTreeMap<String, Vec<String>>,
}

impl Echo {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// GET `url` with `Host: host`, returning the response.
pub fn get(url: &str, host: &str) -> reqwest::blocking::Response {
    client()
        .get(url)
        .header("host", host)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// GET through Rampart and parse the upstream's echo (panics unless 200).
pub fn get_echo(url: &str, host: &str) -> Echo {
    let r = get(url, host);
    assert_eq!(r.status(), 200, "GET {url} (Host {host})");
    r.json().unwrap()
}
