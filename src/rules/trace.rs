//! Explaining one evaluation, for `rampart rules test` only (the proxy never builds a
//! trace): the matching rules in evaluation order, including those that matched after
//! evaluation had ended, and every conflict between them with its winner, its loser and why
//! the winner came first. The conflicts follow the folding in `plan`: the first
//! `rewrite`/`pool` stays, the first rule to touch a header name owns it per direction, and
//! `redirect`/`respond`/`stop` end evaluation.

use crate::rules::actions::HeaderOpTemplate;
use crate::rules::compile::CompiledRule;
use http::HeaderName;
use std::fmt;
use std::sync::Arc;

/// A matching rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedRule {
    pub id: Arc<str>,
    pub priority: i32,
    /// False when evaluation had ended before this rule (redirect, respond or `stop`).
    pub applied: bool,
}

/// What two matching rules both wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contested {
    /// The answer: the winner's redirect or respond ended evaluation before the loser's.
    Answer,
    /// Nothing in particular: the winner ended evaluation before the loser.
    Ended,
    Rewrite,
    Pool,
    RequestHeader(HeaderName),
    ResponseHeader(HeaderName),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub contested: Contested,
    pub winner: TracedRule,
    pub loser: TracedRule,
    /// For [`Contested::Answer`] and [`Contested::Ended`]: `redirect`, `respond` or
    /// `stop: true`.
    pub ended_by: Option<&'static str>,
}

/// The matching rules of one request and their conflicts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// In evaluation order; the applied ones first.
    pub rules: Vec<TracedRule>,
    pub conflicts: Vec<Conflict>,
}

fn traced(rule: &CompiledRule, applied: bool) -> TracedRule {
    TracedRule {
        id: rule.id.clone(),
        priority: rule.priority,
        applied,
    }
}

fn answers(rule: &CompiledRule) -> Option<&'static str> {
    let a = &rule.actions;
    match (&a.redirect, &a.respond) {
        (Some(_), _) => Some("redirect"),
        (_, Some(_)) => Some("respond"),
        _ => None,
    }
}

/// Per direction: which applied rule owns each header name.
#[derive(Default)]
struct Owners<'r> {
    owners: Vec<(&'r HeaderName, usize)>,
}

impl<'r> Owners<'r> {
    /// The earlier owners of the names `ops` touch; `rule` owns the others afterwards.
    fn claim(&mut self, ops: &'r [HeaderOpTemplate], rule: usize) -> Vec<(&'r HeaderName, usize)> {
        let earlier = self.owners.len();
        let mut lost = Vec::new();
        for op in ops {
            match self.owners[..earlier].iter().find(|(n, _)| *n == op.name) {
                Some(&(name, owner)) if !lost.iter().any(|(n, _)| *n == name) => {
                    lost.push((name, owner))
                }
                Some(_) => {}
                None if !self.owners[earlier..].iter().any(|(n, _)| *n == op.name) => {
                    self.owners.push((&op.name, rule))
                }
                None => {}
            }
        }
        lost
    }
}

impl Trace {
    /// `applied`: the rules folded into the plan, in order; `skipped`: the rules that matched
    /// after the last applied one ended evaluation.
    pub fn build(applied: &[&CompiledRule], skipped: &[&CompiledRule]) -> Trace {
        let mut trace = Trace {
            rules: applied.iter().map(|r| traced(r, true)).collect(),
            conflicts: Vec::new(),
        };
        let conflict = |contested, winner: &CompiledRule, loser: &CompiledRule| Conflict {
            contested,
            winner: traced(winner, true),
            loser: traced(loser, true),
            ended_by: None,
        };
        let (mut rewrite, mut pool) = (None::<&CompiledRule>, None::<&CompiledRule>);
        let (mut request, mut response) = (Owners::default(), Owners::default());
        for (i, &rule) in applied.iter().enumerate() {
            let a = &rule.actions;
            for (first, has, contested) in [
                (&mut rewrite, a.rewrite.is_some(), Contested::Rewrite),
                (&mut pool, a.pool.is_some(), Contested::Pool),
            ] {
                match first {
                    _ if !has => {}
                    Some(w) => trace.conflicts.push(conflict(contested, w, rule)),
                    None => *first = Some(rule),
                }
            }
            for (name, owner) in request.claim(&a.request_headers, i) {
                let c = Contested::RequestHeader(name.clone());
                trace.conflicts.push(conflict(c, applied[owner], rule));
            }
            for (name, owner) in response.claim(&a.response_headers, i) {
                let c = Contested::ResponseHeader(name.clone());
                trace.conflicts.push(conflict(c, applied[owner], rule));
            }
        }
        if let (Some(&ender), false) = (applied.last(), skipped.is_empty()) {
            let ended_by = answers(ender).unwrap_or("stop: true");
            for &rule in skipped {
                let both_answer = answers(ender).is_some() && answers(rule).is_some();
                trace.rules.push(traced(rule, false));
                trace.conflicts.push(Conflict {
                    contested: if both_answer {
                        Contested::Answer
                    } else {
                        Contested::Ended
                    },
                    winner: traced(ender, true),
                    loser: traced(rule, false),
                    ended_by: Some(ended_by),
                });
            }
        }
        trace
    }
}

impl Conflict {
    /// Why the winner came first: its priority, or its place in the rules.
    pub fn reason(&self) -> String {
        let (w, l) = (&self.winner, &self.loser);
        if w.priority != l.priority {
            format!("higher priority ({} > {})", w.priority, l.priority)
        } else {
            format!(
                "same priority ({}), `{}` comes first in the rules",
                w.priority, w.id
            )
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, l) = (&self.winner.id, &self.loser.id);
        let ended_by = self.ended_by.unwrap_or("stop: true");
        match &self.contested {
            Contested::Answer => write!(f, "answer: `{w}` ({ended_by}) wins over `{l}`")?,
            Contested::Ended => {
                write!(f, "`{l}` not applied: `{w}` ended evaluation ({ended_by})")?
            }
            Contested::Rewrite => write!(f, "rewrite: `{w}` wins over `{l}`")?,
            Contested::Pool => write!(f, "pool: `{w}` wins over `{l}`")?,
            Contested::RequestHeader(n) => write!(f, "request header {n}: `{w}` wins over `{l}`")?,
            Contested::ResponseHeader(n) => {
                write!(f, "response header {n}: `{w}` wins over `{l}`")?
            }
        }
        write!(f, ": {}", self.reason())
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testutil::{req, rules};

    #[test]
    fn names_the_winner_of_every_conflict() {
        let set = rules(
            r"
- {id: hsts, priority: 10, response_headers: {set: {Strict-Transport-Security: a}}}
- {id: api, priority: 5, match: {path_prefix: /api/}, rewrite: {path: '/v2/{rest}'}, pool: api, request_headers: {set: {X-Env: prod}}}
- {id: api-old, match: {path_prefix: /api/}, rewrite: {path: '/v1/{rest}'}, pool: old, request_headers: {set: {X-Env: old, X-Other: '1'}}, response_headers: {remove: [strict-transport-security]}}
- {id: block, match: {path: /api/x}, respond: {status: 403}}
- {id: moved, match: {path: /api/x}, redirect: {to: /y}}
- {id: tail, match: {path: /api/x}, pool: z}
- {id: elsewhere, match: {path: /other}, redirect: {to: /z}}
",
        );
        let r = req("/api/x");
        let (plan, trace) = set.evaluate_traced(&r.view());
        assert_eq!(plan, set.evaluate(&r.view()));
        let rules: Vec<(&str, bool)> = trace.rules.iter().map(|t| (&*t.id, t.applied)).collect();
        assert_eq!(
            rules,
            [
                ("hsts", true),
                ("api", true),
                ("api-old", true),
                ("block", true),
                ("moved", false),
                ("tail", false)
            ]
        );
        let conflicts: Vec<String> = trace.conflicts.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            conflicts,
            [
                "rewrite: `api` wins over `api-old`: higher priority (5 > 0)",
                "pool: `api` wins over `api-old`: higher priority (5 > 0)",
                "request header x-env: `api` wins over `api-old`: higher priority (5 > 0)",
                "response header strict-transport-security: `hsts` wins over `api-old`: higher priority (10 > 0)",
                "answer: `block` (respond) wins over `moved`: same priority (0), `block` comes first in the rules",
                "`tail` not applied: `block` ended evaluation (respond): same priority (0), `block` comes first in the rules",
            ]
        );
    }

    #[test]
    fn stop_ends_evaluation_and_no_conflict_means_an_empty_list() {
        let set = rules(
            r"
- {id: first, priority: 2, stop: true, request_headers: {add: {X-A: '1'}}}
- {id: second, request_headers: {add: {X-A: '2'}}}
",
        );
        let (plan, trace) = set.evaluate_traced(&req("/").view());
        assert_eq!(plan.matched.len(), 1, "`second` is not applied");
        assert_eq!(trace.rules.len(), 2);
        assert_eq!(
            trace.conflicts.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            ["`second` not applied: `first` ended evaluation (stop: true): higher priority (2 > 0)"]
        );
        let quiet = rules("[{id: a, pool: p}, {id: b, request_headers: {set: {X-B: '1'}}}]");
        let (plan, trace) = quiet.evaluate_traced(&req("/").view());
        assert_eq!(plan.matched.len(), 2);
        assert!(trace.conflicts.is_empty(), "{trace:?}");
    }
}
