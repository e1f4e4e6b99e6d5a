//! `${VAR}` and `${VAR:-default}` interpolation, applied to the file text before parsing.
//!
//! A value is pasted so that it stays the one scalar the file wrote: inside double or single
//! quotes it is escaped for them; as a whole unquoted value it is pasted as it is when it
//! reads as a number or a boolean, and in double quotes otherwise (so `null`, `~`, `a #b` or
//! `a: b` in the environment stay text, and cannot empty a token or change the document);
//! inside a longer unquoted value it must be plain text, or the file must quote that value.
//! `${VAR:-default}` takes the default when VAR is unset or empty, as the shell does.
//! `$${` stands for a literal `${`. Comments are left alone.

/// A placeholder that cannot be replaced, with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What surrounds a placeholder in the YAML text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Double,
    Single,
    /// A plain scalar; `whole` when the placeholder is all of it.
    Plain {
        whole: bool,
        at_start: bool,
    },
    /// A line of a `|` or `>` block scalar.
    Block,
}

/// Replaces variables using `lookup`; collects every placeholder that cannot be replaced.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<EnvError>> {
    let mut scan = Scanner {
        out: String::with_capacity(text.len()),
        errors: Vec::new(),
        quote: None,
        flow: 0,
        block_indent: None,
        lookup: &lookup,
    };
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        scan.line(line_no + 1, line);
    }
    match scan.errors.is_empty() {
        true => Ok(scan.out),
        false => Err(scan.errors),
    }
}

struct Scanner<'a> {
    out: String,
    errors: Vec<EnvError>,
    /// The quote a scalar opened on an earlier line is still in (`"` or `'`).
    quote: Option<u8>,
    /// Depth of `[`/`{` flow collections.
    flow: usize,
    /// Indentation of the line that opened a block scalar still going on.
    block_indent: Option<usize>,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Scanner<'_> {
    fn line(&mut self, line_no: usize, line: &str) {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(opener) = self.block_indent {
            if line.trim().is_empty() || indent > opener {
                self.block_line(line_no, line);
                return;
            }
            self.block_indent = None;
        }
        if self.quote.is_none() && line.trim_start().starts_with('#') {
            self.out.push_str(line);
            return;
        }
        let b = line.as_bytes();
        let (mut i, mut copied) = (0, 0);
        let mut scalar_start = true;
        let mut code_end = b.len();
        while i < b.len() {
            let c = b[i];
            match self.quote {
                Some(b'"') if c == b'\\' => i += 1,
                Some(q) if c == q => {
                    if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                        i += 1;
                    } else {
                        self.quote = None;
                        scalar_start = false;
                    }
                }
                Some(q) if c == b'$' => {
                    let ctx = if q == b'"' {
                        Context::Double
                    } else {
                        Context::Single
                    };
                    i = self.replace_at(line_no, line, &mut copied, i, ctx);
                    continue;
                }
                Some(_) => {}
                None => match c {
                    b'#' if i == 0 || b[i - 1].is_ascii_whitespace() => {
                        code_end = i;
                        break;
                    }
                    b'"' | b'\'' if scalar_start => self.quote = Some(c),
                    b'$' => {
                        let ctx = Context::Plain {
                            whole: scalar_start && self.rest_is_blank(line, i),
                            at_start: scalar_start,
                        };
                        i = self.replace_at(line_no, line, &mut copied, i, ctx);
                        scalar_start = false;
                        continue;
                    }
                    b'[' | b'{' => {
                        self.flow += 1;
                        scalar_start = true;
                    }
                    b']' | b'}' => {
                        self.flow = self.flow.saturating_sub(1);
                        scalar_start = false;
                    }
                    b',' if self.flow > 0 => scalar_start = true,
                    b':' | b'-' | b'?' if followed_by_space(b, i) => {
                        scalar_start = c == b':' || scalar_start;
                    }
                    c if c.is_ascii_whitespace() => {}
                    _ => scalar_start = false,
                },
            }
            i += 1;
        }
        let i = i.min(b.len());
        self.flush(line, &mut copied, i);
        self.out.push_str(&line[copied..]);
        if self.quote.is_none() && opens_block_scalar(&line[..code_end]) {
            self.block_indent = Some(indent);
        }
    }

    fn flush(&mut self, line: &str, copied: &mut usize, upto: usize) {
        self.out.push_str(&line[*copied..upto]);
        *copied = upto;
    }

    /// Copies the text before the `$` at `at`, then its replacement; returns (and records in
    /// `copied`) the index after what the placeholder consumed.
    fn replace_at(
        &mut self,
        line_no: usize,
        line: &str,
        copied: &mut usize,
        at: usize,
        ctx: Context,
    ) -> usize {
        self.flush(line, copied, at);
        *copied = self.placeholder(line_no, line, at, ctx);
        *copied
    }

    /// True when nothing but blanks follows the placeholder at `i` up to the end of its
    /// plain scalar (end of line, a comment, or the end of a flow item).
    fn rest_is_blank(&self, line: &str, i: usize) -> bool {
        let Some(end) = line[i..].find('}') else {
            return false;
        };
        let rest = &line[i + end + 1..];
        let stop = rest
            .find(|c: char| c == '#' || (self.flow > 0 && matches!(c, ',' | ']' | '}')))
            .unwrap_or(rest.len());
        rest[..stop].trim().is_empty()
    }

    /// A line of a block scalar: every placeholder is replaced, quotes and `#` are text.
    fn block_line(&mut self, line_no: usize, line: &str) {
        let mut copied = 0;
        while let Some(d) = line[copied..].find('$') {
            let at = copied + d;
            self.replace_at(line_no, line, &mut copied, at, Context::Block);
        }
        self.out.push_str(&line[copied..]);
    }

    /// Writes the replacement of the `$` at `at`; returns the index after what it consumed.
    fn placeholder(&mut self, line_no: usize, line: &str, at: usize, ctx: Context) -> usize {
        let tail = &line[at..];
        if tail.starts_with("$${") {
            self.out.push_str("${");
            return at + 3;
        }
        if !tail.starts_with("${") {
            self.out.push('$');
            return at + 1;
        }
        let fail = |message: String| EnvError {
            line: line_no,
            column: at + 1,
            message,
        };
        let Some(end) = tail.find('}') else {
            self.errors.push(fail(
                "unclosed `${`: write ${NAME} or ${NAME:-default} (or $${ for a literal ${)"
                    .to_string(),
            ));
            self.out.push_str(tail);
            return line.len();
        };
        let body = &tail[2..end];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid_name && default.is_some_and(|d| d.contains("${")) {
            // The first `}` closed the inner variable: the text quoted would be cut short.
            self.errors.push(fail(format!(
                "the default of `${{{name}:-...}}` holds another variable, which is not supported: write a plain default, ${{{name}:-value}}"
            )));
            let rest = &tail[end + 1..];
            return at + end + 1 + rest.find('}').map_or(0, |i| i + 1);
        }
        if !valid_name {
            self.errors.push(fail(format!(
                "`${{{body}}}` is not supported: write ${{NAME}} or ${{NAME:-default}} (a plain default)"
            )));
            return at + end + 1;
        }
        let value = match (self.lookup)(name) {
            Some(v) if !(v.is_empty() && default.is_some()) => v,
            _ => match default {
                Some(d) => d.to_string(),
                None => {
                    self.errors.push(fail(format!(
                        "environment variable `{name}` is not set (set it, or give a default: ${{{name}:-value}})"
                    )));
                    return at + end + 1;
                }
            },
        };
        if let Err(why) = paste(&mut self.out, &value, ctx) {
            self.errors
                .push(fail(format!("the value of `{name}` {why}")));
        }
        at + end + 1
    }
}

fn followed_by_space(b: &[u8], i: usize) -> bool {
    b.get(i + 1).is_none_or(u8::is_ascii_whitespace)
}

/// A line (comment removed) ending with a block scalar header: `key: |`, `- >-`, `|2`.
fn opens_block_scalar(code: &str) -> bool {
    let code = code.trim_end();
    let token_start = code.rfind([' ', '\t']).map_or(0, |i| i + 1);
    let token = &code[token_start..];
    let before = code[..token_start].trim_end();
    token.starts_with(['|', '>'])
        && token[1..]
            .chars()
            .all(|c| matches!(c, '+' | '-' | '1'..='9'))
        && token.len() <= 3
        && (before.is_empty() || before.ends_with(':') || before.ends_with('-'))
}

/// A number or a boolean: pasted as it is where the file left the value unquoted.
fn is_number_or_bool(v: &str) -> bool {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let number = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.bytes().all(|b| b.is_ascii_digit());
    number || v == "true" || v == "false"
}

/// Text that reads the same inside a longer plain scalar.
fn is_plain_text(v: &str, at_start: bool) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._/@%+=~,:-".contains(&b))
        && !v.ends_with(':')
        && !(at_start && v.starts_with(['-', ':', ',', '%', '@']))
}

fn paste(out: &mut String, v: &str, ctx: Context) -> Result<(), &'static str> {
    let has_control = v.chars().any(char::is_control);
    match ctx {
        Context::Double => push_double_quoted_body(out, v),
        Context::Single if has_control => {
            return Err("holds a line break or control character: use double quotes around it")
        }
        Context::Single => out.push_str(&v.replace('\'', "''")),
        Context::Block if v.contains(['\n', '\r']) => {
            return Err("holds a line break, which would end the block text")
        }
        Context::Block => out.push_str(v),
        Context::Plain { whole: true, .. } if v.is_empty() || is_number_or_bool(v) => {
            out.push_str(v)
        }
        Context::Plain { whole: true, .. } => {
            out.push('"');
            push_double_quoted_body(out, v);
            out.push('"');
        }
        Context::Plain { at_start, .. } if is_plain_text(v, at_start) => out.push_str(v),
        Context::Plain { .. } => {
            return Err(
                "cannot be pasted into this unquoted value (it holds spaces or YAML signs): put the whole value in double quotes, e.g. key: \"https://${HOST}/x\"",
            )
        }
    }
    Ok(())
}

fn push_double_quoted_body(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        let v = match name {
            "HOST" => "edge-1",
            "N" => "4",
            "EMPTY" => "",
            "NULL" => "null",
            "HASH" => "s3cr3t #x",
            "MAP" => "a: b",
            "ALIAS" => "*abc",
            "QUOTE" => "it's \"x\"\\",
            "LINES" => "a\nb",
            _ => return None,
        };
        Some(v.to_string())
    }

    fn ok(text: &str) -> String {
        interpolate(text, env).unwrap()
    }

    fn err(text: &str) -> Vec<(usize, usize, String)> {
        interpolate(text, env)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.line, e.column, e.message))
            .collect()
    }

    #[test]
    fn replaces_set_default_and_escaped() {
        let out = ok("a: ${HOST}\nb: ${NOPE:-x}\nc: $${HOST} $5\nd: ${N}\n");
        assert_eq!(out, "a: \"edge-1\"\nb: \"x\"\nc: ${HOST} $5\nd: 4\n");
    }

    #[test]
    fn defaults_apply_to_unset_and_empty_like_the_shell() {
        assert_eq!(ok("t: ${NOPE:-}"), "t: ");
        assert_eq!(ok("t: ${EMPTY:-d}"), "t: \"d\"");
        assert_eq!(ok("t: ${EMPTY}"), "t: ");
    }

    #[test]
    fn values_stay_one_scalar_wherever_they_land() {
        // Unquoted whole values become strings, never null, a comment or a mapping.
        assert_eq!(ok("token: ${NULL}"), "token: \"null\"");
        assert_eq!(ok("token: ${HASH} # c"), "token: \"s3cr3t #x\" # c");
        assert_eq!(ok("token: ${MAP}"), "token: \"a: b\"");
        assert_eq!(ok("token: ${ALIAS}"), "token: \"*abc\"");
        assert_eq!(ok("- ${LINES}"), "- \"a\\nb\"");
        assert_eq!(ok("l: [${HOST}, ${N}]"), "l: [\"edge-1\", 4]");
        // Inside quotes: escaped for them.
        assert_eq!(ok("t: \"<${QUOTE}>\""), "t: \"<it's \\\"x\\\"\\\\>\"");
        assert_eq!(ok("t: '<${QUOTE}>'"), "t: '<it''s \"x\"\\>'");
        // Inside a longer plain value: plain text only.
        assert_eq!(ok("cert: ${HOST}/tls/a.crt"), "cert: edge-1/tls/a.crt");
        assert_eq!(
            err("url: http://${HASH}/x")[0].2,
            "the value of `HASH` cannot be pasted into this unquoted value (it holds spaces or YAML signs): put the whole value in double quotes, e.g. key: \"https://${HOST}/x\""
        );
        // Every result parses to the value given.
        for (name, value) in [
            ("NULL", "null"),
            ("HASH", "s3cr3t #x"),
            ("QUOTE", "it's \"x\"\\"),
        ] {
            for text in [format!("t: ${{{name}}}"), format!("t: \"${{{name}}}\"")] {
                let v: serde_yaml::Value = serde_yaml::from_str(&ok(&text)).unwrap();
                assert_eq!(v["t"].as_str(), Some(value), "{text}");
            }
        }
    }

    #[test]
    fn block_scalars_and_comments() {
        assert_eq!(
            ok("body: |\n  # ${HOST}\n  it's ${HASH}\nk: ${N} # ${NOPE}\n"),
            "body: |\n  # edge-1\n  it's s3cr3t #x\nk: 4 # ${NOPE}\n"
        );
        assert_eq!(ok("# ${NOPE}\n"), "# ${NOPE}\n");
        assert_eq!(err("body: |\n  ${LINES}\n")[0].0, 2);
    }

    #[test]
    fn errors_name_the_variable_and_position() {
        assert_eq!(
            err("a: 1\nb: x${MISSING}\n# ${IN_COMMENT}\n"),
            [(
                2,
                5,
                "environment variable `MISSING` is not set (set it, or give a default: ${MISSING:-value})".to_string()
            )]
        );
        assert!(err("t: ${A:-${B}}")[0]
            .2
            .starts_with("the default of `${A:-...}` holds another variable"));
        for bad in ["t: ${X:?m}", "t: ${}", "t: ${X-d}"] {
            assert!(err(bad)[0].2.contains("is not supported"), "{bad}");
        }
        assert!(err("t: ${NOPE")[0].2.contains("unclosed"));
    }
}
