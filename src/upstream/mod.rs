//! Upstream pools on pingora-load-balancing: weighted selection (round robin, random,
//! consistent hash, least connections), active health checks run as background services,
//! passive marking on connect failures, and the `HttpPeer` each request is sent to.

mod backend;
mod health;
mod peer;

pub use backend::{BackendState, CheckRecord, InFlight};

use crate::config::{HashKey, PoolSettings, Selection};
use futures::FutureExt;
use pingora_core::services::background::GenBackgroundService;
use pingora_core::services::ServiceWithDependents;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_load_balancing::discovery::Static;
use pingora_load_balancing::selection::{
    BackendIter, BackendSelection, Consistent, Random, RoundRobin,
};
use pingora_load_balancing::{Backend, Backends, LoadBalancer};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

enum Selector {
    RoundRobin(Arc<LoadBalancer<RoundRobin>>),
    Random(Arc<LoadBalancer<Random>>),
    Consistent(Arc<LoadBalancer<Consistent>>),
    /// Candidates come from the balancer; the choice is ours (fewest in flight per weight).
    LeastConn(Arc<LoadBalancer<RoundRobin>>, AtomicUsize),
}

impl Selector {
    /// The backends and their health, whatever the selection.
    fn backends(&self) -> &Backends {
        match self {
            Selector::RoundRobin(lb) | Selector::LeastConn(lb, _) => lb.backends(),
            Selector::Random(lb) => lb.backends(),
            Selector::Consistent(lb) => lb.backends(),
        }
    }
}

pub struct Pool {
    pub name: Arc<str>,
    pub settings: PoolSettings,
    selector: Selector,
    /// Backends without `ext`, for health lookups, with their state.
    members: Vec<(Backend, Arc<BackendState>)>,
    peer_template: HttpPeer,
}

/// How many positions a selection walks before giving up (Ketama walks the ring).
const MAX_ITERATIONS: usize = 256;

impl Pool {
    /// Builds the pool and the background service that runs its health checks.
    pub fn build(
        settings: &PoolSettings,
    ) -> std::io::Result<(Arc<Pool>, Box<dyn ServiceWithDependents>)> {
        let peer_template = peer::template(settings)?;
        for kind in crate::metrics::UPSTREAM_ERROR_KINDS {
            crate::metrics::METRICS
                .upstream_errors
                .with_label_values(&[&settings.name, kind]);
        }
        let has_checks = settings.health_check.kind != crate::config::HealthCheckKind::None;
        let mut members = Vec::new();
        let mut set = BTreeSet::new();
        for b in &settings.backends {
            let address = b.address.to_string();
            let host_header = match &settings.tls {
                Some(t) if !t.sni.is_empty() => http::HeaderValue::from_str(&t.sni).ok(),
                _ => http::HeaderValue::from_str(&address).ok(),
            };
            let state = Arc::new(BackendState::new(
                &settings.name,
                b.address,
                b.weight,
                has_checks,
                settings.health_check.fall,
                host_header,
            ));
            let plain =
                Backend::new_with_weight(&address, b.weight).map_err(std::io::Error::other)?;
            let mut with_state = plain.clone();
            with_state.ext.insert(state.clone());
            set.insert(with_state);
            members.push((plain, state));
        }
        let check = health::build(&settings.name, &settings.health_check, &peer_template);
        let interval = settings.health_check.interval;
        let name = format!("health checks of pool {}", settings.name);
        fn make<S>(
            set: &BTreeSet<Backend>,
            check: Option<health::RecordingCheck>,
            interval: std::time::Duration,
            name: &str,
        ) -> (Arc<LoadBalancer<S>>, Box<dyn ServiceWithDependents>)
        where
            S: BackendSelection + Send + Sync + 'static,
            S::Iter: BackendIter,
        {
            let mut backends = Backends::new(Static::new(set.clone()));
            if let Some(c) = check {
                backends.set_health_check(Box::new(c));
            }
            let mut lb = LoadBalancer::<S>::from_backends(backends);
            // Static discovery never blocks or fails.
            let _ = lb.update().now_or_never();
            lb.health_check_frequency = Some(interval);
            lb.parallel_health_check = true;
            let lb = Arc::new(lb);
            let service = GenBackgroundService::new(name.to_string(), lb.clone());
            (lb, Box::new(service))
        }
        let (selector, service) = match settings.selection {
            Selection::RoundRobin => {
                let (lb, s) = make::<RoundRobin>(&set, check, interval, &name);
                (Selector::RoundRobin(lb), s)
            }
            Selection::Random => {
                let (lb, s) = make::<Random>(&set, check, interval, &name);
                (Selector::Random(lb), s)
            }
            Selection::ConsistentHash => {
                let (lb, s) = make::<Consistent>(&set, check, interval, &name);
                (Selector::Consistent(lb), s)
            }
            Selection::LeastConn => {
                let (lb, s) = make::<RoundRobin>(&set, check, interval, &name);
                (Selector::LeastConn(lb, AtomicUsize::new(0)), s)
            }
        };
        let pool = Pool {
            name: settings.name.as_str().into(),
            settings: settings.clone(),
            selector,
            members,
            peer_template,
        };
        Ok((Arc::new(pool), service))
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
        let accept = |b: &Backend, healthy: bool| {
            let Some(s) = b.ext.get::<Arc<BackendState>>() else {
                return false;
            };
            !tried.contains(&s.addr) && (include_unhealthy || (healthy && !s.passively_down()))
        };
        let chosen = match &self.selector {
            Selector::RoundRobin(lb) => lb.select_with(key, MAX_ITERATIONS, accept),
            Selector::Random(lb) => lb.select_with(key, MAX_ITERATIONS, accept),
            Selector::Consistent(lb) => lb.select_with(key, MAX_ITERATIONS, accept),
            Selector::LeastConn(lb, turn) => {
                let backends = lb.backends().get_backend();
                let n = backends.len().max(1);
                let start = turn.fetch_add(1, Relaxed) % n;
                // Fewest in flight per unit of weight; ties go round the pool.
                backends
                    .iter()
                    .cycle()
                    .skip(start)
                    .take(n)
                    .filter(|b| accept(b, lb.backends().ready(b)))
                    .min_by(|a, b| {
                        let (sa, sb) = (state_of(a), state_of(b));
                        let load = |s: &BackendState, other: &BackendState| {
                            s.in_flight.load(Relaxed) * other.weight
                        };
                        load(sa, sb).cmp(&load(sb, sa))
                    })
                    .cloned()
            }
        };
        chosen.and_then(|b| b.ext.get::<Arc<BackendState>>().cloned())
    }

    /// The peer to send a request to `backend`.
    pub fn peer(&self, backend: &BackendState) -> HttpPeer {
        let mut p = self.peer_template.clone();
        p._address = pingora_core::protocols::l4::socket::SocketAddr::Inet(backend.addr);
        p
    }

    /// Every backend with its current health (active and passive) for /status.
    pub fn members(&self) -> impl Iterator<Item = (&Arc<BackendState>, bool)> {
        self.members
            .iter()
            .map(|(b, s)| (s, self.selector.backends().ready(b) && !s.passively_down()))
    }
}

fn state_of(b: &Backend) -> &BackendState {
    b.ext
        .get::<Arc<BackendState>>()
        .expect("every pool backend carries its state")
}
