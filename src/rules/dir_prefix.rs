//! Prefixes that end with `/` (`/blog/`, the usual form, and the literal prefix of most
//! anchored regexes), found by the folded hash of the prefix. Such a prefix can only end at a
//! slash of the request path, so the path is cut at its slashes, only at lengths some prefix
//! has and no longer than the longest: a lookup costs one hash probe per such slash, whatever
//! the number of rules. (A path made of many short segments probes at most once per slash
//! within the longest prefix's length, each probe hashing the text up to it.) The
//! [`PrefixTree`](crate::rules::prefix::PrefixTree) keeps the other prefixes; its walk
//! deepens as rules are added, by a level per branching byte.

use crate::rules::index::{ExactIndex, FoldHasher};

#[derive(Debug, Default)]
pub struct DirPrefixIndex {
    hasher: FoldHasher,
    /// Folded hash of the prefix → rule positions; a collision only adds a candidate.
    by_hash: ExactIndex,
    /// Bit `len` is set when some prefix is `len` bytes long.
    lengths: Box<[u64]>,
    max_len: usize,
}

impl DirPrefixIndex {
    /// Whether a prefix belongs here rather than in the tree.
    pub fn accepts(prefix: &[u8]) -> bool {
        prefix.ends_with(b"/")
    }

    /// `entries`: (prefix ending with `/`, rule position), positions ascending.
    pub fn build(hasher: &FoldHasher, entries: Vec<(Vec<u8>, u32)>) -> DirPrefixIndex {
        let max_len = entries.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
        let mut lengths = vec![0u64; max_len / 64 + 1];
        for (prefix, _) in &entries {
            debug_assert!(Self::accepts(prefix));
            lengths[prefix.len() / 64] |= 1 << (prefix.len() % 64);
        }
        let hashed = entries
            .iter()
            .map(|(prefix, pos)| (hasher.hash_bytes(prefix), *pos))
            .collect();
        DirPrefixIndex {
            hasher: hasher.clone(),
            by_hash: ExactIndex::build(hashed),
            lengths: lengths.into_boxed_slice(),
            max_len,
        }
    }

    /// Calls `found` with the rule positions of every stored prefix `path` may start with
    /// (ASCII case ignored), shortest first.
    pub fn each_prefix_of<'a>(&'a self, path: &str, mut found: impl FnMut(&'a [u32])) {
        // Empty, `max_len` is 0 and no cut is made.
        let wanted = |len: usize| self.lengths[len / 64] & (1 << (len % 64)) != 0;
        self.hasher
            .each_dir_prefix(path, self.max_len, wanted, |_, hash| {
                found(self.by_hash.get(hash))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(index: &DirPrefixIndex, path: &str) -> Vec<u32> {
        let mut out = Vec::new();
        index.each_prefix_of(path, |p| out.extend_from_slice(p));
        out
    }

    #[test]
    fn finds_every_stored_prefix_ignoring_case() {
        let hasher = FoldHasher::default();
        let long = format!("/{}/", "x".repeat(150));
        let keys = [
            ("/blog/", 3),
            ("/Blog/2024/", 7),
            ("/", 9),
            ("/blog/", 4),
            ("/api/v1/", 2),
            (long.as_str(), 5),
        ];
        let entries = keys.iter().map(|(k, p)| (k.as_bytes().to_vec(), *p));
        let index = DirPrefixIndex::build(&hasher, entries.collect());
        assert_eq!(found(&index, "/blog/2024/x"), [9, 3, 4, 7]);
        assert_eq!(found(&index, "/BLOG/2023/"), [9, 3, 4]);
        assert_eq!(found(&index, "/blog"), [9]);
        assert_eq!(found(&index, "/api/v1"), [9]);
        assert_eq!(found(&index, &format!("{}y", long.to_uppercase())), [9, 5]);
        assert_eq!(found(&index, "blog/"), Vec::<u32>::new());
        assert!(found(&DirPrefixIndex::default(), "/x/").is_empty());
    }

    #[test]
    fn hashes_each_cut_as_the_whole_prefix_would_be() {
        let hasher = FoldHasher::default();
        let path = format!("/a/{}/B/c", "é".repeat(40));
        let mut cuts = Vec::new();
        hasher.each_dir_prefix(&path, usize::MAX, |_| true, |len, h| cuts.push((len, h)));
        let slashes: Vec<usize> = path.match_indices('/').map(|(i, _)| i + 1).collect();
        assert_eq!(cuts.iter().map(|c| c.0).collect::<Vec<_>>(), slashes);
        for (len, h) in cuts {
            assert_eq!(h, hasher.hash(&path[..len].to_lowercase()), "{len}");
        }
    }
}
