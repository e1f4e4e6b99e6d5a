//! `rampart rules test`: what matches, which rule won each conflict and why, the outcome, and
//! exit codes 0 (matched), 1 (nothing matched), 2 (error), for scripting in rule authors' CI.

mod common;
use common::*;

const YAML: &str = r#"
listeners:
  http: { address: "127.0.0.1:8080" }
pools:
  web: { backends: ["127.0.0.1:3000"] }
  api: { backends: ["127.0.0.1:3001"] }
projects:
  - name: shop
    hosts: [shop.test]
    pool: web
    rules:
      - { id: hsts, priority: 10, response_headers: { set: { Strict-Transport-Security: max-age=600 } } }
      - { id: product, match: { path_regex: '^/p/(?P<id>[0-9]+)$' }, redirect: { to: "https://www.shop.test/product/{id}", status: 308 } }
      - { id: api, priority: 5, match: { path_prefix: /api/, headers: { X-Beta: "*" } }, rewrite: { path: "/v2/{rest}" }, pool: api, request_headers: { set: { X-Env: prod } } }
      - { id: api-legacy, match: { path_prefix: /api/ }, rewrite: { path: "/v1/{rest}" }, pool: web, request_headers: { set: { X-Env: legacy } } }
      - { id: old-products, match: { path_prefix: /p/ }, redirect: { to: "https://old.shop.test/" } }
      - { id: office, match: { path: /admin, client_ip: [10.0.0.0/8] }, respond: { status: 403 } }
"#;

fn test(args: &[&str]) -> CheckOutput {
    let mut all = vec!["rules", "test"];
    all.extend_from_slice(args);
    rampart_with_config(tempfile::tempdir().unwrap(), YAML, &all, &[])
}

#[test]
fn explains_matches_outcomes_and_exit_codes() {
    let out = test(&["--project", "shop", "https://shop.test/p/42?ref=mail"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("1. hsts\n  2. product"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("outcome: redirect 308, Location: https://www.shop.test/product/42?ref=mail"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  -  old-products (also matches, not applied)\nconflicts:\n  answer: `product` (redirect) wins over `old-products`: same priority (0), `product` comes first in the rules\n"),
        "{}",
        out.stdout
    );

    let out = test(&[
        "--project",
        "shop",
        "--method",
        "post",
        "--header",
        "X-Beta: 1",
        "http://shop.test/api/users?x=1",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("outcome: forward to pool api: POST /v2/users?x=1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("request  set    x-env: prod"),
        "{}",
        out.stdout
    );
    for conflict in [
        "rewrite: `api` wins over `api-legacy`: higher priority (5 > 0)",
        "pool: `api` wins over `api-legacy`: higher priority (5 > 0)",
        "request header x-env: `api` wins over `api-legacy`: higher priority (5 > 0)",
    ] {
        assert!(out.stdout.contains(conflict), "{}", out.stdout);
    }
    assert!(
        out.stdout
            .contains("response set    strict-transport-security: max-age=600"),
        "{}",
        out.stdout
    );

    let out = test(&["--project", "shop", "--ip", "10.1.2.3", "/admin"]);
    assert_eq!(out.code, 0);
    assert!(!out.stdout.contains("conflicts:"), "{}", out.stdout);
    assert!(
        out.stdout.contains("outcome: respond 403"),
        "{}",
        out.stdout
    );
    let out = test(&["--project", "shop", "--ip", "192.0.2.1", "/admin"]);
    assert!(
        out.stdout
            .contains("outcome: forward to pool web: GET /admin"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_project_ignoring_path_params_is_tested_as_it_is_served() {
    let admin = [
        "--project",
        "shop",
        "--ip",
        "10.1.2.3",
        "/admin;jsessionid=1",
    ];
    // By default the parameters are part of the path: `office` (`/admin`) does not match.
    let out = test(&admin);
    assert_eq!(out.code, 0, "{}", out.stderr); // `hsts` matches every request
    assert!(
        out.stdout
            .contains("outcome: forward to pool web: GET /admin;jsessionid=1"),
        "{}",
        out.stdout
    );
    let yaml = YAML.replace(
        "    pool: web\n    rules:",
        "    pool: web\n    ignore_path_params: true\n    rules:",
    );
    let mut args = vec!["rules", "test"];
    args.extend_from_slice(&admin);
    let out = rampart_with_config(tempfile::tempdir().unwrap(), &yaml, &args, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("outcome: respond 403"),
        "{}",
        out.stdout
    );
}

#[test]
fn exit_1_when_nothing_matches_and_2_on_errors() {
    let yaml_no_global = YAML.replace("      - { id: hsts, priority: 10, response_headers: { set: { Strict-Transport-Security: max-age=600 } } }\n", "");
    let out = rampart_with_config(
        tempfile::tempdir().unwrap(),
        &yaml_no_global,
        &[
            "rules",
            "test",
            "--project",
            "shop",
            "http://shop.test/nothing",
        ],
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("no rule matched"), "{}", out.stdout);

    assert_eq!(test(&["--project", "nope", "http://shop.test/"]).code, 2);
    // Requests Rampart would never see this project answer are errors, not explanations.
    for (args, says) in [
        (
            &["--project", "shop", "--method", "G T", "http://shop.test/"][..],
            "not an HTTP method",
        ),
        (&["--project", "shop", "ftp://shop.test/"], "http and https"),
        (
            &["--project", "shop", "http://other.test/"],
            "does not serve host `other.test`",
        ),
    ] {
        let out = test(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stdout);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
    assert_eq!(
        test(&["--project", "shop", "http://SHOP.test/nothing"]).code,
        0
    );
    assert_eq!(
        test(&[
            "--project",
            "shop",
            "--header",
            "no-colon",
            "http://shop.test/"
        ])
        .code,
        2
    );
    let broken = rampart_with_config(
        tempfile::tempdir().unwrap(),
        "listeners: {}\nbogus: 1\n",
        &["rules", "test", "--project", "shop", "/"],
        &[],
    );
    assert_eq!(broken.code, 2, "{}", broken.stderr);

    // A rule that fails to render is a broken rule: exit 2, the failure and the outcome shown.
    let failing = YAML.replace(
        "      - { id: office,",
        "      - { id: sub, match: { path_regex: '^/go/([^/]+)$' }, redirect: { to: \"https://h:{1}/\" } }\n      - { id: office,",
    );
    let out = rampart_with_config(
        tempfile::tempdir().unwrap(),
        &failing,
        &[
            "rules",
            "test",
            "--project",
            "shop",
            "http://shop.test/go/x",
        ],
        &[],
    );
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stdout.contains("rule `sub` FAILED") && out.stdout.contains("(fail_mode: open)"),
        "{}",
        out.stdout
    );
}

/// What the proxy refuses before its rules (checked against the real proxy: 400 for `%00`, 405
/// for CONNECT, 501 for a gzip-coded body) is shown as the outcome, with exit 1: no rule
/// sees the request. A request over a scheme the project is not served on is evaluated, with
/// a warning.
#[test]
fn requests_the_proxy_refuses_and_schemes_it_does_not_serve() {
    for (args, outcome) in [
        (
            &["--project", "shop", "http://shop.test/p/1%00"][..],
            "outcome: 400 Bad Request (the request target holds a space, a control character or %00)",
        ),
        (
            &["--project", "shop", "--method", "CONNECT", "http://shop.test/p/1"],
            "outcome: 405 Method Not Allowed",
        ),
        (
            &["--project", "shop", "--header", "Transfer-Encoding: gzip", "http://shop.test/p/1"],
            "outcome: 501 Not Implemented",
        ),
    ] {
        let out = test(args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stdout);
        assert!(
            out.stdout.contains("no rule evaluated: Rampart refuses the request first")
                && out.stdout.contains(outcome),
            "{args:?}: {}",
            out.stdout
        );
    }
    let out = test(&["--project", "shop", "https://shop.test/p/42"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: project `shop` is on no TLS listener (its listeners: http): an https request never reaches it"),
        "{}",
        out.stderr
    );
    let out = test(&["--project", "shop", "http://shop.test/p/42"]);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}
