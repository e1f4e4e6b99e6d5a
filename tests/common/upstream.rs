//! Real upstream servers (HTTP/1.1 and h2c, optionally TLS with ALPN h2) that echo what they
//! receive as JSON. `/healthz` answers 200 or 503 (see `set_healthy`), `/slow?ms=N` waits,
//! `/status/NNN` answers NNN.

use super::CertFiles;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

#[derive(Default)]
struct State {
    healthy: AtomicBool,
    hits: AtomicUsize,
    health_hits: AtomicUsize,
    in_flight: AtomicUsize,
}

pub struct Upstream {
    pub name: String,
    addr: SocketAddr,
    state: Arc<State>,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    rt: tokio::runtime::Runtime,
    server: Option<tokio::task::JoinHandle<()>>,
}

async fn handle(
    name: Arc<str>,
    state: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        state.health_hits.fetch_add(1, SeqCst);
        let ok = state.healthy.load(SeqCst);
        return Ok(Response::builder()
            .status(if ok { 200 } else { 503 })
            .body(Full::new(Bytes::from(if ok { "ok" } else { "down" })))
            .unwrap());
    }
    state.hits.fetch_add(1, SeqCst);
    state.in_flight.fetch_add(1, SeqCst);
    if path == "/slow" {
        let ms = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("ms="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    state.in_flight.fetch_sub(1, SeqCst);
    let status = path
        .strip_prefix("/status/")
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(200);
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in req.headers() {
        headers
            .entry(k.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let body = serde_json::json!({
        "upstream": &*name,
        "method": req.method().as_str(),
        "uri": req.uri().path_and_query().map_or("/", |p| p.as_str()),
        "version": format!("{:?}", req.version()),
        "headers": headers,
    });
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-upstream", &*name)
        .header("server", "test-upstream")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap())
}

async fn serve(
    listener: TcpListener,
    name: Arc<str>,
    state: Arc<State>,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
) {
    // Connections live in the set, so stopping the server (dropping this future) closes them.
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (name, state, tls) = (name.clone(), state.clone(), tls.clone());
        conns.spawn(async move {
            let svc =
                hyper::service::service_fn(move |req| handle(name.clone(), state.clone(), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
                Some(cfg) => {
                    if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
}

impl Upstream {
    pub fn start(name: &str) -> Upstream {
        Self::build(name, None, "127.0.0.1:0".parse().unwrap())
    }

    /// TLS with ALPN h2 and http/1.1, serving `cert`.
    pub fn start_tls(name: &str, cert: &CertFiles) -> Upstream {
        use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(&cert.cert_path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(&cert.key_path).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut cfg = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self::build(name, Some(Arc::new(cfg)), "127.0.0.1:0".parse().unwrap())
    }

    fn build(
        name: &str,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        addr: SocketAddr,
    ) -> Upstream {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(State::default());
        state.healthy.store(true, SeqCst);
        let mut u = Upstream {
            name: name.to_string(),
            addr,
            state,
            tls,
            rt,
            server: None,
        };
        u.listen(addr);
        u
    }

    fn listen(&mut self, addr: SocketAddr) {
        let listener = poll_bind(&self.rt, addr);
        self.addr = listener.local_addr().unwrap();
        let fut = serve(
            listener,
            self.name.as_str().into(),
            self.state.clone(),
            self.tls.clone(),
        );
        self.server = Some(self.rt.spawn(fut));
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    /// Requests received, health checks excluded.
    pub fn hits(&self) -> usize {
        self.state.hits.load(SeqCst)
    }

    pub fn health_hits(&self) -> usize {
        self.state.health_hits.load(SeqCst)
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.state.healthy.store(healthy, SeqCst);
    }

    /// Stops listening and closes every connection: connections are refused afterwards.
    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
            let _ = self.rt.block_on(s);
        }
    }

    /// Listens again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.listen(self.addr);
    }
}

/// Binds `addr`, retrying briefly while a just-closed socket of ours still holds it.
fn poll_bind(rt: &tokio::runtime::Runtime, addr: SocketAddr) -> TcpListener {
    let std = super::poll_until(Duration::from_secs(10), "binding the upstream port", || {
        std::net::TcpListener::bind(addr).ok()
    });
    std.set_nonblocking(true).unwrap();
    let _guard = rt.enter();
    TcpListener::from_std(std).unwrap()
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}
