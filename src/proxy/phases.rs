//! The `ProxyHttp` implementation, one method per phase of a request.

use super::body_limit;
use super::compression;
use super::context::RequestCtx;
use super::expect_continue;
use super::failure_log;
use super::forward;
use super::h2_resets;
use super::request_head;
use super::respond::{send, Answer};
use super::retry::{self, AfterProxyError};
use super::router::HostRouter;
use super::state::{Project, Shared};
use super::tunnel;
use crate::config::HashKey;
use crate::server::HeadDeadline;
use async_trait::async_trait;
use pingora_core::modules::http::HttpModules;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;

/// The proxy of one listener: routes by Host among the projects served there.
#[derive(Clone)]
pub struct RampartProxy {
    pub shared: Arc<Shared>,
    pub router: HostRouter,
    /// `http` or `https`, for rules and X-Forwarded-Proto.
    pub scheme: &'static str,
    /// The listener's `keepalive_timeout`, in seconds.
    pub keepalive_secs: u64,
    /// The listener's `send_timeout`, and its count of requests it cut.
    pub send_timeout: std::time::Duration,
    pub send_timeouts: prometheus::IntCounter,
}

/// The status of the final answer written to the client, if one was: not an interim 1xx (a
/// `100`, a `103`'s hints), which leaves it owed; a `101` is final (the connection switched).
fn final_status(session: &Session) -> Option<u16> {
    session
        .response_written()
        .filter(|r| {
            !r.status.is_informational() || r.status == http::StatusCode::SWITCHING_PROTOCOLS
        })
        .map(|r| r.status.as_u16())
}

fn status_error(code: u16, why: &'static str) -> Box<Error> {
    Error::explain(ErrorType::HTTPStatus(code), why)
}

impl RampartProxy {
    fn project(&self, ctx: &RequestCtx) -> Option<&Project> {
        ctx.project.map(|i| &self.shared.projects[i])
    }

    /// The bytes `consistent_hash` hashes for this request.
    fn hash_key<'a>(
        key: &HashKey,
        req: &'a RequestHeader,
        client_ip: Option<std::net::IpAddr>,
        buf: &'a mut [u8; 16],
    ) -> &'a [u8] {
        match key {
            HashKey::ClientIp => match client_ip {
                Some(std::net::IpAddr::V4(v4)) => {
                    buf[..4].copy_from_slice(&v4.octets());
                    &buf[..4]
                }
                Some(std::net::IpAddr::V6(v6)) => {
                    *buf = v6.octets();
                    &buf[..]
                }
                None => b"",
            },
            HashKey::Uri => req
                .uri
                .path_and_query()
                .map_or(b"", |p| p.as_str().as_bytes()),
            HashKey::Header(name) => req.headers.get(name).map_or(b"", |v| v.as_bytes()),
            HashKey::Cookie(name) => req
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|s| s.split(';'))
                .find_map(|kv| kv.trim().strip_prefix(name.as_str())?.strip_prefix('='))
                .map_or(b"", |v| v.as_bytes()),
        }
    }
}

#[async_trait]
impl ProxyHttp for RampartProxy {
    /// Boxed: Pingora keeps the context in its per-request future, which is copied whole
    /// to the heap for each request (and holds the context more than once).
    type CTX = Box<RequestCtx>;

    /// No downstream modules. Pingora's default adds its response compression at level 0,
    /// which does nothing (Rampart compresses nothing), yet costs every request an
    /// allocation, its set-up and five dynamic calls (~600 instructions).
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    fn new_ctx(&self) -> Self::CTX {
        Box::new(RequestCtx::new())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        // Requests a client pipelines are answered in order, as by nginx; without this, Pingora
        // answers the first and closes the connection, dropping the others unlogged.
        let downstream = session.as_downstream_mut();
        downstream.set_pipelining_enabled(true);
        // Pingora waits for ever on a client that reads nothing (slow read): its stream, its
        // backend connection and their buffers would be held as long as it likes.
        downstream.set_write_timeout(Some(self.send_timeout));
        // An HTTP/1.0 client takes a 1xx for the answer (RFC 9110 §15.2: a server must not
        // send it one); Pingora passes a backend's 103 or 100 on unless told not to.
        if downstream.req_header().version == http::Version::HTTP_10 {
            downstream.set_ignore_info_resp(true);
        }
        // Pingora keeps an idle HTTP/1.1 connection open for ever between requests (or as long
        // as the client's Keep-Alive header asks): a client could hold sockets at no cost. The
        // listener's `keepalive_timeout` is kept by the stream's wrapper (`HeadDeadline`, under
        // every HTTP/1 stream: `server::connections`), Pingora's only for a client asking for
        // less. HTTP/2 connections have no wrapper and their own idle timeout.
        let asked = downstream.get_keepalive();
        if let Some(conn) = downstream.stream().and_then(HeadDeadline::of) {
            conn.request_began();
            if asked.is_some_and(|t| t > self.keepalive_secs) {
                downstream.set_keepalive(Some(0));
            }
        }
        if self
            .shared
            .draining
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            // This response is the connection's last: the client reconnects to the new process.
            session.set_keepalive(None);
        }
        if self.route_and_apply_rules(session, ctx).await? {
            return Ok(true);
        }
        // Only what goes to a backend is held to the body limit (see `body_limit`).
        if let Some((project, max)) = self
            .project(ctx)
            .and_then(|p| Some((p, p.settings.max_body_size?)))
        {
            if body_limit::check_announced(session, ctx, project, max).await? {
                return Ok(true);
            }
        }
        if h2_resets::refuse(session, ctx, self.project(ctx)).await? {
            return Ok(true);
        }
        if let Some(project) = self.project(ctx) {
            let level = project.settings.compression;
            compression::start(ctx, level, session.req_header());
        }
        if ctx.expects_continue {
            expect_continue::send(session, ctx).await?;
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        match body {
            // An h2 client may end its body with an empty DATA frame. Pingora 0.9.1 writes an
            // empty piece to an HTTP/1.1 backend as a chunk of size 0, which is the chunked
            // body's end, then ends the body again: the second `0\r\n\r\n` is read by the
            // backend as the next request, and the connection, back in the pool, answers
            // another client's request with its 400. The end alone is what the frame says.
            Some(piece) if piece.is_empty() && end_of_stream => {
                *body = None;
                Ok(())
            }
            Some(piece) => body_limit::count(ctx, piece.len()),
            None => Ok(()),
        }
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        let project = self
            .project(ctx)
            .ok_or_else(|| status_error(500, "no project"))?;
        if ctx.pool.is_none() {
            let by_rule = ctx.plan.as_ref().and_then(|p| p.pool.as_ref());
            ctx.pool = match by_rule {
                Some(name) => self.shared.pools.get(name.as_ref()).cloned(),
                None => project.pool.clone(),
            };
        }
        let pool = ctx.pool.clone().ok_or_else(|| {
            status_error(
                503,
                "project has no pool to forward to (set `pool:` on the project)",
            )
        })?;
        let mut buf = [0u8; 16];
        let key = Self::hash_key(
            pool.hash_key(),
            session.req_header(),
            ctx.client_ip,
            &mut buf,
        );
        let backend = match pool.select(key, &ctx.tried, false) {
            Some(b) => b,
            None if pool.select(key, &[], false).is_some() => {
                // Healthy backends exist but were all tried already.
                return Err(retry::exhausted(
                    ctx,
                    "every healthy backend of the pool failed",
                ));
            }
            None if pool.is_empty() => {
                crate::throttled!(
                    warn,
                    pool.unhealthy_log,
                    "pool {}: no backend address for project {}: its backend names have not resolved yet (see /status); answering 503",
                    pool.name,
                    project.name
                );
                return Err(status_error(
                    503,
                    "the pool's backend names have not resolved yet",
                ));
            }
            None => {
                if !ctx.counted_unhealthy {
                    ctx.counted_unhealthy = true;
                    project.metrics.fail_open("all_backends_unhealthy");
                    crate::throttled!(
                        warn,
                        pool.unhealthy_log,
                        "pool {}: no healthy backend for project {}; {}",
                        pool.name,
                        project.name,
                        if project.fail_closed() {
                            "answering 503 (fail_mode: closed)"
                        } else {
                            "trying them anyway (fail-open)"
                        }
                    );
                }
                if project.fail_closed() {
                    return Err(status_error(503, "no healthy backend (fail_mode: closed)"));
                }
                pool.select(key, &ctx.tried, true)
                    .ok_or_else(|| retry::exhausted(ctx, "every backend of the pool failed"))?
            }
        };
        ctx.tried.push(backend.addr);
        ctx.in_flight = Some(crate::upstream::InFlight::new(backend.clone()));
        let websocket = ctx.upgrade_asked && forward::asks_websocket(session.req_header());
        let peer = pool.peer(&backend, websocket);
        ctx.backend = Some(backend);
        Ok(peer)
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        _fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora_core::protocols::Digest>,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        if let Some(b) = &ctx.backend {
            b.connect_succeeded();
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Self::CTX,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.in_flight = None;
        let Some(pool) = ctx.pool.clone() else {
            return e;
        };
        if let Some(b) = &ctx.backend {
            if !crate::upstream::local_connect_failure(&e) {
                b.connect_failed(&pool.name);
            }
            if e.etype() == &ErrorType::InvalidCert {
                crate::upstream::explain_refused_certificate(&pool, b);
            }
        }
        crate::metrics::METRICS
            .upstream_errors
            .with_label_values(&[&pool.name, "connect"])
            .inc();
        // Nothing was sent yet: another backend may take it.
        let retrying =
            retry::after_connect_failure(ctx, &e, pool.retries()) && pool.has_untried(&ctx.tried);
        if retrying {
            e.set_retry(true);
        }
        // `upstream_peer` chose it before Pingora connected.
        if let Some(b) = &ctx.backend {
            failure_log::connect_failed(&pool.name, b, &e, retrying);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Self::CTX,
        client_reused: bool,
    ) -> Box<Error> {
        // A client that went away is not the backend's error.
        let from_backend = e.esource() == &pingora_error::ErrorSource::Upstream;
        // Nor is a backend waiting for a body the client does not send (Pingora streams the
        // body: the backend's read timeout runs while the client uploads). A WebSocket's
        // request has none: its body is held (`tunnel`), then is the tunnel's.
        let quiet_tunnel = ctx.tunnel_went_quiet(&e);
        if from_backend
            && retry::is_timeout(e.etype())
            && !ctx.upgrade_sent
            && !session.as_downstream_mut().is_body_done()
        {
            ctx.body_late = true;
        }
        let backend_failed = from_backend && !ctx.body_late && !quiet_tunnel;
        if let (Some(pool), true) = (&ctx.pool, backend_failed) {
            let kind = match e.etype() {
                ErrorType::ReadTimedout | ErrorType::WriteTimedout => "timeout",
                ErrorType::ConnectionClosed => "closed",
                _ => "io",
            };
            crate::metrics::METRICS
                .upstream_errors
                .with_label_values(&[&pool.name, kind])
                .inc();
        }
        let mut e = e.more_context(format!("Peer: {peer}"));
        let replayable = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        // No retry where no other backend is left: the answer says what this one met.
        let retries = match &ctx.pool {
            Some(p) if p.has_untried(&ctx.tried) => p.retries(),
            _ => 0,
        };
        match retry::after_proxy_error(ctx, &e, client_reused, replayable, retries) {
            AfterProxyError::GiveUp => e.set_retry(false),
            AfterProxyError::SameBackend => {
                log::debug!("{peer}: kept-alive connection closed by the backend; sending again");
                e.set_retry(true);
            }
            AfterProxyError::OtherBackend => {
                if let (Some(pool), Some(b)) = (&ctx.pool, &ctx.backend) {
                    b.connect_failed(&pool.name);
                    failure_log::backend_failed(&pool.name, b, &e);
                }
                e.set_retry(true);
            }
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        let project = self
            .project(ctx)
            .ok_or_else(|| status_error(500, "no project"))?;
        // The client's Host (h2 clients send :authority instead), shared, not copied.
        let req = session.req_header();
        let original_host = ctx.host_header.clone().or_else(|| {
            req.uri
                .authority()
                .map(|a| a.as_str())
                .or_else(|| request_head::target_authority_str(req))
                .and_then(|a| http::HeaderValue::from_str(a).ok())
        });
        let had_host = ctx.host_header.is_some();
        // The backend's name when the client's Host is not preserved, or when the client
        // named none (HTTP/1.0): HTTP/1.1 backends need one.
        let backend_host = match &ctx.backend {
            Some(b) if !project.settings.preserve_host || original_host.is_none() => {
                Some(b.host_header.clone())
            }
            _ => None,
        };
        let plan = ctx.plan.as_ref();
        let from_h2 = req.version == http::Version::HTTP_2;
        // Pingora has set the version the backend connection speaks.
        let to_h2 = upstream.version == http::Version::HTTP_2;
        let hops = forward::Hops {
            trust: project.settings.trust_proxy_headers,
            upgrade: req.version == http::Version::HTTP_11 && !to_h2,
            te_trailers: from_h2 && to_h2,
        };
        forward::edit_upstream_headers(upstream, |headers| {
            if from_h2 {
                forward::join_cookies(headers);
            }
            ctx.upgrade_sent = forward::strip_request_headers(headers, hops);
            forward::set_forwarded(
                headers,
                ctx.client_ip_text.as_ref(),
                self.scheme,
                original_host.clone(),
                &ctx.request_id,
            );
            match backend_host {
                Some(Some(host)) => {
                    headers.insert(http::header::HOST, host);
                }
                Some(None) => {}
                // HTTP/1 backends need a Host header.
                None if !had_host => {
                    if let Some(host) = original_host {
                        headers.insert(http::header::HOST, host);
                    }
                }
                None => {}
            }
            if let Some(plan) = plan {
                forward::apply_ops(headers, &plan.request_headers);
            }
        });
        if ctx.upgrade_sent {
            ctx.body_held = tunnel::hold_request_body(session, upstream, ctx.body_held);
        }
        if ctx.continue_sent {
            expect_continue::answered(upstream);
        }
        if let Some(uri) = plan.and_then(|p| p.rewrite.as_ref()) {
            match uri.parse::<http::Uri>() {
                Ok(u) => upstream.set_uri(u),
                Err(_) => log::warn!(
                    "project {}: rewrite produced an invalid path `{uri}`; sending the original",
                    project.name
                ),
            }
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        ctx.answered = true;
        if resp.status == http::StatusCode::SWITCHING_PROTOCOLS {
            if !ctx.upgrade_sent {
                // A protocol the client never asked for (RFC 9110 §15.2.2): Pingora would
                // pass the 101 on and leave the client waiting on a connection that says
                // nothing.
                return Err(Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "answered 101 Switching Protocols to a request that asked for no upgrade",
                )
                .into_up());
            }
            // What follows is the tunnel's (a WebSocket), not a request body.
            ctx.body_left = None;
            ctx.tunnel = true;
        } else if ctx.body_held && !resp.status.is_informational() {
            // The upgrade refused: the request ends with this answer.
            tunnel::release_request_body(session);
        }
        // Rampart speaks HTTP/1.1 whatever the backend spoke, as nginx: an HTTP/1.0 status
        // line would tell an HTTP/1.1 client the connection is not kept alive.
        resp.set_version(http::Version::HTTP_11);
        let status = resp.status;
        // An interim answer (`100 Continue`, `103 Early Hints`) passes as the backend sent it:
        // rules' headers and the request id are for the final answer (nginx's `add_header`,
        // HAProxy's `http-response`), which follows.
        let interim = status.is_informational() && status != http::StatusCode::SWITCHING_PROTOCOLS;
        forward::edit_response_headers(resp, |headers| {
            forward::strip_hop_by_hop_response(status, headers);
            if interim {
                return;
            }
            if let Some(plan) = &ctx.plan {
                forward::apply_ops(headers, &plan.response_headers);
            }
            headers.insert(forward::X_REQUEST_ID, ctx.request_id.clone());
        });
        compression::answer_head(ctx, session.req_header(), resp);
        if session.req_header().version == http::Version::HTTP_10
            && resp.headers.contains_key(http::header::TRANSFER_ENCODING)
        {
            // An HTTP/1.0 client cannot read chunked encoding (which Pingora also chooses for
            // a backend's close-delimited body, and compression for its own): the body goes
            // until the connection closes.
            resp.remove_header(&http::header::TRANSFER_ENCODING);
            session.set_keepalive(None);
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> Result<Option<std::time::Duration>> {
        compression::body(ctx, body, end_of_stream);
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        // `send_timeout`: the client reads nothing; nothing more can reach it.
        let send_timed_out = e.etype() == &ErrorType::WriteTimedout
            && e.esource() == &pingora_error::ErrorSource::Downstream;
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &pingora_error::ErrorSource::Upstream =>
            {
                504
            }
            _ => match e.esource() {
                pingora_error::ErrorSource::Upstream => 502,
                pingora_error::ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ if send_timed_out || failure_log::client_closed_h2(e) => 0,
                    _ => 400,
                },
                _ => 500,
            },
        };
        let code = if ctx.body_late { 408 } else { code };
        // An interim 1xx (a 103's hints, a 100) is not the answer: the final one is still owed,
        // and the client waits for it.
        let answer_began = final_status(session);
        if send_timed_out {
            self.send_timeouts.inc();
        }
        if let Some(project) = self.project(ctx) {
            let req = session.req_header();
            if ctx.body_late {
                failure_log::body_late(project, req);
            } else if send_timed_out {
                failure_log::send_timeout(project, req, self.send_timeout);
            } else if ctx.tunnel_went_quiet(e) {
                failure_log::tunnel_quiet(project, req, ctx);
            } else if ctx.body_held && !ctx.tunnel && code == 400 {
                // The held body (`tunnel`) read what the client sent before the backend's 101.
                failure_log::websocket_too_early(project, req);
            } else {
                failure_log::request_failed(project, req, ctx, code, answer_began, e);
            }
        }
        if code > 0 && answer_began.is_none() {
            // The connection is closed after this answer (`can_reuse_downstream` below): say
            // so, or a client sends its next request on it and meets a reset.
            session.set_keepalive(None);
            let generic;
            let text = match code {
                // A body cut where it passed `max_body_size`: said as when it was announced.
                413 => body_limit::TOO_LARGE,
                _ => {
                    let reason = http::StatusCode::from_u16(code)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("Error");
                    generic = format!("{code} {reason}\n");
                    &generic
                }
            };
            let answer = Answer::own(self.project(ctx), code, text);
            let _ = send(session, answer, &ctx.request_id).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, ctx: &Self::CTX, _e: &Error) -> bool {
        // `fail_to_proxy` logged it (throttled) once the request had a project.
        ctx.project.is_some()
    }

    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        _ctx: &Self::CTX,
        _e: &Error,
        _context: pingora_proxy::ProxyWarnLogContext,
    ) -> bool {
        // Each failed try is logged by `fail_to_connect` or `error_while_proxy`, throttled.
        true
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Self::CTX) {
        ctx.in_flight = None;
        // A client that went away before any answer is logged 499, as nginx does (not 0).
        let gone = e.is_some_and(|e| e.esource() == &pingora_error::ErrorSource::Downstream);
        // An interim answer alone (a `100`, then the client left while its body was awaited)
        // is no answer.
        let status = match final_status(session) {
            Some(code) => code,
            None if gone => 499,
            None => 0,
        };
        let elapsed = ctx.start.elapsed();
        if let Some(conn) = session.as_downstream().stream().and_then(HeadDeadline::of) {
            conn.request_done(ctx.start + elapsed);
        }
        h2_resets::ended(session, ctx, status);
        let metrics = match self.project(ctx) {
            Some(p) => &p.metrics,
            None => &self.shared.unrouted,
        };
        metrics.observe(status, elapsed.as_secs_f64());
        if self.shared.logger.enabled() {
            let req = session.req_header();
            let [referer, user_agent] = match &ctx.logged_headers {
                Some([r, u]) => [r.as_ref(), u.as_ref()],
                None => [
                    req.headers.get(http::header::REFERER),
                    req.headers.get(http::header::USER_AGENT),
                ],
            };
            self.shared
                .logger
                .log(&crate::proxy::access_log::LogRecord {
                    time: std::time::SystemTime::now() - elapsed,
                    client_ip: ctx.client_ip_text.as_ref(),
                    request: Some(crate::proxy::access_log::RequestLine {
                        method: &req.method,
                        uri: &req.uri,
                        protocol: match req.version {
                            http::Version::HTTP_10 => "HTTP/1.0",
                            http::Version::HTTP_2 => "HTTP/2.0",
                            _ => "HTTP/1.1",
                        },
                    }),
                    host: &ctx.host,
                    status,
                    bytes: session.body_bytes_sent(),
                    duration: elapsed,
                    referer,
                    user_agent,
                    request_id: &ctx.request_id,
                    project: Some(metrics.name()),
                    upstream: ctx.backend.as_ref().map(|b| b.addr),
                    rules: &ctx.matched_rules,
                    error: e.map(|e| retry::failure(ctx, e)),
                    tls: session
                        .as_downstream()
                        .digest()
                        .and_then(|d| d.ssl_digest.as_deref()),
                });
        }
    }
}
