//! `Expect: 100-continue` (RFC 9110 §10.1.1), answered by Rampart as nginx answers it: the
//! client is told `100 Continue` once its request is going to a backend (rules, routing and
//! an announced `max_body_size` passed), and the backend is not asked. Passing the
//! expectation on instead made every upload to a backend that ignores it wait for the
//! client's own timeout (curl: 1 s) before its body left, and a client waiting longer got
//! `408` after the backend's read timeout. A request Rampart answers itself (a rule, `413`)
//! gets its answer with no `100`, and its body is never sent.

use super::context::RequestCtx;
use pingora_error::Result;
use pingora_http::RequestHeader;
use pingora_proxy::Session;

/// Tells an HTTP/1.1 client that asked for it to send its body.
#[cold]
pub async fn send(session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
    let downstream = session.as_downstream_mut();
    // RFC 9110: an HTTP/1.0 client's expectation is ignored. HTTP/2 has no way to send it in
    // Pingora 0.9.1 (the h2 crate sends one response head per stream).
    if downstream.req_header().version != http::Version::HTTP_11 || downstream.is_http2() {
        return Ok(());
    }
    // Pingora closes the connection after any response written before the request's body
    // is read, an interim one too: the `100` would cost the client its keep-alive.
    downstream.set_close_on_response_before_downstream_finish(false);
    let sent = downstream.write_continue_response().await;
    downstream.set_close_on_response_before_downstream_finish(true);
    sent?;
    ctx.continue_sent = true;
    Ok(())
}

/// The backend's request, without the expectation the client was answered on.
pub fn answered(upstream: &mut RequestHeader) {
    upstream.remove_header(&http::header::EXPECT);
}
