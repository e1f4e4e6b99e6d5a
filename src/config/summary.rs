//! The one-screen summary `rampart check` prints for a valid configuration. A fleet's file
//! with thousands of projects stays one screen (it is also printed by every
//! `systemctl reload`, into the journal): long lists show their first entries and count the
//! rest, unless `--all` asks for every one.

use super::model::*;
use std::fmt::Write;

/// Entries of a section shown before the rest are counted.
const SHOWN: usize = 10;
/// Hosts or backends shown on one line before the rest are counted.
const SHOWN_ON_LINE: usize = 4;

/// The first `SHOWN_ON_LINE` items joined with `sep`, then `+N more` (all with `all`).
fn joined(items: impl ExactSizeIterator<Item = String>, sep: &str, all: bool) -> String {
    let total = items.len();
    let shown = if all { total } else { SHOWN_ON_LINE.min(total) };
    let mut line = items.take(shown).collect::<Vec<_>>().join(sep);
    if shown < total {
        let _ = write!(line, "{sep}+{} more", total - shown);
    }
    line
}

/// Whether entry `i` of a section of `total` is shown; the line after the last shown one says
/// how many are not, then `what` (e.g. "projects; 4000 hosts in all").
fn shown(s: &mut String, i: usize, total: usize, all: bool, what: impl FnOnce() -> String) -> bool {
    if all || i < SHOWN {
        return true;
    }
    if i == SHOWN {
        let _ = writeln!(
            s,
            "  ... and {} more {} (`rampart check --all` lists every one)",
            total - SHOWN,
            what()
        );
    }
    false
}

pub fn summary(c: &Config, all: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}: OK (instance {})", c.file.display(), c.instance_name);
    let _ = writeln!(s, "listeners:");
    for l in &c.listeners {
        let tls = match &l.tls {
            Some(t) => format!(
                "tls (min {}, h2 {}){}",
                if t.min_version == TlsVersion::V1_3 {
                    "1.3"
                } else {
                    "1.2"
                },
                if t.http2 { "on" } else { "off" },
                cert_end(&t.cert)
            ),
            None if l.h2c => "plain http, h2c".into(),
            None => "plain http".into(),
        };
        let mut limit = l
            .max_connections
            .map(|n| format!(", max {n} connections"))
            .unwrap_or_default();
        if l.proxy_protocol {
            limit.push_str(", PROXY protocol");
        }
        if l.max_header_size != super::validate::DEFAULT_MAX_HEADER_SIZE {
            let _ = write!(
                limit,
                ", max_header_size {}",
                size(l.max_header_size as u64)
            );
        }
        let _ = writeln!(
            s,
            "  {:<12} {:<22} {tls}{limit}",
            l.name,
            l.address.to_string()
        );
    }
    let _ = writeln!(s, "projects:");
    for (i, p) in c.projects.iter().enumerate() {
        if !shown(&mut s, i, c.projects.len(), all, || {
            let hosts: usize = c.projects.iter().map(|p| p.hosts.len()).sum();
            let rules: usize = c.projects.iter().map(|p| p.rules.len()).sum();
            format!("projects; {hosts} hosts and {rules} rules in all")
        }) {
            break;
        }
        let mut extras = p
            .max_body_size
            .map(|n| format!("  max_body_size {}", size(n)))
            .unwrap_or_default();
        if let Some(n) = p.rate_limit {
            let _ = write!(extras, "  rate_limit {n}/s");
        }
        if let Some(level) = p.compression {
            let _ = write!(extras, "  compression {level}");
        }
        let pages: Vec<String> = p.error_pages.statuses().map(|s| s.to_string()).collect();
        if !pages.is_empty() {
            let _ = write!(extras, "  error_pages {}", pages.join(","));
        }
        let _ = writeln!(
            s,
            "  {:<12} hosts {}  listeners {}  pool {}  rules {}{}  fail_mode {}{}{}",
            p.name,
            joined(p.hosts.iter().cloned(), ",", all),
            p.listeners.join(","),
            p.pool.as_deref().unwrap_or("-"),
            p.rules.len(),
            if p.ignore_path_params {
                " (path params ignored)"
            } else {
                ""
            },
            p.fail_mode,
            extras,
            p.tls.as_ref().map(cert_end).unwrap_or_default()
        );
    }
    let _ = writeln!(s, "pools:");
    for (i, p) in c.pools.iter().enumerate() {
        if !shown(&mut s, i, c.pools.len(), all, || {
            let backends: usize = c.pools.iter().map(|p| p.backends.len()).sum();
            format!("pools; {backends} backends in all")
        }) {
            break;
        }
        let backends = p.backends.iter().map(|b| {
            // `check --no-resolve` leaves names unresolved, at an unspecified address.
            let unresolved = b.unresolved();
            let notes: Vec<String> = [
                unresolved.then(|| "not resolved".to_string()),
                (b.named && !unresolved).then(|| b.name.clone()),
                (b.weight != 1).then(|| format!("w{}", b.weight)),
            ]
            .into_iter()
            .flatten()
            .collect();
            let shown = if unresolved {
                b.name.clone()
            } else {
                b.address.to_string()
            };
            if notes.is_empty() {
                shown
            } else {
                format!("{shown} ({})", notes.join(", "))
            }
        });
        // How Rampart speaks to the backends, when not plain HTTP/1.1.
        let protocol = match (&p.tls, p.http2) {
            (None, false) => "",
            (None, true) => "  h2c",
            (Some(_), false) => "  tls",
            (Some(_), true) => "  tls h2",
        };
        let _ = writeln!(
            s,
            "  {:<12} {}{protocol}  health {}  backends {}{}",
            p.name,
            p.selection,
            p.health_check.kind,
            joined(backends, ", ", all),
            p.resolve_interval
                .map(|d| format!("  names resolved every {}", humantime::format_duration(d)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(s, "admin: http://{}", c.admin.listen);
    s
}

/// `  certificate until 2027-02-01`: the day a certificate file's chain stops working.
fn cert_end(pair: &CertPair) -> String {
    pair.ends.map_or_else(String::new, |at| {
        let day = chrono::DateTime::<chrono::Utc>::from(at).format("%Y-%m-%d");
        format!("  certificate until {day}")
    })
}

/// A size in bytes as it can be written in the file, exactly: `16KiB`, `10MiB`, `1500B`.
fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        0 => "0B".into(),
        n if n % (KIB * KIB * KIB) == 0 => format!("{}GiB", n / (KIB * KIB * KIB)),
        n if n % (KIB * KIB) == 0 => format!("{}MiB", n / (KIB * KIB)),
        n if n % KIB == 0 => format!("{}KiB", n / KIB),
        n => format!("{n}B"),
    }
}
