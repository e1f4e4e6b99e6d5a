//! One rule spec → one compiled rule: the `match` part (`compile_match`) and the actions
//! (`compile_actions`). Every problem is reported (not just the first), with the key path
//! inside the rule and how to fix it.

use crate::rules::actions::{Actions, ValueTemplate};
use crate::rules::compile_actions::actions;
use crate::rules::compile_match::conditions;
use crate::rules::matcher::Conditions;
use crate::rules::normalize::PathMatching;
use crate::rules::path_regex::{Checked, PathRegex};
use crate::rules::spec::RuleSpec;
use crate::rules::template::{Scope, Template};
use crate::rules::RuleError;
use http::{HeaderName, HeaderValue};
use regex::Regex;
use std::sync::Arc;

#[derive(Debug)]
pub struct CompiledRule {
    pub id: Arc<str>,
    /// Position in the input: the tie-breaker between equal priorities.
    pub index: usize,
    pub priority: i32,
    pub cond: Conditions,
    pub actions: Actions,
}

/// Collects the errors of one rule.
pub struct Errors<'a> {
    index: usize,
    out: &'a mut Vec<RuleError>,
}

impl Errors<'_> {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.out.push(RuleError {
            index: self.index,
            field: field.into(),
            message: message.into(),
            other: None,
        });
    }

    pub fn header_name(&mut self, field: &str, name: &str) -> Option<HeaderName> {
        let hint = "header names are letters, digits and !#$%&'*+-.^_`|~, e.g. X-Frame-Options";
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| {
                self.add(
                    field,
                    format!("`{name}` is not a valid header name: {hint}"),
                )
            })
            .ok()
    }

    pub fn template(&mut self, field: &str, src: &str, scope: &Scope<'_>) -> Option<Template> {
        Template::parse(src, scope)
            .map_err(|m| self.add(field, m))
            .ok()
    }

    pub fn regex(&mut self, field: &str, src: &str) -> Option<Regex> {
        Regex::new(src)
            .map_err(|e| {
                // Re-parsed for the position: regex's message draws it over several lines.
                let why = match regex_syntax::Parser::new().parse(src) {
                    Err(syntax) if matches!(e, regex::Error::Syntax(_)) => {
                        syntax_message(src, &syntax)
                    }
                    _ => e.to_string(),
                };
                self.add(field, invalid_regex(why))
            })
            .ok()
    }

    /// A path regex is checked now and compiled on first use (see `path_regex`).
    pub fn path_regex(&mut self, field: &str, src: &str) -> Option<Checked> {
        PathRegex::check(src)
            .map_err(|e| self.add(field, invalid_regex(e)))
            .ok()
    }

    pub fn value_template(
        &mut self,
        field: &str,
        src: &str,
        scope: &Scope<'_>,
    ) -> Option<ValueTemplate> {
        let template = self.template(field, src, scope)?;
        let fixed = match template.literal() {
            Some(text) => Some(
                HeaderValue::from_str(text)
                    .map_err(|_| {
                        self.add(
                            field,
                            "not a valid header value: remove control characters and line breaks",
                        )
                    })
                    .ok()?,
            ),
            None => None,
        };
        Some(ValueTemplate { template, fixed })
    }
}

pub fn compile_rule(
    index: usize,
    spec: &RuleSpec,
    paths: PathMatching,
    out: &mut Vec<RuleError>,
) -> Option<CompiledRule> {
    let before = out.len();
    let mut e = Errors { index, out };
    if spec.id.trim().is_empty() {
        e.add("id", "every rule needs a non-empty `id` (it is shown in logs, metrics and `rampart rules test`)");
    }
    let (cond, groups) = conditions(&mut e, &spec.matcher, paths);
    let scope = Scope {
        has_rest: spec.matcher.path_prefix.is_some(),
        groups: &groups,
    };
    let actions = actions(&mut e, spec, &scope);
    if e.out.len() != before {
        return None;
    }
    let mut cond = cond;
    cond.needs_captures = actions.uses_groups();
    Some(CompiledRule {
        id: spec.id.as_str().into(),
        index,
        priority: spec.priority,
        cond,
        actions,
    })
}

/// A regex syntax error on one line: what is wrong and where, as `rampart check` prints one
/// line per error (the regex crate's message points at the place with a caret on the line
/// below the pattern).
pub(super) fn syntax_message(source: &str, e: &regex_syntax::Error) -> String {
    let (kind, span) = match e {
        regex_syntax::Error::Parse(e) => (e.kind().to_string(), *e.span()),
        regex_syntax::Error::Translate(e) => (e.kind().to_string(), *e.span()),
        other => return other.to_string(),
    };
    let at = source
        .get(..span.start.offset)
        .map_or(0, |s| s.chars().count())
        + 1;
    let part = source.get(span.start.offset..span.end.offset).unwrap_or("");
    format!("{kind}: `{part}` at character {at} of `{source}`")
}

fn invalid_regex(e: impl std::fmt::Display) -> String {
    format!("invalid regular expression (Rust regex syntax, no look-around): {e}")
}

#[cfg(test)]
pub mod test_support {
    use crate::rules::testutil::errors;

    /// Checks that a one-rule set fails with one error on `field` saying `message`.
    pub fn check(yaml: &str, field: &str, message: &str) {
        let mut all = errors(yaml);
        assert_eq!(all.len(), 1, "{all:?}");
        let e = all.remove(0);
        assert_eq!(e.field, field, "{e:?}");
        assert!(e.message.contains(message), "{e:?} should say `{message}`");
        assert_eq!(e.to_string(), format!("{}: {}", e.field, e.message));
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::check;
    use crate::rules::testutil::{errors, rules};

    #[test]
    fn template_variables() {
        check(
            "[{id: a, redirect: {to: '/{nope}'}}]",
            "redirect.to",
            "unknown template variable `{nope}`",
        );
        check(
            "[{id: a, match: {path: /a}, rewrite: {path: '/b{rest}'}}]",
            "rewrite.path",
            "only known for `path_prefix` rules",
        );
        check(
            "[{id: a, match: {path_regex: '^/(a)(b)$'}, redirect: {to: '/{3}'}}]",
            "redirect.to",
            "fewer groups",
        );
        check(
            "[{id: a, match: {path_regex: '^/(a)$'}, redirect: {to: '/{id}'}}]",
            "redirect.to",
            "{1}..{1}",
        );
        check(
            "[{id: a, respond: {status: 200, body: 'x}'}}]",
            "respond.body",
            "`}}`",
        );
        check(
            "[{id: a, request_headers: {set: {X-A: '{1}'}}}]",
            "request_headers.set.X-A",
            "need a `path_regex`",
        );
        check(
            "[{id: a, respond: {status: 200, headers: {X-A: '{path'}}}]",
            "respond.headers.X-A",
            "unclosed",
        );
        rules("[{id: a, match: {path_regex: '^/(?P<id>[0-9]+)$'}, redirect: {to: '/p/{id}/{1}?x'}, response_headers: {set: {X-A: '{{x}}'}}}]");
    }

    #[test]
    fn ids_and_error_collection() {
        check("[{id: ''}]", "id", "non-empty `id`");
        let all = errors("[{id: a}, {id: b}, {id: a}, {id: b, redirect: {to: /x, status: 1}}]");
        let got: Vec<(usize, &str)> = all.iter().map(|e| (e.index, e.field.as_str())).collect();
        assert_eq!(got, [(2, "id"), (3, "id"), (3, "redirect.status")]);
        assert!(
            all[0].message.contains("rule 0") && all[0].message.contains("rule 2"),
            "{:?}",
            all[0]
        );
        let many = errors("[{id: a, match: {path: x, methods: []}, pool: ' ', respond: {status: 1, body: '{x}'}}]");
        assert_eq!(many.len(), 5, "{many:?}");
        let unknown =
            serde_yaml::from_str::<Vec<crate::rules::RuleSpec>>("[{id: a, match: {pathh: /x}}]");
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("unknown field `pathh`"));
    }
}
