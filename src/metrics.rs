//! Prometheus metrics (default registry; process metrics collected per scrape). Per-project
//! handles are resolved once and cached, so the request path never hashes label values.

use prometheus::{
    register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge,
    register_int_gauge_vec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec,
};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, OnceLock};

use crate::rules::RuleSet;

pub struct Metrics {
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub upstream_errors: IntCounterVec,
    pub backend_healthy: IntGaugeVec,
    pub backend_resolutions: IntCounterVec,
    pub fail_open: IntCounterVec,
    pub rules_loaded: IntGaugeVec,
    pub rules_reloads: IntCounterVec,
    pub rules_reload_ok: IntGaugeVec,
    pub build_info: IntGaugeVec,
    pub certificate_expiry: IntGaugeVec,
    pub access_log_dropped: IntCounter,
    /// Also what a stopping process waits on (`server/stop.rs`).
    pub requests_in_flight: IntGauge,
    pub connections_open: IntGaugeVec,
    pub connections_refused: IntCounterVec,
    pub header_timeouts: IntCounterVec,
    pub send_timeouts: IntCounterVec,
    pub proxy_protocol_errors: IntCounterVec,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        requests: register_int_counter_vec!(
            "rampart_requests_total",
            "Requests answered, by project and status code",
            &["project", "code"]
        )
        .unwrap(),
        duration: register_histogram_vec!(
            "rampart_request_duration_seconds",
            "Time from request to the end of the response, by project",
            &["project"],
            vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0
            ]
        )
        .unwrap(),
        upstream_errors: register_int_counter_vec!(
            "rampart_upstream_errors_total",
            "Errors talking to backends, by pool and kind",
            &["pool", "kind"]
        )
        .unwrap(),
        backend_healthy: register_int_gauge_vec!(
            "rampart_backend_healthy",
            "1 when the backend is healthy, 0 when not",
            &["pool", "backend"]
        )
        .unwrap(),
        backend_resolutions: register_int_counter_vec!(
            "rampart_backend_resolutions_total",
            "Backend host names resolved again, by pool and result (changed, unchanged, failed)",
            &["pool", "result"]
        )
        .unwrap(),
        fail_open: register_int_counter_vec!(
            "rampart_fail_open_total",
            "Requests served despite a Rampart failure, by project and reason",
            &["project", "reason"]
        )
        .unwrap(),
        rules_loaded: register_int_gauge_vec!(
            "rampart_rules_loaded",
            "Rules in force, by project",
            &["project"]
        )
        .unwrap(),
        rules_reloads: register_int_counter_vec!(
            "rampart_rules_reloads_total",
            "Rule set (re)loads, by project and result",
            &["project", "result"]
        )
        .unwrap(),
        rules_reload_ok: register_int_gauge_vec!(
            "rampart_rules_last_reload_successful",
            "1 when the project's last rules (re)load succeeded, 0 while its rules files fail to load",
            &["project"]
        )
        .unwrap(),
        build_info: register_int_gauge_vec!(
            "rampart_build_info",
            "Build information",
            &["version"]
        )
        .unwrap(),
        certificate_expiry: register_int_gauge_vec!(
            "rampart_tls_certificate_expiry_timestamp_seconds",
            "When a certificate file a TLS listener serves stops working (the earlier end of the server's certificate and its issuer's), Unix time",
            &["listener", "cert"]
        )
        .unwrap(),
        access_log_dropped: register_int_counter!(
            "rampart_access_log_dropped_total",
            "Access log lines lost: the writer fell behind, or writing failed"
        )
        .unwrap(),
        requests_in_flight: register_int_gauge!(
            "rampart_requests_in_flight",
            "Requests read and not yet fully answered"
        )
        .unwrap(),
        connections_open: register_int_gauge_vec!(
            "rampart_connections_open",
            "Client connections open, by listener (after the TLS handshake)",
            &["listener"]
        )
        .unwrap(),
        connections_refused: register_int_counter_vec!(
            "rampart_connections_refused_total",
            "Client connections closed at once because the listener had max_connections open",
            &["listener"]
        )
        .unwrap(),
        header_timeouts: register_int_counter_vec!(
            "rampart_header_timeouts_total",
            "Client connections answered 408 and closed because a request head took longer than header_timeout",
            &["listener"]
        )
        .unwrap(),
        proxy_protocol_errors: register_int_counter_vec!(
            "rampart_proxy_protocol_errors_total",
            "Client connections closed on a listener with proxy_protocol: true because they did not begin with a valid PROXY protocol header",
            &["listener"]
        )
        .unwrap(),
        send_timeouts: register_int_counter_vec!(
            "rampart_send_timeouts_total",
            "Requests dropped (HTTP/1 connection closed, HTTP/2 stream reset) because the client read nothing of the answer for send_timeout",
            &["listener"]
        )
        .unwrap(),
    };
    m.build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    m
});

/// Reports when each served certificate expires: the certificates in use, read at start, so a
/// renewed file that was not reloaded still shows its old date.
pub fn certificates(served: &[crate::server::ServedCertificate]) {
    for c in served {
        let Some(at) = c.expires else { continue };
        METRICS
            .certificate_expiry
            .with_label_values(&[&c.listener, &c.file.display().to_string()])
            .set(crate::certificates::unix_seconds(at));
    }
}

/// `reason` values of `rampart_fail_open_total`.
pub const FAIL_OPEN_REASONS: [&str; 3] = ["rule_error", "all_backends_unhealthy", "rules_reload"];
/// `kind` values of `rampart_upstream_errors_total`.
pub const UPSTREAM_ERROR_KINDS: [&str; 4] = ["connect", "timeout", "closed", "io"];

/// Label for requests that reached no project (unknown host).
pub const NO_PROJECT: &str = "_none";

/// Cached metric handles and counters of one project.
#[derive(Debug)]
pub struct ProjectMetrics {
    name: Arc<str>,
    by_code: Box<[OnceLock<IntCounter>]>,
    pub duration: Histogram,
    pub requests: AtomicU64,
    pub errors: AtomicU64,
}

impl ProjectMetrics {
    pub fn new(name: &str) -> Self {
        // Series exist at 0 from the start, so alerts on rate() see them before the first event.
        for reason in FAIL_OPEN_REASONS {
            METRICS.fail_open.with_label_values(&[name, reason]);
        }
        ProjectMetrics {
            name: name.into(),
            // Every status Pingora lets through (100..=999), and 0 for no answer.
            by_code: (0..1000).map(|_| OnceLock::new()).collect(),
            duration: METRICS.duration.with_label_values(&[name]),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    pub fn observe(&self, code: u16, seconds: f64) {
        self.requests.fetch_add(1, Relaxed);
        if (500..600).contains(&code) || code == 0 {
            self.errors.fetch_add(1, Relaxed);
        }
        // Each code its own series: a 599 counted under another code would escape 5xx alerts.
        let slot = usize::from(code).min(999);
        self.by_code[slot]
            .get_or_init(|| {
                METRICS
                    .requests
                    .with_label_values(&[&self.name, &code.to_string()])
            })
            .inc();
        self.duration.observe(seconds);
    }

    pub fn fail_open(&self, reason: &str) {
        METRICS
            .fail_open
            .with_label_values(&[&self.name, reason])
            .inc();
    }
}

/// Renders every registered metric in the Prometheus text format, plus
/// `rampart_rule_hits_total{project,rule}` read from the rule sets in force (rules count their
/// own hits; see `RuleSet::hit_counts`). Rules that never matched have no series.
pub fn render<'a>(rule_sets: impl Iterator<Item = (&'a str, Arc<RuleSet>)>) -> String {
    use prometheus::proto::{Counter, LabelPair, Metric, MetricFamily, MetricType};
    use prometheus::Encoder;
    let label = |name: &str, value: &str| {
        let mut l = LabelPair::default();
        l.set_name(name.to_string());
        l.set_value(value.to_string());
        l
    };
    let mut hits = MetricFamily::default();
    hits.set_name("rampart_rule_hits_total".to_string());
    hits.set_help("Requests each rule matched, by project and rule id".to_string());
    hits.set_field_type(MetricType::COUNTER);
    for (project, set) in rule_sets {
        for (rule, n) in set.hit_counts() {
            let mut counter = Counter::default();
            counter.set_value(n as f64);
            let mut m = Metric::default();
            m.set_label(vec![label("project", project), label("rule", rule)].into());
            m.set_counter(counter);
            hits.mut_metric().push(m);
        }
    }
    let mut families = prometheus::gather();
    if !hits.get_metric().is_empty() {
        families.push(hits);
    }
    own_process_metrics(&mut families);
    precise_cpu_seconds(&mut families);
    let mut buf = Vec::new();
    let _ = prometheus::TextEncoder::new().encode(&families, &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// The `process_*` series of the calling process. The default registry's process collector
/// reads `/proc/PID` for the PID of the process that first used the registry, and `run -d`
/// forks after that (Pingora daemonizes once the services are built): a daemon, as the
/// packaged unit runs it, exported none. Collected here for the process answering instead.
fn own_process_metrics(families: &mut Vec<prometheus::proto::MetricFamily>) {
    use prometheus::core::Collector;
    families.retain(|f| !f.get_name().starts_with("process_"));
    families.extend(prometheus::process_collector::ProcessCollector::for_self().collect());
    families.sort_by(|a, b| a.get_name().cmp(b.get_name()));
}

/// prometheus 0.13's process collector counts CPU time in whole seconds (tikv/rust-prometheus
/// #451): `rate()` of it is a staircase for a process using less than a core. The value is
/// read again here from `/proc/self/stat`, in clock ticks.
fn precise_cpu_seconds(families: &mut [prometheus::proto::MetricFamily]) {
    let Some(family) = families
        .iter_mut()
        .find(|f| f.get_name() == "process_cpu_seconds_total")
    else {
        return;
    };
    let Some(seconds) = own_cpu_seconds() else {
        return;
    };
    for m in family.mut_metric().iter_mut() {
        m.mut_counter().set_value(seconds);
    }
}

fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

#[cfg(test)]
mod cpu_tests {
    #[test]
    fn cpu_seconds_have_fractions() {
        let rusage = || {
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            tv(usage.ru_utime) + tv(usage.ru_stime)
        };
        // Burn at least 50 ms of CPU (several of /proc's 10 ms ticks), whatever the build's
        // optimisations make of the loop, then compare with getrusage.
        let mut x = 0u64;
        while rusage() < 0.05 {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_add(i * i));
            }
        }
        let ours = super::own_cpu_seconds().unwrap();
        assert!(ours > 0.0, "{ours}");
        let rusage = rusage();
        assert!((ours - rusage).abs() < 0.1, "{ours} vs {rusage}");
    }
}
