//! The reference for benchmarks: the smallest useful Pingora proxy, forwarding every request
//! to one upstream with no routing, rules, metrics or logging.
//!
//! `bare_pingora LISTEN_ADDR UPSTREAM_ADDR [THREADS] [timeouts]`: with `timeouts`, the
//! upstream gets Rampart's default pool timeouts (connect 2s, read 30s, write 30s, idle 60s),
//! kept as Rampart keeps them (on tokio's timer wheel), to tell Pingora's cost of honouring
//! them from Rampart's own.

mod bench_server;

use async_trait::async_trait;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, Session};
use std::time::Duration;

struct Bare {
    upstream: String,
    timeouts: bool,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora_error::Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.upstream.as_str(), false, String::new());
        if self.timeouts {
            let o = &mut peer.options;
            o.connection_timeout = Some(Duration::from_secs(2));
            o.read_timeout = Some(Duration::from_secs(30));
            o.write_timeout = Some(Duration::from_secs(30));
            o.idle_timeout = Some(Duration::from_secs(60));
        }
        Ok(Box::new(peer))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (listen, upstream) = match (args.get(1), args.get(2)) {
        (Some(l), Some(u)) => (l.clone(), u.clone()),
        _ => {
            eprintln!("usage: bare_pingora LISTEN_ADDR UPSTREAM_ADDR [THREADS] [timeouts]");
            std::process::exit(2);
        }
    };
    let timeouts = args.get(4).is_some_and(|a| a == "timeouts");
    bench_server::serve(&listen, args.get(3), Bare { upstream, timeouts }, timeouts);
}
