//! The `HttpPeer` template of a pool: timeouts, upstream TLS (SNI, verification, CA) and h2.

use crate::config::PoolSettings;
use pingora_core::protocols::ALPN;
use pingora_core::upstreams::peer::{HttpPeer, HttpUpstreamRequestPolicy};

/// The pool's peer, at a placeholder address: what its health checks start from, and what
/// [`at`] builds each request's peer from (a field set here must be copied there too; its
/// test compares the two). A pool's CA file comes as the check of the configuration read it
/// (once for all the pools naming it).
pub fn template(p: &PoolSettings) -> HttpPeer {
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
        if let Some(cas) = &t.ca_file {
            o.ca = Some(cas.certs.clone());
            // Pingora's connection pool keys connections by address, SNI and verify flags,
            // not by the CAs: without this, a pool could get a connection another pool
            // verified against other CAs.
            peer.group_key = trust_key(&cas.path);
        }
    }
    let o = &mut peer.options;
    match (p.http2, tls.is_some()) {
        // Offer h2 and fall back to HTTP/1.1 if a backend does not speak it.
        (true, true) => o.set_http_version(2, 1),
        // h2c: without TLS there is no ALPN to offer it with; the backends are known to speak
        // it ("prior knowledge", as nginx's `grpc_pass grpc://` and HAProxy's `proto h2`).
        (true, false) => o.set_http_version(2, 2),
        (false, _) => {}
    }
    peer
}

/// `template`'s peer for `addr` (with `tls_name` as its SNI, when given), built from the
/// fields [`template`] sets rather than cloned:
/// `PeerOptions`' clone visits each of its twenty-odd optional fields (~300 instructions, for
/// every request). Boxed as made: Pingora takes it boxed, and a peer returned by value (a large
/// struct) was copied once more on its way into the box.
pub fn at(
    template: &HttpPeer,
    addr: std::net::SocketAddr,
    tls_name: Option<&str>,
) -> Box<HttpPeer> {
    let sni = tls_name.map_or_else(|| template.sni.clone(), str::to_string);
    let mut peer = Box::new(HttpPeer::new(addr, template.is_tls(), sni));
    peer.group_key = template.group_key;
    let (o, t) = (&mut peer.options, &template.options);
    o.http_upstream_request_policy = t.http_upstream_request_policy;
    o.connection_timeout = t.connection_timeout;
    o.read_timeout = t.read_timeout;
    o.write_timeout = t.write_timeout;
    o.idle_timeout = t.idle_timeout;
    o.verify_cert = t.verify_cert;
    o.verify_hostname = t.verify_hostname;
    o.ca.clone_from(&t.ca);
    o.alpn = t.alpn.clone();
    peer
}

/// Makes `peer` one for a WebSocket upgrade: HTTP/1.1 whatever the pool speaks (an upgrade
/// does not exist in h2; Pingora would send it as a plain GET over an h2 connection), and
/// `timeouts.tunnel` in place of `read`, since a WebSocket may stay quiet for long.
pub fn for_websocket(peer: &mut HttpPeer, tunnel: Option<std::time::Duration>) {
    peer.options.alpn = ALPN::H1;
    peer.options.read_timeout = tunnel;
}

/// A key for the CA file a pool trusts (0, Pingora's default, is the system's CAs).
fn trust_key(ca_file: &std::path::Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ca_file.hash(&mut h);
    h.finish() | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_core::upstreams::peer::Peer;

    /// Every field `template` sets reaches the peers built from it, as a clone would.
    #[test]
    fn a_peer_built_for_an_address_is_the_template_there() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["backend.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let text = format!(
            "listeners:\n  web: {{address: \"127.0.0.1:8080\"}}\n\
             pools:\n  \
               plain: {{backends: [\"127.0.0.1:1\"], timeouts: {{connect: 2s, read: 3s, write: 4s, idle: 5s}}}}\n  \
               tls: {{backends: [\"127.0.0.1:1\"], http2: true, tls: {{sni: backend.test, verify: false}}}}\n  \
               ca: {{backends: [\"127.0.0.1:1\"], tls: {{sni: backend.test, ca_file: \"{}\"}}}}\n\
             projects:\n  - {{name: site, hosts: [\"*\"], pool: plain}}\n",
            ca_file.display()
        );
        let config = crate::config::load_str(std::path::Path::new("t.yaml"), &text, |_| None)
            .unwrap_or_else(|e| panic!("{e}"));
        let addr: std::net::SocketAddr = "10.1.2.3:8443".parse().unwrap();
        for pool in &config.pools {
            let template = template(pool);
            let mut cloned = template.clone();
            cloned._address = pingora_core::protocols::l4::socket::SocketAddr::Inet(addr);
            let built = at(&template, addr, None);
            assert_eq!(format!("{built:?}"), format!("{cloned:?}"), "{}", pool.name);
            assert_eq!(built.reuse_hash(), cloned.reuse_hash(), "{}", pool.name);
        }
        assert_eq!(config.pools.len(), 3);
    }
}
