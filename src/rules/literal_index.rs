//! Unanchored regexes found by the literal text they require. `/u12-[a-z]+$` can only match
//! a path containing `/u12-`, so one Aho-Corasick scan of the path for all such literals
//! yields the few regexes worth running, and those are compiled only when first run. A
//! [`RegexSet`](regex::RegexSet) would have to be compiled at load, for every regex, and
//! searched in full on every request.
//!
//! The scan ignores ASCII case, so case-sensitive and `(?i)` regexes share it; a candidate
//! is only a candidate, the rule's own regex decides.

use aho_corasick::{AhoCorasick, MatchKind};

#[derive(Debug, Default)]
pub struct LiteralIndex {
    /// `None` when no rule has a literal.
    scanner: Option<AhoCorasick>,
    /// The rule positions of each distinct literal (pattern id), ascending.
    positions: Vec<Box<[u32]>>,
}

impl LiteralIndex {
    /// `entries`: (literal, rule position), positions ascending. A literal the scanner
    /// cannot take (none is known; it would be a bug) goes back to be checked on its own.
    pub fn build(mut entries: Vec<(Vec<u8>, u32)>) -> (LiteralIndex, Vec<u32>) {
        if entries.is_empty() {
            return (LiteralIndex::default(), Vec::new());
        }
        for (literal, _) in &mut entries {
            literal.make_ascii_lowercase();
        }
        // Equal literals become one pattern; the stable sort keeps positions ascending.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut literals: Vec<&[u8]> = Vec::new();
        let mut positions: Vec<Vec<u32>> = Vec::new();
        for (literal, pos) in &entries {
            if literals.last() != Some(&literal.as_slice()) {
                literals.push(literal);
                positions.push(Vec::new());
            }
            positions.last_mut().expect("pushed above").push(*pos);
        }
        let scanner = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .build(&literals);
        match scanner {
            Ok(scanner) => (
                LiteralIndex {
                    scanner: Some(scanner),
                    positions: positions.into_iter().map(Vec::into_boxed_slice).collect(),
                },
                Vec::new(),
            ),
            Err(e) => {
                log::warn!("literal index not built ({e}); its regexes are checked one by one");
                (
                    LiteralIndex::default(),
                    entries.iter().map(|e| e.1).collect(),
                )
            }
        }
    }

    /// Appends the positions of the rules whose literal occurs in `path` (unordered, maybe
    /// repeated when a literal occurs twice).
    pub fn matching(&self, path: &str, hits: &mut Vec<u32>) {
        let Some(scanner) = &self.scanner else {
            return;
        };
        for m in scanner.find_overlapping_iter(path) {
            hits.extend_from_slice(&self.positions[m.pattern().as_usize()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(index: &LiteralIndex, path: &str) -> Vec<u32> {
        let mut hits = Vec::new();
        index.matching(path, &mut hits);
        hits.sort_unstable();
        hits.dedup();
        hits
    }

    #[test]
    fn finds_every_literal_in_the_path_ignoring_ascii_case() {
        let entries = [
            ("/u12-", 0),
            (".php", 1),
            ("/u1", 2),
            (".PHP", 3),
            ("café", 4),
        ];
        let (index, alone) = LiteralIndex::build(
            entries
                .iter()
                .map(|(l, p)| (l.as_bytes().to_vec(), *p))
                .collect(),
        );
        assert!(alone.is_empty());
        assert_eq!(hits(&index, "/x/u12-ab.PhP"), [0, 1, 2, 3], "overlapping");
        assert_eq!(hits(&index, "/U1/index.html"), [2]);
        assert_eq!(
            hits(&index, "/café/CAFÉ"),
            [4],
            "non-ASCII bytes as they are"
        );
        assert!(hits(&index, "/nothing").is_empty());
        assert!(hits(&LiteralIndex::default(), "/u12-").is_empty());
    }
}
