//! One finished request as the access log sees it, and its line in each format.

use super::field_text::{
    display_or_dash, escape_into, header_bytes, push_escaped, push_header, push_int, push_millis,
    push_socket_addr, push_three_digits, PLAIN_IN_LIST,
};
use super::{Field, LogFormat, Piece};
use crate::proxy::forward::IpText;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
    pub(super) fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
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

    pub(super) fn iso_into(&mut self, t: SystemTime, out: &mut String) {
        let ms = self.refresh(t);
        out.push_str(&self.iso);
        out.push('.');
        push_three_digits(out, ms);
        out.push('Z');
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
            Field::Upstream => match self.upstream {
                Some(addr) => return push_socket_addr(out, addr),
                None => b"-",
            },
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
            // Empty for a request refused before it was read (a head Pingora could not
            // parse): `-`, as for any value missing, so that fields stay apart.
            Field::Host => dash_if_empty(self.host.as_bytes()),
            Field::Referer => header_bytes(self.referer),
            Field::UserAgent => header_bytes(self.user_agent),
            Field::RequestId => dash_if_empty(self.request_id.as_bytes()),
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
                push_escaped(out, dash_if_empty(self.request_id.as_bytes()));
                out.push(' ');
                push_millis(out, self.duration);
            }
            LogFormat::Json => self.write_json(out, clock),
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

/// A field with no value (an empty host or request id) is written `-`, as a missing one.
fn dash_if_empty(value: &[u8]) -> &[u8] {
    if value.is_empty() {
        b"-"
    } else {
        value
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
    fn iso_times_have_three_digits_of_milliseconds() {
        let mut clock = TimeCache::default();
        for (ms, text) in [
            (0, "1970-01-02T00:00:00.000Z"),
            (7, "1970-01-02T00:00:00.007Z"),
            (42, "1970-01-02T00:00:00.042Z"),
            (999, "1970-01-02T00:00:00.999Z"),
            (1_123, "1970-01-02T00:00:01.123Z"),
        ] {
            let mut out = String::new();
            let t = SystemTime::UNIX_EPOCH + Duration::from_millis(86_400_000 + ms);
            clock.iso_into(t, &mut out);
            assert_eq!(out, text);
        }
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
}
