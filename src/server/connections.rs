//! Client connections of a listener: counted (`rampart_connections_open`) and, with
//! `max_connections`, limited, as nginx's `worker_connections` and HAProxy's `maxconn` do.
//! Pingora accepts without limit: a flood of clients would take every file descriptor and
//! the memory of their buffers, and the backends' connections with them.

use super::head_deadline::{HeadDeadline, HeadLimit};
use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use prometheus::{IntCounter, IntGauge};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a refused HTTP/1 client reads: a clear answer rather than a reset, which it could
/// not tell from a crash (and which a load balancer in front would retry just the same).
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 39\r\nRetry-After: 1\r\nConnection: close\r\n\r\nToo many connections to this listener.\n";
/// The longest a refused connection may cost: writing the answer, then reading what the
/// client had sent (closing with unread data would reset the connection, and the client
/// would lose the answer).
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Wraps a listener's application: each call of `process_new` is one connection (HTTP apps
/// serve every request of a connection in one call).
pub struct Counted<A> {
    inner: Arc<A>,
    max: Option<u32>,
    /// For each HTTP/1 request head (see `head_deadline`); also names the listener.
    heads: Arc<HeadLimit>,
    count: AtomicU32,
    open: IntGauge,
    refused: IntCounter,
    refusal_log: crate::log_throttle::Throttle,
}

impl<A> Counted<A> {
    /// `unrouted`: where answers Pingora gives on its own are counted (see `head_deadline`).
    pub fn new(
        inner: A,
        listener: &crate::config::ListenerSettings,
        unrouted: Arc<crate::metrics::ProjectMetrics>,
        access_log: crate::proxy::access_log::AccessLogger,
    ) -> Self {
        let m = &crate::metrics::METRICS;
        let (name, max) = (listener.name.as_str(), listener.max_connections);
        Counted {
            inner: Arc::new(inner),
            max,
            heads: Arc::new(HeadLimit {
                listener: name.to_string(),
                limit: listener.header_timeout,
                max_size: listener.max_header_size,
                keepalive: listener.keepalive_timeout,
                late: m.header_timeouts.with_label_values(&[name]),
                log: Default::default(),
                unrouted,
                access_log,
                own_answer_log: Default::default(),
                connect_log: Default::default(),
                too_large_log: Default::default(),
            }),
            count: AtomicU32::new(0),
            open: m.connections_open.with_label_values(&[name]),
            refused: m.connections_refused.with_label_values(&[name]),
            refusal_log: Default::default(),
        }
    }
}

/// One connection's place in the count, given back however the connection ends.
struct Place<'a>(&'a AtomicU32, &'a IntGauge);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        self.1.dec();
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Counted<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let n = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        self.open.inc();
        let _place = Place(&self.count, &self.open);
        if let Some(max) = self.max.filter(|&max| n > max) {
            self.refused.inc();
            crate::throttled!(
                warn,
                self.refusal_log,
                "listener {}: max_connections ({max}) reached; refusing new connections",
                self.heads.listener
            );
            refuse(stream).await;
            return None;
        }
        // HTTP/2 frames its requests itself (and has no slow-head problem of this kind).
        let stream = match stream.selected_alpn_proto() {
            Some(ALPN::H2) => stream,
            _ => HeadDeadline::wrap(stream, self.heads.clone()),
        };
        let mut next = self.inner.process_new(stream, shutdown).await;
        while let Some(stream) = next {
            next = self.inner.process_new(stream, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// Answers 503 on HTTP/1 and closes; an HTTP/2 connection (TLS with ALPN h2) is closed.
async fn refuse(mut stream: Stream) {
    if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
        return;
    }
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        stream.write_all(REFUSAL).await?;
        stream.flush().await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut left = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => left -= n.min(left),
            }
        }
        std::io::Result::Ok(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_refusal_is_one_well_framed_response() {
        let text = std::str::from_utf8(super::REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), body.len());
    }
}
