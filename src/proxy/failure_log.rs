//! The error log's lines for failed tries and failed requests. Rampart writes them itself,
//! one per failed try and one per failed request, each throttled (`log_throttle`), instead
//! of Pingora's (a WARN per retry and an ERROR per failure, both unthrottled and printing the
//! whole error chain).

use super::context::RequestCtx;
use super::state::Project;
use crate::logger::Capped;
use crate::throttled;
use crate::upstream::BackendState;
use pingora_error::{Error, ErrorSource, ErrorType};
use pingora_http::RequestHeader;
use std::fmt;

/// An error in a few words: its type and what lies at the bottom of it, e.g.
/// `ConnectRefused (Connection refused (os error 111))`.
pub struct Brief<'a>(pub &'a Error);

/// The longest context a [`Brief`] quotes. Pingora's parse errors carry the whole buffer read
/// (`buf: HTTP/1.1 200 OK\r\n...`: a malformed response head, up to its size limit), which
/// would make one log line or `/status` entry tens of kilobytes of a backend's headers.
const MAX_CONTEXT: usize = 256;

impl fmt::Display for Brief<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let etype = self.0.etype().as_str();
        let (mut deepest, mut context) = (self.0, self.0.context.as_ref());
        while let Some(cause) = &deepest.cause {
            match as_pingora_error(&**cause) {
                Some(e) => {
                    deepest = e;
                    context = e.context.as_ref().or(context);
                }
                None => {
                    // The OS error at the bottom says most ("Connection refused"); other
                    // wrappers (the local address of a failed TLS connection) say less than
                    // Pingora's own explanation.
                    let mut root: &(dyn std::error::Error + 'static) = &**cause;
                    while let Some(next) = root.source() {
                        root = next;
                    }
                    if let Some(io) = root.downcast_ref::<std::io::Error>() {
                        return write!(f, "{etype} ({io})");
                    }
                    break;
                }
            }
        }
        match context {
            Some(context) => write!(f, "{etype} ({})", Capped(context.as_str(), MAX_CONTEXT)),
            None => f.write_str(etype),
        }
    }
}

/// A connection to a backend could not be made.
pub fn connect_failed(pool: &str, backend: &BackendState, e: &Error, retrying: bool) {
    throttled!(
        warn,
        backend.failure_log.of(e.etype()),
        "pool {pool}: cannot connect to {}: {}{}",
        backend.addr,
        Brief(e),
        if retrying {
            "; trying another backend"
        } else {
            ""
        }
    );
}

/// A backend failed a request on an established connection, and it goes to another one.
pub fn backend_failed(pool: &str, backend: &BackendState, e: &Error) {
    throttled!(
        warn,
        backend.failure_log.of(e.etype()),
        "pool {pool}: backend {} failed a request: {}; trying another backend",
        backend.addr,
        Brief(e)
    );
}

/// The backend timed out waiting for a request body the client had not finished sending.
pub fn body_late(project: &Project, req: &RequestHeader) {
    throttled!(
        info,
        project.client_failure_log,
        "project {}: {} {} answered 408: the client did not send its whole request body before the backend's read timeout",
        project.name,
        req.method,
        target(req)
    );
}

/// A cause that is one of Pingora's errors (it keeps them as `Box<Error>`).
fn as_pingora_error<'a>(
    cause: &'a (dyn std::error::Error + Send + Sync + 'static),
) -> Option<&'a Error> {
    cause
        .downcast_ref::<Box<Error>>()
        .map(|b| &**b)
        .or_else(|| cause.downcast_ref::<Error>())
}

/// Whether `e`, or an error of Pingora's it wraps, says an HTTP/2 client reset its stream (it
/// no longer wants the answer) or closed its connection: a client gone, not a client's error.
/// Pingora says so only in words.
pub fn client_closed_h2(e: &Error) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.context
            .as_ref()
            .is_some_and(|c| c.as_str().starts_with("Client closed H2"))
        {
            return true;
        }
        next = e.cause.as_deref().and_then(as_pingora_error);
    }
    false
}

/// An HTTP/2 connection's client reset more requests than it let be answered: its further
/// requests are refused (logged once per connection, throttled across them).
pub fn h2_resets(project: Option<&Project>, req: &RequestHeader) {
    let Some(project) = project else { return };
    throttled!(
        warn,
        project.client_failure_log,
        "project {}: {} {}: an HTTP/2 client reset more than {} requests on one connection before their answers, more than it let be answered (a rapid-reset attack?): its further requests on that connection are answered 429 without reaching a backend",
        project.name,
        req.method,
        target(req),
        super::h2_resets::ALLOWED
    );
}

/// The client read nothing of its answer for the listener's `send_timeout`: the request was
/// dropped, its HTTP/1 connection closed or its HTTP/2 stream reset.
pub fn send_timeout(project: &Project, req: &RequestHeader, send_timeout: std::time::Duration) {
    throttled!(
        info,
        project.client_failure_log,
        "project {}: {} {}: the client read nothing of its answer for {:?} (the listener's send_timeout): request dropped ({})",
        project.name,
        req.method,
        target(req),
        send_timeout,
        match req.version {
            http::Version::HTTP_2 => "its stream reset",
            _ => "connection closed",
        }
    );
}

/// A WebSocket closed after `timeouts.tunnel` without a byte from the backend.
pub fn tunnel_quiet(project: &Project, req: &RequestHeader, ctx: &RequestCtx) {
    let (Some(pool), Some(backend)) = (&ctx.pool, &ctx.backend) else {
        return;
    };
    throttled!(
        info,
        project.client_failure_log,
        "project {}: {} {}: WebSocket closed: backend {} sent nothing for {:?} (pools.{}.timeouts.tunnel)",
        project.name,
        req.method,
        target(req),
        backend.addr,
        pool.settings.timeouts.tunnel.unwrap_or_default(),
        pool.name
    );
}

/// A WebSocket client sent bytes before the backend's `101` (RFC 6455 §4.1: it must wait).
pub fn websocket_too_early(project: &Project, req: &RequestHeader) {
    throttled!(
        info,
        project.client_failure_log,
        "project {}: {} {} answered 400: the client sent WebSocket data before the backend's 101 (a client must wait for it)",
        project.name,
        req.method,
        target(req)
    );
}

fn target(req: &RequestHeader) -> &str {
    req.uri.path_and_query().map_or("/", |p| p.as_str())
}

/// The request ends in error with `code` (0: the client is gone); `answer_began`: the status
/// already sent when the error cut the answer.
pub fn request_failed(
    project: &Project,
    req: &RequestHeader,
    ctx: &RequestCtx,
    code: u16,
    answer_began: Option<u16>,
    e: &Error,
) {
    let target = target(req);
    let outcome = Outcome { code, answer_began };
    if e.esource() == &ErrorSource::Downstream {
        if code == 0 {
            // In the access log as 499; nothing the operator can act on.
            log::debug!(
                "project {}: {} {target}: the client left: {}",
                project.name,
                req.method,
                Brief(e)
            );
        } else {
            throttled!(
                info,
                project.client_failure_log,
                "project {}: {} {target} {outcome}: the client's error: {}",
                project.name,
                req.method,
                Brief(e)
            );
        }
        return;
    }
    let tries = Tries(ctx.tried.len());
    // Held back by kind of failure: when no backend was left, the kind the last try met.
    let kind = super::retry::last_try_met(ctx, e).unwrap_or(e.etype());
    let throttle = project.failure_log.of(kind);
    match (e.etype(), &ctx.backend) {
        // Rampart's own verdicts (no backend left, fail-closed, no pool) say it all.
        (ErrorType::HTTPStatus(_), _) | (_, None) => throttled!(
            error,
            throttle,
            "project {}: {} {target} {outcome}{tries}: {}",
            project.name,
            req.method,
            e.context.as_ref().map_or_else(
                || Brief(e).to_string(),
                |c| Capped(c.as_str(), MAX_CONTEXT).to_string()
            ),
        ),
        (_, Some(backend)) => throttled!(
            error,
            throttle,
            "project {}: {} {target} {outcome}{tries}: backend {}: {}",
            project.name,
            req.method,
            backend.addr,
            Brief(e)
        ),
    }
}

/// ` after 2 tries`, nothing before any try.
struct Tries(usize);

impl fmt::Display for Tries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            1 => f.write_str(" after 1 try"),
            n => write!(f, " after {n} tries"),
        }
    }
}

struct Outcome {
    code: u16,
    answer_began: Option<u16>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.answer_began {
            Some(status) => write!(f, "cut after its answer began (status {status})"),
            None => write!(f, "answered {}", self.code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_brief_error_names_its_type_and_root_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let inner = Error::because(ErrorType::ConnectRefused, "Fail to connect to x", io);
        let outer = Error::because(ErrorType::ConnectRefused, "Fail to connect to peer", inner);
        assert_eq!(Brief(&outer).to_string(), "ConnectRefused (refused)");
        let timeout = Error::explain(ErrorType::ReadTimedout, "timeout: 30s");
        assert_eq!(Brief(&timeout).to_string(), "ReadTimedout (timeout: 30s)");
        assert_eq!(
            Brief(&Error::new(ErrorType::ConnectionClosed)).to_string(),
            "ConnectionClosed"
        );
        // A wrapper that is not an OS error: Pingora's explanation is kept.
        #[derive(Debug)]
        struct LocalAddr;
        impl fmt::Display for LocalAddr {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("local address 127.0.0.1:4000")
            }
        }
        impl std::error::Error for LocalAddr {}
        let tls = Error::because(
            ErrorType::InvalidCert,
            "certificate verify failed",
            LocalAddr,
        );
        assert_eq!(
            Brief(&tls).to_string(),
            "InvalidCert (certificate verify failed)"
        );
    }

    #[test]
    fn a_whole_buffer_in_a_context_is_cut() {
        // What Pingora says of a response head it cannot parse: the buffer, escaped.
        let head = format!(
            "buf: HTTP/1.1 200 OK\\r\\n{}",
            "X-Filler: é\\r\\n".repeat(2000)
        );
        let e = Error::explain(ErrorType::InvalidHTTPHeader, head.clone());
        let brief = Brief(&e).to_string();
        assert!(
            brief.starts_with("InvalidHTTPHeader (buf: HTTP/1.1 200 OK"),
            "{brief}"
        );
        let kept = brief.find("...").expect("cut") - "InvalidHTTPHeader (".len();
        assert!(kept <= MAX_CONTEXT && kept > MAX_CONTEXT - 4, "{brief}");
        assert!(
            brief.ends_with(&format!("... [{} more bytes])", head.len() - kept)),
            "{brief}"
        );
        // Short ones are whole.
        let e = Error::explain(ErrorType::InvalidHTTPHeader, "buf: HTTP/1.1 abc");
        assert_eq!(
            Brief(&e).to_string(),
            "InvalidHTTPHeader (buf: HTTP/1.1 abc)"
        );
    }
}
