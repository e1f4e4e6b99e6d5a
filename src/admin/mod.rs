//! The admin service: routing and the bearer token. `/healthz` and `/dashboard` (a page
//! without data) are open; `/metrics` and `/status` need the token when one is configured.

mod dashboard;
mod status;

use crate::proxy::Shared;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use std::sync::Arc;

pub use status::status_json;

pub struct AdminApp {
    shared: Arc<Shared>,
    token: Option<String>,
}

impl AdminApp {
    pub fn new(shared: Arc<Shared>, token: Option<String>) -> Self {
        AdminApp { shared, token }
    }

    fn authorized(&self, session: &ServerSession) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Compare every byte so timing does not reveal the matching prefix.
        given.len() == token.len()
            && given
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
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

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        match path.as_str() {
            "/healthz" => return reply(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
            "/dashboard" | "/" => return dashboard::page(),
            _ => {}
        }
        if !self.authorized(session) {
            let mut r = reply(
                StatusCode::UNAUTHORIZED,
                "text/plain; charset=utf-8",
                "401 Unauthorized: send \"Authorization: Bearer <admin.token>\"\n",
            );
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
        match path.as_str() {
            "/metrics" => reply(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                crate::metrics::render(),
            ),
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
