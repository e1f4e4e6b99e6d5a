//! Building blocks of the rule index: a case-folding keyed hash shared by every map of one
//! rule set (a request's path and host are hashed once), the exact-path hash index, and the
//! merge of candidate lists. Every list holds rule positions (evaluation order) ascending;
//! candidates still go through the full condition check, so a hash collision or a case
//! difference can only add a candidate, never a match.

use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Hashes text ASCII-case-folded, with keys random per process (aHash): request paths and
/// hosts cannot be chosen to collide.
#[derive(Debug, Default, Clone)]
pub struct FoldHasher(ahash::RandomState);

/// Text folded on the stack up to this length (paths and hosts are nearly always shorter).
type Folded = SmallVec<[u8; 128]>;

fn folded(s: &[u8]) -> Folded {
    let mut out = Folded::from_slice(s);
    out.make_ascii_lowercase();
    out
}

impl FoldHasher {
    pub fn hash(&self, s: &str) -> u64 {
        self.hash_bytes(s.as_bytes())
    }

    pub fn hash_bytes(&self, s: &[u8]) -> u64 {
        self.hash_folded(&folded(s))
    }

    fn hash_folded(&self, folded: &[u8]) -> u64 {
        let mut h = self.0.build_hasher();
        h.write(folded);
        h.finish()
    }

    /// Calls `found(len, hash)` for each prefix of `s` that ends with `/` and whose length
    /// `wanted` accepts, up to `max_len` bytes; `hash` equals `self.hash(&s[..len])`. The text
    /// is folded once, when the first such prefix is found.
    pub fn each_dir_prefix(
        &self,
        s: &str,
        max_len: usize,
        wanted: impl Fn(usize) -> bool,
        mut found: impl FnMut(usize, u64),
    ) {
        let bytes = &s.as_bytes()[..s.len().min(max_len)];
        let mut text: Option<Folded> = None;
        for (i, _) in bytes.iter().enumerate().filter(|(_, &b)| b == b'/') {
            let len = i + 1;
            if wanted(len) {
                let text = text.get_or_insert_with(|| folded(bytes));
                found(len, self.hash_folded(&text[..len]));
            }
        }
    }
}

/// Keys are already keyed hashes: hashing them again would only cost time.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by [`FoldHasher`] hashes.
pub type HashKeyed<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

/// `match.path` rules by the folded hash of their normalized path.
#[derive(Debug, Default)]
pub struct ExactIndex {
    /// Hash → range of `positions`.
    buckets: HashKeyed<(u32, u32)>,
    positions: Box<[u32]>,
}

impl ExactIndex {
    /// `entries`: (folded hash of the path, position), positions ascending.
    pub fn build(mut entries: Vec<(u64, u32)>) -> ExactIndex {
        entries.sort_unstable();
        let mut buckets = HashKeyed::default();
        buckets.reserve(entries.len());
        let mut start = 0;
        for chunk in entries.chunk_by(|a, b| a.0 == b.0) {
            buckets.insert(chunk[0].0, (start, chunk.len() as u32));
            start += chunk.len() as u32;
        }
        let positions = entries.into_iter().map(|(_, pos)| pos).collect();
        ExactIndex { buckets, positions }
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Positions of the rules whose exact path may equal the path with this folded hash.
    pub fn get(&self, path_hash: u64) -> &[u32] {
        match self.buckets.get(&path_hash) {
            Some(&(start, len)) => &self.positions[start as usize..(start + len) as usize],
            None => &[],
        }
    }
}

/// Ascending position lists merged into one ascending sequence without repeats; an item is
/// yielded as soon as it is known to be the next, so evaluation can stop early.
pub struct Merge<'a> {
    /// On the stack up to 12 lists (the usual case), then on the heap.
    lists: SmallVec<[&'a [u32]; 12]>,
    last: Option<u32>,
}

impl<'a> Merge<'a> {
    pub fn new() -> Merge<'a> {
        Merge {
            lists: SmallVec::new(),
            last: None,
        }
    }

    pub fn add(&mut self, list: &'a [u32]) {
        if !list.is_empty() {
            self.lists.push(list);
        }
    }
}

impl Iterator for Merge<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        loop {
            let mut best: Option<&mut &[u32]> = None;
            for list in self.lists.iter_mut() {
                let Some(&head) = list.first() else { continue };
                if best.as_ref().is_none_or(|b| head < b[0]) {
                    best = Some(list);
                }
            }
            let list = best?;
            let head = list[0];
            *list = &list[1..];
            if self.last != Some(head) {
                self.last = Some(head);
                return Some(head);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_lookup_ignores_ascii_case() {
        let h = FoldHasher::default();
        let long = "/x".repeat(100);
        let index = ExactIndex::build(vec![
            (h.hash("/admin"), 1),
            (h.hash("/Admin"), 4),
            (h.hash(&long), 7),
        ]);
        assert_eq!(index.get(h.hash("/ADMIN")), &[1, 4]);
        assert_eq!(index.get(h.hash(&long.to_uppercase())), &[7]);
        assert!(index.get(h.hash("/other")).is_empty());
        assert!(ExactIndex::default().get(h.hash("/admin")).is_empty());
    }

    #[test]
    fn merge_keeps_order_drops_repeats_and_spills() {
        let mut m = Merge::new();
        m.add(&[1, 4, 9]);
        m.add(&[]);
        m.add(&[0, 2, 3, 4, 10]);
        assert_eq!(m.collect::<Vec<_>>(), [0, 1, 2, 3, 4, 9, 10]);
        let lists: Vec<[u32; 2]> = (0..=40).map(|i| [i, 80 - i]).collect();
        let mut m = Merge::new();
        for l in &lists {
            m.add(l);
        }
        let got: Vec<u32> = m.collect();
        assert_eq!(got, (0..=80).collect::<Vec<_>>());
    }
}
