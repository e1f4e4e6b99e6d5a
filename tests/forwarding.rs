//! What the backend receives: X-Forwarded-*, X-Real-IP, X-Request-Id, Host, no hop-by-hop.

mod common;
use common::*;
use std::time::Duration;

/// Rampart with one catch-all project on a pool of `backend`; returns it and its listener's
/// address (`host:port`).
fn start(project_extra: &str, backend: &str) -> (Rampart, String) {
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{backend}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app{project_extra} }}\n"
    );
    (Rampart::start(&yaml), http)
}

#[test]
fn untrusted_proxy_headers_are_replaced() {
    let up = Upstream::start("up");
    let (_r, http) = start("", &up.addr_string());
    let base = format!("http://{http}");
    let resp = client()
        .get(format!("{base}/p?q=1"))
        .header("host", "Shop.Test:8080")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "evil.test")
        .header("x-real-ip", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("x-forwarded-port", "8443")
        .header("x-forwarded-prefix", "/evil")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("te", "trailers")
        .send()
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(
        id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "generated ids are 128-bit lower-case hex: {id}"
    );
    let e: Echo = resp.json().unwrap();
    assert_eq!(e.uri, "/p?q=1");
    assert_eq!(e.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(e.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(e.header("x-forwarded-proto"), Some("http"));
    assert_eq!(e.header("x-forwarded-host"), Some("Shop.Test:8080"));
    assert_eq!(
        e.header("host"),
        Some("Shop.Test:8080"),
        "preserve_host defaults to true"
    );
    assert_eq!(e.header("x-request-id"), Some(id.as_str()));
    for h in [
        "forwarded",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-hop",
        "keep-alive",
        "proxy-authorization",
        "te",
    ] {
        assert_eq!(e.header(h), None, "{h} must not be forwarded");
    }
}

#[test]
fn trusted_proxy_headers_are_extended_and_request_id_kept() {
    let up = Upstream::start("up");
    let (_r, http) = start(
        ", trust_proxy_headers: true, preserve_host: false",
        &up.addr_string(),
    );
    let base = format!("http://{http}");
    let resp = client()
        .get(format!("{base}/"))
        .header("host", "shop.test")
        .header("x-forwarded-for", "203.0.113.7")
        // A second line, as a proxy in front appends: both are kept, in order.
        .header("x-forwarded-for", "198.51.100.2")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "www.shop.test")
        .header("x-request-id", "abc-123")
        .send()
        .unwrap();
    assert_eq!(
        resp.headers()["x-request-id"],
        "abc-123",
        "the client's id is echoed"
    );
    let e: Echo = resp.json().unwrap();
    assert_eq!(
        e.header("x-forwarded-for"),
        Some("203.0.113.7, 198.51.100.2, 127.0.0.1")
    );
    assert_eq!(e.header("x-forwarded-proto"), Some("https"));
    assert_eq!(e.header("x-forwarded-host"), Some("www.shop.test"));
    assert_eq!(e.header("x-request-id"), Some("abc-123"));
    assert_eq!(
        e.header("host"),
        Some(up.addr_string().as_str()),
        "preserve_host: false sends the backend address"
    );
}

#[test]
fn http_1_0_is_served_and_garbage_gets_400() {
    let up = Upstream::start("up");
    let (r, addr) = start("", &up.addr_string());
    let answer = |request: &[u8]| {
        String::from_utf8_lossy(&raw_request(&addr, request).unwrap()).into_owned()
    };
    let out = answer(b"GET /old HTTP/1.0\r\nHost: a.test\r\n\r\n");
    assert!(
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
        "{out}"
    );
    assert!(out.contains("\"uri\":\"/old\""), "{out}");

    // Host is optional in HTTP/1.0 (above, with; here, without) but required in HTTP/1.1.
    for (request, status) in [
        (&b"GET /no-host HTTP/1.0\r\n\r\n"[..], "200"),
        (b"GET /no-host HTTP/1.1\r\nConnection: close\r\n\r\n", "400"),
        (
            b"GET http://a.test/abs HTTP/1.1\r\nConnection: close\r\n\r\n",
            "400",
        ),
        (
            b"GET http://a.test/abs HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
            "200",
        ),
        // A Host that is not a host name never reaches routing nor `{host}` (nginx: 400).
        (
            b"GET / HTTP/1.1\r\nHost: evil.test/x\r\nConnection: close\r\n\r\n",
            "400",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a.test:1/evil\r\nConnection: close\r\n\r\n",
            "400",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a.test:x\r\nConnection: close\r\n\r\n",
            "400",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
            "200",
        ),
    ] {
        let out = answer(request);
        assert!(
            out.starts_with(&format!("HTTP/1.0 {status}"))
                || out.starts_with(&format!("HTTP/1.1 {status}")),
            "{:?} must get {status}, got: {out}",
            String::from_utf8_lossy(request)
        );
    }

    let out = answer(b"GET /\r\n\r\n");
    assert!(
        out.starts_with("HTTP/1.1 400"),
        "HTTP/0.9 gets 400, got: {out:?}"
    );
    // Pingora's own answers, before any phase of Rampart's (a header line without a colon;
    // CONNECT), are given in Rampart's words: Pingora's say `Server: Pingora`, with no body.
    let out = answer(b"GET / HTTP/1.1\r\nHost a.test\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out:?}");
    assert!(
        out.ends_with("\r\n\r\nthe request head could not be parsed\n"),
        "{out:?}"
    );
    let out = answer(b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n");
    assert!(
        out.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{out:?}"
    );
    assert!(out.contains("\r\nAllow: GET, HEAD, POST,"), "{out:?}");
    assert!(out.ends_with("\r\n\r\nCONNECT is not supported: this is a reverse proxy\n"));
    for out in [&out, &answer(b"GET / HTTP/1.1\r\nHost a.test\r\n\r\n")] {
        assert!(!out.to_ascii_lowercase().contains("pingora"), "{out:?}");
        assert!(out.contains("\r\nConnection: close\r\n"), "{out:?}");
    }

    // Every 400 above is counted with the requests that reached no project: the five
    // Rampart refused (bad or missing Host) and the three Pingora could not parse, which no
    // phase of the proxy sees; the CONNECT as a 405.
    let sample = "rampart_requests_total{code=\"400\",project=\"_none\"}";
    poll_until(Duration::from_secs(10), "eight 400s counted", || {
        (r.metric(sample) == Some(8.0)).then_some(())
    });
    let sample = "rampart_requests_total{code=\"405\",project=\"_none\"}";
    assert_eq!(r.metric(sample), Some(1.0));
    // Each kind warned of, though they came within one throttle period.
    for code in [400, 405] {
        r.wait_for_log(
            &format!("answered {code} to a request head from 127.0.0.1:"),
            Duration::from_secs(10),
        );
    }
    assert_eq!(
        up.hits(),
        4,
        "only the requests answered 200 reached the backend"
    );
}

/// A backend that answers every request on its connections with `RESPONSE`.
fn raw_backend() -> String {
    socket_backend(|conn| answer_every_head(conn, RESPONSE))
}

const RESPONSE: &[u8] = b"HTTP/1.1 200 All Good\r\nContent-Length: 2\r\nConnection: keep-alive, x-private\r\nX-Private: secret\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-Powered-By: raw\r\n\r\nok";

#[test]
fn backend_hop_by_hop_response_headers_are_removed_and_its_reason_kept() {
    let (_r, http) = start(
        ", rules: [ { id: tag, response_headers: { set: { X-Served-By: edge } } } ]",
        &raw_backend(),
    );
    let resp = raw_get(&http, "/x", &[("X-Request-Id", "abc-123")]).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "ok");
    assert!(
        String::from_utf8_lossy(
            &raw_request(
                &http,
                b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )
            .unwrap()
        )
        .starts_with("HTTP/1.1 200 All Good\r\n"),
        "the backend's reason phrase is kept"
    );
    for h in ["x-private", "keep-alive", "proxy-authenticate"] {
        assert_eq!(resp.header(h), None, "{h} must not reach the client");
    }
    assert_eq!(resp.header("x-powered-by"), Some("raw"));
    assert_eq!(resp.header("x-served-by"), Some("edge"));
    assert_eq!(resp.header("x-request-id"), Some("abc-123"));
}

/// A backend that sends `103 Early Hints` before each answer.
fn early_hints_backend() -> String {
    socket_backend(|conn| {
        answer_every_head(
            conn,
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        )
    })
}

/// Rules' response headers and the request id go on the final answer only, as nginx's
/// `add_header` and HAProxy's `http-response` rules: an interim `1xx` passes as the backend
/// sent it (a `Cache-Control` or `Set-Cookie` meant for the page has no place on a hint).
#[test]
fn interim_responses_pass_without_the_rules_headers() {
    let (_r, http) = start(
        ", rules: [ { id: tag, response_headers: { set: { X-Served-By: edge } } } ]",
        &early_hints_backend(),
    );
    let raw = raw_request(
        &http,
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: hint-1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let (hint, answer) = text
        .split_once("\r\n\r\n")
        .expect("two heads: the hint's, then the answer's");
    assert!(
        hint.starts_with("http/1.1 103 "),
        "the 103 is passed on: {text}"
    );
    assert!(hint.contains("\r\nlink: </s.css>; rel=preload"), "{text}");
    assert!(
        !hint.contains("x-served-by"),
        "no rule header on the 103: {text}"
    );
    assert!(
        !hint.contains("x-request-id"),
        "no request id on the 103: {text}"
    );
    assert!(answer.starts_with("http/1.1 200 "), "{text}");
    assert!(answer.contains("\r\nx-served-by: edge\r\n"), "{text}");
    assert!(answer.contains("\r\nx-request-id: hint-1\r\n"), "{text}");
    assert!(answer.ends_with("\r\n\r\nok"), "{text}");
}

/// Heads nginx refuses and Pingora lets through: each would let the rules and the backend see
/// different requests. Absolute-form targets are routed on their authority and forwarded in
/// origin form.
#[test]
fn ambiguous_request_heads_are_refused() {
    let (up, other) = (Upstream::start("up"), Upstream::start("admin"));
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\n  adm: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: admin, hosts: [admin.test], pool: adm }}\n  - {{ name: site, hosts: [\"*\"], pool: app, rules: [{{ id: block, match: {{ path: /secret }}, respond: {{ status: 403 }} }}] }}\n",
        up.addr_string(),
        other.addr_string()
    );
    let _r = Rampart::start(&yaml);
    let status = |request: &str| {
        let out = raw_request(&http, request.as_bytes()).unwrap();
        RawResponse::parse(&out).map(|r| r.status)
    };
    for (request, want) in [
        ("GET secret HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
        ("GET *secret HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
        ("GET /a%00b HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost:\r\n\r\n", 400),
        (
            "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4, 4\r\n\r\nabcd",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (
            "OPTIONS * HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
            200,
        ),
        // `Connection` options are dropped on the way: naming Host or a forwarding header
        // would make the backend trust what the client sent, or lose the site's name.
        (
            "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close, X-Forwarded-For\r\n\r\n",
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close, Host\r\n\r\n",
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close, \"x-a\"\r\n\r\n",
            400,
        ),
    ] {
        assert_eq!(status(request), Some(want), "{request:?}");
    }
    // HTTP/1.0 may name the site in the target only: routed there, sent in origin form with
    // that Host.
    let out = raw_request(&http, b"GET http://admin.test/p HTTP/1.0\r\n\r\n").unwrap();
    let resp = RawResponse::parse(&out).unwrap();
    let e: Echo = serde_json::from_str(&resp.text()).unwrap();
    assert_eq!(e.upstream, "admin", "routed by the target's authority");
    assert_eq!(e.uri, "/p");
    assert_eq!(e.header("host"), Some("admin.test"));
    // HTTP/1.0 naming no site at all: the backend still gets a Host (its address).
    let out = raw_request(&http, b"GET /x HTTP/1.0\r\n\r\n").unwrap();
    let e: Echo = serde_json::from_str(&RawResponse::parse(&out).unwrap().text()).unwrap();
    assert_eq!(e.header("host"), Some(up.addr_string().as_str()));
}

/// TRACE would have the backend echo the request, cookies and credentials included, to the
/// script that sent it: refused with 405 and the methods allowed, as nginx does.
#[test]
fn trace_is_refused_with_the_methods_allowed() {
    let up = Upstream::start("up");
    let (_r, http) = start("", &up.addr_string());
    let out = raw_request(
        &http,
        b"TRACE /p HTTP/1.1\r\nHost: a.test\r\nCookie: session=secret\r\n\r\n",
    )
    .unwrap();
    let resp = RawResponse::parse(&out).unwrap();
    assert_eq!(resp.status, 405);
    assert_eq!(
        resp.header("allow"),
        Some("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
    );
    assert_eq!(resp.text(), "TRACE is not allowed\n");
    assert!(!resp.text().contains("secret"));
    assert!(resp.header("x-request-id").is_some());
    assert_eq!(up.hits(), 0, "the backend never saw it");
    // Every other method still goes through.
    assert_eq!(method_answer(&http, "OPTIONS").status, 200);
    assert_eq!(up.hits(), 1);
}

/// A method with lower-case letters (`delete`) is not the method a rule names (`DELETE`),
/// yet a backend may read it as that one: refused with 400, as nginx refuses it, so that no
/// rule matching methods can be passed by.
#[test]
fn a_method_in_lower_case_is_refused() {
    let up = Upstream::start("up");
    let (_r, http) = start("", &up.addr_string());
    for method in ["delete", "Get", "propfind"] {
        let resp = method_answer(&http, method);
        assert_eq!(resp.status, 400, "{method}");
        assert!(resp.text().contains("case-sensitive"), "{}", resp.text());
    }
    assert_eq!(up.hits(), 0, "the backend never saw them");
    assert_eq!(method_answer(&http, "PROPFIND").status, 200);
}

/// The answer to `METHOD /p` on `a.test`, on a connection of its own.
fn method_answer(http: &str, method: &str) -> RawResponse {
    let head = format!("{method} /p HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    RawResponse::parse(&raw_request(http, head.as_bytes()).unwrap()).unwrap()
}

/// Hop-by-hop request headers stay at the proxy; of the upgrades, only WebSocket's goes on
/// (asked for as RFC 9110 says: `Upgrade` listed in `Connection`).
#[test]
fn hop_by_hop_request_headers_and_other_upgrades_are_not_forwarded() {
    let up = Upstream::start("up");
    let (_r, http) = start("", &up.addr_string());
    let echo = |extra: &str| {
        let request = format!("GET /p HTTP/1.1\r\nHost: a.test\r\n{extra}\r\n");
        let out = raw_request(&http, request.as_bytes()).unwrap();
        let resp = RawResponse::parse(&out).expect("a response");
        assert_eq!(resp.status, 200, "{extra:?}: {}", resp.text());
        serde_json::from_str::<Echo>(&resp.text()).unwrap()
    };
    let e = echo("Connection: close, Upgrade, HTTP2-Settings, X-Hop\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nX-Hop: 1\r\nTrailer: X-Sum\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n");
    for h in [
        "connection",
        "upgrade",
        "http2-settings",
        "x-hop",
        "trailer",
        "proxy-connection",
    ] {
        assert_eq!(e.header(h), None, "{h} must not be forwarded");
    }
    assert_eq!(e.header("x-kept"), Some("yes"));
    // `Upgrade: websocket` that `Connection` does not list asks for nothing.
    let e = echo("Connection: close\r\nUpgrade: websocket\r\n");
    assert_eq!(e.header("upgrade"), None);
}

/// Requests a client pipelines on one connection are all answered, in order (Pingora alone
/// answered the first and closed the connection, dropping the others unlogged).
#[test]
fn pipelined_requests_are_answered_in_order() {
    let up = Upstream::start("up");
    let (_r, addr) = start("", &up.addr_string());
    let mut request = String::new();
    for i in 1..=3 {
        request.push_str(&format!("GET /p{i} HTTP/1.1\r\nHost: a.test\r\n\r\n"));
    }
    request.push_str("GET /p4 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    let out =
        String::from_utf8_lossy(&raw_request(&addr, request.as_bytes()).unwrap()).into_owned();
    let uris: Vec<&str> = out
        .match_indices("\"uri\":\"")
        .map(|(i, m)| {
            let rest = &out[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(uris, ["/p1", "/p2", "/p3", "/p4"], "{out}");
    assert_eq!(up.hits(), 4);
}

/// A backend speaking HTTP/1.0 with a body that ends with the connection: HTTP/1.1 clients get
/// an HTTP/1.1 answer (chunked, kept alive), HTTP/1.0 clients a body they can read (Pingora
/// chunked it for them too, which HTTP/1.0 does not know).
#[test]
fn http_1_0_backends_and_clients_get_bodies_they_can_read() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn
                .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close");
        }
    });
    let (_r, addr) = start("", &backend);
    let answer = |request: &[u8]| {
        String::from_utf8_lossy(&raw_request(&addr, request).unwrap()).into_owned()
    };
    let out = answer(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let resp = RawResponse::parse(out.as_bytes()).unwrap();
    assert_eq!(resp.text(), "body until close");
    let out = answer(b"GET / HTTP/1.0\r\nHost: a.test\r\n\r\n");
    assert!(
        !out.to_ascii_lowercase().contains("transfer-encoding"),
        "{out}"
    );
    assert!(out.ends_with("\r\n\r\nbody until close"), "{out}");
}

/// An HTTP/2 client may split its cookies into several fields; an HTTP/1.1 backend gets one
/// `Cookie` line, joined with `; ` (RFC 9113 §8.2.3), as from nginx.
#[test]
fn cookies_split_by_an_h2_client_reach_the_backend_as_one_line() {
    let ca = TestCa::new();
    let cert = ca.issue(&["site.test"]);
    let up = Upstream::start("up");
    let (_r, addr) = Rampart::start_tls_site(&cert, "", &up);
    let c = h2_client_blocking(&ca, &[("site.test", addr)]);
    let resp = c
        .get(format!("https://site.test:{}/c", addr.port()))
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .send()
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let echo: Echo = resp.json().unwrap();
    assert_eq!(
        echo.headers.get("cookie").cloned(),
        Some(vec!["a=1; b=2".to_string()])
    );
}

/// A dual-stack `[::]` listener sees IPv4 clients as `::ffff:127.0.0.1`: the backend gets
/// `127.0.0.1`, as from nginx. Runs where the machine has dual-stack IPv6 sockets (Linux's
/// default), and says so where it has not.
#[test]
fn ipv4_clients_of_a_dual_stack_listener_are_forwarded_as_ipv4() {
    let Ok(probe) = std::net::TcpListener::bind("[::]:0") else {
        eprintln!("no IPv6 on this machine: dual-stack forwarding not tested");
        return;
    };
    let port = probe.local_addr().unwrap().port();
    if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        eprintln!("IPv6 sockets are not dual-stack here: dual-stack forwarding not tested");
        return;
    }
    drop(probe);
    let up = Upstream::start("up");
    let yaml = format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"[::]:{port}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app, rules: [{{ id: ip, request_headers: {{ set: {{ X-Client: \"{{client_ip}}\" }} }} }}] }}\n",
        free_addr(),
        up.addr_string()
    );
    let _r = Rampart::start(&yaml);
    let e = get_echo(&format!("http://127.0.0.1:{port}/x"), "a.test");
    assert_eq!(e.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(e.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(
        e.header("x-client"),
        Some("127.0.0.1"),
        "rules' {{client_ip}}"
    );
}

/// A backend that answers `101 Switching Protocols` to every request, asked or not, then
/// keeps the connection open without a byte more (until the client closes).
fn unsolicited_switch_backend() -> String {
    socket_backend(|conn| {
        answer_every_head(
            conn,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        )
    })
}

/// A backend may switch protocols only when asked to (RFC 9110 §15.2.2); otherwise the client
/// would get a 101 it cannot use and wait on a connection that says nothing more.
#[test]
fn a_101_the_client_did_not_ask_for_is_a_502() {
    let (r, http) = start("", &unsolicited_switch_backend());
    let began = std::time::Instant::now();
    let resp = raw_get(&http, "/plain", &[]).unwrap();
    assert_eq!(resp.status, 502, "{:?}", resp.text());
    assert!(began.elapsed() < Duration::from_secs(5));
    r.wait_for_log(
        "GET /plain answered 502 after 1 try: backend 127.0.0.1:",
        Duration::from_secs(5),
    );
    r.wait_for_log(
        "answered 101 Switching Protocols to a request that asked for no upgrade",
        Duration::from_secs(5),
    );
}

/// `hello, compressed world`, gzipped.
const GZIPPED: &[u8] = &[
    31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 203, 72, 205, 201, 201, 215, 81, 72, 206, 207, 45, 40, 74, 45,
    46, 78, 77, 81, 40, 207, 47, 202, 73, 1, 0, 8, 158, 52, 53, 23, 0, 0, 0,
];

/// Answers `/gz` with [`GZIPPED`] as `Content-Encoding: gzip`, anything else with plain text,
/// both with a `Content-Length`, and echoes the `Accept-Encoding` it received.
fn encoding_backend(mut conn: std::net::TcpStream) {
    use std::io::Write;
    let Ok(head) = read_head(&mut conn) else {
        return;
    };
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let accepted = head
        .lines()
        .find_map(|l| l.strip_prefix("accept-encoding:"))
        .map_or("", str::trim)
        .to_string();
    let (encoding, body): (&str, &[u8]) = if head.starts_with("get /gz ") {
        ("Content-Encoding: gzip\r\n", GZIPPED)
    } else {
        (
            "",
            b"plain text, long enough to be worth compressing if one wanted to",
        )
    };
    let _ = conn.write_all(
        format!(
            "HTTP/1.1 200 OK\r\n{encoding}Content-Length: {}\r\nContent-Type: text/plain\r\nX-Seen-Accept-Encoding: {accepted}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let _ = conn.write_all(body);
}

#[test]
fn bodies_pass_through_as_the_backend_encoded_them() {
    let (_r, http) = start("", &socket_backend(encoding_backend));
    let accept = [("Accept-Encoding", "gzip, br")];

    let gz = raw_get(&http, "/gz", &accept).unwrap();
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("x-seen-accept-encoding"), Some("gzip, br"));
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("content-length"), Some("43"));
    assert_eq!(gz.header("transfer-encoding"), None);
    assert_eq!(gz.body, GZIPPED, "the backend's gzip bytes, untouched");

    let plain = raw_get(&http, "/plain", &accept).unwrap();
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-encoding"),
        None,
        "Rampart compresses nothing"
    );
    assert_eq!(plain.header("transfer-encoding"), None);
    assert_eq!(
        plain.text(),
        "plain text, long enough to be worth compressing if one wanted to"
    );
}
