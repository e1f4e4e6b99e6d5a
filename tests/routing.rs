//! Projects are chosen by listener + Host (exact, wildcard, catch-all); TLS certificates by
//! SNI; h2 is offered over ALPN; an unknown host gets 421.

mod common;
use common::*;

fn served_cert(resp: &reqwest::blocking::Response) -> Vec<u8> {
    served_cert_der(resp).expect("TLS info")
}

#[test]
fn host_routing_sni_certificates_and_h2() {
    let ca = TestCa::new();
    let default_cert = ca.issue(&["default.test"]);
    let shop_cert = ca.issue(&["shop.test", "*.shop.test"]);
    let blog_cert = ca.issue(&["blog.test"]);
    let shop = Upstream::start("shop");
    let blog = Upstream::start("blog");
    let other = Upstream::start("other");
    let (http, https, admin) = (free_addr(), free_addr(), free_addr());
    let yaml = format!(
        r#"
server: {{ threads: 2 }}
admin: {{ listen: "{admin}" }}
access_log: {{ target: off }}
listeners:
  http: {{ address: "{http}" }}
  https: {{ address: "{https}", tls: {{ cert: "{dc}", key: "{dk}", http2: true }} }}
pools:
  shop: {{ backends: ["{shop}"] }}
  blog: {{ backends: ["{blog}"] }}
  other: {{ backends: ["{other}"] }}
projects:
  - {{ name: shop, hosts: [shop.test, "*.shop.test"], pool: shop, tls: {{ cert: "{sc}", key: "{sk}" }} }}
  - {{ name: blog, hosts: [blog.test], pool: blog, listeners: [https], tls: {{ cert: "{bc}", key: "{bk}" }} }}
  - {{ name: other, hosts: ["*.test"], pool: other, listeners: [http] }}
"#,
        dc = default_cert.cert(),
        dk = default_cert.key(),
        sc = shop_cert.cert(),
        sk = shop_cert.key(),
        bc = blog_cert.cert(),
        bk = blog_cert.key(),
        shop = shop.addr_string(),
        blog = blog.addr_string(),
        other = other.addr_string(),
    );
    let _rampart = Rampart::start(&yaml);

    // Plain HTTP: exact, wildcard (any depth), port and case ignored, catch-all per listener.
    let base = format!("http://{http}");
    assert_eq!(get_echo(&format!("{base}/a"), "shop.test").upstream, "shop");
    assert_eq!(
        get_echo(&format!("{base}/a"), "SHOP.test:8080").upstream,
        "shop"
    );
    assert_eq!(
        get_echo(&format!("{base}/a"), "eu.www.shop.test").upstream,
        "shop"
    );
    // A name longer than the inline size, with a trailing dot.
    assert_eq!(
        get_echo(
            &format!("{base}/a"),
            "A-Long-Subdomain.EU.WWW.Shop.Test.:8080"
        )
        .upstream,
        "shop"
    );
    assert_eq!(
        get_echo(&format!("{base}/a"), "news.test").upstream,
        "other"
    );
    // blog is only on https: on http, blog.test falls to the *.test project.
    assert_eq!(
        get_echo(&format!("{base}/a"), "blog.test").upstream,
        "other"
    );
    let r = get(&format!("{base}/a"), "unknown.example");
    assert_eq!(r.status(), 421);
    assert!(r.headers().contains_key("x-request-id"));

    // HTTPS: each project's certificate by SNI, the default one otherwise, h2 negotiated.
    let https_addr: std::net::SocketAddr = https.parse().unwrap();
    let c = https_client_blocking(
        &ca,
        &[
            ("shop.test", https_addr),
            ("www.shop.test", https_addr),
            ("blog.test", https_addr),
            ("default.test", https_addr),
            ("news.test", https_addr),
        ],
    );
    let port = https_addr.port();
    let r = c.get(format!("https://shop.test:{port}/x")).send().unwrap();
    assert_eq!(served_cert(&r), shop_cert.cert_der);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let echo: Echo = r.json().unwrap();
    assert_eq!(echo.upstream, "shop");
    assert_eq!(echo.header("x-forwarded-proto"), Some("https"));
    let r = c
        .get(format!("https://www.shop.test:{port}/x"))
        .send()
        .unwrap();
    assert_eq!(
        served_cert(&r),
        shop_cert.cert_der,
        "wildcard host gets the project's certificate"
    );
    let r = c.get(format!("https://blog.test:{port}/x")).send().unwrap();
    assert_eq!(served_cert(&r), blog_cert.cert_der);
    assert_eq!(r.json::<Echo>().unwrap().upstream, "blog");
    // No project for news.test on https: the default certificate, then 421.
    let r = c
        .get(format!("https://default.test:{port}/x"))
        .send()
        .unwrap();
    assert_eq!(served_cert(&r), default_cert.cert_der);
    assert_eq!(r.status(), 421);
    assert_eq!(shop.hits() + blog.hits() + other.hits(), 9);
}

/// Operators alert on the certificates actually served (a renewed file that was not reloaded
/// still expires): `/metrics` gives each file's end, the earliest of its chain, and `/status`
/// lists the files with what they are served for.
#[test]
fn served_certificates_and_their_expiry_are_reported() {
    // The default certificate's issuer, in its file, ends first; an unrelated certificate
    // that ended long ago follows it, as an old cross-sign in a `fullchain.pem` does: clients
    // do without it, so it does not count.
    let intermediate = TestCa::until((2029, 3, 4));
    let default_cert = intermediate.issue_until(&["default.test"], (2031, 5, 17));
    let old_cross_sign = TestCa::new().issue_until(&["old-root.test"], (2021, 9, 30));
    let ca = TestCa::new();
    let shop_cert = ca.issue_until(&["shop.test", "*.shop.test"], (2030, 2, 1));
    let unused = ca.issue(&["unused.test"]);
    let ancient = ca.issue_until(&["ancient.test"], (1960, 6, 1));
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("default-chain.pem");
    std::fs::write(
        &chain,
        default_cert.cert_pem.clone() + &intermediate.ca_pem() + &old_cross_sign.cert_pem,
    )
    .unwrap();
    // The same file spelled another way is the same certificate.
    let shop_again = shop_cert
        .cert_path
        .parent()
        .unwrap()
        .join(".")
        .join("cert.pem");
    let up = Upstream::start("app");
    let (https, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  https: {{ address: \"{https}\", tls: {{ cert: \"{}\", key: \"{}\" }} }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: shop, hosts: [shop.test], pool: app, tls: {{ cert: \"{sc}\", key: \"{sk}\" }} }}\n  - {{ name: shop-eu, hosts: [eu.shop.test], pool: app, tls: {{ cert: \"{}\", key: \"{sk}\" }} }}\n  - {{ name: other, hosts: [\"*\"], pool: app, tls: {{ cert: \"{}\", key: \"{}\" }} }}\n  - {{ name: ancient, hosts: [ancient.test], pool: app, tls: {{ cert: \"{}\", key: \"{}\" }} }}\n",
        chain.display(),
        default_cert.key(),
        up.addr_string(),
        shop_again.display(),
        // Never presented: `*` gets the listener's default certificate.
        unused.cert(),
        unused.key(),
        ancient.cert(),
        ancient.key(),
        sc = shop_cert.cert(),
        sk = shop_cert.key(),
    );
    let rampart = Rampart::start(&yaml);
    let midnight = |y: i32, m: u32, d: u32| {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp() as f64
    };
    let expiry = |file: &str| {
        rampart.metric(&format!(
            "rampart_tls_certificate_expiry_timestamp_seconds{{cert=\"{file}\",listener=\"https\"}}"
        ))
    };
    assert_eq!(
        expiry(&chain.display().to_string()),
        Some(midnight(2029, 3, 4))
    );
    assert_eq!(expiry(&shop_cert.cert()), Some(midnight(2030, 2, 1)));

    let status = rampart.status();
    let certs = status["certificates"].as_array().unwrap();
    // Ended before 1970: negative times, not 1970 or a failure.
    assert_eq!(expiry(&ancient.cert()), Some(midnight(1960, 6, 1)));
    let old = certs
        .iter()
        .find(|c| c["served_for"][0] == "ancient")
        .unwrap();
    assert_eq!(old["expires"], "1960-06-01T00:00:00.000Z");
    assert!(old["days_left"].as_i64().unwrap() < -20_000, "{old}");
    assert_eq!(
        certs.len(),
        3,
        "one entry per file, none for a certificate never presented: {certs:?}"
    );
    let shop = certs
        .iter()
        .find(|c| c["file"] == shop_cert.cert().as_str())
        .unwrap();
    assert_eq!(shop["listener"], "https");
    assert_eq!(shop["served_for"], serde_json::json!(["shop", "shop-eu"]));
    assert_eq!(
        shop["names"],
        serde_json::json!(["shop.test", "*.shop.test"])
    );
    assert_eq!(shop["expires"], "2030-02-01T00:00:00.000Z");
    let now = status["now_ms"].as_f64().unwrap() / 1000.0;
    let days_left = (midnight(2030, 2, 1) - now) / 86_400.0;
    assert_eq!(shop["days_left"].as_f64(), Some(days_left.floor()));
    let default = certs
        .iter()
        .find(|c| c["served_for"][0] == "default")
        .unwrap();
    assert_eq!(default["names"], serde_json::json!(["default.test"]));
    assert_eq!(
        default["expires_ms"].as_f64(),
        Some(midnight(2029, 3, 4) * 1000.0)
    );
}

#[test]
fn tls_min_version_1_3_refuses_tls_1_2() {
    let ca = TestCa::new();
    let cert = ca.issue(&["site.test"]);
    let up = Upstream::start("up");
    let (https, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  https: {{ address: \"{https}\", tls: {{ cert: \"{}\", key: \"{}\", min_version: \"1.3\" }} }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        cert.cert(),
        cert.key(),
        up.addr_string()
    );
    let _r = Rampart::start(&yaml);
    let addr: std::net::SocketAddr = https.parse().unwrap();
    let base = || https_builder_blocking(&ca, &[("site.test", addr)]);
    let url = format!("https://site.test:{}/", addr.port());
    let ok = base()
        .min_tls_version(reqwest::tls::Version::TLS_1_3)
        .build()
        .unwrap()
        .get(&url)
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    let old = base()
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap()
        .get(&url)
        .send();
    assert!(old.is_err(), "a TLS 1.2 client must be refused");
}

/// A listener with `http2: false` answers ALPN with `http/1.1` when the client offers it, as
/// nginx does (no answer at all left strict clients guessing), and still none to a client
/// offering h2 alone; with `http2: true`, h2 is chosen.
#[test]
fn alpn_is_answered_with_what_the_listener_speaks() {
    let ca = TestCa::new();
    let cert = ca.issue(&["site.test"]);
    let up = Upstream::start("up");
    let (h1, h2, admin) = (free_addr(), free_addr(), free_addr());
    let tls = |http2: bool| {
        format!(
            "tls: {{ cert: \"{}\", key: \"{}\", http2: {http2} }}",
            cert.cert(),
            cert.key()
        )
    };
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  h1: {{ address: \"{h1}\", {} }}\n  h2: {{ address: \"{h2}\", {} }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        tls(false),
        tls(true),
        up.addr_string()
    );
    let _r = Rampart::start(&yaml);
    let alpn = |addr: &str, offered: &[&[u8]]| {
        runtime().block_on(async {
            let tls = tls_connect(&ca, addr, "site.test", offered).await;
            tls.get_ref().1.alpn_protocol().map(|p| p.to_vec())
        })
    };
    let both: &[&[u8]] = &[b"h2", b"http/1.1"];
    assert_eq!(alpn(&h1, both), Some(b"http/1.1".to_vec()));
    assert_eq!(alpn(&h1, &[b"h2"]), None);
    assert_eq!(alpn(&h2, both), Some(b"h2".to_vec()));
}
