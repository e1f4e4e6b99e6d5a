//! Header work around forwarding: request ids, X-Forwarded-*, hop-by-hop removal, and the
//! header operations rules ask for.

use crate::rules::HeaderOp;
use http::header::{HeaderName, CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use smallvec::SmallVec;
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
    // Only a non-standard phrase needs keeping: the rebuilt header writes the canonical one.
    let reason = resp
        .get_reason_phrase()
        .filter(|r| Some(*r) != resp.status.canonical_reason())
        .map(str::to_string);
    let empty = ResponseHeader::from(http::Response::new(()).into_parts().0);
    let mut parts = http::response::Parts::from(std::mem::replace(resp, empty));
    edit(&mut parts.headers);
    *resp = ResponseHeader::from(parts);
    if reason.is_some() {
        let _ = resp.set_reason_phrase(reason.as_deref());
    }
}

/// Appends `ip` as text: IPv4 digit by digit (`fmt` costs ~1 000 instructions per address
/// on the hot path), IPv6 through `Display`.
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(digits.format(octet));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// The forwarding headers a client may not set itself unless `trust_proxy_headers` is on.
fn is_forwarding_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host" | "x-real-ip" | "forwarded"
    )
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
    // One pass over the (few) request headers is cheaper than five hash removals.
    if !trust && headers.keys().any(is_forwarding_header) {
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
    // Room for the five headers below at once: growing one at a time rehashes three times.
    headers.reserve(5);
    if let Some(ip) = client_ip {
        let mut text = String::with_capacity(64);
        if let Some(prev) = headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            if !prev.trim().is_empty() {
                text.push_str(prev);
                text.push_str(", ");
            }
        }
        let ip_start = text.len();
        push_ip(&mut text, ip);
        let ip_value = HeaderValue::from_str(&text[ip_start..]).expect("an IP is a valid value");
        let xff = HeaderValue::try_from(text).unwrap_or_else(|_| ip_value.clone());
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

/// Hop-by-hop response headers that never reach the client, besides those named in
/// `Connection`. (Requests need no such list: Pingora's default upstream request policy strips
/// the standard hop-by-hop and `Connection`-named headers before `upstream_request_filter`.)
fn is_hop_by_hop_response(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authorization"
            | "proxy-authenticate"
            | "trailer"
            | "upgrade"
    )
}

/// Removes the hop-by-hop headers of a backend's response, and those its `Connection` names;
/// `Connection` and `Upgrade` stay on a 101 (the switched connection needs them).
pub fn strip_hop_by_hop_response(status: http::StatusCode, headers: &mut HeaderMap) {
    let upgrade = status == http::StatusCode::SWITCHING_PROTOCOLS;
    let connection: SmallVec<[&str; 2]> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let named_in_connection = |name: &HeaderName| {
        connection
            .iter()
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case(name.as_str()))
    };
    // One pass over the names present; removing by name would hash every candidate.
    let doomed: SmallVec<[HeaderName; 4]> = headers
        .keys()
        .filter(|name| {
            let kept_for_upgrade = upgrade && (*name == UPGRADE || *name == CONNECTION);
            !kept_for_upgrade
                && (is_hop_by_hop_response(name) || (*name != UPGRADE && named_in_connection(name)))
        })
        .cloned()
        .collect();
    drop(connection);
    for name in doomed {
        headers.remove(name);
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
