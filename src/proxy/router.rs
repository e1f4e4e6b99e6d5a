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

/// True when `raw` (a Host header or the authority of an absolute-form target) is a host
/// name, an IPv4 address or a bracketed IPv6 address, with an optional numeric port, as
/// nginx requires: `Host: evil.test/x` or `a:b` would otherwise reach `{host}` in redirects.
pub fn is_valid_host(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if let Some(v6) = raw.strip_prefix('[') {
        return match v6.split_once(']') {
            Some((addr, port)) => addr.parse::<std::net::Ipv6Addr>().is_ok() && is_port(port),
            None => false,
        };
    }
    // One pass: allowed bytes, no leading dot, no empty label (`..`), up to a port.
    let mut prev = b'.';
    for (i, &b) in bytes.iter().enumerate() {
        if b == b':' {
            return is_port(&raw[i..]);
        }
        if !HOST_BYTES[usize::from(b)] || (b == b'.' && prev == b'.') {
            return false;
        }
        prev = b;
    }
    true
}

/// Nothing, or `:` and at most five digits.
fn is_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        Some(digits) => digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()),
        None => port.is_empty(),
    }
}

/// The bytes of a host name: letters, digits, `-`, `_` and `.`.
const HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.';
        b += 1;
    }
    table
};

/// The request's host, lowercased, without port (IPv6 brackets kept).
pub fn normalize_host(raw: &str) -> String {
    // Byte searches: on every request, `trim` and `rsplit_once` cost several times more.
    let raw = raw.trim_ascii();
    let bytes = raw.as_bytes();
    let without_port = if bytes.first() == Some(&b'[') {
        bytes
            .iter()
            .position(|&b| b == b']')
            .map_or(raw, |i| &raw[..=i])
    } else {
        match bytes.iter().rposition(|&b| b == b':') {
            Some(i) if bytes[i + 1..].iter().all(u8::is_ascii_digit) => &raw[..i],
            _ => raw,
        }
    };
    let kept = without_port
        .bytes()
        .rposition(|b| b != b'.')
        .map_or(0, |i| i + 1);
    without_port[..kept].to_ascii_lowercase()
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
        for ok in [
            "shop.example.com",
            "a-b_c.test:8080",
            "10.0.0.1",
            "[::1]:443",
            "[2001:db8::1]",
            "h.",
            "h:",
        ] {
            assert!(is_valid_host(ok), "{ok}");
        }
        for bad in [
            "evil.test/x",
            "evil.test?x",
            "a:b",
            "h:1/evil",
            "[::1",
            "[zz]",
            "a..b",
            ".a",
            "a b",
            "é.test",
            "h:123456",
            "a:1:2",
        ] {
            assert!(!is_valid_host(bad), "{bad}");
        }
        assert_eq!(normalize_host("example.com."), "example.com");
        assert_eq!(normalize_host("[::1]:443"), "[::1]");
    }
}
