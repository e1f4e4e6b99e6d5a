//! `listeners.*.header_timeout`: a request head must arrive whole within it (nginx's
//! `client_header_timeout`), so clients trickling their headers (slowloris) cannot hold
//! connections, and `max_connections` places, for ever. Bodies and idle keep-alive
//! connections are not limited by it.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Rampart with `header_timeout: 1s`, logging to `access.log` in its directory (returned).
fn start(up: &Upstream) -> (Rampart, String, std::path::PathBuf) {
    let http = free_addr();
    let (r, log) = Rampart::start_logging(|log| {
        format!(
            "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: {}, format: \"{{client_ip}} {{method}} {{status}} {{project}} {{duration_ms}} {{error}}\" }}\nlisteners:\n  http: {{ address: \"{http}\", header_timeout: 1s, max_connections: 2 }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
            free_addr(),
            log.display(),
            up.addr_string()
        )
    });
    // The harness's readiness probe is a connection too: the tests need both places.
    poll_until(Duration::from_secs(5), "no connection open", || {
        (r.metric("rampart_connections_open{listener=\"http\"}") == Some(0.0)).then_some(())
    });
    (r, http, log)
}

/// What the server sends until it closes, as text.
fn text_to_close(conn: &mut TcpStream) -> String {
    String::from_utf8_lossy(&read_to_close(conn)).into_owned()
}

/// Sends `bytes` one at a time, `gap` apart, until done or the server closes.
fn trickle(conn: &mut TcpStream, bytes: &[u8], gap: Duration) -> usize {
    for (i, b) in bytes.iter().enumerate() {
        if conn.write_all(&[*b]).is_err() {
            return i;
        }
        std::thread::sleep(gap);
    }
    bytes.len()
}

#[test]
fn a_head_trickled_past_header_timeout_gets_408_and_frees_its_place() {
    let up = Upstream::start("up");
    let (r, http, log) = start(&up);
    // Two trickling clients take both places.
    let began = Instant::now();
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let http = http.clone();
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(&http).unwrap();
                conn.write_all(b"GET /slow HTTP/1.1\r\nHost: a.test\r\n")
                    .unwrap();
                // 40 bytes, 150 ms apart: 6 s, each read well within Pingora's 60 s.
                let sent = trickle(
                    &mut conn,
                    b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    Duration::from_millis(150),
                );
                (sent, text_to_close(&mut conn), began.elapsed())
            })
        })
        .collect();
    for t in slow {
        let (sent, answer, after) = t.join().unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout"),
            "{answer:?}"
        );
        assert!(
            sent < 40 && after < Duration::from_secs(5),
            "cut after {sent} bytes, {after:?}"
        );
    }
    // Their places are free again.
    let answer = raw_get(&http, "/after", &[]).unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(up.hits(), 1, "the slow heads never reached the backend");
    assert_eq!(
        r.metric("rampart_header_timeouts_total{listener=\"http\"}"),
        Some(2.0)
    );
    r.wait_for_log(
        "listener http: a client took longer than header_timeout (1s) to send a request head; answered 408 and closed",
        Duration::from_secs(5),
    );
    // Counted and logged with the requests that reached no project, as nginx logs its 408s:
    // no request line was read, and the head had been coming for the whole timeout.
    assert_eq!(
        r.metric("rampart_requests_total{code=\"408\",project=\"_none\"}"),
        Some(2.0)
    );
    let text = log_lines(&log, 3);
    let mut timed_out = 0;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields[..] {
            ["127.0.0.1", "-", "408", "_none", ms, "client:ReadTimedout"] => {
                let ms: f64 = ms.parse().unwrap();
                assert!((1000.0..3000.0).contains(&ms), "{line}");
                timed_out += 1;
            }
            ["127.0.0.1", "GET", "200", "site", _, "-"] => {}
            _ => panic!("unexpected line: {line}"),
        }
    }
    assert_eq!(timed_out, 2, "{text}");
}

/// A connection that never sends a byte is closed after `header_timeout` (nginx: after
/// `client_header_timeout`), not after Pingora's own 60 s, and frees its place.
#[test]
fn a_connection_that_sends_nothing_is_closed_after_header_timeout() {
    let up = Upstream::start("up");
    let (r, http, log) = start(&up);
    let began = Instant::now();
    let silent: Vec<_> = (0..2)
        .map(|_| {
            let mut conn = TcpStream::connect(&http).unwrap();
            std::thread::spawn(move || (text_to_close(&mut conn), began.elapsed()))
        })
        .collect();
    for t in silent {
        let (answer, after) = t.join().unwrap();
        // Closed quietly: there was no request to answer.
        assert_eq!(answer, "");
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(5),
            "closed after {after:?}"
        );
    }
    // Both places of max_connections are free again.
    assert_eq!(raw_get(&http, "/after", &[]).unwrap().status, 200);
    // Nothing to log or count for a request that never began.
    let text = poll_until(Duration::from_secs(5), "the request in the log", || {
        std::fs::read_to_string(&log).ok().filter(|t| !t.is_empty())
    });
    assert!(
        text.starts_with("127.0.0.1 GET 200 site ") && text.lines().count() == 1,
        "{text}"
    );
    assert_eq!(
        r.metric("rampart_header_timeouts_total{listener=\"http\"}"),
        Some(0.0)
    );
}

#[test]
fn slow_bodies_and_idle_keepalive_connections_are_not_cut() {
    let up = Upstream::start("up");
    let (_r, http, _) = start(&up);
    let mut conn = TcpStream::connect(&http).unwrap();
    // The head at once, then a body over about 2 s: the body is not the head's business.
    conn.write_all(b"POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\n")
        .unwrap();
    assert_eq!(
        trickle(&mut conn, b"0123456789", Duration::from_millis(200)),
        10
    );
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = [0u8; 12];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&got));
    // Idle for longer than header_timeout between requests: keepalive_timeout's business.
    std::thread::sleep(Duration::from_millis(1500));
    let answer = raw_get(&http, "/next", &[]).unwrap();
    assert_eq!(answer.status, 200);
    // A head split over a few quick reads is fine.
    let mut conn = TcpStream::connect(&http).unwrap();
    for part in [
        &b"GET /split HT"[..],
        b"TP/1.1\r\nHost: a.te",
        b"st\r\nConnection: close\r\n\r",
        b"\n",
    ] {
        conn.write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = text_to_close(&mut conn);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}
