//! The validated configuration the rest of Rampart runs on. Everything here has been checked:
//! addresses parse, references resolve, files are readable, rules compile.

pub use crate::config::raw::{FailMode, HealthCheckKind, Selection};
use crate::proxy::access_log::{LogFormat, LogTarget};
use crate::rules::RuleSet;
use http::HeaderName;
use pingora_core::server::configuration::ServerConf;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub struct Config {
    pub file: PathBuf,
    /// `FILE:LINE:COLUMN: key: warning: …` lines: `check` prints them, `run` logs them.
    pub warnings: Vec<String>,
    pub instance_name: String,
    pub server: ServerConf,
    pub admin: AdminSettings,
    pub access_log: AccessLogSettings,
    pub listeners: Vec<ListenerSettings>,
    pub pools: Vec<PoolSettings>,
    pub projects: Vec<ProjectSettings>,
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    /// Bearer token required on every path but /healthz; `None` when empty.
    pub token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AccessLogSettings {
    pub target: LogTarget,
    pub format: LogFormat,
}

#[derive(Debug, Clone)]
pub struct ListenerSettings {
    pub name: String,
    pub address: SocketAddr,
    pub tls: Option<ListenerTls>,
    /// Idle client connections are closed after this (whole seconds, at least 1).
    pub keepalive_timeout: std::time::Duration,
    /// An HTTP/1.1 connection is closed after answering this many requests (at least 1).
    pub keepalive_requests: u32,
    /// Client connections open at once beyond which new ones are refused; `None`: no limit.
    pub max_connections: Option<u32>,
    /// The longest a whole HTTP/1 request head may take to arrive, from its first byte.
    pub header_timeout: std::time::Duration,
    /// The longest a write of an answer may wait on a client that does not read.
    pub send_timeout: std::time::Duration,
    /// The largest request head accepted, in bytes (HTTP/1 head; HTTP/2 header list).
    pub max_header_size: usize,
    /// A plain listener also serves HTTP/2 to clients that open with its preface (h2c).
    pub h2c: bool,
    /// Each connection begins with a PROXY protocol header naming the client.
    pub proxy_protocol: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

#[derive(Debug, Clone)]
pub struct ListenerTls {
    pub cert: CertPair,
    pub min_version: TlsVersion,
    pub http2: bool,
}

#[derive(Debug, Clone)]
pub struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When the file's chain stops working, as `check` read it ([`crate::certificates::chain_end`]).
    pub ends: Option<std::time::SystemTime>,
}

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub name: String,
    pub backends: Vec<BackendSettings>,
    pub selection: Selection,
    pub hash_key: HashKey,
    pub tls: Option<UpstreamTls>,
    pub http2: bool,
    pub timeouts: Timeouts,
    pub retries: usize,
    pub health_check: HealthCheckSettings,
    /// Every how long the backends given by host name are resolved again; `None` for a pool
    /// of addresses, or with `resolve_interval: never`.
    pub resolve_interval: Option<Duration>,
}

/// One backend address. A host name stands for as many as it resolves to, each with its
/// weight and `name`.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    pub address: SocketAddr,
    /// As written (`app-1.internal:8080`): the Host a backend named by host name gets when
    /// the client's is not preserved.
    pub name: String,
    pub weight: usize,
    /// Given by host name, not address: resolved again every `resolve_interval`.
    pub named: bool,
}

impl BackendSettings {
    /// Where a name not resolved stands (`check --no-resolve`, or a fresh `run` whose resolver
    /// did not answer for it yet): the unspecified address, with the name's port.
    pub fn unresolved_address(port: u16) -> SocketAddr {
        SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), port)
    }

    /// A name standing at [`Self::unresolved_address`].
    pub fn unresolved(&self) -> bool {
        self.named && self.address.ip().is_unspecified()
    }
}

/// What `consistent_hash` hashes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    ClientIp,
    Uri,
    Header(HeaderName),
    Cookie(String),
}

#[derive(Debug, Clone)]
pub struct UpstreamTls {
    pub sni: String,
    pub verify: bool,
    pub ca_file: Option<TrustedCas>,
}

/// A pool's `tls.ca_file` and the certificates it held when the configuration was checked,
/// read once however many pools name it and shared by their peers.
#[derive(Debug, Clone)]
pub struct TrustedCas {
    pub path: PathBuf,
    pub certs: Arc<Box<[pingora_core::tls::x509::X509]>>,
}

#[derive(Debug, Clone, Default)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    pub read: Option<Duration>,
    pub write: Option<Duration>,
    pub idle: Option<Duration>,
    /// Replaces `read` for WebSocket requests: a tunnel may be quiet for long.
    pub tunnel: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct HealthCheckSettings {
    pub kind: HealthCheckKind,
    pub path: String,
    pub host: Option<String>,
    pub expect_status: Vec<u16>,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: usize,
    pub fall: usize,
}

#[derive(Debug, Clone)]
pub struct ProjectSettings {
    pub name: String,
    /// Lowercased; `*` alone is the catch-all, `*.example.com` a wildcard.
    pub hosts: Vec<String>,
    /// Names of the listeners this project is served on.
    pub listeners: Vec<String>,
    pub tls: Option<CertPair>,
    pub pool: Option<String>,
    pub preserve_host: bool,
    pub trust_proxy_headers: bool,
    /// Rules match paths without their `;` parameters (the reloads compile them so too).
    pub ignore_path_params: bool,
    pub fail_mode: FailMode,
    /// Request bodies larger than this (bytes) are answered 413; `None`: no limit.
    pub max_body_size: Option<u64>,
    /// The rules compiled at load. The serving state takes this set out (leaving an empty
    /// one) and swaps it on reload.
    pub rules: Arc<RuleSet>,
    /// The inline rules as written, recompiled with the files on every reload.
    pub inline_rules: Arc<Vec<crate::rules::RuleSpec>>,
    /// Glob patterns, made absolute (relative ones are relative to the config file).
    pub rules_files: Vec<String>,
    /// The rules files as they were when loaded.
    pub rules_stamps: Vec<crate::rules::files::FileStamp>,
    /// The project's pages for the errors Rampart answers itself, by status.
    pub error_pages: Arc<ErrorPages>,
    /// The compression level of answers for clients that accept it; `None`: off.
    pub compression: Option<u32>,
    /// Requests a client may send each second; `None`: no limit.
    pub rate_limit: Option<u32>,
}

/// A project's `error_pages`, read at load.
#[derive(Debug, Default)]
pub struct ErrorPages(Vec<(u16, ErrorPage)>);

#[derive(Debug)]
pub struct ErrorPage {
    pub content_type: http::HeaderValue,
    pub body: bytes::Bytes,
}

impl ErrorPages {
    pub fn new(pages: Vec<(u16, ErrorPage)>) -> Self {
        ErrorPages(pages)
    }

    /// The statuses that have a page, in order.
    pub fn statuses(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().map(|(status, _)| *status)
    }

    /// The page for `status`, if the project has one (a few entries: a scan).
    pub fn get(&self, status: u16) -> Option<&ErrorPage> {
        self.0
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, page)| page)
    }
}
