//! The path rules match on: percent-encoded unreserved characters (ALPHA DIGIT `-._~`)
//! decoded, other escapes upper-cased, dot segments resolved (RFC 3986 remove_dot_segments)
//! and repeated slashes merged. `/%61dmin`, `//admin`, `/./admin` and `/x/../admin` all become
//! `/admin`. A path that is already normal is borrowed, not copied. Projects whose backends
//! drop path parameters (`;` to a segment's end) can have them dropped for matching too.

use std::borrow::Cow;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The value of one hex digit.
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte of a `%XX` escape starting at `i`, when well formed.
fn escape_at(b: &[u8], i: usize) -> Option<u8> {
    Some(hex_val(*b.get(i + 1)?)? * 16 + hex_val(*b.get(i + 2)?)?)
}

/// True when [`normalize_path`] would return `path` unchanged (checked without allocating).
fn is_normal(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'%' => {
                if let Some(x) = escape_at(b, i) {
                    if is_unreserved(x)
                        || b[i + 1].is_ascii_lowercase()
                        || b[i + 2].is_ascii_lowercase()
                    {
                        return false;
                    }
                }
            }
            b'/' => {
                let seg = &b[i + 1..];
                let seg = &seg[..seg.iter().position(|&c| c == b'/').unwrap_or(seg.len())];
                let last = i + 1 + seg.len() == b.len();
                if (seg.is_empty() && !last) || seg == b"." || seg == b".." {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// Normalizes a request path for matching (see the module documentation). Paths that do not
/// start with `/` are treated as if they did (an empty path is `/`).
pub fn normalize_path(path: &str) -> Cow<'_, str> {
    if is_normal(path) {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(normalize_owned(path))
    }
}

/// How a project's rules see request paths (its `ignore_path_params`), given to
/// [`crate::rules::RuleSet::compile_with`]: it checks the rules' own paths against it and
/// normalizes every request's path with it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PathMatching {
    /// Cut each segment's parameters (`;` to the segment's end) before normalizing.
    pub ignore_params: bool,
}

impl PathMatching {
    /// The path rules match `path` on.
    pub fn normalize(self, path: &str) -> Cow<'_, str> {
        if self.ignore_params {
            normalize_path_without_params(path)
        } else {
            normalize_path(path)
        }
    }
}

/// [`normalize_path`] of `path` with each segment's parameters (from a `;` to the segment's
/// end) cut first, as Tomcat, Jetty and Spring do before routing: to them `/admin;x=1` and
/// `/a/..;/admin` are `/admin`.
fn normalize_path_without_params(path: &str) -> Cow<'_, str> {
    if !path.contains(';') {
        return normalize_path(path);
    }
    let bare = cut_path_params(path);
    match normalize_path(&bare) {
        Cow::Borrowed(_) => Cow::Owned(bare),
        Cow::Owned(normal) => Cow::Owned(normal),
    }
}

/// `path` with each segment cut at its first `;`.
pub fn cut_path_params(path: &str) -> String {
    let mut bare = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            bare.push('/');
        }
        bare.push_str(segment.split(';').next().unwrap_or_default());
    }
    bare
}

fn normalize_owned(path: &str) -> String {
    // 1. Decode unreserved escapes, upper-case the others. Only ASCII bytes change, so the
    //    result stays valid UTF-8.
    let b = path.as_bytes();
    let mut decoded = String::with_capacity(b.len() + 1);
    if b.first() != Some(&b'/') {
        decoded.push('/');
    }
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(x) = escape_at(b, i) {
                decoded.push_str(&path[start..i]);
                if is_unreserved(x) {
                    decoded.push(char::from(x));
                } else {
                    decoded.push('%');
                    decoded.push(char::from(b[i + 1].to_ascii_uppercase()));
                    decoded.push(char::from(b[i + 2].to_ascii_uppercase()));
                }
                i += 3;
                start = i;
                continue;
            }
        }
        i += 1;
    }
    decoded.push_str(&path[start..]);

    // 2. Segments: empty ones merged, `.` dropped, `..` removes the previous one. A final
    //    empty, `.` or `..` segment leaves a trailing slash, as in RFC 3986.
    let mut out = String::with_capacity(decoded.len());
    let mut segments = decoded[1..].split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match seg {
            "" | "." => {}
            ".." => {
                let cut = out.rfind('/').unwrap_or(0);
                out.truncate(cut);
            }
            s => {
                out.push('/');
                out.push_str(s);
                continue;
            }
        }
        if last {
            out.push('/');
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::Rng;

    fn n(p: &str) -> Cow<'_, str> {
        normalize_path(p)
    }

    #[test]
    fn path_parameters_are_cut_before_normalizing() {
        for (raw, want) in [
            ("/admin;x=1", "/admin"),
            ("/admin;", "/admin"),
            ("/a/..;/admin", "/admin"),
            ("/admin;jsessionid=1/secret;v=2", "/admin/secret"),
            ("/;x/%61dmin", "/admin"),
            ("/admin%3Bx", "/admin%3Bx"),
            (";x", "/"),
        ] {
            assert_eq!(normalize_path_without_params(raw), want, "{raw}");
        }
        assert!(matches!(
            normalize_path_without_params("/admin"),
            Cow::Borrowed("/admin")
        ));
    }

    #[test]
    fn bypass_attempts_normalize_to_the_plain_path() {
        for p in [
            "/admin",
            "/%61dmin",
            "/%61%64%6D%69%6e",
            "//admin",
            "///admin",
            "/./admin",
            "/x/../admin",
            "/x/y/../../admin",
            "/a/./../admin",
            "/../admin",
            "/%2e%2e/admin",
            "/.%2E/admin",
            "/x/%2e%2e/admin",
            "admin",
        ] {
            assert_eq!(n(p), "/admin", "{p}");
        }
    }

    #[test]
    fn keeps_reserved_escapes_and_trailing_slashes() {
        assert_eq!(n("/a%2Fb"), "/a%2Fb");
        assert_eq!(n("/a%2fb"), "/a%2Fb");
        assert_eq!(n("/a%20b"), "/a%20b");
        assert_eq!(n("/blog/"), "/blog/");
        assert_eq!(n("/blog//"), "/blog/");
        assert_eq!(n("/blog/x/.."), "/blog/");
        assert_eq!(n("/blog/x/."), "/blog/x/");
        assert_eq!(n("/.."), "/");
        assert_eq!(n(""), "/");
        assert_eq!(n("/"), "/");
        assert_eq!(n("/.well-known/x"), "/.well-known/x");
        assert_eq!(n("/a..b/...c"), "/a..b/...c");
        assert_eq!(n("/bad%zz"), "/bad%zz");
        assert_eq!(n("/end%4"), "/end%4");
        assert_eq!(n("/end%"), "/end%");
        assert_eq!(n("/caf%C3%A9"), "/caf%C3%A9");
        assert_eq!(n("/x/é/../y"), "/x/y");
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for p in ["/", "/products/42", "/a%2Fb", "/blog/", "/a..b", "/x%zz"] {
            assert!(matches!(n(p), Cow::Borrowed(_)), "{p}");
        }
        assert!(matches!(n("/a%2fb"), Cow::Owned(_)));
    }

    #[test]
    fn is_normal_agrees_with_normalization_and_is_idempotent() {
        let mut rng = Rng::new(7);
        let alphabet = [
            "/", "/", ".", "..", "a", "B", "%61", "%2e", "%2F", "%2f", "%", "%4", "~", "é",
        ];
        for _ in 0..20_000 {
            let len = rng.below(8) + 1;
            let p: String = (0..len).map(|_| rng.pick(&alphabet)).collect();
            let once = normalize_owned(&p);
            assert_eq!(is_normal(&p), once == p, "{p:?} -> {once:?}");
            // Decoding is a single pass, like the backend's: `%4%61` becomes `%4a`, which a
            // second pass would decode again. Without stray `%` the result is a fixed point.
            let b = p.as_bytes();
            if (0..b.len()).all(|i| b[i] != b'%' || escape_at(b, i).is_some()) {
                assert_eq!(normalize_owned(&once), once, "{p:?}");
                assert!(is_normal(&once), "{p:?} -> {once:?}");
            }
        }
    }
}
