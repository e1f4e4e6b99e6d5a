//! Fail-open: a rule that cannot be rendered is skipped and the request goes through
//! unmodified; an all-unhealthy pool still receives traffic. `fail_mode: closed` answers 503.

mod common;
use common::*;
use std::time::Duration;

const BROKEN_RULES: &str = "    rules:\n      - { id: tag, request_headers: { set: { X-Tag: yes } } }\n      - { id: broken, match: { path_regex: '^/go/([^/]+)$' }, redirect: { to: \"https://{1}.example.com/\" } }\n";

fn start(up: &Upstream, mode: &str, health: &str) -> (Rampart, String) {
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app:\n    backends: [\"{}\"]\n{health}\nprojects:\n  - name: site\n    hosts: [\"*\"]\n    pool: app\n    fail_mode: {mode}\n{BROKEN_RULES}",
        up.addr_string()
    );
    (Rampart::start(&yaml), format!("http://{http}"))
}

#[test]
fn rule_failure_fails_open_or_closed() {
    let up = Upstream::start("up");
    let (r, base) = start(&up, "open", "");
    // `{1}` = "a:b" renders "https://a:b.example.com/", whose port is not a number.
    let resp = client().get(format!("{base}/go/a:b")).send().unwrap();
    assert_eq!(resp.status(), 200);
    let e: Echo = resp.json().unwrap();
    assert_eq!(e.uri, "/go/a:b", "unmodified");
    assert_eq!(
        e.header("x-tag"),
        None,
        "as if nothing matched: no rule contributes"
    );
    assert_eq!(
        r.metric("rampart_fail_open_total{project=\"site\",reason=\"rule_error\"}"),
        Some(1.0)
    );
    r.wait_for_log("rule `broken` failed", Duration::from_secs(2));
    // Other requests are unaffected.
    assert_eq!(
        get_echo(&format!("{base}/ok"), "a.test").header("x-tag"),
        Some("yes")
    );
    drop(r);

    let (r, base) = start(&up, "closed", "");
    let resp = client().get(format!("{base}/go/a:b")).send().unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        r.metric("rampart_fail_open_total{project=\"site\",reason=\"rule_error\"}"),
        Some(1.0)
    );
}

#[test]
fn all_unhealthy_pool_still_gets_traffic_unless_closed() {
    let up = Upstream::start("up");
    up.set_healthy(false);
    let hc = "    health_check: { kind: http, path: /healthz, interval: 100ms, rise: 1, fall: 1 }";
    let (r, base) = start(&up, "open", hc);
    poll_until(Duration::from_secs(5), "backend marked down", || {
        (r.status()["pools"][0]["backends"][0]["healthy"] == false).then_some(())
    });
    let resp = client().get(format!("{base}/x")).send().unwrap();
    assert_eq!(
        resp.status(),
        200,
        "fail-open: the unhealthy backend is tried anyway"
    );
    assert_eq!(
        r.metric("rampart_fail_open_total{project=\"site\",reason=\"all_backends_unhealthy\"}"),
        Some(1.0)
    );
    r.wait_for_log(
        "no healthy backend for project site",
        Duration::from_secs(2),
    );
    drop(r);

    let (r, base) = start(&up, "closed", hc);
    poll_until(Duration::from_secs(5), "backend marked down", || {
        (r.status()["pools"][0]["backends"][0]["healthy"] == false).then_some(())
    });
    let hits = up.hits();
    assert_eq!(
        client().get(format!("{base}/x")).send().unwrap().status(),
        503
    );
    assert_eq!(up.hits(), hits, "fail_mode: closed does not send it");
}

/// Characters a request line may carry but a URI may not (`%` without two hex digits, `\`,
/// `|`, `{`) are escaped into redirects and rewrites. They used to make the rule fail, which
/// dropped every rule of the request (fail-open): the client walked past a block rule.
#[test]
fn request_data_cannot_make_rules_fail() {
    let up = Upstream::start("up");
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - name: site\n    hosts: [\"*\"]\n    pool: app\n    rules:\n      - {{ id: app, priority: 10, match: {{ path_prefix: /r/ }}, rewrite: {{ path: \"/app{{path}}\" }} }}\n      - {{ id: block, match: {{ path_prefix: /r/admin }}, respond: {{ status: 403 }} }}\n      - {{ id: https, priority: 10, match: {{ path_prefix: /go/ }}, redirect: {{ to: \"https://{{host}}{{path}}\" }} }}\n",
        up.addr_string()
    );
    let r = Rampart::start(&yaml);
    for target in ["/r/admin?a=%", "/r/admin\\x", "/r/admin/a|b?q={x}"] {
        let resp = raw_get(&http, target, &[]).unwrap();
        assert_eq!(resp.status, 403, "{target}: the block rule still applies");
    }
    let resp = raw_get(&http, "/go/a|b\\c?q=100%&r=%41", &[]).unwrap();
    assert_eq!(resp.status, 301);
    assert_eq!(
        resp.header("location"),
        Some("https://127.0.0.1/go/a%7Cb%5Cc?q=100%25&r=%41"),
        "{{host}} has no port"
    );
    let resp = raw_get(&http, "/r/x|y?q=%", &[]).unwrap();
    assert_eq!(resp.status, 200);
    let e: Echo = serde_json::from_str(&resp.text()).unwrap();
    assert_eq!(
        e.uri, "/app/r/x%7Cy?q=%25",
        "rewritten, with the data escaped"
    );
    assert_eq!(
        r.metric("rampart_fail_open_total{project=\"site\",reason=\"rule_error\"}"),
        Some(0.0),
        "no rule failed"
    );
}
