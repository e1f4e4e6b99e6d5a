//! `rate_limit`: a client past its project's requests a second is answered `429` with
//! `Retry-After: 1` (its project's page when it has one), before any rule or backend, while
//! other clients and other projects are served; a second later it is served again.

mod common;
use common::*;
use std::time::Duration;

const LIMIT: usize = 5;

/// A blocking client whose connections come from `ip` (a loopback address of its own), not
/// following redirects.
fn client_from(ip: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[test]
fn a_client_past_its_rate_gets_429_and_others_are_served() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slow-down.txt"), "Slow down, please.\n").unwrap();
    let http = free_addr();
    let (r, log) = Rampart::start_logging_in(dir, |log| {
        format!(
            r#"admin: {{ listen: "{}" }}
access_log: {{ target: {}, format: "{{client_ip}} {{status}} {{uri}}" }}
listeners:
  http: {{ address: "{http}" }}
pools:
  app: {{ backends: ["{}"] }}
projects:
  - name: limited
    hosts: [limited.test]
    pool: app
    rate_limit: {{ requests_per_second: {LIMIT} }}
    error_pages: {{ 429: slow-down.txt }}
    rules:
      - {{ id: moved, match: {{ path: /moved }}, redirect: {{ to: /new }} }}
  - {{ name: open, hosts: [open.test], pool: app }}
"#,
            free_addr(),
            log.display(),
            up.addr_string()
        )
    });
    let base = format!("http://{http}");
    let flood = client_from("127.0.0.1");
    let hits = up.hits();
    let statuses: Vec<u16> = (0..4 * LIMIT)
        .map(|i| {
            // Redirects are held to it too: the limit comes before the rules.
            let path = if i % 2 == 0 { "/page" } else { "/moved" };
            let answer = flood
                .get(format!("{base}{path}"))
                .header("host", "limited.test")
                .send()
                .unwrap();
            let status = answer.status().as_u16();
            if status == 429 {
                assert_eq!(answer.headers()["retry-after"], "1");
                assert_eq!(answer.text().unwrap(), "Slow down, please.\n");
            }
            status
        })
        .collect();
    let served = statuses.iter().filter(|s| **s != 429).count();
    // One window, or two if the burst crossed a second's end.
    assert!(
        (LIMIT..=2 * LIMIT).contains(&served),
        "{served} served: {statuses:?}"
    );
    assert!(up.hits() - hits <= 2 * LIMIT);
    r.wait_for_log(
        "project limited: client 127.0.0.1 sends more than rate_limit (5 requests a second); answered 429",
        Duration::from_secs(5),
    );

    // Another client, and another project, are not concerned.
    let other = client_from("127.0.0.2")
        .get(format!("{base}/page"))
        .header("host", "limited.test")
        .send()
        .unwrap();
    assert_eq!(other.status(), 200);
    let open = flood
        .get(format!("{base}/page"))
        .header("host", "open.test")
        .send()
        .unwrap();
    assert_eq!(open.status(), 200);

    // The next second, the first client is served again.
    poll_until(Duration::from_secs(5), "the next window", || {
        let answer = flood
            .get(format!("{base}/again"))
            .header("host", "limited.test")
            .send()
            .unwrap();
        (answer.status() == 200).then_some(())
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines().any(|l| l.starts_with("127.0.0.1 429 /")),
        "{text}"
    );
    assert!(
        r.metric("rampart_requests_total{code=\"429\",project=\"limited\"}") >= Some(1.0),
        "{}",
        r.metrics()
    );
}
