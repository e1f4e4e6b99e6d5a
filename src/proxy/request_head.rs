//! Checks of a request's head before it is routed: what nginx refuses and Pingora lets
//! through. Each one closes a way to make Rampart and the backend see different requests:
//! a target that is not a path (rules see `/`, the backend `secret`), an absolute-form
//! target naming another site than the Host routed on, a Host that is not a host name, or
//! framing headers the backend may read differently (`Content-Length: 4, 4`,
//! `Transfer-Encoding: gzip, chunked`), or a `Connection` header asking the proxy to drop the
//! Host or a forwarding header on the way (refused as by Pingora's default policy, which
//! Rampart replaces: see `forward::strip_request_headers`).

use super::forward::X_REQUEST_ID;
use super::router::{host_name, HostName};
use http::header::{
    CONNECTION, CONTENT_LENGTH, EXPECT, HOST, REFERER, TRANSFER_ENCODING, UPGRADE, USER_AGENT,
};
use http::{HeaderValue, Method, Version};
use pingora_core::protocols::http::authority::{raw_target_authority, RawTargetAuthority};
use pingora_http::RequestHeader;

/// A request refused before routing: the status and the reason sent to the client.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

const fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// What the proxy reads from a request's head, in its one pass over the headers.
pub struct Head<'a> {
    /// The name the request is for, as sent (see [`requested_host`]).
    pub host: &'a str,
    /// `host` as projects are routed on it.
    pub name: HostName,
    /// The Host header, when the request has one.
    pub host_header: Option<&'a HeaderValue>,
    /// The client's X-Request-Id, when the request has one (the first).
    pub request_id: Option<&'a HeaderValue>,
    /// For the access log.
    pub referer: Option<&'a HeaderValue>,
    pub user_agent: Option<&'a HeaderValue>,
    /// The request has an `Upgrade` header (a WebSocket, maybe: `forward::asks_websocket`).
    pub upgrade: bool,
    /// `Expect: 100-continue`: the client waits for a `100` before sending its body.
    pub expects_continue: bool,
}

/// The name the request is for, as sent (port included): the absolute-form target's
/// authority, else `:authority` (h2), else the Host header; empty for an HTTP/1.0 request
/// with neither. Refuses the request when its head is malformed.
pub fn requested_host(req: &RequestHeader) -> Result<&str, Refusal> {
    read_head(req).map(|head| head.host)
}

/// The methods a `405` names in its `Allow` header: all but `CONNECT` and `TRACE`. A macro, so
/// that the wrapper's ready-made `405` to a `CONNECT` (`server::head_deadline`) is spelled
/// from the same text with `concat!`.
macro_rules! allowed_methods {
    () => {
        "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    };
}
pub(crate) use allowed_methods;

/// [`allowed_methods!`] as a constant, for the proxy's own `405`s.
pub const ALLOWED_METHODS: &str = allowed_methods!();

/// [`requested_host`], with the headers the proxy needs later found in the same pass.
pub fn read_head(req: &RequestHeader) -> Result<Head<'_>, Refusal> {
    if req.method == Method::TRACE {
        // A backend answering TRACE echoes the request, cookies and credentials included,
        // to whatever script sent it (cross-site tracing); nginx refuses it too.
        return Err(refuse(405, "TRACE is not allowed"));
    }
    // Methods are case-sensitive (RFC 9110 §9.1): `delete` is not DELETE to a rule matching
    // methods, but a backend may take it for one. nginx refuses such a method too.
    if req.method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(refuse(
            400,
            "the method has lower-case letters (methods are case-sensitive: GET, not get)",
        ));
    }
    let target_host = target_authority(req)?;
    // One pass over the (few) headers costs less than a hash lookup for each name needed.
    let (mut host_value, mut request_id, mut referer, mut user_agent) = (None, None, None, None);
    let (mut lengths, mut codings) = (0, 0);
    let (mut length_ok, mut chunked) = (true, true);
    let mut connection_options = 0;
    let (mut upgrade, mut expects_continue) = (false, false);
    for (name, value) in req.headers.iter() {
        if *name == HOST {
            host_value = Some(value);
        } else if *name == CONTENT_LENGTH {
            lengths += 1;
            let digits = value.as_bytes();
            length_ok &= !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
        } else if *name == TRANSFER_ENCODING {
            codings += 1;
            chunked &= value
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"chunked");
        } else if *name == CONNECTION {
            check_connection(value.as_bytes(), &mut connection_options)?;
        } else if *name == USER_AGENT {
            user_agent.get_or_insert(value);
        } else if *name == REFERER {
            referer.get_or_insert(value);
        } else if *name == X_REQUEST_ID {
            request_id.get_or_insert(value);
        } else if *name == UPGRADE {
            upgrade = true;
        } else if *name == EXPECT {
            expects_continue = value
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"100-continue");
        }
    }
    // A Host that is not visible ASCII reads as "\0": refused below as invalid.
    let host_text = host_value.map(|v| v.to_str().unwrap_or("\0"));
    if lengths > 1 || !length_ok {
        return Err(refuse(400, "the Content-Length header is not one number"));
    }
    // 501 as nginx: a coding Rampart does not decode would reach the backend undeclared.
    if codings > 1 || !chunked {
        return Err(refuse(501, "only the chunked transfer coding is supported"));
    }
    if req.version == Version::HTTP_11 && host_text.is_none() {
        // RFC 9112 §3.2: even with an absolute-form target.
        return Err(refuse(400, "an HTTP/1.1 request needs a Host header"));
    }
    let host = target_host
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
        .or(host_text)
        .unwrap_or("");
    let name = host_name(host)
        .filter(|name| !name.is_empty() || host_text.is_none())
        .ok_or(refuse(400, "the Host header is not a host name"))?;
    Ok(Head {
        host,
        name,
        host_header: host_value,
        request_id,
        referer,
        user_agent,
        upgrade,
        expects_continue,
    })
}

/// Options a request's `Connection` headers may list (Pingora's limit).
const MAX_CONNECTION_OPTIONS: usize = 9;
/// Headers a `Connection` option may not name: the backend needs them.
const PROTECTED: [&[u8]; 4] = [
    b"host",
    b"x-forwarded-for",
    b"x-forwarded-host",
    b"x-forwarded-proto",
];

/// The options of one `Connection` header (`count` runs over all of them): each must be a
/// token (RFC 9110 §5.6.2) and may not name the Host or a forwarding header, which the proxy
/// would otherwise drop as hop-by-hop before the backend reads it.
fn check_connection(value: &[u8], count: &mut usize) -> Result<(), Refusal> {
    for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if option.is_empty() {
            continue;
        }
        *count += 1;
        if *count > MAX_CONNECTION_OPTIONS {
            return Err(refuse(400, "the Connection header lists too many options"));
        }
        if !option.iter().all(|&b| is_tchar(b)) {
            return Err(refuse(
                400,
                "the Connection header lists something that is not a header name",
            ));
        }
        if PROTECTED.iter().any(|p| option.eq_ignore_ascii_case(p)) {
            return Err(refuse(
                400,
                "the Connection header may not name Host or X-Forwarded-For/Host/Proto",
            ));
        }
    }
    Ok(())
}

/// A byte of an HTTP token (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The authority of an absolute-form HTTP/1 target; refuses targets that are neither a path
/// nor an absolute URL (`secret`, `*x`, `http:/\host`), and spaces or control bytes in any.
fn target_authority(req: &RequestHeader) -> Result<Option<&str>, Refusal> {
    let target = req.raw_path();
    let bad_byte = |(i, &b): (usize, &u8)| {
        b <= b' ' || b == 0x7f || (b == b'%' && target.get(i + 1..i + 3) == Some(b"00"))
    };
    if target.iter().enumerate().any(bad_byte) {
        return Err(refuse(
            400,
            "the request target holds a space, a control character or %00",
        ));
    }
    if target.first() == Some(&b'/') || (target == b"*" && req.method == Method::OPTIONS) {
        return Ok(None);
    }
    if req.version == Version::HTTP_2 {
        // `:path` `*` with GET, or `?a=1`: the backend would get a request line the rules
        // never saw (they read `/`). nginx refuses them too.
        return Err(refuse(400, "the :path must be a path starting with `/`"));
    }
    match raw_target_authority(target) {
        RawTargetAuthority::Absolute { authority, .. } => std::str::from_utf8(authority)
            .map(Some)
            .map_err(|_| refuse(400, "the request target's host is not a host name")),
        _ => Err(refuse(
            400,
            "the request target must be a path starting with `/` or an absolute URL",
        )),
    }
}

/// The authority of an absolute-form target (`GET http://a.test/p`), for a request already
/// checked by [`requested_host`] (so without scanning the target again).
pub fn target_authority_str(req: &RequestHeader) -> Option<&str> {
    raw_target_authority(req.raw_path())
        .authority()
        .and_then(|a| std::str::from_utf8(a).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(version: Version, target: &[u8], headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", target, None).unwrap();
        req.set_version(version);
        for (k, v) in headers {
            req.append_header(k.to_string(), *v).unwrap();
        }
        req
    }

    fn host(version: Version, target: &[u8], headers: &[(&str, &str)]) -> Result<String, u16> {
        requested_host(&head(version, target, headers))
            .map(str::to_string)
            .map_err(|r| r.status)
    }

    #[test]
    fn the_host_comes_from_the_target_then_the_header() {
        let v11 = Version::HTTP_11;
        let v10 = Version::HTTP_10;
        assert_eq!(
            host(v11, b"/a", &[("Host", "a.test:80")]),
            Ok("a.test:80".into())
        );
        assert_eq!(host(v10, b"/a", &[]), Ok(String::new()));
        assert_eq!(
            host(v10, b"http://admin.test/p", &[]),
            Ok("admin.test".into())
        );
        assert_eq!(
            host(v11, b"http://b.test/p", &[("Host", "b.test")]),
            Ok("b.test".into())
        );
        assert_eq!(host(v11, b"/a", &[]), Err(400));
        assert_eq!(host(v11, b"/a", &[("Host", "")]), Err(400));
        assert_eq!(host(v11, b"/a", &[("Host", "a.test:x")]), Err(400));
    }

    #[test]
    fn targets_that_are_not_paths_are_refused() {
        let h = [("Host", "a.test")];
        for bad in [
            &b"secret"[..],
            b"*secret",
            b"admin/",
            b"http:/\\a.test/",
            b"/a%00b",
        ] {
            assert_eq!(host(Version::HTTP_11, bad, &h), Err(400), "{bad:?}");
        }
        let mut options = head(Version::HTTP_11, b"*", &h);
        options.set_method(Method::OPTIONS);
        assert_eq!(requested_host(&options), Ok("a.test"));
        // The same over HTTP/2 (`:path`), where Pingora does not refuse them either.
        assert_eq!(host(Version::HTTP_2, b"*", &h), Err(400));
        assert_eq!(host(Version::HTTP_2, b"/x", &h), Ok("a.test".into()));
        options.set_version(Version::HTTP_2);
        assert_eq!(requested_host(&options), Ok("a.test"));
    }

    #[test]
    fn connection_may_list_header_names_only_and_not_protected_ones() {
        let with = |value: &str| {
            host(
                Version::HTTP_11,
                b"/",
                &[("Host", "a"), ("Connection", value)],
            )
        };
        assert!(with("keep-alive, X-Hop").is_ok());
        assert!(with("Upgrade, HTTP2-Settings").is_ok());
        assert!(with("a,b,c,d,e,f,g,h,i").is_ok());
        for bad in [
            "a,b,c,d,e,f,g,h,i,j",
            "\"x-hop\"",
            ":authority",
            "close, Host",
            "X-Forwarded-For",
            "x-forwarded-proto",
        ] {
            assert_eq!(with(bad), Err(400), "{bad}");
        }
    }

    #[test]
    fn framing_headers_must_be_unambiguous() {
        let with = |extra: &[(&str, &str)]| {
            let mut h = vec![("Host", "a.test")];
            h.extend_from_slice(extra);
            host(Version::HTTP_11, b"/", &h)
        };
        assert!(with(&[("Content-Length", "4")]).is_ok());
        assert!(with(&[("Transfer-Encoding", " Chunked ")]).is_ok());
        assert_eq!(with(&[("Content-Length", "4, 4")]), Err(400));
        assert_eq!(
            with(&[("Content-Length", "4"), ("Content-Length", "4")]),
            Err(400)
        );
        assert_eq!(with(&[("Content-Length", "-1")]), Err(400));
        assert_eq!(with(&[("Transfer-Encoding", "gzip, chunked")]), Err(501));
        assert_eq!(
            with(&[
                ("Transfer-Encoding", "chunked"),
                ("Transfer-Encoding", "chunked")
            ]),
            Err(501)
        );
    }
}
