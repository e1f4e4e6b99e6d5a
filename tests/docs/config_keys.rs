//! `docs/configuration.md` documents every key the configuration accepts, and only those; the
//! shipped configurations use only keys the schema knows.
//!
//! The convention checked: a section's heading names its parent path in backticks
//! (`` ## `pools.*` ``, `` ### `pools.*.health_check` ``; the top level is the heading
//! "Top-level keys"), and its keys are the rows of a table whose header starts with `key` and
//! has a `default` column, one key per row: `` | `interval` | `5s` | time between checks | ``.
//! The default cell of a required key says `required`; where the schema knows a key's serde
//! default, the cell shows it in backticks.

use crate::markdown::{first_code, is_separator, lines, read_doc, Line};
use crate::schema::{join, KeyInfo, Schema};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The heading of the section holding the top-level keys.
const TOP_LEVEL: &str = "Top-level keys";

struct DocKey {
    path: String,
    default: String,
    line: usize,
}

/// The keys `md` documents, and the places where it breaks the convention.
fn documented(md: &str) -> (Vec<DocKey>, Vec<String>) {
    let (mut keys, mut problems) = (Vec::new(), Vec::new());
    let mut section: Option<String> = None;
    // Inside a table: is it a key table, and where is its default column.
    let mut table: Option<(bool, usize)> = None;
    for (n, line) in lines(md) {
        match line {
            Line::Heading(text) => {
                section = if text == TOP_LEVEL {
                    Some(String::new())
                } else if text.starts_with('`') {
                    first_code(text).map(str::to_string)
                } else {
                    None
                };
                table = None;
            }
            Line::Text => table = None,
            Line::Row(cells) => match table {
                None => {
                    let is_keys = cells[0] == "key";
                    let default = cells.iter().position(|c| *c == "default");
                    if is_keys && section.is_none() {
                        problems.push(format!("configuration.md:{n}: a key table outside a section whose heading names its parent path in backticks"));
                    }
                    if is_keys && default.is_none() {
                        problems.push(format!(
                            "configuration.md:{n}: a key table needs a `default` column"
                        ));
                    }
                    table = Some((is_keys, default.unwrap_or(0)));
                }
                Some(_) if is_separator(&cells) => {}
                Some((false, _)) => {}
                Some((true, default)) => {
                    let name = cells[0]
                        .strip_prefix('`')
                        .and_then(|c| c.strip_suffix('`'))
                        .filter(|k| {
                            !k.is_empty()
                                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        });
                    match (name, &section) {
                        (Some(name), Some(parent)) => keys.push(DocKey {
                            path: join(parent, name),
                            default: cells.get(default).unwrap_or(&"").to_string(),
                            line: n,
                        }),
                        _ => problems.push(format!(
                            "configuration.md:{n}: write one key per row, as `key`, in a key section (found `{}`)",
                            cells[0]
                        )),
                    }
                }
            },
        }
    }
    (keys, problems)
}

/// A scalar default as the docs write it, e.g. `5s`, `true`, `301`, `""`.
fn rendered(default: &serde_json::Value) -> Option<String> {
    match default {
        serde_json::Value::String(s) if s.is_empty() => Some("\"\"".into()),
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parent_and_name(path: &str) -> (&str, &str) {
    path.rsplit_once('.').unwrap_or(("", path))
}

/// What is wrong between the schema's keys and the documented ones.
fn mismatches(schema: &BTreeMap<String, KeyInfo>, md: &str) -> Vec<String> {
    let (doc, mut problems) = documented(md);
    let mut by_path: BTreeMap<&str, &DocKey> = BTreeMap::new();
    for d in &doc {
        if let Some(first) = by_path.insert(&d.path, d) {
            problems.push(format!(
                "configuration.md:{}: `{}` is documented twice (also line {})",
                d.line, d.path, first.line
            ));
        }
    }
    for (path, info) in schema {
        let (parent, name) = parent_and_name(path);
        let Some(d) = by_path.get(path.as_str()) else {
            let section = if parent.is_empty() {
                TOP_LEVEL.to_string()
            } else {
                format!("`{parent}`")
            };
            problems.push(format!(
                "`{path}` is not documented: add a row | `{name}` | default | meaning | to the section {section}"
            ));
            continue;
        };
        let says_required = d.default == "required";
        if info.required != says_required {
            problems.push(format!(
                "configuration.md:{}: `{path}` is {}required, so its default cell must {}say `required` (it says `{}`)",
                d.line,
                if info.required { "" } else { "not " },
                if info.required { "" } else { "not " },
                d.default
            ));
        }
        if let Some(value) = info.default.as_ref().and_then(rendered) {
            if !d.default.contains(&format!("`{value}`")) {
                problems.push(format!(
                    "configuration.md:{}: `{path}` defaults to `{value}`, its default cell says `{}`",
                    d.line, d.default
                ));
            }
        }
    }
    for d in &doc {
        if !schema.contains_key(&d.path) {
            problems.push(format!(
                "configuration.md:{}: `{}` is documented, but the configuration has no such key",
                d.line, d.path
            ));
        }
    }
    problems
}

#[test]
fn configuration_md_documents_every_key_and_only_real_ones() {
    let schema = Schema::config().keys();
    let problems = mismatches(&schema, &read_doc("configuration.md"));
    assert!(
        problems.is_empty(),
        "docs/configuration.md does not match the configuration's keys ({} problems):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn the_schema_walk_finds_nested_keys_and_unknown_ones() {
    let keys = Schema::config().keys();
    for path in [
        "instance_name",
        "server.grace_period_seconds",
        "listeners.*.tls.min_version",
        "pools.*.backends.*.weight",
        "pools.*.tls.sni",
        "pools.*.timeouts.idle",
        "pools.*.health_check.interval",
        "projects.*.tls.cert",
        "projects.*.rules.*.match.path_prefix",
        "projects.*.rules.*.redirect.keep_query",
        "projects.*.rules.*.response_headers.remove",
    ] {
        assert!(keys.contains_key(path), "{path} not found in {keys:?}");
    }
    assert!(keys["pools.*.backends"].required);
    assert!(!keys["pools.*.selection"].required);
    // Free maps (header names, query parameters) have no keys of their own.
    assert!(!keys.keys().any(|k| k.contains("match.headers.")));

    // A mismatch names the key and where to document it.
    let md = "## Top-level keys\n| key | default | meaning |\n|---|---|---|\n| `instance_name` | — | x |\n| `bogus` | — | x |\n";
    let problems = mismatches(&keys, md);
    assert!(problems.iter().any(|p| p.contains("`bogus` is documented")));
    assert!(problems.iter().any(|p| p.starts_with(
        "`pools.*.health_check.interval` is not documented: add a row | `interval` | default | meaning | to the section `pools.*.health_check`"
    )));
    assert!(!problems
        .iter()
        .any(|p| p.contains("`instance_name` is not")));

    let yaml: serde_yaml::Value = serde_yaml::from_str(
        "pools:\n  a:\n    backends: [10.0.0.1:80, { address: 10.0.0.2:80, wieght: 2 }]\n    tls: { sni: x }\nprojects:\n  - name: p\n    hosts: ['*']\n    rules:\n      - { id: r, match: { headers: { X-Any: '*' }, pathh: /x } }\nserver: { threads: 2, thread: 1 }\n",
    )
    .unwrap();
    assert_eq!(
        Schema::config().unknown_keys(&yaml),
        [
            "pools.*.backends.*.wieght",
            "projects.*.rules.*.match.pathh",
            "server.thread"
        ]
    );
}

#[test]
fn rules_files_take_the_rules_of_the_configuration() {
    let in_files: BTreeSet<String> = Schema::rules_file()
        .keys()
        .into_keys()
        .map(|k| format!("projects.*.rules.{k}"))
        .collect();
    let inline: BTreeSet<String> = Schema::config()
        .keys()
        .into_keys()
        .filter(|k| k.starts_with("projects.*.rules.*."))
        .collect();
    assert!(!inline.is_empty());
    assert_eq!(in_files, inline);
}

#[test]
fn shipped_configurations_use_only_known_keys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = |dir: &str, ext: &str| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        v.sort();
        v
    };
    let mut configs = vec![
        root.join("conf/rampart.yaml"),
        root.join("packaging/rampart.yaml"),
    ];
    configs.extend(files("conf/examples", "yaml"));
    let rules = files("conf/examples/rules", "yaml");
    assert!(configs.len() >= 3 && !rules.is_empty());
    let mut problems = Vec::new();
    for (schema, paths) in [(Schema::config(), configs), (Schema::rules_file(), rules)] {
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            let value: serde_yaml::Value =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for key in schema.unknown_keys(&value) {
                problems.push(format!("{}: unknown key {key}", path.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn rampart_schema_prints_the_schemas_these_checks_use() {
    for (args, want) in [
        (&[][..], rampart::config::config_schema()),
        (&["rules"][..], rampart::config::rules_file_schema()),
    ] {
        let out = std::process::Command::new(crate::common::rampart_bin())
            .arg("schema")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed, want, "rampart schema {args:?}");
        assert_eq!(
            printed["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "editors need the draft"
        );
    }
}
