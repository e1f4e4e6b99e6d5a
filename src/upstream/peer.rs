//! The `HttpPeer` template of a pool: timeouts, upstream TLS (SNI, verification, CA) and h2.

use crate::config::PoolSettings;
use pingora_core::tls::x509::X509;
use pingora_core::upstreams::peer::{HttpPeer, HttpUpstreamRequestPolicy};
use std::sync::Arc;

pub fn template(p: &PoolSettings) -> std::io::Result<HttpPeer> {
    let tls = p.tls.as_ref();
    let mut peer = HttpPeer::new(
        "0.0.0.0:1",
        tls.is_some(),
        tls.map(|t| t.sni.clone()).unwrap_or_default(),
    );
    let o = &mut peer.options;
    // Rampart strips hop-by-hop and `Connection`-named request headers itself, in the pass
    // that finds spoofed forwarding headers (`proxy::forward::strip_request_headers`), and
    // refuses malformed `Connection` options before routing (`proxy::request_head`).
    o.http_upstream_request_policy = HttpUpstreamRequestPolicy::preserve();
    o.connection_timeout = p.timeouts.connect;
    o.read_timeout = p.timeouts.read;
    o.write_timeout = p.timeouts.write;
    o.idle_timeout = p.timeouts.idle;
    if let Some(t) = tls {
        o.verify_cert = t.verify;
        o.verify_hostname = t.verify;
        if let Some(path) = &t.ca_file {
            let pem = std::fs::read(path)?;
            let certs = X509::stack_from_pem(&pem).map_err(std::io::Error::other)?;
            o.ca = Some(Arc::new(certs.into_boxed_slice()));
            // Pingora's connection pool keys connections by address, SNI and verify flags,
            // not by the CAs: without this, a pool could get a connection another pool
            // verified against other CAs.
            peer.group_key = trust_key(path);
        }
    }
    let o = &mut peer.options;
    if p.http2 {
        // Offer h2 and fall back to HTTP/1.1 if a backend does not speak it.
        o.set_http_version(2, 1);
    }
    Ok(peer)
}

/// A key for the CA file a pool trusts (0, Pingora's default, is the system's CAs).
fn trust_key(ca_file: &std::path::Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ca_file.hash(&mut h);
    h.finish() | 1
}
