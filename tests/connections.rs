//! `listeners.*.max_connections`: client connections beyond it are refused (HTTP/1: 503),
//! counted and logged; `rampart_connections_open` follows the connections a listener holds.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const REQUEST: &[u8] = b"GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n";

/// Sends one keep-alive GET on `conn` and returns the answer's head.
fn ask(conn: &mut TcpStream) -> String {
    conn.write_all(REQUEST).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn connections_beyond_max_connections_get_503_and_are_counted() {
    let up = Upstream::start("up");
    let http = free_addr();
    let yaml = format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\", max_connections: 2 }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        free_addr(),
        up.addr_string()
    );
    let check = rampart_check(&yaml);
    assert!(
        check.stdout.contains("plain http, max 2 connections"),
        "{}",
        check.stdout
    );
    let r = Rampart::start(&yaml);
    let open = || r.metric("rampart_connections_open{listener=\"http\"}");
    // The harness's readiness probes connect too: wait until they are gone.
    poll_until(Duration::from_secs(5), "no connection open", || {
        (open() == Some(0.0)).then_some(())
    });
    let mut first = TcpStream::connect(&http).unwrap();
    let mut second = TcpStream::connect(&http).unwrap();
    assert!(ask(&mut first).starts_with("HTTP/1.1 200"));
    assert!(ask(&mut second).starts_with("HTTP/1.1 200"));
    assert_eq!(open(), Some(2.0), "two kept-alive connections");

    // A third is answered 503 and closed, though the two others are idle.
    let mut third = TcpStream::connect(&http).unwrap();
    third.write_all(REQUEST).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    third
        .read_to_string(&mut answer)
        .expect("the refused connection is closed");
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    assert!(
        answer.ends_with("Too many connections to this listener.\n"),
        "{answer}"
    );
    assert_eq!(
        r.metric("rampart_connections_refused_total{listener=\"http\"}"),
        Some(1.0)
    );
    r.wait_for_log(
        "listener http: max_connections (2) reached; refusing new connections",
        Duration::from_secs(5),
    );
    assert_eq!(
        up.hits(),
        2,
        "the refused request never reached the backend"
    );

    // Once one closes, a new connection is served again.
    drop(first);
    poll_until(
        Duration::from_secs(5),
        "the closed connection uncounted",
        || (open() == Some(1.0)).then_some(()),
    );
    let mut fourth = TcpStream::connect(&http).unwrap();
    assert!(ask(&mut fourth).starts_with("HTTP/1.1 200"));
    assert!(ask(&mut second).starts_with("HTTP/1.1 200"), "still served");
    assert_eq!(open(), Some(2.0));
}

/// Over TLS the limit counts HTTP/1.1 and HTTP/2 connections alike; a refused HTTP/2 client
/// sees its connection closed, an HTTP/1.1 client the 503.
#[test]
fn tls_connections_are_limited_whatever_their_protocol() {
    let ca = TestCa::new();
    let cert = ca.issue(&["site.test"]);
    let up = Upstream::start("up");
    let (r, addr) = Rampart::start_tls_site(&cert, "max_connections: 1, ", &up);
    let url = format!("https://site.test:{}/x", addr.port());
    poll_until(Duration::from_secs(5), "no connection open", || {
        (r.metric("rampart_connections_open{listener=\"https\"}") == Some(0.0)).then_some(())
    });
    // Each client keeps its own connection open in its pool.
    let h2 = h2_client_blocking(&ca, &[("site.test", addr)]);
    let resp = h2.get(&url).send().unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert_eq!(
        r.metric("rampart_connections_open{listener=\"https\"}"),
        Some(1.0)
    );

    let other_h2 = h2_client_blocking(&ca, &[("site.test", addr)]);
    assert!(
        other_h2.get(&url).send().is_err(),
        "a second HTTP/2 connection is closed"
    );
    let h1 = https1_client_blocking(&ca, &[("site.test", addr)]);
    let refused = h1.get(&url).send().unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(
        r.metric("rampart_connections_refused_total{listener=\"https\"}"),
        Some(2.0)
    );
    // The first connection is still served.
    assert_eq!(h2.get(&url).send().unwrap().status(), 200);
}
