//! The configuration file as written: serde structs that reject unknown keys. Semantic
//! checks and conversions happen in `validate.rs`.

use crate::rules::RuleSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub instance_name: Option<String>,
    /// Pingora `ServerConf` keys; checked against its field names in validation.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::server_schema")]
    pub server: serde_yaml::Mapping,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub access_log: RawAccessLog,
    #[serde(default)]
    pub listeners: BTreeMap<String, RawListener>,
    #[serde(default)]
    pub pools: BTreeMap<String, RawPool>,
    #[serde(default)]
    pub projects: Vec<RawProject>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    #[serde(default)]
    pub token: Option<String>,
}

fn default_admin_listen() -> String {
    "127.0.0.1:9090".to_string()
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            listen: default_admin_listen(),
            token: None,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    #[serde(default = "default_log_target")]
    pub target: String,
    #[serde(default = "default_log_format")]
    pub format: String,
}

fn default_log_target() -> String {
    "stdout".to_string()
}

fn default_log_format() -> String {
    "combined".to_string()
}

impl Default for RawAccessLog {
    fn default() -> Self {
        RawAccessLog {
            target: default_log_target(),
            format: default_log_format(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub address: String,
    #[serde(default)]
    pub tls: Option<RawListenerTls>,
    /// How long an idle client connection (HTTP/1.1 keep-alive, HTTP/2) stays open.
    #[serde(default)]
    pub keepalive_timeout: Option<String>,
    /// Requests served on one HTTP/1.1 connection before it is closed.
    #[serde(default)]
    pub keepalive_requests: Option<std::num::NonZeroU32>,
    /// Client connections open at once; more are answered 503 and closed. Default: no limit.
    #[serde(default)]
    pub max_connections: Option<std::num::NonZeroU32>,
    /// The longest a whole HTTP/1 request head may take to arrive (answered 408 after).
    #[serde(default)]
    pub header_timeout: Option<String>,
    /// The longest a write to the client may wait on a client that does not read (the
    /// request is then dropped: an HTTP/1 connection closed, an HTTP/2 stream reset).
    #[serde(default)]
    pub send_timeout: Option<String>,
    /// The largest request head accepted (request line and headers), e.g. "64KiB";
    /// larger ones are answered 431 (414 when the request line alone is too long).
    #[serde(default)]
    pub max_header_size: Option<String>,
    /// Also serve HTTP/2 without TLS (h2c, prior knowledge) on a plain listener, next to
    /// HTTP/1.1 on the same port.
    #[serde(default)]
    pub h2c: bool,
    /// Every connection begins with a PROXY protocol header (v1 or v2) from a load balancer
    /// in front, whose client address is then the connection's.
    #[serde(default)]
    pub proxy_protocol: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawListenerTls {
    pub cert: String,
    pub key: String,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default = "yes")]
    pub http2: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub backends: Vec<RawBackend>,
    #[serde(default)]
    pub selection: Selection,
    #[serde(default)]
    pub hash_key: Option<String>,
    #[serde(default, deserialize_with = "upstream_tls")]
    #[schemars(schema_with = "super::schema::upstream_tls_schema")]
    pub tls: Option<RawUpstreamTls>,
    #[serde(default)]
    pub http2: bool,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    #[serde(default)]
    pub retries: Option<usize>,
    #[serde(default)]
    pub health_check: Option<RawHealthCheck>,
    /// How often backends given by host name are resolved again (`30s`), or `never`.
    #[serde(default)]
    pub resolve_interval: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    #[default]
    RoundRobin,
    Random,
    ConsistentHash,
    LeastConn,
}

/// `- 10.0.0.1:80` or `- { address: 10.0.0.1:80, weight: 2 }`.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum RawBackend {
    Address(String),
    Weighted(RawWeightedBackend),
}

/// By hand rather than `untagged`: serde's untagged enums take a one-item list for a string
/// and report a misspelt key of the mapping form only as "not a backend".
impl<'de> Deserialize<'de> for RawBackend {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        const EXPECTED: &str = "a backend: \"host:port\" or { address: \"host:port\", weight: N }";
        match serde_yaml::Value::deserialize(deserializer)? {
            serde_yaml::Value::String(address) => Ok(RawBackend::Address(address)),
            map @ serde_yaml::Value::Mapping(_) => serde_yaml::from_value(map)
                .map(RawBackend::Weighted)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(format!("expected {EXPECTED}"))),
        }
    }
}

impl RawBackend {
    /// `host:port` as written, and the weight (1 when not given).
    pub fn address_and_weight(&self) -> (&str, usize) {
        match self {
            RawBackend::Address(a) => (a, 1),
            RawBackend::Weighted(w) => (&w.address, w.weight),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWeightedBackend {
    pub address: String,
    #[serde(default = "one")]
    pub weight: usize,
}

fn one() -> usize {
    1
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamTls {
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default = "yes")]
    pub verify: bool,
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// `tls: false | true | { sni, verify, ca_file }`.
fn upstream_tls<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RawUpstreamTls>, D::Error> {
    d.deserialize_any(BoolOrMap {
        expecting: "false, true or { sni: NAME, verify: true, ca_file: PATH }",
        on_true: || RawUpstreamTls {
            verify: true,
            ..Default::default()
        },
    })
}

/// `false | true | { ... }`, read in place (an untagged enum would only say "did not match
/// any variant"; reading a `Value` first would place every error at the enclosing entry).
struct BoolOrMap<T> {
    expecting: &'static str,
    /// What `true` stands for.
    on_true: fn() -> T,
}

impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for BoolOrMap<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Option<T>, E> {
        Ok(v.then(self.on_true))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub connect: Option<String>,
    pub read: Option<String>,
    pub write: Option<String>,
    pub idle: Option<String>,
    pub tunnel: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    #[serde(default)]
    pub kind: HealthCheckKind,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub expect_status: Option<Vec<u16>>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub rise: Option<usize>,
    #[serde(default)]
    pub fall: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckKind {
    #[default]
    Http,
    Tcp,
    None,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProject {
    pub name: String,
    pub hosts: Vec<String>,
    #[serde(default)]
    pub listeners: Option<Vec<String>>,
    #[serde(default)]
    pub tls: Option<RawCertPair>,
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default = "yes")]
    pub preserve_host: bool,
    #[serde(default)]
    pub trust_proxy_headers: bool,
    /// Rules match paths without their parameters (`;` to a segment's end), as Java
    /// backends route them.
    #[serde(default)]
    pub ignore_path_params: bool,
    #[serde(default)]
    pub fail_mode: FailMode,
    /// The largest request body forwarded, e.g. "10MiB"; larger ones are answered 413.
    #[serde(default)]
    pub max_body_size: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    #[serde(default)]
    pub rules_files: Vec<String>,
    /// The project's own pages for the errors Rampart answers itself (a backend that cannot
    /// be reached, 502; none healthy, 503; a timeout, 504; ...): status → file.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::error_pages_schema")]
    pub error_pages: std::collections::BTreeMap<u16, String>,
    /// Compress answers for clients that accept it (gzip, brotli, zstd):
    /// `false | true | { level: N }`.
    #[serde(default, deserialize_with = "compression")]
    #[schemars(schema_with = "super::schema::compression_schema")]
    pub compression: Option<RawCompression>,
    /// Requests a client (by address) may send each second; more are answered 429.
    #[serde(default)]
    pub rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub requests_per_second: std::num::NonZeroU32,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCompression {
    /// 1 (fastest) to 9 (smallest); default 6.
    #[serde(default)]
    pub level: Option<u32>,
}

/// `compression: false | true | { level: N }`.
fn compression<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RawCompression>, D::Error> {
    d.deserialize_any(BoolOrMap {
        expecting: "false, true or { level: N } (1 to 9)",
        on_true: RawCompression::default,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCertPair {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    #[default]
    Open,
    Closed,
}

/// The spelling the configuration file uses, for `check`, `rules test` and `/status`.
macro_rules! config_spelling {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self {
                    $(Self::$variant => $text),+
                })
            }
        }
    };
}

config_spelling!(Selection {
    RoundRobin => "round_robin",
    Random => "random",
    ConsistentHash => "consistent_hash",
    LeastConn => "least_conn",
});
config_spelling!(HealthCheckKind { Http => "http", Tcp => "tcp", None => "none" });
config_spelling!(FailMode { Open => "open", Closed => "closed" });
