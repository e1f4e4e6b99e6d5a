//! A radix tree over ASCII-lower-cased path prefixes: walking a request path down the tree
//! yields the rules of every prefix the path starts with, in time bounded by the path length
//! and the tree depth, not by the number of rules. Case-sensitive and case-insensitive rules
//! share the folded tree; the condition check afterwards tells them apart.
//!
//! The tree is flat (three arrays, built once without recursion): 100 000 prefixes take a few
//! megabytes and no per-node allocation.

use crate::rules::prefix_filter::MissFilter;

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Range of `labels`: the bytes of the edge into this node (empty only for the root).
    label: (u32, u32),
    /// Range of `nodes`, sorted by the first label byte.
    children: (u32, u32),
    /// Range of `positions`: rules whose prefix ends at this node, ascending.
    rules: (u32, u32),
}

fn range<T>(items: &[T], (start, len): (u32, u32)) -> &[T] {
    &items[start as usize..(start + len) as usize]
}

#[derive(Debug, Default)]
pub struct PrefixTree {
    nodes: Vec<Node>,
    /// The first label byte of each node: a node's children are found by searching their
    /// bytes, which sit together, instead of each child's label.
    firsts: Vec<u8>,
    labels: Vec<u8>,
    positions: Vec<u32>,
    /// In front of large trees: most paths that start with no prefix stop there.
    filter: Option<MissFilter>,
}

/// Length of the common prefix.
fn common(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl PrefixTree {
    /// `entries`: (prefix, rule position) in any order; prefixes are folded here.
    pub fn build(mut entries: Vec<(Vec<u8>, u32)>) -> PrefixTree {
        let mut tree = PrefixTree::default();
        if entries.is_empty() {
            return tree;
        }
        for (key, _) in &mut entries {
            key.make_ascii_lowercase();
        }
        // Sorted, the keys under a node are contiguous, a prefix comes before its extensions,
        // and equal keys keep their positions ascending.
        entries.sort_unstable();
        tree.filter = MissFilter::build(entries.iter().map(|(key, _)| key.as_slice()));
        let placeholder = Node {
            label: (0, 0),
            children: (0, 0),
            rules: (0, 0),
        };
        tree.nodes.push(placeholder);
        // (node, entries range, bytes already consumed above the node)
        let mut work = vec![(0usize, 0usize, entries.len(), 0usize)];
        while let Some((node, lo, hi, depth)) = work.pop() {
            let (first, last) = (&entries[lo].0, &entries[hi - 1].0);
            let end = depth + common(&first[depth..], &last[depth..]);
            let label = (tree.labels.len() as u32, (end - depth) as u32);
            tree.labels.extend_from_slice(&first[depth..end]);
            let rules_start = tree.positions.len() as u32;
            let mut i = lo;
            while i < hi && entries[i].0.len() == end {
                tree.positions.push(entries[i].1);
                i += 1;
            }
            let rules = (rules_start, tree.positions.len() as u32 - rules_start);
            let children_start = tree.nodes.len() as u32;
            while i < hi {
                let byte = entries[i].0[end];
                let group_end = i + entries[i..hi].partition_point(|(k, _)| k[end] == byte);
                work.push((tree.nodes.len(), i, group_end, end));
                tree.nodes.push(placeholder);
                i = group_end;
            }
            let children = (children_start, tree.nodes.len() as u32 - children_start);
            tree.nodes[node] = Node {
                label,
                children,
                rules,
            };
        }
        tree.firsts = tree
            .nodes
            .iter()
            .map(|n| tree.labels.get(n.label.0 as usize).copied().unwrap_or(0))
            .collect();
        tree.nodes.shrink_to_fit();
        tree.labels.shrink_to_fit();
        tree.positions.shrink_to_fit();
        tree
    }

    /// Calls `found` with the rule positions of every stored prefix of `path` (ASCII case
    /// ignored), shortest prefix first.
    pub fn each_prefix_of<'a>(&'a self, path: &[u8], mut found: impl FnMut(&'a [u32])) {
        let Some(mut node) = self.nodes.first() else {
            return;
        };
        if self.filter.as_ref().is_some_and(|f| !f.may_match(path)) {
            return;
        }
        let mut rest = path;
        // The first byte of a child's label is already known to match.
        let mut skip = 0;
        loop {
            let label = &range(&self.labels, node.label)[skip..];
            if rest.len() < label.len() || !rest[..label.len()].eq_ignore_ascii_case(label) {
                return;
            }
            rest = &rest[label.len()..];
            if node.rules.1 > 0 {
                found(range(&self.positions, node.rules));
            }
            let Some((&next, after)) = rest.split_first() else {
                return;
            };
            let firsts = range(&self.firsts, node.children);
            let next = next.to_ascii_lowercase();
            let found = match firsts.len() {
                // A short scan beats a binary search's unpredictable branches.
                0..=16 => firsts.iter().position(|&b| b == next),
                _ => firsts.binary_search(&next).ok(),
            };
            let Some(i) = found else { return };
            node = &self.nodes[node.children.0 as usize + i];
            rest = after;
            skip = 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(tree: &PrefixTree, path: &str) -> Vec<u32> {
        let mut out = Vec::new();
        tree.each_prefix_of(path.as_bytes(), |p| out.extend_from_slice(p));
        out
    }

    #[test]
    fn yields_every_stored_prefix_ignoring_case() {
        let keys = [
            ("/blog/", 3),
            ("/blog", 1),
            ("/Blog/2024/", 7),
            ("/b", 0),
            ("/api/v1/", 2),
            ("/api/v2/", 5),
            ("/", 9),
            ("/blog/", 4),
        ];
        let tree = PrefixTree::build(
            keys.iter()
                .map(|(k, p)| (k.as_bytes().to_vec(), *p))
                .collect(),
        );
        assert_eq!(found(&tree, "/blog/2024/x"), [9, 0, 1, 3, 4, 7]);
        assert_eq!(found(&tree, "/BLOG/2023"), [9, 0, 1, 3, 4]);
        assert_eq!(found(&tree, "/api/v2/users"), [9, 5]);
        assert_eq!(found(&tree, "/api/v3/"), [9]);
        assert_eq!(found(&tree, "/ap"), [9]);
        assert_eq!(found(&tree, ""), Vec::<u32>::new());
        assert!(found(&PrefixTree::default(), "/x").is_empty());
    }

    #[test]
    fn agrees_with_a_scan_on_many_keys() {
        let mut rng = crate::rules::testutil::Rng::new(3);
        // Digits give nodes more children than the short scan handles.
        let alphabet = [
            "/", "a", "B", "b", "ab", "/x", "é", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
            "c", "d", "e", "f", "g", "h",
        ];
        let word = |rng: &mut crate::rules::testutil::Rng| -> String {
            (0..rng.below(6)).map(|_| rng.pick(&alphabet)).collect()
        };
        // Enough non-empty keys for the miss filter to stand in front of the tree.
        let keys: Vec<(String, u32)> = (0..6000)
            .map(|i| (word(&mut rng), i))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        let tree = PrefixTree::build(
            keys.iter()
                .map(|(k, p)| (k.as_bytes().to_vec(), *p))
                .collect(),
        );
        let filter = tree.filter.as_ref().expect("a large tree has a filter");
        let mut turned_away = 0;
        for _ in 0..4000 {
            let path = word(&mut rng);
            let mut want: Vec<u32> = keys
                .iter()
                .filter(|(k, _)| {
                    path.len() >= k.len()
                        && path.as_bytes()[..k.len()].eq_ignore_ascii_case(k.as_bytes())
                })
                .map(|(_, p)| *p)
                .collect();
            let mut got = found(&tree, &path);
            turned_away += usize::from(!filter.may_match(path.as_bytes()));
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "{path:?}");
        }
        assert!(turned_away > 100, "the filter answered {turned_away} paths");
    }
}
