//! [`RuleSet`]: the compiled rules of one project, immutable and shared between threads.
//! `evaluate` takes candidates from the exact-path index and the scanned list; when nothing
//! matches it allocates nothing (beyond normalizing an unusual path), takes no lock and
//! compiles nothing. `evaluate_reference` checks every rule in order and is what any faster
//! matcher must agree with.

use crate::rules::compile::{compile_rule, CompiledRule};
use crate::rules::index::{ExactIndex, Merge};
use crate::rules::matcher::PathMatch;
use crate::rules::normalize::normalize_path;
use crate::rules::plan::{Plan, PlanBuilder, RuleFailure, Step};
use crate::rules::{RequestView, RuleError, RuleSpec};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct RuleSet {
    /// In evaluation order: priority descending, then input order.
    rules: Vec<CompiledRule>,
    /// `match.path` rules by normalized path.
    exact: ExactIndex,
    /// Positions of every other rule, ascending.
    scanned: Vec<u32>,
    /// Positions by input index.
    by_input: Vec<u32>,
}

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
        rules.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.index.cmp(&b.index)));
        let mut by_input = vec![0; rules.len()];
        let mut scanned = Vec::new();
        let mut exact = Vec::new();
        for (pos, rule) in rules.iter().enumerate() {
            by_input[rule.index] = pos as u32;
            match &rule.cond.path {
                PathMatch::Exact(p) => exact.push((&**p, pos as u32)),
                _ => scanned.push(pos as u32),
            }
        }
        let exact = ExactIndex::build(exact.into_iter());
        Ok(RuleSet {
            rules,
            exact,
            scanned,
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

    /// The plan for one request, using the exact-path index.
    pub fn evaluate(&self, req: &RequestView<'_>) -> Plan {
        if self.rules.is_empty() {
            return Plan::default();
        }
        let path = normalize_path(req.path);
        let candidates = Merge::new(self.exact.get(&path), &self.scanned);
        self.run(req, &path, candidates)
    }

    /// The same plan, checking every rule in evaluation order.
    pub fn evaluate_reference(&self, req: &RequestView<'_>) -> Plan {
        let path = normalize_path(req.path);
        self.run(req, &path, 0..self.rules.len() as u32)
    }

    fn run(
        &self,
        req: &RequestView<'_>,
        path: &str,
        candidates: impl Iterator<Item = u32>,
    ) -> Plan {
        let mut plan = PlanBuilder::default();
        for pos in candidates {
            let rule = &self.rules[pos as usize];
            let Some(hit) = rule.cond.matches(req, path) else {
                continue;
            };
            match plan.apply(rule, req, &hit) {
                Ok(Step::Continue) => {}
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
    use crate::rules::testutil::{req, Req, Rng};
    use crate::rules::{HeaderOpsSpec, MatchSpec, RedirectSpec, RewriteSpec};
    use std::collections::BTreeMap;

    const PATHS: [&str; 8] = [
        "/",
        "/admin",
        "/Admin",
        "/blog/",
        "/blog/post",
        "/p/1",
        "/p/22",
        "/x/y",
    ];

    fn random_rule(rng: &mut Rng, i: usize) -> RuleSpec {
        let mut m = MatchSpec {
            case_insensitive: rng.chance(20),
            ..MatchSpec::default()
        };
        match rng.below(5) {
            0 | 1 => m.path = Some(rng.pick(&PATHS).to_string()),
            2 => m.path_prefix = Some(rng.pick(&["/", "/blog", "/p/", "/ADMIN"]).to_string()),
            3 => {
                m.path_regex = Some(
                    rng.pick(&["^/p/([0-9]+)$", "^/(?P<s>[a-z]+)/", "min$"])
                        .to_string(),
                )
            }
            _ => {}
        }
        if rng.chance(20) {
            m.methods = Some(vec![rng.pick(&["GET", "post"]).to_string()]);
        }
        if rng.chance(15) {
            m.host = Some(
                rng.pick(&["shop.test", "*.shop.test", "other.test"])
                    .to_string(),
            );
        }
        if rng.chance(15) {
            m.headers = Some(BTreeMap::from([(
                "X-A".to_string(),
                rng.pick(&["*", "1", "~^[0-9]$"]).to_string(),
            )]));
        }
        if rng.chance(10) {
            m.query = Some(BTreeMap::from([(
                "q".to_string(),
                rng.pick(&["*", "a b"]).to_string(),
            )]));
        }
        let header = |rng: &mut Rng| {
            let name = rng.pick(&["X-One", "X-Two", "x-one"]).to_string();
            let mut ops = HeaderOpsSpec::default();
            match rng.below(3) {
                0 => drop(ops.set.insert(name, format!("r{i}"))),
                1 => drop(ops.add.insert(name, "{path}".to_string())),
                _ => ops.remove.push(name),
            }
            ops
        };
        let rewrite = |p: &str| RewriteSpec {
            path: Some(p.to_string()),
            query: None,
        };
        RuleSpec {
            id: format!("r{i}"),
            priority: rng.below(4) as i32,
            redirect: rng.chance(8).then(|| RedirectSpec {
                to: format!("/to/{i}"),
                status: 302,
                keep_query: rng.chance(50),
            }),
            rewrite: rng.chance(25).then(|| {
                rewrite(if m.path_prefix.is_some() {
                    "/r{rest}"
                } else {
                    "/r{path}"
                })
            }),
            pool: rng.chance(25).then(|| format!("pool{i}")),
            request_headers: rng.chance(40).then(|| header(rng)),
            response_headers: rng.chance(20).then(|| header(rng)),
            stop: rng.chance(10),
            matcher: m,
            respond: None,
        }
    }

    fn random_request(rng: &mut Rng) -> Req {
        let path = rng.pick(&[
            "/admin",
            "/ADMIN",
            "//admin",
            "/%61dmin",
            "/blog/post",
            "/p/1",
            "/p/22/",
            "/x/../p/22",
            "/x/y",
            "/",
        ]);
        let query = rng.pick(&["", "?q=a+b", "?q", "?z=1"]);
        let mut r = req(&format!("{path}{query}"))
            .method(rng.pick(&["GET", "POST"]))
            .host(rng.pick(&["shop.test", "a.shop.test"]));
        if rng.chance(40) {
            r = r.header("x-a", rng.pick(&["1", "22"]));
        }
        r
    }

    #[test]
    fn indexed_evaluation_agrees_with_the_reference() {
        let mut rng = Rng::new(42);
        let mut matched = 0;
        for round in 0..300 {
            let specs: Vec<RuleSpec> = (0..rng.below(40) + 1)
                .map(|i| random_rule(&mut rng, i))
                .collect();
            let set = RuleSet::compile(&specs).unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            for _ in 0..40 {
                let r = random_request(&mut rng);
                let plan = set.evaluate(&r.view());
                assert_eq!(
                    plan,
                    set.evaluate_reference(&r.view()),
                    "round {round}, {} {:?}",
                    r.path,
                    r.query
                );
                matched += plan.matched.len();
            }
        }
        assert!(
            matched > 10_000,
            "the generator must produce matches ({matched})"
        );
    }

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
