//! Rules at scale: match time per request and compile/load time for 10 to 100 000 rules of
//! exact paths, prefixes and regexes, for requests that hit a rule and requests that miss.
//!
//! `cargo bench --bench rules -- --warm-up-time 1 --measurement-time 3` measures all sizes;
//! under `cargo test` (no `--bench` argument) only the small sizes run, once each.

#[path = "common/rule_kinds.rs"]
mod rule_kinds;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rampart::rules::files::compile_project;
use rampart::rules::{Plan, RequestView, RuleSet};
use rule_kinds::{paths, view, KINDS};
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
            b.iter(|| compile_project(&[], &patterns, &|_| true, false).expect("loads"))
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
