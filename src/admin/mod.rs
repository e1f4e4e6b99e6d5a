//! The admin service: routing and the bearer token. Everything but `/healthz` needs the token
//! when one is configured; `/dashboard`, opened by a browser that cannot send a header, also
//! takes it as `?token=`, and its script passes it on to `/status` as a bearer token.

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

    fn authorized(&self, session: &ServerSession, query_token: bool) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let req = session.req_header();
        let from_query = || {
            req.uri
                .query()?
                .split('&')
                .find_map(|kv| kv.strip_prefix("token="))
        };
        let given = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| query_token.then(from_query).flatten())
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
            "/metrics" => {
                for pool in self.shared.pools.values() {
                    pool.members().for_each(|(b, _)| b.refresh_gauge());
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
