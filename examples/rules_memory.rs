//! How long loading a large CSV redirect file takes and how much resident memory the loaded
//! rules add, read from /proc/self/status (Linux).
//!
//! `cargo run --release --example rules_memory [RULES] [csv|regex|mix]` (default 100 000 CSV
//! redirects; `regex`: `path_regex` redirects, half anchored with a literal prefix, half not;
//! `mix`: a YAML rules file of 95 % exact-path redirects, 4 % prefix rewrites and 1 % regex
//! redirects, the shape of a large site's migration).
//! Also prints the peak resident memory added while loading (the set is built before the old
//! one is freed on a reload). Exits 1 when the CSV or mix targets are missed: load < 1 s,
//! < 100 MiB added.

use rampart::rules::files::compile_project;
use rampart::rules::{MatchSpec, RedirectSpec, RuleSpec};
use std::time::Instant;

/// A field of /proc/self/status in KiB: `VmRSS` (resident now) or `VmHWM` (the peak).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Rule count, resident memory added (KiB), the peak added while loading (KiB) and time
/// taken by `load`; what it loaded is kept until the memory has been read.
fn measure<T>(load: impl FnOnce() -> T, count: impl Fn(&T) -> usize) -> Measured {
    // Freed but still resident memory (the generated file text) would count in `before` and
    // then be reused by the load, hiding that much of what the rules take.
    rampart::alloc::release_free_memory();
    // Writing 5 there resets the peak (VmHWM) to the current size (Linux 4.0+).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS");
    let started = Instant::now();
    let loaded = load();
    let took = started.elapsed().as_secs_f64();
    let added = status_kib("VmRSS").saturating_sub(before);
    let peak = status_kib("VmHWM").saturating_sub(before);
    (count(&loaded), added, peak, took)
}

/// (rules, KiB added, KiB peak added, seconds)
type Measured = (usize, u64, u64, f64);

fn csv_rules(n: usize) -> Measured {
    let mut csv = String::from("source,target,status\n");
    for i in 0..n {
        csv.push_str(&format!(
            "/old/category-{}/product-{i}.html,https://www.shop.test/p/{i},301\n",
            i % 500
        ));
    }
    load_file("redirects.csv", csv)
}

fn mixed_yaml_rules(n: usize) -> Measured {
    let mut yaml = String::new();
    for i in 0..n {
        yaml.push_str(&match i % 100 {
            0 => format!("- {{ id: re{i}, match: {{ path_regex: '^/article/{i}/([0-9]+)$' }}, redirect: {{ to: '/a/{i}/{{1}}' }} }}\n"),
            1..=4 => format!("- {{ id: pre{i}, match: {{ path_prefix: /section-{i}/ }}, rewrite: {{ path: '/s{i}/{{rest}}' }} }}\n"),
            _ => format!("- {{ id: old{i}, match: {{ path: /old/page-{i}.html }}, redirect: {{ to: /new/page-{i} }} }}\n"),
        });
    }
    load_file("rules.yaml", yaml)
}

/// Writes `contents` to a rules file `name` (freeing the text) and measures loading it.
fn load_file(name: &str, contents: String) -> Measured {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(name);
    std::fs::write(&file, contents).expect("write the rules file");
    let patterns = [file.display().to_string()];
    measure(
        || compile_project(&[], &patterns, &|_| true, false).expect("the rules load"),
        |rules| rules.set.len(),
    )
}

fn regex_rules(n: usize) -> Measured {
    let specs: Vec<RuleSpec> = (0..n)
        .map(|i| {
            let matcher = MatchSpec {
                path_regex: Some(if i % 2 == 0 {
                    format!("^/r{i}/([0-9]+)$")
                } else {
                    format!("/u{i}-[a-z]+$")
                }),
                ..MatchSpec::default()
            };
            RuleSpec {
                redirect: Some(RedirectSpec {
                    to: format!("/n/{i}"),
                    status: 301,
                    keep_query: true,
                }),
                ..RuleSpec::new(format!("r{i}"), matcher)
            }
        })
        .collect();
    measure(
        || compile_project(&specs, &[], &|_| true, false).expect("the regexes compile"),
        |rules| rules.set.len(),
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = match args.next().map(|a| a.parse()) {
        None => 100_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: rules_memory [RULES] [csv|regex|mix]: {e}");
            std::process::exit(2);
        }
    };
    let kind = args.next().unwrap_or_else(|| "csv".into());
    let (count, added_kib, peak_kib, took) = match kind.as_str() {
        "csv" => csv_rules(n),
        "regex" => regex_rules(n),
        "mix" => mixed_yaml_rules(n),
        other => {
            eprintln!("usage: rules_memory [RULES] [csv|regex|mix]: unknown kind `{other}`");
            std::process::exit(2);
        }
    };
    let added_mib = added_kib as f64 / 1024.0;
    println!(
        "{count} {kind} rules loaded in {:.0} ms, RSS +{added_mib:.1} MiB ({:.0} bytes per rule), +{:.1} MiB at the peak of the load",
        took * 1e3,
        added_kib as f64 * 1024.0 / count.max(1) as f64,
        peak_kib as f64 / 1024.0,
    );
    if kind != "regex" && (took >= 1.0 || added_mib >= 100.0) {
        println!("target missed: load < 1 s and < 100 MiB added");
        std::process::exit(1);
    }
}
