//! `/dashboard` rendered by a real headless Chromium (Debian's `chromium`, installed by
//! scripts/deps.sh): what it shows for a pool with one backend down, that names from the
//! config are shown as text, the rates it computes between polls, the stale warning once
//! Rampart stops answering, and a large instance's troubles first with the rest folded.
//! Screenshots are saved under the target dir for people to look at.

mod common;
use chrono::Datelike;
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Shaped like `openssl rand -base64` output: `+`, `/` and `=` must survive the URL.
const TOKEN: &str = "s3c+r/t==";
/// A project name that would be markup if the page inserted names as HTML.
const HOSTILE_NAME: &str = r#"<b>news</b> & "blog""#;
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(90);

/// `chromium` on PATH (or `$RAMPART_CHROMIUM`). Missing is a failure, not a skip: scripts/deps.sh
/// installs it.
fn chromium_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RAMPART_CHROMIUM") {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .expect("`chromium` is not on PATH: run scripts/deps.sh (Debian package `chromium`)")
}

/// A headless Chromium run, started in the background so the test can act while it loads.
struct Chromium {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Chromium {
    /// Loads `url`, lets its scripts run for `budget` of virtual time (timers fire at once
    /// when nothing else is pending; virtual time waits for network fetches), then does what
    /// `action` asks (`--dump-dom`, `--screenshot=PATH`).
    fn spawn(url: &str, budget: Duration, action: &[&str]) -> Chromium {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(chromium_bin())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1920,1080",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .arg(format!("--virtual-time-budget={}", budget.as_millis()))
            .args(action)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromium_bin().display()));
        Chromium { child, dir }
    }

    /// Waits for the exit and returns stdout (the DOM with `--dump-dom`).
    fn finish(mut self) -> String {
        let status = poll_until(CHROMIUM_DEADLINE, "chromium to exit", || {
            self.child.try_wait().unwrap()
        });
        let read = |name| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        assert!(
            status.success(),
            "chromium failed ({status}):\n{}",
            read("stderr")
        );
        read("stdout")
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dump_dom(url: &str, budget: Duration) -> String {
    Chromium::spawn(url, budget, &["--dump-dom"]).finish()
}

/// Takes a 1920×1080 screenshot of `url` into the target dir and returns its path.
fn screenshot(url: &str, budget: Duration, name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&path);
    Chromium::spawn(url, budget, &[&format!("--screenshot={}", path.display())]).finish();
    check_png(&path);
    path
}

/// A PNG of the window size, and more than a blank page.
fn check_png(path: &Path) {
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    let (width, height) = (&png[16..20], &png[20..24]);
    assert_eq!(u32::from_be_bytes(width.try_into().unwrap()), 1920);
    assert_eq!(u32::from_be_bytes(height.try_into().unwrap()), 1080);
    assert!(
        png.len() > 20_000,
        "{} looks blank ({} bytes)",
        path.display(),
        png.len()
    );
    println!("dashboard screenshot: {}", path.display());
}

/// The outer HTML of the `<tag ...>` element carrying `attr` (e.g. `data-pool="app"`).
fn element<'a>(dom: &'a str, tag: &str, attr: &str) -> &'a str {
    let at = dom
        .find(attr)
        .unwrap_or_else(|| panic!("no element with {attr} in the page:\n{dom}"));
    let start = dom[..at].rfind(&format!("<{tag}")).unwrap();
    let end = at + dom[at..].find(&format!("</{tag}>")).unwrap() + tag.len() + 3;
    &dom[start..end]
}

/// The text a person reads in `html`: tags dropped, entities decoded, spaces collapsed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        out.push(' ');
        rest = rest[i..].find('>').map_or("", |j| &rest[i + j + 1..]);
    }
    out.push_str(rest);
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace('\u{2009}', ""); // thousands separator
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// No JavaScript value leaked into the page as text.
fn assert_rendered_cleanly(dom: &str) {
    let body = &dom[dom.find("<body").unwrap()..dom.find("<script").unwrap()];
    for leak in ["null", "undefined", "NaN", "[object"] {
        assert!(!body.contains(leak), "`{leak}` shown in the page:\n{body}");
    }
}

/// The number just before `word` in `text` (e.g. 7 in "7 failures").
fn number_before(text: &str, word: &str) -> f64 {
    let head = &text[..text
        .find(word)
        .unwrap_or_else(|| panic!("no `{word}` in: {text}"))];
    let n = head.split_whitespace().last().unwrap_or("");
    n.parse()
        .unwrap_or_else(|_| panic!("no number before `{word}` in: {text}"))
}

/// The values of every `attr="..."` in the page, in order.
fn attribute_values<'a>(dom: &'a str, attr: &str) -> Vec<&'a str> {
    dom.split(&format!("{attr}=\""))
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect()
}

/// `127.0.0.1:PORT` of the admin service.
fn admin_addr(r: &Rampart) -> String {
    r.admin_url("").trim_start_matches("http://").to_string()
}

fn config(
    admin: &str,
    http: &str,
    a: &Upstream,
    b: &Upstream,
    token: bool,
    (default_cert, shop_cert): (&Path, &Path),
) -> String {
    let token = if token {
        format!(", token: {TOKEN}")
    } else {
        String::new()
    };
    format!(
        r#"instance_name: edge-dash
admin: {{ listen: "{admin}"{token} }}
access_log: {{ target: off }}
listeners:
  http: {{ address: "{http}" }}
  https: {{ address: "{https}", tls: {{ cert: "{dc}.crt", key: "{dc}.key" }} }}
pools:
  app:
    backends: ["{a}", "{b}"]
    health_check: {{ kind: http, path: /healthz, interval: 200ms, timeout: 500ms, rise: 1, fall: 2 }}
  static:
    backends: ["static.test:{a_port}"]
    health_check: {{ kind: tcp, interval: 1s }}
projects:
  - name: shop
    hosts: [shop.test]
    pool: app
    tls: {{ cert: "{sc}.crt", key: "{sc}.key" }}
    rules:
      - {{ id: moved, match: {{ path: /moved }}, redirect: {{ to: /new }} }}
      - {{ id: old, match: {{ path_prefix: /old/ }}, redirect: {{ to: /new }} }}
      - {{ id: gone, match: {{ path: /gone }}, respond: {{ status: 410 }} }}
  - name: '{HOSTILE_NAME}'
    hosts: [news.test]
    pool: static
    rules_files: ["rules/*.yaml"]
"#,
        a = a.addr_string(),
        a_port = a.addr().port(),
        b = b.addr_string(),
        https = free_addr(),
        dc = default_cert.display(),
        sc = shop_cert.display(),
    )
}

/// Rampart with pool `app` = [a (up), b (stopped)], polled until /status reports b down.
fn start_with_one_backend_down(token: bool) -> (Rampart, Upstream, Upstream) {
    let (a, mut b) = (Upstream::start("a"), Upstream::start("b"));
    b.stop();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/news.yaml"),
        "- { id: archive, match: { path_prefix: /archive/ }, redirect: { to: /old } }\n- { id: feed, match: { path: /rss }, redirect: { to: /feed.xml } }\n",
    )
    .unwrap();
    // shop's certificate ends in 5 to 6 days: the page warns.
    let soon = chrono::Utc::now().date_naive() + chrono::Days::new(6);
    let ca = TestCa::new();
    let (default_cert, shop_cert) = (dir.path().join("default"), dir.path().join("shop"));
    ca.issue(&["default.test"]).copy_to(dir.path(), "default");
    ca.issue_until(
        &["shop.test"],
        (soon.year(), soon.month() as u8, soon.day() as u8),
    )
    .copy_to(dir.path(), "shop");
    let yaml = config(
        &free_addr(),
        &free_addr(),
        &a,
        &b,
        token,
        (&default_cert, &shop_cert),
    );
    // Pool `static` names its backend `static.test`, which this hosts file alone resolves.
    let hosts = dir.path().join("hosts");
    let nss = dir.path().join("nsswitch.conf");
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.1 static.test\n").unwrap();
    std::fs::write(&nss, "hosts: files\n").unwrap();
    let mounts = [
        Mount::FileOver(&hosts, "/etc/hosts"),
        Mount::FileOver(&nss, "/etc/nsswitch.conf"),
    ];
    let r = Rampart::start_with_mounts(dir, &yaml, &mounts);
    let b_addr = b.addr_string();
    poll_until(Duration::from_secs(10), "b to be reported down", || {
        let s = r.status();
        let down = s["pools"][0]["backends"][1].clone();
        (down["address"] == b_addr.as_str() && down["healthy"] == false).then_some(())
    });
    (r, a, b)
}

#[test]
fn dashboard_shows_a_down_backend_in_headless_chromium() {
    let (r, a, b) = start_with_one_backend_down(true);
    // Like /status, the page needs the token; a browser gives it as `?token=`.
    let admin = admin_addr(&r);
    assert_eq!(raw_get(&admin, "/dashboard", &[]).unwrap().status, 401);
    assert_eq!(
        raw_get(&admin, "/dashboard?token=wrong", &[])
            .unwrap()
            .status,
        401
    );
    let page = raw_get(&admin, &format!("/dashboard?token={TOKEN}"), &[]).unwrap();
    assert_eq!(page.status, 200);
    // Percent-encoded, as a browser or a script may send it.
    let encoded = "/dashboard?token=s3c%2Br%2Ft%3D%3D";
    assert_eq!(raw_get(&admin, encoded, &[]).unwrap().status, 200);
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    let open = raw_get(&admin, "/status", &[]).unwrap();
    assert_eq!(open.status, 401);

    // Some traffic, and a rules file that breaks after start (the previous rules stay).
    let base = r.listener_url("http");
    for path in ["/x", "/y", "/moved", "/gone"] {
        get(&format!("{base}{path}"), "shop.test");
    }
    std::fs::write(
        r.dir().join("rules/broken.yaml"),
        "- { id: x, match: { pathx: / } }\n",
    )
    .unwrap();
    let s = poll_until(
        Duration::from_secs(10),
        "the failed reload in /status",
        || {
            let s = r.status();
            let reloaded = !s["projects"][1]["last_reload_error"].is_null();
            (reloaded && s["projects"][0]["requests"] == 4).then_some(s)
        },
    );
    let down = &s["pools"][0]["backends"][1];
    let error = down["last_check_result"].as_str().unwrap().to_string();
    let failures_before = down["consecutive_failures"].as_f64().unwrap();
    assert!(failures_before >= 2.0, "{down}");
    // What /status adds for the page: RFC 3339 times, streaks, reload results.
    assert!(
        down["last_check"].as_str().unwrap().ends_with('Z'),
        "{down}"
    );
    assert_eq!(down["consecutive_successes"], 0, "{down}");
    assert!(s["pools"][0]["backends"][0]["consecutive_successes"].as_u64() >= Some(1));
    let news = &s["projects"][1];
    assert_eq!(
        news["last_reload_result"], news["last_reload_error"],
        "{news}"
    );
    assert_eq!(s["projects"][0]["last_reload_result"], "ok");
    assert!(s["now"].as_str().unwrap().ends_with('Z'));

    let url = r.admin_url(&format!("/dashboard?token={TOKEN}"));
    let dom = dump_dom(&url, Duration::from_secs(3));

    // The script ran and filled in what only /status knows.
    assert!(
        dom.contains(r#"<span class="instance" id="instance">edge-dash</span>"#),
        "{dom}"
    );
    assert!(!dom.contains("class=\"empty"), "no data shown:\n{dom}");
    assert!(
        dom.contains(" · 0 in flight<"),
        "requests in flight shown:\n{dom}"
    );
    assert_rendered_cleanly(&dom);
    let summary = text(element(&dom, "div", r#"id="summary""#));
    assert!(summary.contains("1 of 3 backends down"), "{summary}");
    assert!(
        summary.contains("1 project failed to reload rules"),
        "{summary}"
    );
    assert!(
        summary.contains("certificate of shop on https expires in 5 days")
            || summary.contains("certificate of shop on https expires in 6 days"),
        "{summary}"
    );
    assert!(!summary.contains("of default"), "{summary}");
    assert!(
        element(&dom, "div", r#"id="stale""#).contains("hidden"),
        "not stale:\n{dom}"
    );

    let app = element(&dom, "article", r#"data-pool="app""#);
    assert!(text(app).contains("1 of 2 up"), "{app}");
    let b_row = element(app, "tr", &format!(r#"data-backend="{}""#, b.addr_string()));
    assert!(b_row.starts_with(r#"<tr class="backend down""#), "{b_row}");
    let b_text = text(b_row);
    assert!(
        b_text.contains("DOWN")
            && b_text.contains(&error)
            && (b_text.contains(" ago") || b_text.contains("just now")),
        "{b_text} / {error}"
    );
    assert!(
        number_before(&b_text, " failures") >= failures_before,
        "{b_text}"
    );
    let a_row = element(app, "tr", &format!(r#"data-backend="{}""#, a.addr_string()));
    assert!(a_row.starts_with(r#"<tr class="backend up""#), "{a_row}");
    let a_text = text(a_row);
    assert!(a_text.contains("UP") && a_text.contains("ok"), "{a_text}");
    // A backend given by host name shows the name, and its pool when names were resolved.
    let named = text(element(&dom, "article", r#"data-pool="static""#));
    assert!(
        named.contains(&format!(
            "{} static.test:{}",
            a.addr_string(),
            a.addr().port()
        )) && named.contains("names resolved at start"),
        "{named}"
    );

    let https = text(element(&dom, "tr", r#"data-listener="https""#));
    assert!(https.contains("HTTPS · h2 (ALPN)"), "{https}");
    let http = text(element(&dom, "tr", r#"data-listener="http""#));
    assert!(http.contains("HTTP/1.1"), "{http}");
    let shop = element(&dom, "tr", r#"data-project="shop""#);
    assert!(
        shop.contains(r#"<td class="num rules big">3</td>"#),
        "{shop}"
    );
    assert!(text(shop).contains("✔ ok"), "{shop}");
    assert_eq!(number_before(&text(shop), " errors"), 0.0, "{shop}");
    // Names from the config are text, never markup.
    // (Text nodes are serialized escaped by every Chromium; attribute values only by newer ones.)
    let escaped = r#"<div class="name">&lt;b&gt;news&lt;/b&gt; &amp; "blog"</div>"#;
    assert!(dom.contains(escaped), "{dom}");
    assert!(
        !dom.contains("><b>"),
        "a project name became markup:\n{dom}"
    );
    let news = element(&dom, "tr", escaped);
    let news_text = text(news);
    assert!(
        news.contains(r#"<td class="num rules big">2</td>"#),
        "previous rules kept: {news}"
    );
    assert!(news_text.contains("failed, previous rules kept") && news_text.contains("broken.yaml"));

    screenshot(
        &url,
        Duration::from_secs(3),
        "dashboard-one-backend-down.png",
    );
}

/// Relays the page's requests to the admin service, one connection each, and before the n-th
/// `/status` sends `n` with an acknowledgement channel on `events` and waits for the ack.
/// Once the admin service is gone the browser's connection is closed unanswered.
fn relay(admin: String, events: mpsc::Sender<(usize, mpsc::Sender<()>)>) -> String {
    let listener = bind_unused();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut statuses = 0;
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let head = read_head(&mut conn).unwrap_or_else(|partial| partial);
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("/").to_string();
            if path.starts_with("/status") {
                statuses += 1;
                let (ack, acked) = mpsc::channel();
                if events.send((statuses, ack)).is_ok() {
                    let _ = acked.recv();
                }
            }
            let auth = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .map(|l| format!("{l}\r\n"))
                .unwrap_or_default();
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\n{auth}Connection: close\r\n\r\n");
            if let Ok(response) = raw_request(&admin, request.as_bytes()) {
                let _ = conn.write_all(&response);
            }
        }
    });
    addr
}

#[test]
fn dashboard_computes_rates_and_warns_when_rampart_stops() {
    let (mut r, _a, _b) = start_with_one_backend_down(false);
    let (events, event) = mpsc::channel();
    let relay = relay(admin_addr(&r), events);
    let url = format!("http://{relay}/dashboard");
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-stale.png");
    let _ = std::fs::remove_file(&png);
    let screenshot = format!("--screenshot={}", png.display());
    let chromium = Chromium::spawn(&url, Duration::from_secs(10), &["--dump-dom", &screenshot]);
    // Poll 1 as is; 40 requests (10 of them 5xx) before poll 2; Rampart stopped before poll 3.
    let base = r.listener_url("http");
    let end = Instant::now() + CHROMIUM_DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let (n, ack) = event.recv_timeout(left).expect("the page polls /status");
        match n {
            1 => {}
            2 => {
                for i in 0..40 {
                    let path = if i % 4 == 0 { "/status/503" } else { "/ok" };
                    get(&format!("{base}{path}"), "shop.test");
                }
                poll_until(Duration::from_secs(5), "counters to settle", || {
                    (r.status()["projects"][0]["requests"] == 40).then_some(())
                });
            }
            _ => {
                r.stop();
                let _ = ack.send(());
                break;
            }
        }
        let _ = ack.send(());
    }
    drop(event); // later polls go straight on, to a closed port
    let dom = chromium.finish();
    check_png(&png);

    assert!(dom.contains(r#"<body class="stale""#), "{dom}");
    assert_rendered_cleanly(&dom);
    let banner = element(&dom, "div", r#"id="stale""#);
    assert!(!banner.contains("hidden"), "{banner}");
    assert!(text(banner).contains("STALE"), "{banner}");
    assert!(text(element(&dom, "span", r#"id="updated""#)).contains("⚠ Updated"));
    // The figures of the last good poll stay, with rates over the two polls.
    let shop = text(element(&dom, "tr", r#"data-project="shop""#));
    assert!(number_before(&shop, " 25.0 %") > 0.0, "requests/s: {shop}");
    assert_eq!(number_before(&shop, " 10 errors"), 40.0, "{shop}");
}

/// A fleet's instance with many pools and projects: those needing attention come first, and
/// past 12 pools and 25 projects the rest wait behind a button saying how many there are.
#[test]
fn many_pools_show_the_down_ones_first_and_fold_the_rest() {
    let up = Upstream::start("up");
    let dead = free_addr();
    let (http, admin) = (free_addr(), free_addr());
    let mut yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n"
    );
    let check = "health_check: { kind: tcp, interval: 200ms, timeout: 300ms, rise: 1, fall: 1 }";
    for i in 0..30 {
        yaml += &format!(
            "  p{i:02}: {{ backends: [\"{}\"], {check} }}\n",
            up.addr_string()
        );
    }
    yaml += &format!("  zz-dead: {{ backends: [\"{dead}\"], {check} }}\nprojects:\n");
    for i in 0..30 {
        yaml += &format!("  - {{ name: s{i:02}, hosts: [s{i}.test], pool: p{i:02} }}\n");
    }
    yaml += "  - { name: zz-broken, hosts: [zz.test], pool: zz-dead, rules_files: [\"rules/*.yaml\"] }\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let r = Rampart::start_in(dir, &yaml);
    std::fs::write(
        r.dir().join("rules/broken.yaml"),
        "- { id: x, match: { pathx: / } }\n",
    )
    .unwrap();
    poll_until(
        Duration::from_secs(10),
        "the dead pool and the failed reload",
        || {
            let s = r.status();
            let pool = s["pools"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == "zz-dead")?
                .clone();
            let project = s["projects"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == "zz-broken")?
                .clone();
            (pool["backends"][0]["healthy"] == false && !project["last_reload_error"].is_null())
                .then_some(())
        },
    );
    let dom = dump_dom(&r.admin_url("/dashboard"), Duration::from_secs(3));
    assert_rendered_cleanly(&dom);
    let pools = attribute_values(&dom, "data-pool");
    assert_eq!(pools.len(), 12, "{pools:?}");
    assert_eq!(pools[0], "zz-dead", "the dead pool first: {pools:?}");
    assert_eq!(pools[1], "p00", "then /status order: {pools:?}");
    let pools_toggle = text(element(&dom, "button", "id=\"pools-toggle\""));
    assert_eq!(pools_toggle, "Show all 31 pools (19 more)");
    let projects = attribute_values(&dom, "data-project");
    assert_eq!(projects.len(), 25, "{projects:?}");
    assert_eq!(
        projects[0], "zz-broken",
        "the failed reload first: {projects:?}"
    );
    let projects_toggle = text(element(&dom, "button", "id=\"projects-toggle\""));
    assert_eq!(projects_toggle, "Show all 31 projects (6 more)");
}
