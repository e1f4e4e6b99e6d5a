//! Each selection algorithm's distribution over real backends.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::Duration;

/// Starts rampart with one pool over `ups` (weights given) and returns it with its HTTP base URL.
fn start(ups: &[(&Upstream, usize)], pool_extra: &str) -> (Rampart, String) {
    let (http, admin) = (free_addr(), free_addr());
    let backends: Vec<String> = ups
        .iter()
        .map(|(u, w)| format!("{{ address: \"{}\", weight: {w} }}", u.addr_string()))
        .collect();
    let yaml = format!(
        "server: {{ threads: 2 }}\nadmin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app:\n    backends: [{}]\n{pool_extra}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        backends.join(", ")
    );
    (Rampart::start(&yaml), format!("http://{http}"))
}

fn tally(
    base: &str,
    n: usize,
    build: impl Fn(usize, reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder,
) -> HashMap<String, usize> {
    let c = client();
    let mut seen = HashMap::new();
    for i in 0..n {
        let r = build(i, c.get(format!("{base}/item/{i}"))).send().unwrap();
        assert_eq!(r.status(), 200);
        let who = r.headers()["x-upstream"].to_str().unwrap().to_string();
        *seen.entry(who).or_default() += 1;
    }
    seen
}

#[test]
fn round_robin_follows_weights_exactly() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let (_r, base) = start(&[(&a, 1), (&b, 2)], "    selection: round_robin");
    let seen = tally(&base, 30, |_, r| r);
    assert_eq!((seen["a"], seen["b"]), (10, 20), "{seen:?}");
}

#[test]
fn random_spreads_over_every_backend() {
    let (a, b, c) = (
        Upstream::start("a"),
        Upstream::start("b"),
        Upstream::start("c"),
    );
    let (_r, base) = start(&[(&a, 1), (&b, 1), (&c, 2)], "    selection: random");
    let seen = tally(&base, 400, |_, r| r);
    // Expected 100/100/200; the bounds are many standard deviations wide.
    assert!(
        seen["a"] > 50 && seen["b"] > 50 && seen["c"] > 130,
        "{seen:?}"
    );
}

#[test]
fn consistent_hash_is_sticky_per_key() {
    let (a, b, c) = (
        Upstream::start("a"),
        Upstream::start("b"),
        Upstream::start("c"),
    );
    for (key, set) in [
        (
            "header:X-User",
            &(|i: usize, r: reqwest::blocking::RequestBuilder| {
                r.header("x-user", format!("user-{}", i / 10))
            })
                as &dyn Fn(
                    usize,
                    reqwest::blocking::RequestBuilder,
                ) -> reqwest::blocking::RequestBuilder,
        ),
        ("cookie:session", &|i, r| {
            r.header("cookie", format!("theme=dark; session=s{}", i / 10))
        }),
    ] {
        let (_r, base) = start(
            &[(&a, 1), (&b, 1), (&c, 1)],
            &format!("    selection: consistent_hash\n    hash_key: \"{key}\""),
        );
        let c = client();
        let mut users_per_backend: HashMap<String, usize> = HashMap::new();
        for user in 0..30 {
            let mut first = None;
            for i in 0..10 {
                let r = set(user * 10 + i, c.get(format!("{base}/page/{i}")))
                    .send()
                    .unwrap();
                let who = r.headers()["x-upstream"].to_str().unwrap().to_string();
                match &first {
                    None => first = Some(who),
                    Some(f) => assert_eq!(f, &who, "{key}: user {user} moved between backends"),
                }
            }
            *users_per_backend.entry(first.unwrap()).or_default() += 1;
        }
        assert_eq!(
            users_per_backend.len(),
            3,
            "{key}: 30 users should reach all 3 backends: {users_per_backend:?}"
        );
        // Requests without the key (first visits without the cookie) are spread, as nginx's
        // `hash` falls back to round robin, not all sent to one backend.
        let keyless = tally(&base, 30, |_, r| r);
        assert_eq!(keyless.len(), 3, "{key}: keyless requests {keyless:?}");
    }
}

#[test]
fn consistent_hash_on_uri_and_client_ip() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let (_r, base) = start(
        &[(&a, 1), (&b, 1)],
        "    selection: consistent_hash\n    hash_key: uri",
    );
    let c = client();
    let mut backends = std::collections::HashSet::new();
    for i in 0..40 {
        let url = format!("{base}/doc/{i}");
        let first = c.get(&url).send().unwrap().headers()["x-upstream"]
            .to_str()
            .unwrap()
            .to_string();
        let again = c.get(&url).send().unwrap().headers()["x-upstream"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(first, again, "{url}");
        backends.insert(first);
    }
    assert_eq!(backends.len(), 2);
    drop(_r);
    // One client IP (loopback): every request lands on the same backend.
    let (_r, base) = start(
        &[(&a, 1), (&b, 1)],
        "    selection: consistent_hash\n    hash_key: client_ip",
    );
    let seen = tally(&base, 20, |_, r| r);
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[test]
fn least_conn_avoids_the_busy_backend() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let (_r, base) = start(&[(&a, 1), (&b, 1)], "    selection: least_conn");
    let slow_url = format!("{base}/slow?ms=3000");
    let slow = std::thread::spawn(move || {
        client().get(slow_url).send().unwrap().headers()["x-upstream"]
            .to_str()
            .unwrap()
            .to_string()
    });
    poll_until(
        Duration::from_secs(5),
        "the slow request to reach a backend",
        || (a.hits() + b.hits() == 1).then_some(()),
    );
    let busy = if a.hits() == 1 { "a" } else { "b" };
    let seen = tally(&base, 10, |_, r| r);
    assert_eq!(
        seen.get(busy),
        None,
        "no request may go to the busy backend {busy}: {seen:?}"
    );
    assert_eq!(slow.join().unwrap(), busy);
    // Both idle again: traffic is shared.
    let seen = tally(&base, 10, |_, r| r);
    assert_eq!(seen.len(), 2, "{seen:?}");
}

/// With nothing in flight every backend ties; the weights decide (they were ignored: 1 and 3
/// split sequential requests 20/20).
#[test]
fn least_conn_follows_weights_when_idle() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let (_r, base) = start(&[(&a, 1), (&b, 3)], "    selection: least_conn");
    let seen = tally(&base, 40, |_, r| r);
    // A request still being logged when the next arrives counts as in flight: a little slack.
    let on_a = seen.get("a").copied().unwrap_or(0);
    assert!((7..=13).contains(&on_a), "{seen:?}");
}
