//! The rule sets and request paths the rules benchmarks share (`benches/rules.rs`,
//! `examples/rules_scaling.rs`): exact paths, prefixes and regexes, for requests that hit a
//! rule and requests that miss.

use rampart::rules::{MatchSpec, RedirectSpec, RequestView, RewriteSpec, RuleSpec};

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `match.path` redirects, like a CSV redirect map.
    Exact,
    /// `match.path_prefix` rewrites on directories (`/s12/`), the usual form: hashed.
    Prefix,
    /// `match.path_prefix` rewrites not ending with `/` (`/p12-`): in the radix tree.
    OpenPrefix,
    /// Anchored regexes with a literal prefix, the common form (`^/r12/([0-9]+)$`).
    Regex,
    /// Regexes without a literal prefix; each requires a literal (`/u12-`), found by scan.
    Unanchored,
}

pub const KINDS: [Kind; 5] = [
    Kind::Exact,
    Kind::Prefix,
    Kind::OpenPrefix,
    Kind::Regex,
    Kind::Unanchored,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Exact => "exact",
            Kind::Prefix => "prefix",
            Kind::OpenPrefix => "open_prefix",
            Kind::Regex => "regex",
            Kind::Unanchored => "unanchored_regex",
        }
    }

    fn rule(self, i: usize) -> RuleSpec {
        let mut matcher = MatchSpec::default();
        let (mut redirect, mut rewrite) = (None, None);
        let to = |to: String| {
            Some(RedirectSpec {
                to,
                status: 301,
                keep_query: true,
            })
        };
        match self {
            Kind::Exact => {
                matcher.path = Some(format!("/old/{i}/page"));
                redirect = to(format!("/new/{i}"));
            }
            Kind::Prefix | Kind::OpenPrefix => {
                matcher.path_prefix = Some(match self {
                    Kind::Prefix => format!("/s{i}/"),
                    _ => format!("/p{i}-"),
                });
                rewrite = Some(RewriteSpec {
                    path: Some(format!("/v2/{i}/{{rest}}")),
                    query: None,
                });
            }
            Kind::Regex => {
                matcher.path_regex = Some(format!("^/r{i}/([0-9]+)$"));
                redirect = to(format!("/n/{i}/{{1}}"));
            }
            Kind::Unanchored => {
                matcher.path_regex = Some(format!("/u{i}-[a-z]+$"));
                redirect = to(format!("/n/{i}"));
            }
        }
        RuleSpec {
            redirect,
            rewrite,
            ..RuleSpec::new(format!("{}{i}", self.name()), matcher)
        }
    }

    pub fn rules(self, n: usize) -> Vec<RuleSpec> {
        (0..n).map(|i| self.rule(i)).collect()
    }

    /// A path that matches rule `i`, or one that nearly does.
    fn path(self, i: usize, hit: bool) -> String {
        match (self, hit) {
            (Kind::Exact, true) => format!("/old/{i}/page"),
            (Kind::Exact, false) => format!("/old/{i}/other"),
            (Kind::Prefix, true) => format!("/s{i}/item/7"),
            // A directory no rule names, as long as rule i's: the hash is probed, and misses.
            (Kind::Prefix, false) => format!("/t{i}/item/7"),
            (Kind::OpenPrefix, true) => format!("/p{i}-blue/7"),
            // Walks the tree down to rule i's last byte.
            (Kind::OpenPrefix, false) => format!("/p{i}x-blue/7"),
            (Kind::Regex, true) => format!("/r{i}/123"),
            (Kind::Regex, false) => format!("/r{i}/abc"),
            (Kind::Unanchored, true) => format!("/x/u{i}-abc"),
            (Kind::Unanchored, false) => format!("/x/u{i}-123"),
        }
    }
}

/// 256 request paths spread over the rules, so that lookups are not all the same one.
pub fn paths(kind: Kind, n: usize, hit: bool) -> Vec<String> {
    (0..256).map(|k| kind.path(k * n / 256, hit)).collect()
}

pub fn view<'a>(path: &'a str, headers: &'a http::HeaderMap) -> RequestView<'a> {
    RequestView {
        method: "GET",
        scheme: "https",
        host: "shop.test",
        path,
        query: Some("ref=bench"),
        headers,
        client_ip: None,
        request_id: "bench",
    }
}
