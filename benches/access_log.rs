//! The access log's formatting: one line per iteration in each format, from a record like a
//! browser's proxied request (its User-Agent and Referer, a query, a rule that matched). Every
//! line is formatted on the thread that served the request, so this is per-request cost.
//!
//! `cargo bench --bench access_log`; under `cargo test` each format runs once.

use criterion::{criterion_group, criterion_main, Criterion};
use http::HeaderValue;
use rampart::proxy::access_log::{LogFormat, LogRecord, RequestLine, TimeCache};
use rampart::proxy::IpText;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn formats(c: &mut Criterion) {
    let uri = http::Uri::from_static("/products/blue-shoes?size=42&ref=home");
    let user_agent = HeaderValue::from_static(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    );
    let referer = HeaderValue::from_static("https://shop.example.com/collections/spring");
    let request_id = HeaderValue::from_static("7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e");
    let ip = IpText::new("203.0.113.7".parse().expect("an address"));
    let rules: Vec<Arc<str>> = vec!["hsts".into()];
    let record = LogRecord {
        time: SystemTime::now(),
        client_ip: Some(&ip),
        request: Some(RequestLine {
            method: &http::Method::GET,
            uri: &uri,
            protocol: "HTTP/1.1",
        }),
        host: "shop.example.com",
        status: 200,
        bytes: 5120,
        duration: Duration::from_micros(1843),
        referer: Some(&referer),
        user_agent: Some(&user_agent),
        request_id: &request_id,
        project: Some("shop"),
        upstream: Some("10.0.1.11:8080".parse().expect("an address")),
        tls: None,
        rules: &rules,
        error: None,
    };
    let template = "{client_ip} {method} {uri} {status} {duration_ms} {project} {upstream}";
    let mut group = c.benchmark_group("access_log_line");
    for (name, format) in [
        ("combined", LogFormat::Combined),
        ("json", LogFormat::Json),
        ("template", LogFormat::parse(template).expect("a template")),
    ] {
        let (mut out, mut clock) = (String::with_capacity(1 << 16), TimeCache::default());
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(&record).format_into(&format, &mut out, &mut clock);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = formats
}
criterion_main!(benches);
