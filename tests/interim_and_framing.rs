//! The edges of HTTP framing between a client and a backend: interim `1xx` answers (owed a
//! final answer, never sent to HTTP/1.0 clients) and request bodies an h2 client ends with an
//! empty frame (framed once for an HTTP/1.1 backend), and a backend's framing headers given
//! twice (sent on once).

mod common;
use common::*;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

/// Rampart on `backend`, its access log `{status} {error}` (`Rampart::start_site`).
fn start(backend: &str) -> (Rampart, std::path::PathBuf, String) {
    Rampart::start_site(backend, "{status} {error}")
}

/// A backend that sends `103 Early Hints` for each request, then `rest`, then closes.
fn hints_then(rest: &'static [u8]) -> String {
    socket_backend(move |mut conn| {
        if read_head(&mut conn).is_err() {
            return;
        }
        let _ = conn.write_all(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n");
        let _ = conn.write_all(rest);
    })
}

/// A backend that fails after its `103` (closes, or sends garbage) leaves the final answer
/// to Rampart: the client gets its `502` after the hint, not a connection closed on the
/// hint, and the log and metrics count a `502`, not a `103`.
#[test]
fn a_backend_failing_after_an_interim_answer_gets_the_client_a_502() {
    for (rest, cause) in [
        (&b""[..], "ConnectionClosed"),
        (&b"garbage\r\n\r\n"[..], "InvalidHTTPHeader"),
    ] {
        let (r, log, http) = start(&hints_then(rest));
        let raw = raw_request(&http, b"GET /page HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let text = String::from_utf8_lossy(&raw);
        let (hint, answer) = text.split_once("\r\n\r\n").expect("two heads");
        assert!(hint.starts_with("HTTP/1.1 103 "), "{text}");
        let answer = RawResponse::parse(answer.as_bytes())
            .unwrap_or_else(|| panic!("a final answer after the hint: {text}"));
        assert_eq!(answer.status, 502, "{text}");
        assert_eq!(answer.header("connection"), Some("close"), "{text}");
        let line = log_lines(&log, 1);
        assert!(
            line.starts_with("502 upstream:") && line.contains(cause),
            "{line}"
        );
        assert_eq!(
            r.metric("rampart_requests_total{code=\"502\",project=\"site\"}"),
            Some(1.0)
        );
        assert_eq!(
            r.metric("rampart_requests_total{code=\"103\",project=\"site\"}"),
            None
        );
    }
}

/// RFC 9110 §15.2: a server must not send a `1xx` to an HTTP/1.0 client, which would take it
/// for the answer and the real answer for its body. HTTP/1.1 clients still get the hint.
#[test]
fn http_1_0_clients_get_no_interim_answer() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    let (_r, _log, http) = start(&hints_then(ok));
    let raw = raw_request(&http, b"GET /page HTTP/1.0\r\nHost: a\r\n\r\n").unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(!text.contains("103"), "{text}");
    assert!(text.ends_with("\r\n\r\nok"), "{text}");

    let raw = raw_request(
        &http,
        b"GET /page HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(
        String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 103 Early Hints\r\n"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

/// An h2 client that does not announce its body's length may end it with an empty DATA
/// frame (hyper does, Go's client too). The HTTP/1.1 backend must get the chunked body ended
/// once: a second `0\r\n\r\n` is read as the next request on a connection Rampart pools, whose
/// stray answer then meets another client's request.
#[test]
fn an_h2_body_ended_by_an_empty_frame_is_ended_once_for_the_backend() {
    let received = Arc::new(Mutex::new(Vec::<u8>::new()));
    let record = received.clone();
    let backend = socket_backend(move |mut conn| {
        let mut buf = [0u8; 4096];
        let mut pending = Vec::new();
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            record.lock().unwrap().extend_from_slice(&buf[..n]);
            pending.extend_from_slice(&buf[..n]);
            // One answer per chunked body's end (every request here has a body).
            while let Some(end) = pending.windows(5).position(|w| w == b"0\r\n\r\n") {
                pending.drain(..end + 5);
                let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if conn.write_all(answer).is_err() {
                    return;
                }
            }
        }
    });
    let cert = self_signed(&["up.test"]);
    let https = free_addr();
    let _r = Rampart::start(&format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  https: {{ address: \"{https}\", tls: {{ cert: \"{}\", key: \"{}\" }} }}\npools:\n  app: {{ backends: [\"{backend}\"], retries: 0 }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        free_addr(),
        cert.cert(),
        cert.key()
    ));
    let client = h2_client_blocking(&cert, &[("up.test", https.parse().unwrap())]);
    let url = format!(
        "https://up.test:{}/upload",
        https.rsplit(':').next().unwrap()
    );
    for n in 0..3 {
        // A body read from a stream: DATA frames, then an empty one with END_STREAM.
        let body = reqwest::blocking::Body::new(std::io::Cursor::new(format!("hello {n}")));
        let resp = client.post(&url).body(body).send().unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().unwrap(), "ok");
    }
    let received = String::from_utf8_lossy(&received.lock().unwrap()).to_string();
    assert_eq!(
        received.matches("POST /upload HTTP/1.1\r\n").count(),
        3,
        "{received}"
    );
    for n in 0..3 {
        assert!(
            received.contains(&format!("hello {n}\r\n0\r\n\r\n")),
            "{received}"
        );
    }
    assert_eq!(
        received.matches("0\r\n\r\n").count(),
        3,
        "each body ended once: {received}"
    );
}

/// The client's answer when the backend answers every request `200` with `rest` (the head's
/// other lines, then the body).
fn answer_through(rest: &str) -> RawResponse {
    let response = format!("HTTP/1.1 200 OK\r\n{rest}");
    let backend = socket_backend(move |conn| answer_every_head(conn, response.as_bytes()));
    let (_r, _log, http) = start(&backend);
    let raw = raw_request(
        &http,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    RawResponse::parse(&raw)
        .unwrap_or_else(|| panic!("no answer: {}", String::from_utf8_lossy(&raw)))
}

/// The values of header `name` in `answer`, a line each.
fn lines<'a>(answer: &'a RawResponse, name: &str) -> Vec<&'a str> {
    answer
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
        .collect()
}

/// A backend's length sent twice, or as a list of the same value, reaches the client as one
/// `Content-Length` (as nginx sends it): Node's client refuses `Content-Length: 2, 2` and a
/// repeated `Content-Length`. Lengths that disagree are the backend's error (`502`).
#[test]
fn a_backend_length_given_twice_reaches_the_client_once() {
    for lengths in [
        "Content-Length: 2, 2\r\n",
        "Content-Length: 2\r\ncontent-length: 2\r\n",
    ] {
        let answer = answer_through(&format!("{lengths}\r\nhello"));
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(lines(&answer, "content-length"), ["2"], "{answer:?}");
        assert_eq!(answer.text(), "he", "{answer:?}");
    }
    let answer = answer_through("Content-Length: 2\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(answer.status, 502, "{answer:?}");
}

/// A backend that says `chunked` twice (two lines, or a list) sends one chunked body, which
/// Rampart reads and sends the client in chunks of its own: the client is told `chunked`
/// once (twice would mean a body chunked twice, which RFC 9112 forbids). Another coding the
/// backend listed stays, before `chunked`.
#[test]
fn a_backend_chunked_coding_given_twice_reaches_the_client_once() {
    for (codings, told) in [
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "chunked",
        ),
        ("Transfer-Encoding: chunked, Chunked\r\n", "chunked"),
        (
            "Transfer-Encoding: gzip\r\ntransfer-encoding: chunked, chunked\r\n",
            "gzip, chunked",
        ),
    ] {
        let answer = answer_through(&format!("{codings}\r\n5\r\nhello\r\n0\r\n\r\n"));
        assert_eq!(answer.status, 200, "{codings}: {answer:?}");
        assert_eq!(
            lines(&answer, "transfer-encoding"),
            [told],
            "{codings}: {answer:?}"
        );
        assert_eq!(answer.text(), "hello", "{codings}: {answer:?}");
    }
}
