//! `compression`: a project's answers compressed for clients that accept it (zstd or gzip;
//! not brotli), with `Vary: Accept-Encoding`; left alone for clients that do not, for `HEAD`, for a
//! `206`, for `Cache-Control: no-transform` and in projects without it. An HTTP/1.0 client gets
//! the compressed body delimited by the connection's end.

mod common;
use common::*;
use std::io::Read;

fn decoded(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .map(drop),
        "zstd" => zstd::stream::read::Decoder::new(body)
            .unwrap()
            .read_to_end(&mut out)
            .map(drop),
        other => panic!("{other}"),
    }
    .unwrap_or_else(|e| panic!("{encoding}: {e}"));
    out
}

fn get_as(base: &str, host: &str, path: &str, accept: Option<&str>) -> reqwest::blocking::Response {
    let mut request = client().get(format!("{base}{path}")).header("host", host);
    if let Some(accept) = accept {
        request = request.header("accept-encoding", accept);
    }
    request.send().unwrap()
}

#[test]
fn answers_are_compressed_for_clients_that_accept_it() {
    let up = Upstream::start("up");
    let http = free_addr();
    let _r = Rampart::start(&format!(
        r#"admin: {{ listen: "{}" }}
access_log: {{ target: off }}
listeners:
  http: {{ address: "{http}" }}
pools:
  app: {{ backends: ["{}"] }}
projects:
  - name: zip
    hosts: [zip.test]
    pool: app
    compression: {{ level: 5 }}
    rules:
      - {{ id: nt, match: {{ path: /no-transform }}, response_headers: {{ set: {{ Cache-Control: no-transform }} }} }}
  - {{ name: plain, hosts: [plain.test], pool: app }}
"#,
        free_addr(),
        up.addr_string()
    ));
    let base = format!("http://{http}");
    for (accept, encoding) in [
        ("gzip, deflate, br", "gzip"),
        ("br;q=1.0, gzip;q=0.8", "gzip"),
        ("gzip, deflate, br, zstd", "zstd"),
    ] {
        let answer = get_as(&base, "zip.test", "/page", Some(accept));
        assert_eq!(answer.status(), 200);
        let headers = answer.headers().clone();
        assert_eq!(
            headers["content-encoding"], encoding,
            "{accept}: {headers:?}"
        );
        assert_eq!(headers["vary"], "accept-encoding", "{headers:?}");
        assert!(!headers.contains_key("content-length"), "{headers:?}");
        let body = answer.bytes().unwrap();
        let echo: Echo = serde_json::from_slice(&decoded(encoding, &body)).unwrap();
        assert_eq!(echo.uri, "/page");
    }

    // Left alone: no Accept-Encoding, HEAD, a 206, no-transform, a project without it.
    let identity = get_as(&base, "zip.test", "/page", None);
    assert!(!identity.headers().contains_key("content-encoding"));
    assert!(identity.headers().contains_key("content-length"));
    serde_json::from_slice::<Echo>(&identity.bytes().unwrap()).unwrap();
    let head = client()
        .head(format!("{base}/page"))
        .header("host", "zip.test")
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(!head.headers().contains_key("content-encoding"));
    for (host, path) in [
        ("zip.test", "/status/206"),
        ("zip.test", "/no-transform"),
        ("plain.test", "/page"),
    ] {
        let answer = get_as(&base, host, path, Some("gzip"));
        assert!(
            !answer.headers().contains_key("content-encoding"),
            "{host}{path}: {:?}",
            answer.headers()
        );
        serde_json::from_slice::<Echo>(&answer.bytes().unwrap()).unwrap();
    }

    // HTTP/1.0 cannot read chunks: the compressed body ends with the connection.
    let raw = raw_request(
        &http,
        b"GET /old HTTP/1.0\r\nHost: zip.test\r\nAccept-Encoding: gzip\r\n\r\n",
    )
    .unwrap();
    let answer = RawResponse::parse(&raw).unwrap();
    assert_eq!(
        answer.header("content-encoding"),
        Some("gzip"),
        "{answer:?}"
    );
    assert_eq!(answer.header("transfer-encoding"), None, "{answer:?}");
    let echo: Echo = serde_json::from_slice(&decoded("gzip", &answer.body)).unwrap();
    assert_eq!(echo.uri, "/old");
}
