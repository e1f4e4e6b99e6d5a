//! Why a backend's certificate was refused. Pingora 0.9.1 reads OpenSSL's verify result after
//! a failed handshake only to name the error `InvalidCert`, then drops it: the log and
//! `/status` said "certificate verify failed" whatever the cause (a CA the pool does not
//! trust, a name that does not match the SNI, an expired certificate). After such a failure
//! the same handshake is made again on a blocking thread, off the serving ones, and OpenSSL's
//! verdict is given: logged for a request's connection (at most once per 5 s per backend),
//! kept as the check's result for a health check.

use super::{BackendState, Pool};
use pingora_core::tls::ssl::{HandshakeError, SslConnector, SslMethod};
use pingora_core::tls::x509::store::X509StoreBuilder;
use pingora_core::tls::x509::X509;
use pingora_core::upstreams::peer::HttpPeer;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What the handshake is made with: the pool's TLS settings, as Pingora uses them.
struct Handshake {
    addr: SocketAddr,
    sni: String,
    verify_hostname: bool,
    /// The pool's CAs (`ca_file`, or `server.ca_file`); none: the system's.
    cas: Option<std::sync::Arc<Box<[X509]>>>,
    timeout: Duration,
}

/// Logs, at `warn` and in the background, why `backend`'s certificate was refused.
pub fn explain(pool: &Pool, backend: &BackendState) {
    if backend.refused_certificate_log.admit().is_none() {
        return;
    }
    let handshake = Handshake::new(backend.addr, &pool.peer_template);
    let name = pool.name.clone();
    tokio::task::spawn_blocking(move || {
        log::warn!(
            "pool {name}: the certificate of {} was refused: {} (SNI `{}`, {})",
            handshake.addr,
            handshake.verdict(),
            handshake.sni,
            handshake.trusted()
        );
    });
}

/// Why the backend at `addr` refused `peer`'s handshake, for a health check's result: e.g.
/// `hostname mismatch, with SNI `a.test` and the pool's CA file`.
pub async fn for_check(addr: SocketAddr, peer: &HttpPeer) -> String {
    let handshake = Handshake::new(addr, peer);
    let context = format!("with SNI `{}` and {}", handshake.sni, handshake.trusted());
    let verdict = tokio::task::spawn_blocking(move || handshake.verdict())
        .await
        .unwrap_or_else(|e| format!("(the check could not tell why: {e})"));
    format!("{verdict}, {context}")
}

impl Handshake {
    fn new(addr: SocketAddr, peer: &HttpPeer) -> Handshake {
        Handshake {
            addr,
            sni: peer.sni.clone(),
            verify_hostname: peer.options.verify_hostname,
            cas: peer.options.ca.clone(),
            timeout: peer
                .options
                .connection_timeout
                .unwrap_or(Duration::from_secs(2)),
        }
    }

    fn trusted(&self) -> &'static str {
        if self.cas.is_some() {
            "the pool's CA file"
        } else {
            "the system's CAs"
        }
    }

    /// OpenSSL's reason, e.g. `Hostname mismatch`, `self-signed certificate`, `certificate
    /// has expired`; or why it could not be asked.
    fn verdict(&self) -> String {
        match self.attempt() {
            Ok(verdict) => verdict,
            Err(e) => format!("(the check could not tell why: {e})"),
        }
    }

    fn attempt(&self) -> Result<String, Box<dyn std::error::Error>> {
        let mut builder = SslConnector::builder(SslMethod::tls_client())?;
        if let Some(cas) = &self.cas {
            // As Pingora: the pool's CAs replace the system's.
            let mut store = X509StoreBuilder::new()?;
            for ca in cas.iter() {
                store.add_cert(ca.clone())?;
            }
            builder.set_verify_cert_store(store.build())?;
        }
        let mut config = builder.build().configure()?;
        config.set_verify_hostname(self.verify_hostname);
        let tcp = TcpStream::connect_timeout(&self.addr, self.timeout)?;
        tcp.set_read_timeout(Some(self.timeout))?;
        tcp.set_write_timeout(Some(self.timeout))?;
        Ok(match config.connect(&self.sni, tcp) {
            Ok(_) => "accepted when checked again (the certificate changed?)".to_string(),
            Err(HandshakeError::Failure(mid)) | Err(HandshakeError::WouldBlock(mid)) => {
                let result = mid.ssl().verify_result();
                match result.as_raw() {
                    0 => format!(
                        "no certificate error; the handshake failed: {}",
                        mid.error()
                    ),
                    _ => result.error_string().to_string(),
                }
            }
            Err(HandshakeError::SetupFailure(e)) => return Err(e.into()),
        })
    }
}
