//! The server the reference examples (`bare_pingora`, `bare_redirect`) run their `ProxyHttp`
//! in: one listener, no grace periods, `threads` workers.

// The same allocator as Rampart (the same source file), so the ratios against these
// references compare proxy code, not allocators.
#[path = "../../src/alloc/mimalloc.rs"]
mod mimalloc;
#[global_allocator]
static ALLOCATOR: mimalloc::Mimalloc = mimalloc::Mimalloc;

use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_proxy::ProxyHttp;

/// Serves `app` on `listen` until killed. `threads` defaults to 1. `tokio_timers`: Pingora's
/// timeouts of a second or more run on tokio's timer wheel, as Rampart sets them
/// (`fast_timeout_to_tokio_threshold_seconds: 0`), instead of Pingora's own timers.
pub fn serve<P>(listen: &str, threads: Option<&String>, app: P, tokio_timers: bool) -> !
where
    P: ProxyHttp + Send + Sync + 'static,
    P::CTX: Send + Sync,
{
    let mut conf = ServerConf {
        threads: threads.and_then(|t| t.parse().ok()).unwrap_or(1),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..ServerConf::default()
    };
    if tokio_timers {
        conf.fast_timeout_to_tokio_threshold_seconds = Some(0);
    }
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut service = pingora_proxy::http_proxy_service(&server.configuration, app);
    service.add_tcp(listen);
    server.add_service(service);
    server.run_forever()
}
