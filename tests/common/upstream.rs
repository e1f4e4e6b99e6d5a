//! Real upstream servers (HTTP/1.1 and h2c, or TLS with ALPN h2 + http/1.1), each on its own
//! thread with its own tokio runtime, so that sync and async tests can both use them.
//!
//! - `/healthz` → 200 `ok`, or 503 `down` after `set_healthy(false)` (counted apart);
//! - `/slow?ms=N` waits N ms (default 500), then answers like any other path;
//! - an h2 request with both `:authority` and a Host header gets 400, as from nginx;
//! - `/status/NNN` answers status NNN (with the echo body);
//! - an HTTP/1.1 WebSocket upgrade (`Upgrade: websocket`) gets `101`, then every byte of
//!   the switched connection is echoed back;
//! - `/grpc` → 200 with a body and gRPC's trailers (`grpc-status: 0`, `grpc-message: done`),
//!   and the request's `TE` back in `x-seen-te`;
//! - anything else → 200 with the `Echo` JSON, `x-upstream: NAME`, `server: test-upstream`.

use super::CertFiles;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::rustls;

struct State {
    name: String,
    healthy: AtomicBool,
    hits: AtomicUsize,
    health_hits: AtomicUsize,
    /// The Host (or h2 `:authority`) of the last `/healthz` request.
    health_host: std::sync::Mutex<Option<String>>,
    /// The HTTP version of the last `/healthz` request, e.g. `HTTP/2.0`.
    health_version: std::sync::Mutex<Option<String>>,
    in_flight: AtomicUsize,
    connections: AtomicUsize,
}

/// The server thread while it runs.
struct Running {
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

pub struct Upstream {
    pub name: String,
    addr: SocketAddr,
    state: Arc<State>,
    tls: Option<Arc<rustls::ServerConfig>>,
    running: Option<Running>,
}

impl Upstream {
    /// Plain HTTP/1.1 and h2c (prior knowledge) on 127.0.0.1, an ephemeral port.
    pub fn start(name: &str) -> Upstream {
        Self::build(name, None)
    }

    /// TLS serving `cert`, ALPN `h2` and `http/1.1`.
    pub fn start_tls(name: &str, cert: &CertFiles) -> Upstream {
        Self::start_tls_alpn(name, cert, &["h2", "http/1.1"])
    }

    /// TLS offering only the given ALPN protocols (e.g. `&["http/1.1"]`).
    pub fn start_tls_alpn(name: &str, cert: &CertFiles, alpn: &[&str]) -> Upstream {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("key PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("certificate and key match");
        cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Self::build(name, Some(Arc::new(cfg)))
    }

    /// Plain, like `start`, at `addr` (another loopback address than 127.0.0.1, say).
    pub fn start_at(name: &str, addr: SocketAddr) -> std::io::Result<Upstream> {
        Ok(Self::serve(name, None, std::net::TcpListener::bind(addr)?))
    }

    fn build(name: &str, tls: Option<Arc<rustls::ServerConfig>>) -> Upstream {
        Self::serve(name, tls, super::bind_unused())
    }

    fn serve(
        name: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        listener: std::net::TcpListener,
    ) -> Upstream {
        let mut u = Upstream {
            name: name.to_string(),
            addr: listener.local_addr().unwrap(),
            state: Arc::new(State {
                name: name.to_string(),
                healthy: AtomicBool::new(true),
                hits: AtomicUsize::new(0),
                health_hits: AtomicUsize::new(0),
                health_host: Default::default(),
                health_version: Default::default(),
                in_flight: AtomicUsize::new(0),
                connections: AtomicUsize::new(0),
            }),
            tls,
            running: None,
        };
        u.serve_on(listener);
        u
    }

    /// Runs the accept loop on its own thread. The socket is bound already, so connections
    /// made as soon as this returns wait in the backlog.
    fn serve_on(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let (state, tls) = (self.state.clone(), self.tls.clone());
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("upstream-{}", self.name))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).unwrap();
                    tokio::select! {
                        _ = accept_loop(listener, state, tls) => {}
                        _ = stop => {}
                    }
                });
                // Dropping the runtime drops every connection task: sockets are closed.
            })
            .unwrap();
        self.running = Some(Running { shutdown, thread });
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    /// `http://ADDR{path}` (`https://` for a TLS upstream).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Requests received, `/healthz` excluded.
    pub fn hits(&self) -> usize {
        self.state.hits.load(SeqCst)
    }

    /// `/healthz` requests received.
    pub fn health_hits(&self) -> usize {
        self.state.health_hits.load(SeqCst)
    }

    /// The Host (or h2 `:authority`) of the last `/healthz` request, once one came.
    pub fn health_host(&self) -> Option<String> {
        self.state.health_host.lock().unwrap().clone()
    }

    /// Requests being answered right now (e.g. waiting in `/slow`).
    /// The HTTP version of the last `/healthz` request (`HTTP/1.1`, `HTTP/2.0`), once one came.
    pub fn health_version(&self) -> Option<String> {
        self.state.health_version.lock().unwrap().clone()
    }

    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(SeqCst)
    }

    /// When false, `/healthz` answers 503.
    pub fn set_healthy(&self, healthy: bool) {
        self.state.healthy.store(healthy, SeqCst);
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Closes the listener and every open connection; when this returns, connections to
    /// `addr()` are refused. Does nothing if already stopped.
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.shutdown.send(());
            let _ = r.thread.join();
        }
    }

    /// Stops (if running) and listens again on the same port (panics if it stays taken).
    pub fn restart(&mut self) {
        self.stop();
        let addr = self.addr;
        let listener = super::poll_until(
            Duration::from_secs(5),
            &format!("upstream {} to re-bind {addr}", self.name),
            || std::net::TcpListener::bind(addr).ok(),
        );
        self.serve_on(listener);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    // Connections live in the set: dropping this future (stop) closes them all.
    let mut conns = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // e.g. too many open files: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        state.connections.fetch_add(1, SeqCst);
        let _ = stream.set_nodelay(true);
        let (state, tls) = (state.clone(), tls.clone());
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req| answer(state.clone(), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let io = TokioIo::new(stream);
                    let _ = builder.serve_connection_with_upgrades(io, svc).await;
                }
                Some(cfg) => {
                    if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await {
                        let io = TokioIo::new(s);
                        let _ = builder.serve_connection_with_upgrades(io, svc).await;
                    }
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
}

/// Decrements `in_flight` however the request ends (even if the client goes away).
struct InFlight(Arc<State>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

/// Echoes the bytes of a connection switched by a `101`, until the client closes it.
async fn echo_switched(upgrade: hyper::upgrade::OnUpgrade) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(switched) = upgrade.await else {
        return;
    };
    let mut io = TokioIo::new(switched);
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = io.read(&mut buf).await {
        if io.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// `/grpc` answers as a gRPC server does: `200`, a body, then the call's status in trailers
/// (`grpc-status: 0`, `grpc-message: done`); everything else is [`handle`]'s.
async fn answer(
    state: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    if req.uri().path() != "/grpc" {
        let answer = handle(state, req).await?;
        return Ok(answer.map(BodyExt::boxed));
    }
    state.hits.fetch_add(1, SeqCst);
    // gRPC servers may refuse a call without it ("some intermediate proxy may not support
    // trailers"): shown back to the client.
    let te = req.headers().get("te").cloned();
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
    trailers.insert(
        "grpc-message",
        hyper::header::HeaderValue::from_static("done"),
    );
    let frames = [
        Ok(hyper::body::Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
        Ok(hyper::body::Frame::trailers(trailers)),
    ];
    let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
    let mut answer = Response::builder();
    if let Some(te) = te {
        answer = answer.header("x-seen-te", te);
    }
    Ok(answer
        .header("content-type", "application/grpc")
        .header("x-upstream", &state.name)
        .body(BodyExt::boxed(body))
        .unwrap())
}

async fn handle(
    state: Arc<State>,
    mut req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    // As nginx: an h2 request naming its host twice (`:authority` and a Host header) is
    // refused ("client sent duplicate host header").
    if req.version() == hyper::Version::HTTP_2
        && req.uri().authority().is_some()
        && req.headers().contains_key(hyper::header::HOST)
    {
        return Ok(Response::builder()
            .status(400)
            .body(Full::new(Bytes::from("duplicate host header")))
            .unwrap());
    }
    let websocket = req
        .headers()
        .get(hyper::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if websocket && req.version() == hyper::Version::HTTP_11 {
        state.hits.fetch_add(1, SeqCst);
        tokio::spawn(echo_switched(hyper::upgrade::on(&mut req)));
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("x-upstream", &state.name)
            .body(Full::new(Bytes::new()))
            .unwrap());
    }
    if path == "/healthz" {
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok());
        let host = host.or(req.uri().authority().map(|a| a.as_str()));
        *state.health_host.lock().unwrap() = host.map(str::to_string);
        *state.health_version.lock().unwrap() = Some(format!("{:?}", req.version()));
        state.health_hits.fetch_add(1, SeqCst);
        let ok = state.healthy.load(SeqCst);
        return Ok(Response::builder()
            .status(if ok { 200 } else { 503 })
            .header("content-type", "text/plain")
            .header("x-upstream", &state.name)
            .body(Full::new(Bytes::from(if ok { "ok" } else { "down" })))
            .unwrap());
    }
    state.hits.fetch_add(1, SeqCst);
    state.in_flight.fetch_add(1, SeqCst);
    let _in_flight = InFlight(state.clone());
    let query = req.uri().query().unwrap_or("").to_string();
    if path == "/slow" {
        let ms = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("ms="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = path
        .strip_prefix("/status/")
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in req.headers() {
        headers
            .entry(k.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let (method, version) = (req.method().to_string(), format!("{:?}", req.version()));
    let uri = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let (uri, authority) = (
        uri.to_string(),
        req.uri().authority().map(|a| a.to_string()),
    );
    let body = match req.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let echo = serde_json::json!({
        "upstream": state.name,
        "method": method,
        "uri": uri,
        "version": version,
        "headers": headers,
        "authority": authority,
        "body": body,
    });
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-upstream", &state.name)
        .header("server", "test-upstream")
        .body(Full::new(Bytes::from(echo.to_string())))
        .unwrap())
}
