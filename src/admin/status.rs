//! The `/status` document: instance, pools with per-backend health, projects with counts.

use crate::proxy::Shared;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn status_json(shared: &Shared) -> Value {
    let now = SystemTime::now();
    let mut pools: Vec<&std::sync::Arc<crate::upstream::Pool>> = shared.pools.values().collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    let pools: Vec<Value> = pools
        .into_iter()
        .map(|pool| {
            let backends: Vec<Value> = pool
                .members()
                .map(|(b, healthy)| {
                    let rec = b.snapshot();
                    json!({
                        "address": b.addr.to_string(),
                        "weight": b.weight,
                        "healthy": healthy,
                        "in_flight": b.in_flight.load(Relaxed),
                        "last_check_ms": rec.last_check.map(unix_ms),
                        "last_check_result": match (&rec.last_check, &rec.last_error) {
                            (None, _) => Value::Null,
                            (Some(_), None) => json!("ok"),
                            (Some(_), Some(e)) => json!(e),
                        },
                        "consecutive_failures": rec.consecutive_failures,
                    })
                })
                .collect();
            json!({
                "name": &*pool.name,
                "selection": format!("{:?}", pool.settings.selection),
                "health_check": format!("{:?}", pool.settings.health_check.kind).to_lowercase(),
                "backends": backends,
            })
        })
        .collect();
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
                "fail_mode": format!("{:?}", p.settings.fail_mode).to_lowercase(),
                "rules": p.rules.load().len(),
                "last_reload_ms": unix_ms(reload.at),
                "last_reload_error": reload.error,
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
        "uptime_seconds": now.duration_since(shared.started).map_or(0, |d| d.as_secs()),
        "pools": pools,
        "projects": projects,
    })
}
