//! What a failed try at a backend means for the request: another try (on which backend), or
//! the final answer, whose status and log line say what the last try met.
//!
//! - Nothing sent yet (connect failed): another backend, up to the pool's `retries`.
//! - A kept-alive connection the backend had closed (the common race with its idle timeout):
//!   the request goes again on a new connection, to the same backend if need be; it never
//!   reached the backend, so it is not a retry the pool pays for.
//! - A fresh connection cut before any answer: another backend for requests that can be
//!   replayed (idempotent method, body kept), as nginx's `proxy_next_upstream error`;
//!   timeouts are not retried, they would double the wait.

use super::access_log::Failure;
use super::context::RequestCtx;
use pingora_error::{Error, ErrorSource, ErrorType};
use std::net::SocketAddr;

/// The last failed try, for the final answer (put in words only if the request ends).
#[derive(Debug)]
pub struct LastFailure {
    backend: Option<SocketAddr>,
    etype: ErrorType,
}

pub(super) fn is_timeout(etype: &ErrorType) -> bool {
    matches!(
        etype,
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
    )
}

fn remember(ctx: &mut RequestCtx, e: &Error) {
    ctx.last_failure = Some(LastFailure {
        backend: ctx.tried.last().copied(),
        etype: e.etype().clone(),
    });
}

/// After a failed connect: whether another backend may take the request.
pub fn after_connect_failure(ctx: &mut RequestCtx, e: &Error, retries: usize) -> bool {
    remember(ctx, e);
    ctx.tried.len() <= retries
}

/// What to do after an error on an established connection.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterProxyError {
    /// The answer started, or the request cannot be replayed.
    GiveUp,
    /// Again, to any backend including this one (a stale kept-alive connection).
    SameBackend,
    /// Again, elsewhere; the backend failed this request (counts toward passive health).
    OtherBackend,
}

/// `replayable`: idempotent method and a request body still held in full.
pub fn after_proxy_error(
    ctx: &mut RequestCtx,
    e: &Error,
    reused: bool,
    replayable: bool,
    retries: usize,
) -> AfterProxyError {
    // Pingora brings the client's errors here too: a client gone is no reason to try again.
    if e.esource() != &ErrorSource::Upstream {
        return AfterProxyError::GiveUp;
    }
    remember(ctx, e);
    if !replayable || ctx.answered || is_timeout(e.etype()) {
        return AfterProxyError::GiveUp;
    }
    if reused {
        // Not counted as a try: the backend never saw the request.
        ctx.tried.pop();
        return AfterProxyError::SameBackend;
    }
    match ctx.tried.len() <= retries {
        true => AfterProxyError::OtherBackend,
        false => AfterProxyError::GiveUp,
    }
}

/// The error that ends the request when no backend is left to try.
pub fn exhausted(ctx: &RequestCtx, what: &str) -> Box<Error> {
    let (code, last) = match &ctx.last_failure {
        Some(f) => {
            let backend = f.backend.map(|a| a.to_string()).unwrap_or_default();
            let code = if is_timeout(&f.etype) { 504 } else { 502 };
            (code, format!("{backend} {}", f.etype.as_str()))
        }
        None => (502, "none".to_string()),
    };
    Error::explain(
        ErrorType::HTTPStatus(code),
        format!("{what} (last: {last})"),
    )
}

/// For the access log's `error`: what cut the request short. When no backend was left
/// ([`exhausted`]'s 502 or 504), what the last try met, not Rampart's verdict on it; a body
/// too slow timed the backend's read out, but is the client's.
pub fn failure(ctx: &RequestCtx, e: &Error) -> Failure {
    if ctx.body_late {
        return Failure::CLIENT_TIMED_OUT;
    }
    match last_try_met(ctx, e) {
        Some(etype) => Failure {
            side: "upstream",
            kind: etype.as_str(),
        },
        None => Failure::of(e),
    }
}

/// What the last try met, when `e` is [`exhausted`]'s verdict (502 or 504, no backend left).
pub fn last_try_met<'a>(ctx: &'a RequestCtx, e: &Error) -> Option<&'a ErrorType> {
    match (e.etype(), &ctx.last_failure) {
        (ErrorType::HTTPStatus(502 | 504), Some(last)) => Some(&last.etype),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(tried: usize) -> RequestCtx {
        let mut ctx = RequestCtx::new();
        ctx.tried = (0..tried)
            .map(|i| format!("127.0.0.1:{}", 1000 + i).parse().unwrap())
            .collect();
        ctx
    }

    #[test]
    fn stale_connections_go_again_to_the_same_backend() {
        let upstream = |t| {
            let mut e = Error::new(t);
            e.esource = ErrorSource::Upstream;
            e
        };
        let closed = upstream(ErrorType::ConnectionClosed);
        let mut c = ctx(1);
        assert_eq!(
            after_proxy_error(&mut c, &closed, true, true, 0),
            AfterProxyError::SameBackend
        );
        assert!(c.tried.is_empty(), "the backend may be picked again");
        let mut c = ctx(1);
        assert_eq!(
            after_proxy_error(&mut c, &closed, false, true, 1),
            AfterProxyError::OtherBackend
        );
        assert_eq!(
            after_proxy_error(&mut ctx(2), &closed, false, true, 1),
            AfterProxyError::GiveUp
        );
        assert_eq!(
            after_proxy_error(&mut ctx(1), &closed, true, false, 1),
            AfterProxyError::GiveUp
        );
        let mut answered = ctx(1);
        answered.answered = true;
        assert_eq!(
            after_proxy_error(&mut answered, &closed, true, true, 1),
            AfterProxyError::GiveUp
        );
        let timeout = Error::new(ErrorType::ReadTimedout);
        assert_eq!(
            after_proxy_error(&mut ctx(1), &timeout, true, true, 1),
            AfterProxyError::GiveUp
        );
    }

    #[test]
    fn the_final_status_follows_the_last_failure() {
        let mut c = ctx(1);
        after_connect_failure(&mut c, &Error::new(ErrorType::ConnectTimedout), 0);
        let e = exhausted(&c, "every healthy backend of the pool failed");
        assert_eq!(e.etype(), &ErrorType::HTTPStatus(504));
        assert!(
            e.to_string()
                .contains("last: 127.0.0.1:1000 ConnectTimedout"),
            "{e}"
        );
        after_connect_failure(&mut c, &Error::new(ErrorType::ConnectRefused), 0);
        assert_eq!(exhausted(&c, "x").etype(), &ErrorType::HTTPStatus(502));
    }
}
