//! `proxy_protocol: true`: behind a load balancer that passes TCP through, each connection
//! begins with a PROXY protocol header (v1 text or v2 binary) naming the client, and Rampart
//! takes that client as the connection's peer: in X-Forwarded-For and X-Real-IP, in the access
//! log. Over plain HTTP/1.1, h2c and TLS. A connection without a header is closed, counted
//! and logged.

mod common;
use common::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn v1(client: &str, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {client} 127.0.0.1 {port} 443\r\n").into_bytes()
}

fn v2(command: ppp::v2::Command, client: &str) -> Vec<u8> {
    let client: SocketAddr = client.parse().unwrap();
    let to = if client.is_ipv4() {
        "127.0.0.1:443"
    } else {
        "[::1]:443"
    };
    let addresses: ppp::v2::Addresses = (client, to.parse::<SocketAddr>().unwrap()).into();
    ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | command,
        ppp::v2::Protocol::Stream,
        addresses,
    )
    .build()
    .unwrap()
}

/// `header`, then `GET path` over HTTP/1.1 on a new connection to `addr`: the answer.
fn get_after(addr: &str, header: &[u8], path: &str) -> std::io::Result<RawResponse> {
    let request = [
        header,
        format!("GET {path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n").as_bytes(),
    ]
    .concat();
    let raw = raw_request(addr, &request)?;
    RawResponse::parse(&raw).ok_or_else(|| std::io::Error::other(format!("answer: {raw:?}")))
}

/// The one connection refused on `listener` was logged (the line saying `said`) and counted.
fn refusal_told(r: &Rampart, listener: &str, said: &str) {
    let warning = r.wait_for_log(
        "must begin with a PROXY protocol header",
        Duration::from_secs(5),
    );
    assert!(warning.contains(said), "{warning}");
    let count = format!("rampart_proxy_protocol_errors_total{{listener=\"{listener}\"}}");
    assert_eq!(r.metric(&count), Some(1.0));
}

fn echo(answer: &RawResponse) -> Echo {
    assert_eq!(answer.status, 200, "{answer:?}");
    serde_json::from_slice(&answer.body).unwrap()
}

#[test]
fn plain_listener_takes_the_client_from_v1_and_v2_headers_and_refuses_connections_without() {
    let up = Upstream::start("up");
    let (r, log, addr) = Rampart::start_site_with(
        &up.addr_string(),
        "{client_ip} {uri}",
        "proxy_protocol: true, h2c: true",
    );

    let seen = echo(&get_after(&addr, &v1("203.0.113.7", 51234), "/v1").unwrap());
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.7"));
    assert_eq!(seen.header("x-real-ip"), Some("203.0.113.7"));
    let header = v2(ppp::v2::Command::Proxy, "[2001:db8::7]:40000");
    let seen = echo(&get_after(&addr, &header, "/v2").unwrap());
    assert_eq!(seen.header("x-forwarded-for"), Some("2001:db8::7"));
    // The balancer's own checks (LOCAL) are the balancer's.
    let header = v2(ppp::v2::Command::Local, "10.9.9.9:1");
    let seen = echo(&get_after(&addr, &header, "/local").unwrap());
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));

    // The header, then HTTP/2 without TLS on the same connection.
    runtime().block_on(async {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(&v1("198.51.100.2", 40001)).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        let answer = h2_get(&client, "a.test", "/h2c").await.await.unwrap();
        assert_eq!(answer.status(), 200);
        let mut body = answer.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        let seen: Echo = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(seen.header("x-forwarded-for"), Some("198.51.100.2"));
    });

    // A client that reached the listener around the balancer names no one: closed unanswered.
    let hits = up.hits();
    let refused = get_after(&addr, b"", "/spoof");
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(up.hits(), hits);
    refusal_told(&r, "http", "not a PROXY protocol header");

    let listener = &r.status()["listeners"][0];
    assert_eq!(listener["proxy_protocol"], true, "{listener}");
    assert_eq!(listener["tls"], false, "{listener}");
    assert_logged(
        &log,
        4,
        &[
            "203.0.113.7 /v1",
            "2001:db8::7 /v2",
            "127.0.0.1 /local",
            "198.51.100.2 /h2c",
        ],
    );
}

#[test]
fn tls_listener_reads_the_header_before_the_handshake() {
    let up = Upstream::start("up");
    let ca = TestCa::new();
    let cert = ca.issue(&["a.test"]);
    let (r, log, addr) = Rampart::start_tls_site_logging(
        &up.addr_string(),
        &cert,
        "{client_ip} {uri} {tls_version}",
        "proxy_protocol: true",
    );
    runtime().block_on(async {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let header = v2(ppp::v2::Command::Proxy, "192.0.2.44:50000");
        tcp.write_all(&header).await.unwrap();
        let mut tls = tls_over(&ca, tcp, "a.test", &[b"http/1.1"]).await.unwrap();
        tls.write_all(b"GET /tls HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await;
        let seen = echo(&RawResponse::parse(&raw).unwrap());
        assert_eq!(seen.header("x-forwarded-for"), Some("192.0.2.44"));
        assert_eq!(seen.header("x-forwarded-proto"), Some("https"));

        // Without the header the handshake's first bytes are taken for one and refused.
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let refused = tls_over(&ca, tcp, "a.test", &[b"http/1.1"]).await;
        assert!(refused.is_err(), "handshake without a header");
    });
    refusal_told(&r, "https", "listener https");
    let lines = log_lines(&log, 1);
    assert!(lines.starts_with("192.0.2.44 /tls TLSv1."), "{lines}");
}
