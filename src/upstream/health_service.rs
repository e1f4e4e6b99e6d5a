//! Every pool's active health checks in one background service: one task per pool, on one
//! thread. Pingora runs each background service on a runtime and thread of its own, so a
//! service per pool cost a thread and ~2 MB per pool (300 pools: 310 threads, 630 MB).

use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::LoadBalancer;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{interval, MissedTickBehavior};

/// One pool's checks: a pingora-load-balancing balancer kept only for its health-check round,
/// whose results reach each backend's state through the check's callbacks.
pub struct PoolChecks {
    pub(super) balancer: LoadBalancer<RoundRobin>,
    pub(super) interval: Duration,
}

/// The service running every pool's [`PoolChecks`].
pub struct HealthChecks(Vec<Arc<PoolChecks>>);

impl HealthChecks {
    pub fn new(pools: Vec<PoolChecks>) -> Self {
        HealthChecks(pools.into_iter().map(Arc::new).collect())
    }
}

/// Resolves once the server is shutting down; never if it can no longer say so.
async fn shutting_down(watch: &mut ShutdownWatch) {
    if watch.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A round at start, then one every `interval` from the start of the last (as Pingora's own
/// loop); a round longer than that is followed by the next at once.
async fn run(pool: Arc<PoolChecks>, mut shutdown: ShutdownWatch) {
    let mut rounds = interval(pool.interval);
    rounds.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutting_down(&mut shutdown) => return,
            _ = rounds.tick() => {}
        }
        tokio::select! {
            biased;
            _ = shutting_down(&mut shutdown) => return,
            _ = pool.balancer.backends().run_health_check(true) => {}
        }
    }
}

#[async_trait::async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        for pool in &self.0 {
            tokio::spawn(run(pool.clone(), shutdown.clone()));
        }
        shutting_down(&mut shutdown).await;
    }
}
