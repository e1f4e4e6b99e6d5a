//! The admin service's connections are limited in number and time, so that clients holding
//! them open (slowloris) can neither take the process's file descriptors from the proxy nor
//! keep monitoring out for more than a while.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// As in `src/admin/connections.rs`.
const MAX_CONNECTIONS: usize = 256;
const CONNECTION_TIME: Duration = Duration::from_secs(30);

#[test]
fn slow_admin_clients_are_limited_and_cut() {
    let up = Upstream::start("up");
    let (http, admin) = (free_addr(), free_addr());
    let r = Rampart::start(&format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app }}\n",
        up.addr_string()
    ));
    // Clients that begin a head and never end it, each holding its connection. Each is
    // answered a first request before: the service has counted it, so the probe below
    // cannot be counted before one of them (tasks of connections accepted together may
    // start in any order).
    let began = Instant::now();
    let slow: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|i| {
            let mut c = TcpStream::connect(&admin).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap();
            let head = read_head(&mut c).unwrap_or_else(|got| {
                panic!("slow connection {i}: {:?}", String::from_utf8_lossy(&got))
            });
            let head = RawResponse::parse(&head).expect("a response head");
            assert_eq!(head.status, 200, "slow connection {i}");
            let length: usize = head.header("content-length").unwrap().parse().unwrap();
            c.read_exact(&mut vec![0; length]).unwrap();
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\n")
                .unwrap();
            c
        })
        .collect();

    // One more is told so at once, rather than held or reset.
    let refused = poll_until(Duration::from_secs(10), "a refusal", || {
        raw_get(&admin, "/healthz", &[])
            .ok()
            .filter(|r| r.status == 503)
    });
    assert_eq!(
        refused.text(),
        "Too many connections to the admin service.\n"
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    let log = r.wait_for_log("admin: 256 connections open", Duration::from_secs(5));
    assert!(log.contains("refusing new ones"), "{log}");
    // The proxy is not concerned.
    assert_eq!(get(&format!("http://{http}/"), "a.test").status(), 200);

    // The slow ones are closed once their time is up, and the admin service answers again.
    for mut c in slow {
        c.set_read_timeout(Some(CONNECTION_TIME + Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 256];
        let read = c.read(&mut buf);
        assert!(
            matches!(read, Ok(0)),
            "a slow admin connection is closed; read gave {read:?}: {:?}",
            String::from_utf8_lossy(&buf)
        );
    }
    let held = began.elapsed();
    assert!(
        held >= CONNECTION_TIME && held < CONNECTION_TIME + Duration::from_secs(20),
        "closed after {held:?}"
    );
    assert_eq!(r.admin_get("/healthz").status, 200);
}
