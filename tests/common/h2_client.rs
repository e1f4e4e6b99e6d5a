//! A bare HTTP/2 client over TLS or without (the `h2` crate), for what reqwest does not let a test do:
//! choose its flow-control windows, reset a stream, see the ALPN protocol negotiated.

use super::TestCa;
use std::sync::Arc;
use tokio_rustls::rustls;

/// An HTTP/2 connection to `addr` over TLS as `name` (trusting `ca`), built by `builder`;
/// its connection task runs on the current runtime.
pub async fn h2_connect(
    ca: &TestCa,
    addr: &str,
    name: &'static str,
    builder: &h2::client::Builder,
) -> h2::client::SendRequest<bytes::Bytes> {
    let tls = tls_connect(ca, addr, name, &[b"h2"]).await;
    let (client, connection) = builder.handshake(tls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// An HTTP/2 connection to `addr` without TLS (h2c, prior knowledge), built by `builder`;
/// its connection task runs on the current runtime.
pub async fn h2c_connect(
    addr: &str,
    builder: &h2::client::Builder,
) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = builder.handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    client
}

/// A TLS connection to `addr` as `name` (trusting `ca`), offering `alpn`.
pub async fn tls_connect(
    ca: &TestCa,
    addr: &str,
    name: &'static str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tls_over(ca, tcp, name, alpn).await.unwrap()
}

/// TLS as `name` (trusting `ca`, offering `alpn`) over `tcp`, a connection the caller may
/// have sent something on first (e.g. a PROXY protocol header); fails when the handshake does.
pub async fn tls_over(
    ca: &TestCa,
    tcp: tokio::net::TcpStream,
    name: &'static str,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.ca_der().into()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let server = rustls::pki_types::ServerName::try_from(name).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(server, tcp)
        .await
}

/// Sends `GET path` (no body) on a new stream of `client`; the answer is awaited by the
/// caller, or dropped to reset the stream (`CANCEL`).
pub async fn h2_get(
    client: &h2::client::SendRequest<bytes::Bytes>,
    name: &str,
    path: &str,
) -> h2::client::ResponseFuture {
    let request = http::Request::get(format!("https://{name}{path}"))
        .body(())
        .unwrap();
    let mut client = client.clone().ready().await.unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    response
}

/// A runtime for one test's async part.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
