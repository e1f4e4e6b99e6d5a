//! The shipped Prometheus alert rules and Grafana dashboard refer only to metrics a running
//! Rampart exports.

mod common;
use common::*;

#[test]
fn alert_rules_and_dashboard_queries_use_exported_metrics() {
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
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\n  https: {{ address: \"{https}\", tls: {{ cert: \"{}\", key: \"{}\" }} }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app, rules: [ {{ id: tag, match: {{ path: /tagged }}, request_headers: {{ set: {{ X-Tag: a }} }} }} ] }}\n",
        cert.cert(),
        cert.key(),
        up.addr_string()
    ));
    // A rule hit: its series exists only once the rule matched.
    assert_eq!(
        get(&format!("http://{http}/tagged"), "a.test").status(),
        200
    );
    poll_until(
        std::time::Duration::from_secs(5),
        "the request to be counted",
        || {
            let m = r.metrics();
            (m.contains("rampart_requests_total{") && m.contains("rampart_rule_hits_total{"))
                .then_some(())
        },
    );
    // The Grafana dashboard's queries too.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut queries: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            let name = a["alert"].as_str().unwrap_or("?");
            (
                format!("alert {name}"),
                a["expr"].as_str().expect("expr").to_string(),
            )
        })
        .collect();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let title = panel["title"].as_str().unwrap_or("?");
            let expr = target["expr"].as_str().expect("expr");
            queries.push((format!("panel {title}"), expr.to_string()));
        }
    }
    assert!(queries.len() >= alerts.len() + 14);
    let exported = r.metrics();
    for (what, expr) in queries {
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("rampart_"))
            // Histograms are exported as NAME_bucket, NAME_sum, NAME_count.
            .map(|w| w.trim_end_matches("_bucket"))
        {
            assert!(
                exported.contains(&format!("\n{name}{{"))
                    || exported.contains(&format!("\n{name} "))
                    || exported.contains(&format!("\n{name}_bucket{{")),
                "{what} uses {name}, which Rampart does not export"
            );
        }
    }
}
