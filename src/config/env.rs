//! `${VAR}` and `${VAR:-default}` interpolation, applied to the file text before parsing.
//! `$${` stands for a literal `${`. Whole-line comments are left alone so that documentation
//! in the file may mention variables that are not set.

/// A variable that is not set and has no default, with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetVariable {
    pub name: String,
    pub line: usize,
    pub column: usize,
}

/// Replaces variables using `lookup`; collects every unset variable.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<UnsetVariable>> {
    let mut out = String::with_capacity(text.len());
    let mut unset = Vec::new();
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find('$') {
            out.push_str(&rest[..start]);
            let tail = &rest[start..];
            if let Some(after) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
                continue;
            }
            let Some(body_end) = tail.starts_with("${").then(|| tail.find('}')).flatten() else {
                out.push('$');
                rest = &tail[1..];
                continue;
            };
            let body = &tail[2..body_end];
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            match lookup(name).or_else(|| default.map(str::to_string)) {
                Some(value) => out.push_str(&value),
                None => unset.push(UnsetVariable {
                    name: name.to_string(),
                    line: line_no + 1,
                    column: line.len() - rest.len() + start + 1,
                }),
            }
            rest = &tail[body_end + 1..];
        }
        out.push_str(rest);
    }
    if unset.is_empty() {
        Ok(out)
    } else {
        Err(unset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "edge-1".to_string())
    }

    #[test]
    fn replaces_set_default_and_escaped() {
        let out = interpolate("a: ${HOST}\nb: ${NOPE:-x}\nc: $${HOST} $5\n", env).unwrap();
        assert_eq!(out, "a: edge-1\nb: x\nc: ${HOST} $5\n");
    }

    #[test]
    fn empty_default_is_allowed() {
        assert_eq!(interpolate("t: ${NOPE:-}", env).unwrap(), "t: ");
    }

    #[test]
    fn unset_variable_is_reported_with_position() {
        let err = interpolate("a: 1\nb: x${MISSING}\n# ${IN_COMMENT}\n", env).unwrap_err();
        assert_eq!(
            err,
            vec![UnsetVariable {
                name: "MISSING".into(),
                line: 2,
                column: 5
            }]
        );
    }
}
