//! Listener TLS: the default certificate plus per-project certificates chosen by SNI
//! (exact name, then wildcard), minimum protocol version, h2 over ALPN.

use crate::certificates;
use crate::config::{CertPair, ListenerTls, ProjectSettings, TlsVersion};
use async_trait::async_trait;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::TlsAccept;
use pingora_core::tls::ext;
use pingora_core::tls::pkey::{PKey, Private};
use pingora_core::tls::ssl::{NameType, SslRef, SslVersion};
use pingora_core::tls::x509::X509;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// A certificate chain (leaf first) and its key.
pub struct Certified {
    chain: Vec<X509>,
    key: PKey<Private>,
}

/// A certificate file a TLS listener serves, as `/status` lists it and
/// `rampart_tls_certificate_expiry_timestamp_seconds` reports it.
#[derive(Debug, Clone)]
pub struct ServedCertificate {
    pub listener: String,
    pub file: PathBuf,
    /// `default`, and the projects whose hosts it is chosen for.
    pub served_for: Vec<String>,
    /// The DNS names of its first certificate.
    pub names: Vec<String>,
    /// When the chain stops working ([`crate::config::CertPair::ends`]).
    pub expires: Option<SystemTime>,
}

impl Certified {
    pub fn load(pair: &CertPair) -> std::io::Result<Arc<Self>> {
        let chain =
            X509::stack_from_pem(&std::fs::read(&pair.cert)?).map_err(std::io::Error::other)?;
        let key = PKey::private_key_from_pem(&std::fs::read(&pair.key)?)
            .map_err(std::io::Error::other)?;
        if chain.is_empty() {
            return Err(std::io::Error::other(format!(
                "{} holds no certificate",
                pair.cert.display()
            )));
        }
        Ok(Arc::new(Certified { chain, key }))
    }
}

/// Loads the certificates `listener` serves: its default one and those of the projects on
/// it, each file once. Returns what the handshakes pick from, and the files for reporting.
pub fn listener_certificates(
    listener: &str,
    tls: &ListenerTls,
    projects: &[ProjectSettings],
) -> Result<(SniCertificates, Vec<ServedCertificate>), String> {
    // Keyed by the file itself: `certs/x.crt` and `./certs/x.crt` are one certificate.
    let mut served: Vec<(PathBuf, Arc<Certified>, ServedCertificate)> = Vec::new();
    let mut load = |pair: &CertPair, user: &str| -> std::io::Result<Arc<Certified>> {
        let key = std::fs::canonicalize(&pair.cert).unwrap_or_else(|_| pair.cert.clone());
        if let Some((_, c, s)) = served.iter_mut().find(|(k, _, _)| *k == key) {
            s.served_for.push(user.to_string());
            return Ok(c.clone());
        }
        let c = Certified::load(pair)?;
        served.push((
            key,
            c.clone(),
            ServedCertificate {
                listener: listener.to_string(),
                file: pair.cert.clone(),
                served_for: vec![user.to_string()],
                names: certificates::dns_names(&c.chain[0]),
                // As `check` read the file at this start.
                expires: pair.ends,
            },
        ));
        Ok(c)
    };
    let mut certs = SniCertificates::new(load(&tls.cert, "default").map_err(|e| e.to_string())?);
    for p in projects
        .iter()
        .filter(|p| p.listeners.iter().any(|l| l == listener))
    {
        // Only names pick a project's certificate; `*` gets the listener's default one.
        let named: Vec<&String> = p.hosts.iter().filter(|h| h.as_str() != "*").collect();
        if let (Some(pair), false) = (&p.tls, named.is_empty()) {
            let c = load(pair, &p.name).map_err(|e| format!("project {}: {e}", p.name))?;
            for h in named {
                certs.add(h, c.clone());
            }
        }
    }
    Ok((certs, served.into_iter().map(|(_, _, s)| s).collect()))
}

/// Picks the certificate for the SNI name of each handshake.
pub struct SniCertificates {
    default: Arc<Certified>,
    exact: HashMap<String, Arc<Certified>>,
    /// Keyed by the suffix after `*.`.
    wildcard: HashMap<String, Arc<Certified>>,
}

impl SniCertificates {
    pub fn new(default: Arc<Certified>) -> Self {
        SniCertificates {
            default,
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        }
    }

    /// Serves `cert` for `host` (`name`, `*.name`; `*` is covered by the default).
    pub fn add(&mut self, host: &str, cert: Arc<Certified>) {
        if let Some(suffix) = host.strip_prefix("*.") {
            self.wildcard.insert(suffix.to_string(), cert);
        } else if host != "*" {
            self.exact.insert(host.to_string(), cert);
        }
    }

    fn pick(&self, name: Option<&str>) -> &Certified {
        // `shop.test.` is `shop.test`, as Host routing has it.
        let Some(name) = name.map(|n| n.trim_end_matches('.').to_ascii_lowercase()) else {
            return &self.default;
        };
        if let Some(c) = self.exact.get(&name) {
            return c;
        }
        let mut rest = name.as_str();
        while let Some(dot) = rest.find('.') {
            rest = &rest[dot + 1..];
            if let Some(c) = self.wildcard.get(rest) {
                return c;
            }
        }
        &self.default
    }
}

#[async_trait]
impl TlsAccept for SniCertificates {
    async fn certificate_callback(&self, ssl: &mut SslRef) {
        let cert = self.pick(ssl.servername(NameType::HOST_NAME));
        let result = ext::ssl_use_certificate(ssl, &cert.chain[0])
            .and_then(|_| ext::ssl_use_private_key(ssl, &cert.key))
            .and_then(|_| {
                cert.chain[1..]
                    .iter()
                    .try_for_each(|c| ext::ssl_add_chain_cert(ssl, c))
            });
        if let Err(e) = result {
            log::error!(
                "TLS: cannot use the certificate for {:?}: {e}",
                ssl.servername(NameType::HOST_NAME)
            );
        }
    }

    /// An HTTP/2 connection's count of the streams its client resets (`StreamResets`).
    async fn handshake_complete_callback(
        &self,
        ssl: &SslRef,
    ) -> Option<std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        crate::proxy::StreamResets::for_alpn(ssl.selected_alpn_protocol())
    }
}

pub fn settings(tls: &ListenerTls, certs: SniCertificates) -> pingora_error::Result<TlsSettings> {
    let mut settings = TlsSettings::with_callbacks(Box::new(certs))?;
    if tls.min_version == TlsVersion::V1_3 {
        settings
            .set_min_proto_version(Some(SslVersion::TLS1_3))
            .map_err(|e| {
                pingora_error::Error::because(
                    pingora_error::ErrorType::InternalError,
                    "set TLS min version",
                    e,
                )
            })?;
    }
    if tls.http2 {
        settings.enable_h2();
    } else {
        // Answer a client offering http/1.1 with it, as nginx does; one offering h2 alone
        // gets no ALPN answer and may try HTTP/1.1 anyway.
        settings.set_alpn(pingora_core::protocols::ALPN::H1);
    }
    Ok(settings)
}
