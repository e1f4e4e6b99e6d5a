//! [`RuleSet`]: the compiled rules of one project, immutable and shared between threads.
//! `evaluate` takes its candidates from the index (`partition`); when nothing matches it
//! allocates nothing (beyond normalizing an unusual path), takes no lock and compiles
//! nothing. `evaluate_reference` checks every rule in order and is what the index must agree
//! with; `evaluate_traced` also explains conflicts, for `rampart rules test`.

use crate::rules::compile::{compile_rule, CompiledRule};
use crate::rules::index::Merge;
use crate::rules::normalize::normalize_path;
use crate::rules::partition::RuleIndex;
use crate::rules::plan::{Plan, PlanBuilder, RuleFailure, Step};
use crate::rules::trace::Trace;
use crate::rules::{RequestView, RuleError, RuleSpec};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct RuleSet {
    /// In evaluation order: priority descending, then input order.
    rules: Vec<CompiledRule>,
    index: RuleIndex,
    /// Positions by input index.
    by_input: Vec<u32>,
}

/// Matching rules met while evaluating, for a trace: (position, applied).
type Log = Vec<(u32, bool)>;

impl RuleSet {
    /// Compiles the rules; on failure returns every error of every rule, by input index.
    pub fn compile(specs: &[RuleSpec]) -> Result<RuleSet, Vec<RuleError>> {
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
                    });
                } else {
                    seen.insert(&spec.id, i);
                }
            }
            if let Some(rule) = compile_rule(i, spec, &mut errors) {
                rules.push(rule);
            }
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.index);
            return Err(errors);
        }
        // Unstable is enough (indexes are unique) and needs no buffer of moved rules.
        rules.sort_unstable_by(|a, b| b.priority.cmp(&a.priority).then(a.index.cmp(&b.index)));
        let mut by_input = vec![0; rules.len()];
        for (pos, rule) in rules.iter().enumerate() {
            by_input[rule.index] = pos as u32;
        }
        Ok(RuleSet {
            index: RuleIndex::build(&rules),
            rules,
            by_input,
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

    /// `(rule id, input index, pool)` of every rule with `pool:`, in input (file) order.
    pub fn pools(&self) -> impl Iterator<Item = (&str, usize, &str)> {
        self.by_input.iter().filter_map(|&pos| {
            let r = &self.rules[pos as usize];
            Some((&*r.id, r.index, r.actions.pool.as_deref()?))
        })
    }

    /// The plan for one request, checking only the rules the index selects.
    pub fn evaluate(&self, req: &RequestView<'_>) -> Plan {
        if self.rules.is_empty() {
            return Plan::default();
        }
        let path = normalize_path(req.path);
        let mut hits = Vec::new();
        let mut candidates = Merge::new();
        self.index
            .candidates(req, &path, &mut hits, &mut candidates);
        self.run(req, &path, &mut candidates, None)
    }

    /// The same plan, checking every rule in evaluation order.
    pub fn evaluate_reference(&self, req: &RequestView<'_>) -> Plan {
        let path = normalize_path(req.path);
        self.run(req, &path, 0..self.rules.len() as u32, None)
    }

    /// The same plan as [`RuleSet::evaluate`], and how the matching rules' conflicts were
    /// decided. Slower: rules matching after evaluation ended are still looked for.
    pub fn evaluate_traced(&self, req: &RequestView<'_>) -> (Plan, Trace) {
        let path = normalize_path(req.path);
        let mut hits = Vec::new();
        let mut candidates = Merge::new();
        self.index
            .candidates(req, &path, &mut hits, &mut candidates);
        let mut log = Log::new();
        let plan = self.run(req, &path, &mut candidates, Some(&mut log));
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
        mut log: Option<&mut Log>,
    ) -> Plan {
        let mut plan = PlanBuilder::default();
        let mut ended = false;
        for pos in candidates {
            let rule = &self.rules[pos as usize];
            let Some(hit) = rule.cond.matches(req, path) else {
                continue;
            };
            if let Some(log) = log.as_deref_mut() {
                log.push((pos, !ended));
            }
            if ended {
                continue;
            }
            match plan.apply(rule, req, &hit) {
                Ok(Step::Continue) => {}
                // Only a trace looks further.
                Ok(Step::Stop) if log.is_some() => ended = true,
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
    fn accessors_report_order_and_pools() {
        let set = crate::rules::testutil::rules(
            "[{id: a, pool: p1}, {id: b, priority: 5}, {id: c, priority: 5, pool: p2}, {id: d, match: {path: /x}}]",
        );
        assert_eq!((set.len(), set.is_empty()), (4, false));
        assert_eq!(set.rule_ids().collect::<Vec<_>>(), ["b", "c", "a", "d"]);
        assert_eq!(
            set.pools().collect::<Vec<_>>(),
            [("a", 0, "p1"), ("c", 2, "p2")]
        );
        assert!(RuleSet::compile(&[]).unwrap().is_empty());
    }
}
