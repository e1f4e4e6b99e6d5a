//! Rules: compile a list of [`RuleSpec`] into a [`RuleSet`], evaluate a request into a
//! [`Plan`] of actions. Exact-path rules are found by hash lookup; the others are scanned in
//! priority order. `evaluate_reference` checks every rule and is kept as the reference the
//! indexed evaluation must agree with.

mod compile;
mod evaluate;
mod normalize;
mod spec;
mod template;

pub use normalize::normalize_path;
pub use spec::*;

use compile::{CompiledRule, PathMatch};
use evaluate::{PlanBuilder, Subject};
use http::{HeaderName, HeaderValue};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A problem in one rule: `index` into the compiled list, `field` inside the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {index}: {field}: {message}")]
pub struct RuleError {
    pub index: usize,
    pub field: String,
    pub message: String,
}

/// What rules see of a request.
pub struct RequestView<'a> {
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Lowercase, without port.
    pub host: &'a str,
    /// The raw path as received (without query).
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub client_ip: Option<IpAddr>,
    pub request_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOp {
    Set(HeaderName, HeaderValue),
    Add(HeaderName, HeaderValue),
    Remove(HeaderName),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Outcome {
    #[default]
    Forward,
    Redirect {
        status: u16,
        location: HeaderValue,
    },
    Respond {
        status: u16,
        body: bytes::Bytes,
        content_type: HeaderValue,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFailure {
    pub rule_id: Arc<str>,
    pub reason: String,
}

/// The result of evaluating the rules for one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Ids of the matching rules, in evaluation order.
    pub matched: Vec<Arc<str>>,
    pub outcome: Outcome,
    /// Path and query to send upstream instead of the original.
    pub rewrite: Option<String>,
    pub pool: Option<Arc<str>>,
    pub request_headers: Vec<HeaderOp>,
    pub response_headers: Vec<HeaderOp>,
    /// A matching rule could not be rendered: everything else is empty (fail-open).
    pub failure: Option<RuleFailure>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self == &Plan::default()
    }
}

#[derive(Debug, Default)]
pub struct RuleSet {
    /// Sorted by priority (descending), then file order: a rule's position is its rank.
    rules: Vec<CompiledRule>,
    /// Normalized exact path → ranks (ascending).
    exact: HashMap<String, Vec<u32>>,
    /// Same for case-insensitive exact rules, keyed lowercase.
    exact_ci: HashMap<String, Vec<u32>>,
    /// Every other rule's rank (ascending).
    scanned: Vec<u32>,
    /// Whether any rule compares the path case-insensitively.
    any_ci: bool,
}

impl RuleSet {
    /// Compiles `specs`; every error of every rule is returned.
    pub fn compile(specs: &[RuleSpec]) -> Result<RuleSet, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut rules = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            if let Some(first) = seen.insert(spec.id.as_str(), i) {
                errors.push(RuleError { index: i, field: "id".into(), message: format!("duplicate rule id `{}` (also rule {first}): ids must be unique within a project", spec.id) });
            }
            if let Some(rule) = compile::compile_rule(i, spec, &mut errors) {
                rules.push(rule);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        rules.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.order.cmp(&b.order)));
        let mut set = RuleSet {
            any_ci: rules.iter().any(|r| r.case_insensitive),
            ..RuleSet::default()
        };
        for (rank, r) in rules.iter().enumerate() {
            let rank = rank as u32;
            match (&r.path, r.case_insensitive) {
                (PathMatch::Exact(p), false) => set.exact.entry(p.clone()).or_default().push(rank),
                (PathMatch::Exact(p), true) => {
                    set.exact_ci.entry(p.clone()).or_default().push(rank)
                }
                _ => set.scanned.push(rank),
            }
        }
        set.rules = rules;
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rule ids in evaluation order.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| &*r.id)
    }

    /// `(rule id, index in the input, pool)` of every rule that routes to a pool.
    pub fn pools(&self) -> impl Iterator<Item = (&str, usize, &str)> {
        self.rules
            .iter()
            .filter_map(|r| Some((&*r.id, r.order, r.pool.as_deref()?)))
    }

    fn run(&self, req: &RequestView<'_>, candidates: impl Iterator<Item = u32>) -> Plan {
        let path = normalize_path(req.path);
        let lower = self.any_ci.then(|| path.to_lowercase());
        let subject = Subject {
            path: &path,
            lower: lower.as_deref(),
        };
        let mut builder = PlanBuilder::new();
        for rank in candidates {
            let rule = &self.rules[rank as usize];
            if let Some(hit) = rule.matches(req, &subject) {
                match builder.apply(rule, req, &subject, &hit) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(failure) => {
                        return Plan {
                            failure: Some(failure),
                            ..Plan::default()
                        }
                    }
                }
            }
        }
        builder.finish()
    }

    /// Evaluates using the index: only rules whose exact path equals the request's, and the
    /// non-exact rules, are checked.
    pub fn evaluate(&self, req: &RequestView<'_>) -> Plan {
        if self.rules.is_empty() {
            return Plan::default();
        }
        let path = normalize_path(req.path);
        let empty: &[u32] = &[];
        let exact = self.exact.get(path.as_ref()).map_or(empty, Vec::as_slice);
        let exact_ci = if self.exact_ci.is_empty() {
            empty
        } else {
            self.exact_ci
                .get(&path.to_lowercase())
                .map_or(empty, Vec::as_slice)
        };
        self.run(req, Merge3::new(exact, exact_ci, &self.scanned))
    }

    /// Checks every rule in order: slow, obviously right.
    pub fn evaluate_reference(&self, req: &RequestView<'_>) -> Plan {
        self.run(req, 0..self.rules.len() as u32)
    }
}

/// Merges three ascending rank lists without allocating.
struct Merge3<'a> {
    lists: [&'a [u32]; 3],
}

impl<'a> Merge3<'a> {
    fn new(a: &'a [u32], b: &'a [u32], c: &'a [u32]) -> Self {
        Merge3 { lists: [a, b, c] }
    }
}

impl Iterator for Merge3<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        let (i, _) = self
            .lists
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((i, *l.first()?)))
            .min_by_key(|(_, v)| *v)?;
        let v = self.lists[i][0];
        self.lists[i] = &self.lists[i][1..];
        Some(v)
    }
}

#[cfg(test)]
mod tests;
