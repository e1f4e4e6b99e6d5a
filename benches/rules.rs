//! Rules at scale: match time per request and compile/load time for 10 to 100 000 rules of
//! exact paths, prefixes and regexes, for requests that hit a rule and requests that miss.
//!
//! `cargo bench --bench rules -- --warm-up-time 1 --measurement-time 3` measures all sizes;
//! under `cargo test` (no `--bench` argument) only the small sizes run, once each.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rampart::rules::files::compile_project;
use rampart::rules::{MatchSpec, Plan, RedirectSpec, RequestView, RewriteSpec, RuleSet, RuleSpec};
use std::cell::OnceCell;
use std::hint::black_box;
use std::time::Duration;

fn sizes() -> &'static [usize] {
    if std::env::args().any(|a| a == "--bench") {
        &[10, 1_000, 10_000, 100_000]
    } else {
        &[10, 1_000]
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `match.path` redirects, like a CSV redirect map.
    Exact,
    /// `match.path_prefix` rewrites.
    Prefix,
    /// Anchored regexes with a literal prefix, the common form (`^/r12/([0-9]+)$`).
    Regex,
    /// Regexes without a literal prefix; each requires a literal (`/u12-`), found by scan.
    Unanchored,
}

const KINDS: [Kind; 4] = [Kind::Exact, Kind::Prefix, Kind::Regex, Kind::Unanchored];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Exact => "exact",
            Kind::Prefix => "prefix",
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
            Kind::Prefix => {
                matcher.path_prefix = Some(format!("/s{i}/"));
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

    fn rules(self, n: usize) -> Vec<RuleSpec> {
        (0..n).map(|i| self.rule(i)).collect()
    }

    /// A path that matches rule `i`, or one that nearly does (same beginning).
    fn path(self, i: usize, hit: bool) -> String {
        match (self, hit) {
            (Kind::Exact, true) => format!("/old/{i}/page"),
            (Kind::Exact, false) => format!("/old/{i}/other"),
            (Kind::Prefix, true) => format!("/s{i}/item/7"),
            (Kind::Prefix, false) => format!("/s{i}x/item/7"),
            (Kind::Regex, true) => format!("/r{i}/123"),
            (Kind::Regex, false) => format!("/r{i}/abc"),
            (Kind::Unanchored, true) => format!("/x/u{i}-abc"),
            (Kind::Unanchored, false) => format!("/x/u{i}-123"),
        }
    }
}

/// 256 request paths spread over the rules, so that lookups are not all the same one.
fn paths(kind: Kind, n: usize, hit: bool) -> Vec<String> {
    (0..256).map(|k| kind.path(k * n / 256, hit)).collect()
}

fn view<'a>(path: &'a str, headers: &'a http::HeaderMap) -> RequestView<'a> {
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

fn matching(c: &mut Criterion) {
    let headers = http::HeaderMap::new();
    let mut group = c.benchmark_group("match");
    for kind in KINDS {
        for &n in sizes() {
            // Built on first use: a filtered run (`-- match/exact`) compiles only what it needs.
            let set = OnceCell::new();
            let set = || set.get_or_init(|| RuleSet::compile(&kind.rules(n)).expect("compiles"));
            for hit in [true, false] {
                let paths = paths(kind, n, hit);
                let label = format!("{}_{}", kind.name(), if hit { "hit" } else { "miss" });
                let mut bench = |name: String, evaluate: fn(&RuleSet, &RequestView<'_>) -> Plan| {
                    group.bench_function(BenchmarkId::new(name, n), |b| {
                        let set = set();
                        let matched = evaluate(set, &view(&paths[1], &headers)).matched.len();
                        assert_eq!(matched, usize::from(hit), "{kind:?} {}", paths[1]);
                        let mut k = 0;
                        b.iter(|| {
                            k = (k + 1) % paths.len();
                            black_box(evaluate(set, &view(&paths[k], &headers)))
                        })
                    });
                };
                bench(label.clone(), RuleSet::evaluate);
                if n == 1_000 {
                    bench(label + "_scan_all", RuleSet::evaluate_reference);
                }
            }
        }
    }
    group.finish();
}

fn compiling(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for kind in KINDS {
        for &n in sizes() {
            let specs = kind.rules(n);
            group.bench_function(BenchmarkId::new(kind.name(), n), |b| {
                b.iter(|| RuleSet::compile(black_box(&specs)).expect("compiles"))
            });
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for &n in sizes() {
        let file = dir.path().join(format!("redirects-{n}.csv"));
        let mut csv = String::from("source,target,status\n");
        for i in 0..n {
            csv.push_str(&format!(
                "/old/{i}/page,https://www.shop.test/new/{i},301\n"
            ));
        }
        std::fs::write(&file, csv).expect("write CSV");
        let patterns = [file.display().to_string()];
        group.bench_function(BenchmarkId::new("csv_file", n), |b| {
            b.iter(|| compile_project(&[], &patterns, &|_| true).expect("loads"))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = matching, compiling
}
criterion_main!(benches);
