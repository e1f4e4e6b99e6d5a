//! `docs/metrics.md` documents every metric family the real binary exports, with its type and
//! labels, and nothing else; every `rampart_*` name anywhere in `docs/` (PromQL examples,
//! troubleshooting) is one the binary exports.
//!
//! The convention checked: a table whose header starts with `metric` and has `type` and
//! `labels` columns; one row per family: `` | `rampart_rules_loaded` | gauge | `project` | ... | ``
//! (labels in backticks, comma-separated; `—` for none).

use crate::common::*;
use crate::markdown::{all_docs, is_separator, lines, read_doc, Line};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug, PartialEq, Eq)]
struct Family {
    kind: String,
    labels: BTreeSet<String>,
}

/// Families documented in `md`: name → type and labels.
fn documented(md: &str) -> BTreeMap<String, Family> {
    let mut out = BTreeMap::new();
    // Inside a metric table: the columns of the type and the labels.
    let mut table: Option<Option<(usize, usize)>> = None;
    for (n, line) in lines(md) {
        let Line::Row(cells) = line else {
            table = None;
            continue;
        };
        match table {
            None => {
                let col = |name: &str| cells.iter().position(|c| *c == name);
                table = Some(match (cells[0], col("type"), col("labels")) {
                    ("metric", Some(t), Some(l)) => Some((t, l)),
                    _ => None,
                });
            }
            Some(_) if is_separator(&cells) => {}
            Some(None) => {}
            Some(Some((t, l))) => {
                let name = cells[0].trim_matches('`').to_string();
                let labels = cells[l]
                    .split(',')
                    .map(|s| s.trim().trim_matches('`').to_string())
                    .filter(|s| !s.is_empty() && s != "—")
                    .collect();
                let family = Family {
                    kind: cells[t].to_string(),
                    labels,
                };
                assert!(
                    out.insert(name.clone(), family).is_none(),
                    "metrics.md:{n}: {name} is documented twice"
                );
            }
        }
    }
    out
}

/// Families in Prometheus text: name → type (from `# TYPE`) and the label names of its samples.
fn exported(text: &str) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            out.insert(
                name.to_string(),
                Family {
                    kind: kind.to_string(),
                    labels: BTreeSet::new(),
                },
            );
        } else if !line.starts_with('#') && !line.is_empty() {
            let name_end = line.find(['{', ' ']).unwrap();
            let name = &line[..name_end];
            let base = ["_bucket", "_sum", "_count", ""]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find(|base| out.contains_key(*base))
                .unwrap_or_else(|| panic!("sample without # TYPE: {line}"));
            let family = out.get_mut(base).unwrap();
            if let Some(labels) = line[name_end..].strip_prefix('{') {
                let labels = &labels[..labels.rfind('}').unwrap()];
                for pair in labels.split("\",") {
                    let key = pair.split('=').next().unwrap().trim_start_matches(',');
                    if key != "le" && !key.is_empty() {
                        family.labels.insert(key.to_string());
                    }
                }
            }
        }
    }
    out
}

/// The `/metrics` text of a real Rampart after traffic that touches every family: a rule hit,
/// an unknown host, a health-checked pool, a rules file, a TLS listener.
fn scrape() -> String {
    let up = Upstream::start("app");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        "- { id: from-file, match: { path: /old }, redirect: { to: /new } }\n",
    )
    .unwrap();
    let cert = self_signed(&["site.test"]);
    let (http, https, admin) = (free_addr(), free_addr(), free_addr());
    let r = Rampart::start_in(
        dir,
        &format!(
            r#"server: {{ grace_period_seconds: 1, graceful_shutdown_timeout_seconds: 1 }}
admin: {{ listen: "{admin}" }}
access_log: {{ target: off }}
listeners:
  http: {{ address: "{http}" }}
  https: {{ address: "{https}", tls: {{ cert: "{cert}", key: "{key}" }} }}
pools:
  app: {{ backends: ["{up}"], health_check: {{ path: /, interval: 1s }} }}
  named: {{ backends: ["localhost:{port}"] }}
projects:
  - name: site
    hosts: [site.test]
    pool: app
    rules_files: [rules.yaml]
    rules:
      - {{ id: tag, match: {{ path_prefix: /hit }}, request_headers: {{ set: {{ X-Tag: a }} }} }}
"#,
            up = up.addr_string(),
            port = up.addr().port(),
            cert = cert.cert(),
            key = cert.key(),
        ),
    );
    assert_eq!(
        get(&format!("http://{http}/hit"), "site.test").status(),
        200
    );
    assert_eq!(get(&format!("http://{http}/"), "other.test").status(), 421);
    poll_until(
        Duration::from_secs(10),
        "the rule hit to be counted",
        || {
            let text = r.metrics();
            text.contains("rampart_rule_hits_total{project=\"site\",rule=\"tag\"} 1")
                .then_some(text)
        },
    )
}

#[test]
fn metrics_md_documents_every_exported_metric_and_only_those() {
    let text = scrape();
    let exported: BTreeMap<String, Family> = exported(&text)
        .into_iter()
        .filter(|(name, _)| name.starts_with("rampart_") || name.starts_with("process_"))
        .collect();
    assert!(
        exported.contains_key("rampart_requests_total")
            && exported.contains_key("process_cpu_seconds_total"),
        "{text}"
    );
    let documented = documented(&read_doc("metrics.md"));
    let mut problems = Vec::new();
    for (name, family) in &exported {
        match documented.get(name) {
            None => problems.push(format!(
                "{name} ({}, labels {:?}) is exported but not documented",
                family.kind, family.labels
            )),
            Some(d) if d != family => problems.push(format!(
                "{name}: documented as {d:?}, exported as {family:?}"
            )),
            Some(_) => {}
        }
    }
    for name in documented.keys() {
        if !exported.contains_key(name) {
            problems.push(format!("{name} is documented but not exported"));
        }
    }
    // Every metric name the docs mention anywhere (PromQL, troubleshooting) exists.
    for (doc, md) in all_docs() {
        for (i, _) in md.match_indices("rampart_") {
            let name: String = md[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let known = ["", "_bucket", "_sum", "_count"].iter().any(|s| {
                name.strip_suffix(s)
                    .is_some_and(|base| exported.contains_key(base))
            });
            // `rampart_0.1.0-1_amd64.deb` is a file name, not a metric.
            let is_metric = name[8..].starts_with(|c: char| c.is_ascii_lowercase());
            if is_metric && !known {
                problems.push(format!("docs/{doc} mentions {name}, which is not exported"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/metrics.md does not match /metrics:\n  {}\n\n/metrics:\n{text}",
        problems.join("\n  ")
    );
}
