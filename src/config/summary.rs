//! The one-screen summary `rampart check` prints for a valid configuration.

use super::model::*;
use std::fmt::Write;

pub fn summary(c: &Config) -> String {
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
            None => "plain http".into(),
        };
        let mut limit = l
            .max_connections
            .map(|n| format!(", max {n} connections"))
            .unwrap_or_default();
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
    for p in &c.projects {
        let _ = writeln!(
            s,
            "  {:<12} hosts {}  listeners {}  pool {}  rules {}{}  fail_mode {}{}{}",
            p.name,
            p.hosts.join(","),
            p.listeners.join(","),
            p.pool.as_deref().unwrap_or("-"),
            p.rules.len(),
            if p.ignore_path_params {
                " (path params ignored)"
            } else {
                ""
            },
            p.fail_mode,
            p.max_body_size
                .map(|n| format!("  max_body_size {}", size(n)))
                .unwrap_or_default(),
            p.tls.as_ref().map(cert_end).unwrap_or_default()
        );
    }
    let _ = writeln!(s, "pools:");
    for p in &c.pools {
        let backends: Vec<String> = p
            .backends
            .iter()
            .map(|b| {
                if b.weight == 1 {
                    b.address.to_string()
                } else {
                    format!("{} (w{})", b.address, b.weight)
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "  {:<12} {}  health {}  backends {}",
            p.name,
            p.selection,
            p.health_check.kind,
            backends.join(", ")
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
