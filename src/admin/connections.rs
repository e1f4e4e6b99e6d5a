//! Limits on the admin service's connections. Pingora gives an HTTP service neither a
//! connection limit nor a deadline for a request head (it times each read alone, 60 s), so
//! clients sending a byte every few seconds could hold admin connections for ever: enough of
//! them take every file descriptor of the process, and the proxy can then neither accept
//! clients nor connect to backends. Monitoring needs a few connections, each for a moment:
//! at most `MAX_CONNECTIONS` are served at once (more are told `503`), each for at most
//! `CONNECTION_TIME` (a scraper's kept-alive connection is then closed, and it reconnects).

use crate::server::{refuse, serve_all, Place};
use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

pub const MAX_CONNECTIONS: u32 = 256;
pub const CONNECTION_TIME: Duration = Duration::from_secs(30);

const REFUSAL: &str = "Too many connections to the admin service.\n";

/// The admin application, its connections counted and timed.
pub struct Guarded<A> {
    inner: Arc<A>,
    count: AtomicU32,
    refusal_log: crate::log_throttle::Throttle,
}

impl<A> Guarded<A> {
    pub fn new(inner: A) -> Self {
        Guarded {
            inner: Arc::new(inner),
            count: AtomicU32::new(0),
            refusal_log: Default::default(),
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let (n, _place) = Place::take(&self.count, None);
        if n > MAX_CONNECTIONS {
            crate::throttled!(
                warn,
                self.refusal_log,
                "admin: {MAX_CONNECTIONS} connections open; refusing new ones"
            );
            refuse(stream, REFUSAL).await;
            return None;
        }
        // Dropping the future closes the connection, whatever it was waiting for.
        let _ =
            tokio::time::timeout(CONNECTION_TIME, serve_all(&self.inner, stream, shutdown)).await;
        None
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}
