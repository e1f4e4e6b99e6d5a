//! A project's `rate_limit`: each client (by address) gets at most `requests_per_second`
//! requests a second; more are answered `429 Too Many Requests` with `Retry-After: 1`, before
//! any rule or backend, as nginx's `limit_req` (without its queue). Counted in fixed windows of
//! one second in Pingora's estimator, a count-min sketch of fixed size: no per-client state to
//! grow with a flood of addresses. Its counts can only err upward, by a few requests when tens
//! of thousands of clients share a second. (Pingora's `Rate` around the same estimator is not
//! used: it asserts that no thread stalls a second between reading the clock and swapping its
//! windows, and a panic would drop the request on an overloaded host.)

use super::context::RequestCtx;
use super::respond::{send, Answer};
use super::state::Project;
use crate::log_throttle::Throttle;
use pingora_error::Result;
use pingora_limits::estimator::Estimator;
use pingora_proxy::Session;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Rows and columns of the sketch: 4 × 16 384 counters, 512 KiB per project.
const HASHES: usize = 4;
const SLOTS: usize = 16 * 1024;

const REFUSAL: &str =
    "Too Many Requests: this client sends more than this site allows; retry in a second.\n";

pub struct RateLimit {
    per_second: isize,
    /// The current window's requests by client.
    counts: Estimator,
    /// The current window: whole seconds since `start`.
    window: AtomicU64,
    start: Instant,
    log: Throttle,
}

impl RateLimit {
    pub fn new(per_second: u32) -> Self {
        RateLimit {
            per_second: per_second as isize,
            counts: Estimator::new(HASHES, SLOTS),
            window: AtomicU64::new(0),
            start: Instant::now(),
            log: Throttle::new(),
        }
    }

    /// Counts a request of `client`: true when it goes past the limit.
    fn over(&self, client: IpAddr) -> bool {
        let now = self.start.elapsed().as_secs();
        let window = self.window.load(Ordering::Acquire);
        // One thread starts the new window; a request counted meanwhile in the old one's
        // counts is at worst counted in the new one.
        if now > window
            && self
                .window
                .compare_exchange(window, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.counts.reset();
        }
        self.counts.incr(client, 1) > self.per_second
    }
}

/// Answers `429` to a request over `limit`, its project's (true: answered).
pub async fn refuse(
    session: &mut Session,
    ctx: &RequestCtx,
    project: &Project,
    limit: &RateLimit,
) -> Result<bool> {
    let Some(client) = ctx.client_ip.filter(|client| limit.over(*client)) else {
        return Ok(false);
    };
    crate::throttled!(
        warn,
        limit.log,
        "project {}: client {client} sends more than rate_limit ({} requests a second); answered 429",
        project.name,
        limit.per_second
    );
    let mut answer = Answer::own(Some(project), 429, REFUSAL);
    answer.headers.push((
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    ));
    send(session, answer, &ctx.request_id).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_past_its_limit_is_over_and_others_are_not() {
        let limit = RateLimit::new(3);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        // Within one window (the test takes far less than a second, or the counts restart).
        let counted: Vec<bool> = (0..5).map(|_| limit.over(a)).collect();
        let passed = counted.iter().filter(|over| !**over).count();
        assert!((3..=5).contains(&passed), "{counted:?}");
        assert!(!limit.over(b));
    }
}
