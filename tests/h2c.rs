//! HTTP/2 without TLS (h2c, prior knowledge): a plain listener with `h2c: true` serves it next
//! to HTTP/1.1 on one port, and a pool with `http2: true` and no `tls` speaks it to its
//! backends (gRPC servers, as nginx's `grpc_pass grpc://` and HAProxy's `proto h2`).

mod common;
use common::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Listener `h2c` with `h2c: true` (and `header_timeout: 1s`) and listener `plain` without,
/// both to the catch-all project `site` on `up`, with an access log of `{protocol} {uri}`.
fn start(up: &Upstream) -> (Rampart, std::path::PathBuf, String, String) {
    let (h2c, plain) = (free_addr(), free_addr());
    let (r, log) = Rampart::start_logging(|log| {
        format!(
            "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: {}, format: \"{{protocol}} {{uri}}\" }}\nlisteners:\n  h2c: {{ address: \"{h2c}\", h2c: true, header_timeout: 1s }}\n  plain: {{ address: \"{plain}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
            free_addr(),
            log.display(),
            up.addr_string()
        )
    });
    (r, log, h2c, plain)
}

#[test]
fn a_listener_with_h2c_serves_http2_and_http1_on_one_port_and_others_do_not() {
    let up = Upstream::start("up");
    let (r, log, h2c, plain) = start(&up);

    let answer = h2c_client_blocking()
        .get(format!("http://{h2c}/over-h2c"))
        .send()
        .unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-upstream"], "up");
    assert!(answer.headers().contains_key("x-request-id"));
    let echo: Echo = answer.json().unwrap();
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"));

    let answer = client()
        .get(format!("http://{h2c}/over-h1"))
        .send()
        .unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_11);
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-upstream"], "up");

    // Shorter than HTTP/2's 24-byte preface, with the client's side left open: answered, not
    // held until more bytes come.
    let raw = raw_request(&h2c, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");

    // The listener without h2c takes the preface for a malformed HTTP/1 request.
    let refused = h2c_client_blocking().get(format!("http://{plain}/")).send();
    assert!(refused.is_err(), "{refused:?}");
    assert!(
        client()
            .get(format!("http://{plain}/"))
            .send()
            .unwrap()
            .status()
            == 200
    );

    // `/status` says what each listener speaks.
    let status = r.status();
    let listeners = status["listeners"].as_array().unwrap();
    let by_name = |name: &str| {
        listeners
            .iter()
            .find(|l| l["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("h2c")["http2"], "h2c", "{status}");
    assert_eq!(
        by_name("plain")["http2"],
        serde_json::Value::Null,
        "{status}"
    );
    assert_eq!(by_name("plain")["address"], plain, "{status}");
    assert_logged(
        &log,
        5,
        &[
            "HTTP/2.0 /over-h2c",
            "HTTP/1.1 /over-h1",
            "HTTP/1.0 /",
            "HTTP/1.1 /",
        ],
    );
    drop(r);
}

#[test]
fn an_h2c_listener_closes_a_connection_that_sends_nothing_after_header_timeout() {
    let up = Upstream::start("up");
    let (_r, _log, h2c, _plain) = start(&up);
    let mut silent = std::net::TcpStream::connect(&h2c).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let began = Instant::now();
    let mut buf = [0u8; 64];
    let read = silent.read(&mut buf);
    let waited = began.elapsed();
    assert!(
        match &read {
            Ok(n) => *n == 0,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        },
        "closed, not timed out on the client's side: {read:?}"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(15),
        "closed after {waited:?}"
    );
    // A client that began an HTTP/2 connection is not held to it.
    let mut started = std::net::TcpStream::connect(&h2c).unwrap();
    started
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .unwrap();
    started
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server's SETTINGS frame (type 4) comes first.
    let mut frame = [0u8; 9];
    started.read_exact(&mut frame).unwrap();
    assert_eq!(frame[3], 4, "{frame:?}");
}

/// One listener (with `listener` options) to a pool of `up` with `http2: true` and no TLS
/// (and `pool` options); returns its address.
fn start_on_h2c_pool(up: &Upstream, listener: &str, pool: &str) -> (Rampart, String) {
    let addr = free_addr();
    let r = Rampart::start(&format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{addr}\"{listener} }}\npools:\n  app: {{ backends: [\"{}\"], http2: true{pool} }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        free_addr(),
        up.addr_string()
    ));
    (r, addr)
}

/// A gRPC call over h2c both ways: the call's status comes in the answer's trailers, which
/// reach the client.
#[test]
fn a_grpc_call_over_h2c_gets_its_status_in_trailers() {
    let up = Upstream::start("grpc");
    let (_r, h2c) = start_on_h2c_pool(&up, ", h2c: true", "");
    runtime().block_on(async {
        let client = h2c_connect(&h2c, &h2::client::Builder::new()).await;
        let call = http::Request::post(format!("http://{h2c}/grpc"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let mut client = client.ready().await.unwrap();
        let (answer, mut body) = client.send_request(call, false).unwrap();
        body.send_data(bytes::Bytes::from_static(b"\0\0\0\0\0"), true)
            .unwrap();
        let answer = answer.await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["content-type"], "application/grpc");
        assert_eq!(answer.headers()["x-seen-te"], "trailers");
        let mut body = answer.into_body();
        while let Some(data) = body.data().await {
            data.unwrap();
        }
        let trailers = body.trailers().await.unwrap().expect("trailers");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["grpc-message"], "done");
    });
    assert_eq!(up.hits(), 1);
}

#[test]
fn a_pool_with_http2_and_no_tls_speaks_h2c_to_its_backends_and_checks_them_so() {
    let up = Upstream::start("grpc");
    let health = ", health_check: { kind: http, path: /healthz, interval: 100ms }";
    let (r, http) = start_on_h2c_pool(&up, "", health);
    let echo: Echo = client()
        .get(format!("http://{http}/call"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(echo.version, "HTTP/2.0");
    assert_eq!(echo.uri, "/call");
    poll_until(Duration::from_secs(10), "an HTTP/2 health check", || {
        up.health_version()
    });
    assert_eq!(up.health_version().as_deref(), Some("HTTP/2.0"));
    let status = r.status();
    assert_eq!(
        status["pools"][0]["backends"][0]["healthy"],
        serde_json::json!(true),
        "{status}"
    );
}

#[test]
fn rampart_check_shows_h2c_listeners_and_pools() {
    let c = rampart_check(
        "listeners:\n  internal: { address: \"127.0.0.1:8080\", h2c: true }\n  web: { address: \"127.0.0.1:8081\" }\npools:\n  grpc: { backends: [\"127.0.0.1:50051\"], http2: true }\n  app: { backends: [\"127.0.0.1:3000\"] }\nprojects:\n  - { name: api, hosts: [\"*\"], pool: grpc }\n",
    );
    assert_eq!(c.code, 0, "{}", c.stderr);
    let line = |start: &str| {
        let found = c.stdout.lines().find(|l| l.trim_start().starts_with(start));
        found
            .unwrap_or_else(|| panic!("{start} in {}", c.stdout))
            .to_string()
    };
    assert!(
        line("internal").ends_with("plain http, h2c"),
        "{}",
        c.stdout
    );
    assert!(line("web").ends_with("plain http"), "{}", c.stdout);
    assert!(
        line("grpc").contains("round_robin  h2c  health none"),
        "{}",
        c.stdout
    );
    assert!(
        line("app").contains("round_robin  health none"),
        "{}",
        c.stdout
    );
}
