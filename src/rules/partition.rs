//! The index of a rule set. Rules are partitioned by their host condition (none, an exact
//! host, a `*.` wildcard) and then by method (none, each listed method); within a partition
//! by their path condition: exact paths hashed, prefixes and the literal prefixes of
//! anchored regexes hashed when they end with `/` ([`DirPrefixIndex`]) and in a
//! [`PrefixTree`] otherwise, regexes requiring some literal text in a
//! [`LiteralIndex`], other regexes in [`RegexGroups`], rules without a path condition listed.
//! A request visits only the partitions its host and method select and gets the candidates
//! of each merged in evaluation order.

use crate::rules::compile::CompiledRule;
use crate::rules::dir_prefix::DirPrefixIndex;
use crate::rules::index::{ExactIndex, FoldHasher, HashKeyed, Merge};
use crate::rules::literal_index::LiteralIndex;
use crate::rules::matcher::{HostMatch, PathMatch};
use crate::rules::prefix::PrefixTree;
use crate::rules::regex_index::RegexGroups;
use crate::rules::RequestView;

#[derive(Debug, Default)]
pub struct RuleIndex {
    hasher: FoldHasher,
    /// Some partition has exact paths: hash the request path.
    hash_paths: bool,
    any_host: MethodIndex,
    /// By folded hash of the host.
    hosts: HashKeyed<MethodIndex>,
    /// By folded hash of the suffix, kept with its dot: `.example.com`.
    wildcards: HashKeyed<MethodIndex>,
    /// Byte lengths of the wildcard suffixes, ascending: a request host is only cut there.
    wildcard_lens: Vec<usize>,
}

#[derive(Debug, Default)]
struct MethodIndex {
    any: PathIndex,
    /// Upper-case method names; a handful at most.
    named: Vec<(Box<str>, PathIndex)>,
}

#[derive(Debug, Default)]
struct PathIndex {
    exact: ExactIndex,
    dir_prefixes: DirPrefixIndex,
    prefixes: PrefixTree,
    literals: LiteralIndex,
    regexes: RegexGroups,
    /// No path condition, or a regex that could not be grouped.
    scanned: Box<[u32]>,
}

/// How a rule's path condition is indexed.
enum PathKey<'r> {
    Exact(u64),
    Prefix(Vec<u8>),
    Literal(&'r [u8]),
    Regex(&'r str),
    None,
}

#[derive(Default)]
struct PathBuilder<'r> {
    exact: Vec<(u64, u32)>,
    dir_prefixes: Vec<(Vec<u8>, u32)>,
    prefixes: Vec<(Vec<u8>, u32)>,
    literals: Vec<(Vec<u8>, u32)>,
    regexes: Vec<(&'r str, u32)>,
    scanned: Vec<u32>,
}

impl<'r> PathBuilder<'r> {
    fn add(&mut self, key: &PathKey<'r>, pos: u32) {
        match key {
            PathKey::Exact(hash) => self.exact.push((*hash, pos)),
            PathKey::Prefix(p) if DirPrefixIndex::accepts(p) => {
                self.dir_prefixes.push((p.clone(), pos))
            }
            PathKey::Prefix(p) => self.prefixes.push((p.clone(), pos)),
            PathKey::Literal(l) => self.literals.push((l.to_vec(), pos)),
            PathKey::Regex(re) => self.regexes.push((re, pos)),
            PathKey::None => self.scanned.push(pos),
        }
    }

    fn finish(self, hasher: &FoldHasher) -> PathIndex {
        let (regexes, alone) = RegexGroups::build(&self.regexes);
        let (literals, unscanned) = LiteralIndex::build(self.literals);
        let mut scanned = self.scanned;
        if !alone.is_empty() || !unscanned.is_empty() {
            scanned.extend(alone);
            scanned.extend(unscanned);
            scanned.sort_unstable();
        }
        PathIndex {
            exact: ExactIndex::build(self.exact),
            dir_prefixes: DirPrefixIndex::build(hasher, self.dir_prefixes),
            prefixes: PrefixTree::build(self.prefixes),
            literals,
            regexes,
            scanned: scanned.into_boxed_slice(),
        }
    }
}

#[derive(Default)]
struct MethodBuilder<'r> {
    any: PathBuilder<'r>,
    named: Vec<(&'r str, PathBuilder<'r>)>,
}

impl<'r> MethodBuilder<'r> {
    fn add(&mut self, methods: Option<&'r [Box<str>]>, key: &PathKey<'r>, pos: u32) {
        let Some(methods) = methods else {
            return self.any.add(key, pos);
        };
        for (i, m) in methods.iter().enumerate() {
            if methods[..i].contains(m) {
                continue;
            }
            let at = match self.named.iter().position(|(n, _)| *n == &**m) {
                Some(at) => at,
                None => {
                    self.named.push((m, PathBuilder::default()));
                    self.named.len() - 1
                }
            };
            self.named[at].1.add(key, pos);
        }
    }

    fn finish(self, hasher: &FoldHasher) -> MethodIndex {
        MethodIndex {
            any: self.any.finish(hasher),
            named: self
                .named
                .into_iter()
                .map(|(m, b)| (m.into(), b.finish(hasher)))
                .collect(),
        }
    }
}

impl RuleIndex {
    /// `rules` in evaluation order; the index holds their positions.
    pub fn build(rules: &[CompiledRule]) -> RuleIndex {
        let hasher = FoldHasher::default();
        let mut any_host = MethodBuilder::default();
        let mut hosts: HashKeyed<MethodBuilder<'_>> = HashKeyed::default();
        let mut wildcards: HashKeyed<MethodBuilder<'_>> = HashKeyed::default();
        let mut wildcard_lens = Vec::new();
        let mut hash_paths = false;
        for (pos, rule) in rules.iter().enumerate() {
            let key = match &rule.cond.path {
                PathMatch::Any => PathKey::None,
                PathMatch::Exact(p) => {
                    hash_paths = true;
                    PathKey::Exact(hasher.hash(p))
                }
                PathMatch::Prefix(p) => PathKey::Prefix(p.as_bytes().to_vec()),
                PathMatch::Regex(re) => match (re.anchored_prefix(), re.required_literal()) {
                    (Some(prefix), _) => PathKey::Prefix(prefix.to_vec()),
                    (None, Some(literal)) => PathKey::Literal(literal),
                    (None, None) => PathKey::Regex(re.as_str()),
                },
            };
            let partition = match rule.cond.host() {
                None => &mut any_host,
                Some(HostMatch::Exact(h)) => hosts.entry(hasher.hash(h)).or_default(),
                Some(HostMatch::Subdomains(suffix)) => {
                    wildcard_lens.push(suffix.len());
                    wildcards.entry(hasher.hash(suffix)).or_default()
                }
            };
            partition.add(rule.cond.methods(), &key, pos as u32);
        }
        wildcard_lens.sort_unstable();
        wildcard_lens.dedup();
        let finish = |m: HashKeyed<MethodBuilder<'_>>| -> HashKeyed<MethodIndex> {
            m.into_iter().map(|(k, b)| (k, b.finish(&hasher))).collect()
        };
        RuleIndex {
            any_host: any_host.finish(&hasher),
            hosts: finish(hosts),
            wildcards: finish(wildcards),
            wildcard_lens,
            hash_paths,
            hasher,
        }
    }

    /// Adds to `merge` the positions of the rules that may match. `path` is the normalized
    /// path; `hits` holds regex candidates (allocated only when a grouped regex matches or a
    /// required literal occurs).
    pub fn candidates<'a>(
        &'a self,
        req: &RequestView<'_>,
        path: &str,
        hits: &'a mut Vec<u32>,
        merge: &mut Merge<'a>,
    ) {
        let path_hash = if self.hash_paths {
            self.hasher.hash(path)
        } else {
            0
        };
        let mut visit = |m: &'a MethodIndex| m.collect(req.method, path, path_hash, merge, hits);
        visit(&self.any_host);
        if !self.hosts.is_empty() || !self.wildcards.is_empty() {
            let host = req.host.strip_suffix('.').unwrap_or(req.host);
            if !self.hosts.is_empty() {
                if let Some(m) = self.hosts.get(&self.hasher.hash(host)) {
                    visit(m);
                }
            }
            for &len in &self.wildcard_lens {
                // `*.example.com` matches subdomains only: the host is longer than the suffix.
                let Some(cut) = host.len().checked_sub(len).filter(|&c| c > 0) else {
                    break;
                };
                if host.as_bytes()[cut] == b'.' {
                    if let Some(m) = self.wildcards.get(&self.hasher.hash(&host[cut..])) {
                        visit(m);
                    }
                }
            }
        }
        if !hits.is_empty() {
            hits.sort_unstable();
            // A literal found twice in the path reports its rules twice.
            hits.dedup();
        }
        let hits: &'a Vec<u32> = hits;
        merge.add(hits);
    }
}

impl MethodIndex {
    fn collect<'a>(
        &'a self,
        method: &str,
        path: &str,
        path_hash: u64,
        merge: &mut Merge<'a>,
        hits: &mut Vec<u32>,
    ) {
        self.any.collect(path, path_hash, merge, hits);
        if let Some((_, p)) = self
            .named
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(method))
        {
            p.collect(path, path_hash, merge, hits);
        }
    }
}

impl PathIndex {
    fn collect<'a>(
        &'a self,
        path: &str,
        path_hash: u64,
        merge: &mut Merge<'a>,
        hits: &mut Vec<u32>,
    ) {
        if !self.exact.is_empty() {
            merge.add(self.exact.get(path_hash));
        }
        self.dir_prefixes
            .each_prefix_of(path, |rules| merge.add(rules));
        self.prefixes
            .each_prefix_of(path.as_bytes(), |rules| merge.add(rules));
        self.literals.matching(path, hits);
        self.regexes.matching(path, hits);
        merge.add(&self.scanned);
    }
}
