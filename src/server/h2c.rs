//! HTTP/2 without TLS on a plain listener (`h2c: true`): a client that knows the listener
//! speaks it ("prior knowledge", as gRPC clients and `curl --http2-prior-knowledge` do) opens
//! with HTTP/2's 24-byte preface; any other client is served HTTP/1.1 on the same port.
//!
//! Pingora's own h2c switch looks for the preface by reading exactly 24 bytes at the start of
//! every request of a connection: a shorter HTTP/1.0 request (`GET / HTTP/1.0` and a blank
//! line is 18 bytes) would wait for ever, every keep-alive request would pay the peek, and a
//! client sending nothing would never be held to `header_timeout`. Here the connection's
//! first bytes are read once, for no longer than `header_timeout`, and compared as they come:
//! the first byte that differs from the preface makes it HTTP/1 (for nearly all requests, the
//! first). What was read is put back for the protocol that reads the connection.

use pingora_core::protocols::Stream;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How every HTTP/2 connection begins (RFC 9113, 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a plain connection speaks, from its first bytes.
pub enum Opening {
    /// HTTP/2's preface.
    Http2(Stream),
    /// Anything else (including a stream this cannot read first: TLS, a wrapper).
    Http1(Stream),
    /// The client closed, failed or sent nothing within `limit`: nothing to serve.
    Nothing,
}

/// Reads the start of `stream` for at most `limit` and puts it back.
pub async fn opening(stream: Stream, limit: Duration) -> Opening {
    let mut tcp = match super::as_tcp(stream) {
        Ok(tcp) => tcp,
        Err(other) => return Opening::Http1(other),
    };
    let mut start = [0u8; PREFACE.len()];
    let mut len = 0;
    let read = tokio::time::timeout(limit, async {
        while len < start.len() {
            match tcp.read(&mut start[len..]).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => len += n,
            }
            if start[..len] != PREFACE[..len] {
                break;
            }
        }
        true
    })
    .await;
    if read != Ok(true) {
        return Opening::Nothing;
    }
    tcp.rewind(&start[..len]);
    if start[..len] == PREFACE[..] {
        Opening::Http2(tcp)
    } else {
        Opening::Http1(tcp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A connected pair: Pingora's stream (the server's side) and the client's socket.
    async fn pair() -> (Stream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let server: Stream = Box::new(pingora_core::protocols::l4::stream::Stream::from(
            accepted.unwrap().0,
        ));
        (server, client.unwrap())
    }

    async fn read_all(mut stream: Stream) -> Vec<u8> {
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn the_preface_is_http2_and_is_read_again() {
        let (server, mut client) = pair().await;
        // In two pieces: the decision waits for the whole preface.
        client.write_all(&PREFACE[..5]).await.unwrap();
        let sent = async {
            tokio::task::yield_now().await;
            client.write_all(&PREFACE[5..]).await.unwrap();
            client.write_all(b"frames").await.unwrap();
            client.shutdown().await.unwrap();
        };
        let (opening, ()) = tokio::join!(opening(server, Duration::from_secs(5)), sent);
        let Opening::Http2(stream) = opening else {
            panic!("not HTTP/2")
        };
        assert_eq!(read_all(stream).await, [&PREFACE[..], b"frames"].concat());
    }

    #[tokio::test]
    async fn a_short_http1_request_is_http1_without_waiting_for_24_bytes() {
        let (server, mut client) = pair().await;
        client.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        // The client keeps its side open: a decision that waited for 24 bytes would time out.
        let Opening::Http1(stream) = opening(server, Duration::from_secs(30)).await else {
            panic!("not HTTP/1")
        };
        drop(client);
        assert_eq!(read_all(stream).await, b"GET / HTTP/1.0\r\n\r\n");
    }

    #[tokio::test]
    async fn a_client_sending_nothing_is_given_up_after_the_limit() {
        let (server, _client) = pair().await;
        let opening = opening(server, Duration::from_millis(50)).await;
        assert!(matches!(opening, Opening::Nothing));
    }
}
