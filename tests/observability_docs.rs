//! The shipped Prometheus alert rules and Grafana dashboard refer only to metrics a running
//! Rampart exports.

mod common;
use common::*;

#[test]
fn alert_rules_use_exported_metrics() {
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/prometheus-alerts.yaml"
    ))
    .unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&rules).expect("alert rules are YAML");
    let alerts = doc["groups"][0]["rules"]
        .as_sequence()
        .expect("a rules list");
    assert!(alerts.len() >= 5);
    let up = Upstream::start("up");
    let cert = self_signed(&["site.test"]);
    let (http, https, admin) = (free_addr(), free_addr(), free_addr());
    let r = Rampart::start(&format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\n  https: {{ address: \"{https}\", tls: {{ cert: \"{}\", key: \"{}\" }} }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        cert.cert(),
        cert.key(),
        up.addr_string()
    ));
    assert_eq!(get(&format!("http://{http}/"), "a.test").status(), 200);
    poll_until(
        std::time::Duration::from_secs(5),
        "the request to be counted",
        || {
            r.metrics()
                .contains("rampart_requests_total{")
                .then_some(())
        },
    );
    let exported = r.metrics();
    for alert in alerts {
        let expr = alert["expr"].as_str().expect("expr");
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("rampart_"))
        {
            assert!(
                exported.contains(&format!("\n{name}{{"))
                    || exported.contains(&format!("\n{name} ")),
                "alert {} uses {name}, which Rampart does not export",
                alert["alert"].as_str().unwrap_or("?")
            );
        }
    }
}
