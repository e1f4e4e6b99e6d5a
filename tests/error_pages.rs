//! `error_pages`: a project's own pages for the errors Rampart answers itself (502, 504, ...),
//! with the Content-Type their file names give; statuses without a page keep Rampart's text,
//! and a backend's own error pages pass through untouched. `check` refuses a page Rampart
//! would never send, of an unknown kind, or that it cannot read.

mod common;
use common::*;

const DOWN: &str = "<!doctype html><title>Down</title><h1>We will be back shortly</h1>\n";
const SLOW: &str = "{\"error\": \"the service is slow\"}\n";
const BIG: &str = "Uploads are limited to 10 bytes here.\n";

#[test]
fn a_project_answers_its_own_pages_for_the_errors_rampart_answers() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("errors")).unwrap();
    std::fs::write(dir.path().join("errors/down.html"), DOWN).unwrap();
    std::fs::write(dir.path().join("errors/slow.JSON"), SLOW).unwrap();
    std::fs::write(dir.path().join("errors/big.txt"), BIG).unwrap();
    let (http, dead) = (free_addr(), free_addr());
    let r = Rampart::start_in(
        dir,
        &format!(
            r#"admin: {{ listen: "{}" }}
access_log: {{ target: off }}
listeners:
  http: {{ address: "{http}" }}
pools:
  dead: {{ backends: ["{dead}"], retries: 0 }}
  slow: {{ backends: ["{}"], timeouts: {{ read: 300ms }} }}
projects:
  - name: site
    hosts: [site.test]
    pool: dead
    error_pages: {{ 502: errors/down.html, 504: errors/slow.JSON }}
  - {{ name: plain, hosts: [plain.test], pool: dead }}
  - name: api
    hosts: [api.test]
    pool: slow
    max_body_size: 10
    error_pages: {{ 413: errors/big.txt, 504: errors/slow.JSON }}
"#,
            free_addr(),
            up.addr_string()
        ),
    );
    let base = format!("http://{http}");
    let down = get(&format!("{base}/"), "site.test");
    assert_eq!(down.status(), 502);
    assert_eq!(down.headers()["content-type"], "text/html; charset=utf-8");
    assert!(down.headers().contains_key("x-request-id"));
    assert_eq!(down.text().unwrap(), DOWN);

    let slow = get(&format!("{base}/slow?ms=3000"), "api.test");
    assert_eq!(slow.status(), 504);
    assert_eq!(slow.headers()["content-type"], "application/json");
    assert_eq!(slow.text().unwrap(), SLOW);

    let big = client()
        .post(format!("{base}/upload"))
        .header("host", "api.test")
        .body("x".repeat(100))
        .send()
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(big.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(big.text().unwrap(), BIG);

    // A backend's own error passes through as it is.
    let own = get(&format!("{base}/status/502"), "api.test");
    assert_eq!(own.status(), 502);
    assert_eq!(own.headers()["x-upstream"], "up");
    assert_ne!(own.text().unwrap(), DOWN);

    // A project without pages says it in Rampart's words.
    let plain = get(&format!("{base}/"), "plain.test");
    assert_eq!(plain.status(), 502);
    assert_eq!(plain.text().unwrap(), "502 Bad Gateway\n");
    drop(r);
}

#[test]
fn check_lists_a_projects_pages_and_refuses_those_rampart_would_never_send_or_cannot_read() {
    let page = tempfile::NamedTempFile::with_suffix(".html").unwrap();
    std::fs::write(page.path(), DOWN).unwrap();
    let ok = rampart_check(&format!(
        "listeners:\n  http: {{ address: \"127.0.0.1:8080\" }}\npools:\n  app: {{ backends: [\"127.0.0.1:3000\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app, error_pages: {{ 504: {p}, 502: {p} }} }}\n",
        p = page.path().display()
    ));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stdout.contains("fail_mode open  error_pages 502,504"),
        "{}",
        ok.stdout
    );

    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app: { backends: [\"127.0.0.1:3000\"] }\nprojects:\n  - name: site\n    hosts: [\"*\"]\n    pool: app\n    error_pages:\n      404: errors/404.html\n      502: errors/down.pdf\n      503: errors/missing.html\n";
    assert_check_errors(
        yaml,
        &[
            (
                10,
                7,
                "projects[0].error_pages.404",
                "Rampart answers 404 only when a backend or a rule does",
            ),
            (
                11,
                7,
                "projects[0].error_pages.502",
                "`errors/down.pdf`: name the page .html, .htm, .json or .txt",
            ),
            (
                12,
                7,
                "projects[0].error_pages.503",
                "errors/missing.html`: No such file or directory",
            ),
        ],
    );
}
