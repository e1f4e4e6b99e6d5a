//! Upstream pools on pingora-load-balancing: weighted selection (round robin, random,
//! consistent hash, least connections), active health checks (every pool's in one background
//! service), passive marking on connect failures, and the `HttpPeer` each request is sent to.

mod backend;
mod health;
mod health_service;
mod http_check;
mod peer;
mod refused_certificate;

pub use backend::{BackendState, CheckRecord, InFlight};
pub use health::CheckConnectors;
pub use health_service::{HealthChecks, PoolChecks};
pub use refused_certificate::explain as explain_refused_certificate;

use crate::config::{HashKey, PoolSettings, Selection};
use futures::FutureExt;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_load_balancing::discovery::Static;
use pingora_load_balancing::selection::{
    BackendIter, BackendSelection, Consistent, Random, RoundRobin,
};
use pingora_load_balancing::{Backend, Backends};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// pingora-load-balancing's selection algorithms, used directly: health comes from each
/// backend's own state (kept by the health checks' callbacks and passive marking), so a pick
/// needs neither the balancer's hashed readiness lookups nor its de-duplicating iterator.
enum Selector {
    RoundRobin(Arc<RoundRobin>),
    Random(Arc<Random>),
    /// The counter spreads requests that have no key (no such header or cookie) over the
    /// ring, as nginx's `hash` falls back to round robin, instead of all on one backend.
    Consistent(Arc<Consistent>, AtomicUsize),
    /// The choice is ours (fewest in flight per weight). Ties, as when nothing is in flight,
    /// go to the member the weighted `starts` schedule names next, so that at low
    /// concurrency traffic still follows the weights (as nginx's least_conn).
    LeastConn {
        turn: AtomicUsize,
        starts: Vec<u32>,
    },
}

/// Member indices, each as many times as its weight, spread out (nginx's smooth weighted
/// round robin): weights 1 and 3 give [1, 0, 1, 1] rather than [0, 1, 1, 1].
fn weighted_schedule(members: &[Arc<BackendState>]) -> Vec<u32> {
    let total: usize = members.iter().map(|m| m.weight).sum();
    let mut current = vec![0i64; members.len()];
    let mut out = Vec::with_capacity(total);
    for _ in 0..total {
        for (c, m) in current.iter_mut().zip(members) {
            *c += m.weight as i64;
        }
        let Some((best, _)) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, -(*i as i64)))
        else {
            break;
        };
        current[best] -= total as i64;
        out.push(best as u32);
    }
    out
}

/// Walks `selection`'s candidates for `key` and returns the first `accept`ed one.
fn first_accepted<S>(
    selection: &Arc<S>,
    key: &[u8],
    accept: impl Fn(&BackendState) -> bool,
) -> Option<Arc<BackendState>>
where
    S: BackendSelection,
    S::Iter: BackendIter,
{
    let mut candidates = selection.iter(key);
    // A weighted sequence repeats backends, so a bound replaces de-duplication.
    for _ in 0..MAX_ITERATIONS {
        let state = state_of(candidates.next()?);
        if accept(state) {
            return Some(Arc::clone(state));
        }
    }
    None
}

pub struct Pool {
    pub name: Arc<str>,
    pub settings: PoolSettings,
    selector: Selector,
    /// Every backend's state, in the order the config lists them.
    members: Vec<Arc<BackendState>>,
    peer_template: HttpPeer,
    /// "No healthy backend" lines, which every request would repeat.
    pub unhealthy_log: crate::log_throttle::Throttle,
}

/// How many positions a selection walks before giving up (Ketama walks the ring).
const MAX_ITERATIONS: usize = 256;

impl Pool {
    /// Builds the pool and, when it has active health checks, what runs them (for the one
    /// [`HealthChecks`] service).
    pub fn build(
        settings: &PoolSettings,
        connectors: &CheckConnectors,
    ) -> std::io::Result<(Arc<Pool>, Option<PoolChecks>)> {
        let peer_template = peer::template(settings);
        let check = health::build(
            &settings.name,
            &settings.health_check,
            &peer_template,
            connectors,
        );
        for kind in crate::metrics::UPSTREAM_ERROR_KINDS {
            crate::metrics::METRICS
                .upstream_errors
                .with_label_values(&[&settings.name, kind]);
        }
        let mut members = Vec::new();
        let mut set = BTreeSet::new();
        for b in &settings.backends {
            let address = b.address.to_string();
            let host_header = match &settings.tls {
                Some(t) if !t.sni.is_empty() => http::HeaderValue::from_str(&t.sni).ok(),
                _ => http::HeaderValue::from_str(&b.name).ok(),
            };
            let state = Arc::new(BackendState::new(
                &settings.name,
                b.address,
                b.weight,
                check.is_some(),
                settings.health_check.fall,
                host_header,
            ));
            let mut backend =
                Backend::new_with_weight(&address, b.weight).map_err(std::io::Error::other)?;
            backend.ext.insert(state.clone());
            set.insert(backend);
            members.push(state);
        }
        let selector = match settings.selection {
            Selection::RoundRobin => Selector::RoundRobin(Arc::new(RoundRobin::build(&set))),
            Selection::Random => Selector::Random(Arc::new(Random::build(&set))),
            Selection::ConsistentHash => {
                Selector::Consistent(Arc::new(Consistent::build(&set)), AtomicUsize::new(0))
            }
            Selection::LeastConn => Selector::LeastConn {
                turn: AtomicUsize::new(0),
                starts: weighted_schedule(&members),
            },
        };
        let checks = check.map(|check| pool_checks(settings, set, check));
        let pool = Pool {
            name: settings.name.as_str().into(),
            settings: settings.clone(),
            selector,
            members,
            peer_template,
            unhealthy_log: Default::default(),
        };
        Ok((Arc::new(pool), checks))
    }

    pub fn retries(&self) -> usize {
        self.settings.retries
    }

    pub fn hash_key(&self) -> &HashKey {
        &self.settings.hash_key
    }

    /// Picks a backend not in `tried`. With `include_unhealthy` false only healthy ones (by
    /// active checks and passive marking) are candidates.
    pub fn select(
        &self,
        key: &[u8],
        tried: &[SocketAddr],
        include_unhealthy: bool,
    ) -> Option<Arc<BackendState>> {
        let accept =
            |s: &BackendState| !tried.contains(&s.addr) && (include_unhealthy || s.is_healthy());
        match &self.selector {
            Selector::RoundRobin(s) => first_accepted(s, key, accept),
            Selector::Random(s) => first_accepted(s, key, accept),
            Selector::Consistent(s, _) if !key.is_empty() => first_accepted(s, key, accept),
            Selector::Consistent(s, turn) => {
                let spread = turn.fetch_add(1, Relaxed).to_le_bytes();
                first_accepted(s, &spread, accept)
            }
            Selector::LeastConn { turn, starts } => {
                let n = self.members.len().max(1);
                let start = starts
                    .get(turn.fetch_add(1, Relaxed) % starts.len().max(1))
                    .map_or(0, |&i| i as usize);
                // Fewest in flight per unit of weight; ties to the first from `start`.
                self.members
                    .iter()
                    .cycle()
                    .skip(start)
                    .take(n)
                    .filter(|s| accept(s))
                    .min_by(|a, b| {
                        let load = |s: &BackendState, other: &BackendState| {
                            s.in_flight.load(Relaxed) * other.weight
                        };
                        load(a, b).cmp(&load(b, a))
                    })
                    .cloned()
            }
        }
    }

    /// The peer to send a request to `backend`.
    pub fn peer(&self, backend: &BackendState, websocket: bool) -> Box<HttpPeer> {
        let mut peer = peer::at(&self.peer_template, backend.addr);
        if websocket {
            peer::for_websocket(&mut peer, self.settings.timeouts.tunnel);
        }
        peer
    }

    /// Whether a backend not in `tried` is left to try (healthy or not: fail-open may take
    /// one that is not).
    pub fn has_untried(&self, tried: &[std::net::SocketAddr]) -> bool {
        self.members.iter().any(|b| !tried.contains(&b.addr))
    }

    /// Every backend with its current health (active and passive) for /status.
    pub fn members(&self) -> impl Iterator<Item = (&Arc<BackendState>, bool)> {
        self.members.iter().map(|s| (s, s.is_healthy()))
    }
}

/// The pool's active checks, for [`HealthChecks`] to run.
fn pool_checks(
    settings: &PoolSettings,
    set: BTreeSet<Backend>,
    check: health::RecordingCheck,
) -> PoolChecks {
    let mut backends = Backends::new(Static::new(set));
    backends.set_health_check(Box::new(check));
    // Static discovery never blocks or fails.
    let _ = backends.update(|_| {}).now_or_never();
    PoolChecks {
        backends,
        interval: settings.health_check.interval,
    }
}

/// Whether a failed connection is this host's doing, not the backend's: no socket to be had
/// (out of file descriptors or buffers), no local port, or one the host's rules refuse. Pingora
/// reports all of them as `InternalError`. Counting them against backends would mark every
/// backend down when this host runs out of descriptors, and with `fail_mode: closed` answer
/// 503 for all of them.
pub fn local_connect_failure(e: &pingora_error::Error) -> bool {
    matches!(e.etype(), pingora_error::ErrorType::InternalError)
}

fn state_of(b: &Backend) -> &Arc<BackendState> {
    b.ext
        .get::<Arc<BackendState>>()
        .expect("every pool backend carries its state")
}
