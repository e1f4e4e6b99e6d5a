//! Client connections between requests: `keepalive_timeout` closes idle ones, counted from
//! the last answer, never cutting an answer however slow; `keepalive_requests` caps reuse.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Rampart with `listener` settings on its one listener and a catch-all project on `backend`.
fn start(listener: &str, backend: &str) -> (Rampart, String) {
    let http = free_addr();
    let yaml = format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\", {listener} }}\npools:\n  app: {{ backends: [\"{backend}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        free_addr()
    );
    (Rampart::start(&yaml), http)
}

/// Reads one whole answer (Content-Length or chunked body) from a kept-alive connection.
fn read_answer(conn: &mut TcpStream) -> RawResponse {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let body = &got[end + 4..];
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse::<usize>().ok());
            let done = match length {
                Some(n) => body.len() >= n,
                None => body.ends_with(b"0\r\n\r\n"),
            };
            if done {
                return RawResponse::parse(&got).expect("a well-formed answer");
            }
        }
        match conn.read(&mut buf) {
            Ok(0) => panic!(
                "the connection closed mid-answer: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no whole answer ({e}): {:?}", String::from_utf8_lossy(&got)),
        }
    }
}

/// How long the server takes to close `conn`, which must send nothing more.
fn time_to_close(conn: &mut TcpStream) -> Duration {
    let start = Instant::now();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => start.elapsed(),
        Ok(_) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&rest)),
        Err(e) => panic!("the idle connection stayed open ({e})"),
    }
}

fn get(conn: &mut TcpStream, path: &str) -> RawResponse {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n").as_bytes())
        .unwrap();
    read_answer(conn)
}

/// An idle keep-alive connection is closed after the listener's `keepalive_timeout`, even
/// when the client asks for longer; Pingora alone keeps it open for ever.
#[test]
fn idle_client_connections_are_closed_after_keepalive_timeout() {
    let up = Upstream::start("up");
    let (_r, http) = start("keepalive_timeout: 1s", &up.addr_string());
    // Asking for an hour, and asking nothing (HTTP/1.1 keeps alive by default).
    for ask in ["Keep-Alive: timeout=3600\r\n", ""] {
        let mut conn = TcpStream::connect(&http).unwrap();
        conn.write_all(format!("GET /a HTTP/1.1\r\nHost: a.test\r\n{ask}\r\n").as_bytes())
            .unwrap();
        assert_eq!(read_answer(&mut conn).status, 200);
        let idle = time_to_close(&mut conn);
        assert!(
            idle >= Duration::from_millis(900) && idle < Duration::from_secs(5),
            "{ask:?}: closed {idle:?} after the answer"
        );
    }
}

/// After `keepalive_requests` answers an HTTP/1.1 connection is closed, the last answer saying
/// so, as nginx does; requests the client pipelined after it are not answered.
#[test]
fn a_connection_is_closed_after_keepalive_requests() {
    let up = Upstream::start("up");
    let (_r, http) = start("keepalive_requests: 3", &up.addr_string());
    let mut conn = TcpStream::connect(&http).unwrap();
    let request = "GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n";
    conn.write_all(request.repeat(5).as_bytes()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    if let Err(e) = conn.read_to_end(&mut got) {
        panic!(
            "the connection stayed open ({e}); got {}",
            String::from_utf8_lossy(&got)
        );
    }
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let answers: Vec<&str> = text.split("http/1.1 ").skip(1).collect();
    assert_eq!(answers.len(), 3, "{text}");
    assert!(
        answers[..2]
            .iter()
            .all(|a| a.contains("connection: keep-alive")),
        "{text}"
    );
    assert!(answers[2].contains("connection: close"), "{text}");
    assert_eq!(up.hits(), 3);
}

/// The timeout runs from the last answer, not the first: requests 0.6 s apart keep a
/// connection with a 1 s timeout open well past 1 s, which then closes about 1 s after the
/// last answer.
#[test]
fn keepalive_timeout_counts_from_the_last_answer() {
    let up = Upstream::start("up");
    let (_r, http) = start("keepalive_timeout: 1s", &up.addr_string());
    let mut conn = TcpStream::connect(&http).unwrap();
    let first = Instant::now();
    for i in 0..4 {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(600));
        }
        assert_eq!(get(&mut conn, &format!("/n{i}")).status, 200, "request {i}");
    }
    assert!(first.elapsed() >= Duration::from_millis(1800));
    let idle = time_to_close(&mut conn);
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(5),
        "closed {idle:?} after the last answer"
    );
    assert_eq!(up.hits(), 4);
}

/// A backend slower than `keepalive_timeout`, a body that pauses longer than it, and a
/// pipelined request waiting behind a slow one are all answered in full: the timeout is for
/// connections with no request in hand.
#[test]
fn answers_slower_than_keepalive_timeout_are_not_cut() {
    let up = Upstream::start("up");
    let (_r, http) = start("keepalive_timeout: 1s", &up.addr_string());
    let mut conn = TcpStream::connect(&http).unwrap();
    let slow = get(&mut conn, "/slow?ms=1500");
    assert_eq!(slow.status, 200);
    // The connection is still usable after the slow answer.
    assert_eq!(get(&mut conn, "/after").status, 200);
    // Two pipelined requests: the second waits 1.5 s at the backend.
    conn.write_all(
        b"GET /p1 HTTP/1.1\r\nHost: a.test\r\n\r\nGET /slow?ms=1500 HTTP/1.1\r\nHost: a.test\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_answer(&mut conn).status, 200);
    assert_eq!(read_answer(&mut conn).status, 200);

    // A backend that sends half its body, pauses 1.5 s, then sends the rest.
    let backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let drip = backend.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut c in backend.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = read_head(&mut c);
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n",
                );
                std::thread::sleep(Duration::from_millis(1500));
                let _ = c.write_all(b"6\r\nsecond\r\n0\r\n\r\n");
                let _ = c.read(&mut [0u8]); // until the proxy closes
            });
        }
    });
    let (_r2, http2) = start("keepalive_timeout: 1s", &drip);
    let mut conn = TcpStream::connect(&http2).unwrap();
    let dripped = get(&mut conn, "/stream");
    assert_eq!(dripped.status, 200);
    assert_eq!(dripped.text(), "firstsecond");
}
