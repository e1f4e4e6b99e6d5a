//! Per-backend state shared by selection, health checks, passive failure tracking and /status.

use crate::config::BackendSettings;
use prometheus::IntGauge;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Without active checks, a backend marked down by connect failures is retried after this.
const PASSIVE_DOWN_WITHOUT_CHECKS: Duration = Duration::from_secs(10);
/// `passive_down_until` value meaning "until the next successful active check".
const UNTIL_NEXT_CHECK: u64 = u64::MAX;

/// The outcome of the last active check, for /status.
#[derive(Debug, Clone, Default)]
pub struct CheckRecord {
    pub last_check: Option<SystemTime>,
    /// `None` when it passed, the error otherwise.
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
}

pub struct BackendState {
    /// The pool's name, for log lines.
    pool: std::sync::Arc<str>,
    pub addr: SocketAddr,
    /// As the config gives it: the address, or the `host:port` it was resolved from.
    pub name: std::sync::Arc<str>,
    /// `name` is a host name, not an address.
    pub named: bool,
    pub weight: usize,
    /// The name sent as SNI and checked against the backend's certificate, when the pool's TLS
    /// has no `sni` of its own and the backend is given by host name: that name, without port.
    pub tls_name: Option<String>,
    /// The Host sent when a project does not preserve the client's: the pool's TLS name, else
    /// `addr`. None when the TLS name is not a valid header value (the client's Host is kept).
    pub host_header: Option<http::HeaderValue>,
    /// Requests currently being proxied to this backend (least_conn).
    pub in_flight: AtomicUsize,
    /// Connect failures in a row seen by the proxy (passive health).
    connect_failures: AtomicU32,
    /// Unix ms until which passive failures keep the backend out; 0 = not marked.
    passive_down_until: AtomicU64,
    /// The active checks' verdict (true without active checks); the gauge is this and not
    /// passively down.
    active_healthy: AtomicBool,
    pub record: Mutex<CheckRecord>,
    healthy_gauge: IntGauge,
    has_active_checks: bool,
    fall: u32,
    /// Lines about tries that failed on this backend, which every request would repeat.
    pub failure_log: crate::log_throttle::ByFailureKind,
    /// Checks of why its certificate was refused (`refused_certificate`).
    pub refused_certificate_log: crate::log_throttle::Throttle,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl BackendState {
    pub fn new(
        pool: &str,
        backend: &BackendSettings,
        has_active_checks: bool,
        fall: usize,
        tls_name: Option<String>,
        host_header: Option<http::HeaderValue>,
    ) -> Self {
        let healthy_gauge = crate::metrics::METRICS
            .backend_healthy
            .with_label_values(&[pool, &backend.address.to_string()]);
        healthy_gauge.set(1);
        BackendState {
            pool: pool.into(),
            addr: backend.address,
            name: backend.name.as_str().into(),
            named: backend.named,
            weight: backend.weight,
            tls_name,
            host_header,
            in_flight: AtomicUsize::new(0),
            connect_failures: AtomicU32::new(0),
            passive_down_until: AtomicU64::new(0),
            active_healthy: AtomicBool::new(true),
            record: Mutex::new(CheckRecord::default()),
            healthy_gauge,
            has_active_checks,
            fall: fall.max(1) as u32,
            failure_log: Default::default(),
            refused_certificate_log: Default::default(),
        }
    }

    /// True while connect failures keep this backend out of selection.
    pub fn passively_down(&self) -> bool {
        match self.passive_down_until.load(Relaxed) {
            0 => false,
            UNTIL_NEXT_CHECK => true,
            until => now_ms() < until,
        }
    }

    /// The active checks' verdict alone.
    pub fn is_actively_healthy(&self) -> bool {
        self.active_healthy.load(Relaxed)
    }

    /// Whether selection may pick it: the active checks' verdict and no passive mark.
    pub fn is_healthy(&self) -> bool {
        self.active_healthy.load(Relaxed) && !self.passively_down()
    }

    /// A connection to this backend failed; after `fall` in a row it is taken out.
    pub fn connect_failed(&self, pool: &str) {
        let n = self.connect_failures.fetch_add(1, Relaxed) + 1;
        if n >= self.fall && !self.passively_down() {
            let until = if self.has_active_checks {
                UNTIL_NEXT_CHECK
            } else {
                now_ms() + PASSIVE_DOWN_WITHOUT_CHECKS.as_millis() as u64
            };
            self.passive_down_until.store(until, Relaxed);
            self.healthy_gauge.set(0);
            log::warn!(
                "pool {pool}: backend {} marked down after {n} connect failures",
                self.addr
            );
        }
    }

    pub fn connect_succeeded(&self) {
        if self.connect_failures.load(Relaxed) != 0 {
            self.connect_failures.store(0, Relaxed);
        }
        // Without active checks the passive mark expires with time; the first connection
        // after that puts the gauge back.
        if self.passive_down_until.load(Relaxed) != 0 && !self.passively_down() {
            self.passive_down_until.store(0, Relaxed);
            self.refresh_gauge();
            log::info!(
                "pool {}: backend {} is back in rotation (a connection succeeded)",
                self.pool,
                self.addr
            );
        }
    }

    /// Sets `rampart_backend_healthy` from the current state: a passive mark expires with
    /// time, not with an event, so /metrics refreshes the gauges before it renders them.
    pub fn refresh_gauge(&self) {
        self.healthy_gauge.set(i64::from(self.is_healthy()));
    }

    /// Records an active check result (called by the health check service).
    pub fn record_check(&self, error: Option<String>) {
        let mut r = self.record.lock().unwrap_or_else(|e| e.into_inner());
        r.last_check = Some(SystemTime::now());
        if error.is_some() {
            r.consecutive_failures += 1;
            r.consecutive_successes = 0;
        } else {
            r.consecutive_successes += 1;
            r.consecutive_failures = 0;
            self.connect_failures.store(0, Relaxed);
            // A good check ends a passive mark even when the active state did not change.
            if self.passive_down_until.swap(0, Relaxed) != 0 {
                self.refresh_gauge();
            }
        }
        r.last_error = error;
    }

    /// The active health state changed (the threshold rise/fall was crossed).
    pub fn set_active_health(&self, healthy: bool) {
        self.active_healthy.store(healthy, Relaxed);
        self.refresh_gauge();
    }

    pub fn snapshot(&self) -> CheckRecord {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Counts a request in flight on a backend for as long as it lives.
pub struct InFlight(std::sync::Arc<BackendState>);

impl InFlight {
    pub fn new(b: std::sync::Arc<BackendState>) -> Self {
        b.in_flight.fetch_add(1, Relaxed);
        InFlight(b)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}
