//! Rule semantics: conditions, actions, conflicts, templates, fail-open, compile errors, and
//! agreement between the indexed and the reference evaluation.

use super::*;

fn rules(yaml: &str) -> RuleSet {
    let specs: Vec<RuleSpec> = serde_yaml::from_str(yaml).expect("yaml");
    RuleSet::compile(&specs).expect("compiles")
}

fn errors(yaml: &str) -> Vec<RuleError> {
    let specs: Vec<RuleSpec> = serde_yaml::from_str(yaml).expect("yaml");
    RuleSet::compile(&specs).expect_err("must not compile")
}

struct Req {
    method: &'static str,
    scheme: &'static str,
    host: &'static str,
    path: String,
    query: Option<String>,
    headers: http::HeaderMap,
    ip: Option<IpAddr>,
}

fn req(uri: &str) -> Req {
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (uri.to_string(), None),
    };
    Req {
        method: "GET",
        scheme: "https",
        host: "shop.test",
        path,
        query,
        headers: http::HeaderMap::new(),
        ip: Some("10.1.2.3".parse().unwrap()),
    }
}

impl Req {
    fn header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.append(k, v.parse().unwrap());
        self
    }
    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: self.method,
            scheme: self.scheme,
            host: self.host,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            client_ip: self.ip,
            request_id: "rid-1",
        }
    }
    fn eval(&self, set: &RuleSet) -> Plan {
        let plan = set.evaluate(&self.view());
        assert_eq!(
            plan,
            set.evaluate_reference(&self.view()),
            "indexed and reference evaluation differ for {}",
            self.path
        );
        plan
    }
}

fn ids(p: &Plan) -> Vec<&str> {
    p.matched.iter().map(|s| &**s).collect()
}

fn location(p: &Plan) -> String {
    match &p.outcome {
        Outcome::Redirect { location, .. } => location.to_str().unwrap().to_string(),
        o => panic!("not a redirect: {o:?}"),
    }
}

#[test]
fn each_condition_matches_and_rejects() {
    let set = rules(
        r#"
- { id: exact, match: { path: /old } }
- { id: prefix, match: { path_prefix: /blog/ } }
- { id: regex, match: { path_regex: '^/p/[0-9]+$' } }
- { id: host, match: { host: "*.example.com" } }
- { id: method, match: { methods: [POST] } }
- { id: scheme, match: { scheme: http } }
- { id: query, match: { query: { ref: "*", utm: news } } }
- { id: header, match: { headers: { User-Agent: "~(?i)bot", X-Beta: "*" } } }
- { id: absent, match: { not_headers: [Cookie], path: /nocookie } }
- { id: ip, match: { client_ip: [192.168.0.0/16, "2001:db8::/32"] } }
"#,
    );
    assert_eq!(ids(&req("/old").eval(&set)), ["exact"]);
    assert!(req("/older").eval(&set).matched.is_empty());
    assert_eq!(ids(&req("/blog/x").eval(&set)), ["prefix"]);
    assert_eq!(ids(&req("/p/42").eval(&set)), ["regex"]);
    assert!(req("/p/4x").eval(&set).matched.is_empty());
    let mut r = req("/");
    r.host = "a.example.com";
    assert_eq!(ids(&r.eval(&set)), ["host"]);
    r.host = "example.com";
    assert!(r.eval(&set).matched.is_empty());
    let mut r = req("/");
    r.method = "POST";
    assert_eq!(ids(&r.eval(&set)), ["method"]);
    let mut r = req("/");
    r.scheme = "http";
    assert_eq!(ids(&r.eval(&set)), ["scheme"]);
    assert_eq!(ids(&req("/?ref=x&utm=news").eval(&set)), ["query"]);
    assert!(req("/?ref=x&utm=other").eval(&set).matched.is_empty());
    assert_eq!(
        ids(&req("/")
            .header("user-agent", "GoogleBot/2")
            .header("x-beta", "1")
            .eval(&set)),
        ["header"]
    );
    assert!(req("/")
        .header("user-agent", "GoogleBot/2")
        .eval(&set)
        .matched
        .is_empty());
    assert_eq!(ids(&req("/nocookie").eval(&set)), ["absent"]);
    assert!(req("/nocookie")
        .header("cookie", "a=1")
        .eval(&set)
        .matched
        .is_empty());
    let mut r = req("/");
    r.ip = Some("192.168.4.4".parse().unwrap());
    assert_eq!(ids(&r.eval(&set)), ["ip"]);
    r.ip = Some("2001:db8::1".parse().unwrap());
    assert_eq!(ids(&r.eval(&set)), ["ip"]);
}

#[test]
fn redirect_with_captures_and_query_handling() {
    let set = rules(
        r#"
- { id: product, match: { path_regex: '^/p/(?P<id>[0-9]+)/(.*)$' }, redirect: { to: "https://www.example.com/product/{id}?slug={2}", status: 308 } }
- { id: blog, match: { path_prefix: /blog/ }, redirect: { to: "/articles/{rest}", keep_query: false } }
- { id: keep, match: { path: /k }, redirect: { to: "/kk" } }
"#,
    );
    let p = req("/p/42/shoes?utm=1").eval(&set);
    assert_eq!(
        location(&p),
        "https://www.example.com/product/42?slug=shoes&utm=1"
    );
    assert!(matches!(p.outcome, Outcome::Redirect { status: 308, .. }));
    assert_eq!(
        location(&req("/blog/2020/x?a=1").eval(&set)),
        "/articles/2020/x"
    );
    let p = req("/k?a=1").eval(&set);
    assert_eq!(location(&p), "/kk?a=1");
    assert!(matches!(p.outcome, Outcome::Redirect { status: 301, .. }));
}

#[test]
fn respond_rewrite_pool_and_headers() {
    let set = rules(
        r#"
- id: api
  match: { path_prefix: /api/ }
  rewrite: { path: "/v2/{rest}" }
  pool: api
  request_headers: { set: { X-Env: prod }, add: { X-Tag: a }, remove: [X-Debug] }
  response_headers: { set: { Strict-Transport-Security: "max-age=63072000" }, remove: [Server] }
- id: deny
  match: { path: /admin }
  respond: { status: 403, body: "Forbidden {client_ip}\n", headers: { X-Why: blocked } }
"#,
    );
    let p = req("/api/users?x=1").eval(&set);
    assert_eq!(p.rewrite.as_deref(), Some("/v2/users?x=1"));
    assert_eq!(p.pool.as_deref(), Some("api"));
    assert_eq!(p.request_headers.len(), 3);
    assert!(p
        .request_headers
        .contains(&HeaderOp::Remove(HeaderName::from_static("x-debug"))));
    assert!(p
        .response_headers
        .contains(&HeaderOp::Remove(HeaderName::from_static("server"))));
    match req("/admin").eval(&set).outcome {
        Outcome::Respond {
            status,
            body,
            headers,
            content_type,
        } => {
            assert_eq!(status, 403);
            assert_eq!(&body[..], b"Forbidden 10.1.2.3\n");
            assert_eq!(headers[0].0, "x-why");
            assert_eq!(content_type, "text/plain; charset=utf-8");
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn conflicts_are_won_by_higher_priority() {
    let set = rules(
        r#"
- { id: low, priority: 1, rewrite: { path: /low }, pool: low, request_headers: { set: { X-A: low, X-B: low } } }
- { id: high, priority: 10, rewrite: { path: /high }, pool: high, request_headers: { set: { X-A: high } } }
- { id: same-prio-later, priority: 10, request_headers: { remove: [X-A] } }
"#,
    );
    let p = req("/x").eval(&set);
    assert_eq!(ids(&p), ["high", "same-prio-later", "low"]);
    assert_eq!(p.rewrite.as_deref(), Some("/high"));
    assert_eq!(p.pool.as_deref(), Some("high"));
    assert_eq!(
        p.request_headers,
        vec![
            HeaderOp::Set(
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("high")
            ),
            HeaderOp::Set(
                HeaderName::from_static("x-b"),
                HeaderValue::from_static("low")
            ),
        ]
    );
}

#[test]
fn redirect_respond_and_stop_end_evaluation() {
    let set = rules(
        r#"
- { id: hdr, priority: 5, response_headers: { set: { X-Seen: "1" } } }
- { id: stopper, priority: 4, match: { path: /stop }, stop: true }
- { id: go, priority: 3, match: { path_prefix: / }, redirect: { to: /elsewhere } }
- { id: never, priority: 2, request_headers: { set: { X-Never: "1" } } }
"#,
    );
    let p = req("/stop").eval(&set);
    assert_eq!(ids(&p), ["hdr", "stopper"]);
    assert_eq!(p.outcome, Outcome::Forward);
    let p = req("/a").eval(&set);
    assert_eq!(ids(&p), ["hdr", "go"]);
    assert_eq!(location(&p), "/elsewhere");
    assert_eq!(
        p.response_headers.len(),
        1,
        "headers of earlier rules apply to redirects too"
    );
}

#[test]
fn normalized_path_defeats_bypass_attempts() {
    let set = rules("- { id: admin, match: { path: /admin }, respond: { status: 403 } }\n- { id: ci, match: { path_prefix: /Secret/, case_insensitive: true }, respond: { status: 403 } }");
    for p in ["/admin", "/%61dmin", "//admin", "/./admin", "/x/../admin"] {
        assert_eq!(ids(&req(p).eval(&set)), ["admin"], "{p}");
    }
    assert!(
        req("/ADMIN").eval(&set).matched.is_empty(),
        "case-sensitive unless asked"
    );
    for p in ["/secret/a", "/SECRET/b", "/%73ecret/c"] {
        assert_eq!(ids(&req(p).eval(&set)), ["ci"], "{p}");
    }
}

#[test]
fn render_failure_fails_open_with_the_rule_named() {
    // {query} may hold a space-free but header-invalid byte sequence only when decoded; a raw
    // query cannot contain a space, but `{path}` of a rewrite into a header can break the URI:
    let set = rules(
        r#"
- { id: ok, request_headers: { set: { X-Ok: "1" } } }
- { id: broken, match: { path_prefix: /go/ }, redirect: { to: "{rest}" } }
"#,
    );
    // `{rest}` = "a b" after decoding is impossible (space is not unreserved), so use a
    // target that is not a URI: "http://[bad" (unclosed IPv6 literal).
    let p = req("/go/http:%2F%2F[bad").eval(&set);
    assert_eq!(
        p.failure.as_ref().map(|f| &*f.rule_id),
        Some("broken"),
        "{p:?}"
    );
    assert!(p.matched.is_empty() && p.request_headers.is_empty() && p.outcome == Outcome::Forward);
}

#[test]
fn compile_errors_name_the_field() {
    let e = errors(
        r#"
- { id: a, match: { path: /a, path_prefix: /b } }
- { id: b, match: { path_regex: '([' } }
- { id: c, redirect: { to: /x, status: 200 } }
- { id: d, match: { path_prefix: /p }, redirect: { to: "/{nope}" } }
- { id: e, match: { client_ip: [10.0.0.0/33] } }
- { id: f, request_headers: { set: { "Bad Name": x } } }
- { id: a }
- { id: g, redirect: { to: "/{rest}" } }
"#,
    );
    let find = |i: usize| {
        e.iter()
            .find(|x| x.index == i)
            .unwrap_or_else(|| panic!("no error for rule {i}: {e:?}"))
    };
    assert_eq!(find(0).field, "match");
    assert!(find(1).field == "match.path_regex" && find(1).message.contains("invalid regex"));
    assert!(find(2).field == "redirect.status" && find(2).message.contains("308"));
    assert!(find(3).field == "redirect.to" && find(3).message.contains("{nope}"));
    assert!(find(4).field == "match.client_ip[0]");
    assert!(find(5).field.starts_with("request_headers.set"));
    assert!(find(6).field == "id" && find(6).message.contains("duplicate"));
    assert!(find(7).message.contains("path_prefix"));
}

/// Deterministic pseudo-random numbers (xorshift) for the equivalence test.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn indexed_and_reference_evaluation_agree_on_random_rule_sets() {
    let paths = [
        "/", "/a", "/a/b", "/A", "/blog/", "/blog/x", "/p/1", "/p/22", "/x/../a", "/%61",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..300 {
        let mut yaml = String::new();
        for i in 0..rng.next(12) + 1 {
            let path = paths[rng.next(paths.len())];
            let cond = match rng.next(5) {
                0 => format!("path: '{path}'"),
                1 => format!("path: '{path}', case_insensitive: true"),
                2 => "path_prefix: /blog/".to_string(),
                3 => "path_regex: '^/p/([0-9]+)$'".to_string(),
                _ => format!("methods: [{}]", ["GET", "POST"][rng.next(2)]),
            };
            let action = match rng.next(6) {
                0 => "redirect: { to: /r }".to_string(),
                1 => format!("rewrite: {{ path: /w{i} }}"),
                2 => "stop: true".to_string(),
                3 => format!("pool: p{i}"),
                4 => format!("request_headers: {{ set: {{ X-{}: v{i} }} }}", rng.next(3)),
                _ => "respond: { status: 404 }".to_string(),
            };
            yaml.push_str(&format!(
                "- {{ id: r{i}, priority: {}, match: {{ {cond} }}, {action} }}\n",
                rng.next(3)
            ));
        }
        let set = rules(&yaml);
        for p in paths {
            let mut r = req(p);
            r.method = ["GET", "POST"][rng.next(2)];
            assert_eq!(
                set.evaluate(&r.view()),
                set.evaluate_reference(&r.view()),
                "round {round}, path {p}\n{yaml}"
            );
        }
    }
}
