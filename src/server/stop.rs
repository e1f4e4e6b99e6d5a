//! Ending the process once its work is done, instead of at the end of the grace period.
//!
//! Once Pingora's shutdown begins (at SIGTERM, or 5 s after handing the sockets to a new
//! process), it stops accepting, closes idle keep-alive connections, then sleeps the whole
//! `grace_period_seconds` whatever is left to do, and drops the tasks still running, the access
//! log writer's included. So `systemctl stop` and `restart` always took 10 s or more, and the
//! access log lost the lines of the requests in flight at SIGTERM.
//!
//! This service waits, from the start of the shutdown (or from a SIGTERM or SIGINT during an
//! upgrade's 5 s, which Pingora does not watch for), until no request has been in flight for
//! a short while (or the grace period is nearly over), has the access log write everything
//! queued, and ends the process. Requests in flight are answered as before; they only no
//! longer wait for the grace period to pass when they are done. A SIGINT during the wait
//! ends it at once, cutting them (Pingora watches no signal then).

use crate::metrics::METRICS;
use crate::proxy::access_log::AccessLogFinisher;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often the in-flight count is read.
const POLL: Duration = Duration::from_millis(5);
/// How long the count must stay at zero: a request whose head was read just as the shutdown
/// began is counted a moment later.
const QUIET: Duration = Duration::from_millis(50);
/// Acting this long before Pingora's grace period ends, so that the access log is still
/// written: after it, Pingora drops the writer's task.
const BEFORE_PINGORA: Duration = Duration::from_millis(250);
/// How long the access log may take to write what is queued.
const FLUSH_WITHIN: Duration = Duration::from_secs(2);

pub struct StopWhenDone {
    /// Pingora's grace period (`server.grace_period_seconds`, its default when unset).
    pub grace: Duration,
    pub access_log: Option<Arc<AccessLogFinisher>>,
    /// Starts the stop before Pingora's shutdown (a SIGTERM during an upgrade's close timeout).
    pub stop_now: Arc<Notify>,
    /// Ends the wait at once, cutting the requests in flight (a SIGINT during the stop).
    pub cut_now: Arc<Notify>,
}

/// Why the wait for the requests in flight ended.
enum Ended {
    Quiet,
    GraceOver(i64),
    Interrupted(i64),
}

/// Resolves when Pingora's shutdown begins; never if it can no longer say so.
pub async fn shutting_down(watch: &mut ShutdownWatch) {
    if watch.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[async_trait]
impl BackgroundService for StopWhenDone {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            _ = shutting_down(&mut shutdown) => {}
            _ = self.stop_now.notified() => {}
        }
        let began = Instant::now();
        let deadline = self.grace.saturating_sub(BEFORE_PINGORA);
        let mut quiet_since: Option<Instant> = None;
        let ended = loop {
            let in_flight = METRICS.requests_in_flight.get();
            if in_flight > 0 {
                quiet_since = None;
            } else if quiet_since.get_or_insert_with(Instant::now).elapsed() >= QUIET {
                break Ended::Quiet;
            }
            if began.elapsed() >= deadline {
                // None in flight, but not yet for `QUIET`: nothing is cut.
                break match in_flight {
                    0 => Ended::Quiet,
                    cut => Ended::GraceOver(cut),
                };
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = self.cut_now.notified() => {
                    break Ended::Interrupted(METRICS.requests_in_flight.get());
                }
            }
        };
        match ended {
            Ended::Quiet => log::info!(
                "shutdown: no request in flight; exiting {} ms after the shutdown began",
                began.elapsed().as_millis()
            ),
            Ended::GraceOver(cut) => log::warn!(
                "shutdown: the grace period ({}s) is over with {cut} request(s) still in flight; they are cut",
                self.grace.as_secs()
            ),
            Ended::Interrupted(cut) => log::warn!(
                "shutdown: SIGINT during the graceful stop; exiting now, {cut} request(s) in flight are cut"
            ),
        }
        if let Some(log) = &self.access_log {
            if !log.finish(FLUSH_WITHIN).await {
                log::warn!(
                    "shutdown: the access log was not written within {}s; its last lines may be lost",
                    FLUSH_WITHIN.as_secs()
                );
            }
        }
        std::process::exit(0);
    }
}
