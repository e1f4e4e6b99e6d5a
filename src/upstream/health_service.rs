//! Every pool's active health checks in one background service: one task per pool, on one
//! thread, their rounds spread over the interval. Pingora runs each background service on a
//! runtime and thread of its own, so a service per pool cost a thread and ~2 MB per pool (300
//! pools: 310 threads, 630 MB).

use crate::server::shutting_down;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_load_balancing::Backends;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

/// One pool's checks: pingora-load-balancing's backends, kept for their health-check round,
/// whose results reach each backend's state through the check's callbacks.
pub struct PoolChecks {
    pub(super) backends: Backends,
    pub(super) interval: Duration,
}

/// The service running every pool's [`PoolChecks`].
pub struct HealthChecks(Vec<Arc<PoolChecks>>);

impl HealthChecks {
    pub fn new(pools: Vec<PoolChecks>) -> Self {
        HealthChecks(pools.into_iter().map(Arc::new).collect())
    }
}

/// A round every `interval` from the start of the last (as Pingora's own loop), the first
/// `spread` after the start; a round longer than that is followed by the next at once.
/// Backends start healthy, so the first round need not come at once; spreading it too keeps
/// a reload (a new process) from checking every backend of every pool in one burst.
async fn run(pool: Arc<PoolChecks>, spread: Duration, mut shutdown: ShutdownWatch) {
    let mut rounds = interval_at(Instant::now() + spread, pool.interval);
    rounds.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let round = || async {
        // A pool with host names gets its current members; another's stay as they are.
        let _ = pool.backends.update(|_| {}).await;
        pool.backends.run_health_check(true).await;
    };
    loop {
        tokio::select! {
            biased;
            _ = shutting_down(&mut shutdown) => return,
            _ = rounds.tick() => {}
        }
        tokio::select! {
            biased;
            _ = shutting_down(&mut shutdown) => return,
            _ = round() => {}
        }
    }
}

/// Where pool `index` of `count` starts its rounds within its interval: spread evenly, as
/// HAProxy spreads its servers' checks, so that many pools (often on the same application
/// servers) are not all checked in the same millisecond.
fn spread(interval: Duration, index: usize, count: usize) -> Duration {
    interval.mul_f64(index as f64 / count as f64)
}

#[async_trait::async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        for (i, pool) in self.0.iter().enumerate() {
            let spread = spread(pool.interval, i, self.0.len());
            tokio::spawn(run(pool.clone(), spread, shutdown.clone()));
        }
        shutting_down(&mut shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    use super::spread;
    use std::time::Duration;

    #[test]
    fn pools_start_their_rounds_evenly_over_the_interval() {
        let i = Duration::from_secs(5);
        let starts: Vec<_> = (0..4).map(|n| spread(i, n, 4)).collect();
        assert_eq!(starts, [0, 1250, 2500, 3750].map(Duration::from_millis));
        assert_eq!(spread(i, 0, 1), Duration::ZERO);
    }
}
