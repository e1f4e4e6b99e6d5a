//! Header work around forwarding: request ids, X-Forwarded-*, hop-by-hop removal, and the
//! header operations rules ask for.

use crate::rules::HeaderOp;
use http::header::{HeaderName, CONNECTION, TE, TRAILER, UPGRADE};
use http::HeaderMap;
use pingora_http::{RequestHeader, ResponseHeader};
use std::net::IpAddr;

pub const X_REQUEST_ID: &str = "x-request-id";
const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
const X_REAL_IP: &str = "x-real-ip";
const FORWARDED: &str = "forwarded";

/// The client's request id when it is sane (visible ASCII, at most 128 bytes), else a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    if let Some(v) = headers.get(X_REQUEST_ID) {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic()) {
            // Checked ASCII above.
            return String::from_utf8_lossy(b).into_owned();
        }
    }
    format!("{:032x}", rand::random::<u128>())
}

/// Sets X-Forwarded-For/Proto/Host, X-Real-IP and X-Request-Id. Without trust, whatever the
/// client sent in these (and `Forwarded`) is dropped first.
pub fn set_forwarded(
    req: &mut RequestHeader,
    client_ip: Option<IpAddr>,
    scheme: &str,
    host: &str,
    request_id: &str,
    trust: bool,
) {
    let ip = client_ip.map(|i| i.to_string()).unwrap_or_default();
    if !trust {
        for h in [
            X_FORWARDED_FOR,
            X_FORWARDED_PROTO,
            X_FORWARDED_HOST,
            X_REAL_IP,
            FORWARDED,
        ] {
            req.remove_header(h);
        }
    }
    let xff = match req
        .headers
        .get(X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) if !prev.trim().is_empty() && !ip.is_empty() => format!("{prev}, {ip}"),
        Some(prev) if ip.is_empty() => prev.to_string(),
        _ => ip.clone(),
    };
    if !xff.is_empty() {
        let _ = req.insert_header(X_FORWARDED_FOR, xff);
    }
    if !req.headers.contains_key(X_REAL_IP) && !ip.is_empty() {
        let _ = req.insert_header(X_REAL_IP, ip);
    }
    if !req.headers.contains_key(X_FORWARDED_PROTO) {
        let _ = req.insert_header(X_FORWARDED_PROTO, scheme);
    }
    if !req.headers.contains_key(X_FORWARDED_HOST) && !host.is_empty() {
        let _ = req.insert_header(X_FORWARDED_HOST, host);
    }
    let _ = req.insert_header(X_REQUEST_ID, request_id);
}

/// Hop-by-hop headers that are never forwarded (besides those named in `Connection`).
const HOP_BY_HOP: &[&str] = &[
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
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

pub fn strip_hop_by_hop_request(req: &mut RequestHeader) {
    let upgrade = is_upgrade(&req.headers);
    for name in connection_listed(&req.headers) {
        req.remove_header(&name);
    }
    for h in HOP_BY_HOP {
        req.remove_header(*h);
    }
    req.remove_header(&TE);
    req.remove_header(&TRAILER);
    if !upgrade {
        req.remove_header(&UPGRADE);
        req.remove_header(&CONNECTION);
    }
}

pub fn strip_hop_by_hop_response(resp: &mut ResponseHeader) {
    let upgrade = resp.status == http::StatusCode::SWITCHING_PROTOCOLS;
    for name in connection_listed(&resp.headers) {
        resp.remove_header(&name);
    }
    for h in HOP_BY_HOP {
        resp.remove_header(*h);
    }
    resp.remove_header(&TRAILER);
    if !upgrade {
        resp.remove_header(&UPGRADE);
        resp.remove_header(&CONNECTION);
    }
}

/// Applies rule header operations to a request.
pub fn apply_request_ops(req: &mut RequestHeader, ops: &[HeaderOp]) {
    for op in ops {
        let _ = match op {
            HeaderOp::Set(n, v) => req.insert_header(n.clone(), v.clone()),
            HeaderOp::Add(n, v) => req.append_header(n.clone(), v.clone()).map(|_| ()),
            HeaderOp::Remove(n) => {
                req.remove_header(n);
                Ok(())
            }
        };
    }
}

/// Applies rule header operations to a response.
pub fn apply_response_ops(resp: &mut ResponseHeader, ops: &[HeaderOp]) {
    for op in ops {
        let _ = match op {
            HeaderOp::Set(n, v) => resp.insert_header(n.clone(), v.clone()),
            HeaderOp::Add(n, v) => resp.append_header(n.clone(), v.clone()).map(|_| ()),
            HeaderOp::Remove(n) => {
                resp.remove_header(n);
                Ok(())
            }
        };
    }
}
