//! CSV redirect lists: `source,target[,status]` lines read into redirect rules, each error
//! naming its file and line.

use super::files::FileError;
use super::spec::{MatchSpec, RedirectSpec, RuleSpec};
use std::path::Path;

pub(super) fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// `source,target[,status]` per line; a first line starting with `source` is a header; `#`
/// starts a comment line; fields may be quoted. `source` is a path, or `//host/path`. Each
/// rule goes to `add` with its line, named `NAME:LINE`; the errors are returned, none when the
/// file is valid.
pub(super) fn parse_csv(
    path: &Path,
    name: &str,
    text: &str,
    mut add: impl FnMut(usize, RuleSpec),
) -> Vec<FileError> {
    let mut errors = Vec::new();
    let error = |line: usize, message: String| FileError {
        path: path.to_path_buf(),
        line,
        column: 1,
        key: String::new(),
        message,
    };
    let mut first = true;
    // One record per physical line (a redirect never needs a multi-line field), so that every
    // error names the right line.
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        // Only quotes (and a stray CR, a record end to the CSV reader) need the CSV reader,
        // whose setup costs more than the rest of the line's work.
        let record = if raw.contains(['"', '\r']) {
            // Quotes come in pairs (`""` is a quote inside a field); the CSV reader would read
            // an unclosed one to the end of the line as one field.
            if raw.bytes().filter(|&b| b == b'"').count() % 2 == 1 {
                errors.push(error(
                    line,
                    "a quoted field is not closed: a `\"` is missing".to_string(),
                ));
                continue;
            }
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .trim(csv::Trim::All)
                .from_reader(raw.as_bytes());
            match reader.records().next() {
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    errors.push(error(line, format!("not a CSV line: {e}")));
                    continue;
                }
                None => continue,
            }
        } else {
            raw.split(',').map(str::trim).collect::<csv::StringRecord>()
        };
        let fields: Vec<&str> = record.iter().collect();
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        if std::mem::take(&mut first) && fields[0].eq_ignore_ascii_case("source") {
            continue;
        }
        if !(2..=3).contains(&fields.len()) {
            errors.push(error(
                line,
                format!(
                    "expected `source,target[,status]`, found {} field(s)",
                    fields.len()
                ),
            ));
            continue;
        }
        let status = match fields.get(2).filter(|s| !s.is_empty()) {
            None => 301,
            Some(s) => match s.parse::<u16>() {
                Ok(code) => code,
                Err(_) => {
                    errors.push(error(
                        line,
                        format!("status `{s}` is not a number (301, 302, 303, 307 or 308)"),
                    ));
                    continue;
                }
            },
        };
        let (host, source_path) = match fields[0].strip_prefix("//") {
            Some(rest) => match rest.find('/') {
                Some(i) => (Some(rest[..i].to_string()), rest[i..].to_string()),
                None => (Some(rest.to_string()), "/".to_string()),
            },
            None => (None, fields[0].to_string()),
        };
        let matcher = MatchSpec {
            path: Some(source_path),
            host,
            ..MatchSpec::default()
        };
        let spec = RuleSpec {
            redirect: Some(RedirectSpec {
                to: fields[1].to_string(),
                status,
                keep_query: true,
            }),
            ..RuleSpec::new(format!("{name}:{line}"), matcher)
        };
        add(line, spec);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_rules(path: &Path, text: &str) -> Vec<(usize, RuleSpec)> {
        let mut rules = Vec::new();
        let name = path.file_name().unwrap().to_string_lossy();
        let errors = parse_csv(path, &name, text, |line, spec| rules.push((line, spec)));
        assert!(errors.is_empty(), "{errors:?}");
        rules
    }

    #[test]
    fn csv_with_header_quotes_hosts_and_comments() {
        let text = "source,target,status\n# moved pages\n/a,/b\n\"/c,d\",\"/e?x=1\",302\n//old.test/p,https://new.test/p,308\n\n";
        let rules = csv_rules(Path::new("r.csv"), text);
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].0, 3);
        assert_eq!(rules[0].1.id, "r.csv:3");
        assert_eq!(rules[1].1.matcher.path.as_deref(), Some("/c,d"));
        assert_eq!(rules[1].1.redirect.as_ref().unwrap().status, 302);
        assert_eq!(rules[2].1.matcher.host.as_deref(), Some("old.test"));
        assert_eq!(rules[2].1.matcher.path.as_deref(), Some("/p"));
    }

    #[test]
    fn plain_and_quoted_lines_parse_alike() {
        let text = " /a , /b , 302 \n\"/a\",\" /b \",\"302\"\n";
        let rules = csv_rules(Path::new("x.csv"), text);
        let fields = |i: usize| {
            let r: &RuleSpec = &rules[i].1;
            let redirect = r.redirect.as_ref().unwrap();
            (r.matcher.path.clone(), redirect.to.clone(), redirect.status)
        };
        assert_eq!(fields(0), (Some("/a".into()), "/b".into(), 302));
        assert_eq!(fields(0), fields(1));
    }
}
