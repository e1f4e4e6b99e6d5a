//! Backends given by host name: every address a name resolves to serves, names are resolved
//! again every `resolve_interval` (traffic, `/status`, health checks and metrics follow), and a
//! name that stops resolving keeps its last addresses. Rampart runs with the test's own
//! `/etc/hosts` (a mount namespace of its own), so the real system resolver answers it.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Names are resolved again this often in these tests.
const ROUND: &str = "200ms";
const DEADLINE: Duration = Duration::from_secs(20);

/// Upstreams named `ip` on 127.0.0.2, .3 and .4 (loopback addresses other than 127.0.0.1),
/// all on one port, which the returned listener keeps on 127.0.0.1 so no other test takes it.
fn upstreams_on_one_port() -> (std::net::TcpListener, u16, Vec<Upstream>) {
    for _ in 0..20 {
        let held = bind_unused();
        let port = held.local_addr().unwrap().port();
        let started: Result<Vec<_>, _> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
            .into_iter()
            .map(|ip| Upstream::start_at(ip, SocketAddr::new(ip.parse().unwrap(), port)))
            .collect();
        if let Ok(ups) = started {
            return (held, port, ups);
        }
    }
    panic!("no port free on 127.0.0.2-4 after 20 tries");
}

/// The test's resolver files: `hosts` (rewritten in place by `write_hosts`), and a
/// `resolv.conf` and `nsswitch.conf` that end every lookup there (a name not in it fails at
/// once, whatever DNS the machine has).
struct Resolver {
    _dir: tempfile::TempDir,
    hosts: PathBuf,
    resolv: PathBuf,
    nss: PathBuf,
}

impl Resolver {
    fn new(hosts: &str) -> Resolver {
        Resolver::with_dns(hosts, None)
    }

    /// With `dns`, names not in `hosts` are asked of that server, waiting up to 30 s for it.
    fn with_dns(hosts: &str, dns: Option<std::net::IpAddr>) -> Resolver {
        let dir = tempfile::tempdir().unwrap();
        let r = Resolver {
            hosts: dir.path().join("hosts"),
            resolv: dir.path().join("resolv.conf"),
            nss: dir.path().join("nsswitch.conf"),
            _dir: dir,
        };
        let (resolv, nss) = match dns {
            Some(ip) => (
                format!("nameserver {ip}\noptions timeout:30 attempts:1\n"),
                "hosts: files dns\n",
            ),
            None => (
                "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n".into(),
                "hosts: files\n",
            ),
        };
        std::fs::write(&r.resolv, resolv).unwrap();
        std::fs::write(&r.nss, nss).unwrap();
        r.write_hosts(hosts);
        r
    }

    /// In place: the bind mount keeps the file's inode.
    fn write_hosts(&self, lines: &str) {
        std::fs::write(&self.hosts, format!("127.0.0.1 localhost\n{lines}")).unwrap();
    }

    /// The three files over the system's.
    fn mounts(&self) -> [Mount<'_>; 3] {
        [
            Mount::FileOver(&self.hosts, "/etc/hosts"),
            Mount::FileOver(&self.resolv, "/etc/resolv.conf"),
            Mount::FileOver(&self.nss, "/etc/nsswitch.conf"),
        ]
    }

    fn start(&self, yaml: &str) -> Rampart {
        Rampart::start_with_mounts(tempfile::tempdir().unwrap(), yaml, &self.mounts())
    }
}

/// Which upstream answered each of `n` requests to `host`, counted.
fn served(base: &str, host: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        *seen.entry(get_echo(base, host).upstream).or_default() += 1;
    }
    seen
}

/// `/status`'s backends of `pool`, as (address, name).
fn members(r: &Rampart, pool: &str) -> Vec<(String, String)> {
    let status = r.status();
    let pool = status["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == pool)
        .unwrap_or_else(|| panic!("no pool {pool} in /status: {status}"))
        .clone();
    pool["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["address"].as_str().unwrap().to_string(),
                b["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The admin service and listener of the tests' configs; no access log.
fn head(http: &str, admin: &str) -> String {
    format!(
        r#"admin: {{ listen: "{admin}" }}
access_log: {{ target: off }}
listeners:
  http: {{ address: "{http}" }}
"#
    )
}

fn config(port: u16, http: &str, admin: &str) -> String {
    format!(
        r#"{}pools:
  app:
    backends: ["app.test:{port}"]
    resolve_interval: {ROUND}
    health_check: {{ kind: tcp, interval: {ROUND} }}
  pinned:
    backends: ["app.test:{port}"]
    resolve_interval: never
projects:
  - {{ name: site, hosts: [app.example], pool: app }}
  - {{ name: old, hosts: [pinned.example], pool: pinned }}
"#,
        head(http, admin)
    )
}

#[test]
fn a_name_serves_every_address_it_resolves_to_and_follows_its_changes() {
    let (_held, port, _ups) = upstreams_on_one_port();
    let resolver = Resolver::new("127.0.0.2 app.test\n127.0.0.3 app.test\n");
    let (http, admin) = (free_addr(), free_addr());
    let r = resolver.start(&config(port, &http, &admin));
    let base = format!("http://{http}/");
    let (a2, a3, a4) = (
        format!("127.0.0.2:{port}"),
        format!("127.0.0.3:{port}"),
        format!("127.0.0.4:{port}"),
    );
    let name = format!("app.test:{port}");

    // Both addresses of the name serve, in turn, as two backends listed under the name.
    let seen = served(&base, "app.example", 6);
    assert_eq!(
        seen,
        BTreeMap::from([("127.0.0.2".into(), 3), ("127.0.0.3".into(), 3)])
    );
    assert_eq!(
        members(&r, "app"),
        [(a2.clone(), name.clone()), (a3.clone(), name.clone())]
    );
    assert_eq!(
        r.status()["pools"][0]["resolution"]["interval_ms"],
        200,
        "{}",
        r.status()
    );

    // The name moves to another address: the pool follows within a round or two.
    resolver.write_hosts("127.0.0.4 app.test\n");
    poll_until(DEADLINE, "the pool to take the new address", || {
        (members(&r, "app") == [(a4.clone(), name.clone())]).then_some(())
    });
    assert_eq!(
        served(&base, "app.example", 4),
        BTreeMap::from([("127.0.0.4".into(), 4)])
    );
    r.wait_for_log(
        &format!("pool app: backend {name} now resolves to {a4} (was {a2}, {a3})"),
        DEADLINE,
    );
    // Gone backends leave the metrics; the new one is health-checked.
    let metrics = r.metrics();
    assert!(
        metric_in(
            &metrics,
            &format!("rampart_backend_healthy{{backend=\"{a2}\",pool=\"app\"}}")
        )
        .is_none(),
        "{metrics}"
    );
    assert_eq!(
        metric_in(
            &metrics,
            &format!("rampart_backend_healthy{{backend=\"{a4}\",pool=\"app\"}}")
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        metric_in(
            &metrics,
            "rampart_backend_resolutions_total{pool=\"app\",result=\"changed\"}"
        ) >= Some(1.0),
        "{metrics}"
    );
    poll_until(DEADLINE, "a health check of the new address", || {
        let status = r.status();
        let b = status["pools"][0]["backends"][0].clone();
        (b["address"] == a4.as_str() && !b["last_check"].is_null()).then_some(())
    });
    // `resolve_interval: never` keeps what the start found, however many rounds the other
    // pool has had.
    assert_eq!(
        members(&r, "pinned"),
        [(a2.clone(), name.clone()), (a3.clone(), name.clone())]
    );
    assert_eq!(
        served(&base, "pinned.example", 4),
        BTreeMap::from([("127.0.0.2".into(), 2), ("127.0.0.3".into(), 2)])
    );

    // The name stops resolving: its last address stays in use, and the failure shows.
    resolver.write_hosts("");
    let line = r.wait_for_log(
        &format!("pool app: backend {name} did not resolve"),
        DEADLINE,
    );
    assert!(
        line.contains(&format!("its last addresses stay in use: {a4}")),
        "{line}"
    );
    assert_eq!(
        served(&base, "app.example", 3),
        BTreeMap::from([("127.0.0.4".into(), 3)])
    );
    let status = r.status();
    let result = status["pools"][0]["resolution"]["last_result"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(result.starts_with(&format!("{name}: ")), "{status}");
    assert!(
        r.metric("rampart_backend_resolutions_total{pool=\"app\",result=\"failed\"}") >= Some(1.0)
    );
}

/// A DNS server that never answers: a UDP socket on port 53 of a loopback address, never read.
fn silent_dns_server() -> std::net::UdpSocket {
    (60..120)
        .find_map(|last| std::net::UdpSocket::bind(format!("127.0.0.{last}:53")).ok())
        .expect("no free port 53 on 127.0.0.60-119")
}

/// A name whose lookup hangs (its DNS server does not answer) holds up neither the pool's
/// other names nor its next rounds: the other name's new address is taken while that lookup
/// waits for its 30 s, and the hanging name keeps its address.
#[test]
fn a_lookup_that_hangs_holds_up_no_other_name() {
    let (_held, port, _ups) = upstreams_on_one_port();
    let dns = silent_dns_server();
    let resolver = Resolver::with_dns(
        "127.0.0.2 app.test\n127.0.0.3 slow.test\n",
        Some(dns.local_addr().unwrap().ip()),
    );
    let (http, admin) = (free_addr(), free_addr());
    let r = resolver.start(&format!(
        r#"{}pools:
  app:
    backends: ["slow.test:{port}", "app.test:{port}"]
    resolve_interval: {ROUND}
projects:
  - {{ name: site, hosts: ["*"], pool: app }}
"#,
        head(&http, &admin)
    ));
    let (slow, app) = (format!("slow.test:{port}"), format!("app.test:{port}"));
    // slow.test is now asked of the silent server; app.test moves.
    resolver.write_hosts("127.0.0.4 app.test\n");
    poll_until(
        Duration::from_secs(10),
        "app.test's new address while slow.test's lookup hangs",
        || {
            (members(&r, "app")
                == [
                    (format!("127.0.0.3:{port}"), slow.clone()),
                    (format!("127.0.0.4:{port}"), app.clone()),
                ])
            .then_some(())
        },
    );
    assert_eq!(
        served(&format!("http://{http}/"), "any.example", 4),
        BTreeMap::from([("127.0.0.3".into(), 2), ("127.0.0.4".into(), 2)])
    );
}

/// A TLS pool of backends given by different host names and no `sni`: each is sent its own
/// name as SNI and its certificate checked against it, by requests and by health checks.
#[test]
fn tls_backends_given_by_different_names_are_each_checked_against_their_own() {
    let ca = TestCa::new();
    let one = Upstream::start_tls("one", &ca.issue(&["one.test"]));
    let two = Upstream::start_tls("two", &ca.issue(&["two.test"]));
    let resolver = Resolver::new("127.0.0.1 one.test two.test\n");
    let (http, admin) = (free_addr(), free_addr());
    let (p1, p2) = (one.addr().port(), two.addr().port());
    let r = resolver.start(&format!(
        r#"{}pools:
  app:
    backends: ["one.test:{p1}", "two.test:{p2}"]
    tls: {{ verify: true, ca_file: "{}" }}
    retries: 0
    health_check: {{ kind: http, path: /healthz, interval: {ROUND} }}
projects:
  - {{ name: site, hosts: ["*"], pool: app }}
"#,
        head(&http, &admin),
        ca.ca_path().display()
    ));
    assert_eq!(
        served(&format!("http://{http}/"), "any.example", 4),
        BTreeMap::from([("one".into(), 2), ("two".into(), 2)])
    );
    poll_until(DEADLINE, "a passed check of each backend", || {
        let status = r.status();
        let backends = status["pools"][0]["backends"].as_array().unwrap().clone();
        backends
            .iter()
            .all(|b| b["last_check_result"] == "ok")
            .then_some(())
    });
    assert_eq!(one.health_host(), Some(format!("one.test:{p1}")));
    assert_eq!(two.health_host(), Some(format!("two.test:{p2}")));
}

/// An HTTP check's Host, when the check names none and the pool has no TLS name: the backend's
/// name when it is given by one (as `preserve_host: false` sends it), `localhost` for an
/// address, and the check's `host` when it gives one.
#[test]
fn http_checks_of_a_named_backend_send_its_name_as_host() {
    let (_held, port, ups) = upstreams_on_one_port();
    let resolver = Resolver::new("127.0.0.2 app.test\n127.0.0.3 other.test\n");
    let (http, admin) = (free_addr(), free_addr());
    let check = format!("health_check: {{ kind: http, path: /healthz, interval: {ROUND} }}");
    let _r = resolver.start(&format!(
        r#"{}pools:
  named:
    backends: ["app.test:{port}"]
    {check}
  given:
    backends: ["other.test:{port}"]
    health_check: {{ kind: http, path: /healthz, host: status.internal, interval: {ROUND} }}
  address:
    backends: ["127.0.0.4:{port}"]
    {check}
projects:
  - {{ name: a, hosts: [a.example], pool: named }}
  - {{ name: b, hosts: [b.example], pool: given }}
  - {{ name: c, hosts: [c.example], pool: address }}
"#,
        head(&http, &admin)
    ));
    let host_of = |up: &Upstream| poll_until(DEADLINE, "a health check", || up.health_host());
    assert_eq!(host_of(&ups[0]), format!("app.test:{port}"));
    assert_eq!(host_of(&ups[1]), "status.internal");
    assert_eq!(host_of(&ups[2]), "localhost");
}

/// `rampart` with `args` and `-c` `config` (written to a file), in the mount namespace of a
/// resolver that knows no name: the exit code, stdout, stderr and the config's path.
fn without_names(args: &[&str], config: &str) -> (Option<i32>, String, String, PathBuf) {
    let resolver = Resolver::new("");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.yaml");
    std::fs::write(&path, config).unwrap();
    let mut check = std::process::Command::new(rampart_bin());
    check.args(args).arg("-c").arg(&path);
    in_mount_namespace(&mut check, &resolver.mounts());
    let out = check.output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr),
        path,
    )
}

const UNRESOLVABLE: &str = "listeners:\n  http: { address: \"127.0.0.1:1\" }\npools:\n  app:\n    backends: [\"nowhere.test:80\", { address: \"elsewhere.test:80\", weight: 2 }]\nprojects:\n  - { name: site, hosts: [\"*\"], pool: app }\n";

/// `check --no-resolve` (a CI runner that cannot resolve the fleet's names) checks names for
/// their form alone, as `rules test --no-resolve` does; `run` and a plain `check` resolve them.
#[test]
fn check_no_resolve_takes_names_it_cannot_resolve() {
    let (code, stdout, stderr, _) = without_names(&["check", "--no-resolve"], UNRESOLVABLE);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(
            "backends nowhere.test:80 (not resolved), elsewhere.test:80 (not resolved, w2)"
        ),
        "{stdout}"
    );
    // `rules test`, which rule writers run in CI, takes it too: nothing matches (1), no error (2).
    let rules_test = [
        "rules",
        "test",
        "--no-resolve",
        "--project",
        "site",
        "http://a.test/",
    ];
    let (code, stdout, stderr, _) = without_names(&rules_test, UNRESOLVABLE);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("outcome: forward to pool app"), "{stdout}");
    let no_port = UNRESOLVABLE.replace("nowhere.test:80", "nowhere.test");
    let (code, _, stderr, path) = without_names(&["check", "--no-resolve"], &no_port);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:5:16: pools.app.backends[0]: `nowhere.test` has no port number",
            path.display()
        )),
        "{stderr}"
    );
}

/// `check`, and a `run --upgrade` (which would replace a process that serves), refuse a name
/// that does not resolve.
#[test]
fn a_name_that_does_not_resolve_is_a_config_error_for_check_and_upgrades() {
    for command in [&["check"][..], &["run", "--upgrade"]] {
        let (code, _, stderr, config) = without_names(command, UNRESOLVABLE);
        assert_eq!(code, Some(1), "{command:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{}:5:16: pools.app.backends[0]: `nowhere.test:80` does not resolve (failed to lookup address information: Name or service not known): check the name",
                config.display()
            )),
            "{command:?}: {stderr}"
        );
    }
}

/// A fresh start does not wait for a name its resolver cannot answer for yet (a DNS outage at
/// boot would otherwise keep every project of the host down): the other pools serve, the pool
/// without an address answers 503, said in the log and `/status`, and the name is looked up
/// every second until it resolves, even with `resolve_interval: never`.
#[test]
fn a_fresh_start_goes_on_without_a_name_that_does_not_resolve_yet() {
    let (_held, port, _ups) = upstreams_on_one_port();
    let resolver = Resolver::new("");
    let (http, admin) = (free_addr(), free_addr());
    let r = resolver.start(&format!(
        r#"{}pools:
  late: {{ backends: ["late.test:{port}"], resolve_interval: never }}
  other: {{ backends: ["127.0.0.3:{port}"] }}
projects:
  - {{ name: late, hosts: [late.example], pool: late }}
  - {{ name: other, hosts: [other.example], pool: other }}
"#,
        head(&http, &admin)
    ));
    let name = format!("late.test:{port}");
    assert!(
        r.stderr().contains(&format!(
            "pools.late.backends[0]: warning: `{name}` does not resolve"
        )),
        "{}",
        r.stderr()
    );
    let base = format!("http://{http}/");
    assert_eq!(get_echo(&base, "other.example").upstream, "127.0.0.3");
    let answer = get(&base, "late.example");
    assert_eq!(answer.status(), 503);
    r.wait_for_log(
        "pool late: no backend address for project late: its backend names have not resolved yet",
        DEADLINE,
    );
    let status = r.status();
    let late = &status["pools"][0];
    assert_eq!(late["name"], "late", "{status}");
    assert_eq!(late["backends"], serde_json::json!([]), "{status}");
    let why = late["resolution"]["last_result"]
        .as_str()
        .unwrap_or_default();
    assert!(why.starts_with(&format!("{name}: ")), "{status}");

    resolver.write_hosts("127.0.0.2 late.test\n");
    poll_until(DEADLINE, "the name to resolve", || {
        let answer = get(&base, "late.example");
        (answer.status() == 200).then_some(())
    });
    assert_eq!(get_echo(&base, "late.example").upstream, "127.0.0.2");
    r.wait_for_log(
        &format!("pool late: backend {name} resolves to 127.0.0.2:{port}"),
        DEADLINE,
    );
    assert_eq!(members(&r, "late"), [(format!("127.0.0.2:{port}"), name)]);
}
