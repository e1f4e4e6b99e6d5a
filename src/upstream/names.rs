//! Backends given by host name (`app.internal:8080`). Every address the name resolves to is a
//! member, with the entry's weight, and the names are resolved again every `resolve_interval`
//! by the system's resolver (getaddrinfo: /etc/hosts, then DNS, as every other program on the
//! host), each name on a blocking thread of its own. A pool takes a name's new addresses as
//! soon as its lookup answers; a name that stops resolving keeps its last ones, so a DNS
//! outage never empties a pool, and one whose lookup hangs (a DNS server that does not
//! answer) holds up neither the pool's other names nor its next rounds.

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
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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
    /// The names that have not resolved once since the start (looked up every second).
    never_resolved: Mutex<HashSet<String>>,
    failure_log: Throttle,
}

/// The names' last lookups, for /status.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// When the last lookup answered; `None` until the first after the start (the start
    /// resolved them too).
    pub at: Option<SystemTime>,
    /// Each name whose last lookup failed, with why.
    pub errors: BTreeMap<String, String>,
}

impl NamedMembers {
    /// `unresolved`: the names the start could not resolve (they have no member yet).
    pub(super) fn new(pool: &str, members: Members, unresolved: &[&str]) -> Self {
        // Every result from the start, at 0, so that rates and alerts see the first one.
        for result in RESULTS {
            crate::metrics::METRICS
                .backend_resolutions
                .with_label_values(&[pool, result]);
        }
        let errors = unresolved
            .iter()
            .map(|name| (name.to_string(), "did not resolve at start".to_string()))
            .collect();
        NamedMembers {
            current: Arc::new(ArcSwap::from_pointee(members)),
            record: Mutex::new(Resolution { at: None, errors }),
            never_resolved: Mutex::new(unresolved.iter().map(|n| n.to_string()).collect()),
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

/// What one name resolved to: its addresses, sorted, or why it did not.
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
    /// Takes one name's lookup: members for new addresses, none for addresses gone, the same
    /// state (health, connections in flight) for those kept; the other names keep theirs.
    fn take_lookup(&self, name: &str, lookup: Lookup) {
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
        let (mut list, mut seen, mut error) = (Vec::new(), HashSet::new(), None);
        for entry in entries(&self.settings.backends) {
            let looked_up = (entry.name == name).then_some(&lookup);
            let addresses = match (entry.named, looked_up) {
                (false, _) => vec![entry.address],
                // Not this lookup's name: as it is.
                (true, None) => was(&entry.name),
                (true, Some(Ok(now))) => {
                    let before = was(&entry.name);
                    let changed = *now != before && !before.is_empty();
                    if before.is_empty() {
                        log::info!(
                            "pool {}: backend {} resolves to {}",
                            self.name,
                            entry.name,
                            listed(now)
                        );
                    } else if changed {
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
                (true, Some(Err(why))) => {
                    metrics.with_label_values(&[&*self.name, "failed"]).inc();
                    error = Some(why.clone());
                    let before = was(&entry.name);
                    let kept = if before.is_empty() {
                        "the pool has no address for it yet".to_string()
                    } else {
                        format!("its last addresses stay in use: {}", listed(&before))
                    };
                    crate::throttled!(
                        warn,
                        named.failure_log,
                        "pool {}: backend {} did not resolve ({why}); {kept}",
                        self.name,
                        entry.name
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
        if lookup.is_ok() {
            let mut never = named
                .never_resolved
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            never.remove(name);
        }
        {
            let mut record = named.record.lock().unwrap_or_else(|e| e.into_inner());
            record.at = Some(SystemTime::now());
            match error {
                Some(why) => record.errors.insert(name.to_string(), why),
                None => record.errors.remove(name),
            };
        }
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

/// How soon a name that has never resolved is looked up again.
const UNRESOLVED_RETRY: Duration = Duration::from_secs(1);

impl Pool {
    /// Whether one of its names has not resolved once since the start.
    fn has_unresolved_names(&self) -> bool {
        match &self.members {
            PoolMembers::Named(named) => {
                let never = named
                    .never_resolved
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                !never.is_empty()
            }
            PoolMembers::Fixed(_) => false,
        }
    }

    /// How long until its names are looked up again: every second while one has never
    /// resolved, else every `interval` (`None`: never again).
    fn next_lookup(&self, interval: Option<Duration>) -> Option<Duration> {
        if self.has_unresolved_names() {
            return Some(interval.map_or(UNRESOLVED_RETRY, |i| i.min(UNRESOLVED_RETRY)));
        }
        interval
    }
}

/// Resolves one pool's names every interval until shutdown: each name on a blocking thread
/// of its own (getaddrinfo blocks, for seconds when a DNS server does not answer), taken as
/// soon as it answers; a name still being looked up is not looked up again.
async fn run(pool: Arc<Pool>, interval: Option<Duration>, mut shutdown: ShutdownWatch) {
    let names: Vec<String> = entries(&pool.settings.backends)
        .into_iter()
        .filter(|b| b.named)
        .map(|b| b.name.clone())
        .collect();
    let mut lookups = tokio::task::JoinSet::new();
    let mut pending: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut next = pool.next_lookup(interval).map(|wait| Instant::now() + wait);
    loop {
        let round = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = shutting_down(&mut shutdown) => return,
            Some(done) = lookups.join_next_with_id() => match done {
                Ok((id, found)) => {
                    if let Some(name) = pending.remove(&id) {
                        pool.take_lookup(&name, found);
                    }
                }
                Err(e) => {
                    let name = pending.remove(&e.id()).unwrap_or_default();
                    log::error!("pool {}: resolving {name} failed: {e}", pool.name);
                }
            },
            () = round => {
                for name in &names {
                    if pending.values().any(|n| n == name) {
                        continue;
                    }
                    let n = name.clone();
                    let task = lookups.spawn_blocking(move || crate::config::lookup_backend(&n));
                    pending.insert(task.id(), name.clone());
                }
                next = pool.next_lookup(interval).map(|wait| Instant::now() + wait);
            }
        }
    }
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
            let interval = pool.settings.resolve_interval;
            if interval.is_some() || pool.has_unresolved_names() {
                tokio::spawn(run(pool.clone(), interval, shutdown.clone()));
            }
        }
        shutting_down(&mut shutdown).await;
    }
}
