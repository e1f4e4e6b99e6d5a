//! Every key and type error of a YAML value, not just the first that serde stops at: after
//! each error the value is read again without the key found wrong. Used for the sections and
//! entries of the configuration file and for the rules of a YAML rules file.

use serde::de::DeserializeOwned;
use serde_yaml::Value;

/// At most this many errors are listed for one entry or section.
const ERRORS_PER_ENTRY: usize = 16;

/// Deserializes `value` as a `T`, and after each error removes the offending key and tries
/// again, so that an entry's several mistakes are listed together. A "missing field" error
/// for a key removed this way is not reported: its real error already was.
pub(crate) fn errors_of<T: DeserializeOwned>(
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
        let Err(e) = serde_path_to_error::deserialize::<_, T>(&value) else {
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

/// serde_yaml's message for the error at `key`, without what the report already says.
pub(crate) fn describe(key: &str, inner: &serde_yaml::Error) -> String {
    let mut message = inner.to_string();
    // serde_yaml appends the position (and sometimes the path) we already print.
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    // serde_yaml names the parent mapping itself, e.g. `listeners.http: unknown field`.
    if let Some((prefix, rest)) = message.split_once(": ") {
        if key.starts_with(prefix) && !prefix.contains(' ') {
            message = rest.to_string();
        }
    }
    if message.starts_with("unknown field") {
        message.push_str(&unknown_field_hint(&message));
    }
    // Rust's type names mean nothing to whoever writes the file.
    for (rust, plain) in [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        (
            "expected a nonzero u32",
            "expected a whole number from 1 to 4294967295",
        ),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected f64", "expected a number"),
    ] {
        if message.ends_with(rust) {
            message.truncate(message.len() - rust.len());
            message.push_str(plain);
        }
    }
    message
}

/// For ``unknown field `adress`, expected `address` or `tls` ``: the closest expected name.
fn unknown_field_hint(message: &str) -> String {
    let mut names = message.split('`').skip(1).step_by(2);
    let Some(given) = names.next() else {
        return String::new();
    };
    let closest = names
        .map(|n| (strsim::damerau_levenshtein(given, n), n))
        .min()
        .filter(|(distance, n)| *distance <= 2.max(n.len() / 3));
    match closest {
        Some((_, name)) => format!(" (did you mean `{name}`? unknown keys are rejected)"),
        None => " (check the spelling; unknown keys are rejected)".to_string(),
    }
}
