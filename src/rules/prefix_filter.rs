//! A Bloom filter in front of a large prefix tree, so that a path no stored prefix starts with
//! is turned away without walking the tree. In a tree of 100 000 prefixes a near miss
//! (`/p123x-…` among `/p0-` … `/p99999-`) walks six levels, each a dependent load that is
//! rarely in the first-level cache; the filter instead hashes the path once, folded, and tests
//! one 64-bit word per distinct prefix length, loads that do not depend on each other.
//!
//! A "maybe" only means the tree is walked as before, so a false positive (about 1 % here)
//! costs time, never a wrong answer. Small trees are shallow and stay in the cache, and with
//! many distinct lengths the probes would cost more than the walk: neither gets a filter.

/// Fewer keys than this: the tree is walked directly.
const MIN_KEYS: usize = 4096;
/// More distinct key lengths than this: the tree is walked directly.
const MAX_LENGTHS: usize = 24;
/// Filter size: about this many bits per key, rounded up to a power of two words.
const BITS_PER_KEY: usize = 16;

#[derive(Debug)]
pub struct MissFilter {
    /// Distinct key lengths, ascending.
    lengths: Box<[u16]>,
    words: Box<[u64]>,
}

/// FNV-1a over ASCII-folded bytes: one multiply per byte, and the hash of every prefix of
/// the path comes out on the way.
const SEED: u64 = 0xcbf2_9ce4_8422_2325;

fn step(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte.to_ascii_lowercase())).wrapping_mul(0x0000_0100_0000_01b3)
}

/// The word and the three bits of one key (FNV's low bits are weak: mixed first).
fn probe(hash: u64, words: usize) -> (usize, u64) {
    let mut x = hash ^ (hash >> 33);
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let word = (x >> 40) as usize & (words - 1);
    let bits = 1u64 << (x & 63) | 1u64 << ((x >> 6) & 63) | 1u64 << ((x >> 12) & 63);
    (word, bits)
}

impl MissFilter {
    /// A filter over `keys` (already folded), or `None` when walking the tree is as cheap.
    pub fn build<'a>(keys: impl Iterator<Item = &'a [u8]> + Clone) -> Option<MissFilter> {
        let count = keys.clone().count();
        if count < MIN_KEYS {
            return None;
        }
        let mut lengths: Vec<u16> = Vec::new();
        for key in keys.clone() {
            let len = u16::try_from(key.len()).ok()?;
            if let Err(at) = lengths.binary_search(&len) {
                if lengths.len() == MAX_LENGTHS {
                    return None;
                }
                lengths.insert(at, len);
            }
        }
        let words = (count * BITS_PER_KEY / 64).next_power_of_two();
        let mut filter = vec![0u64; words];
        for key in keys {
            let (word, bits) = probe(key.iter().fold(SEED, |h, &b| step(h, b)), words);
            filter[word] |= bits;
        }
        Some(MissFilter {
            lengths: lengths.into(),
            words: filter.into(),
        })
    }

    /// False when no key is a prefix of `path` (ASCII case ignored); true when one may be.
    pub fn may_match(&self, path: &[u8]) -> bool {
        let mut hash = SEED;
        let mut hashed = 0;
        for &len in self.lengths.iter() {
            let len = usize::from(len);
            let Some(more) = path.get(hashed..len) else {
                return false;
            };
            hash = more.iter().fold(hash, |h, &b| step(h, b));
            hashed = len;
            let (word, bits) = probe(hash, self.words.len());
            if self.words[word] & bits == bits {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("/p{i}-").into_bytes()).collect()
    }

    fn filter(keys: &[Vec<u8>]) -> Option<MissFilter> {
        MissFilter::build(keys.iter().map(Vec::as_slice))
    }

    #[test]
    fn never_turns_away_a_path_a_key_starts() {
        let keys = keys(20_000);
        let filter = filter(&keys).expect("20 000 keys of 5 lengths get a filter");
        for (i, key) in keys.iter().enumerate() {
            let mut path = String::from_utf8(key.clone()).unwrap().to_uppercase();
            path.push_str(&"x/".repeat(i % 4));
            assert!(filter.may_match(path.as_bytes()), "{path}");
        }
    }

    #[test]
    fn turns_away_nearly_every_near_miss() {
        let keys = keys(20_000);
        let filter = filter(&keys).unwrap();
        let passed = (0..20_000)
            .filter(|i| filter.may_match(format!("/p{i}x-blue/7").as_bytes()))
            .count();
        // About 1 % false positives at 16 bits per key and three bits per key in one word.
        assert!(passed < 600, "{passed} of 20 000 near misses passed");
        assert!(!filter.may_match(b"/p"), "shorter than every key");
    }

    #[test]
    fn small_or_varied_key_sets_get_none() {
        assert!(filter(&keys(MIN_KEYS - 1)).is_none());
        let varied: Vec<Vec<u8>> = (0..MIN_KEYS)
            .map(|i| "/a".repeat(1 + i % (MAX_LENGTHS + 1)).into_bytes())
            .collect();
        assert!(filter(&varied).is_none());
    }
}
