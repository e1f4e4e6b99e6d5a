//! The reference for the redirect benchmark: the smallest Pingora server answering redirects
//! from a map, with no routing, normalization, rules engine, metrics or logging. It shows how
//! much of a redirect's cost is Pingora's own (bench/redirects-vs-nginx.sh).
//!
//! `bare_redirect LISTEN_ADDR CSV_FILE [THREADS]`: CSV lines `source,target[,status]` (no
//! quoting); other paths get 404.

mod bench_server;

use async_trait::async_trait;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::ResponseHeader;
use pingora_proxy::{ProxyHttp, Session};
use std::collections::HashMap;

struct BareRedirect {
    /// Source path → (status, Location).
    map: HashMap<String, (u16, http::HeaderValue)>,
}

#[async_trait]
impl ProxyHttp for BareRedirect {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut (),
    ) -> pingora_error::Result<bool> {
        let (status, location) = match self.map.get(session.req_header().uri.path()) {
            Some((status, location)) => (*status, Some(location.clone())),
            None => (404, None),
        };
        // The cheapest header Pingora offers: plain `http` parts, no case map.
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::NOT_FOUND);
        parts.headers.insert(http::header::CONTENT_LENGTH, 0.into());
        if let Some(location) = location {
            parts.headers.insert(http::header::LOCATION, location);
        }
        session
            .write_response_header(Box::new(ResponseHeader::from(parts)), true)
            .await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora_error::Result<Box<HttpPeer>> {
        Err(pingora_error::Error::new_str(
            "every request is answered locally",
        ))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (listen, csv) = match (args.get(1), args.get(2)) {
        (Some(l), Some(c)) => (l.clone(), c.clone()),
        _ => {
            eprintln!("usage: bare_redirect LISTEN_ADDR CSV_FILE [THREADS]");
            std::process::exit(2);
        }
    };
    let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| {
        eprintln!("{csv}: {e}");
        std::process::exit(1);
    });
    let map = text
        .lines()
        .filter(|l| l.starts_with('/'))
        .filter_map(|l| {
            let mut f = l.split(',');
            let (source, target) = (f.next()?, f.next()?);
            let status = f.next().and_then(|s| s.trim().parse().ok()).unwrap_or(301);
            Some((source.to_string(), (status, target.parse().ok()?)))
        })
        .collect();
    bench_server::serve(&listen, args.get(3), BareRedirect { map }, false);
}
