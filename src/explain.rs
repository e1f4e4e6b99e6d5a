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
                .map(crate::proxy::normalize_host)
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
    let view = RequestView {
        method: &req.method.to_ascii_uppercase(),
        scheme: uri.scheme_str().unwrap_or("http"),
        host: &host,
        path: uri.path(),
        query: uri.query(),
        headers: &headers,
        client_ip: req.ip,
        request_id: "rules-test",
    };
    let (plan, trace) = p.rules.evaluate_traced(&view);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "project {} ({} rules), {} {}://{}{}",
        p.name,
        p.rules.len(),
        view.method,
        view.scheme,
        host,
        uri.path_and_query().map_or("/", |q| q.as_str())
    );
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
        failed: false,
        text: out,
        matched: !plan.matched.is_empty(),
    })
}
