//! Every rule action end to end through the real proxy, and the conflict semantics.

mod common;
use common::*;

const RULES: &str = r#"
    rules:
      - id: hsts
        priority: 100
        response_headers: { set: { Strict-Transport-Security: "max-age=63072000" }, remove: [Server] }
      - id: product
        priority: 50
        match: { path_regex: '^/p/(?P<id>[0-9]+)$' }
        redirect: { to: "https://www.example.com/product/{id}", status: 301 }
      - id: legacy-php
        priority: 50
        match: { path_regex: '/(?P<page>[a-z]+)\.php$' }
        redirect: { to: "/pages/{page}", status: 308 }
      - id: docs-trailing-slash
        priority: 50
        match: { path_regex: '^/docs/[^.]*[^/]$' }
        redirect: { to: "{path}/" }
      - id: blocked
        priority: 50
        match: { path: /admin }
        respond: { status: 403, body: "Forbidden for {client_ip}\n", content_type: text/plain }
      - id: bots
        priority: 40
        match: { path_prefix: /shop/, headers: { User-Agent: "~(?i)bot" } }
        respond: { status: 429, body: "slow down\n" }
      - id: api
        priority: 30
        match: { path_prefix: /api/, methods: [GET, POST] }
        rewrite: { path: "/v2/{rest}" }
        pool: api
        request_headers: { set: { X-Env: prod, X-Who: "{client_ip}" }, add: { X-Tag: a }, remove: [X-Debug] }
      - id: api-low
        priority: 10
        match: { path_prefix: /api/ }
        rewrite: { path: "/never" }
        pool: web
        request_headers: { set: { X-Env: low, X-Other: low } }
      - id: beta
        priority: 20
        match: { query: { beta: "*" } }
        request_headers: { set: { X-Beta: "{query}" } }
        stop: true
      - id: after-stop
        priority: 5
        match: { query: { beta: "*" } }
        request_headers: { set: { X-After: "1" } }
"#;

fn start(web: &Upstream, api: &Upstream) -> (Rampart, String) {
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  web: {{ backends: [\"{}\"] }}\n  api: {{ backends: [\"{}\"] }}\nprojects:\n  - name: shop\n    hosts: [\"*\"]\n    pool: web\n{RULES}",
        web.addr_string(),
        api.addr_string()
    );
    (Rampart::start(&yaml), format!("http://{http}"))
}

#[test]
fn redirect_respond_rewrite_pool_and_headers() {
    let (web, api) = (Upstream::start("web"), Upstream::start("api"));
    let (r, base) = start(&web, &api);
    let c = client();

    let resp = c.get(format!("{base}/p/42?utm=x")).send().unwrap();
    assert_eq!(resp.status(), 301);
    assert_eq!(
        resp.headers()["location"],
        "https://www.example.com/product/42?utm=x"
    );
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=63072000",
        "higher-priority headers rules apply to redirects"
    );
    assert_eq!(resp.headers()["content-length"], "0");
    assert!(resp.text().unwrap().is_empty());

    // Not anchored: found by the text it requires (`.php`), anywhere in the path.
    let resp = c.get(format!("{base}/old/blog/about.php")).send().unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(resp.headers()["location"], "/pages/about");
    let e = get_echo(&format!("{base}/old/ABOUT.PHP"), "shop.test");
    assert_eq!(
        e.uri, "/old/ABOUT.PHP",
        "the regex is case-sensitive: forwarded"
    );

    let resp = c.get(format!("{base}/%61dmin")).send().unwrap();
    assert_eq!(resp.status(), 403, "normalized path matches /admin");
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert_eq!(resp.text().unwrap(), "Forbidden for 127.0.0.1\n");
    let resp = c.head(format!("{base}/admin")).send().unwrap();
    assert_eq!(resp.status(), 403);

    // `{path}` is the path the rule matched: the raw `//evil.test/..` would have made the
    // Location another site's (an open redirect).
    let addr = base.trim_start_matches("http://");
    let resp = raw_get(addr, "//evil.test/../docs/intro", &[]).unwrap();
    assert_eq!(
        (resp.status, resp.header("location")),
        (301, Some("/docs/intro/"))
    );

    let resp = c
        .get(format!("{base}/shop/cart"))
        .header("user-agent", "FooBot/1")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 429);

    let resp = c
        .get(format!("{base}/api/users?id=7"))
        .header("x-debug", "1")
        .send()
        .unwrap();
    assert_eq!(
        resp.headers()["x-upstream"],
        "api",
        "the rule's pool wins over the project's"
    );
    assert!(
        resp.headers().get("server").is_none(),
        "Server removed by the response rule"
    );
    let e: Echo = resp.json().unwrap();
    assert_eq!(
        e.uri, "/v2/users?id=7",
        "higher-priority rewrite wins, query kept"
    );
    assert_eq!(
        e.header("x-env"),
        Some("prod"),
        "higher-priority header op wins"
    );
    assert_eq!(
        e.header("x-other"),
        Some("low"),
        "lower-priority rules still contribute other headers"
    );
    assert_eq!(e.header("x-who"), Some("127.0.0.1"));
    assert_eq!(e.header("x-tag"), Some("a"));
    assert_eq!(e.header("x-debug"), None);
    assert_eq!(api.hits(), 1);

    let e: Echo = c
        .get(format!("{base}/x?beta=1"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(e.upstream, "web");
    assert_eq!(e.header("x-beta"), Some("beta=1"));
    assert_eq!(e.header("x-after"), None, "stop: true ends evaluation");
    assert_eq!(e.uri, "/x?beta=1", "backend receives the original path");

    let e: Echo = c
        .get(format!("{base}/%70lain//x"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        e.uri, "/%70lain//x",
        "the original path goes upstream unless rewritten"
    );

    assert_eq!(
        r.metric("rampart_rule_hits_total{project=\"shop\",rule=\"product\"}"),
        Some(1.0)
    );
    assert_eq!(
        r.metric("rampart_rule_hits_total{project=\"shop\",rule=\"api\"}"),
        Some(1.0)
    );
    assert_eq!(
        r.metric("rampart_rule_hits_total{project=\"shop\",rule=\"after-stop\"}"),
        None
    );
}

/// `ignore_path_params: true`: rules see paths without their `;` parameters, as the Java
/// backends (Tomcat, Jetty, Spring) that drop them route them, so `/admin;x=1` cannot slip past
/// a rule on `/admin`. The backend still gets the path as sent. Off by default: nginx matches
/// parameters as part of the path too.
#[test]
fn path_parameters_are_ignored_for_matching_when_the_project_asks() {
    let web = Upstream::start("web");
    let (http, admin) = (free_addr(), free_addr());
    let rules = "rules: [ { id: admin, match: { path: /admin }, respond: { status: 403 } }, { id: private, match: { path_prefix: /private/ }, respond: { status: 403 } } ]";
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  web: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: java, hosts: [java.test], pool: web, ignore_path_params: true, {rules} }}\n  - {{ name: plain, hosts: [plain.test], pool: web, {rules} }}\n",
        web.addr_string()
    );
    let _r = Rampart::start(&yaml);
    let ask = |host: &str, path: &str| raw_get_host(&http, host, path, &[]).unwrap();
    for path in [
        "/admin;x=1",
        "/admin;",
        "/a/..;/admin",
        "/;x/admin",
        "/private;v=1/keys",
        "/private/;x/keys",
    ] {
        assert_eq!(ask("java.test", path).status, 403, "{path}");
    }
    // Not blocked: the backend gets the path as sent, parameters and all.
    let echoed = |host: &str, path: &str| -> Echo {
        let resp = ask(host, path);
        assert_eq!(resp.status, 200, "{host}{path}");
        serde_json::from_str(&resp.text()).unwrap()
    };
    assert_eq!(
        echoed("java.test", "/shop;jsessionid=ab12/cart").uri,
        "/shop;jsessionid=ab12/cart"
    );
    // An escaped `;` is not a delimiter, to Tomcat either.
    assert_eq!(echoed("java.test", "/admin%3Bx").uri, "/admin%3Bx");
    // Without the setting, parameters are part of the path.
    assert_eq!(echoed("plain.test", "/admin;x=1").uri, "/admin;x=1");
    assert_eq!(ask("plain.test", "/admin").status, 403);
}
