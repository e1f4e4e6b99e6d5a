//! `listeners:` and certificate files (also used for per-project certificates).

use super::Checker;
use crate::config::model::{CertPair, ListenerSettings, ListenerTls, TlsVersion};
use crate::config::raw::RawListener;
use pingora_core::tls::{pkey::PKey, x509::X509};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::SystemTime;

/// nginx closes idle client connections after 75 s; Pingora never does between requests.
const DEFAULT_KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// nginx's `client_header_timeout`.
const DEFAULT_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// nginx's `send_timeout`; Pingora waits on a client that does not read for ever.
const DEFAULT_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// nginx's `keepalive_requests` default; Pingora's is no limit. Closing now and then frees a
/// connection's memory and lets a fleet's load balancer spread clients again.
const DEFAULT_KEEPALIVE_REQUESTS: u32 = 1000;
/// Pingora's own HTTP/2 limit on a request's header list; its HTTP/1 limit is 1 MiB.
/// nginx: 8 KiB per line, 32 KiB in all; HAProxy: ~15 KiB; Envoy: 60 KiB.
pub const DEFAULT_MAX_HEADER_SIZE: usize = 64 * 1024;
/// Below this, ordinary browser requests would be refused.
const MIN_HEADER_SIZE: usize = 1024;
/// Pingora answers a larger HTTP/1 head 400 itself.
const MAX_HEADER_SIZE: usize = 1024 * 1024 - 1;

pub(super) fn listeners(
    ck: &mut Checker,
    raw: &BTreeMap<String, RawListener>,
) -> Vec<ListenerSettings> {
    if raw.is_empty() {
        ck.error(
            "listeners",
            "no listener configured: add e.g. `listeners: { http: { address: \"0.0.0.0:80\" } }`",
        );
    }
    let mut seen: Vec<(SocketAddr, &str)> = Vec::new();
    let mut out = Vec::new();
    for (name, l) in raw {
        let key = format!("listeners.{name}");
        let Ok(address) = l.address.parse::<SocketAddr>() else {
            ck.error(
                format!("{key}.address"),
                format!(
                    "`{}` is not an IP:port address (e.g. \"0.0.0.0:443\" or \"[::]:443\")",
                    l.address
                ),
            );
            continue;
        };
        if let Some((other_addr, other)) = seen.iter().find(|(a, _)| overlaps(*a, address)) {
            ck.error(
                format!("{key}.address"),
                overlap_message(address, *other_addr, &format!("listener `{other}`")),
            );
        }
        seen.push((address, name));
        let tls = l.tls.as_ref().and_then(|t| {
            // Both checked, so that a certificate error does not hide the version's.
            let cert = cert_pair(ck, &format!("{key}.tls"), &t.cert, &t.key, &[]);
            let min_version = match t.min_version.as_deref().unwrap_or("1.2") {
                "1.2" => Some(TlsVersion::V1_2),
                "1.3" => Some(TlsVersion::V1_3),
                other => {
                    ck.error(
                        format!("{key}.tls.min_version"),
                        format!("`{other}` is not supported: use \"1.2\" or \"1.3\""),
                    );
                    None
                }
            };
            Some(ListenerTls {
                cert: cert?,
                min_version: min_version?,
                http2: t.http2,
            })
        });
        let keepalive_timeout = match &l.keepalive_timeout {
            None => DEFAULT_KEEPALIVE_TIMEOUT,
            Some(v) => {
                let key = format!("{key}.keepalive_timeout");
                match ck.duration(&key, v) {
                    Some(d) if d.as_secs() >= 1 => d,
                    Some(_) => {
                        ck.error(
                            key,
                            "must be at least 1s (idle connections are closed in whole seconds)",
                        );
                        DEFAULT_KEEPALIVE_TIMEOUT
                    }
                    None => DEFAULT_KEEPALIVE_TIMEOUT,
                }
            }
        };
        let header_timeout = l
            .header_timeout
            .as_ref()
            .and_then(|v| ck.duration(&format!("{key}.header_timeout"), v))
            .unwrap_or(DEFAULT_HEADER_TIMEOUT);
        let send_timeout = l
            .send_timeout
            .as_ref()
            .and_then(|v| ck.duration(&format!("{key}.send_timeout"), v))
            .unwrap_or(DEFAULT_SEND_TIMEOUT);
        let max_header_size = l
            .max_header_size
            .as_ref()
            .and_then(|v| header_size(ck, &format!("{key}.max_header_size"), v))
            .unwrap_or(DEFAULT_MAX_HEADER_SIZE);
        let keepalive_requests = l
            .keepalive_requests
            .map_or(DEFAULT_KEEPALIVE_REQUESTS, |n| n.get());
        if l.h2c && l.tls.is_some() {
            ck.error(
                format!("{key}.h2c"),
                "h2c is HTTP/2 without TLS, for plain listeners: a TLS listener offers HTTP/2 through ALPN (`tls.http2`); remove `h2c`",
            );
        }
        if l.tls.is_some() && tls.is_none() {
            continue;
        }
        out.push(ListenerSettings {
            name: name.clone(),
            address,
            tls,
            keepalive_timeout,
            keepalive_requests,
            max_connections: l.max_connections.map(|n| n.get()),
            header_timeout,
            send_timeout,
            max_header_size,
            h2c: l.h2c && l.tls.is_none(),
            proxy_protocol: l.proxy_protocol,
        });
    }
    out
}

/// A size such as `"64KiB"` within what a listener can hold heads to.
fn header_size(ck: &mut Checker, key: &str, value: &str) -> Option<usize> {
    let size = ck.size(key, value)?;
    if !(MIN_HEADER_SIZE as u64..=MAX_HEADER_SIZE as u64).contains(&size) {
        ck.error(
            key,
            format!("{size} bytes is outside 1KiB to 1MiB - 1 byte (Pingora refuses larger heads itself; nginx allows 32 KiB, HAProxy ~15 KiB)"),
        );
        return None;
    }
    Some(size as usize)
}

/// True when a socket bound to `a` and one bound to `b` would take the same connections:
/// the same port, and the same IP or one that covers the other (`0.0.0.0` every IPv4
/// address; `[::]` every address, IPv4 too, as Linux binds it dual-stack).
pub fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    let covers = |x: SocketAddr, y: SocketAddr| {
        x.ip() == y.ip() || (x.ip().is_unspecified() && (x.is_ipv6() || y.is_ipv4()))
    };
    a.port() == b.port() && (covers(a, b) || covers(b, a))
}

pub(super) fn overlap_message(address: SocketAddr, other_addr: SocketAddr, other: &str) -> String {
    if address == other_addr {
        format!("{address} is already used by {other}: each needs its own address")
    } else {
        format!("{address} overlaps {other_addr} of {other} (same port, and one address covers the other): give each its own port, or one `[::]:PORT` for both IPv4 and IPv6")
    }
}

/// Checks that `cert` and `key` are readable PEM files and that the key belongs to the
/// certificate; `key_path` is the YAML key holding `cert:` and `key:`.
pub(super) fn cert_pair(
    ck: &mut Checker,
    key_path: &str,
    cert: &str,
    key: &str,
    hosts: &[String],
) -> Option<CertPair> {
    let cert_bytes = ck.read_file(&format!("{key_path}.cert"), cert);
    let key_bytes = ck.read_file(&format!("{key_path}.key"), key);
    let (cert_bytes, key_bytes) = (cert_bytes?, key_bytes?);
    let Ok(x509) = X509::from_pem(&cert_bytes) else {
        ck.error(
            format!("{key_path}.cert"),
            format!("`{cert}` is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)"),
        );
        return None;
    };
    // The whole file: the server's certificate first, then its chain.
    let chain = X509::stack_from_pem(&cert_bytes).unwrap_or_else(|_| vec![x509.clone()]);
    // Never OpenSSL's default passphrase prompt: `check` would wait on the terminal, and a
    // service has none. An empty passphrase fails on an encrypted key.
    let Ok(pkey) = PKey::private_key_from_pem_callback(&key_bytes, |_| Ok(0)) else {
        let text = String::from_utf8_lossy(&key_bytes);
        let why = if text.contains("ENCRYPTED") {
            format!("`{key}` is encrypted: Rampart starts unattended and cannot ask for its passphrase; decrypt it (openssl pkey -in {key} -out {key}.plain) and keep it readable only by rampart")
        } else {
            format!("`{key}` is not a PEM private key (expected -----BEGIN PRIVATE KEY-----)")
        };
        ck.error(format!("{key_path}.key"), why);
        return None;
    };
    let matches = x509
        .public_key()
        .map(|p| p.public_eq(&pkey))
        .unwrap_or(false);
    if !matches {
        // A chain written intermediate first: the key is that of a later certificate.
        let later = chain
            .iter()
            .skip(1)
            .any(|c| c.public_key().is_ok_and(|p| p.public_eq(&pkey)))
            .then(|| subject(&x509));
        let why = match later {
            Some(first) => format!("`{key}` belongs to a later certificate of `{cert}`, not its first ({first}): the server's own certificate must come first, then the intermediates"),
            None => format!("`{key}` is not the private key of `{cert}`"),
        };
        ck.error(format!("{key_path}.key"), why);
        return None;
    }
    let ends = crate::certificates::chain_end(&chain);
    cert_warnings(ck, &format!("{key_path}.cert"), cert, &chain, ends, hosts);
    Some(CertPair {
        cert: cert.into(),
        key: key.into(),
        ends: ends.map(|(at, _)| at),
    })
}

/// `check` warns about a certificate that expires within this many days (Let's Encrypt's
/// clients renew 30 days ahead, so a certificate this close to its end was not renewed, or
/// was renewed and not reloaded).
const EXPIRY_WARNING_DAYS: u64 = 14;

/// An expired, soon to expire (or not yet valid) certificate, or one that names none of
/// `hosts`' patterns (`*` aside): clients would refuse it, but the config still loads.
/// `chain`: the file's certificates, the server's first; `ends`: when the chain stops working
/// and which certificate ends it ([`crate::certificates::chain_end`]).
fn cert_warnings(
    ck: &mut Checker,
    key: &str,
    path: &str,
    chain: &[X509],
    ends: Option<(SystemTime, usize)>,
    hosts: &[String],
) {
    let Some(x509) = chain.first() else { return };
    let which = |i: usize| match i {
        0 => format!("`{path}`"),
        _ => format!("`{path}` (its chain certificate {})", subject(&chain[i])),
    };
    let now = SystemTime::now();
    if let Some((at, i)) = ends {
        let text = chain[i].not_after().to_string();
        match at.duration_since(now) {
            Err(_) => ck.warn(
                key,
                format!("{} expired on {text}: clients will refuse it", which(i)),
            ),
            Ok(left) if left.as_secs() < EXPIRY_WARNING_DAYS * 86_400 => ck.warn(
                key,
                format!(
                    "{} expires on {text}, in {}: renew it, then reload Rampart (certificates are read at start)",
                    which(i),
                    match left.as_secs() {
                        s if s >= 86_400 => format!("{} day(s)", s / 86_400),
                        s => format!("{} hour(s)", s / 3_600),
                    }
                ),
            ),
            Ok(_) => {}
        }
    }
    if crate::certificates::time(x509.not_before()).is_some_and(|at| at > now) {
        let starts = x509.not_before();
        ck.warn(key, format!("`{path}` is not valid before {starts}"));
    }
    let names: Vec<String> = crate::certificates::dns_names(x509)
        .into_iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    for host in hosts.iter().filter(|h| h.as_str() != "*") {
        if !names.iter().any(|n| covers(n, host)) {
            ck.warn(
                key,
                format!(
                    "`{path}` does not name host `{host}` (it names: {}): clients of that host will see a name mismatch",
                    if names.is_empty() { "no DNS names".to_string() } else { names.join(", ") }
                ),
            );
        }
    }
}

/// Whether a certificate name (`shop.test`, `*.shop.test`) covers a host pattern of the same
/// forms: a wildcard covers one label.
fn covers(name: &str, host: &str) -> bool {
    if name.eq_ignore_ascii_case(host) {
        return true;
    }
    match name.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(label, rest)| {
            label != "*" && !label.is_empty() && rest.eq_ignore_ascii_case(suffix)
        }),
        None => false,
    }
}

/// A certificate's subject, e.g. `CN=Audit Intermediate CA`.
fn subject(x509: &X509) -> String {
    x509.subject_name()
        .entries()
        .filter_map(|e| {
            let value = e.data().to_string().ok()?;
            Some(format!("{}={value}", e.object().nid().short_name().ok()?))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
