//! [`RuleSet`]: the compiled rules of one project, immutable and shared between threads.
//! `evaluate` takes its candidates from the index (`partition`); when nothing matches it
//! allocates nothing (beyond normalizing an unusual path), takes no lock and compiles
//! nothing. `evaluate_reference` checks every rule in order and is what the index must agree
//! with; `evaluate_traced` also explains conflicts, for `rampart rules test`.

use crate::rules::compile::{compile_rule, CompiledRule};
use crate::rules::index::Merge;
use crate::rules::normalize::PathMatching;
use crate::rules::partition::RuleIndex;
use crate::rules::plan::{Plan, PlanBuilder, RuleFailure, Step};
use crate::rules::trace::Trace;
use crate::rules::{RequestView, RuleError, RuleSpec};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct RuleSet {
    /// In evaluation order: priority descending, then input order.
    rules: Vec<CompiledRule>,
    index: RuleIndex,
    /// Requests each rule matched, by position: one relaxed add per match instead of a
    /// labelled Prometheus lookup (a hash over up to 100 000 series); read at scrape time.
    hits: Box<[AtomicU64]>,
    /// How requests' paths are normalized for matching.
    paths: PathMatching,
}

/// Matching rules met while evaluating, for a trace: (position, applied).
type Log = Vec<(u32, bool)>;

/// What evaluation records about the rules that match.
enum Track<'a> {
    /// Hit counters (serving).
    Count,
    /// A trace (`rampart rules test`).
    Log(&'a mut Log),
    /// Nothing (the reference evaluator).
    Nothing,
}

impl RuleSet {
    /// Compiles the rules; on failure returns every error of every rule, by input index.
    pub fn compile(specs: &[RuleSpec]) -> Result<RuleSet, Vec<RuleError>> {
        RuleSet::compile_with(specs, PathMatching::default())
    }

    /// [`RuleSet::compile`] for a project whose rules see request paths as `paths` says.
    pub fn compile_with(
        specs: &[RuleSpec],
        paths: PathMatching,
    ) -> Result<RuleSet, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut rules = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            if !spec.id.trim().is_empty() {
                if let Some(&first) = seen.get(spec.id.as_str()) {
                    errors.push(RuleError {
                        index: i,
                        field: "id".to_string(),
                        message: format!("`{}` is also the id of rule {first}: ids must be unique within a project, rename rule {first} or rule {i}", spec.id),
                        other: Some(first),
                    });
                } else {
                    seen.insert(&spec.id, i);
                }
            }
            if let Some(rule) = compile_rule(i, spec, paths, &mut errors) {
                rules.push(rule);
            }
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.index);
            return Err(errors);
        }
        // Unstable is enough (indexes are unique) and needs no buffer of moved rules.
        rules.sort_unstable_by(|a, b| b.priority.cmp(&a.priority).then(a.index.cmp(&b.index)));
        Ok(RuleSet {
            index: RuleIndex::build(&rules),
            hits: rules.iter().map(|_| AtomicU64::new(0)).collect(),
            rules,
            paths,
        })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rule ids in evaluation order (priority descending, then file order).
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| &*r.id)
    }

    /// `(rule id, requests matched)` of every rule that matched at least once, in evaluation
    /// order. Only [`RuleSet::evaluate`] counts.
    pub fn hit_counts(&self) -> impl Iterator<Item = (&str, u64)> {
        self.rules
            .iter()
            .zip(self.hits.iter())
            .map(|(r, n)| (&*r.id, n.load(Relaxed)))
            .filter(|&(_, n)| n > 0)
    }

    /// Adds the counts of `previous` (the set this one replaces) to the rules with the same
    /// id, so that reloading rules does not reset their hit counters.
    pub fn carry_hits_from(&self, previous: &RuleSet) {
        let counted: HashMap<&str, u64> = previous.hit_counts().collect();
        if counted.is_empty() {
            return;
        }
        for (rule, hits) in self.rules.iter().zip(self.hits.iter()) {
            if let Some(&n) = counted.get(&*rule.id) {
                hits.fetch_add(n, Relaxed);
            }
        }
    }

    /// The plan for one request, checking only the rules the index selects; counts the hits.
    pub fn evaluate(&self, req: &RequestView<'_>) -> Plan {
        if self.rules.is_empty() {
            return Plan::default();
        }
        self.run_indexed(req, Track::Count)
    }

    /// [`RuleSet::run`] over the candidates the index selects for `req`.
    fn run_indexed(&self, req: &RequestView<'_>, track: Track<'_>) -> Plan {
        let path = self.paths.normalize(req.path);
        let mut regex_hits = Vec::new();
        let mut candidates = Merge::new();
        self.index
            .candidates(req, &path, &mut regex_hits, &mut candidates);
        self.run(req, &path, &mut candidates, track)
    }

    /// The same plan, checking every rule in evaluation order.
    pub fn evaluate_reference(&self, req: &RequestView<'_>) -> Plan {
        let path = self.paths.normalize(req.path);
        self.run(req, &path, 0..self.rules.len() as u32, Track::Nothing)
    }

    /// The same plan as [`RuleSet::evaluate`], and how the matching rules' conflicts were
    /// decided. Slower: rules matching after evaluation ended are still looked for.
    pub fn evaluate_traced(&self, req: &RequestView<'_>) -> (Plan, Trace) {
        let mut log = Log::new();
        let plan = self.run_indexed(req, Track::Log(&mut log));
        let rules = |applied: bool| -> Vec<&CompiledRule> {
            log.iter()
                .filter(|(_, a)| *a == applied)
                .map(|(pos, _)| &self.rules[*pos as usize])
                .collect()
        };
        (plan, Trace::build(&rules(true), &rules(false)))
    }

    fn run(
        &self,
        req: &RequestView<'_>,
        path: &str,
        candidates: impl Iterator<Item = u32>,
        mut track: Track<'_>,
    ) -> Plan {
        let mut plan = PlanBuilder::default();
        let mut ended = false;
        for pos in candidates {
            let rule = &self.rules[pos as usize];
            let Some(hit) = rule.cond.matches(req, path) else {
                continue;
            };
            match &mut track {
                Track::Count => {
                    self.hits[pos as usize].fetch_add(1, Relaxed);
                }
                Track::Log(log) => log.push((pos, !ended)),
                Track::Nothing => {}
            }
            if ended {
                continue;
            }
            match plan.apply(rule, req, &hit) {
                Ok(Step::Continue) => {}
                // Only a trace looks further.
                Ok(Step::Stop) if matches!(track, Track::Log(_)) => ended = true,
                Ok(Step::Stop) => break,
                Err(reason) => {
                    return Plan::failed(RuleFailure {
                        rule_id: rule.id.clone(),
                        reason,
                    })
                }
            }
        }
        plan.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rule_sets_are_shared_between_threads() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<RuleSet>();
        shared::<Plan>();
    }

    #[test]
    fn accessors_report_order() {
        let set = crate::rules::testutil::rules(
            "[{id: a, pool: p1}, {id: b, priority: 5}, {id: c, priority: 5, pool: p2}, {id: d, match: {path: /x}}]",
        );
        assert_eq!((set.len(), set.is_empty()), (4, false));
        assert_eq!(set.rule_ids().collect::<Vec<_>>(), ["b", "c", "a", "d"]);
        assert!(RuleSet::compile(&[]).unwrap().is_empty());
    }

    #[test]
    fn serving_evaluation_counts_hits_and_a_reload_carries_them() {
        use crate::rules::testutil::{req, rules};
        let set = rules("[{id: a, match: {path_prefix: /a}}, {id: b, match: {path: /a/b}}, {id: c, match: {path: /c}}]");
        for path in ["/a/b", "/a/x", "/zzz"] {
            set.evaluate(&req(path).view());
        }
        set.evaluate_reference(&req("/c").view());
        set.evaluate_traced(&req("/c").view());
        assert_eq!(set.hit_counts().collect::<Vec<_>>(), [("a", 2), ("b", 1)]);
        let reloaded = rules("[{id: b, match: {path: /a/b}}, {id: d, match: {path: /d}}]");
        reloaded.carry_hits_from(&set);
        reloaded.evaluate(&req("/d").view());
        assert_eq!(
            reloaded.hit_counts().collect::<Vec<_>>(),
            [("b", 1), ("d", 1)]
        );
    }
}
