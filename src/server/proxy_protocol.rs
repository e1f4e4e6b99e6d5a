//! The PROXY protocol (HAProxy's, v1 text and v2 binary) on a listener with
//! `proxy_protocol: true`. A load balancer that passes TCP through (AWS NLB, HAProxy in TCP
//! mode, a cloud's L4 balancer) cannot add X-Forwarded-For, and HTTPS passes through it
//! encrypted: it sends the client's address in a header ahead of the connection's own bytes.
//! That address then replaces the balancer's as the connection's peer, so the access log,
//! X-Forwarded-For, X-Real-IP, `client_ip` rules and hashing all see the client, as with
//! nginx's `listen ... proxy_protocol` and `set_real_ip_from`.
//!
//! As with nginx and HAProxy's `accept-proxy`, every connection must begin with a header: one
//! without (a client reaching the listener around the balancer, or a balancer not set to send
//! it) is closed, counted and logged, since taking it as it is would let a client name its own
//! address. A connection that closes or stays silent without sending a byte (a balancer's TCP
//! check, a port scan) is closed quietly. A v2 `LOCAL` header (the balancer's own health
//! checks) and addresses of no IP family keep the socket's peer.

use crate::log_throttle::Throttle;
use async_trait::async_trait;
use pingora_core::listeners::PreTlsProcess;
use pingora_core::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora_core::protocols::l4::stream::Stream as TcpStream;
use pingora_core::protocols::{GetSocketDigest, SocketDigest};
use ppp::{v1, v2, HeaderResult, PartialResult};
use prometheus::IntCounter;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// A v2 header's fixed part (16 bytes) and the most its length field can add.
const MAX_HEADER: usize = 16 + u16::MAX as usize;
/// What one read asks for: a v1 header is at most 107 bytes, a v2 one from AWS ~60-250.
const READ_SIZE: usize = 256;

/// A listener's PROXY protocol: how long a header may take, and where failures are told.
pub struct ProxyHeaders {
    pub listener: String,
    /// The listener's `header_timeout`.
    pub limit: Duration,
    /// `rampart_proxy_protocol_errors_total{listener}`.
    pub errors: IntCounter,
    pub log: Throttle,
}

impl ProxyHeaders {
    /// Reads the header at the start of `tcp` and makes the client it names the connection's
    /// peer; false when there is no valid header (the connection is to be closed), which is
    /// counted and logged.
    pub async fn take(&self, tcp: &mut TcpStream) -> bool {
        let mut buf = Vec::with_capacity(READ_SIZE);
        let why = match tokio::time::timeout(self.limit, read_header(tcp, &mut buf)).await {
            Ok(Ok(client)) => {
                if let Some(client) = client {
                    let digest = SocketDigest::from_raw_fd(tcp.as_raw_fd());
                    let _ = digest.peer_addr.set(Some(PeerAddr::Inet(client)));
                    tcp.set_socket_digest(digest);
                }
                return true;
            }
            // A connection opened and closed, or left silent (a balancer's TCP check, a port
            // scan), is no misconfiguration: closed quietly, as a silent HTTP one is.
            _ if buf.is_empty() => return false,
            Ok(Err(why)) => why,
            Err(_) => format!("no whole header within header_timeout ({:?})", self.limit),
        };
        self.errors.inc();
        let peer = tcp
            .get_socket_digest()
            .and_then(|d| d.peer_addr().map(PeerAddr::to_string))
            .unwrap_or_else(|| "?".to_string());
        crate::throttled!(
            warn,
            self.log,
            "listener {}: connection from {peer} closed: {why} (the listener has proxy_protocol: true, so every connection must begin with a PROXY protocol header)",
            self.listener
        );
        false
    }
}

/// The header's client address (`None`: keep the socket's), after which `tcp` reads on from
/// the first byte past the header; or why there is no valid header. `buf` keeps what was read.
async fn read_header(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<SocketAddr>, String> {
    loop {
        let start = buf.len();
        buf.resize(start + READ_SIZE, 0);
        let n = tcp.read(&mut buf[start..]).await;
        buf.truncate(start + *n.as_ref().unwrap_or(&0));
        match n {
            Err(e) => return Err(format!("reading the header: {e}")),
            Ok(0) => return Err("closed within the header".into()),
            Ok(_) => {}
        }
        let header = HeaderResult::parse(buf);
        if header.is_incomplete() && buf.len() < MAX_HEADER {
            continue;
        }
        let (len, client) = match header {
            HeaderResult::V1(Ok(h)) => (h.header.len(), v1_client(&h.addresses)),
            HeaderResult::V2(Ok(h)) => (h.len(), v2_client(&h)),
            HeaderResult::V1(Err(e)) => return Err(format!("not a PROXY protocol header ({e})")),
            HeaderResult::V2(Err(e)) => return Err(format!("bad PROXY protocol v2 header ({e})")),
        };
        tcp.rewind(&buf[len..]);
        return Ok(client);
    }
}

fn v1_client(addresses: &v1::Addresses) -> Option<SocketAddr> {
    match addresses {
        v1::Addresses::Tcp4(a) => Some((a.source_address, a.source_port).into()),
        v1::Addresses::Tcp6(a) => Some((a.source_address, a.source_port).into()),
        v1::Addresses::Unknown => None,
    }
}

fn v2_client(header: &v2::Header) -> Option<SocketAddr> {
    if header.command == v2::Command::Local {
        return None;
    }
    match header.addresses {
        v2::Addresses::IPv4(a) => Some((a.source_address, a.source_port).into()),
        v2::Addresses::IPv6(a) => Some((a.source_address, a.source_port).into()),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

/// On a TLS listener the header comes before the handshake: Pingora lets it be read there.
#[async_trait]
impl PreTlsProcess for ProxyHeaders {
    async fn process(&self, stream: &mut TcpStream) -> pingora_error::Result<()> {
        if self.take(stream).await {
            return Ok(());
        }
        pingora_error::Error::e_explain(
            pingora_error::ErrorType::ConnectProxyFailure,
            "no valid PROXY protocol header",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// `sent` from a client, read by `read_header`; also what the stream reads after.
    async fn read(sent: Vec<u8>) -> (Result<Option<SocketAddr>, String>, Vec<u8>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let mut server = TcpStream::from(listener.accept().await.unwrap().0);
        // In pieces, as a slow network would deliver them.
        let send = async move {
            for piece in sent.chunks(7) {
                client.write_all(piece).await.unwrap();
                client.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            client.shutdown().await.unwrap();
        };
        let mut buf = Vec::new();
        let (header, ()) = tokio::join!(read_header(&mut server, &mut buf), send);
        let mut rest = Vec::new();
        if header.is_ok() {
            server.read_to_end(&mut rest).await.unwrap();
        }
        (header, rest)
    }

    fn v2_header(command: v2::Command, from: &str, to: &str) -> Vec<u8> {
        let addresses: v2::Addresses = (
            from.parse::<SocketAddr>().unwrap(),
            to.parse::<SocketAddr>().unwrap(),
        )
            .into();
        v2::Builder::with_addresses(v2::Version::Two | command, v2::Protocol::Stream, addresses)
            .write_tlv(v2::Type::NoOp, &[0; 40])
            .unwrap()
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn v1_gives_the_client_and_leaves_the_request() {
        let sent = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\nGET / HTTP/1.1\r\n\r\n";
        let (header, rest) = read(sent.to_vec()).await;
        assert_eq!(header, Ok(Some("203.0.113.7:51234".parse().unwrap())));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n\r\n");
        let sent = b"PROXY TCP6 2001:db8::7 2001:db8::1 51234 443\r\nGET /".to_vec();
        let (header, _) = read(sent).await;
        assert_eq!(header, Ok(Some("[2001:db8::7]:51234".parse().unwrap())));
        let (header, rest) = read(b"PROXY UNKNOWN\r\nGET /".to_vec()).await;
        assert_eq!((header, rest), (Ok(None), b"GET /".to_vec()));
    }

    #[tokio::test]
    async fn v2_gives_the_client_and_local_keeps_the_socket_peer() {
        let mut sent = v2_header(v2::Command::Proxy, "[2001:db8::7]:40000", "[::1]:443");
        sent.extend_from_slice(b"\x16\x03\x01 TLS");
        let (header, rest) = read(sent).await;
        assert_eq!(header, Ok(Some("[2001:db8::7]:40000".parse().unwrap())));
        assert_eq!(rest, b"\x16\x03\x01 TLS");
        let sent = v2_header(v2::Command::Local, "10.0.0.9:1", "10.0.0.1:80");
        assert_eq!(read(sent).await.0, Ok(None));
    }

    #[tokio::test]
    async fn anything_else_is_refused() {
        let (header, _) = read(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()).await;
        assert!(header
            .unwrap_err()
            .starts_with("not a PROXY protocol header"));
        let (header, _) = read(b"PROXY TCP4 1.2.3".to_vec()).await;
        assert_eq!(header, Err("closed within the header".to_string()));
        let (header, _) = read(b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec()).await;
        assert_eq!(header, Err("closed within the header".to_string()));
    }
}
