//! Matching one rule against a request, and folding matched rules into a [`Plan`] with the
//! priority/conflict semantics: the first redirect/respond/rewrite/pool stays, the first rule
//! touching a header name owns it, redirect/respond/stop end evaluation.

use super::compile::{CompiledRule, HostMatch, OpKind, PathMatch, ValueMatch};
use super::template::Captures;
use super::{HeaderOp, Outcome, Plan, RequestView, RuleFailure};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};

/// The request as rules see it: the normalized path (and its lowercase form, when a
/// case-insensitive rule needs it).
pub struct Subject<'a> {
    pub path: &'a str,
    pub lower: Option<&'a str>,
}

/// Percent-decodes a query component (`+` is a space).
fn decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let spaced = s.replace('+', " ");
    std::borrow::Cow::Owned(
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

fn query_value<'q>(query: Option<&'q str>, key: &str) -> Option<std::borrow::Cow<'q, str>> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

fn value_ok(m: &ValueMatch, v: Option<&str>) -> bool {
    match (m, v) {
        (_, None) => false,
        (ValueMatch::Present, Some(_)) => true,
        (ValueMatch::Exact(x), Some(v)) => x == v,
        (ValueMatch::Regex(r), Some(v)) => r.is_match(v),
    }
}

/// Where the path matched: the `{rest}` of a prefix and the regex groups.
#[derive(Default)]
pub struct PathHit {
    pub rest_from: usize,
    pub groups: Vec<Option<(usize, usize)>>,
}

impl CompiledRule {
    /// Checks every condition; cheap ones first, the path (regex) last.
    pub fn matches(&self, req: &RequestView<'_>, s: &Subject<'_>) -> Option<PathHit> {
        if let Some(methods) = &self.methods {
            if !methods.iter().any(|m| m.as_str() == req.method) {
                return None;
            }
        }
        if let Some(scheme) = &self.scheme {
            if scheme != req.scheme {
                return None;
            }
        }
        match &self.host {
            Some(HostMatch::Exact(h)) if h != req.host => return None,
            Some(HostMatch::Suffix(sfx)) if !req.host.ends_with(sfx.as_str()) => return None,
            _ => {}
        }
        if let Some(nets) = &self.client_ip {
            let ip = req.client_ip?;
            if !nets.iter().any(|n| n.contains(&ip)) {
                return None;
            }
        }
        for n in &self.not_headers {
            if req.headers.contains_key(n) {
                return None;
            }
        }
        for (name, m) in &self.headers {
            if !value_ok(m, req.headers.get(name).and_then(|v| v.to_str().ok())) {
                return None;
            }
        }
        for (key, m) in &self.query {
            if !value_ok(m, query_value(req.query, key).as_deref()) {
                return None;
            }
        }
        let path = if self.case_insensitive {
            s.lower.unwrap_or(s.path)
        } else {
            s.path
        };
        match &self.path {
            PathMatch::Any => Some(PathHit::default()),
            PathMatch::Exact(p) => (p == path).then(PathHit::default),
            PathMatch::Prefix(p) => path.starts_with(p.as_str()).then(|| PathHit {
                rest_from: p.len(),
                groups: Vec::new(),
            }),
            PathMatch::Regex(re) => {
                if !re.is_match(path) {
                    return None;
                }
                let caps = re.captures(path)?;
                Some(PathHit {
                    rest_from: 0,
                    groups: (0..caps.len())
                        .map(|i| caps.get(i).map(|m| (m.start(), m.end())))
                        .collect(),
                })
            }
        }
    }
}

/// Accumulates the plan while rules are taken in priority order.
pub struct PlanBuilder {
    plan: Plan,
    /// Header names owned by earlier rules, per direction.
    owned_req: Vec<HeaderName>,
    owned_resp: Vec<HeaderName>,
}

fn failure(rule: &CompiledRule, reason: String) -> RuleFailure {
    RuleFailure {
        rule_id: rule.id.clone(),
        reason,
    }
}

fn header_value(rule: &CompiledRule, s: String) -> Result<HeaderValue, RuleFailure> {
    HeaderValue::try_from(s)
        .map_err(|e| failure(rule, format!("rendered an invalid header value: {e}")))
}

impl PlanBuilder {
    pub fn new() -> Self {
        PlanBuilder {
            plan: Plan::default(),
            owned_req: Vec::new(),
            owned_resp: Vec::new(),
        }
    }

    /// Folds one matched rule in. `Ok(true)` means evaluation ends here; `Err` means the
    /// rule could not be rendered (the caller fails open).
    pub fn apply(
        &mut self,
        rule: &CompiledRule,
        req: &RequestView<'_>,
        s: &Subject<'_>,
        hit: &PathHit,
    ) -> Result<bool, RuleFailure> {
        let subject = if rule.case_insensitive {
            s.lower.unwrap_or(s.path)
        } else {
            s.path
        };
        // `{rest}` and captures come from the normalized path with its original case.
        let rest = s.path.get(hit.rest_from..).unwrap_or("");
        let caps = Captures {
            rest,
            groups: &hit.groups,
            subject: if hit.groups.is_empty() {
                subject
            } else {
                s.path
            },
        };
        self.plan.matched.push(rule.id.clone());

        if self.plan.rewrite.is_none() {
            if let Some(rw) = &rule.rewrite {
                let mut uri = String::with_capacity(64);
                match &rw.path {
                    Some(t) => t.render_into(&mut uri, req, &caps),
                    None => uri.push_str(req.path),
                }
                let query = match &rw.query {
                    Some(t) => Some(t.render(req, &caps)),
                    None => req.query.map(str::to_string),
                };
                if let Some(q) = query.filter(|q| !q.is_empty()) {
                    uri.push('?');
                    uri.push_str(&q);
                }
                if uri.parse::<http::uri::PathAndQuery>().is_err() || !uri.starts_with('/') {
                    return Err(failure(
                        rule,
                        format!("rewrite rendered an invalid path `{uri}`"),
                    ));
                }
                self.plan.rewrite = Some(uri);
            }
        }
        if self.plan.pool.is_none() {
            self.plan.pool = rule.pool.clone();
        }
        for (ops, owned, out) in [
            (
                &rule.request_headers,
                &mut self.owned_req,
                &mut self.plan.request_headers,
            ),
            (
                &rule.response_headers,
                &mut self.owned_resp,
                &mut self.plan.response_headers,
            ),
        ] {
            let already = owned.len();
            for op in ops {
                if owned[..already].contains(&op.name) {
                    continue;
                }
                let value = match &op.value {
                    Some(t) => Some(header_value(rule, t.render(req, &caps))?),
                    None => None,
                };
                out.push(match (op.kind, value) {
                    (OpKind::Set, Some(v)) => HeaderOp::Set(op.name.clone(), v),
                    (OpKind::Add, Some(v)) => HeaderOp::Add(op.name.clone(), v),
                    _ => HeaderOp::Remove(op.name.clone()),
                });
                if !owned.contains(&op.name) {
                    owned.push(op.name.clone());
                }
            }
        }
        if let Some(r) = &rule.redirect {
            let mut to = r.to.render(req, &caps);
            if r.keep_query {
                if let Some(q) = req.query.filter(|q| !q.is_empty()) {
                    to.push(if to.contains('?') { '&' } else { '?' });
                    to.push_str(q);
                }
            }
            if to.parse::<http::Uri>().is_err() {
                return Err(failure(
                    rule,
                    format!("redirect rendered an invalid URI `{to}`"),
                ));
            }
            let location = header_value(rule, to)?;
            self.plan.outcome = Outcome::Redirect {
                status: r.status,
                location,
            };
            return Ok(true);
        }
        if let Some(r) = &rule.respond {
            let mut headers = Vec::with_capacity(r.headers.len());
            for (name, t) in &r.headers {
                headers.push((name.clone(), header_value(rule, t.render(req, &caps))?));
            }
            let body = r.body.render(req, &caps);
            self.plan.outcome = Outcome::Respond {
                status: r.status,
                body: Bytes::from(body),
                content_type: r.content_type.clone(),
                headers,
            };
            return Ok(true);
        }
        Ok(rule.stop)
    }

    pub fn finish(self) -> Plan {
        self.plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            query_value(Some("a=1&utm_source=news%20letter&b"), "utm_source").as_deref(),
            Some("news letter")
        );
        assert_eq!(query_value(Some("q=a+b"), "q").as_deref(), Some("a b"));
        assert_eq!(query_value(Some("b"), "b").as_deref(), Some(""));
        assert_eq!(query_value(None, "b"), None);
    }
}
