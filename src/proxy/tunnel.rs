//! Holds a WebSocket request's (empty) body open until the backend has answered, around a
//! Pingora 0.9.1 bug (cloudflare/pingora#946): when the backend's `101` is read before the
//! end of the upgrade request's body has been handled, that end is taken for the tunnel's,
//! and the client's WebSocket closes right after its `101`. A backend over TLS that answers
//! fast lost ~40 % of the tunnels so.
//!
//! The client's request is read as a chunked body (its head says so from then on; Pingora
//! initialises the body's reader later, when it first asks about the body), which the client
//! never sends: there is no end to handle before the answer. A `101` turns the rest of the
//! connection into the tunnel's bytes; any other answer (a refusal, `401`, `403`) ends the
//! held body with the end of a chunked body given by the client's stream wrapper
//! (`HeadDeadline::end_held_body`), as if the client had sent it. The backend is told
//! `Content-Length: 0`: the request it gets has no body, as the client's had none.

use crate::server::HeadDeadline;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::HeaderValue;
use pingora_http::RequestHeader;
use pingora_proxy::Session;

/// Holds the body of a request going to the backend (`upstream`) as a WebSocket upgrade;
/// `held`: an earlier try held it already (the chunked head is the client's now, and
/// `upstream` is built from it again). False (nothing done) for a client stream without the
/// wrapper that can end it, or a request that has a body.
pub fn hold_request_body(session: &mut Session, upstream: &mut RequestHeader, held: bool) -> bool {
    let downstream = session.as_downstream_mut();
    if !held {
        let head = &downstream.req_header().headers;
        if downstream.stream().and_then(HeadDeadline::of).is_none()
            || head.contains_key(CONTENT_LENGTH)
            || head.contains_key(TRANSFER_ENCODING)
        {
            return false;
        }
        let chunked = HeaderValue::from_static("chunked");
        let head = downstream.req_header_mut();
        if head.insert_header(TRANSFER_ENCODING, chunked).is_err() {
            return false;
        }
    }
    // `Transfer-Encoding` is hop-by-hop (not forwarded); without a length, Pingora would
    // send the backend a chunked body since the client's has one.
    upstream.remove_header(&TRANSFER_ENCODING);
    upstream
        .insert_header(CONTENT_LENGTH, HeaderValue::from_static("0"))
        .is_ok()
}

/// The backend answered the upgrade with something else than `101`: the held body ends, and
/// the request with it once the answer is sent.
pub fn release_request_body(session: &Session) {
    if let Some(conn) = session.as_downstream().stream().and_then(HeadDeadline::of) {
        conn.end_held_body();
    }
}
