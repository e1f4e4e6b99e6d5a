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
    let (yaml, http, up) = site("max_connections: 2 ");
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

/// Rampart with one plain listener (with `listener_options`, e.g. `"max_connections: 1000, "`)
/// proxying to a new upstream, no access log, started under the open-file `limits` (soft,
/// hard); also the listener's address, and the upstream to keep alive.
fn start_under_file_limit(
    listener_options: &str,
    limits: (u64, u64),
) -> (Rampart, String, Upstream) {
    let (yaml, http, up) = site(listener_options);
    let r = Rampart::start_with_file_limit(tempfile::tempdir().unwrap(), &yaml, limits);
    (r, http, up)
}

/// A config with one catch-all project proxying to a new upstream, no access log, and
/// `listener_options` on its listener; also the listener's address and the upstream.
fn site(listener_options: &str) -> (String, String, Upstream) {
    let up = Upstream::start("up");
    let http = free_addr();
    let yaml = format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\", {listener_options}}}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        free_addr(),
        up.addr_string()
    );
    (yaml, http, up)
}

/// A shell or a container often starts a process with a soft open-file limit of 1 024 or
/// less, under a higher hard one: Rampart raises the soft limit to the hard one at start, so
/// it serves more clients at once than the soft limit has descriptors.
#[test]
fn the_open_file_limit_is_raised_so_more_clients_than_the_soft_limit_are_served() {
    const CLIENTS: usize = 300;
    // The test holds a descriptor per client too.
    let own = rlimit::increase_nofile_limit(4096).unwrap();
    assert!(own >= 1024, "this test needs 1 024 descriptors, has {own}");
    let (r, http, _up) = start_under_file_limit("", (128, 1024));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", r.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        open_files.split_whitespace().collect::<Vec<_>>()[3..5],
        ["1024", "1024"],
        "{open_files}"
    );
    let err = r.stderr();
    assert!(
        err.contains("open-file limit raised from 128 to 1024 (the hard limit)"),
        "{err}"
    );
    // Still low: the log says how many clients it allows and how to raise it.
    assert!(
        err.contains("open-file limit 1024: past about 462 proxied clients at once"),
        "{err}"
    );

    let mut conns: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(&http).unwrap())
        .collect();
    for (i, conn) in conns.iter_mut().enumerate() {
        let head = ask(conn);
        assert!(head.starts_with("HTTP/1.1 200"), "client {i}: {head}");
    }
}

/// A hard limit too low for the listeners' `max_connections` is named at start, with the
/// number of descriptors they need and where to set it; Rampart still serves.
#[test]
fn an_open_file_limit_too_low_for_max_connections_is_named_at_start() {
    let (r, http, _up) = start_under_file_limit("max_connections: 1000, ", (512, 512));
    let warning = r.wait_for_log("open-file limit 512", Duration::from_secs(5));
    assert!(warning.contains("WARN"), "{warning}");
    for part in [
        "too low for the listeners' max_connections (1000 clients",
        "past about 206 clients",
        "LimitNOFILE=",
        "to at least 2100",
    ] {
        assert!(warning.contains(part), "`{part}` in {warning}");
    }
    let mut conn = TcpStream::connect(&http).unwrap();
    assert!(ask(&mut conn).starts_with("HTTP/1.1 200"));
}
