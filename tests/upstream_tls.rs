//! A backend whose certificate is refused: the client gets 502, and the log says why (the
//! error Pingora gives says only "certificate verify failed").

mod common;
use common::*;
use std::time::Duration;

#[test]
fn a_refused_backend_certificate_is_explained_in_the_log() {
    let ca = TestCa::new();
    let unknown_ca = Upstream::start_tls("unknown-ca", &ca.issue(&["backend.test"]));
    let other_name = Upstream::start_tls("other-name", &ca.issue(&["other.test"]));
    let expired = Upstream::start_tls("expired", &ca.issue_until(&["backend.test"], (2020, 1, 1)));
    let (http, admin, ca_file) = (free_addr(), free_addr(), ca.ca_path().display().to_string());
    let pool = |up: &Upstream, ca_file: &str| {
        format!(
            "{{ backends: [\"{}\"], retries: 0, tls: {{ sni: backend.test{ca_file} }} }}",
            up.addr_string()
        )
    };
    let with_ca = format!(", ca_file: \"{ca_file}\"");
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  system_cas: {}\n  named: {}\n  dated: {}\nprojects:\n  - {{ name: a, hosts: [a.test], pool: system_cas }}\n  - {{ name: b, hosts: [b.test], pool: named }}\n  - {{ name: c, hosts: [c.test], pool: dated }}\n",
        pool(&unknown_ca, ""),
        pool(&other_name, &with_ca),
        pool(&expired, &with_ca),
    );
    let r = Rampart::start(&yaml);
    for (host, pool, up, why) in [
        (
            "a.test",
            "system_cas",
            &unknown_ca,
            "unable to get local issuer certificate (SNI `backend.test`, the system's CAs)",
        ),
        (
            "b.test",
            "named",
            &other_name,
            "hostname mismatch (SNI `backend.test`, the pool's CA file)",
        ),
        (
            "c.test",
            "dated",
            &expired,
            "certificate has expired (SNI `backend.test`, the pool's CA file)",
        ),
    ] {
        let resp = get(&format!("http://{http}/"), host);
        assert_eq!(resp.status(), 502, "{host}");
        let needle = format!(
            "pool {pool}: the certificate of {} was refused: ",
            up.addr_string()
        );
        let line = r.wait_for_log(&needle, Duration::from_secs(10));
        assert!(line.ends_with(why), "{line}");
    }
}

#[test]
fn a_health_check_refused_by_certificate_says_why_in_status_and_log() {
    let ca = TestCa::new();
    let other_name = Upstream::start_tls("other-name", &ca.issue(&["other.test"]));
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  named:\n    backends: [\"{}\"]\n    tls: {{ sni: backend.test, ca_file: \"{}\" }}\n    health_check: {{ kind: http, path: /, interval: 100ms, timeout: 1s, fall: 1 }}\nprojects:\n  - {{ name: b, hosts: [\"*\"], pool: named }}\n",
        other_name.addr_string(),
        ca.ca_path().display()
    );
    let r = Rampart::start(&yaml);
    let why = "hostname mismatch, with SNI `backend.test` and the pool's CA file";
    let backend = poll_until(Duration::from_secs(10), "the check's verdict", || {
        let status = r.status();
        let b = status["pools"][0]["backends"][0].clone();
        (b["healthy"] == false).then_some(b)
    });
    assert_eq!(
        backend["last_check_result"],
        format!("InvalidCert ({why})"),
        "{backend}"
    );
    let needle = format!(
        "pool named: backend {} is unhealthy (last check: ",
        other_name.addr_string()
    );
    let line = r.wait_for_log(&needle, Duration::from_secs(5));
    assert!(line.ends_with(&format!("InvalidCert ({why}))")), "{line}");
}
