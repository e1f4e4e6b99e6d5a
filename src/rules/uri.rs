//! What a URI written by a rule may contain: `Location` values, rewritten request targets,
//! and the escaping that keeps request data (a path, a query, a Host) inside those rules, so
//! that a client cannot make a rule fail by sending characters the request line allowed.

pub fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// Only RFC 3986 characters, and `%` only in well-formed escapes.
pub fn check_chars(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if !is_uri_char(c) {
            return Err(format!(
                "{:?} is not allowed in a URI (percent-encode it)",
                char::from(c)
            ));
        }
        if c == b'%' && !is_escape_at(b, i) {
            return Err("`%` must start a %XX escape".to_string());
        }
    }
    Ok(())
}

/// True when `b[i]` is `%` starting a `%XX` escape.
fn is_escape_at(b: &[u8], i: usize) -> bool {
    b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()
}

/// Appends request data to a URI being written: bytes a URI cannot hold (`\`, `|`, `{`,
/// non-ASCII, …), a `%` that starts no escape, and `#` (which would end the URI's path or
/// query) are percent-encoded; everything else, valid escapes included, is kept as sent.
pub fn push_uri_escaped(out: &mut String, value: &str) {
    let b = value.as_bytes();
    let kept = |i: usize, c: u8| is_uri_char(c) && c != b'#' && (c != b'%' || is_escape_at(b, i));
    if b.iter().enumerate().all(|(i, &c)| kept(i, c)) {
        out.push_str(value);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for (i, &c) in b.iter().enumerate() {
        if kept(i, c) {
            out.push(char::from(c));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(c >> 4)]));
            out.push(char::from(HEX[usize::from(c & 15)]));
        }
    }
}

/// A `Location` value: an absolute URI, a scheme-relative `//host/path` or a relative
/// reference, with a valid authority when it has one.
pub fn check_uri_reference(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".to_string());
    }
    check_chars(s)?;
    let (target, fragment) = s.split_once('#').unwrap_or((s, ""));
    if fragment.contains('#') {
        return Err("it has more than one `#`".to_string());
    }
    let scheme_len = target.find(':').filter(|&i| {
        let sch = &target.as_bytes()[..i];
        sch.first().is_some_and(u8::is_ascii_alphabetic)
            && sch
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
            && !target[..i].contains(['/', '?'])
    });
    let after_scheme = scheme_len.map_or(target, |i| &target[i + 1..]);
    if let Some(rest) = after_scheme.strip_prefix("//") {
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        check_authority(authority)?;
    } else if scheme_len.is_some() && target.contains("://") {
        return Err("the scheme must be followed by `//host`".to_string());
    }
    Ok(())
}

fn check_authority(authority: &str) -> Result<(), String> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (_, after) = v6.split_once(']').ok_or("unclosed `[` in the host")?;
        ("[", after.strip_prefix(':').unwrap_or(after))
    } else {
        host_port.split_once(':').unwrap_or((host_port, ""))
    };
    if host.is_empty() && !port.is_empty() {
        return Err("the host is empty".to_string());
    }
    if host.contains(['[', ']']) && host != "[" {
        return Err(format!("`{host}` is not a host"));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u32>().is_ok_and(|p| p > 65535) {
        return Err(format!("`{port}` is not a port"));
    }
    Ok(())
}

/// An origin-form request target: `/path[?query]`, which `http::Uri` also accepts.
pub fn check_path_and_query(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err("it must start with `/`".to_string());
    }
    check_chars(s)?;
    if s.contains('#') {
        return Err("`#` is not allowed".to_string());
    }
    s.parse::<http::Uri>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_references() {
        for ok in [
            "/a",
            "https://example.com/x?y=1#f",
            "//cdn.example.com/x",
            "../up",
            "page.html",
            "http://[2001:db8::1]:8080/",
            "https://u@h:443/",
            "mailto:a@b.c",
            "/%C3%A9",
        ] {
            assert_eq!(check_uri_reference(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/a b",
            "/a\nb",
            "/é",
            "/a%zz",
            "/a%4",
            "https://bad:host.example.com/",
            "https://h:99999/",
            "https://exa[mple/",
            "http://[::1/",
            "/a#b#c",
            "/{x}",
        ] {
            assert!(check_uri_reference(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_data_is_escaped_into_a_valid_uri() {
        let escaped = |v: &str| {
            let mut out = String::from("/x?");
            push_uri_escaped(&mut out, v);
            out
        };
        assert_eq!(escaped("a=1&b=%41"), "/x?a=1&b=%41");
        assert_eq!(escaped("a=%"), "/x?a=%25");
        assert_eq!(escaped("a=%4"), "/x?a=%254");
        assert_eq!(
            escaped("q=a|b\\c{d}^`\"#f"),
            "/x?q=a%7Cb%5Cc%7Bd%7D%5E%60%22%23f"
        );
        assert_eq!(escaped("é"), "/x?%C3%A9");
        for v in ["%", "%%zz", "\\", "a b", "<>", "#", "é|%4"] {
            assert_eq!(check_uri_reference(&escaped(v)), Ok(()), "{v:?}");
            assert_eq!(check_path_and_query(&escaped(v)), Ok(()), "{v:?}");
        }
    }

    #[test]
    fn paths_and_queries() {
        assert_eq!(check_path_and_query("/v2/x?a=1&b"), Ok(()));
        assert_eq!(check_path_and_query("//double"), Ok(()));
        for bad in ["v2", "/a b", "/a#b", "/a%g0", "/\"q\""] {
            assert!(check_path_and_query(bad).is_err(), "{bad:?}");
        }
    }
}
