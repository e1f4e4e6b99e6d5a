//! Retries after the connection to a backend was made: a kept-alive connection the backend
//! closed meanwhile (the request goes again, on a new connection, to the same backend if
//! need be), and a GET cut before any answer (another backend); the final status says what
//! the last try met.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// How a raw backend treats the requests of one connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers the first request with keep-alive, closes the connection at the second.
    ClosesKeptAlive,
    /// Reads each request and closes the connection without answering.
    CutsEveryRequest,
}

/// A backend on its own thread, answering `200 NAME`; returns its address.
fn raw_backend(name: &'static str, behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn, name, behaviour));
        }
    });
    addr
}

fn serve(conn: TcpStream, name: &str, behaviour: Behaviour) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    for n in 1.. {
        // The request head; these requests have no body.
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {}
            }
        }
        let close = match behaviour {
            Behaviour::ClosesKeptAlive => n == 2,
            Behaviour::CutsEveryRequest => true,
        };
        if close {
            return;
        }
        let answer = format!(
            "HTTP/1.1 200 OK\r\nX-Upstream: {name}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{name}",
            name.len()
        );
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn start(backends: &[&str], pool_extra: &str) -> (Rampart, String) {
    let (http, admin) = (free_addr(), free_addr());
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app:\n    backends: [{}]\n    health_check: {{ kind: none }}\n{pool_extra}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        list.join(", ")
    );
    (Rampart::start(&yaml), format!("http://{http}"))
}

/// nginx and HAProxy retry a request that met a closed kept-alive connection; a pool of one
/// backend answered every second request 502 ("every healthy backend of the pool failed").
#[test]
fn a_kept_alive_connection_the_backend_closed_is_retried_on_a_new_one() {
    let b = raw_backend("b", Behaviour::ClosesKeptAlive);
    let (_r, base) = start(&[&b], "    retries: 0");
    let c = client();
    for i in 0..10 {
        let resp = c.get(format!("{base}/x{i}")).send().unwrap();
        assert_eq!(resp.status(), 200, "request {i}");
        assert_eq!(resp.text().unwrap(), "b");
    }
}

/// A GET whose connection was cut before any answer goes to another backend (nginx's
/// `proxy_next_upstream error`); a POST is never sent twice.
#[test]
fn a_get_cut_before_its_answer_is_retried_on_another_backend() {
    let cut = raw_backend("cut", Behaviour::CutsEveryRequest);
    let good = raw_backend("good", Behaviour::ClosesKeptAlive);
    let (r, base) = start(&[&cut, &good], "    retries: 1");
    let c = client();
    for i in 0..6 {
        let resp = c.get(format!("{base}/g{i}")).send().unwrap();
        assert_eq!(resp.status(), 200, "GET {i}");
    }
    let statuses: Vec<u16> = (0..4)
        .map(|i| {
            c.post(format!("{base}/p{i}"))
                .body("data")
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert!(
        statuses.contains(&502),
        "a POST cut by the backend is not replayed: {statuses:?}"
    );
    drop(r);

    // With nowhere left to go, the answer is 502 and the log names what the try met (no
    // retry promised: `retries` has no other backend).
    let (r, base) = start(&[&cut], "    retries: 1");
    let resp = c.get(format!("{base}/x")).send().unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(
        resp.headers()["connection"],
        "close",
        "the connection is closed after an error: the answer says so"
    );
    let line = r.wait_for_log("answered 502 after 1 try: backend ", Duration::from_secs(2));
    assert!(
        line.contains(&format!("backend {cut}: ConnectionClosed")),
        "{line}"
    );
    assert!(
        !r.stderr().contains("trying another backend"),
        "{}",
        r.stderr()
    );
}

/// A client that announces a body and does not send it: the backend, which waits for it, never
/// answers, and the backend's read timeout ends the request. That is the client's delay: 408,
/// as nginx answers, not 504, and not counted as the backend's timeout.
#[test]
fn a_body_the_client_does_not_send_is_the_clients_timeout() {
    use std::io::{Read, Write};
    let up = Upstream::start("up");
    let (r, base) = start(&[&up.addr_string()], "    timeouts: { read: 1s }");
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.write_all(b"POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    poll_until(Duration::from_secs(5), "the 408 counted", || {
        (r.metric("rampart_requests_total{code=\"408\",project=\"site\"}") == Some(1.0))
            .then_some(())
    });
    assert_eq!(
        r.metric("rampart_upstream_errors_total{kind=\"timeout\",pool=\"app\"}"),
        Some(0.0)
    );
}
