//! serde stops at the first error in a file. When the file does not deserialize, each
//! top-level section, and each entry of `listeners`, `pools` and `projects`, is deserialized
//! again on its own, and again without each key found wrong, so that one `rampart check`
//! lists every such error, not one per run.

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

/// At most this many errors are listed for one entry or section.
const ERRORS_PER_ENTRY: usize = 16;

/// Deserializes `value` as a `T`, and after each error removes the offending key and tries
/// again, so that an entry's several mistakes are listed together. A "missing field" error
/// for a key removed this way is not reported: its real error already was.
fn check<T: DeserializeOwned>(
    prefix: &str,
    mut value: Value,
    out: &mut Vec<(String, serde_yaml::Error)>,
) {
    let full_key = |path: &str| match path {
        "." => prefix.to_string(),
        p if prefix.is_empty() => p.to_string(),
        p if p.starts_with('[') => format!("{prefix}{p}"),
        p => format!("{prefix}.{p}"),
    };
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..ERRORS_PER_ENTRY {
        let Err(e) = serde_path_to_error::deserialize::<_, T>(value.clone()) else {
            return;
        };
        let key = full_key(&e.path().to_string());
        let missing = missing_field(&e.inner().to_string()).map(|field| match key.as_str() {
            "" => field.to_string(),
            k => format!("{k}.{field}"),
        });
        let went = remove_key(&mut value, e.path());
        if !missing.is_some_and(|m| removed.contains(&m)) {
            out.push((key.clone(), e.into_inner()));
        }
        if !went {
            return;
        }
        removed.push(key);
    }
}

/// `field` of serde's ``missing field `field` ``.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Removes the mapping key at the end of `path`; false when the path does not end with one
/// (an error on a list item or the whole value: removing it would shift or lose the rest).
fn remove_key(value: &mut Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((Segment::Map { key }, parents)) = segments.split_last() else {
        return false;
    };
    let mut at = value;
    for segment in parents {
        at = match (segment, at) {
            (Segment::Map { key }, Value::Mapping(m)) => match m.get_mut(key.as_str()) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Seq { index }, Value::Sequence(items)) => match items.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match at {
        Value::Mapping(m) => m.remove(key.as_str()).is_some(),
        _ => false,
    }
}
