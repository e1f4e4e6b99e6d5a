//! An HTTP/2 client that resets its requests once they reach a backend (the rapid-reset
//! attack made to get past Pingora's own guard, which only counts streams reset before they
//! are taken) is refused `429` on that connection once its resets pass 100 and outnumber
//! its answers within 30 s; backends no longer get its requests. Other connections are not
//! concerned; the same over h2c. (The window's end is unit-tested in
//! `src/proxy/h2_resets.rs`.)

mod common;
use common::*;
use std::time::Duration;

/// As `src/proxy/h2_resets.rs`.
const ALLOWED: usize = 100;

/// Sends `count` requests on `client`, each reset once it is at the backend `up` (whose
/// requests so far are `hits`); returns the backend's requests after.
async fn reset_at_backend(
    client: &h2::client::SendRequest<bytes::Bytes>,
    up: &Upstream,
    mut hits: usize,
    count: usize,
) -> usize {
    for _ in 0..count {
        let answer = h2_get(client, "a.test", "/slow?ms=10000").await;
        hits += 1;
        poll_until_async(
            Duration::from_secs(10),
            "the request at the backend",
            || {
                let there = (up.hits() >= hits).then_some(());
                async move { there }
            },
        )
        .await;
        // Dropping the answer's future resets the stream.
        drop(answer);
    }
    hits
}

/// Waits until the access log at `log` has `count` lines `499 /slow?ms=10000` (the resets
/// are counted on their connection when they are logged).
async fn logged_resets(log: &std::path::Path, count: usize) {
    poll_until_async(Duration::from_secs(10), "the resets in the log", || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let n = text.lines().filter(|l| *l == "499 /slow?ms=10000").count();
        async move { (n >= count).then_some(()) }
    })
    .await;
}

/// Where the test's HTTP/2 connections go.
enum Listener {
    Tls { ca: Box<TestCa>, addr: String },
    Cleartext { addr: String },
}

impl Listener {
    async fn connect(&self) -> h2::client::SendRequest<bytes::Bytes> {
        let plain = h2::client::Builder::new();
        match self {
            Listener::Tls { ca, addr } => h2_connect(ca, addr, "a.test", &plain).await,
            Listener::Cleartext { addr } => h2c_connect(addr, &plain).await,
        }
    }
}

#[test]
fn a_client_resetting_its_requests_at_the_backend_is_refused_on_that_connection() {
    let up = Upstream::start("up");
    let ca = TestCa::new();
    let cert = ca.issue(&["a.test"]);
    let (r, log, addr) =
        Rampart::start_tls_site_logging(&up.addr_string(), &cert, "{status} {uri}", "");
    refused_once_past_the_allowance(
        &r,
        &log,
        &up,
        Listener::Tls {
            ca: Box::new(ca),
            addr,
        },
    );
}

#[test]
fn an_h2c_client_resetting_its_requests_at_the_backend_is_refused_on_that_connection() {
    let up = Upstream::start("up");
    let (r, log, addr) = Rampart::start_site_with(&up.addr_string(), "{status} {uri}", "h2c: true");
    refused_once_past_the_allowance(&r, &log, &up, Listener::Cleartext { addr });
}

fn refused_once_past_the_allowance(
    r: &Rampart,
    log: &std::path::Path,
    up: &Upstream,
    listener: Listener,
) {
    runtime().block_on(async {
        // A client that reads most of its answers may cancel as many: it is served.
        let reader = listener.connect().await;
        for _ in 0..=ALLOWED + 20 {
            let answer = h2_get(&reader, "a.test", "/read").await.await.unwrap();
            assert_eq!(answer.status(), 200);
        }
        let hits = reset_at_backend(&reader, up, up.hits(), ALLOWED + 10).await;
        logged_resets(log, ALLOWED + 10).await;
        let answer = h2_get(&reader, "a.test", "/still").await.await.unwrap();
        assert_eq!(answer.status(), 200);

        // One that resets all it asks is refused once past the allowance.
        let attacker = listener.connect().await;
        let hits = reset_at_backend(&attacker, up, hits + 1, ALLOWED + 1).await;
        logged_resets(log, 2 * ALLOWED + 11).await;
        let refused = h2_get(&attacker, "a.test", "/next").await.await.unwrap();
        assert_eq!(refused.status(), 429);
        let mut body = refused.into_body();
        let text = body.data().await.unwrap().unwrap();
        assert!(
            String::from_utf8_lossy(&text).contains("Too many requests reset"),
            "{text:?}"
        );
        assert_eq!(up.hits(), hits, "the refused request reached no backend");
        // Other connections are served.
        let other = listener.connect().await;
        let answer = h2_get(&other, "a.test", "/fine").await.await.unwrap();
        assert_eq!(answer.status(), 200);
    });
    let warning = r.wait_for_log("a rapid-reset attack?", Duration::from_secs(5));
    assert!(warning.contains("answered 429"), "{warning}");
    assert_eq!(
        r.metric("rampart_requests_total{code=\"429\",project=\"site\"}"),
        Some(1.0)
    );
}
