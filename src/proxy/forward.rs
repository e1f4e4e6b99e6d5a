//! Header work around forwarding: request ids, X-Forwarded-*, hop-by-hop removal, and the
//! header operations rules ask for.

use crate::rules::{is_hop_by_hop, HeaderOp};
use bytes::BytesMut;
use http::header::Entry;
use http::header::{HeaderName, CONNECTION, CONTENT_LENGTH, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use smallvec::SmallVec;
use std::net::IpAddr;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The client's request id when it is sane (visible ASCII, at most 128 bytes), else a new one.
pub fn request_id(client: Option<&HeaderValue>) -> HeaderValue {
    if let Some(v) = client {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic()) {
            return v.clone();
        }
    }
    new_request_id()
}

/// 32 hex digits of a fast per-thread generator seeded from the OS: ids must be unique, not
/// secret.
fn new_request_id() -> HeaderValue {
    /// Each byte's two hex digits: one load per byte rather than two.
    const HEX_PAIRS: [[u8; 2]; 256] = {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut t = [[0u8; 2]; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = [HEX[b >> 4], HEX[b & 15]];
            b += 1;
        }
        t
    };
    thread_local! {
        static RNG: std::cell::RefCell<SmallRng> =
            std::cell::RefCell::new(SmallRng::from_entropy());
    }
    let mut id = [[0u8; 2]; 16];
    let random = RNG.with(|rng| rng.borrow_mut().gen::<u128>());
    for (pair, byte) in id.iter_mut().zip(random.to_be_bytes()) {
        *pair = HEX_PAIRS[usize::from(byte)];
    }
    shared_value(id.as_flattened())
}

/// A header value of visible ASCII made per request (request ids, client addresses), cut from
/// a per-thread buffer shared by reference count: one allocation per ~2 KiB of values, and
/// the copies sent upstream, echoed and logged cost no allocation each (a value of its own
/// allocates, and allocates again when first cloned).
fn shared_value(text: &[u8]) -> HeaderValue {
    const BUFFER: usize = 2048;
    thread_local! {
        static VALUES: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
    }
    debug_assert!(text.iter().all(u8::is_ascii_graphic));
    let value = VALUES.with(|values| {
        let buffer = &mut *values.borrow_mut();
        if buffer.capacity() < text.len() {
            // The old buffer is freed when its last value is.
            *buffer = BytesMut::with_capacity(BUFFER.max(text.len()));
        }
        buffer.extend_from_slice(text);
        buffer.split().freeze()
    });
    // SAFETY: the callers' text is visible ASCII (hex digits; digits, dots, colons and hex
    // letters of an address), valid in a header value; checking it again cost ~120
    // instructions per request for an id.
    unsafe { HeaderValue::from_maybe_shared_unchecked(value) }
}

/// Edits the upstream request's headers directly in its `HeaderMap`.
///
/// Every `insert_header` on a Pingora header re-parses the name (an allocation for each
/// non-standard one) and updates a second, case-keeping map; for the half-dozen headers added
/// to every request that was the proxy's largest cost. So the request is rebuilt once without
/// the case map: names then go out in their canonical case (title case for standard headers,
/// lower case for others), as over HTTP/2 and as HAProxy sends them.
pub fn edit_upstream_headers(req: &mut RequestHeader, edit: impl FnOnce(&mut HeaderMap)) {
    // The exact request-target bytes, when the URI alone does not reproduce them; an
    // absolute-form target (`http://a.test/p`) goes out in origin form, as with nginx, so the
    // backend sees the Host and scheme Rampart routed on, not a second authority.
    let raw_path = req.raw_path();
    let raw = (raw_path.first() == Some(&b'/')
        && req.uri.path_and_query().map(|p| p.as_str().as_bytes()) != Some(raw_path))
    .then(|| raw_path.to_vec());
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

/// The client's IP from its socket address. A dual-stack `[::]` listener sees IPv4 clients as
/// `::ffff:a.b.c.d`: backends, logs and rules get the plain IPv4 address, as from nginx.
pub fn client_ip(addr: Option<&pingora_core::protocols::l4::socket::SocketAddr>) -> Option<IpAddr> {
    addr.and_then(|a| a.as_inet())
        .map(|a| a.ip().to_canonical())
}

/// An IP address as text, formatted on the stack: IPv4 digit by digit (`fmt` costs ~1 000
/// instructions per address, `itoa` and a `push_str` per octet ~220), IPv6 through `Display`.
#[derive(Clone, Copy)]
pub struct IpText {
    buf: [u8; 45],
    len: usize,
}

impl std::fmt::Debug for IpText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl IpText {
    pub fn new(ip: IpAddr) -> IpText {
        let mut buf = [0u8; 45];
        let len = match ip {
            IpAddr::V4(v4) => {
                let mut len = 0;
                for (i, o) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        buf[len] = b'.';
                        len += 1;
                    }
                    if o >= 100 {
                        buf[len] = b'0' + o / 100;
                        len += 1;
                    }
                    if o >= 10 {
                        buf[len] = b'0' + o / 10 % 10;
                        len += 1;
                    }
                    buf[len] = b'0' + o % 10;
                    len += 1;
                }
                len
            }
            IpAddr::V6(v6) => {
                use std::io::Write;
                let mut rest = &mut buf[..];
                // The longest IPv6 text (`ffff:…:255.255.255.255`) is 45 bytes.
                let _ = write!(rest, "{v6}");
                45 - rest.len()
            }
        };
        IpText { buf, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_str(&self) -> &str {
        debug_assert!(self.as_bytes().is_ascii());
        // SAFETY: `new` writes only ASCII (digits and dots, or `Ipv6Addr`'s hex digits, colons
        // and dots), and nothing else writes `buf`: no UTF-8 check on every access-log line.
        unsafe { std::str::from_utf8_unchecked(self.as_bytes()) }
    }
}

/// The forwarding headers a client may not set itself unless `trust_proxy_headers` is on:
/// every `X-Forwarded-*` (Port, Prefix, Server, … are read by some backends too),
/// `X-Real-IP` and `Forwarded`.
fn is_forwarding_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("x-forwarded-") || name == "x-real-ip" || name == "forwarded"
}

/// How the client's request may go on, for [`strip_request_headers`].
#[derive(Clone, Copy)]
pub struct Hops {
    /// `trust_proxy_headers`: the client's forwarding headers are kept.
    pub trust: bool,
    /// An HTTP/1.1 client to an HTTP/1.1 backend: a WebSocket upgrade can go through.
    pub upgrade: bool,
    /// An HTTP/2 client to an HTTP/2 backend: `TE: trailers` (gRPC) goes through.
    pub te_trailers: bool,
}

/// The request headers that are not for the backend: the hop-by-hop ones (those of
/// Pingora's default upstream request policy, which Rampart turns off to do this work in one
/// pass over the names present instead of ~14 hash removals per request) and, unless
/// trusted, the forwarding headers.
fn is_dropped_request_header(name: &HeaderName, hops: Hops) -> bool {
    is_hop_by_hop(name)
        || *name == TRANSFER_ENCODING
        || (*name == TE && !hops.te_trailers)
        || name.as_str() == "http2-settings"
        || (!hops.trust && is_forwarding_header(name))
}

/// The options a `Connection` header lists, trimmed (`request_head` has refused requests
/// whose options are not header names or name a protected header).
fn connection_options(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes from the upstream request what is not for the backend (see
/// [`is_dropped_request_header`]) and the headers the client's `Connection` names. A
/// WebSocket upgrade (`Upgrade: websocket` listed in `Connection`, RFC 9110 §7.8) keeps
/// `Connection: Upgrade` and `Upgrade: websocket`; other upgrades (`h2c`) are not forwarded.
/// True when the request goes on as such an upgrade.
pub fn strip_request_headers(headers: &mut HeaderMap, hops: Hops) -> bool {
    // One pass over the (few) request headers; nearly every request stops here (`Upgrade`
    // is hop-by-hop: without it there is no upgrade either).
    if !headers.keys().any(|n| is_dropped_request_header(n, hops)) {
        return false;
    }
    let named: SmallVec<[&str; 4]> = connection_options(headers).collect();
    let websocket = hops.upgrade && names_websocket_upgrade(headers, &named);
    let doomed: SmallVec<[HeaderName; 4]> = headers
        .keys()
        .filter(|n| {
            is_dropped_request_header(n, hops)
                || named.iter().any(|t| t.eq_ignore_ascii_case(n.as_str()))
        })
        .cloned()
        .collect();
    drop(named);
    for name in doomed {
        headers.remove(name);
    }
    if websocket {
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    }
    websocket
}

/// `Upgrade: websocket`, with `upgrade` among the `Connection` options `named`.
fn names_websocket_upgrade(headers: &HeaderMap, named: &[&str]) -> bool {
    named.iter().any(|t| t.eq_ignore_ascii_case("upgrade"))
        && headers
            .get(UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// The client asks for a WebSocket: an HTTP/1.1 upgrade that [`strip_request_headers`] lets
/// through to an HTTP/1.1 backend. Asked only of requests whose head's one pass
/// (`request_head::read_head`) found an `Upgrade` header.
pub fn asks_websocket(req: &RequestHeader) -> bool {
    if req.version != http::Version::HTTP_11 {
        return false;
    }
    let named: SmallVec<[&str; 4]> = connection_options(&req.headers).collect();
    names_websocket_upgrade(&req.headers, &named)
}

/// Sets X-Forwarded-For/Proto/Host, X-Real-IP and X-Request-Id, after
/// [`strip_request_headers`]. `host` is the client's Host.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    client_ip: Option<&IpText>,
    scheme: &'static str,
    host: Option<HeaderValue>,
    request_id: &HeaderValue,
) {
    // Room for the five headers below at once: growing one at a time rehashes three times.
    headers.reserve(5);
    if let Some(text) = client_ip {
        let ip_value = shared_value(text.as_bytes());
        // One hash per header: `entry` finds the slot that an insert would look up again.
        match headers.entry(X_FORWARDED_FOR) {
            Entry::Occupied(mut prev) => {
                // Every line: a proxy in front may have added its own after the client's.
                let mut chain = String::with_capacity(64);
                for p in prev.iter().filter_map(|v| v.to_str().ok()).map(str::trim) {
                    if !p.is_empty() {
                        chain.push_str(p);
                        chain.push_str(", ");
                    }
                }
                chain.push_str(text.as_str());
                prev.insert(HeaderValue::try_from(chain).unwrap_or_else(|_| ip_value.clone()));
            }
            Entry::Vacant(slot) => {
                slot.insert(ip_value.clone());
            }
        }
        headers.entry(X_REAL_IP).or_insert(ip_value);
    }
    headers
        .entry(X_FORWARDED_PROTO)
        .or_insert_with(|| HeaderValue::from_static(scheme));
    if let Some(host) = host {
        headers.entry(X_FORWARDED_HOST).or_insert(host);
    }
    headers.insert(X_REQUEST_ID, request_id.clone());
}

/// Removes the hop-by-hop headers of a backend's response, and those its `Connection` names;
/// `Connection` and `Upgrade` stay on a 101 (the switched connection needs them). A length
/// sent twice or as a list (`Content-Length: 2, 2`, which Pingora reads as one length when
/// the values agree) goes on as one value, as nginx sends it: strict clients (Node's) refuse
/// the response otherwise. So do transfer codings listed more than once: see
/// [`one_transfer_encoding`].
pub fn strip_hop_by_hop_response(status: http::StatusCode, headers: &mut HeaderMap) {
    // Nearly every response has no hop-by-hop header but `Connection: keep-alive` (or
    // `close`), which Pingora itself replaces on a final answer over HTTP/1 and drops over
    // HTTP/2: nothing to remove then.
    let (mut connection, mut unusual, mut other) = (false, false, false);
    let (mut lengths, mut length_list) = (0u8, false);
    let (mut codings, mut coding_list) = (0u8, false);
    for (name, value) in headers.iter() {
        if *name == CONNECTION {
            connection = true;
            // A bare `keep-alive` or `close` (nearly all) is seen without splitting a list.
            let v = value.as_bytes();
            unusual |= !(v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close"));
        } else if *name == CONTENT_LENGTH {
            lengths = lengths.saturating_add(1);
            length_list |= value.as_bytes().contains(&b',');
        } else if *name == TRANSFER_ENCODING {
            codings = codings.saturating_add(1);
            coding_list |= value.as_bytes().contains(&b',');
        } else if is_hop_by_hop(name) || *name == TE {
            other = true;
        }
    }
    if lengths > 1 || length_list {
        one_content_length(headers);
    }
    if codings > 1 || coding_list {
        one_transfer_encoding(headers);
    }
    let rewritten_by_pingora = || {
        !status.is_informational()
            && (!unusual
                || connection_options(headers).all(|t| {
                    t.eq_ignore_ascii_case("keep-alive") || t.eq_ignore_ascii_case("close")
                }))
    };
    if !other && (!connection || rewritten_by_pingora()) {
        return;
    }
    let upgrade = status == http::StatusCode::SWITCHING_PROTOCOLS;
    // Names `Connection` lists beyond the usual `keep-alive`/`close`/`upgrade` (rare).
    let named: SmallVec<[&str; 4]> = connection_options(headers)
        .filter(|t| {
            !(t.eq_ignore_ascii_case("keep-alive")
                || t.eq_ignore_ascii_case("close")
                || t.eq_ignore_ascii_case("upgrade"))
        })
        .collect();
    // One pass over the names present; removing by name would hash every candidate.
    let doomed: SmallVec<[HeaderName; 4]> = headers
        .keys()
        .filter(|name| {
            if upgrade && (*name == UPGRADE || *name == CONNECTION) {
                return false;
            }
            // TE is a request header; a backend's is not for the client either.
            is_hop_by_hop(name)
                || *name == TE
                || named.iter().any(|t| t.eq_ignore_ascii_case(name.as_str()))
        })
        .cloned()
        .collect();
    drop(named);
    for name in doomed {
        headers.remove(name);
    }
}

/// Replaces a response's `Content-Length` lines by the first value of the first: Pingora
/// refused the response (`502`) unless they all agree.
#[cold]
fn one_content_length(headers: &mut HeaderMap) {
    let first = headers.get(CONTENT_LENGTH).and_then(|v| {
        let text = v.to_str().ok()?;
        let value = text.split(',').next()?.trim();
        HeaderValue::from_str(value).ok()
    });
    if let Some(value) = first {
        headers.insert(CONTENT_LENGTH, value);
    }
}

/// Lists a response's transfer codings on one `Transfer-Encoding` line, `chunked` once and
/// last, when the backend's last coding is `chunked`: Pingora then reads the backend's chunks
/// and sends the client chunks of its own, once. The backend's lines as they were
/// (`chunked` twice, or `chunked, chunked`) would tell the client the body is chunked twice,
/// which RFC 9112 forbids and strict clients refuse. Other codings (`gzip, chunked`) are
/// kept in order; a list not ending in `chunked` is left as it is (the body then runs to the
/// connection's end).
#[cold]
fn one_transfer_encoding(headers: &mut HeaderMap) {
    let mut codings: Vec<&str> = Vec::new();
    for value in headers.get_all(TRANSFER_ENCODING) {
        let Ok(text) = value.to_str() else { return };
        codings.extend(text.split(',').map(str::trim).filter(|c| !c.is_empty()));
    }
    let chunked = |c: &&str| c.eq_ignore_ascii_case("chunked");
    if !codings.last().is_some_and(chunked) {
        return;
    }
    let mut one: Vec<&str> = codings.into_iter().filter(|c| !chunked(c)).collect();
    one.push("chunked");
    if let Ok(value) = HeaderValue::from_str(&one.join(", ")) {
        headers.insert(TRANSFER_ENCODING, value);
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

/// HTTP/2 clients may split `Cookie` into several fields (RFC 9113 §8.2.3); they are joined
/// with `; ` before the request goes on, as nginx does: an HTTP/1.1 backend expects one
/// `Cookie` line and may read several as one value joined with `, `.
pub fn join_cookies(headers: &mut HeaderMap) {
    let mut cookies = headers.get_all(http::header::COOKIE).iter();
    if cookies.next().is_none() || cookies.next().is_none() {
        return;
    }
    let parts: Vec<&[u8]> = headers
        .get_all(http::header::COOKIE)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    if let Ok(joined) = HeaderValue::from_bytes(&parts.join(&b"; "[..])) {
        headers.insert(http::header::COOKIE, joined);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        n.sort_unstable();
        n
    }

    #[test]
    fn response_hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = headers(&[
            ("connection", "keep-alive, X-Private"),
            ("connection", " x-other ,close"),
            ("x-private", "1"),
            ("x-other", "2"),
            ("keep-alive", "timeout=5"),
            ("proxy-authenticate", "Basic"),
            ("trailer", "x"),
            ("upgrade", "h2c"),
            ("content-type", "text/plain"),
            ("x-kept", "3"),
        ]);
        strip_hop_by_hop_response(http::StatusCode::OK, &mut h);
        assert_eq!(names(&h), ["content-type", "x-kept"]);
        // A Connection naming a header, alone among the hop-by-hop ones.
        let mut h = headers(&[("connection", "close, X-Private"), ("x-private", "1")]);
        strip_hop_by_hop_response(http::StatusCode::OK, &mut h);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn a_plain_connection_header_is_left_to_pingora_on_final_answers_only() {
        let plain = [("connection", "Keep-Alive"), ("content-type", "text/plain")];
        // Pingora replaces it on a final HTTP/1 answer (and drops it over HTTP/2).
        let mut h = headers(&plain);
        strip_hop_by_hop_response(http::StatusCode::OK, &mut h);
        assert_eq!(names(&h), ["connection", "content-type"]);
        // Nor a list of only those options.
        let mut h = headers(&[("connection", " close , Keep-Alive"), ("x-kept", "1")]);
        strip_hop_by_hop_response(http::StatusCode::OK, &mut h);
        assert_eq!(names(&h), ["connection", "x-kept"]);
        // Not on an informational one, which it passes as is.
        let mut h = headers(&plain);
        strip_hop_by_hop_response(http::StatusCode::EARLY_HINTS, &mut h);
        assert_eq!(names(&h), ["content-type"]);
        // With another hop-by-hop header, both go.
        let mut h = headers(&[("connection", "close"), ("keep-alive", "timeout=5")]);
        strip_hop_by_hop_response(http::StatusCode::OK, &mut h);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn request_hop_by_hop_and_spoofed_headers_are_removed() {
        let client = [
            ("connection", "keep-alive, X-Hop, upgrade"),
            ("upgrade", "WebSocket"),
            ("x-hop", "1"),
            ("te", "trailers"),
            ("http2-settings", "x"),
            ("x-forwarded-port", "1"),
            ("x-real-ip", "6.6.6.6"),
            ("accept", "*/*"),
        ];
        let hops = Hops {
            trust: false,
            upgrade: true,
            te_trailers: false,
        };
        let mut h = headers(&client);
        assert!(strip_request_headers(&mut h, hops), "goes on as an upgrade");
        assert_eq!(names(&h), ["accept", "connection", "upgrade"]);
        assert_eq!(h["connection"], "Upgrade");
        assert_eq!(h["upgrade"], "websocket");
        // Trusted forwarding headers stay; an h2 backend gets no upgrade but gRPC's TE.
        let mut h = headers(&client);
        let hops = Hops {
            trust: true,
            upgrade: false,
            te_trailers: true,
        };
        assert!(!strip_request_headers(&mut h, hops));
        assert_eq!(names(&h), ["accept", "te", "x-forwarded-port", "x-real-ip"]);
        // Nothing to remove: the map is left as it is.
        let mut h = headers(&[("host", "a"), ("accept", "*/*")]);
        assert!(!strip_request_headers(&mut h, hops));
        assert_eq!(names(&h), ["accept", "host"]);
    }

    #[test]
    fn websocket_requests_are_told_apart() {
        let ask = |version, headers: &[(&str, &str)]| {
            let mut req = RequestHeader::build("GET", b"/chat", None).unwrap();
            req.set_version(version);
            for (k, v) in headers {
                req.append_header(k.to_string(), *v).unwrap();
            }
            asks_websocket(&req)
        };
        let ws = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ];
        assert!(ask(http::Version::HTTP_11, &ws));
        assert!(!ask(http::Version::HTTP_10, &ws), "HTTP/1.0 has no upgrade");
        assert!(
            !ask(http::Version::HTTP_11, &ws[1..]),
            "Upgrade not in Connection"
        );
        assert!(!ask(
            http::Version::HTTP_11,
            &[("connection", "upgrade"), ("upgrade", "h2c")]
        ));
        assert!(!ask(http::Version::HTTP_11, &[]));
    }

    #[test]
    fn a_switching_response_keeps_connection_and_upgrade() {
        let mut h = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("keep-alive", "timeout=5"),
            ("sec-websocket-accept", "x"),
        ]);
        strip_hop_by_hop_response(http::StatusCode::SWITCHING_PROTOCOLS, &mut h);
        assert_eq!(names(&h), ["connection", "sec-websocket-accept", "upgrade"]);
    }

    #[test]
    fn ips_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "10.200.3.45",
            "255.255.255.255",
            "::1",
            "::ffff:10.0.0.1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(IpText::new(ip).as_str(), ip.to_string());
        }
        for o in 0..=255u8 {
            let ip = IpAddr::from([o, 255 - o, o / 10, 9]);
            assert_eq!(IpText::new(ip).as_bytes(), ip.to_string().as_bytes());
        }
    }

    #[test]
    fn values_cut_from_the_shared_buffer_keep_their_text_across_buffers() {
        // Enough values to fill several 2 KiB buffers, all alive at once.
        let texts: Vec<String> = (0..600)
            .map(|i| format!("10.{}.{}.{i}", i % 7, i % 300))
            .collect();
        let values: Vec<HeaderValue> = texts.iter().map(|t| shared_value(t.as_bytes())).collect();
        for (text, value) in texts.iter().zip(&values) {
            assert_eq!(value.as_bytes(), text.as_bytes());
        }
    }

    #[test]
    fn request_ids_are_kept_when_sane_and_unique_when_generated() {
        let sane = headers(&[("x-request-id", "abc-123")]);
        assert_eq!(request_id(sane.get(X_REQUEST_ID)), "abc-123");
        let insane = headers(&[("x-request-id", "has space")]);
        let ids: std::collections::HashSet<HeaderValue> = (0..1000)
            .map(|_| request_id(insane.get(X_REQUEST_ID)))
            .collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids
            .iter()
            .all(|id| id.len() == 32 && id.as_bytes().iter().all(u8::is_ascii_hexdigit)));
    }
}
