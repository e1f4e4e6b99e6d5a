//! `projects.*.max_body_size` (nginx: `client_max_body_size`): a request body larger than it
//! is answered `413` and not forwarded when its length is announced, and cut at the limit
//! when it is not (chunked, HTTP/2). Rules' own answers are not concerned, nor projects
//! without the setting.

mod common;
use common::*;
use std::time::Duration;

fn config(
    http: &str,
    log: &std::path::Path,
    up: &Upstream,
    https: Option<(&str, &CertFiles)>,
) -> String {
    let tls_listener = https.map_or(String::new(), |(addr, cert)| {
        format!(
            "  https: {{ address: \"{addr}\", tls: {{ cert: \"{}\", key: \"{}\" }} }}\n",
            cert.cert(),
            cert.key()
        )
    });
    format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: {}, format: \"{{method}} {{uri}} {{status}} {{project}}\" }}\nlisteners:\n  http: {{ address: \"{http}\" }}\n{tls_listener}pools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - name: uploads\n    hosts: [up.test]\n    pool: app\n    max_body_size: 1KiB\n    rules:\n      - {{ id: moved, match: {{ path: /old }}, redirect: {{ to: /new, status: 301 }} }}\n  - {{ name: other, hosts: [\"*\"], pool: app }}\n",
        free_addr(),
        log.display(),
        up.addr_string()
    )
}

/// A POST to `path` on `host`, with its length announced.
fn post_to(http: &str, host: &str, path: &str, body: Vec<u8>) -> reqwest::blocking::Response {
    client()
        .post(format!("http://{http}{path}"))
        .header("host", host)
        .body(body)
        .send()
        .unwrap()
}

/// A POST of `body` to `path` on `up.test`, with its length announced.
fn post(http: &str, path: &str, body: Vec<u8>) -> reqwest::blocking::Response {
    post_to(http, "up.test", path, body)
}

/// A body of `len` bytes whose length is not announced (chunked; no content-length in HTTP/2).
fn unannounced(len: usize) -> reqwest::blocking::Body {
    reqwest::blocking::Body::new(std::io::Cursor::new(vec![b'c'; len]))
}

#[test]
fn a_body_over_max_body_size_gets_413_and_is_not_forwarded() {
    let up = Upstream::start("up");
    let http = free_addr();
    let (r, log) = Rampart::start_logging(|log| config(&http, log, &up, None));

    // At the limit: forwarded whole.
    let ok = post(&http, "/form", vec![b'a'; 1024]);
    assert_eq!(ok.status(), 200);
    let echo: Echo = ok.json().unwrap();
    assert_eq!(echo.body.len(), 1024);

    // One byte over, announced: 413 at once, the connection closed, the backend not asked.
    let refused = post(&http, "/form", vec![b'a'; 1025]);
    assert_eq!(refused.status(), 413);
    assert_eq!(
        refused
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap()),
        Some("close")
    );
    assert_eq!(
        refused.text().unwrap(),
        "Content Too Large: the request body is larger than this site accepts\n"
    );
    assert_eq!(up.hits(), 1);

    // A client waiting on `Expect: 100-continue` is told 413 before it sends the body.
    let got = raw_request(
        &http,
        b"PUT /big HTTP/1.1\r\nHost: up.test\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        RawResponse::parse(&got).map(|a| a.status),
        Some(413),
        "{got:?}"
    );

    // Not announced (chunked): cut where it passes the limit, answered 413.
    let stream = |len| {
        client()
            .post(format!("http://{http}/stream"))
            .header("host", "up.test")
            .body(unannounced(len))
            .send()
            .unwrap()
    };
    let cut = stream(5000);
    assert_eq!(cut.status(), 413);
    assert_eq!(
        cut.text().unwrap(),
        "Content Too Large: the request body is larger than this site accepts\n"
    );
    let small = stream(500);
    assert_eq!(small.status(), 200);
    assert_eq!(small.json::<Echo>().unwrap().body.len(), 500);

    // A rule's answer is given whatever the body; another project has no limit.
    assert_eq!(post(&http, "/old", vec![b'a'; 5000]).status(), 301);
    assert_eq!(
        post_to(&http, "elsewhere.test", "/form", vec![b'a'; 5000]).status(),
        200
    );

    assert_eq!(
        r.metric("rampart_requests_total{code=\"413\",project=\"uploads\"}"),
        Some(3.0)
    );
    assert_logged(
        &log,
        7,
        &[
            "POST /form 200 uploads",
            "POST /form 413 uploads",
            "PUT /big 413 uploads",
            "POST /stream 413 uploads",
            "POST /stream 200 uploads",
            "POST /old 301 uploads",
            "POST /form 200 other",
        ],
    );
    r.wait_for_log(
        "project uploads: POST /form: request body of 1025 bytes is larger than max_body_size (1024); answered 413",
        Duration::from_secs(5),
    );
}

/// HTTP/2 bodies are held to it too, with or without `content-length`.
#[test]
fn http2_bodies_are_held_to_max_body_size() {
    let ca = TestCa::new();
    let cert = ca.issue(&["up.test"]);
    let up = Upstream::start("up");
    let https = free_addr();
    let (_r, _log) =
        Rampart::start_logging(|log| config(&free_addr(), log, &up, Some((&https, &cert))));
    let addr: std::net::SocketAddr = https.parse().unwrap();
    let h2 = h2_client_blocking(&ca, &[("up.test", addr)]);
    let url = format!("https://up.test:{}/h2", addr.port());
    let announced = h2.post(&url).body(vec![b'a'; 5000]).send().unwrap();
    assert_eq!(announced.version(), reqwest::Version::HTTP_2);
    assert_eq!(announced.status(), 413);
    let streamed = h2.post(&url).body(unannounced(5000)).send().unwrap();
    assert_eq!(streamed.status(), 413);
    let fits = h2.post(&url).body(vec![b'a'; 1000]).send().unwrap();
    assert_eq!(fits.status(), 200);
    assert_eq!(fits.json::<Echo>().unwrap().body.len(), 1000);
}
