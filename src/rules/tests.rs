//! Rule semantics through YAML rule sets: conditions, actions, priorities and conflicts,
//! templates, path normalization and fail-open. Every evaluation also checks that the indexed
//! and the reference evaluation agree (`Req::eval`).

use crate::rules::testutil::{req, rules};
use crate::rules::{HeaderOp, Outcome, Plan};
use http::{HeaderName, HeaderValue};

fn location(p: &Plan) -> (u16, &str) {
    match &p.outcome {
        Outcome::Redirect { status, location } => (*status, location.to_str().unwrap()),
        other => panic!("not a redirect: {other:?}"),
    }
}

fn hset(name: &'static str, value: &str) -> HeaderOp {
    HeaderOp::Set(
        HeaderName::from_static(name),
        HeaderValue::from_str(value).unwrap(),
    )
}

fn hadd(name: &'static str, value: &str) -> HeaderOp {
    HeaderOp::Add(
        HeaderName::from_static(name),
        HeaderValue::from_str(value).unwrap(),
    )
}

fn hremove(name: &'static str) -> HeaderOp {
    HeaderOp::Remove(HeaderName::from_static(name))
}

#[test]
fn path_conditions() {
    let set = rules(
        r"
- {id: exact, match: {path: /old}}
- {id: prefix, match: {path_prefix: /blog/}}
- {id: regex, match: {path_regex: '^/p/[0-9]+$'}}
- {id: ci, match: {path: /About, case_insensitive: true}}
- {id: ci-prefix, match: {path_prefix: /Docs/, case_insensitive: true}}
- {id: ci-regex, match: {path_regex: '^/img/[a-z]+$', case_insensitive: true}}
",
    );
    let cases: [(&str, &[&str]); 12] = [
        ("/old", &["exact"]),
        ("/old/", &[]),
        ("/OLD", &[]),
        ("/blog/x", &["prefix"]),
        ("/blog", &[]),
        ("/p/12", &["regex"]),
        ("/p/12a", &[]),
        ("/about", &["ci"]),
        ("/ABOUT", &["ci"]),
        ("/docs/x", &["ci-prefix"]),
        ("/IMG/PNG", &["ci-regex"]),
        ("/img/1", &[]),
    ];
    for (path, want) in cases {
        assert_eq!(req(path).ids(&set), want.to_vec(), "{path}");
    }
}

#[test]
fn request_conditions() {
    let set = rules(
        r#"
- {id: host, match: {host: www.shop.test}}
- {id: wild, match: {host: "*.shop.test"}}
- {id: methods, match: {methods: [post, PUT]}}
- {id: scheme, match: {scheme: http}}
- {id: query, match: {query: {ref: "*", utm_source: news letter}}}
- {id: headers, match: {headers: {User-Agent: "~(?i)bot", X-Beta: "*", X-Env: prod}}}
- {id: not-headers, match: {not_headers: [Cookie]}}
- {id: ip, match: {client_ip: [10.0.0.0/8, "2001:db8::/32", 192.0.2.7]}}
"#,
    );
    let base = || req("/").header("cookie", "c").ip(Some("203.0.113.1"));
    assert!(base().ids(&set).is_empty());
    assert_eq!(base().host("www.shop.test").ids(&set), ["host", "wild"]);
    assert_eq!(base().host("a.b.shop.test").ids(&set), ["wild"]);
    assert!(
        base().host("shop.test").ids(&set).is_empty(),
        "*.x does not match x itself"
    );
    assert!(base().host("evilshop.test").ids(&set).is_empty());
    assert_eq!(base().method("POST").ids(&set), ["methods"]);
    assert_eq!(base().method("put").ids(&set), ["methods"]);
    assert!(base().method("GET").ids(&set).is_empty());
    assert_eq!(base().scheme("http").ids(&set), ["scheme"]);
    let q = |query: &str| {
        let mut r = base();
        r.query = Some(query.to_string());
        r.ids(&set)
    };
    assert_eq!(q("ref&utm_source=news+letter"), ["query"]);
    assert_eq!(q("ref=x&utm_source=news%20letter"), ["query"]);
    assert!(q("utm_source=news+letter").is_empty(), "ref is missing");
    assert!(q("ref&utm_source=newsletter").is_empty());
    let h = |ua: &str, beta: bool, env: &str| {
        let mut r = base().header("user-agent", ua).header("x-env", env);
        if beta {
            r = r.header("x-beta", "");
        }
        r.ids(&set)
    };
    assert_eq!(h("Googlebot/2.1", true, "prod"), ["headers"]);
    assert!(h("Mozilla", true, "prod").is_empty());
    assert!(h("Googlebot", false, "prod").is_empty());
    assert!(
        h("Googlebot", true, "Prod").is_empty(),
        "exact values are case-sensitive"
    );
    assert_eq!(req("/").ip(None).ids(&set), ["not-headers"]);
    for ip in ["10.9.8.7", "2001:db8::5", "192.0.2.7", "::ffff:10.0.0.1"] {
        assert_eq!(base().ip(Some(ip)).ids(&set), ["ip"], "{ip}");
    }
    assert!(base().ip(Some("192.0.2.8")).ids(&set).is_empty());
    assert!(base().ip(None).ids(&set).is_empty());
}

#[test]
fn all_conditions_of_a_rule_must_hold() {
    let set = rules(
        "- {id: r, match: {path_prefix: /api/, methods: [GET], host: shop.test, scheme: https}}",
    );
    assert_eq!(req("/api/x").ids(&set), ["r"]);
    assert!(req("/api/x").method("POST").ids(&set).is_empty());
    assert!(req("/api/x").scheme("http").ids(&set).is_empty());
    assert!(req("/web/x").ids(&set).is_empty());
}

#[test]
fn actions() {
    let set = rules(
        r#"
- {id: moved, match: {path: /old}, redirect: {to: /new}}
- {id: found, match: {path: /tmp}, redirect: {to: "https://x.test/t", status: 302, keep_query: false}}
- id: deny
  match: {path: /deny}
  respond: {status: 403, body: "Forbidden {path}\n", headers: {Retry-After: "120", X-Id: "{request_id}"}}
- {id: teapot, match: {path: /tea}, respond: {status: 418, body: "<b>no</b>", content_type: text/html}}
- {id: rw, match: {path_prefix: /api/}, rewrite: {path: "/v2/{rest}"}, pool: api}
- {id: rwq, match: {path: /search}, rewrite: {query: "q={query}&src=rampart"}}
- {id: rwp, match: {path: /drop}, rewrite: {path: /dropped, query: ""}}
- id: hdr
  match: {path: /h}
  request_headers: {set: {X-Env: prod}, add: {X-Tag: a}, remove: [X-Debug]}
  response_headers: {set: {Strict-Transport-Security: "max-age=63072000"}, remove: [Server]}
- {id: nothing, match: {path: /n}}
"#,
    );
    let p = req("/old?a=1").eval(&set);
    assert_eq!((location(&p), p.matched.len()), ((301, "/new?a=1"), 1));
    assert_eq!(
        location(&req("/tmp?a=1").eval(&set)),
        (302, "https://x.test/t")
    );
    match req("/deny").eval(&set).outcome {
        Outcome::Respond {
            status,
            body,
            content_type,
            headers,
        } => {
            assert_eq!((status, &body[..]), (403, &b"Forbidden /deny\n"[..]));
            assert_eq!(content_type, "text/plain; charset=utf-8");
            assert_eq!(
                headers,
                [
                    (
                        HeaderName::from_static("retry-after"),
                        "120".parse().unwrap()
                    ),
                    (HeaderName::from_static("x-id"), "rid-1".parse().unwrap())
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    match req("/tea").eval(&set).outcome {
        Outcome::Respond {
            status,
            body,
            content_type,
            ..
        } => assert_eq!(
            (status, &body[..], content_type.to_str().unwrap()),
            (418, &b"<b>no</b>"[..], "text/html")
        ),
        other => panic!("{other:?}"),
    }
    let p = req("/api/users?id=7").eval(&set);
    assert_eq!(
        (p.rewrite.as_deref(), p.pool.as_deref(), &p.outcome),
        (Some("/v2/users?id=7"), Some("api"), &Outcome::Forward)
    );
    assert_eq!(
        req("/search?x=1").eval(&set).rewrite.as_deref(),
        Some("/search?q=x=1&src=rampart")
    );
    assert_eq!(
        req("/drop?x=1").eval(&set).rewrite.as_deref(),
        Some("/dropped")
    );
    let p = req("/h").eval(&set);
    assert_eq!(
        p.request_headers,
        [
            hremove("x-debug"),
            hset("x-env", "prod"),
            hadd("x-tag", "a")
        ]
    );
    assert_eq!(
        p.response_headers,
        [
            hremove("server"),
            hset("strict-transport-security", "max-age=63072000")
        ]
    );
    let p = req("/n").eval(&set);
    assert_eq!((p.matched.len(), p.is_noop()), (1, true));
    assert!(req("/elsewhere").eval(&set) == Plan::default());
}

#[test]
fn priority_and_conflicts() {
    let set = rules(
        r"
- {id: low, match: {path_prefix: /}, request_headers: {set: {X-Who: low, X-Low: '1'}}, rewrite: {path: /low}, pool: low}
- {id: high, priority: 10, match: {path_prefix: /}, request_headers: {set: {x-who: high}}, rewrite: {path: /high}, pool: high}
- {id: mid, priority: 5, match: {path_prefix: /}, request_headers: {remove: [X-Low]}, response_headers: {add: {X-Mid: m}}}
- {id: first-of-equal, priority: 5, match: {path: /eq}, pool: eq1}
- {id: second-of-equal, priority: 5, match: {path: /eq}, pool: eq2}
",
    );
    let p = req("/a").eval(&set);
    assert_eq!(
        p.matched.iter().map(|s| &**s).collect::<Vec<_>>(),
        ["high", "mid", "low"]
    );
    assert_eq!(
        (p.rewrite.as_deref(), p.pool.as_deref()),
        (Some("/high"), Some("high"))
    );
    assert_eq!(
        p.request_headers,
        [hset("x-who", "high"), hremove("x-low")],
        "the first rule touching a name owns it"
    );
    assert_eq!(p.response_headers, [hadd("x-mid", "m")]);
    let p = req("/eq").eval(&set);
    assert_eq!(
        p.matched.iter().map(|s| &**s).collect::<Vec<_>>(),
        ["high", "mid", "first-of-equal", "second-of-equal", "low"]
    );
    assert_eq!(p.pool.as_deref(), Some("high"));
}

#[test]
fn redirect_respond_and_stop_end_evaluation() {
    let set = rules(
        r"
- {id: headers, priority: 9, match: {path_prefix: /}, response_headers: {set: {X-Frame-Options: DENY}}}
- {id: stopper, priority: 8, match: {path_prefix: /stop}, stop: true, request_headers: {set: {X-Stopped: yes}}}
- {id: redirect, priority: 7, match: {path_prefix: /}, redirect: {to: /elsewhere}}
- {id: after, match: {path_prefix: /}, pool: never}
",
    );
    let p = req("/page").eval(&set);
    assert_eq!(
        p.matched.iter().map(|s| &**s).collect::<Vec<_>>(),
        ["headers", "redirect"]
    );
    assert_eq!(location(&p), (301, "/elsewhere"));
    assert_eq!(
        p.response_headers,
        [hset("x-frame-options", "DENY")],
        "earlier headers apply to the redirect"
    );
    assert_eq!(p.pool, None);
    let p = req("/stop").eval(&set);
    assert_eq!(
        p.matched.iter().map(|s| &**s).collect::<Vec<_>>(),
        ["headers", "stopper"]
    );
    assert_eq!(
        (&p.outcome, p.request_headers.len()),
        (&Outcome::Forward, 1)
    );
}

#[test]
fn templates_captures_rest_braces_and_keep_query() {
    let set = rules(
        r#"
- {id: num, match: {path_regex: '^/p/([0-9]+)/(\w+)$'}, redirect: {to: "/product/{2}/{1}"}}
- {id: named, match: {path_regex: '^/u/(?P<user>[a-z]+)$'}, redirect: {to: "https://{host}/users/{user}?src=old", status: 308}}
- {id: rest, match: {path_prefix: /docs/}, redirect: {to: "/manual/{rest}#top", keep_query: true}}
- {id: braces, match: {path: /json}, respond: {status: 200, body: '{{"path": "{path}", "ip": "{client_ip}", "m": "{method}"}}'}}
- {id: nokeep, match: {path: /nk}, redirect: {to: "/x?a=1", keep_query: false}}
- {id: ci-capture, match: {path_regex: '^/c/(\w+)$', case_insensitive: true}, request_headers: {set: {X-C: "{1}"}}}
"#,
    );
    assert_eq!(
        location(&req("/p/42/shoe").eval(&set)),
        (301, "/product/shoe/42")
    );
    assert_eq!(
        location(&req("/p/42/shoe?a=b").eval(&set)),
        (301, "/product/shoe/42?a=b")
    );
    assert_eq!(
        location(&req("/u/ann?x=1").eval(&set)),
        (308, "https://shop.test/users/ann?src=old&x=1")
    );
    assert_eq!(
        location(&req("//docs/./a/b?v=2").eval(&set)),
        (301, "/manual/a/b?v=2#top")
    );
    assert_eq!(
        location(&req("/docs/a?").eval(&set)),
        (301, "/manual/a#top")
    );
    assert_eq!(location(&req("/nk?b=2").eval(&set)), (301, "/x?a=1"));
    match req("/json").eval(&set).outcome {
        Outcome::Respond { body, .. } => assert_eq!(
            &body[..],
            br#"{"path": "/json", "ip": "10.1.2.3", "m": "GET"}"#
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        req("/C/MiXed").eval(&set).request_headers,
        [hset("x-c", "MiXed")],
        "captures keep the request's case"
    );
}

/// A redirect built from the request cannot send the client to another site: `{path}` is the
/// normalized path the rule matched (no `//evil.test/..` from the raw one), and a target that
/// a value makes start with `//` keeps one slash. The rule's own `//host` stays.
#[test]
fn redirects_built_from_the_request_stay_on_the_site() {
    let set = rules(
        r#"
- {id: slash, match: {path_regex: '^/docs/[^.]*[^/]$'}, redirect: {to: "{path}/"}}
- {id: rest, match: {path_prefix: /go}, redirect: {to: "/{rest}"}}
- {id: other, match: {path: /cdn}, redirect: {to: "//cdn.shop.test{path}"}}
"#,
    );
    assert_eq!(
        location(&req("//evil.test/../docs/intro").eval(&set)),
        (301, "/docs/intro/")
    );
    assert_eq!(
        location(&req("/go//evil.test/x").eval(&set)),
        (301, "/evil.test/x")
    );
    assert_eq!(location(&req("/go/a").eval(&set)), (301, "/a"));
    assert_eq!(
        location(&req("/%63dn").eval(&set)),
        (301, "//cdn.shop.test/cdn")
    );
    assert_eq!(
        location(&req("/docs/A%7eB").eval(&set)),
        (301, "/docs/A~B/")
    );
}

#[test]
fn normalization_defeats_bypasses() {
    let set = rules(
        r"
- {id: block, match: {path: /admin}, respond: {status: 403}}
- {id: block-tree, match: {path_prefix: /private/}, respond: {status: 403}}
- {id: block-ci, match: {path: /secret, case_insensitive: true}, respond: {status: 403}}
",
    );
    let blocked = |p: &str| {
        matches!(
            req(p).eval(&set).outcome,
            Outcome::Respond { status: 403, .. }
        )
    };
    for p in [
        "/admin",
        "/%61dmin",
        "/%61%64%6d%69%6E",
        "//admin",
        "/./admin",
        "/x/../admin",
        "/a/b/../../admin",
        "/%2e/admin",
    ] {
        assert!(blocked(p), "{p}");
    }
    for p in [
        "/private/x",
        "//private//x",
        "/public/../private/x",
        "/%70rivate/x",
        "/private/./x",
    ] {
        assert!(blocked(p), "{p}");
    }
    for p in ["/SECRET", "/%53ecret", "//Secret", "/x/../sEcReT"] {
        assert!(blocked(p), "{p}");
    }
    for p in ["/admin/", "/admins", "/Admin", "/admin%2F", "/private"] {
        assert!(!blocked(p), "{p}");
    }
    assert_eq!(req("/private/./x").eval(&set).matched.len(), 1);
}

#[test]
fn render_failures_fail_open_with_the_rule_named() {
    let set = rules(
        r#"
- {id: tag, priority: 10, match: {path_prefix: /}, request_headers: {set: {X-Tag: t}}}
- {id: subdomain, match: {path_regex: '^/go/([^/]+)$'}, redirect: {to: "https://{1}.example.com/"}}
- {id: mirror, match: {path_prefix: /m/}, rewrite: {path: "/mirror{path}"}}
"#,
    );
    // A path segment with a colon makes the host part `a:b.example.com`: not a port.
    let p = req("/go/a:b").eval(&set);
    let failure = p.failure.clone().expect("failure");
    assert_eq!(&*failure.rule_id, "subdomain");
    assert!(
        failure.reason.contains("not a URI") && failure.reason.contains("not a port"),
        "{}",
        failure.reason
    );
    assert_eq!(
        p,
        Plan {
            failure: Some(failure),
            ..Plan::default()
        },
        "everything else is dropped"
    );
    assert!(!p.is_noop());
    // Request data a URI cannot hold as sent (accepted by HTTP parsers) is escaped, not a
    // failure: a client cannot make the rules fail and be forwarded past them.
    let p = req("/m/100%/a|b?q=%&r=\\#").eval(&set);
    assert_eq!(p.failure, None);
    assert_eq!(
        p.rewrite.as_deref(),
        Some("/mirror/m/100%25/a%7Cb?q=%25&r=%5C%23")
    );
    assert_eq!(p.matched.len(), 2);
    // The same rules render fine for ordinary requests.
    assert_eq!(
        location(&req("/go/eu").eval(&set)),
        (301, "https://eu.example.com/")
    );
    assert_eq!(
        req("/m/x").eval(&set).rewrite.as_deref(),
        Some("/mirror/m/x")
    );
}
