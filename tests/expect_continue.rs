//! `Expect: 100-continue`, and uploads a backend answers before reading them. Rampart tells
//! the client `100 Continue` itself once the request is going to a backend, as nginx does:
//! a backend that ignores the expectation no longer holds every upload for the client's own
//! timeout. A body still coming after the backend's answer is read as the rest of that
//! request, never taken for a next request's head.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Rampart on `backend`, its access log `{status} {method} {uri}` (`Rampart::start_site`).
fn start(backend: &str) -> (Rampart, std::path::PathBuf, String) {
    Rampart::start_site(backend, "{status} {method} {uri}")
}

/// The value of `Content-Length` in a head, 0 without one.
fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// Reads a response's head and its `Content-Length` body; the text of both.
fn read_response(conn: &mut TcpStream) -> String {
    let head = read_head(conn)
        .unwrap_or_else(|got| panic!("no response head: {:?}", String::from_utf8_lossy(&got)));
    let mut body = vec![0u8; content_length(&head)];
    conn.read_exact(&mut body).unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&head),
        String::from_utf8_lossy(&body)
    )
}

fn connect(addr: &str) -> TcpStream {
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn
}

/// A backend that knows nothing of `Expect` (it never sends `100`): it reads each request's
/// body and answers `got: BODY`. Records the heads it received.
#[test]
fn a_client_expecting_100_continue_is_told_at_once_and_keeps_its_connection() {
    let heads = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = heads.clone();
    let backend = socket_backend(move |mut conn| {
        while let Ok(head) = read_head(&mut conn) {
            let mut body = vec![0u8; content_length(&head)];
            if conn.read_exact(&mut body).is_err() {
                return;
            }
            record
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let answer = format!("got: {}", String::from_utf8_lossy(&body));
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
            if conn.write_all(response.as_bytes()).is_err() {
                return;
            }
        }
    });
    let (_r, log, http) = start(&backend);
    let mut conn = connect(&http);
    conn.write_all(
        b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    // Before the body is sent: without Rampart's own `100`, this read times out.
    let interim = read_head(&mut conn).unwrap_or_else(|got| {
        panic!(
            "no 100 Continue before the body: {:?}",
            String::from_utf8_lossy(&got)
        )
    });
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.write_all(b"hello").unwrap();
    let answer = read_response(&mut conn);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\ngot: hello"), "{answer}");
    // Pingora closes a connection answered before its body was read: the `100` is not such
    // an answer.
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("connection: keep-alive"),
        "{answer}"
    );
    conn.write_all(b"POST /second HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
        .unwrap();
    let second = read_response(&mut conn);
    assert!(second.ends_with("\r\n\r\ngot: hi"), "{second}");

    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(
        !heads[0].to_ascii_lowercase().contains("expect:"),
        "the backend is not asked again: {}",
        heads[0]
    );
    let lines = log_lines(&log, 2);
    assert!(lines.starts_with("200 POST /upload\n"), "{lines}");
}

/// A backend answering an upload before reading it (`401` at once, then reading and
/// dropping the body) gets the client one answer: the body that keeps coming after it is the
/// request's, not a next request's head (it was read as one: past `max_header_size`, 64 KiB,
/// the client got a `414` after the `401`). With and without `Expect`.
#[test]
fn an_upload_the_backend_answers_before_reading_it_is_answered_once() {
    let backend = socket_backend(|mut conn| {
        while let Ok(head) = read_head(&mut conn) {
            let answer = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n\r\ndenied";
            if conn.write_all(answer).is_err() {
                return;
            }
            // Then the body, dropped, before the next request on the connection.
            let length = content_length(&head) as u64;
            let read = std::io::copy(&mut (&mut conn).take(length), &mut std::io::sink());
            if read.ok() != Some(length) {
                return;
            }
        }
    });
    let (r, log, http) = start(&backend);
    let body = vec![b'x'; 2_000_000];
    let mut expected_log = String::new();
    for expect in ["", "Expect: 100-continue\r\n"] {
        expected_log.push_str("401 PUT /big\n");
        let mut conn = connect(&http);
        let head = format!(
            "PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n{expect}\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).unwrap();
        if !expect.is_empty() {
            assert_eq!(
                read_head(&mut conn).unwrap(),
                b"HTTP/1.1 100 Continue\r\n\r\n"
            );
        }
        // Written while the answer comes: Rampart keeps reading the body.
        let mut writer = conn.try_clone().unwrap();
        let body = body.clone();
        let upload = std::thread::spawn(move || writer.write_all(&body));
        let answer = read_response(&mut conn);
        assert!(
            answer.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
            "{answer}"
        );
        assert!(answer.ends_with("\r\n\r\ndenied"), "{answer}");
        upload.join().unwrap().unwrap();
        // Answered before the body was all read, the connection closes after it (Pingora);
        // answered after (the backend was slower than the upload), it is kept.
        if !answer.contains("Connection: close") {
            conn.write_all(b"GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                .unwrap();
            let next = read_response(&mut conn);
            assert!(next.starts_with("HTTP/1.1 401 "), "{next}");
            expected_log.push_str("401 GET /next\n");
        }
        let after = read_to_close(&mut conn);
        assert!(
            after.is_empty(),
            "nothing after the answer ({expect:?}): {:?}",
            String::from_utf8_lossy(&after)
        );
    }
    let lines = log_lines(&log, expected_log.lines().count());
    assert_eq!(lines, expected_log);
    let metrics = r.metrics();
    assert!(!metrics.contains("code=\"414\""), "{metrics}");
}
