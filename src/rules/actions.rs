//! Compiled actions of one rule and their rendering. Request data is escaped into URIs, so
//! what a client sends cannot make a rule fail; rendering still checks what it produces (a
//! URI reference for `Location`, an origin-form path for rewrites, header values), and a
//! failure is reported as a reason string and the whole plan is dropped (fail-open).

use crate::rules::matcher::PathHit;
use crate::rules::template::Template;
use crate::rules::uri::{check_path_and_query, check_uri_reference, push_uri_escaped};
use crate::rules::RequestView;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use std::sync::Arc;

/// A header value template; literal values are built once at compile time.
#[derive(Debug)]
pub struct ValueTemplate {
    pub template: Template,
    pub fixed: Option<HeaderValue>,
}

impl ValueTemplate {
    pub fn render(&self, req: &RequestView<'_>, hit: &PathHit<'_>) -> Result<HeaderValue, String> {
        if let Some(v) = &self.fixed {
            return Ok(v.clone());
        }
        let s = self.template.render(req, hit);
        HeaderValue::try_from(s.as_str())
            .map_err(|_| format!("rendered an invalid header value {}", shown(&s)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Remove,
    Set,
    Add,
}

/// One header operation; a rule's operations are kept removes first, then sets, then adds.
#[derive(Debug)]
pub struct HeaderOpTemplate {
    pub kind: OpKind,
    pub name: HeaderName,
    /// `None` for removes.
    pub value: Option<ValueTemplate>,
}

#[derive(Debug)]
pub struct Redirect {
    pub to: Template,
    pub status: u16,
    pub keep_query: bool,
}

#[derive(Debug)]
pub struct Respond {
    pub status: u16,
    pub body: Template,
    /// The body, when it is literal.
    pub fixed_body: Option<Bytes>,
    pub content_type: HeaderValue,
    pub headers: Vec<(HeaderName, ValueTemplate)>,
}

#[derive(Debug)]
pub struct Rewrite {
    /// `None`: the original path.
    pub path: Option<Template>,
    /// `None`: the original query.
    pub query: Option<Template>,
}

#[derive(Debug, Default)]
pub struct Actions {
    pub redirect: Option<Redirect>,
    /// Boxed, like `rewrite`: most rules have neither, and 100 000 rules must stay small.
    pub respond: Option<Box<Respond>>,
    pub rewrite: Option<Box<Rewrite>>,
    pub pool: Option<Arc<str>>,
    pub request_headers: Vec<HeaderOpTemplate>,
    pub response_headers: Vec<HeaderOpTemplate>,
    pub stop: bool,
}

/// A rendered value for a log line: quoted, escaped, cut at 200 characters.
pub fn shown(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

impl Redirect {
    /// The `Location`: the rendered target, plus the request's query when `keep_query`
    /// (`&`-joined when the target has one, before any `#fragment`).
    pub fn render(&self, req: &RequestView<'_>, hit: &PathHit<'_>) -> Result<HeaderValue, String> {
        let query = req.query.filter(|q| self.keep_query && !q.is_empty());
        if let (Some(text), None) = (self.to.literal(), query) {
            // Checked as a URI when compiled: only the header value is left to build.
            return HeaderValue::from_str(text).map_err(|e| format!("redirect.to: {e}"));
        }
        let mut to =
            String::with_capacity(self.to.size_hint(req, hit) + query.map_or(0, |q| q.len() + 1));
        self.to.render_uri_into(&mut to, req, hit);
        // `//host/...` is another site to a browser: only the rule's own text may say so,
        // never a value from the request (`to: "/{rest}"` with a rest of `/evil.test`).
        if to.starts_with("//") && !self.to.starts_with_text("//") {
            let slashes = to.bytes().take_while(|&b| b == b'/').count();
            to.replace_range(..slashes, "/");
        }
        if let Some(q) = query {
            let end = to.find('#').unwrap_or(to.len());
            let sep = if to[..end].contains('?') { '&' } else { '?' };
            let fragment = to.split_off(end);
            to.push(sep);
            push_uri_escaped(&mut to, q);
            to.push_str(&fragment);
        }
        check_uri_reference(&to).map_err(|why| {
            format!(
                "redirect.to rendered {} which is not a URI: {why}",
                shown(&to)
            )
        })?;
        HeaderValue::try_from(to).map_err(|e| format!("redirect.to: {e}"))
    }
}

impl Rewrite {
    /// The path and query sent upstream; the original query stays unless `query` is given
    /// (an empty rendered query drops it).
    pub fn render(&self, req: &RequestView<'_>, hit: &PathHit<'_>) -> Result<String, String> {
        let path_len = self
            .path
            .as_ref()
            .map_or(req.path.len(), |t| t.size_hint(req, hit));
        let query_len = self
            .query
            .as_ref()
            .map_or(req.query.map_or(0, str::len), |t| t.size_hint(req, hit));
        let mut uri = String::with_capacity(path_len + 1 + query_len);
        match &self.path {
            Some(t) => t.render_uri_into(&mut uri, req, hit),
            None => push_uri_escaped(&mut uri, req.path),
        }
        let mark = uri.len();
        uri.push('?');
        match &self.query {
            Some(t) => t.render_uri_into(&mut uri, req, hit),
            None => push_uri_escaped(&mut uri, req.query.unwrap_or("")),
        }
        if uri.len() == mark + 1 {
            uri.truncate(mark);
        }
        check_path_and_query(&uri).map_err(|why| {
            format!(
                "rewrite rendered {} which is not a path: {why}",
                shown(&uri)
            )
        })?;
        Ok(uri)
    }
}

impl Respond {
    pub fn render_body(&self, req: &RequestView<'_>, hit: &PathHit<'_>) -> Bytes {
        match &self.fixed_body {
            Some(b) => b.clone(),
            None => Bytes::from(self.body.render(req, hit)),
        }
    }
}
