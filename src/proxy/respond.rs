//! Responses Rampart writes itself: rule redirects and responses, routing and error answers.

use super::forward::{apply_ops, X_REQUEST_ID};
use super::state::Project;
use crate::rules::{HeaderOp, Outcome, Plan};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::HeaderValue;
use pingora_error::{ErrorType::InternalError, OrErr};
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// What to send.
pub struct Answer<'a> {
    pub status: u16,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
    pub headers: Vec<(http::HeaderName, HeaderValue)>,
    pub rule_ops: &'a [HeaderOp],
}

impl Answer<'_> {
    /// A plain-text answer such as `421 Misdirected Request`.
    pub fn text(status: u16, body: &str) -> Answer<'static> {
        Answer {
            status,
            content_type: Some(HeaderValue::from_static("text/plain; charset=utf-8")),
            body: Bytes::copy_from_slice(body.as_bytes()),
            headers: Vec::new(),
            rule_ops: &[],
        }
    }

    /// An answer Rampart gives itself for `project`'s request: the project's page for
    /// `status` (`error_pages`), else `text`.
    pub fn own(project: Option<&Project>, status: u16, text: &str) -> Answer<'static> {
        match project.and_then(|p| p.settings.error_pages.get(status)) {
            Some(page) => Answer {
                status,
                content_type: Some(page.content_type.clone()),
                body: page.body.clone(),
                headers: Vec::new(),
                rule_ops: &[],
            },
            None => Answer::text(status, text),
        }
    }

    /// The answer a rule's redirect or response gives, with the rules' response headers;
    /// `None` when the plan forwards the request.
    pub fn of_plan(plan: &Plan) -> Option<Answer<'_>> {
        let (status, content_type, body, headers) = match &plan.outcome {
            Outcome::Forward => return None,
            Outcome::Redirect { status, location } => (
                *status,
                None,
                Bytes::new(),
                vec![(http::header::LOCATION, location.clone())],
            ),
            Outcome::Respond {
                status,
                body,
                content_type,
                headers,
            } => (
                *status,
                Some(content_type.clone()),
                body.clone(),
                headers.clone(),
            ),
        };
        Some(Answer {
            status,
            content_type,
            body,
            headers,
            rule_ops: &plan.response_headers,
        })
    }
}

/// Writes `answer` (no body for HEAD). Errors mean the client went away.
///
/// Boxed: a phase that may answer awaits this on a rare path, and Pingora copies each phase's
/// future to the heap on every request; inline, this one (Pingora's write path) would make
/// `request_filter`'s several times larger.
pub fn send<'a>(
    session: &'a mut Session,
    answer: Answer<'a>,
    request_id: &'a HeaderValue,
) -> BoxFuture<'a, pingora_error::Result<()>> {
    Box::pin(send_now(session, answer, request_id))
}

async fn send_now(
    session: &mut Session,
    answer: Answer<'_>,
    request_id: &HeaderValue,
) -> pingora_error::Result<()> {
    // Built as plain `http` parts: no case map, so no name is parsed twice (see
    // `forward::edit_upstream_headers`); names go out in canonical case.
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = http::StatusCode::from_u16(answer.status).or_err_with(InternalError, || {
        format!("invalid status {}", answer.status)
    })?;
    let headers = &mut parts.headers;
    headers.reserve(4 + answer.headers.len());
    if let Some(ct) = answer.content_type {
        headers.insert(http::header::CONTENT_TYPE, ct);
    }
    headers.insert(http::header::CONTENT_LENGTH, answer.body.len().into());
    for (name, value) in answer.headers {
        headers.append(name, value);
    }
    apply_ops(headers, answer.rule_ops);
    if !request_id.is_empty() {
        headers.insert(X_REQUEST_ID, request_id.clone());
    }
    let resp = ResponseHeader::from(parts);
    let head = session.req_header().method == http::Method::HEAD;
    let empty = answer.body.is_empty() || head;
    // Writing to the client fails when it is gone (an HTTP/2 stream it reset): its failure,
    // not Rampart's (Pingora's HTTP/2 layer leaves the side unsaid).
    session
        .write_response_header(Box::new(resp), empty)
        .await
        .map_err(|e| e.into_down())?;
    if !empty {
        session
            .write_response_body(Some(answer.body), true)
            .await
            .map_err(|e| e.into_down())?;
    }
    Ok(())
}
