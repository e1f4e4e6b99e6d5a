//! The `/status` document: instance, pools with per-backend health, projects with counts.
//! Fields are only ever added (scripts and the dashboard read them); times are given both as
//! unix milliseconds (`*_ms`, for arithmetic) and RFC 3339 (for people and log correlation).

use crate::proxy::Shared;
use crate::upstream::{BackendState, Pool};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// `"ok"`, or the error of a failed check or reload.
fn result(error: Option<&String>) -> Value {
    error.map_or_else(|| json!("ok"), |e| json!(e))
}

fn backend(b: &BackendState, healthy: bool) -> Value {
    let rec = b.snapshot();
    json!({
        "address": b.addr.to_string(),
        // As the config gives it: the address, or the host name it was resolved from.
        "name": &*b.name,
        "weight": b.weight,
        "healthy": healthy,
        // Taken out by connect failures seen on real traffic, whatever the active checks say.
        "passively_down": b.passively_down(),
        "in_flight": b.in_flight.load(Relaxed),
        "last_check_ms": rec.last_check.map(unix_ms),
        "last_check": rec.last_check.map(rfc3339),
        // null until the first active check (and always without active checks).
        "last_check_result": rec.last_check.map(|_| result(rec.last_error.as_ref())),
        "consecutive_failures": rec.consecutive_failures,
        "consecutive_successes": rec.consecutive_successes,
    })
}

fn pool(pool: &Pool) -> Value {
    let backends: Vec<Value> = pool
        .members()
        .into_iter()
        .map(|(b, healthy)| backend(&b, healthy))
        .collect();
    json!({
        "name": &*pool.name,
        "selection": pool.settings.selection.to_string(),
        "health_check": format!("{:?}", pool.settings.health_check.kind).to_lowercase(),
        "backends": backends,
        // Pools with backends given by host name: null otherwise.
        "resolution": pool.resolution().map(|r| json!({
            "interval_ms": pool.settings.resolve_interval.map(|i| i.as_millis() as u64),
            "last_ms": r.at.map(unix_ms),
            "last": r.at.map(rfc3339),
            "last_result": if r.errors.is_empty() {
                json!("ok")
            } else {
                json!(r.errors.iter().map(|(name, why)| format!("{name}: {why}")).collect::<Vec<_>>().join("; "))
            },
        })),
    })
}

fn certificate(c: &crate::server::ServedCertificate, now: SystemTime) -> Value {
    json!({
        "listener": c.listener,
        "file": c.file.display().to_string(),
        "served_for": c.served_for,
        "names": c.names,
        // A certificate may end before 1970: signed, and a formatter that takes it.
        "expires_ms": c.expires.map(|at| crate::certificates::unix_seconds(at) * 1000),
        "expires": c.expires.map(crate::certificates::rfc3339),
        // Negative once expired.
        "days_left": c.expires.map(|at| match at.duration_since(now) {
            Ok(d) => (d.as_secs() / 86_400) as i64,
            Err(e) => -((e.duration().as_secs() / 86_400) as i64) - 1,
        }),
    })
}

/// What a listener speaks and how many client connections it has open.
fn listener(l: &crate::config::ListenerSettings) -> Value {
    let open = crate::metrics::METRICS
        .connections_open
        .with_label_values(&[&l.name])
        .get();
    json!({
        "name": l.name,
        "address": l.address.to_string(),
        "tls": l.tls.is_some(),
        // How clients get HTTP/2 there: ALPN over TLS, h2c's preface, or not at all.
        "http2": match &l.tls {
            Some(t) if t.http2 => Some("alpn"),
            Some(_) => None,
            None if l.h2c => Some("h2c"),
            None => None,
        },
        "proxy_protocol": l.proxy_protocol,
        "max_connections": l.max_connections,
        "connections_open": open,
    })
}

pub fn status_json(shared: &Shared) -> Value {
    let now = SystemTime::now();
    let mut pools: Vec<&Arc<Pool>> = shared.pools.values().collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    let pools: Vec<Value> = pools.into_iter().map(|p| pool(p)).collect();
    // Counters, not rates: a reader computes rates from two documents (the dashboard does,
    // between its polls), so the server keeps no sampling state for it.
    let projects: Vec<Value> = shared
        .projects
        .iter()
        .map(|p| {
            let reload = p.reload.lock().unwrap_or_else(|e| e.into_inner()).clone();
            json!({
                "name": &*p.name,
                "hosts": p.settings.hosts,
                "rules_files": p.settings.rules_files,
                "pool": p.settings.pool,
                "fail_mode": p.settings.fail_mode.to_string(),
                "rules": p.rules.load().len(),
                "last_reload_ms": unix_ms(reload.at),
                "last_reload": rfc3339(reload.at),
                "last_reload_error": reload.error,
                "last_reload_result": result(reload.error.as_ref()),
                "requests": p.metrics.requests.load(Relaxed),
                "errors": p.metrics.errors.load(Relaxed),
            })
        })
        .collect();
    json!({
        "instance": shared.instance_name,
        "version": env!("CARGO_PKG_VERSION"),
        // Which process answered: during a reload the old and the new one both serve.
        "pid": std::process::id(),
        "now_ms": unix_ms(now),
        "now": rfc3339(now),
        "started_ms": unix_ms(shared.started),
        "uptime_seconds": now.duration_since(shared.started).map_or(0, |d| d.as_secs()),
        "requests_in_flight": crate::metrics::METRICS.requests_in_flight.get(),
        // Requests that reached no project: an unknown Host (421), a head refused before
        // routing (400). A rise means clients or a load balancer ask for a site not served.
        "unrouted": {
            "requests": shared.unrouted.requests.load(Relaxed),
            "errors": shared.unrouted.errors.load(Relaxed),
        },
        "listeners": shared.listeners.iter().map(listener).collect::<Vec<_>>(),
        "pools": pools,
        "projects": projects,
        "certificates": shared.certificates.iter().map(|c| certificate(c, now)).collect::<Vec<_>>(),
    })
}
