//! `/dashboard`: one self-contained HTML page (no external fonts, scripts or images: edge
//! hosts are often offline) that polls `/status` and renders it for a wall screen.
//!
//! The page is served without the admin token: it holds no data, only the script that
//! fetches `/status`. With `admin.token` set, the page reads the token from its URL fragment
//! (`/dashboard#token=T`, never sent to the server) and sends it as a bearer token.

use http::{HeaderValue, Response, StatusCode};

const PAGE: &str = include_str!("dashboard.html");

/// Nothing but the page itself and same-origin fetches: even if a name from the config
/// slipped through as markup, it could load nothing and send the token nowhere else.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

pub fn page() -> Response<Vec<u8>> {
    let mut r = super::reply(StatusCode::OK, "text/html; charset=utf-8", PAGE);
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
