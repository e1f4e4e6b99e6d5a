//! `listeners.*.max_header_size`: a request head (request line and headers) larger than it
//! is answered `431 Request Header Fields Too Large`, or `414 URI Too Long` when the request
//! line alone is, and never reaches a backend (nginx: `large_client_header_buffers`; Pingora
//! alone takes HTTP/1 heads of up to 1 MiB). HTTP/2 header lists are held to the same limit.

mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const LIMIT: usize = 4096;

/// A `GET /` head of exactly `size` bytes, padded with one header.
fn head_of(size: usize) -> Vec<u8> {
    let start = b"GET / HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\nX-Pad: ";
    let mut head = start.to_vec();
    head.resize(size - 4, b'p');
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(head.len(), size);
    head
}

/// Writes `head` in pieces of `piece` bytes, then reads the answer until the server closes.
fn send_in_pieces(addr: &str, head: &[u8], piece: usize) -> RawResponse {
    let mut conn = TcpStream::connect(addr).unwrap();
    for part in head.chunks(piece) {
        // The server may answer and stop reading before the whole head is sent.
        if conn.write_all(part).is_err() {
            break;
        }
        conn.flush().unwrap();
    }
    let got = read_to_close(&mut conn);
    RawResponse::parse(&got).unwrap_or_else(|| panic!("no answer: {got:?}"))
}

#[test]
fn a_head_over_max_header_size_gets_431_and_never_reaches_the_backend() {
    let up = Upstream::start("up");
    let http = free_addr();
    let (r, log) = Rampart::start_logging(|log| {
        format!(
            "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: {}, format: \"{{method}} {{status}} {{bytes}} {{project}}\" }}\nlisteners:\n  http: {{ address: \"{http}\", max_header_size: 4KiB }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
            free_addr(),
            log.display(),
            up.addr_string()
        )
    });

    // At the limit, in one write or in many: served.
    assert_eq!(send_in_pieces(&http, &head_of(LIMIT), LIMIT).status, 200);
    assert_eq!(send_in_pieces(&http, &head_of(LIMIT), 100).status, 200);
    assert_eq!(up.hits(), 2);

    // One byte over, in one write or in many, or far over (the client still sending when
    // the answer comes): 431 with a body saying why, and the connection closed.
    for (head, piece) in [
        (head_of(LIMIT + 1), LIMIT + 1),
        (head_of(LIMIT + 1), 100),
        (head_of(300_000), 16_384),
    ] {
        let answer = send_in_pieces(&http, &head, piece);
        assert_eq!(answer.status, 431, "{} bytes", head.len());
        assert_eq!(answer.text(), "Request header fields too large.\n");
        assert_eq!(answer.header("connection"), Some("close"));
    }
    // A request line alone over the limit: 414.
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nHost: site.test\r\n\r\n",
        "u".repeat(LIMIT)
    );
    let answer = send_in_pieces(&http, long_uri.as_bytes(), 1000);
    assert_eq!(answer.status, 414);
    assert_eq!(answer.text(), "URI too long.\n");
    assert_eq!(up.hits(), 2, "no oversized head reached the backend");

    // Counted and logged with the requests that reached no project, as the 400s and 408s.
    assert_eq!(
        r.metric("rampart_requests_total{code=\"431\",project=\"_none\"}"),
        Some(3.0)
    );
    assert_eq!(
        r.metric("rampart_requests_total{code=\"414\",project=\"_none\"}"),
        Some(1.0)
    );
    let text = log_lines(&log, 6);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[..2].iter().all(|l| l.starts_with("GET 200 ")),
        "{text}"
    );
    assert_eq!(
        lines[2..],
        [
            "- 431 33 _none",
            "- 431 33 _none",
            "- 431 33 _none",
            "- 414 14 _none"
        ]
    );
    r.wait_for_log(
        "listener http: a request head was larger than max_header_size (4096 bytes); answered 431 and closed",
        Duration::from_secs(5),
    );
    // The listener still serves.
    assert_eq!(raw_get(&http, "/after", &[]).unwrap().status, 200);
}

/// Over HTTP/2 the header list is held to the same limit (by Pingora's HTTP/2 layer, which
/// answers 431 itself).
#[test]
fn http2_header_lists_are_held_to_max_header_size() {
    let ca = TestCa::new();
    let cert = ca.issue(&["site.test"]);
    let up = Upstream::start("up");
    let (_r, addr) = Rampart::start_tls_site(&cert, "max_header_size: 4KiB, ", &up);
    let url = format!("https://site.test:{}/x", addr.port());
    let h2 = h2_client_blocking(&ca, &[("site.test", addr)]);
    let small = h2
        .get(&url)
        .header("x-pad", "p".repeat(3000))
        .send()
        .unwrap();
    assert_eq!(small.version(), reqwest::Version::HTTP_2);
    assert_eq!(small.status(), 200);
    let large = h2
        .get(&url)
        .header("x-pad", "p".repeat(5000))
        .send()
        .unwrap();
    assert_eq!(large.status(), 431);
    assert_eq!(up.hits(), 1);
}
