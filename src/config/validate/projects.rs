//! `projects:`: hosts, listeners, certificates, pools and inline rules.

use super::listeners::cert_pair;
use super::Checker;
use crate::config::model::*;
use crate::config::raw::RawProject;
use crate::rules::files;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// zlib's own default: most of the gain, at a fraction of the top level's cost.
const DEFAULT_COMPRESSION_LEVEL: u32 = 6;

pub(super) fn projects(
    ck: &mut Checker,
    raw: Vec<RawProject>,
    listener_names: &Vec<&str>,
    tls_listeners: &HashSet<&str>,
    pool_names: &HashSet<&str>,
) -> Vec<ProjectSettings> {
    if raw.is_empty() {
        ck.error(
            "projects",
            "no project configured: add one with `hosts: [\"*\"]` to serve every host",
        );
    }
    let mut names = HashSet::new();
    // (listener, host) → project, to refuse two projects answering the same name.
    let mut owners: HashMap<(String, String), String> = HashMap::new();
    let mut out = Vec::new();
    for (i, p) in raw.into_iter().enumerate() {
        let key = format!("projects[{i}]");
        if p.name.trim().is_empty() {
            ck.error(format!("{key}.name"), "must not be empty");
        } else if !names.insert(p.name.clone()) {
            ck.error(
                format!("{key}.name"),
                format!(
                    "project `{}` is defined twice: names must be unique",
                    p.name
                ),
            );
        }
        let hosts = hosts(ck, &key, &p.hosts);
        let on: Vec<String> = match &p.listeners {
            None => listener_names.iter().map(|s| s.to_string()).collect(),
            Some(list) => {
                if list.is_empty() {
                    ck.error(
                        format!("{key}.listeners"),
                        "lists no listener, so nothing would reach the project: name its listeners, or leave `listeners` out to serve it on all of them",
                    );
                }
                // Each once, in the order given; a repeat is an error.
                let mut unique: Vec<String> = Vec::with_capacity(list.len());
                for (j, l) in list.iter().enumerate() {
                    if unique.contains(l) {
                        ck.error(
                            format!("{key}.listeners[{j}]"),
                            format!("listener `{l}` is listed twice: keep one"),
                        );
                        continue;
                    }
                    if !listener_names.contains(&l.as_str()) {
                        ck.error(
                            format!("{key}.listeners[{j}]"),
                            format!(
                                "no listener named `{l}` (known: {})",
                                listener_names.join(", ")
                            ),
                        );
                    }
                    unique.push(l.clone());
                }
                unique
            }
        };
        for l in &on {
            for h in &hosts {
                if let Some(other) = owners.insert((l.clone(), h.clone()), p.name.clone()) {
                    ck.error(
                        format!("{key}.hosts"),
                        format!(
                            "host `{h}` on listener `{l}` is already served by project `{other}`"
                        ),
                    );
                }
            }
        }
        let tls = p
            .tls
            .as_ref()
            .and_then(|t| cert_pair(ck, &format!("{key}.tls"), &t.cert, &t.key, &hosts));
        if p.tls.is_some() {
            // Certificates are chosen by SNI among the project's named hosts; the rest get
            // the listener's default certificate.
            if !on.iter().any(|l| tls_listeners.contains(l.as_str())) {
                ck.warn(format!("{key}.tls"), "the project is on no TLS listener: its certificate is never presented (add an HTTPS listener to its `listeners`, or remove `tls`)");
            } else if hosts.iter().all(|h| h == "*") {
                ck.warn(format!("{key}.tls"), "the project serves only `*`, and a certificate is chosen by the names of `hosts`: clients get the listener's default certificate (put this one in `listeners.*.tls`, or name the hosts)");
            }
        }
        if let Some(pool) = &p.pool {
            if !pool_names.contains(pool.as_str()) {
                ck.error(
                    format!("{key}.pool"),
                    format!("no pool named `{pool}` (define it under `pools:`)"),
                );
            }
        }
        // Absolute: `run -d` changes to `/` before the reloads read these paths again.
        let base = std::path::absolute(&ck.file)
            .ok()
            .and_then(|file| file.parent().map(std::path::Path::to_path_buf))
            .unwrap_or_default();
        let rules_files: Vec<String> = p
            .rules_files
            .iter()
            .map(|f| {
                if std::path::Path::new(f).is_absolute() {
                    f.clone()
                } else {
                    base.join(f).display().to_string()
                }
            })
            .collect();
        let error_pages = super::error_pages::error_pages(ck, &key, &p.error_pages, &base);
        let compression = p.compression.as_ref().map(|c| match c.level {
            None => DEFAULT_COMPRESSION_LEVEL,
            Some(level @ 1..=9) => level,
            Some(other) => {
                ck.error(
                    format!("{key}.compression.level"),
                    format!("{other} is not a level: from 1 (fastest) to 9 (smallest)"),
                );
                DEFAULT_COMPRESSION_LEVEL
            }
        });
        let max_body_size = p
            .max_body_size
            .as_ref()
            .and_then(|v| ck.size(&format!("{key}.max_body_size"), v));
        let pool_defined = |pool: &str| pool_names.contains(pool);
        let loaded = match files::compile_project(
            &p.rules,
            &rules_files,
            &pool_defined,
            p.ignore_path_params,
        ) {
            Ok(loaded) => loaded,
            Err(errors) => {
                for e in errors.inline {
                    ck.error(format!("{key}.rules[{}].{}", e.index, e.field), e.message);
                }
                for e in errors.files {
                    if e.line == 0 {
                        // At the list item that names it, when one does.
                        let item = rules_files
                            .iter()
                            .position(|f| std::path::Path::new(f) == e.path)
                            .map_or(String::new(), |j| format!("[{j}]"));
                        ck.error(
                            format!("{key}.rules_files{item}"),
                            format!("{}: {}", e.path.display(), e.message),
                        );
                    } else {
                        ck.error_in(&e.path, e.line, e.column, &e.key, e.message);
                    }
                }
                continue;
            }
        };
        let rules = loaded.set;
        out.push(ProjectSettings {
            name: p.name,
            hosts,
            listeners: on,
            tls,
            pool: p.pool,
            preserve_host: p.preserve_host,
            trust_proxy_headers: p.trust_proxy_headers,
            ignore_path_params: p.ignore_path_params,
            fail_mode: p.fail_mode,
            max_body_size,
            rules: Arc::new(rules),
            inline_rules: Arc::new(p.rules),
            rules_files,
            rules_stamps: loaded.stamps,
            error_pages: Arc::new(error_pages),
            compression,
            rate_limit: p.rate_limit.map(|r| r.requests_per_second.get()),
        });
    }
    out
}

/// Lowercases and checks host patterns: a name, `*.name`, or `*` alone.
fn hosts(ck: &mut Checker, key: &str, raw: &[String]) -> Vec<String> {
    if raw.is_empty() {
        ck.error(
            format!("{key}.hosts"),
            "list at least one host name, or \"*\" for every host",
        );
    }
    let mut out = Vec::new();
    for (j, h) in raw.iter().enumerate() {
        let host = h.trim().to_ascii_lowercase();
        let name = host.strip_prefix("*.").unwrap_or(&host);
        let valid =
            host == "*" || (!name.is_empty() && !name.contains('*') && super::is_dns_name(name));
        if valid && out.contains(&host) {
            ck.error(
                format!("{key}.hosts[{j}]"),
                format!("`{h}` is listed twice (host names are compared without case): keep one"),
            );
        } else if valid {
            out.push(host);
        } else {
            ck.error(format!("{key}.hosts[{j}]"), format!("`{h}` is not a host name: use `example.com`, `*.example.com` or `*` (no port, no scheme)"));
        }
    }
    out
}
