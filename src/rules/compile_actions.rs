//! Compiling the actions of a rule: redirect, respond, rewrite, pool and header operations.

use crate::rules::actions::{
    Actions, HeaderOpTemplate, OpKind, Redirect, Respond, Rewrite, ValueTemplate,
};
use crate::rules::compile::Errors;
use crate::rules::spec::{HeaderOpsSpec, RuleSpec};
use crate::rules::template::{Scope, Template};
use crate::rules::uri::{check_chars, check_path_and_query, check_uri_reference};
use bytes::Bytes;
use http::header::{
    CONTENT_LENGTH, CONTENT_TYPE, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE,
    TRANSFER_ENCODING,
};
use http::{HeaderName, HeaderValue};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn actions(e: &mut Errors<'_>, spec: &RuleSpec, scope: &Scope<'_>) -> Actions {
    let redirect = spec.redirect.as_ref().and_then(|r| {
        if ![301, 302, 303, 307, 308].contains(&r.status) {
            e.add(
                "redirect.status",
                format!(
                    "{} is not a redirect status: use 301, 302, 303, 307 or 308",
                    r.status
                ),
            );
        }
        let to = e.template("redirect.to", &r.to, scope)?;
        if let Some(text) = to.literal() {
            if let Err(why) = check_uri_reference(text) {
                e.add("redirect.to", format!("`{text}` is not a URI: {why}"));
            }
        } else {
            check_uri_texts(e, "redirect.to", &to);
        }
        if r.keep_query && to.uses_query() {
            e.add(
                "redirect.keep_query",
                "`to` has {query} and keep_query (true by default) appends the query again: set `keep_query: false`",
            );
        }
        Some(Redirect {
            to,
            status: r.status,
            keep_query: r.keep_query,
        })
    });
    let respond = spec.respond.as_ref().and_then(|r| {
        if !(200..=599).contains(&r.status) {
            e.add(
                "respond.status",
                format!(
                    "{} cannot answer a request: use a final status, 200 to 599, e.g. 403",
                    r.status
                ),
            );
        } else if matches!(r.status, 204 | 304) && !r.body.is_empty() {
            e.add(
                "respond.body",
                format!("a {} response has no body: remove `body`", r.status),
            );
        }
        let content_type = r
            .content_type
            .as_deref()
            .unwrap_or("text/plain; charset=utf-8");
        let content_type = HeaderValue::from_str(content_type)
            .map_err(|_| {
                e.add(
                    "respond.content_type",
                    "not a valid header value: e.g. text/html; charset=utf-8",
                )
            })
            .ok();
        let headers = named_values(e, "respond.headers", r.headers.iter().flatten(), scope);
        let body = e.template("respond.body", &r.body, scope)?;
        let fixed_body = body.literal().map(|t| Bytes::copy_from_slice(t.as_bytes()));
        Some(Box::new(Respond {
            status: r.status,
            body,
            fixed_body,
            content_type: content_type?,
            headers,
        }))
    });
    if spec.redirect.is_some() && spec.respond.is_some() {
        e.add(
            "respond",
            "a rule answers with `redirect` or `respond`, not both: split it into two rules",
        );
    }
    let rewrite = spec.rewrite.as_ref().and_then(|r| {
        if r.path.is_none() && r.query.is_none() {
            e.add("rewrite", "give `path` and/or `query`");
        }
        let path = match &r.path {
            Some(p) => Some(e.template("rewrite.path", p, scope)?),
            None => None,
        };
        if let Some(t) = &path {
            let lead = t.leading_text();
            if !t.starts_with_var() && !lead.starts_with('/') {
                e.add(
                    "rewrite.path",
                    format!(
                        "`{}` must start with `/`",
                        r.path.as_deref().unwrap_or_default()
                    ),
                );
            } else if lead.contains(['?', '#'])
                || t.literal()
                    .is_some_and(|l| check_path_and_query(l).is_err())
            {
                e.add(
                    "rewrite.path",
                    "must be a path: put the query in `rewrite.query`, percent-encode spaces",
                );
            } else {
                check_uri_texts(e, "rewrite.path", t);
            }
        }
        let query = match &r.query {
            Some(q) => Some(e.template("rewrite.query", q, scope)?),
            None => None,
        };
        if let Some(t) = &query {
            check_uri_texts(e, "rewrite.query", t);
        }
        Some(Box::new(Rewrite { path, query }))
    });
    let pool = spec.pool.as_deref().map(|p| {
        if p.trim().is_empty() {
            e.add("pool", "must name a pool defined under `pools:`");
        }
        Arc::from(p)
    });
    Actions {
        redirect,
        respond,
        rewrite,
        pool,
        request_headers: header_ops(e, "request_headers", spec.request_headers.as_ref(), scope),
        response_headers: header_ops(e, "response_headers", spec.response_headers.as_ref(), scope),
        stop: spec.stop,
    }
}

/// The rule's own text in a URI template must be URI characters: the variables' values are
/// escaped when rendered, the text is not, so a bad character would fail every request.
fn check_uri_texts(e: &mut Errors<'_>, key: &str, template: &Template) {
    for text in template.literal_texts() {
        if let Err(why) = check_chars(text) {
            let hint = match text.contains(['{', '}']) {
                true => " (a literal brace is %7B or %7D)",
                false => "",
            };
            e.add(key, format!("`{text}`: {why}{hint}"));
            return;
        }
    }
}

/// The hop-by-hop headers (besides those `Connection` names) that a proxy never forwards:
/// responses lose them (`proxy::forward`), rules may not write them. (`TE` and
/// `Transfer-Encoding` are hop-by-hop too, but Pingora writes them with the message framing.)
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    // One match on the text: it runs for every header of every response.
    matches!(
        name.as_str(),
        "connection"
            | "upgrade"
            | "trailer"
            | "proxy-authorization"
            | "proxy-authenticate"
            | "keep-alive"
            | "proxy-connection"
    )
}

/// Why a rule may not touch header `name` in `field` (`request_headers.set`, `respond.headers`,
/// …): Rampart writes the message's framing and hop-by-hop headers itself, and a second or
/// missing Host breaks the request.
fn off_limits(field: &str, name: &HeaderName) -> Option<&'static str> {
    let proxy_auth = name == PROXY_AUTHORIZATION || name == PROXY_AUTHENTICATE;
    if [CONTENT_LENGTH, TRANSFER_ENCODING, TE].contains(name) || is_hop_by_hop(name) {
        return Some(match proxy_auth {
            true => "a hop-by-hop header is never forwarded",
            false => "Rampart writes the framing and connection headers itself (hop-by-hop headers are never forwarded)",
        });
    }
    match (field, name) {
        ("request_headers.add", n) if n == HOST => Some("a request has one Host: use `set`"),
        ("request_headers.remove", n) if n == HOST => Some(
            "a request needs a Host: use `set`, or `preserve_host: false` to send the backend's address",
        ),
        ("respond.headers", n) if n == CONTENT_TYPE => Some("give it as `respond.content_type`"),
        _ => None,
    }
}

/// `name: value-template` pairs; the same name twice (in another case) is an error.
fn named_values<'s>(
    e: &mut Errors<'_>,
    field: &str,
    pairs: impl Iterator<Item = (&'s String, &'s String)>,
    scope: &Scope<'_>,
) -> Vec<(HeaderName, ValueTemplate)> {
    let mut out: Vec<(HeaderName, ValueTemplate)> = Vec::new();
    for (k, v) in pairs {
        let f = format!("{field}.{k}");
        let (Some(name), Some(value)) = (e.header_name(&f, k), e.value_template(&f, v, scope))
        else {
            continue;
        };
        if let Some(why) = off_limits(field, &name) {
            e.add(f, format!("rules cannot write `{k}`: {why}"));
            continue;
        }
        if out.iter().any(|(n, _)| *n == name) {
            e.add(
                f,
                format!("`{k}` is given twice (header names are case-insensitive)"),
            );
            continue;
        }
        out.push((name, value));
    }
    out
}

fn header_ops(
    e: &mut Errors<'_>,
    field: &str,
    spec: Option<&HeaderOpsSpec>,
    scope: &Scope<'_>,
) -> Vec<HeaderOpTemplate> {
    let Some(spec) = spec else { return Vec::new() };
    let mut ops = Vec::new();
    let mut removed: Vec<HeaderName> = Vec::new();
    for (i, k) in spec.remove.iter().enumerate() {
        let f = format!("{field}.remove[{i}]");
        let Some(name) = e.header_name(&f, k) else {
            continue;
        };
        if let Some(why) = off_limits(&format!("{field}.remove"), &name) {
            e.add(f, format!("rules cannot remove `{k}`: {why}"));
            continue;
        }
        if removed.contains(&name) {
            e.add(
                f,
                format!("`{k}` is given twice (header names are case-insensitive)"),
            );
            continue;
        }
        removed.push(name.clone());
        ops.push(HeaderOpTemplate {
            kind: OpKind::Remove,
            name,
            value: None,
        });
    }
    for (kind, key, map) in [
        (OpKind::Set, "set", &spec.set),
        (OpKind::Add, "add", &spec.add),
    ] {
        let values: &BTreeMap<String, String> = map;
        for (name, value) in named_values(e, &format!("{field}.{key}"), values.iter(), scope) {
            ops.push(HeaderOpTemplate {
                kind,
                name,
                value: Some(value),
            });
        }
    }
    ops
}

impl Actions {
    fn templates(&self) -> Vec<&Template> {
        let mut all: Vec<&Template> = Vec::new();
        all.extend(self.redirect.iter().map(|r| &r.to));
        if let Some(r) = &self.respond {
            all.push(&r.body);
            all.extend(r.headers.iter().map(|(_, v)| &v.template));
        }
        if let Some(r) = &self.rewrite {
            all.extend(r.path.iter().chain(r.query.iter()));
        }
        for op in self.request_headers.iter().chain(&self.response_headers) {
            all.extend(op.value.iter().map(|v| &v.template));
        }
        all
    }

    /// True when a template refers to a capture group of the path regex.
    pub fn uses_groups(&self) -> bool {
        self.templates().into_iter().any(Template::uses_groups)
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::compile::test_support::check;

    #[test]
    fn actions() {
        check(
            "[{id: a, redirect: {to: /x, status: 200}}]",
            "redirect.status",
            "use 301, 302, 303, 307 or 308",
        );
        check(
            "[{id: a, respond: {status: 700}}]",
            "respond.status",
            "200 to 599",
        );
        check(
            "[{id: a, respond: {status: 101}}]",
            "respond.status",
            "final status",
        );
        check(
            "[{id: a, respond: {status: 204, body: gone}}]",
            "respond.body",
            "has no body",
        );
        check(
            "[{id: a, redirect: {to: '/x y'}}]",
            "redirect.to",
            "not a URI",
        );
        check(
            "[{id: a, redirect: {to: /x}, respond: {status: 403}}]",
            "respond",
            "not both",
        );
        check(
            "[{id: a, rewrite: {path: v2}}]",
            "rewrite.path",
            "must start with `/`",
        );
        check(
            "[{id: a, rewrite: {path: '/v2?x=1'}}]",
            "rewrite.path",
            "rewrite.query",
        );
        check(
            "[{id: a, rewrite: {}}]",
            "rewrite",
            "give `path` and/or `query`",
        );
        check("[{id: a, pool: ''}]", "pool", "must name a pool");
        check(
            "[{id: a, request_headers: {set: {'Bad Name': x}}}]",
            "request_headers.set.Bad Name",
            "not a valid header name",
        );
        check(
            "[{id: a, response_headers: {remove: [Server, server]}}]",
            "response_headers.remove[1]",
            "given twice",
        );
        check(
            "[{id: a, request_headers: {add: {X-A: 1, x-a: 2}}}]",
            "request_headers.add.x-a",
            "given twice",
        );
        check(
            "[{id: a, redirect: {to: 'https://{host}/{{x}}'}}]",
            "redirect.to",
            "%7B",
        );
        check(
            "[{id: a, redirect: {to: '/d?{query}'}}]",
            "redirect.keep_query",
            "set `keep_query: false`",
        );
        check(
            "[{id: a, rewrite: {query: 'a b'}}]",
            "rewrite.query",
            "not allowed in a URI",
        );
        check(
            "[{id: a, rewrite: {path: '/v2|{path}'}}]",
            "rewrite.path",
            "not allowed in a URI",
        );
        for (rule, key) in [
            (
                "request_headers: {set: {Transfer-Encoding: chunked}}",
                "request_headers.set.Transfer-Encoding",
            ),
            (
                "request_headers: {set: {Content-Length: '0'}}",
                "request_headers.set.Content-Length",
            ),
            (
                "request_headers: {remove: [content-length]}",
                "request_headers.remove[0]",
            ),
            (
                "request_headers: {set: {Connection: close}}",
                "request_headers.set.Connection",
            ),
            (
                "request_headers: {set: {Keep-Alive: x}}",
                "request_headers.set.Keep-Alive",
            ),
            (
                "request_headers: {add: {Upgrade: h2c}}",
                "request_headers.add.Upgrade",
            ),
            (
                "request_headers: {set: {TE: trailers}}",
                "request_headers.set.TE",
            ),
            (
                "request_headers: {set: {Proxy-Authorization: x}}",
                "request_headers.set.Proxy-Authorization",
            ),
            (
                "response_headers: {set: {Content-Length: '3'}}",
                "response_headers.set.Content-Length",
            ),
            (
                "response_headers: {set: {Transfer-Encoding: chunked}}",
                "response_headers.set.Transfer-Encoding",
            ),
            (
                "respond: {status: 200, headers: {Content-Length: '2'}}",
                "respond.headers.Content-Length",
            ),
        ] {
            check(&format!("[{{id: a, {rule}}}]"), key, "rules cannot");
        }
        check(
            "[{id: a, request_headers: {add: {Host: b.internal}}}]",
            "request_headers.add.Host",
            "use `set`",
        );
        check(
            "[{id: a, request_headers: {remove: [host]}}]",
            "request_headers.remove[0]",
            "preserve_host: false",
        );
        check(
            "[{id: a, respond: {status: 200, headers: {Content-Type: text/html}}}]",
            "respond.headers.Content-Type",
            "respond.content_type",
        );
        check(
            "[{id: a, response_headers: {set: {X-A: \"a\\nb\"}}}]",
            "response_headers.set.X-A",
            "not a valid header value",
        );
        check(
            "[{id: a, respond: {status: 200, content_type: \"a\\u0001\"}}]",
            "respond.content_type",
            "not a valid header value",
        );
    }
}
