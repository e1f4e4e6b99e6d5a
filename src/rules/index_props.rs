//! Property test: the indexed evaluation and the reference (every rule in order) give the
//! same plan, for random rule sets mixing every condition and action, and random requests
//! aimed at those rules (their paths, bent by normalization bypasses and case changes).

use crate::rules::testutil::{req, Req};
use crate::rules::{HeaderOpsSpec, MatchSpec, RedirectSpec, RespondSpec, RewriteSpec};
use crate::rules::{Outcome, RuleSet, RuleSpec};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use std::cell::Cell;
use std::collections::BTreeMap;

const SEGMENTS: &[&str] = &[
    "a", "A", "admin", "Admin", "blog", "p", "1", "22", "é", "x.y", "%2F", "b",
];

/// A path of 0 to 3 segments, maybe with a trailing slash.
fn path() -> impl Strategy<Value = String> {
    (prop::collection::vec(select(SEGMENTS), 0..4), any::<bool>()).prop_map(|(segs, slash)| {
        let mut p: String = segs.iter().flat_map(|s| ["/", s]).collect();
        if slash || p.is_empty() {
            p.push('/');
        }
        p
    })
}

/// The path condition, as (kind, base path, regex variant).
#[derive(Debug, Clone)]
enum PathCond {
    None,
    Exact(String),
    Prefix(String),
    /// Every variant has exactly one capture group.
    Regex(String, usize),
}

fn regex_source(base: &str, variant: usize) -> String {
    let e = regex::escape(base);
    let last = base.trim_end_matches('/').rsplit('/').next().unwrap_or("a");
    match variant {
        0 => format!("^{e}(/.*)?$"),
        1 => format!("^{e}([0-9]*)$"),
        2 => format!("({})$", regex::escape(last)),
        3 => "^/(a|blog)".to_string(),
        4 => format!("(?i)^{e}(.*)"),
        5 => format!("^({e})"),
        6 => format!("^{e}x?(.)"),
        // Unanchored, found by the literal they contain (the last segment, the whole path).
        7 => format!("(?i){}(/|$)", regex::escape(last)),
        _ => format!("[0-9]*{e}(.?)$"),
    }
}

fn path_cond() -> impl Strategy<Value = PathCond> {
    prop_oneof![
        2 => Just(PathCond::None),
        4 => path().prop_map(PathCond::Exact),
        3 => path().prop_map(PathCond::Prefix),
        3 => (path(), 0..9usize).prop_map(|(p, v)| PathCond::Regex(p, v)),
    ]
}

fn maybe<T: Clone + std::fmt::Debug + 'static>(
    percent: u32,
    items: &'static [T],
) -> impl Strategy<Value = Option<T>> {
    proptest::option::weighted(f64::from(percent) / 100.0, select(items))
}

const HOSTS: &[&str] = &[
    "shop.test",
    "*.shop.test",
    "a.shop.test",
    "*.a.shop.test",
    "other.test",
    "SHOP.test",
];
const METHODS: &[&[&str]] = &[
    &["GET"],
    &["post", "GET"],
    &["HEAD", "GET", "get"],
    &["PUT"],
];
const HEADER_MATCHES: &[&str] = &["*", "1", "~^[0-9]$"];
const QUERY_MATCHES: &[&str] = &["*", "a b"];
const NETS: &[&[&str]] = &[&["10.0.0.0/8"], &["2001:db8::/32", "192.0.2.7"]];
const HEADER_NAMES: &[&str] = &["X-One", "x-one", "X-Two"];

/// Header operations: (kind 0 set, 1 add, 2 remove; name) pairs, a name at most once per
/// kind (a second one would be a compile error).
fn header_ops(id: usize) -> impl Strategy<Value = Option<HeaderOpsSpec>> {
    let ops = prop::collection::vec((0..3usize, select(HEADER_NAMES), any::<bool>()), 1..4);
    proptest::option::weighted(0.4, ops).prop_map(move |ops| {
        let mut spec = HeaderOpsSpec::default();
        for (kind, name, templated) in ops? {
            let taken = |mut names: std::slice::Iter<'_, String>| {
                names.any(|n| n.eq_ignore_ascii_case(name))
            };
            let set: Vec<String> = spec.set.keys().cloned().collect();
            let add: Vec<String> = spec.add.keys().cloned().collect();
            let value = if templated {
                "{host}".to_string()
            } else {
                format!("r{id}")
            };
            match kind {
                0 if !taken(set.iter()) => drop(spec.set.insert(name.into(), value)),
                1 if !taken(add.iter()) => drop(spec.add.insert(name.into(), value)),
                2 if !taken(spec.remove.iter()) => spec.remove.push(name.into()),
                _ => {}
            }
        }
        Some(spec)
    })
}

fn rule(id: usize) -> impl Strategy<Value = (RuleSpec, Option<String>)> {
    let conditions = (
        path_cond(),
        any::<bool>(),
        maybe(25, HOSTS),
        maybe(20, METHODS),
        maybe(10, &["http", "https"]),
        maybe(15, HEADER_MATCHES),
        maybe(10, QUERY_MATCHES),
        maybe(10, NETS),
        proptest::bool::weighted(0.1),
    );
    let actions = (
        0..4i32,
        0..10usize,
        any::<bool>(),
        proptest::option::weighted(0.25, any::<bool>()),
        maybe(25, &["p1", "p2", "p3"]),
        header_ops(id),
        header_ops(id),
        proptest::bool::weighted(0.1),
    );
    (conditions, actions).prop_map(move |(c, a)| {
        let (path, ci, host, methods, scheme, header, query, nets, not_b) = c;
        let (priority, answer, keep_query, rewrite_query, pool, req_h, resp_h, stop) = a;
        let mut m = MatchSpec {
            case_insensitive: ci,
            host: host.map(str::to_string),
            methods: methods.map(|l| l.iter().map(|s| s.to_string()).collect()),
            scheme: scheme.map(str::to_string),
            headers: header.map(|v| BTreeMap::from([("X-A".to_string(), v.to_string())])),
            query: query.map(|v| BTreeMap::from([("q".to_string(), v.to_string())])),
            not_headers: not_b.then(|| vec!["X-B".to_string()]),
            client_ip: nets.map(|l| l.iter().map(|s| s.to_string()).collect()),
            ..MatchSpec::default()
        };
        let (base, var) = match path {
            PathCond::None => (None, "{path}"),
            PathCond::Exact(p) => {
                m.path = Some(p.clone());
                (Some(p), "{path}")
            }
            PathCond::Prefix(p) => {
                m.path_prefix = Some(p.clone());
                (Some(p), "{rest}")
            }
            PathCond::Regex(p, v) => {
                m.path_regex = Some(regex_source(&p, v));
                (Some(p), "{1}")
            }
        };
        let spec = RuleSpec {
            id: format!("r{id}"),
            priority,
            matcher: m,
            redirect: (answer == 0).then(|| RedirectSpec {
                // A value in the port fails to render unless it is digits: render failures.
                to: match id % 2 {
                    0 => format!("//h:{var}/{id}"),
                    _ => format!("/to/{id}/{var}"),
                },
                status: 302,
                keep_query,
            }),
            respond: (answer == 1).then(|| RespondSpec {
                status: 403,
                body: format!("{id} {var}"),
                content_type: None,
                headers: None,
            }),
            rewrite: rewrite_query.map(|with_query| RewriteSpec {
                path: Some(format!("/r/{var}")),
                query: with_query.then(|| "x={query}".to_string()),
            }),
            pool: pool.map(str::to_string),
            request_headers: req_h,
            response_headers: resp_h,
            stop,
        };
        (spec, base)
    })
}

/// A request, as plain data.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    query: Option<&'static str>,
    method: &'static str,
    scheme: &'static str,
    host: &'static str,
    x_a: Option<&'static str>,
    x_b: bool,
    ip: Option<&'static str>,
}

impl Request {
    fn build(&self) -> Req {
        let mut r = req(&self.path)
            .method(self.method)
            .scheme(self.scheme)
            .host(self.host)
            .ip(self.ip);
        r.query = self.query.map(str::to_string);
        if let Some(v) = self.x_a {
            r = r.header("x-a", v);
        }
        if self.x_b {
            r = r.header("x-b", "");
        }
        r
    }
}

/// `base` bent the ways clients (and attackers) write paths.
fn bend(base: &str, how: usize) -> String {
    let tail = &base[1..];
    match how {
        0 => base.to_string(),
        1 => base.to_uppercase(),
        2 => base.replacen('/', "//", 1),
        3 => format!("/./{tail}"),
        4 => format!("/x/../{tail}"),
        5 => base.replacen('a', "%61", 1).replacen('A', "%41", 1),
        6 => format!("{base}/more"),
        7 => format!("{base}7"),
        8 => base[..base.len() - base.chars().last().map_or(0, char::len_utf8)].to_string(),
        9 => format!("/%2e%2e/{tail}"),
        10 => format!("{base}/"),
        _ => base
            .replacen("blog", "BLOG", 1)
            .replacen("admin", "aDmin", 1),
    }
}

fn request(bases: Vec<String>) -> impl Strategy<Value = Request> {
    (
        (select(bases), 0..12usize),
        maybe(40, &["q=a+b", "q", "z=1"]),
        select(&["GET", "POST", "HEAD", "get", "PUT"][..]),
        select(&["http", "https"][..]),
        select(
            &[
                "shop.test",
                "a.shop.test",
                "b.a.shop.test",
                "other.test",
                "SHOP.TEST",
                "shop.test.",
                "x",
            ][..],
        ),
        maybe(40, &["1", "22"]),
        proptest::bool::weighted(0.1),
        maybe(
            80,
            &[
                "10.1.2.3",
                "192.0.2.7",
                "::ffff:10.0.0.1",
                "2001:db8::1",
                "203.0.113.9",
            ],
        ),
    )
        .prop_map(
            |((base, how), query, method, scheme, host, x_a, x_b, ip)| Request {
                path: bend(&base, how),
                query,
                method,
                scheme,
                host,
                x_a,
                x_b,
                ip,
            },
        )
}

/// Up to 40 rules and 30 requests aimed at their paths.
fn rules_and_requests() -> impl Strategy<Value = (Vec<RuleSpec>, Vec<Request>)> {
    (1..40usize)
        .prop_flat_map(|n| (0..n).map(rule).collect::<Vec<_>>())
        .prop_flat_map(|rules| {
            let mut bases: Vec<String> = rules.iter().filter_map(|(_, b)| b.clone()).collect();
            bases.extend(["/", "/admin", "/blog/p/1"].map(String::from));
            let specs: Vec<RuleSpec> = rules.into_iter().map(|(s, _)| s).collect();
            (Just(specs), prop::collection::vec(request(bases), 30))
        })
}

#[test]
fn indexed_evaluation_agrees_with_the_reference() {
    let config = Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    };
    let (matched, failed, stopped) = (Cell::new(0), Cell::new(0), Cell::new(0));
    let mut runner = TestRunner::new(config);
    let result = runner.run(&rules_and_requests(), |(specs, requests)| {
        let set = RuleSet::compile(&specs).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        for r in &requests {
            let built = r.build();
            let plan = set.evaluate(&built.view());
            prop_assert_eq!(&plan, &set.evaluate_reference(&built.view()), "{:?}", r);
            let (traced, _) = set.evaluate_traced(&built.view());
            prop_assert_eq!(&plan, &traced, "traced evaluation differs: {:?}", r);
            matched.set(matched.get() + plan.matched.len());
            failed.set(failed.get() + usize::from(plan.failure.is_some()));
            stopped.set(stopped.get() + usize::from(plan.outcome != Outcome::Forward));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generator must exercise matches, answers and render failures, not only misses.
    let (matched, failed, stopped) = (matched.get(), failed.get(), stopped.get());
    assert!(
        matched > 10_000 && failed > 100 && stopped > 1_000,
        "{matched} {failed} {stopped}"
    );
}
