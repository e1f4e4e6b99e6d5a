//! Keeping path regexes out of the per-request scan. A regex anchored at the start with
//! literal text (`^/products/(\d+)$`) can only match paths starting with that text, so the
//! text is indexed like a `path_prefix` (hashed or in the tree). Another regex usually
//! requires some literal text somewhere ([`required_literal`]), which `literal_index` scans
//! paths for. The rest are searched together, a [`RegexSet`] per group of [`GROUP_SIZE`], in
//! one pass per group. In every case the rule's own regex then confirms (and captures).

use regex::RegexSet;
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// Regexes per set: large enough that a set replaces many searches (a search of a set of 256
/// costs about a tenth of 256 searches), small enough that a set's automaton stays small.
pub const GROUP_SIZE: usize = 256;

/// Prefixes shorter than this (in practice just `/`) would not narrow anything down.
const MIN_PREFIX: usize = 2;

/// The literal text (ASCII-lower-cased) every match of `hir` starts the haystack with, when
/// it begins with `^` (or `\A`) followed by literal text.
pub fn anchored_prefix(hir: &Hir) -> Option<Vec<u8>> {
    let HirKind::Concat(parts) = hir.kind() else {
        return None;
    };
    let (first, rest) = parts.split_first()?;
    if *first.kind() != HirKind::Look(Look::Start) {
        return None;
    }
    let mut prefix = Vec::new();
    for part in rest {
        if !literal_text(part, &mut prefix) {
            break;
        }
    }
    (prefix.len() >= MIN_PREFIX).then_some(prefix)
}

/// Literals shorter than this occur in too many paths to narrow anything down (`/`, `.`).
pub const MIN_LITERAL: usize = 3;

/// The longest literal text (ASCII-lower-cased) that every match of `hir` contains, for a
/// regex that is not anchored: `/u12-[a-z]+$` contains `/u12-` wherever it matches.
pub fn required_literal(hir: &Hir) -> Option<Vec<u8>> {
    let mut best = Vec::new();
    longest_required(hir, &mut best);
    (best.len() >= MIN_LITERAL).then_some(best)
}

/// Replaces `best` with any longer run of text every match of `hir` contains.
fn longest_required(hir: &Hir, best: &mut Vec<u8>) {
    match hir.kind() {
        HirKind::Concat(parts) => {
            // Consecutive literal parts form one run; any other part ends it, and may hold
            // a required run of its own.
            let mut run = Vec::new();
            for part in parts {
                if !literal_text(part, &mut run) {
                    keep_longer(&mut run, best);
                    longest_required(part, best);
                }
            }
            keep_longer(&mut run, best);
        }
        HirKind::Capture(c) => longest_required(&c.sub, best),
        // Repeated at least once: what the repeated part requires, the whole does.
        HirKind::Repetition(r) if r.min >= 1 => longest_required(&r.sub, best),
        HirKind::Literal(_) | HirKind::Class(_) => {
            let mut run = Vec::new();
            literal_text(hir, &mut run);
            keep_longer(&mut run, best);
        }
        // An alternation requires nothing common to its branches (not looked for).
        _ => {}
    }
}

/// Moves `run` into `best` when longer; leaves `run` empty.
fn keep_longer(run: &mut Vec<u8>, best: &mut Vec<u8>) {
    if run.len() > best.len() {
        *best = std::mem::take(run);
    }
    run.clear();
}

/// Appends the text `hir` must match, as far as it is literal; true when all of it was.
fn literal_text(hir: &Hir, out: &mut Vec<u8>) -> bool {
    match hir.kind() {
        HirKind::Empty => true,
        HirKind::Literal(lit) => {
            out.extend(lit.0.iter().map(u8::to_ascii_lowercase));
            true
        }
        HirKind::Class(class) => match class_byte(class) {
            Some(b) => {
                out.push(b);
                true
            }
            None => false,
        },
        HirKind::Capture(c) => literal_text(&c.sub, out),
        HirKind::Concat(parts) => parts.iter().all(|p| literal_text(p, out)),
        HirKind::Look(_) | HirKind::Repetition(_) | HirKind::Alternation(_) => false,
    }
}

/// The byte of a class that is one ASCII letter in both cases (what `(?i)` makes of a
/// letter). Anything wider (`k` also matches the Kelvin sign) ends the prefix.
fn class_byte(class: &Class) -> Option<u8> {
    let Class::Unicode(c) = class else {
        return None;
    };
    let ranges = c.ranges();
    let [a, b] = ranges else { return None };
    let single = |r: &regex_syntax::hir::ClassUnicodeRange| {
        (r.start() == r.end() && r.start().is_ascii()).then_some(r.start() as u8)
    };
    let (a, b) = (single(a)?, single(b)?);
    (a != b && a.eq_ignore_ascii_case(&b)).then_some(a.to_ascii_lowercase())
}

#[derive(Debug)]
struct RegexGroup {
    set: RegexSet,
    /// Rule position of each pattern of the set.
    positions: Box<[u32]>,
}

/// Regexes searched together.
#[derive(Debug, Default)]
pub struct RegexGroups {
    groups: Vec<RegexGroup>,
}

impl RegexGroups {
    /// Groups the regexes (positions ascending); a regex that cannot join a set (too large
    /// for one) is returned to be checked on its own.
    pub fn build(regexes: &[(&str, u32)]) -> (RegexGroups, Vec<u32>) {
        let mut groups = Vec::new();
        let mut alone = Vec::new();
        let mut work: Vec<&[(&str, u32)]> = regexes.chunks(GROUP_SIZE).rev().collect();
        while let Some(chunk) = work.pop() {
            match RegexSet::new(chunk.iter().map(|(re, _)| re)) {
                Ok(set) => groups.push(RegexGroup {
                    set,
                    positions: chunk.iter().map(|(_, pos)| *pos).collect(),
                }),
                // Over the size limit: halve, down to single regexes.
                Err(_) if chunk.len() > 1 => {
                    let (a, b) = chunk.split_at(chunk.len() / 2);
                    work.push(b);
                    work.push(a);
                }
                Err(_) => alone.push(chunk[0].1),
            }
        }
        (RegexGroups { groups }, alone)
    }

    /// Appends the positions of the rules whose regex matches `path` (unordered across
    /// groups). Allocates only when a regex matches.
    pub fn matching(&self, path: &str, hits: &mut Vec<u32>) {
        for g in &self.groups {
            if g.set.is_match(path) {
                hits.extend(g.set.matches(path).iter().map(|i| g.positions[i]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(src: &str) -> Option<String> {
        let hir = regex_syntax::Parser::new().parse(src).unwrap();
        anchored_prefix(&hir).map(|p| String::from_utf8(p).unwrap())
    }

    #[test]
    fn literal_prefixes_of_anchored_regexes() {
        assert_eq!(prefix(r"^/p/(\d+)$").as_deref(), Some("/p/"));
        assert_eq!(prefix(r"\A/Docs/x").as_deref(), Some("/docs/x"));
        assert_eq!(
            prefix(r"(?i)^/DoCs/").as_deref(),
            Some("/doc"),
            "s is also the long s"
        );
        assert_eq!(prefix(r"^(/shop)/(?P<id>x)y|").as_deref(), None);
        assert_eq!(prefix(r"^(/shop)/(?P<id>x)y").as_deref(), Some("/shop/xy"));
        assert_eq!(prefix(r"^/caf\u{e9}/").as_deref(), Some("/caf\u{e9}/"));
        assert_eq!(prefix(r"^/a+").as_deref(), None, "too short to help");
        assert_eq!(prefix(r"^/ab?").as_deref(), Some("/a"));
        assert_eq!(
            prefix(r"(?i)^/desk").as_deref(),
            Some("/de"),
            "s: long s, k: Kelvin sign"
        );
        for none in [
            r"/p/\d+",
            r"(?m)^/p/",
            r"^(/a|/b)",
            r"^[/a]x",
            r"^\b/xy",
            r"^",
        ] {
            assert_eq!(prefix(none), None, "{none}");
        }
    }

    fn required(src: &str) -> Option<String> {
        let hir = regex_syntax::Parser::new().parse(src).unwrap();
        required_literal(&hir).map(|p| String::from_utf8(p).unwrap())
    }

    #[test]
    fn literals_every_match_contains() {
        for (src, literal) in [
            (r"/u12-[a-z]+$", "/u12-"),
            (r"\.php$", ".php"),
            (r"[0-9]+/Old-Page/(\d+)", "/old-page/"),
            (r"(?i)/DOCS(/|$)", "/doc"),
            (r"x*(abc)+y", "abc"),
            (r"(/shop)/(?P<id>[0-9]+)/cart", "/shop/"),
        ] {
            assert_eq!(required(src).as_deref(), Some(literal), "{src}");
        }
        for none in [
            r"/a",
            r"/a(/b/c/d)?/e",
            r"(/wp-admin|/wp-login)",
            r"(abcd)?x",
            r"(abcd)*",
            r"[a-z]+",
            r"",
        ] {
            assert_eq!(required(none), None, "{none}");
        }
    }

    #[test]
    fn groups_report_every_matching_regex() {
        let sources: Vec<String> = (0..2 * GROUP_SIZE + 22).map(|i| format!("/{i}$")).collect();
        let input: Vec<(&str, u32)> = sources
            .iter()
            .map(String::as_str)
            .enumerate()
            .map(|(i, r)| (r, i as u32 * 2))
            .collect();
        let (groups, alone) = RegexGroups::build(&input);
        assert_eq!((groups.groups.len(), alone.len()), (3, 0));
        let mut hits = Vec::new();
        groups.matching("/x/12", &mut hits);
        groups.matching(&format!("/x/{}", 2 * GROUP_SIZE + 1), &mut hits);
        hits.sort_unstable();
        assert_eq!(
            hits,
            [24, 4 * GROUP_SIZE as u32 + 2],
            "/12$ and the one in the last group"
        );
        hits.clear();
        groups.matching("/x/y", &mut hits);
        assert!(hits.is_empty());
    }

    #[test]
    fn sets_over_the_size_limit_are_split() {
        // Each compiles alone, but four together exceed the regex crate's size limit.
        let (big, small) = (r"\w{100}x", "^/a");
        let input = [(big, 0), (big, 1), (big, 2), (big, 3), (small, 4)];
        let (groups, alone) = RegexGroups::build(&input);
        assert!(groups.groups.len() > 1, "{groups:?}");
        let mut covered: Vec<u32> = groups
            .groups
            .iter()
            .flat_map(|g| g.positions.to_vec())
            .collect();
        covered.extend(&alone);
        covered.sort_unstable();
        assert_eq!(covered, [0, 1, 2, 3, 4]);
        let mut hits = Vec::new();
        groups.matching(&format!("/{}x", "é".repeat(100)), &mut hits);
        hits.sort_unstable();
        assert_eq!(hits, [0, 1, 2, 3]);
    }
}
