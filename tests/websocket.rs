//! WebSocket upgrades: the switch, the tunnel's bytes both ways, pools speaking HTTP/2 to
//! their backends, and how long a quiet tunnel stays open.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Rampart with one catch-all project on pool `app` (`pool`: its YAML flow mapping's
/// inside); returns it and its listener's address (`host:port`).
fn start(pool: &str) -> (Rampart, String) {
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: stdout }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ {pool} }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n"
    );
    (Rampart::start(&yaml), http)
}

/// A backend that accepts one WebSocket upgrade per connection (400 without the upgrade
/// headers), then echoes every byte of the switched connection.
fn websocket_echo_backend() -> String {
    socket_backend(|mut conn| {
        let Ok(head) = read_head(&mut conn) else {
            return;
        };
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        if !(head.contains("\r\nupgrade: websocket\r\n")
            && head.contains("\r\nconnection: upgrade\r\n"))
        {
            let _ = conn.write_all(b"HTTP/1.1 400 No Upgrade\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        let _ = conn.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        );
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            if conn.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    })
}

/// Sends `frame` through the tunnel and reads it back. `Err` when the tunnel is closed.
fn echo(conn: &mut TcpStream, frame: &[u8]) -> Result<(), String> {
    conn.write_all(frame).map_err(|e| e.to_string())?;
    let mut echoed = vec![0u8; frame.len()];
    match conn.read_exact(&mut echoed) {
        Ok(()) => {
            assert_eq!(echoed, frame);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(format!("the tunnel closed ({e})"))
        }
        Err(e) => panic!("{e}"),
    }
}

/// A WebSocket handshake through `http`, then two frames echoed through the tunnel; returns
/// the open tunnel. `Err` when it closed right after the 101: Pingora 0.9.1 tears an upgrade
/// down when the backend's 101 is read before the request's (empty) body end is handled (an
/// open bug, cloudflare/pingora#946; rare, seen under load only).
fn websocket(http: &str) -> Result<TcpStream, String> {
    let mut conn = TcpStream::connect(http).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(
        b"GET /chat HTTP/1.1\r\nHost: site.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let head = read_head(&mut conn).unwrap_or_else(|got| panic!("the proxy closed: {got:?}"));
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "got: {head}");
    assert!(head.contains("\r\nupgrade: websocket\r\n"), "got: {head}");
    assert!(head.contains("\r\nx-request-id: "), "got: {head}");
    // After the switch the proxy is a byte tunnel, both ways, several times.
    for frame in [&b"\x81\x05hello"[..], b"\x81\x05again"] {
        echo(&mut conn, frame).map_err(|e| format!("after the 101: {e}"))?;
    }
    Ok(conn)
}

/// [`websocket`], again each time a tunnel closes at once (cloudflare/pingora#946), as a
/// client reconnects, up to `attempts` in all. Pingora 0.9.1 loses ~40 % of the tunnels to
/// a TLS backend that answers the upgrade fast (20 to 28 of 60 in a run on an idle machine),
/// under 1 % to the plain backends here.
fn websocket_within(http: &str, attempts: usize) -> TcpStream {
    let mut lost = Vec::new();
    while lost.len() < attempts {
        match websocket(http) {
            Ok(conn) => {
                if !lost.is_empty() {
                    eprintln!("websocket: attempts lost to cloudflare/pingora#946: {lost:?}");
                }
                return conn;
            }
            Err(e) => lost.push(e),
        }
    }
    panic!("{attempts} WebSocket attempts in a row failed: {lost:?}");
}

#[test]
fn websocket_upgrades_reach_the_backend_and_the_connection_is_switched() {
    let (_r, http) = start(&format!("backends: [\"{}\"]", websocket_echo_backend()));
    websocket_within(&http, 2);
}

/// An upgrade does not exist in HTTP/2: a pool speaking h2 to its backends sends WebSockets
/// over HTTP/1.1 (Pingora alone sent them as plain GETs on an h2 connection: the client got
/// the backend's `200` instead of `101`), and its other requests still go as h2.
#[test]
fn websockets_through_a_pool_speaking_http2_go_over_http_1_1() {
    let ca = TestCa::new();
    let up = Upstream::start_tls("h2-up", &ca.issue(&["backend.test"]));
    let (_r, http) = start(&format!(
        "backends: [\"{}\"], http2: true, tls: {{ sni: backend.test, ca_file: \"{}\" }}",
        up.addr_string(),
        ca.ca_path().display()
    ));
    let echo_json = get_echo(&format!("http://{http}/before"), "site.test");
    assert_eq!(echo_json.version, "HTTP/2.0", "plain requests go as h2");
    let mut tunnel = websocket_within(&http, 12);
    echo(&mut tunnel, b"\x81\x04more").unwrap();
    let echo_json = get_echo(&format!("http://{http}/after"), "site.test");
    assert_eq!(
        echo_json.version, "HTTP/2.0",
        "plain requests still go as h2"
    );
}

/// A quiet WebSocket outlives the pool's read timeout, up to `timeouts.tunnel` (HAProxy's
/// `timeout tunnel`), then closes with a line saying so, not blaming the client.
#[test]
fn a_quiet_websocket_stays_open_until_the_tunnel_timeout() {
    let (r, http) = start(&format!(
        "backends: [\"{}\"], timeouts: {{ read: 1s, tunnel: 3s }}",
        websocket_echo_backend()
    ));
    let mut tunnel = websocket_within(&http, 2);
    // Twice the read timeout without a byte either way: the tunnel is still there.
    std::thread::sleep(Duration::from_secs(2));
    echo(&mut tunnel, b"\x81\x05still").expect("open after 2 s quiet (read: 1s)");
    let last_byte = Instant::now();
    let mut rest = Vec::new();
    tunnel.read_to_end(&mut rest).expect("closed by the proxy");
    let quiet = last_byte.elapsed();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        quiet >= Duration::from_millis(2500),
        "closed after {quiet:?}"
    );
    let line = r.wait_for_log("WebSocket closed", Duration::from_secs(5));
    assert!(
        line.contains("project site: GET /chat: WebSocket closed: backend 127.0.0.1:")
            && line.contains("sent nothing for 3s (pools.app.timeouts.tunnel)"),
        "{line}"
    );
    // The client had its answer: the access log says 101, the error log blames nobody.
    r.wait_for_log("\"GET /chat HTTP/1.1\" 101 ", Duration::from_secs(5));
    let err = r.stderr();
    assert!(
        !err.contains("answered 408") && !err.contains("ERROR"),
        "{err}"
    );
}
