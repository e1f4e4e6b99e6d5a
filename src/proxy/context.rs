//! What one request carries from phase to phase.

use super::forward::IpText;
use crate::rules::Plan;
use crate::upstream::{BackendState, InFlight, Pool};
use pingora_core::protocols::http::compression::ResponseCompressionCtx;
use smallvec::SmallVec;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

pub struct RequestCtx {
    pub start: Instant,
    pub project: Option<usize>,
    pub host: super::router::HostName,
    /// The client's Host header (a share of the request's buffer), for the upstream request.
    pub host_header: Option<http::HeaderValue>,
    /// The client's Referer and User-Agent, for the access log, when the head was read (the
    /// request was not refused before): found in the same pass as the Host.
    pub logged_headers: Option<[Option<http::HeaderValue>; 2]>,
    pub client_ip: Option<IpAddr>,
    /// `client_ip` as text, formatted once for the forwarding headers and the access log.
    pub client_ip_text: Option<IpText>,
    pub request_id: http::HeaderValue,
    /// What the rules asked for, when anything.
    pub plan: Option<Box<Plan>>,
    /// Ids of the rules that matched, for the access log (empty, without an allocation,
    /// when none did).
    pub matched_rules: Vec<Arc<str>>,
    pub pool: Option<Arc<Pool>>,
    /// Backends already tried for this request (retries go elsewhere); the first tries
    /// without an allocation.
    pub tried: SmallVec<[SocketAddr; 2]>,
    pub backend: Option<Arc<BackendState>>,
    pub in_flight: Option<InFlight>,
    /// Fail-open for an all-unhealthy pool is counted once per request.
    pub counted_unhealthy: bool,
    /// A backend's response head arrived: the request can no longer be tried again.
    pub answered: bool,
    /// The request went to the backend as a WebSocket upgrade: only then may it switch
    /// protocols (`101`).
    pub upgrade_sent: bool,
    /// The request has an `Upgrade` header (found in the head's one pass).
    pub upgrade_asked: bool,
    /// The client asked `Expect: 100-continue` (`expect_continue`).
    pub expects_continue: bool,
    /// Rampart told the client `100 Continue`: the backend is not asked to.
    pub continue_sent: bool,
    /// An HTTP/2 request let go on to a backend: counted on its connection once it ends
    /// (`h2_resets`).
    pub h2_counted: bool,
    /// The backend switched to the WebSocket (`101`): what follows is the tunnel's.
    pub tunnel: bool,
    /// The WebSocket request's body is held open until the backend answers (`tunnel`).
    pub body_held: bool,
    /// What the last failed try met, for the final answer.
    pub last_failure: Option<super::retry::LastFailure>,
    /// The backend timed out while the client had not sent its whole request body: the
    /// client's delay (408), not the backend's (504).
    pub body_late: bool,
    /// Bytes of request body the project's `max_body_size` still allows; `None`: no limit.
    pub body_left: Option<u64>,
    /// The answer's encoder, for a project with `compression` and a client that accepts it.
    pub compression: Option<Box<ResponseCompressionCtx>>,
    /// This request's share of `rampart_requests_in_flight` (`in_flight` is the backend's).
    _counted: InFlightRequest,
}

/// Counts the request in `rampart_requests_in_flight` from its context's creation (Pingora
/// makes it once the request head is read) to its drop (after `logging`), on every path.
struct InFlightRequest;

impl InFlightRequest {
    fn new() -> Self {
        crate::metrics::METRICS.requests_in_flight.inc();
        InFlightRequest
    }
}

impl Drop for InFlightRequest {
    fn drop(&mut self) {
        crate::metrics::METRICS.requests_in_flight.dec();
    }
}

impl RequestCtx {
    pub fn new() -> Self {
        RequestCtx {
            start: Instant::now(),
            project: None,
            host: Default::default(),
            host_header: None,
            logged_headers: None,
            client_ip: None,
            client_ip_text: None,
            request_id: http::HeaderValue::from_static(""),
            plan: None,
            matched_rules: Vec::new(),
            pool: None,
            tried: SmallVec::new(),
            backend: None,
            in_flight: None,
            counted_unhealthy: false,
            answered: false,
            upgrade_sent: false,
            upgrade_asked: false,
            expects_continue: false,
            continue_sent: false,
            h2_counted: false,
            tunnel: false,
            body_held: false,
            last_failure: None,
            body_late: false,
            body_left: None,
            compression: None,
            _counted: InFlightRequest::new(),
        }
    }

    /// The backend sent nothing through the WebSocket for `timeouts.tunnel`: the tunnel's
    /// idle end (as HAProxy's `timeout tunnel`), not the backend's failure.
    pub fn tunnel_went_quiet(&self, e: &pingora_error::Error) -> bool {
        self.tunnel
            && e.etype() == &pingora_error::ErrorType::ReadTimedout
            && e.esource() == &pingora_error::ErrorSource::Upstream
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
