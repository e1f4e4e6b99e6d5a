//! The `match` conditions of one compiled rule, and checking them against a request. Nothing
//! here allocates unless a regex rule whose templates use capture groups matches.

use crate::rules::normalize::hex_val;
use crate::rules::path_regex::PathRegex;
use crate::rules::RequestView;
use http::HeaderName;
use ipnet::IpNet;
use regex::{Captures, Regex};
use std::net::IpAddr;

#[derive(Debug)]
pub enum PathMatch {
    Any,
    /// Normalized; compared ASCII-case-insensitively when the rule says so.
    Exact(Box<str>),
    Prefix(Box<str>),
    /// With `(?i)` for case-insensitive rules.
    Regex(PathRegex),
}

#[derive(Debug)]
pub enum HostMatch {
    Exact(Box<str>),
    /// `*.example.com`, kept as `.example.com`: any subdomain, not the domain itself.
    Subdomains(Box<str>),
}

#[derive(Debug)]
pub enum HeaderMatch {
    Present,
    Exact(Box<str>),
    Regex(Regex),
}

#[derive(Debug)]
pub enum QueryMatch {
    Present,
    /// Compared with the percent-decoded value (`+` is a space).
    Exact(Box<str>),
}

/// Every condition of a rule; an absent one always holds.
#[derive(Debug)]
pub struct Conditions {
    pub path: PathMatch,
    pub case_insensitive: bool,
    /// A template refers to capture groups: run `captures` instead of `is_match`.
    pub needs_captures: bool,
    /// The rest, boxed: most rules of a large set (redirects) have none, and inline they took
    /// ~190 bytes a rule, a quarter of a loaded set's memory.
    pub other: Option<Box<OtherConditions>>,
}

/// A rule's conditions on what is not its path.
#[derive(Debug)]
pub struct OtherConditions {
    pub host: Option<HostMatch>,
    /// Upper-case; compared case-insensitively.
    pub methods: Option<Vec<Box<str>>>,
    pub scheme: Option<Box<str>>,
    pub query: Vec<(Box<str>, QueryMatch)>,
    pub headers: Vec<(HeaderName, HeaderMatch)>,
    pub not_headers: Vec<HeaderName>,
    pub client_ip: Option<Vec<IpNet>>,
}

/// What a matching path yields to templates.
#[derive(Debug, Default)]
pub struct PathHit<'p> {
    /// The normalized path the rule matched: `{path}`.
    pub path: &'p str,
    /// For `path_prefix` rules, the normalized path after the prefix.
    pub rest: &'p str,
    pub caps: Option<Captures<'p>>,
}

impl PathHit<'_> {
    /// The text of capture group `g` (empty when it did not take part in the match).
    pub fn group(&self, g: usize) -> &str {
        self.caps
            .as_ref()
            .and_then(|c| c.get(g))
            .map_or("", |m| m.as_str())
    }
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

impl Conditions {
    /// Checks every condition against `req`, whose normalized path is `path`. The cheap
    /// conditions come first, the path regex last.
    pub fn matches<'p>(&self, req: &RequestView<'_>, path: &'p str) -> Option<PathHit<'p>> {
        let ci = self.case_insensitive;
        let rest = match &self.path {
            PathMatch::Any | PathMatch::Regex(_) => "",
            PathMatch::Exact(p) if ci => path.eq_ignore_ascii_case(p).then_some("")?,
            PathMatch::Exact(p) => (path == &**p).then_some("")?,
            PathMatch::Prefix(p) if ci => {
                starts_with_ci(path, p).then(|| path.get(p.len()..))??
            }
            PathMatch::Prefix(p) => path.strip_prefix(&**p)?,
        };
        if let Some(other) = &self.other {
            if !other.hold(req) {
                return None;
            }
        }
        let caps = match &self.path {
            // `captures` allocates even when nothing matches: search first.
            PathMatch::Regex(re) if !re.is_match(path) => return None,
            PathMatch::Regex(re) if self.needs_captures => re.captures(path),
            _ => None,
        };
        Some(PathHit { path, rest, caps })
    }

    pub fn host(&self) -> Option<&HostMatch> {
        self.other.as_ref()?.host.as_ref()
    }

    pub fn methods(&self) -> Option<&[Box<str>]> {
        self.other.as_ref()?.methods.as_deref()
    }
}

impl OtherConditions {
    /// No condition at all: the rule needs no box.
    pub fn is_empty(&self) -> bool {
        let OtherConditions {
            host,
            methods,
            scheme,
            query,
            headers,
            not_headers,
            client_ip,
        } = self;
        host.is_none()
            && methods.is_none()
            && scheme.is_none()
            && query.is_empty()
            && headers.is_empty()
            && not_headers.is_empty()
            && client_ip.is_none()
    }

    /// True when `req` meets every one of these conditions.
    fn hold(&self, req: &RequestView<'_>) -> bool {
        if let Some(methods) = &self.methods {
            if !methods.iter().any(|m| m.eq_ignore_ascii_case(req.method)) {
                return false;
            }
        }
        if let Some(scheme) = &self.scheme {
            if !scheme.eq_ignore_ascii_case(req.scheme) {
                return false;
            }
        }
        if let Some(host) = &self.host {
            let h = req.host.strip_suffix('.').unwrap_or(req.host);
            let ok = match host {
                HostMatch::Exact(x) => h.eq_ignore_ascii_case(x),
                HostMatch::Subdomains(sfx) => {
                    h.len() > sfx.len()
                        && h.as_bytes()[h.len() - sfx.len()..].eq_ignore_ascii_case(sfx.as_bytes())
                }
            };
            if !ok {
                return false;
            }
        }
        if let Some(nets) = &self.client_ip {
            if !req.client_ip.is_some_and(|ip| ip_in(ip, nets)) {
                return false;
            }
        }
        if self.not_headers.iter().any(|n| req.headers.contains_key(n)) {
            return false;
        }
        self.headers
            .iter()
            .all(|(name, m)| header_ok(req.headers, name, m))
            && self
                .query
                .iter()
                .all(|(key, m)| query_ok(req.query, key, m))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, from dual-stack sockets) also match IPv4
/// networks.
fn ip_in(ip: IpAddr, nets: &[IpNet]) -> bool {
    let mapped = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    nets.iter()
        .any(|n| n.contains(&ip) || mapped.is_some_and(|m| n.contains(&m)))
}

/// A header given several times matches when any of its values does.
fn header_ok(headers: &http::HeaderMap, name: &HeaderName, m: &HeaderMatch) -> bool {
    let mut values = headers.get_all(name).iter();
    match m {
        HeaderMatch::Present => headers.contains_key(name),
        HeaderMatch::Exact(x) => values.any(|v| v.as_bytes() == x.as_bytes()),
        HeaderMatch::Regex(re) => {
            values.any(|v| std::str::from_utf8(v.as_bytes()).is_ok_and(|s| re.is_match(s)))
        }
    }
}

/// A key given several times matches when any of its values does. Keys without `=` are
/// present with an empty value.
fn query_ok(query: Option<&str>, key: &str, m: &QueryMatch) -> bool {
    let Some(query) = query else { return false };
    query.split('&').any(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        decoded_eq(k, key)
            && match m {
                QueryMatch::Present => true,
                QueryMatch::Exact(x) => decoded_eq(v, x),
            }
    })
}

/// Compares a form-encoded component, decoded on the fly (no allocation), with plain text.
fn decoded_eq(raw: &str, plain: &str) -> bool {
    FormDecode {
        b: raw.as_bytes(),
        i: 0,
    }
    .eq(plain.bytes())
}

struct FormDecode<'a> {
    b: &'a [u8],
    i: usize,
}

impl Iterator for FormDecode<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        match c {
            b'+' => Some(b' '),
            b'%' => {
                let hi = self.b.get(self.i).copied().and_then(hex_val);
                let lo = self.b.get(self.i + 1).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        self.i += 2;
                        Some(h * 16 + l)
                    }
                    _ => Some(b'%'),
                }
            }
            c => Some(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_components_are_form_decoded() {
        assert!(decoded_eq("news%20letter", "news letter"));
        assert!(decoded_eq("a+b", "a b"));
        assert!(decoded_eq("a%2Bb", "a+b"));
        assert!(decoded_eq("caf%C3%A9", "café"));
        assert!(decoded_eq("100%", "100%"));
        assert!(decoded_eq("%zz", "%zz"));
        assert!(!decoded_eq("ab", "abc"));
        assert!(!decoded_eq("abc", "ab"));
        let present = QueryMatch::Present;
        assert!(query_ok(Some("a=1&flag&b=2"), "flag", &present));
        assert!(query_ok(Some("x=1&utm%5Fsource=n"), "utm_source", &present));
        assert!(!query_ok(None, "flag", &present));
        let one = QueryMatch::Exact("1".into());
        assert!(query_ok(Some("a=2&a=1"), "a", &one));
        assert!(!query_ok(Some("a=12"), "a", &one));
    }

    #[test]
    fn mapped_ipv6_clients_match_ipv4_networks() {
        let nets = vec![
            "10.0.0.0/8".parse::<IpNet>().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        assert!(ip_in("::ffff:10.1.2.3".parse().unwrap(), &nets));
        assert!(ip_in("2001:db8::1".parse().unwrap(), &nets));
        assert!(!ip_in("::ffff:11.1.2.3".parse().unwrap(), &nets));
    }
}
