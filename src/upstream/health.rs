//! Active health checks (TCP connect, or `kind: http`'s request), wrapped to record each
//! result (time, error, consecutive failures) for /status and to update the health gauge.

use super::backend::BackendState;
use super::http_check::HttpCheck;
use crate::config::{HealthCheckKind, HealthCheckSettings};
use crate::log_throttle::Throttle;
use async_trait::async_trait;
use pingora_core::connectors::http::Connector;
use pingora_core::connectors::{ConnectorOptions, TransportConnector};
use pingora_core::server::configuration::ServerConf;
use pingora_core::upstreams::peer::{BasicPeer, HttpPeer};
use pingora_error::{Error, ErrorType};
use pingora_load_balancing::health_check::HealthCheck;
use pingora_load_balancing::Backend;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The connectors every pool's checks share, made with the server's connector settings
/// (`server.ca_file` above all, as the traffic's). Each Pingora connector loads the CA
/// certificates when built (~40 ms and ~1 MB): one per pool made a start with 300 checked
/// pools take 12 s and 300 MB. A pool's own `ca_file` travels in its peers' options.
pub struct CheckConnectors {
    options: ConnectorOptions,
    tcp: OnceLock<Arc<TransportConnector>>,
    http: OnceLock<Arc<Connector>>,
}

impl CheckConnectors {
    pub fn new(server: &ServerConf) -> CheckConnectors {
        CheckConnectors {
            options: ConnectorOptions::from_server_conf(server),
            tcp: OnceLock::new(),
            http: OnceLock::new(),
        }
    }

    /// Built when the first pool needs it, at start (not on a check's thread).
    fn tcp(&self) -> Arc<TransportConnector> {
        let new = || Arc::new(TransportConnector::new(Some(self.options.clone())));
        self.tcp.get_or_init(new).clone()
    }

    fn http(&self) -> Arc<Connector> {
        let new = || Arc::new(Connector::new(Some(self.options.clone())));
        self.http.get_or_init(new).clone()
    }
}

/// `kind: tcp`: a new connection to the backend.
struct TcpCheck {
    connector: Arc<TransportConnector>,
    peer_template: BasicPeer,
    rise: usize,
    fall: usize,
}

#[async_trait]
impl HealthCheck for TcpCheck {
    async fn check(&self, target: &Backend) -> pingora_error::Result<()> {
        let mut peer = self.peer_template.clone();
        peer._address = target.addr.clone();
        self.connector.get_stream(&peer).await.map(drop)
    }

    fn health_threshold(&self, success: bool) -> usize {
        if success {
            self.rise
        } else {
            self.fall
        }
    }
}

pub struct RecordingCheck {
    pool: Arc<str>,
    inner: Box<dyn HealthCheck + Send + Sync>,
    timeout: Duration,
    /// "Check not run" lines, for a host out of descriptors (one per check otherwise).
    local_failure_log: Throttle,
}

/// Builds the check for a pool, or `None` for `kind: none`. `peer` carries the pool's TLS
/// settings; the check's own timeout replaces its timeouts.
pub fn build(
    pool: &str,
    hc: &HealthCheckSettings,
    peer: &HttpPeer,
    connectors: &CheckConnectors,
) -> Option<RecordingCheck> {
    let mut template = peer.clone();
    template.options.connection_timeout = Some(hc.timeout);
    template.options.total_connection_timeout = Some(hc.timeout);
    template.options.read_timeout = Some(hc.timeout);
    template.options.write_timeout = Some(hc.timeout);
    let inner: Box<dyn HealthCheck + Send + Sync> = match hc.kind {
        HealthCheckKind::None => return None,
        HealthCheckKind::Tcp => {
            let mut peer_template = BasicPeer::new("0.0.0.0:1");
            peer_template.options = template.options.clone();
            Box::new(TcpCheck {
                connector: connectors.tcp(),
                peer_template,
                rise: hc.rise,
                fall: hc.fall,
            })
        }
        HealthCheckKind::Http => Box::new(HttpCheck {
            connector: connectors.http(),
            host: hc
                .host
                .clone()
                .or_else(|| (!template.sni.is_empty()).then(|| template.sni.clone())),
            path: hc.path.clone(),
            expect_status: hc.expect_status.clone(),
            rise: hc.rise,
            fall: hc.fall,
            peer_template: template,
        }),
    };
    Some(RecordingCheck {
        pool: pool.into(),
        inner,
        timeout: hc.timeout,
        local_failure_log: Throttle::default(),
    })
}

pub(super) fn state(target: &Backend) -> Option<&Arc<BackendState>> {
    target.ext.get::<Arc<BackendState>>()
}

#[async_trait]
impl HealthCheck for RecordingCheck {
    async fn check(&self, target: &Backend) -> pingora_error::Result<()> {
        // Bound the whole check (connect + TLS + response), not just each step.
        let result = match tokio::time::timeout(
            self.timeout + Duration::from_millis(50),
            self.inner.check(target),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Error::e_explain(
                ErrorType::ConnectTimedout,
                format!("no answer within {:?}", self.timeout),
            ),
        };
        let state = state(target);
        if let Err(e) = &result {
            if super::local_connect_failure(e) {
                // Not the backend's failure: its verdict stays as it is (a failure for a
                // backend already down, a success for one up), and /status keeps its last
                // real check.
                crate::throttled!(
                    warn,
                    self.local_failure_log,
                    "pool {}: health check of {} not run: {} (a problem on this host, not the backend's; its state is kept)",
                    self.pool,
                    target.addr,
                    crate::proxy::Brief(e)
                );
                let up = state.is_some_and(|s| s.is_actively_healthy());
                return if up { Ok(()) } else { result };
            }
        }
        if let Some(s) = state {
            s.record_check(
                result
                    .as_ref()
                    .err()
                    .map(|e| crate::proxy::Brief(e).to_string()),
            );
        }
        result
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        if healthy {
            log::info!("pool {}: backend {} is healthy", self.pool, target.addr);
        } else {
            let last = state(target).and_then(|s| s.snapshot().last_error);
            log::warn!(
                "pool {}: backend {} is unhealthy (last check: {})",
                self.pool,
                target.addr,
                last.as_deref().unwrap_or("failed")
            );
        }
        if let Some(s) = state(target) {
            s.set_active_health(healthy);
        }
    }

    fn health_threshold(&self, success: bool) -> usize {
        self.inner.health_threshold(success)
    }
}
