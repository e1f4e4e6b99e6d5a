//! serde stops at the first error in a file. When the file does not deserialize, each
//! top-level section, and each entry of `listeners`, `pools` and `projects`, is deserialized
//! again on its own, so that one `rampart check` lists every such error, not one per run.

use crate::config::raw::{RawAccessLog, RawAdmin, RawConfig, RawListener, RawPool, RawProject};
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
        let name = key.as_str().unwrap_or_default().to_string();
        match name.as_str() {
            "instance_name" => check::<Option<String>>(&name, value, &mut out),
            "server" => check::<Mapping>(&name, value, &mut out),
            "admin" => check::<RawAdmin>(&name, value, &mut out),
            "access_log" => check::<RawAccessLog>(&name, value, &mut out),
            "listeners" => each_entry::<RawListener>(&name, value, &mut out),
            "pools" => each_entry::<RawPool>(&name, value, &mut out),
            "projects" => match value {
                Value::Sequence(items) => {
                    for (i, item) in items.into_iter().enumerate() {
                        check::<RawProject>(&format!("projects[{i}]"), item, &mut out);
                    }
                }
                other => check::<Vec<RawProject>>(&name, other, &mut out),
            },
            // An unknown key: the whole-file type says so, with the expected names.
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
