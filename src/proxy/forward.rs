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
    HeaderValue::try_from(format!("{:032x}", rand::random::<u128>()))
        .expect("hex is a valid header value")
}

// Names to insert, as written on the wire: Pingora keeps header case, and a `&'static str`
// name costs no allocation where a `HeaderName` would be title-cased into a new buffer.
pub const X_REQUEST_ID_WIRE: &str = "X-Request-Id";
const X_FORWARDED_FOR_WIRE: &str = "X-Forwarded-For";
const X_FORWARDED_PROTO_WIRE: &str = "X-Forwarded-Proto";
const X_FORWARDED_HOST_WIRE: &str = "X-Forwarded-Host";
const X_REAL_IP_WIRE: &str = "X-Real-IP";

/// Removes `name` only when present (a removal is not free on Pingora's case-keeping map).
fn remove(req: &mut RequestHeader, name: &HeaderName) {
    if req.headers.contains_key(name) {
        req.remove_header(name);
    }
}

/// Sets X-Forwarded-For/Proto/Host, X-Real-IP and X-Request-Id. Without trust, whatever the
/// client sent in these (and `Forwarded`) is dropped first. `host` is the client's Host.
pub fn set_forwarded(
    req: &mut RequestHeader,
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
            remove(req, h);
        }
    }
    if let Some(ip) = client_ip {
        let ip_value =
            HeaderValue::try_from(ip.to_string()).expect("an IP is a valid header value");
        let xff = match req
            .headers
            .get(X_FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) if !prev.trim().is_empty() => {
                HeaderValue::try_from(format!("{prev}, {ip}")).unwrap_or_else(|_| ip_value.clone())
            }
            _ => ip_value.clone(),
        };
        let _ = req.insert_header(X_FORWARDED_FOR_WIRE, xff);
        if !req.headers.contains_key(X_REAL_IP) {
            let _ = req.insert_header(X_REAL_IP_WIRE, ip_value);
        }
    }
    if !req.headers.contains_key(X_FORWARDED_PROTO) {
        let _ = req.insert_header(X_FORWARDED_PROTO_WIRE, HeaderValue::from_static(scheme));
    }
    if let Some(host) = host {
        if !req.headers.contains_key(X_FORWARDED_HOST) {
            let _ = req.insert_header(X_FORWARDED_HOST_WIRE, host);
        }
    }
    let _ = req.insert_header(X_REQUEST_ID_WIRE, request_id.clone());
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

pub fn strip_hop_by_hop_request(req: &mut RequestHeader) {
    let upgrade = is_upgrade(&req.headers);
    for name in connection_listed(&req.headers) {
        remove(req, &name);
    }
    for h in HOP_BY_HOP.iter().chain([&TE, &TRAILER]) {
        remove(req, h);
    }
    if !upgrade {
        remove(req, &UPGRADE);
        remove(req, &CONNECTION);
    }
}

pub fn strip_hop_by_hop_response(resp: &mut ResponseHeader) {
    let upgrade = resp.status == http::StatusCode::SWITCHING_PROTOCOLS;
    let listed = connection_listed(&resp.headers);
    let mut remove = |name: &HeaderName| {
        if resp.headers.contains_key(name) {
            resp.remove_header(name);
        }
    };
    for name in &listed {
        remove(name);
    }
    for h in HOP_BY_HOP.iter().chain([&TRAILER]) {
        remove(h);
    }
    if !upgrade {
        remove(&UPGRADE);
        remove(&CONNECTION);
    }
}

/// The header edits rules make, on either side of the proxy (Pingora's request and response
/// headers share these methods but no trait).
pub trait HeaderEdit {
    fn set(&mut self, name: HeaderName, value: HeaderValue);
    fn add(&mut self, name: HeaderName, value: HeaderValue);
    fn remove(&mut self, name: &HeaderName);
}

macro_rules! header_edit {
    ($t:ty) => {
        impl HeaderEdit for $t {
            fn set(&mut self, name: HeaderName, value: HeaderValue) {
                let _ = self.insert_header(name, value);
            }
            fn add(&mut self, name: HeaderName, value: HeaderValue) {
                let _ = self.append_header(name, value);
            }
            fn remove(&mut self, name: &HeaderName) {
                self.remove_header(name);
            }
        }
    };
}
header_edit!(RequestHeader);
header_edit!(ResponseHeader);

/// Applies rule header operations, in order.
pub fn apply_ops(target: &mut impl HeaderEdit, ops: &[HeaderOp]) {
    for op in ops {
        match op {
            HeaderOp::Set(n, v) => target.set(n.clone(), v.clone()),
            HeaderOp::Add(n, v) => target.add(n.clone(), v.clone()),
            HeaderOp::Remove(n) => target.remove(n),
        }
    }
}
