//! serde stops at the first error in a file. When the file does not deserialize, each
//! top-level section, and each entry of `listeners`, `pools` and `projects`, is deserialized
//! again on its own, and again without each key found wrong, so that one `rampart check`
//! lists every such error, not one per run.

use crate::config::every_error::errors_of;
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
            "server" => match value {
                Value::Mapping(server) => out.extend(super::server_errors(server).2),
                other => read_alone(key, other, &mut out),
            },
            "listeners" => each_entry::<RawListener>("listeners", value, &mut out),
            "pools" => each_entry::<RawPool>("pools", value, &mut out),
            "projects" => match value {
                Value::Sequence(items) => {
                    for (i, item) in items.into_iter().enumerate() {
                        errors_of::<RawProject>(&format!("projects[{i}]"), item, &mut out);
                    }
                }
                other => {
                    errors_of::<Vec<RawProject>>("projects", other, &mut out);
                }
            },
            // Any other key, known or not.
            _ => read_alone(key, value, &mut out),
        }
    }
    out
}

/// The errors of the top-level `key` read alone as a whole file: its own (and an unknown
/// key's, with the expected names) under its full path.
fn read_alone(key: Value, value: Value, out: &mut Vec<(String, serde_yaml::Error)>) {
    errors_of::<RawConfig>("", Value::Mapping(Mapping::from_iter([(key, value)])), out);
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
                errors_of::<T>(&format!("{name}.{key}"), entry, out);
            }
        }
        other => {
            errors_of::<BTreeMap<String, T>>(name, other, out);
        }
    }
}
