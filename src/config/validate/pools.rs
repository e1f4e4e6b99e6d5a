//! `pools:`: backends, selection, upstream TLS, timeouts, health checks.

use super::Checker;
use crate::config::model::*;
use crate::config::raw::{RawBackend, RawHealthCheck, RawPool};
use pingora_core::tls::x509::X509;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

pub(super) fn pools(ck: &mut Checker, raw: &BTreeMap<String, RawPool>) -> Vec<PoolSettings> {
    // CA files already found to hold certificates: one bundle named by hundreds of pools is
    // read and parsed once.
    let mut good_cas = HashMap::new();
    raw.iter()
        .filter_map(|(name, p)| pool(ck, &format!("pools.{name}"), name, p, &mut good_cas))
        .collect()
}

fn pool(
    ck: &mut Checker,
    key: &str,
    name: &str,
    p: &RawPool,
    good_cas: &mut HashMap<String, TrustedCas>,
) -> Option<PoolSettings> {
    let errors_before = ck.errors.len();
    if p.backends.is_empty() {
        ck.error(
            format!("{key}.backends"),
            "a pool needs at least one backend (\"host:port\")",
        );
    }
    // Entries written twice (as the same name or address) are a mistake; an address that
    // two entries reach (a name's among them) is one backend.
    let (mut names, mut literals, mut taken) = (HashSet::new(), HashSet::new(), HashSet::new());
    let mut any_named = false;
    let mut backends = Vec::new();
    for (i, b) in p.backends.iter().enumerate() {
        let bkey = format!("{key}.backends[{i}]");
        let (addr, weight) = b.address_and_weight();
        if weight == 0 {
            ck.error(
                format!("{bkey}.weight"),
                "must be at least 1 (remove the backend to stop sending it traffic)",
            );
            continue;
        }
        if weight > MAX_WEIGHT {
            // Pingora's weighted selections list a backend once per unit of weight.
            ck.error(
                format!("{bkey}.weight"),
                format!("must be at most {MAX_WEIGHT}: weights are relative, e.g. 1 and 3"),
            );
            continue;
        }
        if let Some((host, _)) = addr
            .rsplit_once(':')
            .filter(|(h, _)| h.contains(':') && !h.starts_with('['))
        {
            // `::1:81` is also a whole IPv6 address without a port.
            ck.error(
                bkey,
                format!("`{addr}`: write an IPv6 backend in brackets, `[{host}]:PORT`"),
            );
            continue;
        }
        let named = addr.parse::<SocketAddr>().is_err();
        let port_alone = || {
            addr.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
        };
        let addresses = if named && !ck.options.resolve_names {
            // Checked for its form alone: it stands where an unresolved name does.
            match port_alone() {
                Some(port) => vec![BackendSettings::unresolved_address(port)],
                None => {
                    ck.error(
                        bkey,
                        format!(
                            "`{addr}` has no port number: write host:port, e.g. app.internal:8080"
                        ),
                    );
                    continue;
                }
            }
        } else if named {
            match lookup_backend(addr) {
                Ok(addresses) => addresses,
                Err(_) if !addr.contains(':') => {
                    ck.error(
                        bkey,
                        format!("`{addr}` has no port: write host:port, e.g. 10.0.0.11:8080"),
                    );
                    continue;
                }
                Err(why) => match port_alone().filter(|_| ck.options.start_unresolved) {
                    Some(port) => {
                        ck.warn(bkey.clone(), format!("`{addr}` does not resolve ({why}): the pool starts without it, and it is looked up again every second until it resolves"));
                        vec![BackendSettings::unresolved_address(port)]
                    }
                    None => {
                        ck.error(bkey, format!("`{addr}` does not resolve ({why}): check the name, or give the backend's address, e.g. 10.0.0.11:8080"));
                        continue;
                    }
                },
            }
        } else {
            addr.parse().into_iter().collect()
        };
        if addresses.iter().any(|a| a.port() == 0) {
            ck.error(
                bkey,
                format!("`{addr}`: port 0 is not a port a backend listens on"),
            );
            continue;
        }
        let written_twice = if named {
            !names.insert(addr)
        } else {
            !literals.insert(addresses[0])
        };
        if written_twice {
            ck.error(
                bkey,
                format!("{addr} is listed twice in this pool: give it a weight instead"),
            );
            continue;
        }
        any_named |= named;
        // A name's addresses may also be another entry's: each backend is taken once, as the
        // first entry reaching it gives it.
        for address in addresses {
            // An unresolved name's stand-in is no address another entry can share.
            if !address.ip().is_unspecified() && !taken.insert(address) {
                continue;
            }
            backends.push(BackendSettings {
                address,
                name: addr.to_string(),
                weight,
                named,
            });
        }
    }

    let hash_key = match (p.selection, p.hash_key.as_deref()) {
        (_, None) => HashKey::ClientIp,
        // An error here does not end the pool's checks: the rest are reported in the same run.
        (Selection::ConsistentHash, Some(k)) => {
            parse_hash_key(ck, &format!("{key}.hash_key"), k).unwrap_or(HashKey::ClientIp)
        }
        (_, Some(_)) => {
            ck.error(
                format!("{key}.hash_key"),
                "only used with `selection: consistent_hash`: remove it or change the selection",
            );
            HashKey::ClientIp
        }
    };

    let tls = p.tls.as_ref().map(|t| {
        let cas = t.ca_file.as_ref().and_then(|ca| match good_cas.get(ca) {
            Some(cas) => Some(cas.clone()),
            None => {
                let pem = ck.read_file(&format!("{key}.tls.ca_file"), ca)?;
                match X509::stack_from_pem(&pem) {
                    Ok(certs) if !certs.is_empty() => {
                        let cas = TrustedCas {
                            path: ca.into(),
                            certs: Arc::new(certs.into_boxed_slice()),
                        };
                        good_cas.insert(ca.clone(), cas.clone());
                        Some(cas)
                    }
                    _ => {
                        ck.error(format!("{key}.tls.ca_file"), format!("`{ca}` holds no PEM certificate"));
                        None
                    }
                }
            }
        });
        if let Some(problem) = t.sni.as_deref().and_then(sni_problem) {
            ck.error(format!("{key}.tls.sni"), problem);
        }
        // Without `sni`, backends all named by one host name (`api.internal:443`) give it.
        // An empty one (`${VAR:-}`) is none: Pingora would turn verification off for it.
        let sni = t
            .sni
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| backend_host_name(&p.backends));
        if t.verify && sni.is_none() && !all_named(&p.backends) {
            ck.error(format!("{key}.tls"), "`verify: true` needs `sni: NAME` (the name the backends' certificates are issued for; without it, backends given by host name are each checked against their own), or set `verify: false`");
        }
        UpstreamTls {
            sni: sni.unwrap_or_default(),
            verify: t.verify,
            ca_file: cas,
        }
    });
    let t = &p.timeouts;
    let mut dur = |k: &str, v: &Option<String>| {
        v.as_deref()
            .and_then(|v| ck.duration(&format!("{key}.timeouts.{k}"), v))
    };
    let timeouts = Timeouts {
        connect: dur("connect", &t.connect).or(Some(Duration::from_secs(2))),
        read: dur("read", &t.read).or(Some(Duration::from_secs(30))),
        write: dur("write", &t.write).or(Some(Duration::from_secs(30))),
        idle: dur("idle", &t.idle).or(Some(Duration::from_secs(60))),
        tunnel: dur("tunnel", &t.tunnel).or(Some(Duration::from_secs(3600))),
    };
    let health_check = health_check(ck, &format!("{key}.health_check"), p.health_check.as_ref());
    let resolve_interval =
        resolve_interval(ck, key, p.resolve_interval.as_deref()).filter(|_| any_named);

    (ck.errors.len() == errors_before).then(|| PoolSettings {
        name: name.to_string(),
        backends,
        selection: p.selection,
        hash_key,
        tls,
        http2: p.http2,
        timeouts,
        retries: p.retries.unwrap_or(2),
        health_check,
        resolve_interval,
    })
}

const MAX_WEIGHT: usize = 1000;

/// Names are resolved again no more often than this: each round asks the DNS servers again.
const MIN_RESOLVE_INTERVAL: Duration = Duration::from_millis(100);

/// `resolve_interval`: 30 s unless given; `never` keeps the addresses found at the start.
fn resolve_interval(ck: &mut Checker, key: &str, value: Option<&str>) -> Option<Duration> {
    let key = format!("{key}.resolve_interval");
    match value.map(str::trim) {
        None => Some(Duration::from_secs(30)),
        Some("never") => None,
        Some(v) => {
            match ck.duration(&key, v)? {
                d if d < MIN_RESOLVE_INTERVAL => {
                    ck.error(key, "must be at least 100ms (or `never`): each round asks the DNS servers again");
                    None
                }
                d => Some(d),
            }
        }
    }
}

/// A backend given by host name (`app.internal:8080`) to its addresses, sorted (a resolver's
/// order changes between answers; the pool's must not), as the system's resolver gives them.
pub fn lookup_backend(name: &str) -> Result<Vec<SocketAddr>, String> {
    let mut addresses: Vec<SocketAddr> =
        name.to_socket_addrs().map_err(|e| e.to_string())?.collect();
    addresses.sort();
    addresses.dedup();
    if addresses.is_empty() {
        return Err("it resolves to no address".into());
    }
    Ok(addresses)
}

fn parse_hash_key(ck: &mut Checker, key: &str, value: &str) -> Option<HashKey> {
    let parsed = match value.split_once(':') {
        None if value == "client_ip" => Some(HashKey::ClientIp),
        None if value == "uri" => Some(HashKey::Uri),
        Some(("header", h)) => http::HeaderName::from_bytes(h.trim().as_bytes())
            .ok()
            .map(HashKey::Header),
        Some(("cookie", c)) if !c.trim().is_empty() => Some(HashKey::Cookie(c.trim().to_string())),
        _ => None,
    };
    if parsed.is_none() {
        ck.error(
            key,
            format!("`{value}` is not a hash key: use client_ip, uri, header:NAME or cookie:NAME"),
        );
    }
    parsed
}

fn health_check(ck: &mut Checker, key: &str, raw: Option<&RawHealthCheck>) -> HealthCheckSettings {
    let mut hc = HealthCheckSettings {
        kind: HealthCheckKind::None,
        path: "/".into(),
        host: None,
        expect_status: vec![200],
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(1),
        rise: 2,
        fall: 3,
    };
    let Some(raw) = raw else { return hc };
    hc.kind = raw.kind;
    if let Some(path) = &raw.path {
        if !path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err() {
            ck.error(
                format!("{key}.path"),
                format!("`{path}` is not a request path (it must start with /)"),
            );
        }
        hc.path = path.clone();
    }
    hc.host = raw.host.clone();
    if let Some(codes) = &raw.expect_status {
        if codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)) {
            ck.error(
                format!("{key}.expect_status"),
                "list HTTP status codes between 100 and 599, e.g. [200, 204]",
            );
        }
        hc.expect_status = codes.clone();
    }
    if let Some(v) = &raw.interval {
        hc.interval = ck
            .duration(&format!("{key}.interval"), v)
            .unwrap_or(hc.interval);
    }
    if let Some(v) = &raw.timeout {
        hc.timeout = ck
            .duration(&format!("{key}.timeout"), v)
            .unwrap_or(hc.timeout);
    }
    for (name, value, slot) in [
        ("rise", raw.rise, &mut hc.rise),
        ("fall", raw.fall, &mut hc.fall),
    ] {
        match value {
            Some(0) => ck.error(format!("{key}.{name}"), "must be at least 1"),
            Some(n) => *slot = n,
            None => {}
        }
    }
    hc
}

/// Each backend's host: a name, an IP or a bracketed IPv6 address.
fn backend_hosts(backends: &[RawBackend]) -> impl Iterator<Item = &str> {
    backends.iter().map(|b| {
        let (addr, _) = b.address_and_weight();
        addr.rsplit_once(':').map_or(addr, |(host, _)| host)
    })
}

fn is_name(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[')
}

/// The host name shared by every backend address, when they are names and not IPs.
fn backend_host_name(backends: &[RawBackend]) -> Option<String> {
    let mut hosts = backend_hosts(backends);
    let first = hosts.next()?;
    (is_name(first) && hosts.all(|h| h.eq_ignore_ascii_case(first)))
        .then(|| first.to_ascii_lowercase())
}

/// Every backend is given by host name (each then has a name to check its certificate with).
fn all_named(backends: &[RawBackend]) -> bool {
    !backends.is_empty() && backend_hosts(backends).all(is_name)
}

/// Why `sni` is not a name a certificate can be checked against and sent as SNI, if it is not.
fn sni_problem(sni: &str) -> Option<String> {
    if sni.is_empty() {
        return None; // Reported as a missing name when `verify` needs one.
    }
    if sni.parse::<std::net::IpAddr>().is_ok() {
        return Some(format!("`{sni}` is an IP address: TLS sends only host names as SNI, and certificates are checked against the name here; write the name the certificate is issued for, or set `verify: false`"));
    }
    if let Some((name, port)) = sni.rsplit_once(':') {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return Some(format!("`{sni}` has a port: write the name alone (`sni: {name}`); the port comes from the backends"));
        }
    }
    if sni.contains('*') {
        return Some(format!("`{sni}` is a wildcard: write one name the backends' certificate covers (for `*.internal`, e.g. `api.internal`)"));
    }
    let name = sni.trim_end_matches('.');
    let too_long = sni.len() > 253 || name.split('.').any(|l| l.len() > 63);
    if too_long || !super::is_dns_name(name) {
        return Some(format!(
            "`{sni}` is not a host name (letters, digits, `-` and `_` in dot-separated labels)"
        ));
    }
    None
}
