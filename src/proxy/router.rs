//! Host routing for one listener: exact names first, then the longest matching wildcard
//! (`*.example.com` matches any depth of subdomain), then the catch-all `*`.

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct HostRouter {
    exact: HashMap<String, usize>,
    /// Keyed by the suffix after `*.`.
    wildcard: HashMap<String, usize>,
    catch_all: Option<usize>,
}

impl HostRouter {
    /// `hosts` are already lowercased and validated patterns.
    pub fn add(&mut self, pattern: &str, project: usize) {
        if pattern == "*" {
            self.catch_all = Some(project);
        } else if let Some(suffix) = pattern.strip_prefix("*.") {
            self.wildcard.insert(suffix.to_string(), project);
        } else {
            self.exact.insert(pattern.to_string(), project);
        }
    }

    /// `host` must be lowercase without port.
    pub fn route(&self, host: &str) -> Option<usize> {
        if let Some(p) = self.exact.get(host) {
            return Some(*p);
        }
        if !self.wildcard.is_empty() {
            let mut rest = host;
            while let Some(dot) = rest.find('.') {
                rest = &rest[dot + 1..];
                if let Some(p) = self.wildcard.get(rest) {
                    return Some(*p);
                }
            }
        }
        self.catch_all
    }
}

/// The request's host, lowercased, without port (IPv6 brackets kept).
pub fn normalize_host(raw: &str) -> String {
    let raw = raw.trim();
    let without_port = if raw.starts_with('[') {
        raw.find(']').map_or(raw, |i| &raw[..=i])
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                raw
            }
        })
    };
    let h = without_port.trim_end_matches('.');
    h.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_before_wildcard_before_catch_all() {
        let mut r = HostRouter::default();
        r.add("shop.example.com", 0);
        r.add("*.example.com", 1);
        r.add("*.eu.example.com", 2);
        r.add("*", 3);
        assert_eq!(r.route("shop.example.com"), Some(0));
        assert_eq!(r.route("a.example.com"), Some(1));
        assert_eq!(r.route("x.eu.example.com"), Some(2));
        assert_eq!(r.route("a.b.example.com"), Some(1));
        assert_eq!(r.route("example.com"), Some(3));
        assert_eq!(r.route("other.org"), Some(3));
    }

    #[test]
    fn host_normalization() {
        assert_eq!(normalize_host("Shop.Example.COM:8080"), "shop.example.com");
        assert_eq!(normalize_host("example.com."), "example.com");
        assert_eq!(normalize_host("[::1]:443"), "[::1]");
    }
}
