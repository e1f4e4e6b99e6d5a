//! Compiled actions of one rule and their rendering. Rendering checks what it produces (a
//! URI reference for `Location`, an origin-form path for rewrites, header values); a failure
//! is reported as a reason string and the whole plan is dropped (fail-open).

use crate::rules::matcher::PathHit;
use crate::rules::template::Template;
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
        self.to.render_into(&mut to, req, hit);
        if let Some(q) = query {
            let end = to.find('#').unwrap_or(to.len());
            let sep = if to[..end].contains('?') { "&" } else { "?" };
            to.insert_str(end, q);
            to.insert_str(end, sep);
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
            Some(t) => t.render_into(&mut uri, req, hit),
            None => uri.push_str(req.path),
        }
        let mark = uri.len();
        uri.push('?');
        match &self.query {
            Some(t) => t.render_into(&mut uri, req, hit),
            None => uri.push_str(req.query.unwrap_or("")),
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

fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// Only RFC 3986 characters, and `%` only in well-formed escapes.
fn check_chars(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if !is_uri_char(c) {
            return Err(format!(
                "{:?} is not allowed in a URI (percent-encode it)",
                char::from(c)
            ));
        }
        if c == b'%'
            && !(b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
        {
            return Err("`%` must start a %XX escape".to_string());
        }
    }
    Ok(())
}

/// A `Location` value: an absolute URI, a scheme-relative `//host/path` or a relative
/// reference, with a valid authority when it has one.
pub fn check_uri_reference(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".to_string());
    }
    check_chars(s)?;
    let (target, fragment) = s.split_once('#').unwrap_or((s, ""));
    if fragment.contains('#') {
        return Err("it has more than one `#`".to_string());
    }
    let scheme_len = target.find(':').filter(|&i| {
        let sch = &target.as_bytes()[..i];
        sch.first().is_some_and(u8::is_ascii_alphabetic)
            && sch
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
            && !target[..i].contains(['/', '?'])
    });
    let after_scheme = scheme_len.map_or(target, |i| &target[i + 1..]);
    if let Some(rest) = after_scheme.strip_prefix("//") {
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        check_authority(authority)?;
    } else if scheme_len.is_some() && target.contains("://") {
        return Err("the scheme must be followed by `//host`".to_string());
    }
    Ok(())
}

fn check_authority(authority: &str) -> Result<(), String> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (_, after) = v6.split_once(']').ok_or("unclosed `[` in the host")?;
        ("[", after.strip_prefix(':').unwrap_or(after))
    } else {
        host_port.split_once(':').unwrap_or((host_port, ""))
    };
    if host.is_empty() && !port.is_empty() {
        return Err("the host is empty".to_string());
    }
    if host.contains(['[', ']']) && host != "[" {
        return Err(format!("`{host}` is not a host"));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u32>().is_ok_and(|p| p > 65535) {
        return Err(format!("`{port}` is not a port"));
    }
    Ok(())
}

/// An origin-form request target: `/path[?query]`, which `http::Uri` also accepts.
pub fn check_path_and_query(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err("it must start with `/`".to_string());
    }
    check_chars(s)?;
    if s.contains('#') {
        return Err("`#` is not allowed".to_string());
    }
    s.parse::<http::Uri>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_references() {
        for ok in [
            "/a",
            "https://example.com/x?y=1#f",
            "//cdn.example.com/x",
            "../up",
            "page.html",
            "http://[2001:db8::1]:8080/",
            "https://u@h:443/",
            "mailto:a@b.c",
            "/%C3%A9",
        ] {
            assert_eq!(check_uri_reference(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/a b",
            "/a\nb",
            "/é",
            "/a%zz",
            "/a%4",
            "https://bad:host.example.com/",
            "https://h:99999/",
            "https://exa[mple/",
            "http://[::1/",
            "/a#b#c",
            "/{x}",
        ] {
            assert!(check_uri_reference(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_and_queries() {
        assert_eq!(check_path_and_query("/v2/x?a=1&b"), Ok(()));
        assert_eq!(check_path_and_query("//double"), Ok(()));
        for bad in ["v2", "/a b", "/a#b", "/a%g0", "/\"q\""] {
            assert!(check_path_and_query(bad).is_err(), "{bad:?}");
        }
    }
}
