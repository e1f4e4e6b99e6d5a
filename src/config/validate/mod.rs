//! Raw file → validated [`Config`]. Every problem is collected (not just the first) and
//! reported with its position and key path.

mod error_pages;
mod listeners;
mod pools;
mod projects;
mod sections;

pub use listeners::{overlaps, DEFAULT_MAX_HEADER_SIZE};
pub use pools::lookup_backend;

use super::error::{ConfigError, ConfigErrors};
use super::every_error::{describe, second_document};
use super::model::*;
use super::position::PositionIndex;
use super::raw::RawConfig;
use crate::proxy::access_log::{LogFormat, LogTarget};
use pingora_core::server::configuration::ServerConf;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Collects errors for one file, locating each key path in the text.
pub(super) struct Checker {
    pub(super) file: PathBuf,
    index: PositionIndex,
    errors: Vec<ConfigError>,
    /// Mistakes that do not stop the config from loading (`check` prints them, `run` logs
    /// them): an expired certificate, an admin service open to all.
    warnings: Vec<ConfigError>,
    options: super::LoadOptions,
}

impl Checker {
    /// An entry of this file at `key`'s position.
    fn located(&self, key: String, message: String) -> ConfigError {
        let (line, column) = self.index.locate(&key);
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            key,
            message,
        }
    }

    pub(super) fn warn(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let warning = self.located(key.into(), format!("warning: {}", message.into()));
        self.warnings.push(warning);
    }

    pub(super) fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        // One line per error, even for multi-line messages (regex errors draw a caret).
        let message: String = message.into();
        let message = message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let error = self.located(key.into(), message);
        self.errors.push(error);
    }

    /// An error located in another file (a rules file).
    pub(super) fn error_in(
        &mut self,
        file: &Path,
        line: usize,
        column: usize,
        key: &str,
        message: String,
    ) {
        self.errors.push(ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message,
        });
    }

    /// Parses a duration such as `250ms`, `2s` or `1m`.
    pub(super) fn duration(&mut self, key: &str, value: &str) -> Option<Duration> {
        match humantime::parse_duration(value.trim()) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                self.error(key, "must be greater than zero (e.g. \"500ms\", \"2s\")");
                None
            }
            Err(e) => {
                self.error(
                    key,
                    format!(
                        "`{value}` is not a duration ({e}); write e.g. \"250ms\", \"2s\" or \"1m\""
                    ),
                );
                None
            }
        }
    }

    /// A number of bytes, written as a number or with a unit (`"64KiB"`, `"10MB"`).
    pub(super) fn size(&mut self, key: &str, value: &str) -> Option<u64> {
        match value.trim().parse::<bytesize::ByteSize>() {
            Ok(size) => Some(size.as_u64()),
            Err(_) => {
                self.error(
                    key,
                    format!("`{value}` is not a size: write bytes, or e.g. \"64KiB\" (1 KiB = 1024 bytes, 1 kB = 1000)"),
                );
                None
            }
        }
    }

    /// Checks that a file exists and is readable, returning its content.
    pub(super) fn read_file(&mut self, key: &str, path: &str) -> Option<Vec<u8>> {
        match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.error(key, format!("cannot read `{path}`: {e} (check the path and that the rampart user may read it)"));
                None
            }
        }
    }
}

pub(super) fn validate(
    file: &Path,
    text: &str,
    options: super::LoadOptions,
) -> Result<Config, ConfigErrors> {
    let index = PositionIndex::build(text);
    if !index.duplicates().is_empty() {
        return Err(ConfigErrors(
            index
                .duplicates()
                .iter()
                .map(|d| ConfigError {
                    file: file.to_path_buf(),
                    line: d.at.0,
                    column: d.at.1,
                    key: d.path.clone(),
                    message: format!(
                        "given twice in the same mapping (first on line {}): keep one, YAML would silently use the last",
                        d.first.0
                    ),
                })
                .collect(),
        ));
    }
    let raw: RawConfig = parse(file, text, &index)?;
    let mut ck = Checker {
        file: file.to_path_buf(),
        index,
        errors: Vec::new(),
        warnings: Vec::new(),
        options,
    };
    let server = server_conf(&mut ck, raw.server);
    let admin = admin(&mut ck, &raw.admin);
    let access_log = access_log(&mut ck, &raw.access_log);
    let listeners = listeners::listeners(&mut ck, &raw.listeners);
    if let Some(a) = &admin {
        // Pingora shares one socket between services bound to the same address: the admin
        // service would answer on the proxy's port.
        if let Some(l) = listeners
            .iter()
            .find(|l| listeners::overlaps(l.address, a.listen))
        {
            let why =
                listeners::overlap_message(a.listen, l.address, &format!("listener `{}`", l.name));
            ck.error("admin.listen", why);
        }
        if a.listen.ip().is_unspecified() && a.token.is_none() {
            ck.warn(
                "admin.listen",
                format!("the admin service listens on every address ({}) without a token: set admin.token, or listen on 127.0.0.1", a.listen),
            );
        }
    }
    let pools = pools::pools(&mut ck, &raw.pools);
    let pool_names = raw.pools.keys().map(String::as_str).collect();
    let listener_names = raw.listeners.keys().map(String::as_str).collect();
    let tls_listeners: std::collections::HashSet<&str> = raw
        .listeners
        .iter()
        .filter(|(_, l)| l.tls.is_some())
        .map(|(n, _)| n.as_str())
        .collect();
    let projects = projects::projects(
        &mut ck,
        raw.projects,
        &listener_names,
        &tls_listeners,
        &pool_names,
    );
    if !ck.errors.is_empty() {
        // In file order (the config's own errors first), as an editor lists them.
        let config = ck.file.clone();
        ck.errors.sort_by(|a, b| {
            (a.file != config, &a.file, a.line, a.column).cmp(&(
                b.file != config,
                &b.file,
                b.line,
                b.column,
            ))
        });
        return Err(ConfigErrors(ck.errors));
    }
    Ok(Config {
        warnings: ck.warnings.iter().map(ToString::to_string).collect(),
        file: file.to_path_buf(),
        instance_name: raw
            .instance_name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(host_name),
        server,
        admin: admin.expect("checked"),
        access_log: access_log.expect("checked"),
        listeners,
        pools,
        projects,
    })
}

/// The machine's name, for an instance that names itself nothing (`${HOSTNAME:-}` where
/// HOSTNAME is unset, as in services): every machine of a fleet would otherwise be `rampart`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rampart".to_string())
}

/// Strict deserialization; the error carries the key path and the position.
fn parse(file: &Path, text: &str, index: &PositionIndex) -> Result<RawConfig, ConfigErrors> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = match e.path().to_string() {
            p if p == "." => String::new(),
            p => p,
        };
        let inner = e.into_inner();
        let one = "the configuration is one document";
        if let Some((line, message)) = second_document(text, &inner, one) {
            // serde_yaml says so with no position (it would print 1:1).
            return ConfigErrors::single(ConfigError {
                file: file.to_path_buf(),
                line,
                column: 1,
                key,
                message,
            });
        }
        let (line, column) = inner
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or_else(|| index.locate(&key));
        let first = ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            message: describe(&key, &inner),
            key,
        };
        // The rest, section by section (located by key: a `Value` keeps no positions).
        let document = serde_yaml::from_str(text).unwrap_or(serde_yaml::Value::Null);
        let mut errors: Vec<ConfigError> = sections::section_errors(document)
            .into_iter()
            .filter(|(key, _)| *key != first.key)
            .map(|(key, inner)| {
                let (line, column) = index.locate(&key);
                ConfigError {
                    file: file.to_path_buf(),
                    line,
                    column,
                    message: describe(&key, &inner),
                    key,
                }
            })
            .collect();
        errors.push(first);
        errors.sort_by_key(|e| (e.line, e.column));
        ConfigErrors(errors)
    })
}

/// The `server:` mapping's unknown keys and wrongly typed values, each under its key path;
/// Pingora's `ServerConf` takes unknown keys silently. Also the mapping of its known keys,
/// and the `ServerConf` they make when they have no error (read as the file is: a plain
/// `123` is text where text is expected).
pub(super) fn server_errors(
    raw: serde_yaml::Mapping,
) -> (
    serde_yaml::Mapping,
    Option<ServerConf>,
    Vec<(String, serde_yaml::Error)>,
) {
    let known = super::schema::server_keys();
    let mut ok = serde_yaml::Mapping::new();
    let mut errors = Vec::new();
    for (k, v) in raw {
        let name = k.as_str().unwrap_or_default().to_string();
        if known.contains(&name) {
            ok.insert(k, v);
        } else {
            errors.push((
                format!("server.{name}"),
                serde::de::Error::custom("unknown key: not a Pingora server setting (see `threads`, `pid_file`, `upgrade_sock`, `grace_period_seconds`, ... in docs/configuration.md)"),
            ));
        }
    }
    let conf = super::every_error::errors_of::<ServerConf>(
        "server",
        serde_yaml::Value::Mapping(ok.clone()),
        &mut errors,
    );
    (ok, conf, errors)
}

/// Dot-separated labels of letters, digits, `-` and `_`, none empty: a host name as projects'
/// `hosts` and a pool's `sni` take it.
pub(super) fn is_dns_name(name: &str) -> bool {
    name.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Builds Pingora's `ServerConf` from the `server:` mapping, accepting exactly its keys.
fn server_conf(ck: &mut Checker, raw: serde_yaml::Mapping) -> ServerConf {
    let (ok, conf, errors) = server_errors(raw);
    for (key, inner) in errors {
        let message = describe(&key, &inner);
        ck.error(key, message);
    }
    let mut conf = conf.unwrap_or_default();
    let given = |key: &str| ok.contains_key(key);
    if !given("pid_file") {
        conf.pid_file = "/run/rampart/rampart.pid".into();
    }
    if !given("upgrade_sock") {
        conf.upgrade_sock = "/run/rampart/upgrade.sock".into();
    }
    if !given("threads") {
        conf.threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    }
    // Pingora sleeps the grace period unconditionally on SIGTERM; 300 s is far too long.
    conf.grace_period_seconds.get_or_insert(10);
    conf.graceful_shutdown_timeout_seconds.get_or_insert(5);
    if !given("daemon_wait_for_ready") {
        conf.daemon_wait_for_ready = true;
    }
    // Pingora's own timeouts keep one ordered map of deadlines per thread, searched under a
    // lock on every socket read that waits; tokio's timer wheel costs less per request
    // (bench/proxy-instructions.sh: -2 %) for the second-scale timeouts of pools and listeners.
    if !given("fast_timeout_to_tokio_threshold_seconds") {
        conf.fast_timeout_to_tokio_threshold_seconds = Some(0);
    }
    for (key, path, why) in [
        (
            "pid_file",
            &conf.pid_file,
            "systemd and the upgrade find the process by it",
        ),
        (
            "upgrade_sock",
            &conf.upgrade_sock,
            "the upgrade hands sockets over by this path",
        ),
    ] {
        if !Path::new(path).is_absolute() {
            ck.error(
                format!("server.{key}"),
                format!("`{path}` must be an absolute path ({why})"),
            );
        }
    }
    if conf.threads == 0 {
        ck.error("server.threads", "must be at least 1");
    }
    // Pingora panics on the first and silently accepts nothing with the second.
    if conf.max_blocking_threads == Some(0) {
        ck.error(
            "server.max_blocking_threads",
            "must be at least 1 (or left out)",
        );
    }
    // Pingora checks these only in configurations it loads from a file itself.
    if conf.runtime_metrics_poll_time_histogram_resolution_micros == Some(0) {
        ck.error(
            "server.runtime_metrics_poll_time_histogram_resolution_micros",
            "must be at least 1 (or left out)",
        );
    }
    if let Some(n) = conf
        .runtime_metrics_poll_time_histogram_buckets
        .filter(|n| !(1..=1024).contains(n))
    {
        ck.error(
            "server.runtime_metrics_poll_time_histogram_buckets",
            format!("{n} buckets: must be from 1 to 1024 (or left out)"),
        );
    }
    // Pingora leaves offloading off, silently, unless both keys are set above 0.
    let (pools, threads) = (
        "upstream_connect_offload_threadpools",
        "upstream_connect_offload_thread_per_pool",
    );
    match (
        conf.upstream_connect_offload_threadpools,
        conf.upstream_connect_offload_thread_per_pool,
    ) {
        (None, None) | (Some(1..), Some(1..)) => {}
        (Some(0), _) => ck.error(
            format!("server.{pools}"),
            "must be at least 1 (or left out with its pair)",
        ),
        (_, Some(0)) => ck.error(
            format!("server.{threads}"),
            "must be at least 1 (or left out with its pair)",
        ),
        (Some(_), None) => ck.error(
            format!("server.{pools}"),
            format!("needs `{threads}` too: Pingora offloads only when both are set"),
        ),
        (None, Some(_)) => ck.error(
            format!("server.{threads}"),
            format!("needs `{pools}` too: Pingora offloads only when both are set"),
        ),
    }
    if conf.listener_tasks_per_fd == 0 {
        ck.error("server.listener_tasks_per_fd", "must be at least 1");
    }
    // Pingora reads these only once it runs, and panics on failure: check them here.
    if let Some(ca) = &conf.ca_file {
        ck.read_file("server.ca_file", ca);
    }
    for (key, ips, v6) in [
        ("client_bind_to_ipv4", &conf.client_bind_to_ipv4, false),
        ("client_bind_to_ipv6", &conf.client_bind_to_ipv6, true),
    ] {
        for (i, ip) in ips.iter().enumerate() {
            if !ip
                .parse::<std::net::IpAddr>()
                .is_ok_and(|addr| addr.is_ipv6() == v6)
            {
                let (family, example) = if v6 {
                    (6, "2001:db8::10")
                } else {
                    (4, "10.0.0.10")
                };
                ck.error(
                    format!("server.{key}[{i}]"),
                    format!(
                        "`{ip}` is not an IPv{family} address (one of this host's, e.g. {example})"
                    ),
                );
            }
        }
    }
    if let Some(log) = conf.error_log.as_deref().filter(|l| !l.is_empty()) {
        let dir = Path::new(log)
            .parent()
            .filter(|d| !d.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            ck.error(
                "server.error_log",
                format!("the directory of `{log}` does not exist (create it or change the path)"),
            );
        }
    }
    conf
}

fn admin(ck: &mut Checker, raw: &super::raw::RawAdmin) -> Option<AdminSettings> {
    let listen = match raw.listen.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            ck.error(
                "admin.listen",
                format!(
                    "`{}` is not an IP:port address (e.g. 127.0.0.1:9090)",
                    raw.listen
                ),
            );
            None
        }
    }?;
    Some(AdminSettings {
        listen,
        token: raw.token.clone().filter(|t| !t.is_empty()),
    })
}

fn access_log(ck: &mut Checker, raw: &super::raw::RawAccessLog) -> Option<AccessLogSettings> {
    let target = LogTarget::parse(&raw.target)
        .map_err(|e| ck.error("access_log.target", e))
        .ok();
    // The file itself may not exist yet (it is created), its directory should: otherwise no
    // line is written. A warning, not an error: the configuration may be checked on another
    // machine than the one it is for (the packages create /var/log/rampart).
    if let Some(LogTarget::File(path)) = &target {
        if path.is_dir() {
            ck.error(
                "access_log.target",
                format!(
                    "`{}` is a directory: name the file to write, e.g. `{}/access.log`",
                    path.display(),
                    path.display()
                ),
            );
        } else if path.parent().is_some_and(|d| !d.is_dir()) {
            ck.warn(
                "access_log.target",
                format!(
                    "the directory of `{}` does not exist here: Rampart would serve without an access log (every line counted in rampart_access_log_dropped_total); create it or change the path",
                    path.display()
                ),
            );
        }
    }
    let format = LogFormat::parse(&raw.format)
        .map_err(|e| ck.error("access_log.format", e))
        .ok();
    Some(AccessLogSettings {
        target: target?,
        format: format?,
    })
}
