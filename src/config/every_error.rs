//! Every key and type error of a YAML value, not just the first that serde stops at: after
//! each error the value is read again without the key found wrong. Used for the sections and
//! entries of the configuration file and for the rules of a YAML rules file.

use serde::de::DeserializeOwned;
use serde_yaml::Value;

/// At most this many errors are listed for one entry or section.
const ERRORS_PER_ENTRY: usize = 16;

/// Deserializes `value` as a `T`, and after each error removes the offending key and tries
/// again, so that an entry's several mistakes are listed together. A "missing field" error
/// for a key removed this way is not reported: its real error already was. Returns the `T`
/// when `value` has no error.
pub(crate) fn errors_of<T: DeserializeOwned>(
    prefix: &str,
    mut value: Value,
    out: &mut Vec<(String, serde_yaml::Error)>,
) -> Option<T> {
    let full_key = |path: &str| match path {
        "." => prefix.to_string(),
        p if prefix.is_empty() => p.to_string(),
        p if p.starts_with('[') => format!("{prefix}{p}"),
        p => format!("{prefix}.{p}"),
    };
    let mut removed: Vec<String> = Vec::new();
    for found in 0.. {
        // Read from text, as the file itself is: from a `Value`, serde_yaml would refuse a
        // plain `123` where a string is expected, which the file's own parse accepts.
        let text = serde_yaml::to_string(&value).unwrap_or_default();
        let read = serde_yaml::Deserializer::from_str(&text);
        let e = match serde_path_to_error::deserialize::<_, T>(read) {
            Ok(whole) if found == 0 => return Some(whole),
            Ok(_) => return None,
            Err(e) => e,
        };
        if found == ERRORS_PER_ENTRY {
            // Said, not silently dropped: the reader would fix these and be surprised.
            out.push((
                full_key("."),
                serde::de::Error::custom(format!(
                    "more errors in this entry than the {ERRORS_PER_ENTRY} listed: fix these and run `rampart check` again"
                )),
            ));
            return None;
        }
        let key = full_key(&e.path().to_string());
        let missing = missing_field(&e.inner().to_string()).map(|field| match key.as_str() {
            "" => field.to_string(),
            k => format!("{k}.{field}"),
        });
        let went = remove_key(&mut value, e.path());
        if !missing.is_some_and(|m| removed.contains(&m)) {
            out.push((key, e.into_inner()));
        }
        removed.push(full_key(&went?));
    }
    None
}

/// `field` of serde's ``missing field `field` ``.
fn missing_field(message: &str) -> Option<&str> {
    // serde_yaml may put the path first (`respond: missing field ...`).
    let (_, field) = message.split_once("missing field `")?;
    field.split('`').next()
}

/// Removes the mapping key closest to the end of `path`: the key in error, or the list that
/// holds the item in error (removing an item would shift the others' positions). Returns
/// the path of the key removed, None when there is none (an error on the whole value).
fn remove_key(value: &mut Value, path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let last_key = segments
        .iter()
        .rposition(|s| matches!(s, Segment::Map { .. }))?;
    let Segment::Map { key } = segments[last_key] else {
        return None;
    };
    let mut at = value;
    let mut removed = String::new();
    for segment in &segments[..last_key] {
        at = match (segment, at) {
            (Segment::Map { key }, Value::Mapping(m)) => {
                removed.push_str(&format!(".{key}"));
                m.get_mut(key.as_str())?
            }
            (Segment::Seq { index }, Value::Sequence(items)) => {
                removed.push_str(&format!("[{index}]"));
                items.get_mut(*index)?
            }
            _ => return None,
        };
    }
    removed.push_str(&format!(".{key}"));
    match at {
        // `shift_remove`: `remove` swaps the last key into the hole, and the next error found
        // would then be the file's last instead of its next.
        Value::Mapping(m) => m
            .shift_remove(key.as_str())
            .map(|_| removed.strip_prefix('.').unwrap_or(&removed).to_string()),
        _ => None,
    }
}

/// When serde_yaml refused `text` for holding more than one document (an error it gives with
/// no position), the line (from 1) of the `---` that begins the second (a `---` after some
/// content, or the second `---` of a text that begins with one) and what to do; `one` says
/// what the file must be, e.g. `the configuration is one document`.
pub(crate) fn second_document(
    text: &str,
    e: &serde_yaml::Error,
    one: &str,
) -> Option<(usize, String)> {
    if !e.to_string().contains("more than one document") {
        return None;
    }
    let message = format!(
        "a second YAML document begins here (`---`): {one}; remove this line, or move what follows into the first"
    );
    let mut content = false;
    for (n, line) in text.lines().enumerate() {
        let marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if marker && content {
            return Some((n + 1, message));
        }
        let trimmed = line.trim();
        content |= marker || !(trimmed.is_empty() || trimmed.starts_with('#'));
    }
    None
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
        // (relative to the value read, which may be one entry of a larger file).
        let names_key =
            key.starts_with(prefix) || key.ends_with(prefix) || key.contains(&format!("{prefix}."));
        if names_key && !prefix.contains(' ') {
            message = rest.to_string();
        }
    }
    if message.starts_with("unknown field `<<`") {
        // serde_yaml reads `<<` as a key like any other.
        return "YAML merge keys (`<<: *anchor`) are not supported: write the keys out, or make the whole value an alias (`key: *anchor`)".to_string();
    }
    if message.starts_with("unknown field") {
        message.push_str(&unknown_field_hint(&message));
    }
    if message.contains("found character that cannot start any token") {
        message.push_str(" (YAML indents with spaces, never tabs)");
    }
    // The whole file, or a rules file, that is not the mapping or list it must be.
    for (rust, plain) in [
        ("expected struct RawConfig", "expected a mapping of sections (`listeners:`, `pools:`, `projects:`, ...)"),
        ("expected struct RuleSpec", "expected a rule, a mapping such as `{ id: old-page, match: { path: /old }, redirect: { to: /new } }`"),
    ] {
        if let Some(i) = message.find(rust) {
            message.replace_range(i..i + rust.len(), plain);
        }
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
