//! `rampart rules test`: evaluates a project's rules for one described request and explains
//! the result (matching rules in evaluation order, which rule won each conflict and why, then
//! the outcome), so rule authors can check their rules in CI.

use crate::config::Config;
use crate::rules::{HeaderOp, Outcome, RequestView};
use http::HeaderMap;
use std::fmt::Write;
use std::net::IpAddr;

/// The request to test, as given on the command line.
pub struct TestRequest {
    pub url: String,
    pub method: String,
    pub headers: Vec<String>,
    pub ip: Option<IpAddr>,
}

/// The explanation, and whether any rule matched.
pub struct Explanation {
    pub text: String,
    pub matched: bool,
    /// A rule failed to render: the request would go unmodified (or get 503).
    pub failed: bool,
    /// Said on stderr: the request as described cannot reach the project.
    pub warning: Option<String>,
}

fn ops(out: &mut String, title: &str, ops: &[HeaderOp]) {
    for op in ops {
        let _ = match op {
            HeaderOp::Set(n, v) => {
                writeln!(out, "  {title} set    {n}: {}", v.to_str().unwrap_or("?"))
            }
            HeaderOp::Add(n, v) => {
                writeln!(out, "  {title} add    {n}: {}", v.to_str().unwrap_or("?"))
            }
            HeaderOp::Remove(n) => writeln!(out, "  {title} remove {n}"),
        };
    }
}

/// Whether one of a project's host patterns (exact, `*.suffix`, `*`) takes `host`.
fn serves(patterns: &[String], host: &str) -> bool {
    let mut router = crate::proxy::HostRouter::default();
    for p in patterns {
        router.add(p, 0);
    }
    router.route(host).is_some()
}

/// The answer Rampart (or Pingora before it) gives this request before any rule sees it:
/// the same checks of the request head as the proxy's.
fn refused(method: &str, uri: &http::Uri, headers: &HeaderMap, host: &str) -> Option<String> {
    if method == "CONNECT" {
        return Some("405 Method Not Allowed (Pingora does not proxy CONNECT)".to_string());
    }
    let target = uri.path_and_query().map_or("/", |q| q.as_str());
    let mut head = pingora_http::RequestHeader::build(method, target.as_bytes(), None).ok()?;
    for (name, value) in headers {
        head.append_header(name.clone(), value.clone()).ok()?;
    }
    if !headers.contains_key(http::header::HOST) {
        // A path alone, for a project of `*`, names no host: any valid one stands in.
        let host = if host.is_empty() { "localhost" } else { host };
        head.insert_header(http::header::HOST, host).ok()?;
    }
    let refusal = crate::proxy::request_head::requested_host(&head).err()?;
    let status = http::StatusCode::from_u16(refusal.status).ok()?;
    Some(format!("{status} ({})", refusal.reason))
}

pub fn explain(config: &Config, project: &str, req: &TestRequest) -> Result<Explanation, String> {
    let p = config
        .projects
        .iter()
        .find(|p| p.name == project)
        .ok_or_else(|| {
            let names: Vec<&str> = config.projects.iter().map(|p| p.name.as_str()).collect();
            format!("no project named `{project}` (known: {})", names.join(", "))
        })?;
    let uri: http::Uri = req
        .url
        .parse()
        .map_err(|e| format!("`{}` is not a URL: {e}", req.url))?;
    if !matches!(uri.scheme_str(), None | Some("http" | "https")) {
        return Err(format!("`{}`: Rampart serves http and https URLs", req.url));
    }
    if req.method.is_empty() || http::Method::from_bytes(req.method.as_bytes()).is_err() {
        return Err(format!(
            "`{}` is not an HTTP method (e.g. GET, POST)",
            req.method
        ));
    }
    let mut headers = HeaderMap::new();
    for h in &req.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("`{h}` is not a header (write 'Name: value')"))?;
        let name = http::HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| format!("`{k}` is not a header name"))?;
        let value = http::HeaderValue::from_str(v.trim())
            .map_err(|_| format!("`{v}` is not a header value"))?;
        headers.append(name, value);
    }
    let host = uri
        .host()
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(crate::proxy::host_name)
                .map(String::from)
        })
        .or_else(|| p.hosts.iter().find(|h| !h.contains('*')).cloned())
        .unwrap_or_default();
    if !serves(&p.hosts, &host.to_ascii_lowercase()) {
        return Err(format!(
            "project `{}` does not serve host `{host}` (its hosts: {}): the request would go elsewhere",
            p.name,
            p.hosts.join(", ")
        ));
    }
    // The scheme says which listeners the request came in on: the project must be on one.
    let served_over = |tls: bool| {
        p.listeners.iter().any(|name| {
            config
                .listeners
                .iter()
                .any(|l| &l.name == name && l.tls.is_some() == tls)
        })
    };
    let scheme = match uri.scheme_str() {
        Some(s) => s,
        None if served_over(false) => "http",
        None => "https",
    };
    let warning = (!served_over(scheme == "https")).then(|| {
        format!(
            "project `{}` is on no {} listener (its listeners: {}): an {scheme} request never reaches it",
            p.name,
            if scheme == "https" { "TLS" } else { "plain HTTP" },
            p.listeners.join(", ")
        )
    });
    let method = req.method.to_ascii_uppercase();
    let request_line = format!(
        "project {} ({} rules), {method} {scheme}://{host}{}",
        p.name,
        p.rules.len(),
        uri.path_and_query().map_or("/", |q| q.as_str())
    );
    if let Some(refusal) = refused(&method, &uri, &headers, &host) {
        return Ok(Explanation {
            warning,
            text: format!("{request_line}\nno rule evaluated: Rampart refuses the request first\noutcome: {refusal}\n"),
            matched: false,
            failed: false,
        });
    }
    let view = RequestView {
        method: &method,
        scheme,
        host: &host,
        path: uri.path(),
        query: uri.query(),
        headers: &headers,
        client_ip: req.ip,
        request_id: "rules-test",
    };
    let (plan, trace) = p.rules.evaluate_traced(&view);
    let mut out = String::new();
    let _ = writeln!(out, "{request_line}");
    if let Some(f) = &plan.failure {
        let _ = writeln!(out, "rule `{}` FAILED: {}", f.rule_id, f.reason);
        let _ = writeln!(
            out,
            "outcome: {} (fail_mode: {})",
            if p.fail_mode == crate::config::FailMode::Closed {
                "503"
            } else {
                "forwarded unmodified"
            },
            p.fail_mode
        );
        return Ok(Explanation {
            warning,
            text: out,
            matched: true,
            failed: true,
        });
    }
    if plan.matched.is_empty() {
        let _ = writeln!(out, "no rule matched");
    } else {
        let _ = writeln!(
            out,
            "matching rules, in evaluation order (earlier ones win conflicts):"
        );
        for (i, id) in plan.matched.iter().enumerate() {
            let _ = writeln!(out, "  {}. {id}", i + 1);
        }
        for r in trace.rules.iter().filter(|r| !r.applied) {
            let _ = writeln!(out, "  -  {} (also matches, not applied)", r.id);
        }
    }
    if !trace.conflicts.is_empty() {
        let _ = writeln!(out, "conflicts:");
        for c in &trace.conflicts {
            let _ = writeln!(out, "  {c}");
        }
    }
    match &plan.outcome {
        Outcome::Redirect { status, location } => {
            let _ = writeln!(
                out,
                "outcome: redirect {status}, Location: {}",
                location.to_str().unwrap_or("?")
            );
        }
        Outcome::Respond {
            status,
            body,
            content_type,
            ..
        } => {
            let _ = writeln!(
                out,
                "outcome: respond {status} ({}), {} byte body",
                content_type.to_str().unwrap_or("?"),
                body.len()
            );
        }
        Outcome::Forward => {
            let pool = plan
                .pool
                .as_deref()
                .map(str::to_string)
                .or_else(|| p.pool.clone())
                .unwrap_or_else(|| "(none: 503)".into());
            let path = plan
                .rewrite
                .clone()
                .unwrap_or_else(|| uri.path_and_query().map_or("/".into(), |q| q.to_string()));
            let _ = writeln!(
                out,
                "outcome: forward to pool {pool}: {} {path}",
                view.method
            );
            ops(&mut out, "request ", &plan.request_headers);
        }
    }
    ops(&mut out, "response", &plan.response_headers);
    Ok(Explanation {
        warning,
        failed: false,
        text: out,
        matched: !plan.matched.is_empty(),
    })
}
