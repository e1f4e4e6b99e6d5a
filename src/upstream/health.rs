//! Active health checks: Pingora's HTTP/TCP checks, wrapped to record each result (time,
//! error, consecutive failures) for /status and to update the health gauge.

use super::backend::BackendState;
use super::http_check::HttpCheck;
use crate::config::{HealthCheckKind, HealthCheckSettings};
use async_trait::async_trait;
use pingora_core::connectors::http::Connector;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType};
use pingora_load_balancing::health_check::{HealthCheck, TcpHealthCheck};
use pingora_load_balancing::Backend;
use std::sync::Arc;
use std::time::Duration;

pub struct RecordingCheck {
    pool: Arc<str>,
    inner: Box<dyn HealthCheck + Send + Sync>,
    timeout: Duration,
}

/// Builds the check for a pool, or `None` for `kind: none`. `peer` carries the pool's TLS
/// settings; the check's own timeout replaces its timeouts.
pub fn build(pool: &str, hc: &HealthCheckSettings, peer: &HttpPeer) -> Option<RecordingCheck> {
    let mut template = peer.clone();
    template.options.connection_timeout = Some(hc.timeout);
    template.options.total_connection_timeout = Some(hc.timeout);
    template.options.read_timeout = Some(hc.timeout);
    template.options.write_timeout = Some(hc.timeout);
    let inner: Box<dyn HealthCheck + Send + Sync> = match hc.kind {
        HealthCheckKind::None => return None,
        HealthCheckKind::Tcp => {
            let mut check = TcpHealthCheck::new();
            check.consecutive_success = hc.rise;
            check.consecutive_failure = hc.fall;
            check.peer_template.options = template.options.clone();
            check
        }
        HealthCheckKind::Http => Box::new(HttpCheck {
            connector: Connector::new(None),
            host: hc.host.clone().unwrap_or_else(|| {
                if template.sni.is_empty() {
                    "localhost".into()
                } else {
                    template.sni.clone()
                }
            }),
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
    })
}

fn state(target: &Backend) -> Option<&Arc<BackendState>> {
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
        if let Some(s) = state(target) {
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
