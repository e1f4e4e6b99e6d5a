//! The admin service: routing and the bearer token. Everything but `/healthz` needs the token
//! when one is configured; `/dashboard`, opened by a browser that cannot send a header, also
//! takes it as `?token=`, and its script passes it on to `/status` as a bearer token.

mod connections;
mod dashboard;
mod status;

use crate::log_throttle::Throttle;
use crate::proxy::Shared;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use std::sync::Arc;

pub use connections::Guarded;
pub use status::status_json;

pub struct AdminApp {
    shared: Arc<Shared>,
    token: Option<String>,
    /// "Refused" lines: a client guessing tokens would repeat them.
    refused_log: Throttle,
}

/// The value of `token=` in a query, percent-decoded; a `+` stays a `+` (tokens are often
/// base64, and the dashboard's script reads it the same way).
fn query_token(query: &str) -> Option<std::borrow::Cow<'_, str>> {
    let raw = query.split('&').find_map(|kv| kv.strip_prefix("token="))?;
    percent_encoding::percent_decode_str(raw).decode_utf8().ok()
}

/// The credentials of `Authorization: Bearer T` (the scheme in any case, RFC 9110 §11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_matches(' '))
}

/// Equal, in a time that depends only on the token's length.
fn same_secret(given: &[u8], token: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != token.len());
    for (i, t) in token.iter().enumerate() {
        diff |= given.get(i).copied().unwrap_or(0) ^ t;
    }
    diff == 0
}

impl AdminApp {
    pub fn new(shared: Arc<Shared>, token: Option<String>) -> Self {
        AdminApp {
            shared,
            token,
            refused_log: Throttle::new(),
        }
    }

    fn authorized(&self, session: &ServerSession, query_allowed: bool) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let req = session.req_header();
        let header = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        let ok = match (header, query_allowed) {
            (Some(given), _) => same_secret(given.as_bytes(), token.as_bytes()),
            (None, true) => req
                .uri
                .query()
                .and_then(query_token)
                .is_some_and(|given| same_secret(given.as_bytes(), token.as_bytes())),
            (None, false) => false,
        };
        if !ok {
            let client = session
                .client_addr()
                .map_or_else(|| "?".to_string(), |a| a.to_string());
            crate::throttled!(
                warn,
                self.refused_log,
                "admin: refused {} {} from {client}: {} admin token",
                req.method,
                req.uri.path(),
                if header.is_some() { "wrong" } else { "no" }
            );
        }
        ok
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Vec<u8>>) -> Response<Vec<u8>> {
    let body = body.into();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .expect("static response parts are valid")
}

fn with_header(
    mut r: Response<Vec<u8>>,
    name: http::HeaderName,
    value: &'static str,
) -> Response<Vec<u8>> {
    r.headers_mut()
        .insert(name, http::HeaderValue::from_static(value));
    r
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return with_header(
                reply(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "text/plain; charset=utf-8",
                    "405 Method Not Allowed: the admin service only reads (GET, HEAD)\n",
                ),
                http::header::ALLOW,
                "GET, HEAD",
            );
        }
        let path = req.uri.path().to_string();
        match path.as_str() {
            "/healthz" => return reply(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
            "/dashboard" | "/" if self.authorized(session, true) => return dashboard::page(),
            "/dashboard" | "/" => {
                return reply(
                    StatusCode::UNAUTHORIZED,
                    "text/plain; charset=utf-8",
                    "401 Unauthorized: open this page as /dashboard?token=<admin.token>\n",
                )
            }
            _ => {}
        }
        if !self.authorized(session, false) {
            return with_header(
                reply(
                    StatusCode::UNAUTHORIZED,
                    "text/plain; charset=utf-8",
                    "401 Unauthorized: send \"Authorization: Bearer <admin.token>\"\n",
                ),
                http::header::WWW_AUTHENTICATE,
                "Bearer",
            );
        }
        match path.as_str() {
            "/metrics" => {
                for pool in self.shared.pools.values() {
                    pool.members().iter().for_each(|(b, _)| b.refresh_gauge());
                }
                reply(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    crate::metrics::render(
                        self.shared
                            .projects
                            .iter()
                            .map(|p| (&*p.name, p.rules.load_full())),
                    ),
                )
            }
            "/status" => reply(
                StatusCode::OK,
                "application/json",
                status_json(&self.shared).to_string(),
            ),
            _ => reply(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "404 Not Found: try /healthz, /metrics, /status or /dashboard\n",
            ),
        }
    }
}
