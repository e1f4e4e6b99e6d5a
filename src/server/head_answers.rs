//! Answers given to request heads that no phase of the proxy saw: Pingora's own `400` for a
//! head it cannot parse (and `405` for a `CONNECT`), the `408` of `header_timeout` and the `431`/`414` of
//! `max_header_size` (`head_deadline`). They are counted with the requests that reached no
//! project and written to the access log here, as the proxy's `logging` phase does for the
//! others (and as nginx logs them), so that an operator looking for 4xx finds them where the
//! rest are.

use super::head_deadline::HeadLimit;
use crate::proxy::access_log::{Failure, LogRecord};
use crate::proxy::{client_ip, IpText};
use pingora_core::protocols::Stream;
use std::time::{Duration, SystemTime};

/// Counts and logs one such answer; `waited`: how long the head had been coming; `body`:
/// the bytes of the answer's body; `failure`: the client's, for the access log's `error`.
#[cold]
pub(super) fn account(
    limit: &HeadLimit,
    client: &Stream,
    status: u16,
    waited: Duration,
    body: usize,
    failure: Option<Failure>,
) {
    limit.unrouted.observe(status, waited.as_secs_f64());
    if !limit.access_log.enabled() {
        return;
    }
    let digest = client.get_socket_digest();
    let ip = client_ip(digest.as_ref().and_then(|d| d.peer_addr())).map(IpText::new);
    let tls = client.get_ssl_digest();
    // None: written `-` (null in JSON).
    static NO_ID: http::HeaderValue = http::HeaderValue::from_static("");
    limit.access_log.log(&LogRecord {
        time: SystemTime::now() - waited,
        client_ip: ip.as_ref(),
        request: None,
        host: "",
        status,
        bytes: body,
        duration: waited,
        referer: None,
        user_agent: None,
        request_id: &NO_ID,
        project: Some(limit.unrouted.name()),
        upstream: None,
        tls: tls.as_deref(),
        rules: &[],
        error: failure,
    });
}
