//! The `kind: http` health check: `GET path` on a new connection, healthy when the status is
//! one of `expect_status`. Pingora's `HttpHealthCheck` sends one request head whatever the
//! connection speaks; over h2 its Host header and the `:authority` Pingora derives from it
//! reach the backend as two hosts, which nginx refuses (400): an h2 pool was never healthy.
//! Here the head is built for the protocol the connection negotiated.

use async_trait::async_trait;
use pingora_core::connectors::http::Connector;
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::HealthCheck;
use pingora_load_balancing::Backend;

pub struct HttpCheck {
    pub connector: std::sync::Arc<Connector>,
    /// The pool's TLS, ALPN and timeouts; the address is the checked backend's.
    pub peer_template: HttpPeer,
    /// The check's `host`, else the pool's TLS name; without either, each backend's own name
    /// when it is given by one (`app.internal:8080`, the Host `preserve_host: false` sends it),
    /// else `localhost`.
    pub host: Option<String>,
    pub path: String,
    pub expect_status: Vec<u16>,
    pub rise: usize,
    pub fall: usize,
}

const USER_AGENT: &str = concat!("rampart-health/", env!("CARGO_PKG_VERSION"));

impl HttpCheck {
    /// `GET path` with the Host in the header (HTTP/1) or in `:authority` alone (h2).
    fn request(&self, host: &str, h2: bool) -> Result<Box<RequestHeader>> {
        let mut req = if h2 {
            let scheme = if self.peer_template.is_tls() {
                "https"
            } else {
                "http"
            };
            let uri = format!("{scheme}://{host}{}", self.path);
            let mut req = RequestHeader::build("GET", b"/", None)?;
            req.set_uri(uri.parse().map_err(|e| {
                Error::because(ErrorType::InvalidHTTPHeader, format!("check URI {uri}"), e)
            })?);
            req
        } else {
            let mut req = RequestHeader::build("GET", self.path.as_bytes(), None)?;
            req.insert_header("Host", host)?;
            req
        };
        req.insert_header("User-Agent", USER_AGENT)?;
        Ok(Box::new(req))
    }
}

/// A refused certificate, with OpenSSL's reason (Pingora's error says only "certificate verify
/// failed"): e.g. `InvalidCert (hostname mismatch, with SNI `a.test` and the pool's CA file)`.
async fn refused(peer: &HttpPeer, e: Box<Error>) -> Result<()> {
    let Some(addr) = peer._address.as_inet() else {
        return Err(e);
    };
    let why = super::refused_certificate::for_check(*addr, peer).await;
    Error::e_explain(ErrorType::InvalidCert, why)
}

#[async_trait]
impl HealthCheck for HttpCheck {
    async fn check(&self, target: &Backend) -> Result<()> {
        let backend = super::health::state(target);
        let mut peer = self.peer_template.clone();
        peer._address = target.addr.clone();
        if let Some(name) = backend.and_then(|b| b.tls_name.as_ref()) {
            peer.sni.clone_from(name);
        }
        let (mut session, _) = match self.connector.get_http_session(&peer).await {
            Err(e) if e.etype() == &ErrorType::InvalidCert => return refused(&peer, e).await,
            connected => connected?,
        };
        let host = match (&self.host, backend) {
            (Some(host), _) => host.as_str(),
            (None, Some(b)) if b.named => &b.name,
            (None, _) => "localhost",
        };
        let req = self.request(host, matches!(session, HttpSession::H2(_)))?;
        session.set_write_timeout(peer.options.write_timeout);
        session.write_request_header(req).await?;
        session.finish_request_body().await?;
        session.set_read_timeout(peer.options.read_timeout);
        session.read_response_header().await?;
        let code = session.response_header().map_or(0, |r| r.status.as_u16());
        if !self.expect_status.contains(&code) {
            return Error::e_explain(
                ErrorType::CustomCode("unexpected status", code),
                format!("status {code}, expected one of {:?}", self.expect_status),
            );
        }
        while session.read_response_body().await?.is_some() {}
        Ok(())
    }

    fn health_threshold(&self, success: bool) -> usize {
        if success {
            self.rise
        } else {
            self.fall
        }
    }
}
