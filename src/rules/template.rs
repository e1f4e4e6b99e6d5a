//! Templates in `redirect.to`, `rewrite.path`/`rewrite.query`, header values and
//! `respond.body`: `{path}` (the normalized path rules match) `{query}` (raw query) `{host}` `{scheme}` `{method}`
//! `{client_ip}` `{request_id}`, the path regex's groups `{1}`..`{9}` and `{name}`, and `{rest}`
//! for `path_prefix` rules (the normalized path after the prefix). `{{` and `}}` are literal
//! braces. Parsed at compile time, so an unknown name is a config error; rendered into one
//! String sized up front.

use crate::rules::matcher::PathHit;
use crate::rules::uri::push_uri_escaped;
use crate::rules::RequestView;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Path,
    Query,
    Host,
    Scheme,
    Method,
    ClientIp,
    RequestId,
    Rest,
    /// A capture group of the path regex, by index.
    Group(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(Box<str>),
    Var(Var),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// What a template of one rule may refer to.
pub struct Scope<'a> {
    /// The rule matches with `path_prefix`.
    pub has_rest: bool,
    /// Capture group names of the rule's `path_regex` by index (index 0, the whole match, has
    /// none); empty without a regex.
    pub groups: &'a [Option<String>],
}

const BUILTIN: &str = "{path} {query} {host} {scheme} {method} {client_ip} {request_id}";

impl Template {
    pub fn parse(src: &str, scope: &Scope<'_>) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut rest = src;
        while let Some(pos) = rest.find(['{', '}']) {
            text.push_str(&rest[..pos]);
            let brace = rest.as_bytes()[pos];
            let after = &rest[pos + 1..];
            if after.as_bytes().first() == Some(&brace) {
                text.push(char::from(brace));
                rest = &after[1..];
                continue;
            }
            if brace == b'}' {
                return Err(format!(
                    "lone `}}` in `{src}`: write `}}}}` for a literal brace"
                ));
            }
            let end = after.find('}').ok_or_else(|| {
                format!("unclosed `{{` in `{src}`: write `{{{{` for a literal brace")
            })?;
            let var = resolve(&after[..end], scope)?;
            if !text.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut text).into_boxed_str()));
            }
            segments.push(Segment::Var(var));
            rest = &after[end + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            segments.push(Segment::Text(text.into_boxed_str()));
        }
        Ok(Template { segments })
    }

    /// The text, when the template has no variables.
    pub fn literal(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [] => Some(""),
            [Segment::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// The literal text before the first variable.
    pub fn leading_text(&self) -> &str {
        match self.segments.first() {
            Some(Segment::Text(t)) => t,
            _ => "",
        }
    }

    pub fn starts_with_var(&self) -> bool {
        matches!(self.segments.first(), Some(Segment::Var(_)))
    }

    /// True when the template refers to the request's query.
    pub fn uses_query(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Var(Var::Query)))
    }

    /// True when the template refers to a capture group of the path regex.
    pub fn uses_groups(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Var(Var::Group(_))))
    }

    /// The length of the rendered text (exact, except `{client_ip}` counts its maximum).
    pub fn size_hint(&self, req: &RequestView<'_>, hit: &PathHit<'_>) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Text(t) => t.len(),
                Segment::Var(Var::ClientIp) => 45,
                Segment::Var(v) => value(*v, req, hit).len(),
            })
            .sum()
    }

    pub fn render_into(&self, out: &mut String, req: &RequestView<'_>, hit: &PathHit<'_>) {
        self.render_with(out, req, hit, String::push_str);
    }

    /// Renders into a URI: the values of variables are escaped (see [`push_uri_escaped`]),
    /// the literal text is the rule's own, checked when the rule was compiled.
    pub fn render_uri_into(&self, out: &mut String, req: &RequestView<'_>, hit: &PathHit<'_>) {
        self.render_with(out, req, hit, push_uri_escaped);
    }

    fn render_with(
        &self,
        out: &mut String,
        req: &RequestView<'_>,
        hit: &PathHit<'_>,
        push_value: fn(&mut String, &str),
    ) {
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Var(Var::ClientIp) => {
                    if let Some(ip) = req.client_ip {
                        let _ = write!(out, "{ip}");
                    }
                }
                Segment::Var(v) => push_value(out, value(*v, req, hit)),
            }
        }
    }

    /// Whether the template itself, not a variable's value, begins with `prefix`.
    pub fn starts_with_text(&self, prefix: &str) -> bool {
        matches!(self.segments.first(), Some(Segment::Text(t)) if t.starts_with(prefix))
    }

    /// The literal pieces of text between the variables.
    pub fn literal_texts(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Text(t) => Some(&**t),
            Segment::Var(_) => None,
        })
    }

    pub fn render(&self, req: &RequestView<'_>, hit: &PathHit<'_>) -> String {
        let mut out = String::with_capacity(self.size_hint(req, hit));
        self.render_into(&mut out, req, hit);
        out
    }
}

/// The text of a variable (`{client_ip}` is formatted by the caller).
fn value<'a>(v: Var, req: &RequestView<'a>, hit: &'a PathHit<'_>) -> &'a str {
    match v {
        Var::Path => hit.path,
        Var::Query => req.query.unwrap_or(""),
        Var::Host => req.host,
        Var::Scheme => req.scheme,
        Var::Method => req.method,
        Var::RequestId => req.request_id,
        Var::Rest => hit.rest,
        Var::Group(g) => hit.group(g),
        Var::ClientIp => "",
    }
}

fn resolve(name: &str, scope: &Scope<'_>) -> Result<Var, String> {
    Ok(match name {
        "path" => Var::Path,
        "query" => Var::Query,
        "host" => Var::Host,
        "scheme" => Var::Scheme,
        "method" => Var::Method,
        "client_ip" => Var::ClientIp,
        "request_id" => Var::RequestId,
        "rest" if scope.has_rest => Var::Rest,
        "rest" => return Err("`{rest}` is only known for `path_prefix` rules".to_string()),
        _ => {
            let by_index = match name.parse::<usize>() {
                Ok(g @ 1..=9) if name.len() == 1 => (g < scope.groups.len()).then_some(g),
                _ => None,
            };
            let by_name = || scope.groups.iter().position(|g| g.as_deref() == Some(name));
            match by_index.or_else(by_name) {
                Some(g) => Var::Group(g),
                None => return Err(unknown(name, scope)),
            }
        }
    })
}

fn unknown(name: &str, scope: &Scope<'_>) -> String {
    let mut known = BUILTIN.to_string();
    if scope.has_rest {
        known.push_str(" {rest}");
    }
    let groups = scope.groups.len().saturating_sub(1).min(9);
    if groups > 0 {
        let _ = write!(known, " {{1}}..{{{groups}}}");
    }
    for n in scope.groups.iter().flatten() {
        let _ = write!(known, " {{{n}}}");
    }
    let why = if name.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() {
        match groups {
            0 => " (capture groups need a `path_regex` with groups)",
            _ => " (the path_regex has fewer groups; only {1}..{9} are available)",
        }
    } else {
        ""
    };
    format!("unknown template variable `{{{name}}}`{why}; use one of {known}, or `{{{{` and `}}}}` for literal braces")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::req;

    fn scope(groups: &[Option<String>], has_rest: bool) -> Scope<'_> {
        Scope { has_rest, groups }
    }

    #[test]
    fn renders_variables_groups_and_literal_braces() {
        let re = regex::Regex::new(r"^/p/(?P<id>[0-9]+)(/.*)?$").unwrap();
        let groups: Vec<Option<String>> =
            re.capture_names().map(|n| n.map(str::to_string)).collect();
        let t = Template::parse(
            "{scheme}://{host}{path}?{query}&id={id}&n={1}&r={rest}{{x}}{{{method}}} {client_ip} {request_id}",
            &scope(&groups, true),
        )
        .unwrap();
        let r = req("/p/42?a=1");
        let hit = PathHit {
            path: "/p/42",
            rest: "tail",
            caps: re.captures("/p/42"),
        };
        let out = t.render(&r.view(), &hit);
        assert_eq!(
            out,
            "https://shop.test/p/42?a=1&id=42&n=42&r=tail{x}{GET} 10.1.2.3 rid-1"
        );
        assert!(out.capacity() >= out.len() && t.size_hint(&r.view(), &hit) >= out.len());
        // An unmatched optional group renders empty.
        assert_eq!(
            Template::parse("[{2}]", &scope(&groups, false))
                .unwrap()
                .render(&r.view(), &hit),
            "[]"
        );
    }

    #[test]
    fn literals_are_recognized() {
        let s = scope(&[], false);
        assert_eq!(
            Template::parse("a {{b}}", &s).unwrap().literal(),
            Some("a {b}")
        );
        assert_eq!(Template::parse("", &s).unwrap().literal(), Some(""));
        let t = Template::parse("/x{path}", &s).unwrap();
        assert_eq!(
            (t.literal(), t.leading_text(), t.starts_with_var()),
            (None, "/x", false)
        );
        assert!(!t.uses_groups());
    }

    #[test]
    fn rejects_unknown_variables_and_stray_braces() {
        let none = scope(&[], false);
        let err = |src: &str, s: &Scope<'_>| Template::parse(src, s).unwrap_err();
        assert!(err("{rest}", &none).contains("path_prefix"));
        assert!(err("{1}", &none).contains("unknown template variable `{1}`"));
        assert!(err("{nope}", &none).contains("use one of {path}"));
        assert!(err("{path", &none).contains("unclosed"));
        assert!(err("a}b", &none).contains("lone"));
        let groups = vec![None, Some("id".to_string()), None];
        let two = scope(&groups, false);
        assert!(err("{3}", &two).contains("fewer groups"));
        assert!(err("{0}", &two).contains("`{0}`"));
        assert!(err("{10}", &two).contains("`{10}`"));
        assert!(Template::parse("{2}{id}{1}", &two).unwrap().uses_groups());
    }
}
