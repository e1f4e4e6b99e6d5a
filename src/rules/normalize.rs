//! Path normalization for matching: percent-encoded unreserved characters decoded, dot
//! segments resolved, repeated slashes merged. `/%61dmin`, `//admin` and `/x/../admin` all
//! become `/admin`. Already-normal paths are borrowed, not copied.

use std::borrow::Cow;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// True when the path needs no work (the common case, checked without allocating).
fn is_normal(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'%' => return false,
            b'/' if b.get(i + 1) == Some(&b'/') => return false,
            b'.' if b[i - 1] == b'/' => {
                let next = b.get(i + 1).copied();
                if next.is_none()
                    || next == Some(b'/')
                    || (next == Some(b'.') && matches!(b.get(i + 2), None | Some(b'/')))
                {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

pub fn normalize_path(path: &str) -> Cow<'_, str> {
    if is_normal(path) {
        return Cow::Borrowed(path);
    }
    // 1. decode %XX of unreserved characters (others stay encoded, uppercased).
    let b = path.as_bytes();
    let mut decoded = Vec::with_capacity(b.len() + 1);
    if b.first() != Some(&b'/') {
        decoded.push(b'/');
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let c = h * 16 + l;
                if is_unreserved(c) {
                    decoded.push(c);
                } else {
                    decoded.extend_from_slice(&[
                        b'%',
                        b[i + 1].to_ascii_uppercase(),
                        b[i + 2].to_ascii_uppercase(),
                    ]);
                }
                i += 3;
                continue;
            }
        }
        decoded.push(b[i]);
        i += 1;
    }
    // 2. split into segments, merging empty ones and resolving dot segments.
    let text = String::from_utf8_lossy(&decoded);
    let trailing_slash = text.ends_with('/') || text.ends_with("/.") || text.ends_with("/..");
    let mut segments: Vec<&str> = Vec::new();
    for seg in text.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(text.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::normalize_path as n;

    #[test]
    fn bypass_attempts_normalize_to_the_plain_path() {
        for p in [
            "/admin",
            "/%61dmin",
            "/%61%64min",
            "//admin",
            "/./admin",
            "/x/../admin",
            "/x/y/../../admin",
            "///admin",
            "/a/./../admin",
        ] {
            assert_eq!(n(p), "/admin", "{p}");
        }
    }

    #[test]
    fn keeps_reserved_escapes_and_trailing_slashes() {
        assert_eq!(n("/a%2Fb"), "/a%2Fb");
        assert_eq!(n("/a%2fb"), "/a%2Fb");
        assert_eq!(n("/blog/"), "/blog/");
        assert_eq!(n("/blog//"), "/blog/");
        assert_eq!(n("/blog/x/.."), "/blog/");
        assert_eq!(n("/.."), "/");
        assert_eq!(n("/.well-known/x"), "/.well-known/x");
        assert_eq!(n("/a..b"), "/a..b");
        assert_eq!(n("/bad%zz"), "/bad%zz");
        assert_eq!(n("/end%4"), "/end%4");
    }

    #[test]
    fn normal_paths_are_borrowed() {
        assert!(matches!(n("/products/42"), std::borrow::Cow::Borrowed(_)));
    }
}
