//! Backends given by host name (`app.internal:8080`). Every address the name resolves to is a
//! member, with the entry's weight, and the names are resolved again every `resolve_interval`
//! by the system's resolver (getaddrinfo: /etc/hosts, then DNS, as every other program on the
//! host), on a blocking thread. A pool takes new addresses at once; a name that stops
//! resolving keeps its last ones, so a DNS outage never empties a pool.

use super::selection::Members;
use super::{new_state, Pool, PoolMembers};
use crate::config::BackendSettings;
use crate::log_throttle::Throttle;
use crate::server::shutting_down;
use arc_swap::ArcSwap;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_load_balancing::discovery::ServiceDiscovery;
use pingora_load_balancing::Backend;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// `rampart_backend_resolutions_total`'s results.
const RESULTS: [&str; 3] = ["changed", "unchanged", "failed"];

/// A named pool's members, swapped whole when its names resolve differently; shared with
/// the health checks' discovery.
pub(super) struct NamedMembers {
    current: Arc<ArcSwap<Members>>,
    record: Mutex<Resolution>,
    failure_log: Throttle,
}

/// The last round of resolution, for /status.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// `None` until the first round after the start (the start resolved them too).
    pub at: Option<SystemTime>,
    /// Each name that did not resolve in that round, with why.
    pub errors: Vec<String>,
}

impl NamedMembers {
    pub(super) fn new(pool: &str, members: Members) -> Self {
        // Every result from the start, at 0, so that rates and alerts see the first one.
        for result in RESULTS {
            crate::metrics::METRICS
                .backend_resolutions
                .with_label_values(&[pool, result]);
        }
        NamedMembers {
            current: Arc::new(ArcSwap::from_pointee(members)),
            record: Mutex::default(),
            failure_log: Throttle::default(),
        }
    }

    pub(super) fn current(&self) -> arc_swap::Guard<Arc<Members>> {
        self.current.load()
    }

    pub(super) fn discovery(&self) -> Box<dyn ServiceDiscovery + Send + Sync> {
        Box::new(CurrentMembers(self.current.clone()))
    }

    pub(super) fn record(&self) -> Resolution {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// pingora-load-balancing's view of a named pool: whatever the last resolution made it.
struct CurrentMembers(Arc<ArcSwap<Members>>);

#[async_trait::async_trait]
impl ServiceDiscovery for CurrentMembers {
    async fn discover(&self) -> pingora_error::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        Ok((self.0.load().set.clone(), HashMap::new()))
    }
}

/// What one name resolved to this round: its addresses, sorted, or why it did not.
type Lookup = Result<Vec<SocketAddr>, String>;

/// The config's backend entries once each (a name stands for several addresses).
fn entries(backends: &[BackendSettings]) -> Vec<&BackendSettings> {
    let mut seen = HashSet::new();
    backends
        .iter()
        .filter(|b| seen.insert(b.name.as_str()))
        .collect()
}

impl Pool {
    /// Takes one round's lookups: members for new addresses, none for addresses gone, the
    /// same state (health, connections in flight) for those kept.
    fn take_lookups(&self, lookups: &HashMap<String, Lookup>) {
        let PoolMembers::Named(named) = &self.members else {
            return;
        };
        let metrics = &crate::metrics::METRICS.backend_resolutions;
        let current = named.current.load_full();
        let was = |name: &str| -> Vec<SocketAddr> {
            let mut a: Vec<_> = current
                .list
                .iter()
                .filter(|s| &*s.name == name)
                .map(|s| s.addr)
                .collect();
            a.sort();
            a
        };
        let (mut list, mut seen, mut errors) = (Vec::new(), HashSet::new(), Vec::new());
        for entry in entries(&self.settings.backends) {
            let addresses = match (entry.named, lookups.get(&entry.name)) {
                (false, _) => vec![entry.address],
                (true, Some(Ok(now))) => {
                    let before = was(&entry.name);
                    let changed = *now != before && !before.is_empty();
                    if changed {
                        log::info!(
                            "pool {}: backend {} now resolves to {} (was {})",
                            self.name,
                            entry.name,
                            listed(now),
                            listed(&before)
                        );
                    }
                    metrics
                        .with_label_values(&[
                            &*self.name,
                            if changed { "changed" } else { "unchanged" },
                        ])
                        .inc();
                    now.clone()
                }
                (true, failed) => {
                    let why = failed
                        .and_then(|l| l.as_ref().err())
                        .map_or("not looked up", |e| e);
                    metrics.with_label_values(&[&*self.name, "failed"]).inc();
                    errors.push(format!("{}: {why}", entry.name));
                    let before = was(&entry.name);
                    crate::throttled!(
                        warn,
                        named.failure_log,
                        "pool {}: backend {} did not resolve ({why}); its last addresses stay in use: {}",
                        self.name,
                        entry.name,
                        listed(&before)
                    );
                    before
                }
            };
            for address in addresses {
                if !seen.insert(address) {
                    continue;
                }
                let kept = current.list.iter().find(|s| {
                    s.addr == address && s.weight == entry.weight && *s.name == *entry.name
                });
                list.push(kept.cloned().unwrap_or_else(|| {
                    let b = BackendSettings {
                        address,
                        ..entry.clone()
                    };
                    new_state(&self.settings, &b, self.has_active_checks)
                }));
            }
        }
        *named.record.lock().unwrap_or_else(|e| e.into_inner()) = Resolution {
            at: Some(SystemTime::now()),
            errors,
        };
        let same = list.len() == current.list.len()
            && list
                .iter()
                .zip(&current.list)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        if same {
            return;
        }
        match Members::build(self.settings.selection, list) {
            Ok(members) => {
                for gone in current
                    .list
                    .iter()
                    .filter(|s| !members.list.iter().any(|m| m.addr == s.addr))
                {
                    let _ = crate::metrics::METRICS
                        .backend_healthy
                        .remove_label_values(&[&*self.name, &gone.addr.to_string()]);
                }
                named.current.store(Arc::new(members));
            }
            Err(e) => log::error!("pool {}: new members not taken: {e}", self.name),
        }
    }
}

fn listed(addresses: &[SocketAddr]) -> String {
    if addresses.is_empty() {
        return "none".into();
    }
    addresses
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolves one pool's names every interval until shutdown.
async fn run(pool: Arc<Pool>, interval: Duration, shutdown: ShutdownWatch) {
    let names: Vec<String> = entries(&pool.settings.backends)
        .into_iter()
        .filter(|b| b.named)
        .map(|b| b.name.clone())
        .collect();
    super::in_rounds(Instant::now() + interval, interval, shutdown, || async {
        let names = names.clone();
        // getaddrinfo blocks (for seconds when a DNS server does not answer).
        let looked_up = tokio::task::spawn_blocking(move || {
            names
                .into_iter()
                .map(|n| {
                    let found = crate::config::lookup_backend(&n);
                    (n, found)
                })
                .collect::<HashMap<_, _>>()
        });
        match looked_up.await {
            Ok(lookups) => pool.take_lookups(&lookups),
            Err(e) => log::error!("pool {}: resolving its backends failed: {e}", pool.name),
        }
    })
    .await
}

/// The service resolving every named pool's backends again, one task per pool.
pub struct BackendNames(Vec<Arc<Pool>>);

impl BackendNames {
    /// `None` when no pool names its backends by host name.
    pub fn new<'a>(pools: impl IntoIterator<Item = &'a Arc<Pool>>) -> Option<Self> {
        let named: Vec<_> = pools
            .into_iter()
            .filter(|p| p.resolves_names())
            .cloned()
            .collect();
        (!named.is_empty()).then_some(BackendNames(named))
    }
}

#[async_trait::async_trait]
impl BackgroundService for BackendNames {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        for pool in &self.0 {
            if let Some(interval) = pool.settings.resolve_interval {
                tokio::spawn(run(pool.clone(), interval, shutdown.clone()));
            }
        }
        shutting_down(&mut shutdown).await;
    }
}
