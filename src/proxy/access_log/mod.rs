//! Access log: the request path formats its line into its thread's pending text (`queue`;
//! never waiting on I/O, and dropping the line, counted, when the writer has fallen far behind);
//! a background service takes each thread's text and writes it in batches (`writer`).

mod queue;
mod writer;

pub use queue::AccessLogger;
pub use writer::{access_log, AccessLogFinisher, AccessLogWriter};

use super::forward::IpText;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
    Off,
    File(PathBuf),
}

impl LogTarget {
    /// `stdout`, `stderr`, `off` (any case) or an absolute path: a relative one would depend
    /// on the directory Rampart was started from (`OFF` made a file named OFF there).
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "stdout" => LogTarget::Stdout,
            "stderr" => LogTarget::Stderr,
            "off" | "" => LogTarget::Off,
            _ if s.starts_with('/') => LogTarget::File(s.into()),
            _ => {
                return Err(format!(
                    "`{s}` is not stdout, stderr, off or an absolute path (e.g. /var/log/rampart/access.log)"
                ))
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ClientIp,
    Time,
    Method,
    Uri,
    Path,
    Query,
    Host,
    Protocol,
    Status,
    Bytes,
    DurationMs,
    Referer,
    UserAgent,
    RequestId,
    Project,
    Upstream,
    TlsVersion,
    TlsCipher,
    Rules,
    Error,
}

const FIELDS: &[(&str, Field)] = &[
    ("client_ip", Field::ClientIp),
    ("time", Field::Time),
    ("method", Field::Method),
    ("uri", Field::Uri),
    ("path", Field::Path),
    ("query", Field::Query),
    ("host", Field::Host),
    ("protocol", Field::Protocol),
    ("status", Field::Status),
    ("bytes", Field::Bytes),
    ("duration_ms", Field::DurationMs),
    ("referer", Field::Referer),
    ("user_agent", Field::UserAgent),
    ("request_id", Field::RequestId),
    ("project", Field::Project),
    ("upstream", Field::Upstream),
    ("tls_version", Field::TlsVersion),
    ("tls_cipher", Field::TlsCipher),
    ("rules", Field::Rules),
    ("error", Field::Error),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Field(Field),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    Combined,
    Json,
    Template(Vec<Piece>),
}

impl LogFormat {
    /// `combined`, `json`, or a template such as `{client_ip} {method} {uri} {status}`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "combined" => return Ok(LogFormat::Combined),
            "json" => return Ok(LogFormat::Json),
            _ => {}
        }
        if !s.contains('{') {
            // `JSON ` or `comibned` would log the same literal line for every request.
            return Err(format!(
                "`{s}` is not combined, json or a template with at least one {{field}} (e.g. \"{{client_ip}} {{method}} {{uri}} {{status}}\")"
            ));
        }
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in `{s}`"))?
                + open;
            let name = &rest[open + 1..close];
            let field = FIELDS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    let known: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
                    format!(
                        "unknown field `{{{name}}}`: use combined, json or a template of {}",
                        known.join(", ")
                    )
                })?;
            pieces.push(Piece::Field(field));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(LogFormat::Template(pieces))
    }
}

/// What is known about one finished request, borrowed from it: the line is formatted before
/// the request is dropped.
#[derive(Debug, Clone)]
pub struct LogRecord<'a> {
    pub time: SystemTime,
    pub client_ip: Option<&'a IpText>,
    /// None when no request line was read: a head Pingora could not parse (it answers 400
    /// itself) or one cut by `header_timeout` (408). Such lines show `-` there, as nginx's.
    pub request: Option<RequestLine<'a>>,
    pub host: &'a str,
    pub status: u16,
    pub bytes: usize,
    pub duration: Duration,
    pub referer: Option<&'a http::HeaderValue>,
    pub user_agent: Option<&'a http::HeaderValue>,
    pub request_id: &'a http::HeaderValue,
    pub project: Option<&'a str>,
    pub upstream: Option<SocketAddr>,
    /// The client connection's TLS parameters; None over plain HTTP.
    pub tls: Option<&'a pingora_core::protocols::tls::SslDigest>,
    /// Ids of the rules that matched, in evaluation order.
    pub rules: &'a [Arc<str>],
    /// What cut the request short, if anything did.
    pub error: Option<Failure>,
}

/// What cut a request short, written `upstream:ReadTimedout`: the side that failed
/// (`upstream`, `client`, or `proxy` for Rampart itself) and Pingora's name for the failure.
/// On every line that has one, where the error log is throttled: a 502 among thousands of
/// requests, or a response cut mid-body (logged with the status already sent), shows its cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub side: &'static str,
    pub kind: &'static str,
}

impl Failure {
    /// A client too slow with a request head (`header_timeout`) or body: the `408`s.
    pub const CLIENT_TIMED_OUT: Failure = Failure {
        side: "client",
        kind: "ReadTimedout",
    };
    /// A request head Pingora could not parse (its own `400`).
    pub const CLIENT_UNPARSABLE: Failure = Failure {
        side: "client",
        kind: "InvalidHTTPHeader",
    };

    pub fn of(e: &pingora_error::Error) -> Failure {
        use pingora_error::ErrorSource;
        let side = match e.esource() {
            ErrorSource::Upstream => "upstream",
            ErrorSource::Downstream => "client",
            ErrorSource::Internal | ErrorSource::Unset => "proxy",
        };
        Failure {
            side,
            kind: e.etype().as_str(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.side, self.kind)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    pub method: &'a http::Method,
    pub uri: &'a http::Uri,
    pub protocol: &'static str,
}

impl RequestLine<'_> {
    fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }
}

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
const PLAIN_IN_LIST: [bool; 256] = plain_bytes(b", ");

/// Appends `bytes` escaped as nginx escapes log variables: `"` and `\` with a backslash,
/// control characters and bytes outside ASCII as `\xHH`. A client's `"` or `\` cannot end a
/// quoted field early (shifting the fields a log parser reads), and a control character
/// cannot forge a line or reach a terminal.
fn push_escaped(out: &mut String, bytes: &[u8]) {
    escape_from(out, bytes, &PLAIN, plain_prefix(bytes));
}

/// How many leading bytes of `bytes` [`PLAIN`] passes, found eight at a time: the fields
/// escaped on every line (path, request id) are nearly always plain throughout, and the
/// table walk costs ~10 instructions per byte.
fn plain_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    // Bit tricks on eight bytes at once, each exact as a yes/no for the word.
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let mut plain = 0;
    for word in bytes.chunks_exact(8) {
        let x = u64::from_ne_bytes(word.try_into().expect("eight bytes"));
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0; // a byte < 0x20
        let high = (x.wrapping_add(ONES) | x) & HIGH != 0; // a byte > 0x7e
        if control
            || high
            || has_zero(x ^ (ONES * u64::from(b'"')))
            || has_zero(x ^ (ONES * u64::from(b'\\')))
        {
            break;
        }
        plain += 8;
    }
    plain
}

/// [`push_escaped`], with the bytes `plain` does not pass written `\xHH` too.
fn escape_into(out: &mut String, bytes: &[u8], plain: &[bool; 256]) {
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
fn json_text(v: Option<&http::HeaderValue>) -> Option<std::borrow::Cow<'_, str>> {
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

fn push_int(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Milliseconds with three decimals, without float formatting (nor `as_micros`, whose `u128`
/// divisions cost ~150 instructions per line).
fn push_millis(out: &mut String, d: Duration) {
    push_int(out, d.as_secs() * 1000 + u64::from(d.subsec_millis()));
    let frac = d.subsec_micros() % 1000;
    out.push('.');
    for digit in [frac / 100, frac / 10 % 10, frac % 10] {
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Timestamps formatted once per second rather than once per line.
#[derive(Default)]
pub struct TimeCache {
    second: Option<u64>,
    combined: String,
    iso: String,
}

impl TimeCache {
    /// Refreshes the cached strings for `t`'s second; returns the milliseconds.
    fn refresh(&mut self, t: SystemTime) -> u32 {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        if self.second != Some(d.as_secs()) {
            let dt = chrono::DateTime::<chrono::Utc>::from(
                std::time::UNIX_EPOCH + Duration::from_secs(d.as_secs()),
            );
            self.combined = dt.format("%d/%b/%Y:%H:%M:%S %z").to_string();
            self.iso = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
            self.second = Some(d.as_secs());
        }
        d.subsec_millis()
    }

    fn combined(&mut self, t: SystemTime) -> &str {
        self.refresh(t);
        &self.combined
    }

    fn iso_into(&mut self, t: SystemTime, out: &mut String) {
        let ms = self.refresh(t);
        out.push_str(&self.iso);
        let _ = write!(out, ".{ms:03}Z");
    }
}

/// A header's value escaped, or `-` when the request has none.
fn push_header(out: &mut String, v: Option<&http::HeaderValue>) {
    match v {
        Some(v) => push_escaped(out, v.as_bytes()),
        None => out.push('-'),
    }
}

/// A header's bytes, `-` when absent.
fn header_bytes(v: Option<&http::HeaderValue>) -> &[u8] {
    v.map_or(b"-", |v| v.as_bytes())
}

/// `value` through `Display`, or `-`: `fmt` runs only for the lines that have one, not for the
/// `-` of nearly every line.
fn display_or_dash(out: &mut String, value: Option<impl std::fmt::Display>) {
    match value {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push('-'),
    }
}

impl LogRecord<'_> {
    fn write_client_ip(&self, out: &mut String) {
        match self.client_ip {
            // Digits, dots, colons and hex digits: nothing to escape.
            Some(ip) => out.push_str(ip.as_str()),
            None => out.push('-'),
        }
    }

    /// The rule ids, comma-separated, or `-`. Besides the usual escaping, a `,` or a space in
    /// an id and an id that is `-` itself are written `\xHH`, so the list reads back
    /// unambiguously.
    fn write_rules(&self, out: &mut String) {
        if self.rules.is_empty() {
            return out.push('-');
        }
        for (i, id) in self.rules.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match &**id {
                "-" => out.push_str("\\x2D"),
                id => escape_into(out, id.as_bytes(), &PLAIN_IN_LIST),
            }
        }
    }

    fn write_field(&self, out: &mut String, f: Field, clock: &mut TimeCache) {
        let text: &[u8] = match f {
            Field::ClientIp => return self.write_client_ip(out),
            Field::Time => return clock.iso_into(self.time, out),
            Field::Status => return push_int(out, self.status),
            Field::Bytes => return push_int(out, self.bytes),
            Field::DurationMs => return push_millis(out, self.duration),
            Field::Rules => return self.write_rules(out),
            // Static words and socket addresses: nothing to escape.
            Field::Error => return display_or_dash(out, self.error),
            Field::Upstream => return display_or_dash(out, self.upstream),
            Field::Method | Field::Uri | Field::Path | Field::Query | Field::Protocol => {
                let Some(line) = &self.request else {
                    return out.push('-');
                };
                match f {
                    Field::Method => line.method.as_str(),
                    Field::Uri => line.path_and_query(),
                    Field::Path => line.uri.path(),
                    Field::Query => line.uri.query().unwrap_or(""),
                    _ => line.protocol,
                }
                .as_bytes()
            }
            Field::Host => self.host.as_bytes(),
            Field::Referer => header_bytes(self.referer),
            Field::UserAgent => header_bytes(self.user_agent),
            Field::RequestId => self.request_id.as_bytes(),
            Field::Project => self.project.unwrap_or("-").as_bytes(),
            Field::TlsVersion => self.tls.map_or("-", |t| &t.version).as_bytes(),
            Field::TlsCipher => self.tls.map_or("-", |t| &t.cipher).as_bytes(),
        };
        push_escaped(out, text);
    }

    /// Appends one line (with its newline) in `format`.
    pub fn format_into(&self, format: &LogFormat, out: &mut String, clock: &mut TimeCache) {
        match format {
            LogFormat::Combined => {
                self.write_client_ip(out);
                out.push_str(" - - [");
                out.push_str(clock.combined(self.time));
                out.push_str("] \"");
                match &self.request {
                    Some(line) => {
                        // A method is a token (RFC 9110 §9.1): nothing in it needs escaping.
                        out.push_str(line.method.as_str());
                        out.push(' ');
                        push_escaped(out, line.path_and_query().as_bytes());
                        out.push(' ');
                        out.push_str(line.protocol);
                    }
                    None => out.push('-'),
                }
                out.push_str("\" ");
                push_int(out, self.status);
                out.push(' ');
                push_int(out, self.bytes);
                out.push_str(" \"");
                push_header(out, self.referer);
                out.push_str("\" \"");
                push_header(out, self.user_agent);
                out.push_str("\" ");
                push_escaped(out, self.request_id.as_bytes());
                out.push(' ');
                push_millis(out, self.duration);
            }
            LogFormat::Json => {
                let mut time = String::with_capacity(24);
                clock.iso_into(self.time, &mut time);
                let v = serde_json::json!({
                    "time": time,
                    "client_ip": self.client_ip.map(IpText::as_str),
                    "method": self.request.map(|l| l.method.as_str()),
                    "uri": self.request.as_ref().map(RequestLine::path_and_query),
                    "host": self.host,
                    "protocol": self.request.map(|l| l.protocol),
                    "status": self.status,
                    "bytes": self.bytes,
                    // Microseconds in milliseconds: 81.873, not 81.87330399999999.
                    "duration_ms": self.duration.as_micros() as f64 / 1000.0,
                    "referer": json_text(self.referer),
                    "user_agent": json_text(self.user_agent),
                    "request_id": json_text(Some(self.request_id)),
                    "project": self.project,
                    "upstream": self.upstream.map(|a| a.to_string()),
                    "tls_version": self.tls.map(|t| &*t.version),
                    "tls_cipher": self.tls.map(|t| &*t.cipher),
                    "rules": self.rules.iter().map(|id| &**id).collect::<Vec<&str>>(),
                    "error": self.error.map(|f| f.to_string()),
                });
                let _ = write!(out, "{v}");
            }
            LogFormat::Template(pieces) => {
                for p in pieces {
                    match p {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Field(f) => self.write_field(out, *f, clock),
                    }
                }
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base<'a>(uri: &'a http::Uri, headers: &'a [http::HeaderValue; 2]) -> LogRecord<'a> {
        static IP: std::sync::LazyLock<IpText> =
            std::sync::LazyLock::new(|| IpText::new("10.1.2.3".parse().unwrap()));
        let ip: &'static IpText = &IP;
        LogRecord {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(86_400),
            client_ip: Some(ip),
            request: Some(RequestLine {
                method: &http::Method::GET,
                uri,
                protocol: "HTTP/1.1",
            }),
            host: "shop.test",
            status: 200,
            bytes: 12,
            duration: Duration::from_micros(1500),
            referer: None,
            user_agent: Some(&headers[0]),
            request_id: &headers[1],
            project: Some("shop"),
            upstream: None,
            tls: None,
            rules: &[],
            error: None,
        }
    }

    #[test]
    fn formats_combined_json_and_template() {
        let uri = http::Uri::from_static("/a?b=1");
        let headers = ["curl/8", "rid"].map(http::HeaderValue::from_static);
        let ids: [Arc<str>; 2] = ["moved".into(), "old.csv:2".into()];
        let record = || LogRecord {
            rules: &ids,
            ..base(&uri, &headers)
        };
        let mut s = String::new();
        record().format_into(&LogFormat::Combined, &mut s, &mut TimeCache::default());
        assert_eq!(s, "10.1.2.3 - - [02/Jan/1970:00:00:00 +0000] \"GET /a?b=1 HTTP/1.1\" 200 12 \"-\" \"curl/8\" rid 1.500\n");
        s.clear();
        record().format_into(&LogFormat::Json, &mut s, &mut TimeCache::default());
        let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
        assert_eq!(v["status"], 200);
        assert_eq!(v["project"], "shop");
        assert_eq!(v["time"], "1970-01-02T00:00:00.000Z");
        assert_eq!(v["rules"], serde_json::json!(["moved", "old.csv:2"]));
        assert_eq!(v["error"], serde_json::Value::Null);
        s.clear();
        let t = LogFormat::parse("{client_ip} {method} {path} q={query} {status} {rules}").unwrap();
        record().format_into(&t, &mut s, &mut TimeCache::default());
        assert_eq!(s, "10.1.2.3 GET /a q=b=1 200 moved,old.csv:2\n");
        s.clear();
        let none = base(&uri, &headers);
        none.format_into(&t, &mut s, &mut TimeCache::default());
        assert_eq!(s, "10.1.2.3 GET /a q=b=1 200 -\n");
        s.clear();
        let odd_ids: [Arc<str>; 3] = ["a,b c".into(), "-".into(), "é\"".into()];
        let odd = LogRecord {
            rules: &odd_ids,
            ..base(&uri, &headers)
        };
        odd.format_into(&t, &mut s, &mut TimeCache::default());
        assert_eq!(
            s,
            "10.1.2.3 GET /a q=b=1 200 a\\x2Cb\\x20c,\\x2D,\\xC3\\xA9\\\"\n"
        );
    }

    #[test]
    fn writes_what_cut_a_request_short() {
        let uri = http::Uri::from_static("/a");
        let headers = ["curl/8", "rid"].map(http::HeaderValue::from_static);
        let timed_out = pingora_error::Error::new(pingora_error::ErrorType::ReadTimedout);
        let gone = pingora_error::Error::new(pingora_error::ErrorType::ConnectionClosed);
        let t = LogFormat::parse("{status} {error}").unwrap();
        let mut s = String::new();
        for (error, line) in [
            (None, "200 -\n"),
            (Some(timed_out.into_up()), "200 upstream:ReadTimedout\n"),
            (Some(gone.into_down()), "200 client:ConnectionClosed\n"),
        ] {
            let record = LogRecord {
                error: error.as_deref().map(Failure::of),
                ..base(&uri, &headers)
            };
            s.clear();
            record.format_into(&t, &mut s, &mut TimeCache::default());
            assert_eq!(s, line);
            s.clear();
            record.format_into(&LogFormat::Json, &mut s, &mut TimeCache::default());
            let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
            let text = line.trim_end().split_once(' ').unwrap().1;
            match error {
                Some(_) => assert_eq!(v["error"], text),
                None => assert_eq!(v["error"], serde_json::Value::Null),
            }
        }
        let internal =
            pingora_error::Error::explain(pingora_error::ErrorType::HTTPStatus(503), "x");
        assert_eq!(Failure::of(&internal).to_string(), "proxy:HTTPStatus");
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
        for b in 0..=255u8 {
            for at in 0..24 {
                let mut field = [b'a'; 24];
                field[at] = b;
                let expected = if PLAIN[usize::from(b)] {
                    24
                } else {
                    at / 8 * 8
                };
                assert_eq!(plain_prefix(&field), expected, "byte {b:#x} at {at}");
                let (mut fast, mut slow) = (String::new(), String::new());
                push_escaped(&mut fast, &field);
                escape_into(&mut slow, &field, &PLAIN);
                assert_eq!(fast, slow);
            }
        }
    }

    #[test]
    fn rejects_unknown_template_field() {
        let e = LogFormat::parse("{client_ip} {nope}").unwrap_err();
        assert!(e.contains("unknown field `{nope}`"), "{e}");
    }
}
