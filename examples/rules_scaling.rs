//! Match time with many rules against 10 rules, measured interleaved: each round times a batch
//! of lookups on the small set and one on the large set, back to back (alternating which goes
//! first), and the figure is the median of the per-round ratios. Criterion measures one size
//! after the other, so on a shared machine a busy minute lands on one size only and moves the
//! ratio by half; here both sizes see the same minute.
//!
//! Usage: taskset -c 1 cargo run --release --example rules_scaling [-- ROUNDS [RULES [SET]]]
//!        (defaults: 31 rounds, 100 000 rules, every set; SET picks the sets whose name
//!        contains it, e.g. `prefix_miss`)

#[path = "../benches/common/rule_kinds.rs"]
mod rule_kinds;

use rampart::rules::RuleSet;
use rule_kinds::{paths, view, Kind, KINDS};
use std::hint::black_box;
use std::time::Instant;

/// Lookups per timed batch: a few milliseconds, long against the clock, short against noise.
const BATCH: usize = 40_000;

/// A rule set of one size and the request paths it is timed on.
struct TimedSet {
    set: RuleSet,
    paths: Vec<String>,
}

impl TimedSet {
    fn new(kind: Kind, rules: usize, hit: bool) -> TimedSet {
        let set = RuleSet::compile(&kind.rules(rules)).expect("the benchmark rules compile");
        let paths = paths(kind, rules, hit);
        let headers = http::HeaderMap::new();
        for p in &paths {
            let matched = set.evaluate(&view(p, &headers)).matched.len();
            assert_eq!(matched, usize::from(hit), "{kind:?} {p}");
        }
        TimedSet { set, paths }
    }

    /// Nanoseconds per lookup over one batch.
    fn time(&self) -> f64 {
        let headers = http::HeaderMap::new();
        let start = Instant::now();
        for k in 0..BATCH {
            let path = &self.paths[k % self.paths.len()];
            black_box(self.set.evaluate(&view(path, &headers)));
        }
        start.elapsed().as_nanos() as f64 / BATCH as f64
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .map(|a| a.parse().expect("ROUNDS and RULES are numbers"))
        .unwrap_or(default)
}

fn main() {
    let rounds = arg(1, 31).max(1);
    let rules = arg(2, 100_000);
    let only = std::env::args().nth(3).unwrap_or_default();
    println!("{rounds} interleaved rounds of {BATCH} lookups; ratio = time at {rules} rules / time at 10");
    println!(
        "{:<22} {:>10} {:>10} {:>8} {:>8} {:>8}",
        "set", "10 (ns)", "large (ns)", "ratio", "min", "max"
    );
    for kind in KINDS {
        for hit in [true, false] {
            let name = format!("{}_{}", kind.name(), if hit { "hit" } else { "miss" });
            if !name.contains(&only) {
                continue;
            }
            let small = TimedSet::new(kind, 10, hit);
            let large = TimedSet::new(kind, rules, hit);
            let (mut small_ns, mut large_ns, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                let (s, l) = if round % 2 == 0 {
                    (small.time(), large.time())
                } else {
                    let l = large.time();
                    (small.time(), l)
                };
                small_ns.push(s);
                large_ns.push(l);
                ratios.push(l / s);
            }
            let (min, max) = ratios
                .iter()
                .fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
            println!(
                "{:<22} {:>10.1} {:>10.1} {:>8.2} {:>8.2} {:>8.2}",
                name,
                median(&mut small_ns),
                median(&mut large_ns),
                median(&mut ratios),
                min,
                max
            );
        }
    }
}
