//! Header work around forwarding: request ids, X-Forwarded-*, hop-by-hop removal, and the
//! header operations rules ask for.

use crate::rules::HeaderOp;
use http::header::{HeaderName, CONNECTION, TE, TRAILER, UPGRADE};
use http::{HeaderMap, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use std::net::IpAddr;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// The client's request id when it is sane (visible ASCII, at most 128 bytes), else a new one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(X_REQUEST_ID) {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic()) {
            return v.clone();
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    let n = rand::random::<u128>();
    for (i, digit) in id.iter_mut().enumerate() {
        *digit = HEX[((n >> (124 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&id).expect("hex is a valid header value")
}

/// Edits the upstream request's headers directly in its `HeaderMap`.
///
/// Every `insert_header` on a Pingora header re-parses the name (an allocation for each
/// non-standard one) and updates a second, case-keeping map; for the half-dozen headers added
/// to every request that was the proxy's largest cost. So the request is rebuilt once without
/// the case map: names then go out in their canonical case (title case for standard headers,
/// lower case for others), as over HTTP/2 and as HAProxy sends them.
pub fn edit_upstream_headers(req: &mut RequestHeader, edit: impl FnOnce(&mut HeaderMap)) {
    // The exact request-target bytes, when the URI alone does not reproduce them.
    let raw = (req.uri.path_and_query().map(|p| p.as_str().as_bytes()) != Some(req.raw_path()))
        .then(|| req.raw_path().to_vec());
    let end_stream = req.send_end_stream();
    let empty = RequestHeader::from(http::Request::new(()).into_parts().0);
    let mut parts = http::request::Parts::from(std::mem::replace(req, empty));
    edit(&mut parts.headers);
    let mut rebuilt = RequestHeader::from(parts);
    if let Some(raw) = raw {
        if rebuilt.set_raw_path(&raw).is_err() {
            log::warn!("cannot keep the raw request target; sending the parsed one");
        }
    }
    if let Some(end_stream) = end_stream {
        rebuilt.set_send_end_stream(end_stream);
    }
    *req = rebuilt;
}

/// Edits a response's headers directly in its `HeaderMap`, for the same reason as
/// [`edit_upstream_headers`] and with the same effect on header case; the backend's reason
/// phrase is kept.
pub fn edit_response_headers(resp: &mut ResponseHeader, edit: impl FnOnce(&mut HeaderMap)) {
    let reason = resp.get_reason_phrase().map(str::to_string);
    let empty = ResponseHeader::from(http::Response::new(()).into_parts().0);
    let mut parts = http::response::Parts::from(std::mem::replace(resp, empty));
    edit(&mut parts.headers);
    *resp = ResponseHeader::from(parts);
    if reason.is_some() {
        let _ = resp.set_reason_phrase(reason.as_deref());
    }
}

/// Sets X-Forwarded-For/Proto/Host, X-Real-IP and X-Request-Id. Without trust, whatever the
/// client sent in these (and `Forwarded`) is dropped first. `host` is the client's Host.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    client_ip: Option<IpAddr>,
    scheme: &'static str,
    host: Option<HeaderValue>,
    request_id: &HeaderValue,
    trust: bool,
) {
    if !trust {
        for h in [
            &X_FORWARDED_FOR,
            &X_FORWARDED_PROTO,
            &X_FORWARDED_HOST,
            &X_REAL_IP,
            &FORWARDED,
        ] {
            headers.remove(h);
        }
    }
    if let Some(ip) = client_ip {
        let ip_value =
            HeaderValue::try_from(ip.to_string()).expect("an IP is a valid header value");
        let xff = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(prev) if !prev.trim().is_empty() => {
                HeaderValue::try_from(format!("{prev}, {ip}")).unwrap_or_else(|_| ip_value.clone())
            }
            _ => ip_value.clone(),
        };
        headers.insert(X_FORWARDED_FOR, xff);
        if !headers.contains_key(X_REAL_IP) {
            headers.insert(X_REAL_IP, ip_value);
        }
    }
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(scheme));
    }
    if let Some(host) = host {
        if !headers.contains_key(X_FORWARDED_HOST) {
            headers.insert(X_FORWARDED_HOST, host);
        }
    }
    headers.insert(X_REQUEST_ID, request_id.clone());
}

/// Hop-by-hop headers that are never forwarded (besides those named in `Connection`).
const HOP_BY_HOP: [HeaderName; 4] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("proxy-authorization"),
    HeaderName::from_static("proxy-authenticate"),
];

/// True for a WebSocket-style upgrade, whose `Connection`/`Upgrade` must reach the backend.
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers.get_all(CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// Names listed in `Connection` (they are hop-by-hop by declaration).
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| n != UPGRADE)
        .collect()
}

pub fn strip_hop_by_hop_request(headers: &mut HeaderMap) {
    let upgrade = is_upgrade(headers);
    for name in connection_listed(headers) {
        headers.remove(name);
    }
    for h in HOP_BY_HOP.iter().chain([&TE, &TRAILER]) {
        headers.remove(h);
    }
    if !upgrade {
        headers.remove(UPGRADE);
        headers.remove(CONNECTION);
    }
}

pub fn strip_hop_by_hop_response(status: http::StatusCode, headers: &mut HeaderMap) {
    let upgrade = status == http::StatusCode::SWITCHING_PROTOCOLS;
    for name in &connection_listed(headers) {
        headers.remove(name);
    }
    for h in HOP_BY_HOP.iter().chain([&TRAILER]) {
        headers.remove(h);
    }
    if !upgrade {
        headers.remove(UPGRADE);
        headers.remove(CONNECTION);
    }
}

/// Applies rule header operations, in order.
pub fn apply_ops(headers: &mut HeaderMap, ops: &[HeaderOp]) {
    for op in ops {
        match op {
            HeaderOp::Set(n, v) => {
                headers.insert(n.clone(), v.clone());
            }
            HeaderOp::Add(n, v) => {
                headers.append(n.clone(), v.clone());
            }
            HeaderOp::Remove(n) => {
                headers.remove(n);
            }
        }
    }
}
