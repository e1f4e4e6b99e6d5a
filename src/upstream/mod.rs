//! Upstream pools on pingora-load-balancing: weighted selection (round robin, random,
//! consistent hash, least connections), active health checks (every pool's in one background
//! service), passive marking on connect failures, and the `HttpPeer` each request is sent to.

mod backend;
mod health;
mod health_service;
mod http_check;
mod names;
mod peer;
mod refused_certificate;
mod selection;

pub use backend::{BackendState, CheckRecord, InFlight};
pub use health::CheckConnectors;
pub use health_service::{HealthChecks, PoolChecks};
pub use names::{BackendNames, Resolution};
pub use refused_certificate::explain as explain_refused_certificate;

use crate::config::{BackendSettings, HashKey, PoolSettings};
use futures::FutureExt;
use names::NamedMembers;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_load_balancing::discovery::{ServiceDiscovery, Static};
use pingora_load_balancing::Backends;
use selection::Members;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct Pool {
    pub name: Arc<str>,
    pub settings: PoolSettings,
    members: PoolMembers,
    peer_template: HttpPeer,
    has_active_checks: bool,
    /// "No healthy backend" lines, which every request would repeat.
    pub unhealthy_log: crate::log_throttle::Throttle,
}

/// Pools of addresses keep their members for life, without a swap to read per request.
enum PoolMembers {
    Fixed(Members),
    Named(NamedMembers),
}

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
        let has_active_checks = check.is_some();
        // A name not resolved at start has no member until it resolves.
        let list = settings
            .backends
            .iter()
            .filter(|b| !b.unresolved())
            .map(|b| new_state(settings, b, has_active_checks))
            .collect();
        let members = Members::build(settings.selection, list)?;
        let unresolved: Vec<&str> = (settings.backends.iter())
            .filter(|b| b.unresolved())
            .map(|b| b.name.as_str())
            .collect();
        let (members, discovery): (_, Box<dyn ServiceDiscovery + Send + Sync>) =
            if settings.resolve_interval.is_some() || !unresolved.is_empty() {
                let named = NamedMembers::new(&settings.name, members, &unresolved);
                let discovery = named.discovery();
                (PoolMembers::Named(named), discovery)
            } else {
                let set = members.set.clone();
                (PoolMembers::Fixed(members), Static::new(set))
            };
        let checks = check.map(|check| pool_checks(settings, discovery, check));
        let pool = Pool {
            name: settings.name.as_str().into(),
            settings: settings.clone(),
            members,
            peer_template,
            has_active_checks,
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

    /// Whether its backends include host names, resolved again in the background.
    pub fn resolves_names(&self) -> bool {
        matches!(self.members, PoolMembers::Named(_))
    }

    /// Whether it has no backend at all: its names have not resolved yet.
    pub fn is_empty(&self) -> bool {
        self.with_members(|m| m.list.is_empty())
    }

    fn with_members<R>(&self, f: impl FnOnce(&Members) -> R) -> R {
        match &self.members {
            PoolMembers::Fixed(m) => f(m),
            PoolMembers::Named(n) => f(&n.current()),
        }
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
        self.with_members(|m| m.select(key, accept))
    }

    /// The peer to send a request to `backend`.
    pub fn peer(&self, backend: &BackendState, websocket: bool) -> Box<HttpPeer> {
        let mut peer = peer::at(
            &self.peer_template,
            backend.addr,
            backend.tls_name.as_deref(),
        );
        if websocket {
            peer::for_websocket(&mut peer, self.settings.timeouts.tunnel);
        }
        peer
    }

    /// Whether a backend not in `tried` is left to try (healthy or not: fail-open may take
    /// one that is not).
    pub fn has_untried(&self, tried: &[std::net::SocketAddr]) -> bool {
        self.with_members(|m| m.has_untried(tried))
    }

    /// Every backend with its current health (active and passive) for /status.
    pub fn members(&self) -> Vec<(Arc<BackendState>, bool)> {
        self.with_members(|m| m.list.iter().map(|s| (s.clone(), s.is_healthy())).collect())
    }

    /// When its host names were last resolved, and what failed; `None` for a pool of
    /// addresses.
    pub fn resolution(&self) -> Option<Resolution> {
        match &self.members {
            PoolMembers::Fixed(_) => None,
            PoolMembers::Named(n) => Some(n.record()),
        }
    }
}

/// A backend's state, new: healthy, nothing in flight.
fn new_state(
    settings: &PoolSettings,
    b: &BackendSettings,
    has_active_checks: bool,
) -> Arc<BackendState> {
    let host_header = match &settings.tls {
        Some(t) if !t.sni.is_empty() => http::HeaderValue::from_str(&t.sni).ok(),
        _ => http::HeaderValue::from_str(&b.name).ok(),
    };
    let tls_name = match &settings.tls {
        Some(t) if t.sni.is_empty() && b.named => b
            .name
            .rsplit_once(':')
            .map(|(host, _)| host.to_ascii_lowercase()),
        _ => None,
    };
    Arc::new(BackendState::new(
        &settings.name,
        b,
        has_active_checks,
        settings.health_check.fall,
        tls_name,
        host_header,
    ))
}

/// The pool's active checks, for [`HealthChecks`] to run.
fn pool_checks(
    settings: &PoolSettings,
    discovery: Box<dyn ServiceDiscovery + Send + Sync>,
    check: health::RecordingCheck,
) -> PoolChecks {
    let mut backends = Backends::new(discovery);
    backends.set_health_check(Box::new(check));
    // Both discoveries only read memory: they never block or fail.
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
