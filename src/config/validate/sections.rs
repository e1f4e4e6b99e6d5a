//! serde stops at the first error in a file. When the file does not deserialize, each
//! top-level section, and each entry of `listeners`, `pools` and `projects`, is deserialized
//! again on its own, so that one `rampart check` lists every such error, not one per run.

use crate::config::raw::{RawConfig, RawListener, RawPool, RawProject};
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;

/// The deserialization errors of every part of `document`, each with its full key path.
pub(super) fn section_errors(document: Value) -> Vec<(String, serde_yaml::Error)> {
    let mut out = Vec::new();
    let Value::Mapping(top) = document else {
        return out;
    };
    for (key, value) in top {
        match key.as_str().unwrap_or_default() {
            "listeners" => each_entry::<RawListener>("listeners", value, &mut out),
            "pools" => each_entry::<RawPool>("pools", value, &mut out),
            "projects" => match value {
                Value::Sequence(items) => {
                    for (i, item) in items.into_iter().enumerate() {
                        check::<RawProject>(&format!("projects[{i}]"), item, &mut out);
                    }
                }
                other => check::<Vec<RawProject>>("projects", other, &mut out),
            },
            // Any other key, known or not, read alone as a whole file: its own errors (and
            // an unknown key's, with the expected names) under its full path.
            _ => check::<RawConfig>(
                "",
                Value::Mapping(Mapping::from_iter([(key, value)])),
                &mut out,
            ),
        }
    }
    out
}

fn each_entry<T: DeserializeOwned>(
    name: &str,
    value: Value,
    out: &mut Vec<(String, serde_yaml::Error)>,
) {
    match value {
        Value::Mapping(entries) => {
            for (key, entry) in entries {
                let key = key
                    .as_str()
                    .map_or_else(|| format!("{key:?}"), str::to_string);
                check::<T>(&format!("{name}.{key}"), entry, out);
            }
        }
        other => check::<BTreeMap<String, T>>(name, other, out),
    }
}

fn check<T: DeserializeOwned>(
    prefix: &str,
    value: Value,
    out: &mut Vec<(String, serde_yaml::Error)>,
) {
    if let Err(e) = serde_path_to_error::deserialize::<_, T>(value) {
        let path = e.path().to_string();
        let key = match path.as_str() {
            "." => prefix.to_string(),
            p if prefix.is_empty() => p.to_string(),
            p if p.starts_with('[') => format!("{prefix}{p}"),
            p => format!("{prefix}.{p}"),
        };
        out.push((key, e.into_inner()));
    }
}
