//! A project's `max_body_size`, as nginx's `client_max_body_size`: a request whose body is
//! larger is answered `413 Content Too Large` and not forwarded, or, when the body was not
//! announced (chunked, HTTP/2 without `content-length`), cut where it passes the limit.
//! Only requests going to a backend are concerned: a rule's redirect or response is given
//! whatever the body, as nginx's `return` is.

use super::context::RequestCtx;
use super::respond::{send, Answer};
use super::state::Project;
use pingora_error::{Error, ErrorType, Result};
use pingora_proxy::Session;

pub const TOO_LARGE: &str =
    "Content Too Large: the request body is larger than this site accepts\n";

/// Before forwarding: a body announced larger than `max` is answered `413` at once (the
/// client, if it waits on `Expect: 100-continue`, never sends it); otherwise the body is
/// counted as it comes (`count`). True when answered.
#[cold]
pub async fn check_announced(
    session: &mut Session,
    ctx: &mut RequestCtx,
    project: &Project,
    max: u64,
) -> Result<bool> {
    let announced = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match announced {
        Some(length) if length > max => {
            crate::throttled!(
                info,
                project.client_failure_log,
                "project {}: {} {}: request body of {length} bytes is larger than max_body_size ({max}); answered 413",
                project.name,
                session.req_header().method,
                session.req_header().uri
            );
            // The body that may follow is not read: the connection cannot carry another
            // request.
            session.set_keepalive(None);
            send(
                session,
                Answer::own(Some(project), 413, TOO_LARGE),
                &ctx.request_id,
            )
            .await?;
            Ok(true)
        }
        _ => {
            ctx.body_left = Some(max);
            Ok(false)
        }
    }
}

/// Counts a piece of the body against what is left of the limit; past it, the request
/// fails with `413` (answered by `fail_to_proxy` unless the backend already answered).
pub fn count(ctx: &mut RequestCtx, piece: usize) -> Result<()> {
    let Some(left) = &mut ctx.body_left else {
        return Ok(());
    };
    match left.checked_sub(piece as u64) {
        Some(rest) => {
            *left = rest;
            Ok(())
        }
        None => Err(Error::explain(
            ErrorType::HTTPStatus(413),
            "the request body grew larger than max_body_size",
        )
        .into_down()),
    }
}
