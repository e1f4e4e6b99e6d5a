//! The `json` format: one object per line, written straight into the line's text. Building a
//! `serde_json::Value` first cost ~2 µs per line (an allocation per key and value, a sorted
//! map), 20 times the combined format, on the thread serving the request. The output is the
//! same: keys in alphabetical order, `null` for what a request lacks, strings escaped as
//! serde_json escapes them, `duration_ms` as the shortest decimal of the milliseconds.

use super::field_text::{json_text, plain_prefix, push_int, push_millis, push_socket_addr};
use super::record::{LogRecord, RequestLine, TimeCache};
use crate::proxy::forward::IpText;
use std::fmt::Write as _;
use std::time::Duration;

/// Appends `s` as a JSON string, quotes included.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    push_json_escaped(out, s);
    out.push('"');
}

/// Appends `s` escaped for a JSON string: `"` and `\` with a backslash, control characters
/// as `\n`-style or `\u00XX` escapes; the rest (UTF-8) as it is.
fn push_json_escaped(out: &mut String, s: &str) {
    let mut plain = 0;
    // Nearly every value has nothing to escape: its words are skipped eight bytes at a time.
    for (i, b) in s.bytes().enumerate().skip(plain_prefix(s.as_bytes(), true)) {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        plain = i + 1;
        match escape {
            "" => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
            e => out.push_str(e),
        }
    }
    out.push_str(&s[plain..]);
}

/// Escapes what `Display` writes, for values whose text is not at hand.
struct JsonEscaped<'a>(&'a mut String);

impl std::fmt::Write for JsonEscaped<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        push_json_escaped(self.0, s);
        Ok(())
    }
}

/// Milliseconds as serde_json wrote `micros / 1000.0`: its shortest decimal, so `1.843`,
/// `12.0`, `0.0`. Exact for any duration under 10^12 ms, where a shorter decimal cannot map to
/// the same `f64`.
fn push_json_millis(out: &mut String, d: Duration) {
    push_millis(out, d);
    // The three decimals without their trailing zeros, one digit kept: `1.500` is `1.5`.
    while out.ends_with('0') && !out.ends_with(".0") {
        out.pop();
    }
}

/// An object's members, each after a `,` but the first.
struct Members<'a> {
    out: &'a mut String,
    first: bool,
}

impl Members<'_> {
    /// Writes `"key":` and returns the text to write the value into.
    fn key(&mut self, key: &str) -> &mut String {
        self.out.push_str(if self.first { "{\"" } else { ",\"" });
        self.first = false;
        self.out.push_str(key);
        self.out.push_str("\":");
        self.out
    }

    /// `"key":` then `null`, or a string whose text `write` puts between the quotes.
    fn quoted<T>(&mut self, key: &str, value: Option<T>, write: impl FnOnce(&mut String, T)) {
        let out = self.key(key);
        match value {
            Some(v) => {
                out.push('"');
                write(out, v);
                out.push('"');
            }
            None => out.push_str("null"),
        }
    }

    fn str(&mut self, key: &str, value: Option<&str>) {
        self.quoted(key, value, push_json_escaped);
    }

    fn display(&mut self, key: &str, value: Option<impl std::fmt::Display>) {
        self.quoted(key, value, |out, v| {
            let _ = write!(JsonEscaped(out), "{v}");
        });
    }
}

impl LogRecord<'_> {
    pub(super) fn write_json(&self, out: &mut String, clock: &mut TimeCache) {
        let line = self.request.as_ref();
        let mut m = Members { out, first: true };
        push_int(m.key("bytes"), self.bytes);
        m.str("client_ip", self.client_ip.map(IpText::as_str));
        push_json_millis(m.key("duration_ms"), self.duration);
        m.display("error", self.error);
        m.str("host", Some(self.host).filter(|h| !h.is_empty()));
        m.str("method", line.map(|l| l.method.as_str()));
        m.str("project", self.project);
        m.str("protocol", line.map(|l| l.protocol));
        m.str("referer", json_text(self.referer).as_deref());
        let request_id = Some(self.request_id).filter(|id| !id.is_empty());
        m.str("request_id", json_text(request_id).as_deref());
        let rules = m.key("rules");
        rules.push('[');
        for (i, id) in self.rules.iter().enumerate() {
            if i > 0 {
                rules.push(',');
            }
            push_json_str(rules, id);
        }
        rules.push(']');
        push_int(m.key("status"), self.status);
        // Digits, dashes, colons and a dot: nothing to escape.
        m.quoted("time", Some(self.time), |out, t| clock.iso_into(t, out));
        m.str("tls_cipher", self.tls.map(|t| &*t.cipher));
        m.str("tls_version", self.tls.map(|t| &*t.version));
        // Digits, dots, colons and brackets: nothing to escape.
        m.quoted("upstream", self.upstream, push_socket_addr);
        m.str("uri", line.map(RequestLine::path_and_query));
        m.str("user_agent", json_text(self.user_agent).as_deref());
        m.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::access_log::{Failure, LogFormat};
    use http::HeaderValue;
    use std::sync::Arc;
    use std::time::SystemTime;

    /// The line as it was written through `serde_json::Value` before.
    fn through_serde(r: &LogRecord<'_>, clock: &mut TimeCache) -> String {
        let mut time = String::new();
        clock.iso_into(r.time, &mut time);
        let v = serde_json::json!({
            "time": time,
            "client_ip": r.client_ip.map(IpText::as_str),
            "method": r.request.map(|l| l.method.as_str()),
            "uri": r.request.as_ref().map(RequestLine::path_and_query),
            "host": r.host,
            "protocol": r.request.map(|l| l.protocol),
            "status": r.status,
            "bytes": r.bytes,
            "duration_ms": r.duration.as_micros() as f64 / 1000.0,
            "referer": json_text(r.referer),
            "user_agent": json_text(r.user_agent),
            "request_id": json_text(Some(r.request_id)),
            "project": r.project,
            "upstream": r.upstream.map(|a| a.to_string()),
            "tls_version": r.tls.map(|t| &*t.version),
            "tls_cipher": r.tls.map(|t| &*t.cipher),
            "rules": r.rules.iter().map(|id| &**id).collect::<Vec<&str>>(),
            "error": r.error.map(|f| f.to_string()),
        });
        format!("{v}\n")
    }

    /// Byte for byte the line serde_json wrote, for plain and for awkward requests: log
    /// pipelines parsing the old lines read the new ones the same.
    #[test]
    fn lines_are_the_ones_serde_json_wrote() {
        let ip = IpText::new("2001:db8::7".parse().unwrap());
        let uri = http::Uri::from_static("/a%22b?q=%5C&x=1");
        let odd_agent = HeaderValue::from_bytes(b"a\"b\\c\tz caf\xc3\xa9").unwrap();
        let latin1_referer = HeaderValue::from_bytes(b"http://\xe9t\xe9.fr/").unwrap();
        let id = HeaderValue::from_static("id\"1");
        let tls = pingora_core::protocols::tls::SslDigest::new(
            "TLS_AES_128_GCM_SHA256",
            "TLSv1.3",
            None,
            None,
            Vec::new(),
        );
        let rules: [Arc<str>; 3] = ["hsts".into(), "old.csv:2".into(), "q\"\u{1}".into()];
        let full = LogRecord {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_028_800_123),
            client_ip: Some(&ip),
            request: Some(RequestLine {
                method: &http::Method::DELETE,
                uri: &uri,
                protocol: "HTTP/2.0",
            }),
            host: "shop.example.com",
            status: 502,
            bytes: 1234,
            duration: Duration::from_micros(61_000_500),
            referer: Some(&latin1_referer),
            user_agent: Some(&odd_agent),
            request_id: &id,
            project: Some("shop"),
            upstream: Some("[2001:db8::9]:8443".parse().unwrap()),
            tls: Some(&tls),
            rules: &rules,
            error: Some(Failure::CLIENT_TIMED_OUT),
        };
        let bare = LogRecord {
            client_ip: None,
            request: None,
            status: 400,
            bytes: 0,
            duration: Duration::ZERO,
            referer: None,
            user_agent: None,
            project: None,
            upstream: None,
            tls: None,
            rules: &[],
            error: None,
            ..full.clone()
        };
        for record in [&full, &bare] {
            let (mut ours, mut clock) = (String::new(), TimeCache::default());
            record.format_into(&LogFormat::Json, &mut ours, &mut clock);
            assert_eq!(ours, through_serde(record, &mut clock));
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for s in [
            "plain",
            "",
            "a\"b\\c",
            "tab\there\nnew\rline",
            "\u{8}\u{c}\u{1}\u{1f}\u{7f}",
            "café ünïcode ✓",
            "ééééé\"x and more than a word",
            "abcdefgh\"ijklmnop\u{1}q",
        ] {
            let mut ours = String::new();
            push_json_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_string(s).unwrap(), "{s:?}");
        }
        // Every ASCII character at every place of three words (the skip goes a word at a time).
        for c in (0..128u8).map(char::from) {
            for at in 0..24 {
                let mut s: Vec<char> = "abcdefghijklmnopqrstuvwx".chars().collect();
                s[at] = c;
                let s: String = s.into_iter().collect();
                let mut ours = String::new();
                push_json_str(&mut ours, &s);
                assert_eq!(ours, serde_json::to_string(&s).unwrap(), "{s:?}");
            }
        }
    }

    #[test]
    fn milliseconds_are_the_shortest_decimal_of_micros_over_1000() {
        for micros in [
            0u64, 1, 7, 10, 42, 100, 857, 1_000, 1_500, 1_843, 12_000, 61_000_500,
        ] {
            let mut ours = String::new();
            push_json_millis(&mut ours, Duration::from_micros(micros));
            let theirs = serde_json::to_string(&(micros as f64 / 1000.0)).unwrap();
            assert_eq!(ours, theirs, "{micros} µs");
        }
    }

    #[test]
    fn display_values_are_escaped_too() {
        let mut out = String::new();
        let mut m = Members {
            out: &mut out,
            first: true,
        };
        m.display("a", Some("x\"y"));
        m.display("b", None::<&str>);
        m.out.push('}');
        assert_eq!(out, r#"{"a":"x\"y","b":null}"#);
    }
}
