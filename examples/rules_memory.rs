//! How long loading a large CSV redirect file takes and how much resident memory the loaded
//! rules add, read from /proc/self/status (Linux).
//!
//! `cargo run --release --example rules_memory [RULES]` (default 100 000). Exits 1 when the
//! targets are missed: load < 1 s, < 100 MiB added.

use rampart::rules::files::compile_project;
use std::time::Instant;

/// Resident set size in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn main() {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 100_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: rules_memory [RULES]: {e}");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("redirects.csv");
    let mut csv = String::from("source,target,status\n");
    for i in 0..n {
        csv.push_str(&format!(
            "/old/category-{}/product-{i}.html,https://www.shop.test/p/{i},301\n",
            i % 500
        ));
    }
    std::fs::write(&file, &csv).expect("write CSV");
    drop(csv);
    let patterns = [file.display().to_string()];

    let before = rss_kib();
    let started = Instant::now();
    let rules = compile_project(&[], &patterns).expect("the CSV loads");
    let took = started.elapsed();
    let after = rss_kib();
    let added_mib = after.saturating_sub(before) as f64 / 1024.0;
    println!(
        "{} rules loaded from CSV in {:.0} ms, RSS {:.1} MiB -> {:.1} MiB: +{added_mib:.1} MiB ({:.0} bytes per rule)",
        rules.set.len(),
        took.as_secs_f64() * 1e3,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        added_mib * 1024.0 * 1024.0 / n.max(1) as f64,
    );
    if took.as_secs_f64() >= 1.0 || added_mib >= 100.0 {
        println!("target missed: load < 1 s and < 100 MiB added");
        std::process::exit(1);
    }
}
