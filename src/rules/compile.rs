//! Rule specs → compiled rules: regexes built, templates parsed, names validated. Every
//! problem is reported with the rule's index and the field, so config errors point at it.

use super::normalize::normalize_path;
use super::spec::{HeaderOpsSpec, RuleSpec};
use super::template::{Scope, Template};
use super::RuleError;
use http::{HeaderName, HeaderValue, Method};
use ipnet::IpNet;
use regex::Regex;
use std::sync::Arc;

#[derive(Debug)]
pub enum PathMatch {
    Any,
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

#[derive(Debug)]
pub enum HostMatch {
    Exact(String),
    /// `*.example.com`: stored as `.example.com`.
    Suffix(String),
}

#[derive(Debug)]
pub enum ValueMatch {
    Present,
    Exact(String),
    Regex(Regex),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Set,
    Add,
    Remove,
}

#[derive(Debug)]
pub struct HeaderOpTemplate {
    pub kind: OpKind,
    pub name: HeaderName,
    pub value: Option<Template>,
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
    pub content_type: HeaderValue,
    pub headers: Vec<(HeaderName, Template)>,
}

#[derive(Debug)]
pub struct Rewrite {
    pub path: Option<Template>,
    pub query: Option<Template>,
}

#[derive(Debug)]
pub struct CompiledRule {
    pub id: Arc<str>,
    pub priority: i32,
    /// Position in the input (file order), the tie-breaker of equal priorities.
    pub order: usize,
    pub path: PathMatch,
    pub case_insensitive: bool,
    pub host: Option<HostMatch>,
    pub methods: Option<Vec<Method>>,
    pub scheme: Option<String>,
    pub query: Vec<(String, ValueMatch)>,
    pub headers: Vec<(HeaderName, ValueMatch)>,
    pub not_headers: Vec<HeaderName>,
    pub client_ip: Option<Vec<IpNet>>,
    pub redirect: Option<Redirect>,
    pub respond: Option<Respond>,
    pub rewrite: Option<Rewrite>,
    pub pool: Option<Arc<str>>,
    pub request_headers: Vec<HeaderOpTemplate>,
    pub response_headers: Vec<HeaderOpTemplate>,
    pub stop: bool,
}

struct Errors<'a> {
    index: usize,
    out: &'a mut Vec<RuleError>,
}

impl Errors<'_> {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.out.push(RuleError {
            index: self.index,
            field: field.into(),
            message: message.into(),
        });
    }
}

fn header_name(e: &mut Errors<'_>, field: &str, name: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| {
            e.add(
                field,
                format!("`{name}` is not a valid header name (letters, digits and -)"),
            )
        })
        .ok()
}

fn template(e: &mut Errors<'_>, field: &str, src: &str, scope: &Scope<'_>) -> Option<Template> {
    Template::parse(src, scope)
        .map_err(|m| e.add(field, m))
        .ok()
}

fn value_match(e: &mut Errors<'_>, field: &str, v: &str) -> Option<ValueMatch> {
    Some(match v {
        "*" => ValueMatch::Present,
        v if v.starts_with('~') => ValueMatch::Regex(
            Regex::new(&v[1..])
                .map_err(|err| e.add(field, format!("invalid regex: {err}")))
                .ok()?,
        ),
        v => ValueMatch::Exact(v.to_string()),
    })
}

fn header_ops(
    e: &mut Errors<'_>,
    field: &str,
    spec: &Option<HeaderOpsSpec>,
    scope: &Scope<'_>,
) -> Vec<HeaderOpTemplate> {
    let Some(spec) = spec else { return Vec::new() };
    let mut ops = Vec::new();
    for (kind, map, key) in [
        (OpKind::Set, &spec.set, "set"),
        (OpKind::Add, &spec.add, "add"),
    ] {
        for (name, value) in map {
            let f = format!("{field}.{key}.{name}");
            if let (Some(name), Some(value)) =
                (header_name(e, &f, name), template(e, &f, value, scope))
            {
                ops.push(HeaderOpTemplate {
                    kind,
                    name,
                    value: Some(value),
                });
            }
        }
    }
    for (i, name) in spec.remove.iter().enumerate() {
        if let Some(name) = header_name(e, &format!("{field}.remove[{i}]"), name) {
            ops.push(HeaderOpTemplate {
                kind: OpKind::Remove,
                name,
                value: None,
            });
        }
    }
    ops
}

pub fn compile_rule(
    index: usize,
    spec: &RuleSpec,
    out: &mut Vec<RuleError>,
) -> Option<CompiledRule> {
    let before = out.len();
    let mut e = Errors { index, out };
    let m = &spec.matcher;
    if spec.id.trim().is_empty() {
        e.add(
            "id",
            "every rule needs a non-empty `id` (shown in logs, metrics and `rules test`)",
        );
    }
    let ci = m.case_insensitive;
    let fold = |s: &str| if ci { s.to_lowercase() } else { s.to_string() };
    let given = [
        m.path.is_some(),
        m.path_prefix.is_some(),
        m.path_regex.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given > 1 {
        e.add(
            "match",
            "use at most one of `path`, `path_prefix` and `path_regex`",
        );
    }
    let mut groups: Vec<Option<String>> = vec![None];
    let path = if let Some(p) = &m.path {
        if !p.starts_with('/') {
            e.add("match.path", format!("`{p}` must start with /"));
        }
        PathMatch::Exact(fold(&normalize_path(p)))
    } else if let Some(p) = &m.path_prefix {
        if !p.starts_with('/') {
            e.add("match.path_prefix", format!("`{p}` must start with /"));
        }
        PathMatch::Prefix(fold(&normalize_path(p)))
    } else if let Some(r) = &m.path_regex {
        let src = if ci { format!("(?i){r}") } else { r.clone() };
        match Regex::new(&src) {
            Ok(re) => {
                groups = re.capture_names().map(|n| n.map(str::to_string)).collect();
                PathMatch::Regex(re)
            }
            Err(err) => {
                e.add("match.path_regex", format!("invalid regex: {err}"));
                PathMatch::Any
            }
        }
    } else {
        PathMatch::Any
    };
    let scope = Scope {
        has_rest: m.path_prefix.is_some(),
        groups: &groups,
    };

    let host = m.host.as_ref().map(|h| {
        let h = h.trim().to_ascii_lowercase();
        match h.strip_prefix('*') {
            Some(suffix) if suffix.starts_with('.') => HostMatch::Suffix(suffix.to_string()),
            _ => HostMatch::Exact(h),
        }
    });
    let methods = m.methods.as_ref().map(|list| {
        list.iter()
            .filter_map(|x| {
                Method::from_bytes(x.to_ascii_uppercase().as_bytes())
                    .map_err(|_| e.add("match.methods", format!("`{x}` is not an HTTP method")))
                    .ok()
            })
            .collect()
    });
    let scheme = m.scheme.as_ref().map(|s| s.to_ascii_lowercase());
    if let Some(s) = &scheme {
        if s != "http" && s != "https" {
            e.add(
                "match.scheme",
                format!("`{s}` is not a scheme: use http or https"),
            );
        }
    }
    let query = m
        .query
        .iter()
        .flatten()
        .filter_map(|(k, v)| {
            Some((
                k.clone(),
                value_match(&mut e, &format!("match.query.{k}"), v)?,
            ))
        })
        .collect();
    let headers = m
        .headers
        .iter()
        .flatten()
        .filter_map(|(k, v)| {
            let f = format!("match.headers.{k}");
            Some((header_name(&mut e, &f, k)?, value_match(&mut e, &f, v)?))
        })
        .collect();
    let not_headers = m
        .not_headers
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, k)| header_name(&mut e, &format!("match.not_headers[{i}]"), k))
        .collect();
    let client_ip = m.client_ip.as_ref().map(|list| {
        list.iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.parse::<IpNet>()
                    .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| e.add(format!("match.client_ip[{i}]"), format!("`{c}` is not an IP address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)")))
                    .ok()
            })
            .collect()
    });

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
        Some(Redirect {
            to: template(&mut e, "redirect.to", &r.to, &scope)?,
            status: r.status,
            keep_query: r.keep_query,
        })
    });
    let respond = spec.respond.as_ref().and_then(|r| {
        if !(100..=599).contains(&r.status) {
            e.add(
                "respond.status",
                format!("{} is not an HTTP status (100 to 599)", r.status),
            );
        }
        let content_type = r
            .content_type
            .as_deref()
            .unwrap_or("text/plain; charset=utf-8");
        let content_type = HeaderValue::from_str(content_type)
            .map_err(|_| e.add("respond.content_type", "not a valid header value"))
            .ok()?;
        let headers = r
            .headers
            .iter()
            .flatten()
            .filter_map(|(k, v)| {
                let f = format!("respond.headers.{k}");
                Some((
                    header_name(&mut e, &f, k)?,
                    template(&mut e, &f, v, &scope)?,
                ))
            })
            .collect();
        Some(Respond {
            status: r.status,
            body: template(&mut e, "respond.body", &r.body, &scope)?,
            content_type,
            headers,
        })
    });
    if redirect.is_some() && respond.is_some() {
        e.add(
            "respond",
            "a rule answers with either `redirect` or `respond`, not both",
        );
    }
    let rewrite = spec.rewrite.as_ref().map(|r| {
        if r.path.is_none() && r.query.is_none() {
            e.add("rewrite", "give `path` and/or `query`");
        }
        if let Some(p) = &r.path {
            if !p.starts_with('/') && !p.starts_with('{') {
                e.add("rewrite.path", format!("`{p}` must start with /"));
            }
        }
        Rewrite {
            path: r
                .path
                .as_ref()
                .and_then(|p| template(&mut e, "rewrite.path", p, &scope)),
            query: r
                .query
                .as_ref()
                .and_then(|q| template(&mut e, "rewrite.query", q, &scope)),
        }
    });
    if let Some(p) = &spec.pool {
        if p.trim().is_empty() {
            e.add("pool", "must name a pool");
        }
    }
    let request_headers = header_ops(&mut e, "request_headers", &spec.request_headers, &scope);
    let response_headers = header_ops(&mut e, "response_headers", &spec.response_headers, &scope);
    if e.out.len() != before {
        return None;
    }
    Some(CompiledRule {
        id: spec.id.as_str().into(),
        priority: spec.priority,
        order: index,
        path,
        case_insensitive: ci,
        host,
        methods,
        scheme,
        query,
        headers,
        not_headers,
        client_ip,
        redirect,
        respond,
        rewrite,
        pool: spec.pool.as_deref().map(Into::into),
        request_headers,
        response_headers,
        stop: spec.stop,
    })
}
