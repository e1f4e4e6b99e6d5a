//! Host routing for one listener: exact names first, then the longest matching wildcard
//! (`*.example.com` matches any depth of subdomain), then the catch-all `*`.

/// Looked up on every request with the client's Host: aHash costs a fraction of the standard
/// SipHash (keys are the config's, so flooding is no concern).
type HostMap = ahash::AHashMap<String, usize>;

#[derive(Debug, Default, Clone)]
pub struct HostRouter {
    exact: HostMap,
    /// Keyed by the suffix after `*.`.
    wildcard: HostMap,
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

/// The name a request is for, as projects are routed on it: lowercase, without port or
/// trailing dots (IPv6 brackets kept). Held inline up to 24 bytes: a `String` cost an
/// allocation and its free on every request.
pub type HostName = compact_str::CompactString;

/// `raw` (a Host header or the authority of an absolute-form target) as a [`HostName`], when
/// it is a host name, an IPv4 address or a bracketed IPv6 address, with an optional numeric
/// port, as nginx requires: `Host: evil.test/x` or `a:b` would otherwise reach `{host}` in
/// redirects. An empty `raw` gives an empty name.
pub fn host_name(raw: &str) -> Option<HostName> {
    let bytes = raw.as_bytes();
    if let Some(v6) = raw.strip_prefix('[') {
        let (addr, port) = v6.split_once(']')?;
        (addr.parse::<std::net::Ipv6Addr>().is_ok() && is_port(port)).then_some(())?;
        let mut name = HostName::new(&raw[..addr.len() + 2]);
        name.make_ascii_lowercase();
        return Some(name);
    }
    // One pass: allowed bytes, no leading dot, no empty label (`..`), up to a port; whether
    // any letter needs lowering (nearly none do).
    let mut prev = b'.';
    let mut end = bytes.len();
    let mut upper = false;
    for (i, &b) in bytes.iter().enumerate() {
        match HOST_BYTES[usize::from(b)] {
            Class::Plain => {}
            Class::Upper => upper = true,
            Class::Dot if prev == b'.' => return None,
            Class::Dot => {}
            // `:` is not a host byte: the port is looked at only there.
            Class::Not => {
                (b == b':' && is_port(&raw[i..])).then_some(())?;
                end = i;
                break;
            }
        }
        prev = b;
    }
    // No empty label: one trailing dot at most.
    let end = end - usize::from(end > 0 && bytes[end - 1] == b'.');
    let mut name = HostName::new(&raw[..end]);
    if upper {
        name.make_ascii_lowercase();
    }
    Some(name)
}

/// Nothing, or `:` and at most five digits.
fn is_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        Some(digits) => digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()),
        None => port.is_empty(),
    }
}

/// What a byte is in a host name: letters, digits, `-`, `_` and `.` are allowed.
#[derive(Clone, Copy)]
enum Class {
    /// Not in a host name (`:` ends the name before a port).
    Not,
    /// An uppercase letter: the name is lowered.
    Upper,
    Dot,
    /// A lowercase letter, a digit, `-` or `_`.
    Plain,
}

const HOST_BYTES: [Class; 256] = {
    let mut table = [Class::Not; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_uppercase() {
            Class::Upper
        } else if c == b'.' {
            Class::Dot
        } else if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
            Class::Plain
        } else {
            Class::Not
        };
        b += 1;
    }
    table
};

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
        let name = |raw| host_name(raw).map(String::from);
        assert_eq!(name("Shop.Example.COM:8080").unwrap(), "shop.example.com");
        for ok in [
            "shop.example.com",
            "a-b_c.test:8080",
            "10.0.0.1",
            "[::1]:443",
            "[2001:db8::1]",
            "h.",
            "h:",
        ] {
            assert!(host_name(ok).is_some(), "{ok}");
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
            ".",
            "a.:b",
            "a..:80",
        ] {
            assert_eq!(host_name(bad), None, "{bad}");
        }
        assert_eq!(name("example.com.").unwrap(), "example.com");
        assert_eq!(name("Shop.Example.COM.:8080").unwrap(), "shop.example.com");
        assert_eq!(name("h.:80").unwrap(), "h");
        assert_eq!(name("127.0.0.1:8080").unwrap(), "127.0.0.1");
        assert_eq!(name("[::1]:443").unwrap(), "[::1]");
        assert_eq!(name("[2001:DB8::1]").unwrap(), "[2001:db8::1]");
        assert_eq!(name("h:").unwrap(), "h");
        assert_eq!(name("").unwrap(), "");
        // Past the inline size: the same name, on the heap.
        let long = "A-Long-Subdomain.Of-A-Long-Domain-Name.example.com";
        assert_eq!(
            name(&format!("{long}:443")).unwrap(),
            long.to_ascii_lowercase()
        );
    }
}
