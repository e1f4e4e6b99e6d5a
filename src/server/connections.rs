//! Client connections of a listener: counted (`rampart_connections_open`) and, with
//! `max_connections`, limited, as nginx's `worker_connections` and HAProxy's `maxconn` do.
//! Pingora accepts without limit: a flood of clients would take every file descriptor and
//! the memory of their buffers, and the backends' connections with them.

use super::h2c::{self, Opening};
use super::head_deadline::{HeadDeadline, HeadLimit};
use super::proxy_protocol::ProxyHeaders;
use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use prometheus::{IntCounter, IntGauge};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The body of the `503` a refused HTTP/1 client reads: a clear answer rather than a reset,
/// which it could not tell from a crash (and which a load balancer in front would retry just
/// the same).
const REFUSAL: &str = "Too many connections to this listener.\n";
/// The longest a refused connection may cost: writing the answer, then reading what the
/// client had sent (closing with unread data would reset the connection, and the client
/// would lose the answer).
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Wraps a listener's application: each call of `process_new` is one connection (HTTP apps
/// serve every request of a connection in one call).
pub struct Counted<A> {
    inner: Arc<A>,
    /// With `h2c: true`, the same application set to serve HTTP/2 without TLS: given the
    /// connections that open with HTTP/2's preface (`h2c`).
    h2c: Option<Arc<A>>,
    /// With `proxy_protocol: true` on a plain listener: the header each connection begins
    /// with (a TLS listener reads it before its handshake instead).
    proxy_headers: Option<Arc<ProxyHeaders>>,
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
        h2c: Option<A>,
        proxy_headers: Option<Arc<ProxyHeaders>>,
        listener: &crate::config::ListenerSettings,
        unrouted: Arc<crate::metrics::ProjectMetrics>,
        access_log: crate::proxy::access_log::AccessLogger,
    ) -> Self {
        let m = &crate::metrics::METRICS;
        let (name, max) = (listener.name.as_str(), listener.max_connections);
        Counted {
            inner: Arc::new(inner),
            h2c: h2c.map(Arc::new),
            proxy_headers,
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

/// One connection's place in a count (and in its gauge, when exported), given back however
/// the connection ends.
pub(crate) struct Place<'a>(&'a AtomicU32, Option<&'a IntGauge>);

impl<'a> Place<'a> {
    /// Takes a place; also returns how many connections hold one, this one included.
    pub(crate) fn take(count: &'a AtomicU32, gauge: Option<&'a IntGauge>) -> (u32, Self) {
        let n = count.fetch_add(1, Ordering::AcqRel) + 1;
        if let Some(g) = gauge {
            g.inc();
        }
        (n, Place(count, gauge))
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        if let Some(g) = self.1 {
            g.dec();
        }
    }
}

/// Serves the connection's requests: an HTTP app hands the stream back after each one it
/// may be reused for.
pub(crate) async fn serve_all<A: ServerApp>(
    app: &Arc<A>,
    stream: Stream,
    shutdown: &ShutdownWatch,
) {
    let mut next = app.process_new(stream, shutdown).await;
    while let Some(stream) = next {
        next = app.process_new(stream, shutdown).await;
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Counted<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let (n, _place) = Place::take(&self.count, Some(&self.open));
        if let Some(max) = self.max.filter(|&max| n > max) {
            self.refused.inc();
            crate::throttled!(
                warn,
                self.refusal_log,
                "listener {}: max_connections ({max}) reached; refusing new connections",
                self.heads.listener
            );
            refuse(stream, REFUSAL).await;
            return None;
        }
        let stream = match &self.proxy_headers {
            None => stream,
            Some(headers) => {
                // A plain listener's connections are TCP.
                let Ok(mut tcp) = super::as_tcp(stream) else {
                    return None;
                };
                if !headers.take(&mut tcp).await {
                    return None;
                }
                tcp
            }
        };
        // HTTP/2 frames its requests itself (and has no slow-head problem of this kind).
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            serve_all(&self.inner, stream, shutdown).await;
            return None;
        }
        let stream = match &self.h2c {
            None => stream,
            Some(h2c) => match h2c::opening(stream, self.heads.limit).await {
                Opening::Http2(stream) => {
                    let _resets = crate::proxy::CleartextResets::enter(&stream);
                    serve_all(h2c, stream, shutdown).await;
                    return None;
                }
                Opening::Http1(stream) => stream,
                Opening::Nothing => return None,
            },
        };
        let stream = HeadDeadline::wrap(stream, self.heads.clone());
        serve_all(&self.inner, stream, shutdown).await;
        None
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
        if let Some(h2c) = &self.h2c {
            h2c.cleanup().await;
        }
    }
}

/// Answers `503` with `text` on HTTP/1 and closes; an HTTP/2 connection (TLS with ALPN h2) is
/// closed.
pub(crate) async fn refuse(mut stream: Stream, text: &str) {
    if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
        return;
    }
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{text}",
            text.len()
        );
        stream.write_all(answer.as_bytes()).await?;
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
