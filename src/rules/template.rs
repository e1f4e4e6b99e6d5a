//! Templates in redirect targets, rewrites, header values and bodies: `{path}` `{query}`
//! `{host}` `{scheme}` `{method}` `{client_ip}` `{request_id}`, regex captures `{1}`..`{9}`
//! and `{name}`, `{rest}` for prefix rules; `{{` and `}}` are literal braces. Parsed once at
//! compile time; rendering appends to one String.

use super::RequestView;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    Path,
    Query,
    Host,
    Scheme,
    Method,
    ClientIp,
    RequestId,
    Rest,
    /// Capture group by index (1..=9) of the rule's path regex.
    Group(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var(Var),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// What a template may refer to, known at compile time.
pub struct Scope<'a> {
    pub has_rest: bool,
    /// Capture group names of the path regex, by index (index 0 = whole match).
    pub groups: &'a [Option<String>],
}

/// Values only known once the rule matched.
pub struct Captures<'a> {
    pub rest: &'a str,
    pub groups: &'a [Option<(usize, usize)>],
    /// The text the regex ran on (the normalized path).
    pub subject: &'a str,
}

impl Template {
    pub fn parse(src: &str, scope: &Scope<'_>) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut chars = src.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let end = src[i..].find('}').ok_or_else(|| {
                        format!("unclosed `{{` in `{src}` (write `{{{{` for a literal brace)")
                    })? + i;
                    let name = &src[i + 1..end];
                    let var = resolve(name, scope).ok_or_else(|| unknown(name, scope))?;
                    if !text.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    segments.push(Segment::Var(var));
                    while chars.peek().is_some_and(|p| p.0 <= end) {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "lone `}}` in `{src}` (write `}}}}` for a literal brace)"
                    ))
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(Template { segments })
    }

    pub fn render_into(&self, out: &mut String, req: &RequestView<'_>, caps: &Captures<'_>) {
        use std::fmt::Write;
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Var(v) => match v {
                    Var::Path => out.push_str(req.path),
                    Var::Query => out.push_str(req.query.unwrap_or("")),
                    Var::Host => out.push_str(req.host),
                    Var::Scheme => out.push_str(req.scheme),
                    Var::Method => out.push_str(req.method),
                    Var::ClientIp => {
                        if let Some(ip) = req.client_ip {
                            let _ = write!(out, "{ip}");
                        }
                    }
                    Var::RequestId => out.push_str(req.request_id),
                    Var::Rest => out.push_str(caps.rest),
                    Var::Group(g) => {
                        if let Some(Some((a, b))) = caps.groups.get(*g) {
                            out.push_str(&caps.subject[*a..*b]);
                        }
                    }
                },
            }
        }
    }

    pub fn render(&self, req: &RequestView<'_>, caps: &Captures<'_>) -> String {
        let mut s = String::with_capacity(64);
        self.render_into(&mut s, req, caps);
        s
    }
}

fn resolve(name: &str, scope: &Scope<'_>) -> Option<Var> {
    Some(match name {
        "path" => Var::Path,
        "query" => Var::Query,
        "host" => Var::Host,
        "scheme" => Var::Scheme,
        "method" => Var::Method,
        "client_ip" => Var::ClientIp,
        "request_id" => Var::RequestId,
        "rest" if scope.has_rest => Var::Rest,
        n if n.len() == 1 && n.as_bytes()[0].is_ascii_digit() && n != "0" => {
            let g = usize::from(n.as_bytes()[0] - b'0');
            (g < scope.groups.len()).then_some(Var::Group(g))?
        }
        n => Var::Group(scope.groups.iter().position(|g| g.as_deref() == Some(n))?),
    })
}

fn unknown(name: &str, scope: &Scope<'_>) -> String {
    let mut known = vec![
        "path",
        "query",
        "host",
        "scheme",
        "method",
        "client_ip",
        "request_id",
    ];
    if scope.has_rest {
        known.push("rest");
    }
    let groups = scope.groups.len().saturating_sub(1);
    let hint = match name {
        "rest" => " ({rest} needs a `path_prefix` match)".to_string(),
        _ if groups > 0 => format!(
            " (the path_regex has {groups} capture group(s): {{1}}..{{{groups}}} or their names)"
        ),
        _ => String::new(),
    };
    format!(
        "unknown template variable `{{{name}}}`{hint}; known: {}",
        known.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(headers: &http::HeaderMap) -> RequestView<'_> {
        RequestView {
            method: "GET",
            scheme: "https",
            host: "shop.test",
            path: "/p/42",
            query: Some("a=1"),
            headers,
            client_ip: Some("10.0.0.9".parse().unwrap()),
            request_id: "rid",
        }
    }

    #[test]
    fn renders_variables_groups_and_literal_braces() {
        let groups = vec![None, Some("id".to_string())];
        let scope = Scope {
            has_rest: true,
            groups: &groups,
        };
        let t = Template::parse("{scheme}://{host}{path}?{query}&id={id}&n={1}&r={rest} {{x}} {client_ip} {request_id} {method}", &scope).unwrap();
        let h = http::HeaderMap::new();
        let caps = Captures {
            rest: "tail",
            groups: &[Some((0, 5)), Some((3, 5))],
            subject: "/p/42",
        };
        assert_eq!(
            t.render(&view(&h), &caps),
            "https://shop.test/p/42?a=1&id=42&n=42&r=tail {x} 10.0.0.9 rid GET"
        );
    }

    #[test]
    fn rejects_unknown_variables() {
        let scope = Scope {
            has_rest: false,
            groups: &[None],
        };
        assert!(Template::parse("{rest}", &scope)
            .unwrap_err()
            .contains("path_prefix"));
        assert!(Template::parse("{1}", &scope)
            .unwrap_err()
            .contains("unknown template variable `{1}`"));
        assert!(Template::parse("{nope}", &scope).is_err());
        assert!(Template::parse("{path", &scope)
            .unwrap_err()
            .contains("unclosed"));
        assert!(Template::parse("a}b", &scope).unwrap_err().contains("lone"));
    }
}
