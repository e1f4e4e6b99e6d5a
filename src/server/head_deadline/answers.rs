//! The answers the client stream's wrapper writes itself, all in one place: the `408` of
//! `header_timeout`, the `431`/`414` of `max_header_size` (`oversized`), and Rampart's words
//! for the answers Pingora gives on its own before any phase of the proxy runs (`400` to a
//! head it cannot parse, `405` to a `CONNECT`). Pingora's say `Server: Pingora` (naming the
//! software to whoever probes the edge) and carry no body; these say what went wrong, as
//! Rampart's other answers do. Each closes the connection.

use super::{status_of, HeadDeadline};
use crate::proxy::access_log::Failure;

/// The answer a client gets instead of Pingora's, and how it is logged.
pub(super) struct OwnAnswer {
    pub answer: &'static [u8],
    /// For the access log's `error`: the client's failure, or none for a refusal.
    pub failure: Option<Failure>,
    /// For the warning: what the head did.
    pub why: &'static str,
}

pub(super) const TIMED_OUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
pub(super) const HEAD_TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\nContent-Length: 33\r\nConnection: close\r\n\r\nRequest header fields too large.\n";
pub(super) const URI_TOO_LONG: &[u8] = b"HTTP/1.1 414 URI Too Long\r\nContent-Type: text/plain\r\nContent-Length: 14\r\nConnection: close\r\n\r\nURI too long.\n";

const UNPARSABLE: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 37\r\nConnection: close\r\n\r\nthe request head could not be parsed\n";

/// RFC 9110 asks a `405` to say which methods are allowed: every one but `CONNECT` and
/// `TRACE` is forwarded; the usual ones are listed, as in the proxy's own `405` to a `TRACE`.
const CONNECT_REFUSED: &[u8] = concat!(
    "HTTP/1.1 405 Method Not Allowed\r\nAllow: ",
    crate::proxy::request_head::allowed_methods!(),
    "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 50\r\nConnection: close\r\n\r\nCONNECT is not supported: this is a reverse proxy\n"
)
.as_bytes();

impl HeadDeadline {
    /// The answer to give instead of `pingoras` (the first bytes of a response being
    /// written), when it is one of Pingora's own.
    pub(super) fn own_answer(&self, pingoras: &[u8]) -> Option<OwnAnswer> {
        if !self.pingoras_own() {
            return None;
        }
        match status_of(pingoras)? {
            400 => Some(OwnAnswer {
                answer: UNPARSABLE,
                failure: Some(Failure::CLIENT_UNPARSABLE),
                why: "could not be parsed",
            }),
            405 => Some(OwnAnswer {
                answer: CONNECT_REFUSED,
                failure: None,
                why: "asked for CONNECT, which a reverse proxy does not do",
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_the_body_length_and_the_connection_closes() {
        let all = [
            TIMED_OUT,
            HEAD_TOO_LARGE,
            URI_TOO_LONG,
            UNPARSABLE,
            CONNECT_REFUSED,
        ];
        for answer in all {
            let text = std::str::from_utf8(answer).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let announced = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap();
            assert_eq!(announced.parse::<usize>().unwrap(), body.len(), "{text}");
            assert!(!head.contains("Server:"), "{text}");
            assert!(head.ends_with("\r\nConnection: close"), "{text}");
        }
    }

    #[test]
    fn both_405s_allow_the_same_methods() {
        let allow = format!(
            "\r\nAllow: {}\r\n",
            crate::proxy::request_head::ALLOWED_METHODS
        );
        assert!(String::from_utf8_lossy(CONNECT_REFUSED).contains(&allow));
    }

    #[test]
    fn status_lines_are_read_and_anything_else_is_not_one() {
        assert_eq!(status_of(b"HTTP/1.1 400 Bad Request\r\n"), Some(400));
        assert_eq!(status_of(b"HTTP/1.0 101 Switching"), Some(101));
        assert_eq!(status_of(b"HTTP/1.1 599"), Some(599));
        assert_eq!(status_of(UNPARSABLE), Some(400));
        assert_eq!(status_of(CONNECT_REFUSED), Some(405));
        for not in [
            &b"HTTP/1.1 40"[..],
            b"HTTP/1.1 4x0 Bad",
            b"HTTP/2.0 200 OK",
            b"HTTP/1.1  200",
            b"<html>HTTP/1.1 200",
            b"",
        ] {
            assert_eq!(status_of(not), None, "{not:?}");
        }
    }
}
