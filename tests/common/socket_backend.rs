//! Backends written byte by byte, for what a real server would not send (a `103` before the
//! answer, an unsolicited `101`, a body framed oddly) or to see the exact bytes Rampart sends.

use std::io::{Read, Write};
use std::net::TcpStream;

/// A backend on an ephemeral port that runs `serve` on each connection, in its own thread.
pub fn socket_backend(serve: impl Fn(TcpStream) + Send + Sync + Clone + 'static) -> String {
    let listener = super::bind_unused();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let serve = serve.clone();
            std::thread::spawn(move || serve(conn));
        }
    });
    addr
}

/// Answers every request head `conn` brings with `response`, byte for byte, until the client
/// closes.
pub fn answer_every_head(mut conn: TcpStream, response: &[u8]) {
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        seen.extend_from_slice(&buf[..n]);
        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            seen.drain(..end + 4);
            if conn.write_all(response).is_err() {
                return;
            }
        }
    }
}
