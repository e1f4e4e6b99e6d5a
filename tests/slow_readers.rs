//! `listeners.*.send_timeout`: a client that reads nothing of its answer (slow read) is cut
//! after it, as by nginx's `send_timeout`, so it cannot hold its connection, a backend
//! connection and their buffers for as long as it likes.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// More than the client's and Rampart's socket buffers hold, so that a client that reads
/// nothing leaves Rampart's writes waiting.
const BODY: usize = 256 << 20;

/// A backend that answers a `BODY`-byte body and writes it until its connection is closed,
/// which it then reports in the flag returned.
fn endless_backend() -> (String, Arc<AtomicBool>) {
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    let addr = socket_backend(move |mut conn| {
        if read_head(&mut conn).is_err() {
            return;
        }
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n");
        let chunk = vec![b'x'; 64 << 10];
        let mut sent = 0;
        let mut result = conn.write_all(head.as_bytes());
        while result.is_ok() && sent < BODY {
            result = conn.write_all(&chunk);
            sent += chunk.len();
        }
        if result.is_err() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    (addr, closed)
}

#[test]
fn a_client_that_reads_nothing_is_cut_after_send_timeout() {
    let (backend, backend_closed) = endless_backend();
    let (r, log, http) =
        Rampart::start_site_with(&backend, "{method} {status} {error}", "send_timeout: 1s");
    let metric = "rampart_send_timeouts_total{listener=\"http\"}";
    assert_eq!(r.metric(metric), Some(0.0));

    // The client asks, reads the head of the answer, then nothing more.
    let mut client = TcpStream::connect(&http).unwrap();
    client
        .write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let head = read_head(&mut client).expect("the answer's head");
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let began = Instant::now();
    let cut = r.wait_for_log("send_timeout", Duration::from_secs(30));
    assert!(
        cut.contains("the client read nothing of its answer for 1s")
            && cut.contains("GET /big")
            && cut.contains("connection closed"),
        "{cut}"
    );
    poll_until(
        Duration::from_secs(10),
        "the backend's connection closed",
        || backend_closed.load(Ordering::SeqCst).then_some(()),
    );
    assert_eq!(r.metric(metric), Some(1.0));
    // The client's connection was closed: what it had not read ends, well short of the body.
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let ended = client.read_to_end(&mut rest);
    assert!(
        ended.is_ok()
            || ended
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the connection is closed, not left open: {ended:?} after {:?}",
        began.elapsed()
    );
    assert!(rest.len() < BODY, "the whole body was sent");
    // The access log has the answer begun (as nginx logs it) and why it ended.
    let line = poll_until(Duration::from_secs(5), "the access-log line", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("GET "))
    });
    assert!(line.starts_with("GET 200 "), "{line}");
    assert!(line.contains("WriteTimedout"), "{line}");
}

/// Over HTTP/2 the stream is reset (`CANCEL`) and the connection's other streams go on.
#[test]
fn an_http2_client_that_reads_nothing_has_its_stream_reset_after_send_timeout() {
    let (backend, backend_closed) = endless_backend();
    let ca = TestCa::new();
    let cert = ca.issue(&["a.test"]);
    let (r, _log, https) =
        Rampart::start_tls_site_logging(&backend, &cert, "{status}", "send_timeout: 1s");
    runtime().block_on(async {
        // A window of 0: Rampart may send heads, never a byte of a body.
        let mut zero_window = h2::client::Builder::new();
        zero_window.initial_window_size(0);
        let client = h2_connect(&ca, &https, "a.test", &zero_window).await;
        let first = h2_get(&client, "a.test", "/big").await.await.unwrap();
        assert_eq!(first.status(), 200);
        let mut body = first.into_body();
        let ended = tokio::time::timeout(Duration::from_secs(30), body.data())
            .await
            .expect("the stream is reset within 30 s");
        match ended {
            Some(Err(e)) => assert_eq!(e.reason(), Some(h2::Reason::CANCEL), "{e}"),
            other => panic!("a reset, not {other:?}"),
        }
        // The connection still serves.
        let again = h2_get(&client, "a.test", "/again").await.await.unwrap();
        assert_eq!(again.status(), 200);
    });
    let cut = r.wait_for_log("send_timeout", Duration::from_secs(5));
    assert!(
        cut.contains("GET /big") && cut.contains("its stream reset"),
        "{cut}"
    );
    poll_until(
        Duration::from_secs(10),
        "the backend's connection closed",
        || backend_closed.load(Ordering::SeqCst).then_some(()),
    );
    assert!(r.metric("rampart_send_timeouts_total{listener=\"https\"}") >= Some(1.0));
}
