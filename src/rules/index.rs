//! Finding candidate rules without a scan: `match.path` rules are kept in a hash index keyed
//! by their normalized path folded to lower case (so case-sensitive and case-insensitive rules
//! share one lookup that allocates nothing); every other rule is in the scanned list. Both
//! hold rule positions in evaluation order and are merged lazily. Candidates still go through
//! the full condition check, so a hash collision or a case difference cannot cause a match.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

#[derive(Debug, Default)]
pub struct ExactIndex {
    /// Random keys: request paths cannot be chosen to collide.
    hasher: std::collections::hash_map::RandomState,
    buckets: HashMap<u64, Box<[u32]>>,
}

impl ExactIndex {
    /// `entries`: (normalized path, position), positions ascending.
    pub fn build<'a>(entries: impl Iterator<Item = (&'a str, u32)>) -> ExactIndex {
        let mut index = ExactIndex::default();
        let mut buckets: HashMap<u64, Vec<u32>> = HashMap::new();
        for (path, pos) in entries {
            buckets.entry(index.fold_hash(path)).or_default().push(pos);
        }
        index.buckets = buckets
            .into_iter()
            .map(|(k, v)| (k, v.into_boxed_slice()))
            .collect();
        index
    }

    /// Positions of the rules whose exact path may equal `path` (ascending).
    pub fn get(&self, path: &str) -> &[u32] {
        if self.buckets.is_empty() {
            return &[];
        }
        self.buckets.get(&self.fold_hash(path)).map_or(&[], |b| b)
    }

    /// Hash of the ASCII-lower-cased text, folded through a stack buffer.
    fn fold_hash(&self, s: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        let mut buf = [0u8; 64];
        for chunk in s.as_bytes().chunks(buf.len()) {
            let buf = &mut buf[..chunk.len()];
            buf.copy_from_slice(chunk);
            buf.make_ascii_lowercase();
            h.write(buf);
        }
        h.write_usize(s.len());
        h.finish()
    }
}

/// Two ascending position lists merged into one ascending sequence.
pub struct Merge<'a> {
    a: &'a [u32],
    b: &'a [u32],
}

impl<'a> Merge<'a> {
    pub fn new(a: &'a [u32], b: &'a [u32]) -> Merge<'a> {
        Merge { a, b }
    }
}

impl Iterator for Merge<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let take_a = match (self.a.first(), self.b.first()) {
            (Some(x), Some(y)) => x < y,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let list = if take_a { &mut self.a } else { &mut self.b };
        let (first, rest) = list.split_first()?;
        *list = rest;
        Some(*first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_ascii_case_and_merge_keeps_order() {
        let long = "/x".repeat(100);
        let index =
            ExactIndex::build([("/admin", 1), ("/Admin", 4), (long.as_str(), 7)].into_iter());
        assert_eq!(index.get("/ADMIN"), &[1, 4]);
        assert_eq!(index.get(&long.to_uppercase()), &[7]);
        assert!(index.get("/other").is_empty());
        let merged: Vec<u32> = Merge::new(&[1, 4, 9], &[0, 2, 3, 10]).collect();
        assert_eq!(merged, [0, 1, 2, 3, 4, 9, 10]);
    }
}
