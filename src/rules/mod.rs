//! Rules: the per-project list of `match` conditions and actions (redirect, respond, rewrite,
//! pool, header operations), compiled once into a [`RuleSet`] and evaluated on every request
//! into a [`Plan`] the proxy carries out.
//!
//! - [`spec`]: the rules as written (serde, unknown keys rejected).
//! - `compile`: spec → compiled rule (regexes built, templates parsed, names validated); every
//!   problem becomes a [`RuleError`] naming the rule index and the key path.
//! - `normalize`: the path rules match on (`/%61dmin`, `//admin`, `/x/../admin` → `/admin`).
//! - `matcher`: the conditions of one rule; `template`: `{path}`, `{1}`, `{rest}`, …
//! - `partition`: the index, rules partitioned by host and method, then by path: exact paths
//!   hashed (`index`), prefixes and anchored regexes' literal prefixes hashed when they end
//!   with `/` (`dir_prefix`) and in a radix tree otherwise (`prefix`, `regex_index`; a
//!   Bloom filter in front of a large tree, `prefix_filter`),
//!   unanchored regexes by a literal they require (`literal_index`, one Aho-Corasick scan),
//!   the rest searched in groups (`regex_index`).
//! - `evaluate`: [`RuleSet`], indexed and reference evaluation; `trace`: why rules won.
//! - `actions`: compiled actions and their rendering (checked URIs and header values).
//! - `plan`: folding matched rules into a [`Plan`] (priority and conflict semantics).
//!
//! The module only refers to itself and to std, serde (and schemars, for the configuration's
//! schema), regex, regex-syntax, regex-automata, aho-corasick, smallvec, ahash, ipnet, http,
//! bytes, thiserror, log; `files` also reads files (csv, serde_yaml, glob) and, after a load, hands
//! the freed memory back (`crate::alloc`).

mod actions;
mod compile;
mod compile_actions;
mod compile_match;
mod csv_file;
mod csv_names;
mod dir_prefix;
mod evaluate;
pub mod files;
mod index;
#[cfg(test)]
mod index_props;
mod literal_index;
mod matcher;
mod normalize;
mod partition;
mod path_regex;
mod plan;
mod prefix;
mod prefix_filter;
mod regex_index;
pub mod spec;
mod template;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
mod trace;
mod uri;
mod yaml_batches;

pub use compile_actions::is_hop_by_hop;
pub use evaluate::RuleSet;
pub use normalize::{normalize_path, PathMatching};
pub use plan::{HeaderOp, Outcome, Plan, RuleFailure};
pub use spec::{HeaderOpsSpec, MatchSpec, RedirectSpec, RespondSpec, RewriteSpec, RuleSpec};
pub use trace::{Conflict, Contested, Trace, TracedRule};

/// What rules see of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Lowercase, port stripped.
    pub host: &'a str,
    /// The raw path as received, without the query.
    pub path: &'a str,
    /// The raw query, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub client_ip: Option<std::net::IpAddr>,
    pub request_id: &'a str,
}

/// A problem in one rule, found while compiling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    /// Index of the rule in the slice given to [`RuleSet::compile`].
    pub index: usize,
    /// Key path inside the rule, e.g. `match.path_regex`, `redirect.status`, `id`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The other rule an error is about (the first holder of a repeated id), by index, so
    /// that rules files can name where it is.
    pub other: Option<usize>,
}
