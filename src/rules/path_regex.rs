//! Path regexes are checked when rules load and compiled on first use.
//!
//! A compiled `Regex` costs ~20 µs and ~9 KB, so a map of 100 000 regex redirects took 2 s
//! and 850 MiB to load, while a request only ever runs the few its path's index narrows it
//! to. Loading therefore does what `Regex::new` does to find errors (parse, and build the
//! automaton under the same 10 MiB size limit) and keeps only the source; the matcher is
//! compiled once, when a request first needs it.

use crate::rules::regex_index::{anchored_prefix, required_literal};
use regex::{Captures, Regex};
use regex_automata::nfa::thompson;
use regex_syntax::hir::{Hir, HirKind};
use std::sync::OnceLock;

/// `Regex::new`'s limit on the size of a compiled automaton.
const SIZE_LIMIT: usize = 10 * (1 << 20);

pub struct PathRegex {
    source: Box<str>,
    /// The literal text (lower-cased) every match starts with, indexed like a `path_prefix`.
    prefix: Option<Box<[u8]>>,
    /// Without such a prefix: literal text (lower-cased) every match contains.
    required: Option<Box<[u8]>>,
    compiled: OnceLock<Option<Regex>>,
}

/// A checked regex and the names of its capture groups (group 0, the whole match, first).
pub struct Checked {
    pub regex: PathRegex,
    pub group_names: Vec<Option<String>>,
    /// Every match holds a `;`: under `ignore_path_params` (paths matched without their
    /// `;` parameters) the regex can never match.
    pub needs_semicolon: bool,
}

/// Whether every string `hir` matches contains `byte` (an ASCII byte).
fn always_contains(hir: &Hir, byte: u8) -> bool {
    match hir.kind() {
        HirKind::Literal(lit) => lit.0.contains(&byte),
        // A one-element class (`[;]`) is that literal.
        HirKind::Class(class) => class.literal().is_some_and(|l| l.contains(&byte)),
        HirKind::Capture(c) => always_contains(&c.sub, byte),
        HirKind::Repetition(r) => r.min > 0 && always_contains(&r.sub, byte),
        HirKind::Concat(parts) => parts.iter().any(|h| always_contains(h, byte)),
        HirKind::Alternation(parts) => parts.iter().all(|h| always_contains(h, byte)),
        HirKind::Empty | HirKind::Look(_) => false,
    }
}

impl PathRegex {
    /// Finds every error `Regex::new(source)` would report (syntax errors on one line).
    pub fn check(source: &str) -> Result<Checked, String> {
        let hir = regex_syntax::Parser::new()
            .parse(source)
            .map_err(|e| super::compile::syntax_message(source, &e))?;
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .nfa_size_limit(Some(SIZE_LIMIT))
                    .shrink(false),
            )
            .build_from_hir(&hir)
            .map_err(|e| match e.size_limit() {
                Some(limit) => regex::Error::CompiledTooBig(limit).to_string(),
                None => e.to_string(),
            })?;
        let group_names = nfa
            .group_info()
            .pattern_names(regex_automata::PatternID::ZERO)
            .map(|n| n.map(str::to_string))
            .collect();
        let prefix = anchored_prefix(&hir).map(Vec::into_boxed_slice);
        let required = match prefix {
            Some(_) => None,
            None => required_literal(&hir).map(Vec::into_boxed_slice),
        };
        Ok(Checked {
            needs_semicolon: always_contains(&hir, b';'),
            regex: PathRegex {
                source: source.into(),
                prefix,
                required,
                compiled: OnceLock::new(),
            },
            group_names,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The literal text every match starts with, when the regex is anchored at the start.
    pub fn anchored_prefix(&self) -> Option<&[u8]> {
        self.prefix.as_deref()
    }

    /// Literal text every match contains, when there is no anchored prefix.
    pub fn required_literal(&self) -> Option<&[u8]> {
        self.required.as_deref()
    }

    /// The compiled matcher, built by the first caller. `check` accepted the source, so the
    /// build cannot fail short of a regex crate bug; then the rule never matches, and says so.
    fn regex(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| match Regex::new(&self.source) {
                Ok(re) => Some(re),
                Err(e) => {
                    log::error!(
                        "path_regex `{}` passed the load check but does not compile ({e}); the rule will never match",
                        self.source
                    );
                    None
                }
            })
            .as_ref()
    }

    pub fn is_match(&self, path: &str) -> bool {
        self.regex().is_some_and(|re| re.is_match(path))
    }

    pub fn captures<'p>(&self, path: &'p str) -> Option<Captures<'p>> {
        self.regex()?.captures(path)
    }
}

impl std::fmt::Debug for PathRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The load check accepts and rejects exactly what `Regex::new` does, with its message.
    #[test]
    fn the_check_agrees_with_regex_new() {
        for src in [
            r"^/p/([0-9]+)$",
            r"(?i)^/(?P<slug>[a-z-]+)/(\d+)?",
            r"^/p/([0-9+$",
            r"(?<!x)y",
            r"\w{1000}{1000}",
            r"[z-a]",
            r"",
        ] {
            let ours = PathRegex::check(src).map(|c| c.group_names);
            let reference = Regex::new(src).map(|re| {
                re.capture_names()
                    .map(|n| n.map(str::to_string))
                    .collect::<Vec<_>>()
            });
            match (ours, reference) {
                (Ok(ours), Ok(reference)) => assert_eq!(ours, reference, "{src}"),
                (Err(ours), Err(regex::Error::Syntax(_))) => {
                    assert!(ours.contains(&format!("of `{src}`")), "{src}: {ours}")
                }
                (Err(ours), Err(reference)) => assert_eq!(ours, reference.to_string(), "{src}"),
                (ours, reference) => panic!("{src}: {ours:?} but Regex::new gives {reference:?}"),
            }
        }
    }

    /// A syntax error says what and where on one line: `check` prints one line per error.
    #[test]
    fn syntax_errors_name_the_place() {
        let message = PathRegex::check("^/(a").err().expect("an error");
        assert_eq!(message, "unclosed group: `(` at character 3 of `^/(a`");
        let message = PathRegex::check("^/é[z-a]").err().expect("an error");
        assert!(
            message.ends_with("`z-a` at character 5 of `^/é[z-a]`"),
            "{message}"
        );
    }

    #[test]
    fn a_regex_that_needs_a_semicolon_is_told_apart() {
        for (src, needs) in [
            (r"^/a;jsessionid=[0-9A-F]+$", true),
            (r"^/(a|b);x", true),
            (r"^/a[;]v=(\d+)", true),
            (r"(?i)^/A(;X)+$", true),
            (r"^/a(;x)?$", false),
            (r"^/a(;x|/y)$", false),
            (r"^/a[^;]*$", false),
            (r"^/a.*$", false),
            (r"^/a[;,]x$", false),
        ] {
            let checked = PathRegex::check(src).unwrap();
            assert_eq!(checked.needs_semicolon, needs, "{src}");
        }
    }

    #[test]
    fn compiled_on_first_use() {
        let c = PathRegex::check(r"^/a/(\d+)$").unwrap();
        assert!(c.regex.compiled.get().is_none(), "nothing compiled at load");
        assert!(c.regex.is_match("/a/12"));
        assert_eq!(&c.regex.captures("/a/34").unwrap()[1], "34");
        assert!(!c.regex.is_match("/a/x"));
        assert_eq!(c.regex.anchored_prefix(), Some(&b"/a/"[..]));
        assert_eq!(c.regex.required_literal(), None, "the prefix tree has it");
        let c = PathRegex::check(r"/Old-(\d+)\.html$").unwrap();
        assert_eq!(c.regex.anchored_prefix(), None);
        assert_eq!(
            c.regex.required_literal(),
            Some(&b"/old-"[..]),
            "the first of the longest"
        );
    }
}
