//! The result of evaluating rules for one request, and how matched rules are folded into it:
//! rules come in evaluation order (priority descending, then file order) and all contribute;
//! the first `redirect`/`respond`/`rewrite`/`pool` stays; per direction, the first rule that
//! touches a header name owns it; `redirect`/`respond` and `stop: true` end evaluation.

use crate::rules::actions::{HeaderOpTemplate, OpKind};
use crate::rules::compile::CompiledRule;
use crate::rules::matcher::PathHit;
use crate::rules::RequestView;
use http::{HeaderName, HeaderValue};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOp {
    Set(HeaderName, HeaderValue),
    Add(HeaderName, HeaderValue),
    Remove(HeaderName),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Send the request upstream (with the plan's rewrite, pool and headers).
    #[default]
    Forward,
    /// Answer with an empty body and this `Location`.
    Redirect { status: u16, location: HeaderValue },
    /// Answer directly.
    Respond {
        status: u16,
        body: bytes::Bytes,
        content_type: HeaderValue,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
}

/// A matching rule that could not be rendered; the request is treated as matching nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFailure {
    pub rule_id: Arc<str>,
    pub reason: String,
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Ids of the rules that matched, in evaluation order (including rules whose actions were
    /// all overridden by earlier ones, and rules without actions).
    pub matched: Vec<Arc<str>>,
    pub outcome: Outcome,
    /// The path and query to send upstream instead of the original; already validated.
    pub rewrite: Option<String>,
    /// A pool other than the project's.
    pub pool: Option<Arc<str>>,
    pub request_headers: Vec<HeaderOp>,
    /// Also applied to redirect and respond answers.
    pub response_headers: Vec<HeaderOp>,
    /// Set when a matching rule failed to render; everything else is then empty.
    pub failure: Option<RuleFailure>,
}

impl Plan {
    /// The fail-open plan: as if nothing matched, with the failure to count and log.
    pub fn failed(failure: RuleFailure) -> Plan {
        Plan {
            failure: Some(failure),
            ..Plan::default()
        }
    }

    /// True when the plan changes nothing about the request (matched rules aside).
    pub fn is_noop(&self) -> bool {
        matches!(self.outcome, Outcome::Forward)
            && self.rewrite.is_none()
            && self.pool.is_none()
            && self.request_headers.is_empty()
            && self.response_headers.is_empty()
            && self.failure.is_none()
    }
}

/// Whether evaluation goes on after a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    Stop,
}

/// Accumulates the plan of one request.
#[derive(Default)]
pub struct PlanBuilder {
    plan: Plan,
    /// Header names owned by earlier rules, per direction.
    owned_request: Vec<HeaderName>,
    owned_response: Vec<HeaderName>,
}

impl PlanBuilder {
    /// Folds in one matching rule. `Err` is the reason it could not be rendered.
    pub fn apply(
        &mut self,
        rule: &CompiledRule,
        req: &RequestView<'_>,
        hit: &PathHit<'_>,
    ) -> Result<Step, String> {
        let a = &rule.actions;
        self.plan.matched.push(rule.id.clone());
        if self.plan.rewrite.is_none() {
            if let Some(rw) = &a.rewrite {
                self.plan.rewrite = Some(rw.render(req, hit)?);
            }
        }
        if self.plan.pool.is_none() {
            self.plan.pool.clone_from(&a.pool);
        }
        header_ops(
            &a.request_headers,
            &mut self.owned_request,
            &mut self.plan.request_headers,
            req,
            hit,
        )?;
        header_ops(
            &a.response_headers,
            &mut self.owned_response,
            &mut self.plan.response_headers,
            req,
            hit,
        )?;
        if let Some(r) = &a.redirect {
            let location = r.render(req, hit)?;
            self.plan.outcome = Outcome::Redirect {
                status: r.status,
                location,
            };
            return Ok(Step::Stop);
        }
        if let Some(r) = &a.respond {
            let mut headers = Vec::with_capacity(r.headers.len());
            for (name, value) in &r.headers {
                let value = value
                    .render(req, hit)
                    .map_err(|e| format!("respond.headers.{name}: {e}"))?;
                headers.push((name.clone(), value));
            }
            self.plan.outcome = Outcome::Respond {
                status: r.status,
                body: r.render_body(req, hit),
                content_type: r.content_type.clone(),
                headers,
            };
            return Ok(Step::Stop);
        }
        Ok(if a.stop { Step::Stop } else { Step::Continue })
    }

    pub fn finish(self) -> Plan {
        self.plan
    }
}

/// Adds a rule's operations for names no earlier rule touched; the rule then owns them.
fn header_ops(
    ops: &[HeaderOpTemplate],
    owned: &mut Vec<HeaderName>,
    out: &mut Vec<HeaderOp>,
    req: &RequestView<'_>,
    hit: &PathHit<'_>,
) -> Result<(), String> {
    let earlier = owned.len();
    for op in ops {
        if owned[..earlier].contains(&op.name) {
            continue;
        }
        let value = match &op.value {
            Some(v) => Some(
                v.render(req, hit)
                    .map_err(|e| format!("header {}: {e}", op.name))?,
            ),
            None => None,
        };
        out.push(match (op.kind, value) {
            (OpKind::Set, Some(v)) => HeaderOp::Set(op.name.clone(), v),
            (OpKind::Add, Some(v)) => HeaderOp::Add(op.name.clone(), v),
            _ => HeaderOp::Remove(op.name.clone()),
        });
        if !owned[earlier..].contains(&op.name) {
            owned.push(op.name.clone());
        }
    }
    Ok(())
}
