//! The request's first decision: which project it belongs to (listener and Host), then what
//! the project's rules make of it (a redirect, a response, or changes for the backend).

use super::context::RequestCtx;
use super::forward;
use super::request_head;
use super::respond::{send, Answer};
use super::RampartProxy;
use crate::rules::RequestView;
use pingora_error::Result;
use pingora_proxy::Session;

impl RampartProxy {
    /// Routes the request to its project and applies the project's rules: true when
    /// answered (refused, redirected, responded), false when it goes to a backend.
    pub(super) async fn route_and_apply_rules(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        let req = session.req_header();
        ctx.client_ip = forward::client_ip(session.client_addr());
        ctx.client_ip_text = ctx.client_ip.map(forward::IpText::new);
        ctx.host = match request_head::read_head(req) {
            Ok(head) => {
                ctx.request_id = forward::request_id(head.request_id);
                ctx.host_header = head.host_header.cloned();
                ctx.upgrade_asked = head.upgrade;
                ctx.expects_continue = head.expects_continue;
                if self.shared.logger.enabled() {
                    ctx.logged_headers = Some([head.referer.cloned(), head.user_agent.cloned()]);
                }
                head.name
            }
            Err(refusal) => {
                ctx.request_id = forward::request_id(req.headers.get(forward::X_REQUEST_ID));
                let body = format!("{}\n", refusal.reason);
                // What follows the head (a body?) cannot be trusted to be framed as said.
                session.set_keepalive(None);
                let mut answer = Answer::text(refusal.status, &body);
                if refusal.status == 405 {
                    answer.headers.push((
                        http::header::ALLOW,
                        http::HeaderValue::from_static(request_head::ALLOWED_METHODS),
                    ));
                }
                send(session, answer, &ctx.request_id).await?;
                return Ok(true);
            }
        };
        let Some(index) = self.router.route(&ctx.host) else {
            send(
                session,
                Answer::text(
                    421,
                    "Misdirected Request: no site is configured for this host name\n",
                ),
                &ctx.request_id,
            )
            .await?;
            return Ok(true);
        };
        ctx.project = Some(index);
        let project = &self.shared.projects[index];
        if let Some(limit) = &project.rate_limit {
            if super::rate_limit::refuse(session, ctx, project, limit).await? {
                return Ok(true);
            }
        }

        let rules = project.rules.load();
        if rules.is_empty() {
            return Ok(false);
        }
        let req = session.req_header();
        let view = RequestView {
            method: req.method.as_str(),
            scheme: self.scheme,
            host: &ctx.host,
            path: req.uri.path(),
            query: req.uri.query(),
            headers: &req.headers,
            client_ip: ctx.client_ip,
            request_id: ctx.request_id.to_str().unwrap_or(""),
        };
        let mut plan = rules.evaluate(&view);
        drop(rules);
        ctx.matched_rules = std::mem::take(&mut plan.matched);
        if let Some(failure) = &plan.failure {
            project.metrics.fail_open("rule_error");
            crate::throttled!(
                warn,
                project.rule_failure_log,
                "project {}: rule `{}` failed ({}); {} for {} {}",
                project.name,
                failure.rule_id,
                failure.reason,
                if project.fail_closed() {
                    "answering 503 (fail_mode: closed)"
                } else {
                    "request passes unmodified (fail-open)"
                },
                session.req_header().method,
                session.req_header().uri
            );
            if project.fail_closed() {
                let answer = Answer::own(Some(project), 503, "Service Unavailable\n");
                send(session, answer, &ctx.request_id).await?;
                return Ok(true);
            }
            return Ok(false);
        }
        if let Some(answer) = Answer::of_plan(&plan) {
            send(session, answer, &ctx.request_id).await?;
            return Ok(true);
        }
        if !plan.is_noop() {
            ctx.plan = Some(Box::new(plan));
        }
        Ok(false)
    }
}
