//! How a field's value is written into a line: escaped as nginx escapes log variables, and
//! numbers without `fmt`; these run for several fields of every line.

use std::fmt::Write as _;
use std::time::Duration;

/// Which bytes go out as they are: printable ASCII but `"`, `\` and the bytes of `also`.
/// A table, not comparisons, and no UTF-8 check: escaping runs on several fields of every line.
const fn plain_bytes(also: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    let mut i = 0;
    while i < also.len() {
        t[also[i] as usize] = false;
        i += 1;
    }
    t
}

const PLAIN: [bool; 256] = plain_bytes(b"");
/// In a comma-separated list (`{rules}`), where `,` and a space would split an item.
pub(super) const PLAIN_IN_LIST: [bool; 256] = plain_bytes(b", ");

/// Appends `bytes` escaped as nginx escapes log variables: `"` and `\` with a backslash,
/// control characters and bytes outside ASCII as `\xHH`. A client's `"` or `\` cannot end a
/// quoted field early (shifting the fields a log parser reads), and a control character
/// cannot forge a line or reach a terminal.
pub(super) fn push_escaped(out: &mut String, bytes: &[u8]) {
    escape_from(out, bytes, &PLAIN, plain_prefix(bytes, false));
}

/// How many leading bytes of `bytes` [`PLAIN`] passes (with `high_plain`, bytes above 0x7e as
/// well, as JSON takes UTF-8), found eight at a time: the fields escaped on every line (path,
/// request id) are nearly always plain throughout, and the table walk costs ~10 instructions
/// per byte.
pub(super) fn plain_prefix(bytes: &[u8], high_plain: bool) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    // Bit tricks on eight bytes at once, each exact as a yes/no for the word.
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let is_plain = |word: [u8; 8]| {
        let x = u64::from_ne_bytes(word);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0; // a byte < 0x20
        let high = !high_plain && (x.wrapping_add(ONES) | x) & HIGH != 0; // a byte > 0x7e
        !(control
            || high
            || has_zero(x ^ (ONES * u64::from(b'"')))
            || has_zero(x ^ (ONES * u64::from(b'\\'))))
    };
    let mut plain = 0;
    for word in bytes.chunks_exact(8) {
        if !is_plain(word.try_into().expect("eight bytes")) {
            return plain;
        }
        plain += 8;
    }
    // The last bytes of a field of eight or more: the last eight, read again in part (a field
    // shorter than eight is left to the table walk, cheaper than padding it).
    let len = bytes.len();
    if plain < len && len >= 8 && is_plain(bytes[len - 8..].try_into().expect("eight bytes")) {
        return len;
    }
    plain
}

/// [`push_escaped`], with the bytes `plain` does not pass written `\xHH` too.
pub(super) fn escape_into(out: &mut String, bytes: &[u8], plain: &[bool; 256]) {
    escape_from(out, bytes, plain, 0);
}

/// [`escape_into`], the first `known` bytes being plain already.
fn escape_from(out: &mut String, bytes: &[u8], plain: &[bool; 256], known: usize) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // SAFETY: only printable ASCII bytes and ASCII escapes are appended, so `out` stays UTF-8.
    let out = unsafe { out.as_mut_vec() };
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate().skip(known) {
        if plain[usize::from(b)] {
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            _ => out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

/// A header value for JSON: as is when it is UTF-8 (JSON escapes it), else escaped as above.
pub(super) fn json_text(v: Option<&http::HeaderValue>) -> Option<std::borrow::Cow<'_, str>> {
    let bytes = v?.as_bytes();
    Some(match std::str::from_utf8(bytes) {
        Ok(s) => s.into(),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() * 2);
            push_escaped(&mut out, bytes);
            out.into()
        }
    })
}

pub(super) fn push_int(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Milliseconds with three decimals, without float formatting (nor `as_micros`, whose `u128`
/// divisions cost ~150 instructions per line).
pub(super) fn push_millis(out: &mut String, d: Duration) {
    push_int(out, d.as_secs() * 1000 + u64::from(d.subsec_millis()));
    out.push('.');
    push_three_digits(out, d.subsec_micros() % 1000);
}

/// `n` (under 1000) as three digits, leading zeros included: `007`.
pub(super) fn push_three_digits(out: &mut String, n: u32) {
    let n = n % 1000;
    let digits = [n / 100, n / 10 % 10, n % 10].map(|d| b'0' + d as u8);
    // SAFETY: three ASCII digits keep `out` UTF-8 (one append, not three `push`es).
    unsafe { out.as_mut_vec() }.extend_from_slice(&digits);
}

/// A header's value escaped, or `-` when the request has none.
pub(super) fn push_header(out: &mut String, v: Option<&http::HeaderValue>) {
    match v {
        Some(v) => push_escaped(out, v.as_bytes()),
        None => out.push('-'),
    }
}

/// A header's bytes, `-` when absent.
pub(super) fn header_bytes(v: Option<&http::HeaderValue>) -> &[u8] {
    v.map_or(b"-", |v| v.as_bytes())
}

/// A socket address as `Display` writes it (`10.0.1.11:8080`, `[::1]:80`), an IPv4 one without
/// `fmt` (~200 instructions on every line that names a backend).
pub(super) fn push_socket_addr(out: &mut String, addr: std::net::SocketAddr) {
    match addr {
        std::net::SocketAddr::V4(v4) => {
            out.push_str(crate::proxy::IpText::new((*v4.ip()).into()).as_str());
            out.push(':');
            push_int(out, v4.port());
        }
        v6 => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// `value` through `Display`, or `-`: `fmt` runs only for the lines that have one, not for the
/// `-` of nearly every line.
pub(super) fn display_or_dash(out: &mut String, value: Option<impl std::fmt::Display>) {
    match value {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push('-'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_are_written_as_display_writes_them() {
        for addr in [
            "10.0.1.11:8080",
            "0.0.0.0:1",
            "255.255.255.255:65535",
            "[::1]:80",
            "[2001:db8::9%3]:8443",
        ] {
            let addr: std::net::SocketAddr = addr.parse().unwrap();
            let mut out = String::new();
            push_socket_addr(&mut out, addr);
            assert_eq!(out, addr.to_string());
        }
    }

    #[test]
    fn formats_milliseconds_and_quotes_without_fmt() {
        let mut out = String::new();
        for micros in [0, 7, 42, 1_000, 1_234_567, 61_000_500, 3_000_999] {
            push_millis(&mut out, Duration::from_micros(micros));
            out.push(' ');
        }
        assert_eq!(out, "0.000 0.007 0.042 1.000 1234.567 61000.500 3000.999 ");
        let mut q = String::new();
        push_escaped(&mut q, b"a\"b\"\\ \t\x1b[31m caf\xc3\xa9 \xff");
        assert_eq!(q, r#"a\"b\"\\ \x09\x1B[31m caf\xC3\xA9 \xFF"#);
    }

    #[test]
    fn the_word_at_a_time_scan_stops_at_the_first_word_with_a_byte_to_escape() {
        // Fields shorter than a word, of whole words, and with a shorter last word (read with
        // the word before it), the byte anywhere.
        for len in [1, 5, 8, 13, 24] {
            for b in 0..=255u8 {
                for at in 0..len {
                    let mut field = vec![b'a'; len];
                    field[at] = b;
                    let expected = if len < 8 {
                        0
                    } else if PLAIN[usize::from(b)] {
                        len
                    } else {
                        at / 8 * 8
                    };
                    assert_eq!(
                        plain_prefix(&field, false),
                        expected,
                        "byte {b:#x} at {at} of {len}"
                    );
                    let (mut fast, mut slow) = (String::new(), String::new());
                    push_escaped(&mut fast, &field);
                    escape_into(&mut slow, &field, &PLAIN);
                    assert_eq!(fast, slow);
                }
            }
        }
        assert_eq!(plain_prefix(b"", false), 0);
        // JSON takes UTF-8 as it is: a last partial word with `é` is plain there, not here.
        let field = "abcdefghé".as_bytes();
        assert_eq!(plain_prefix(field, true), field.len());
        assert_eq!(plain_prefix(field, false), 8);
    }
}
