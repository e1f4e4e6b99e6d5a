//! Rules files (YAML and CSV) loaded with the config, re-read when they change or on SIGHUP,
//! swapped atomically; a broken file leaves the previous rules in force.

mod common;
use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn location(base: &str, path: &str, host: &str) -> Option<String> {
    let r = get(&format!("{base}{path}"), host);
    r.headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
}

#[test]
fn rules_files_load_reload_and_survive_broken_files() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("redirects.csv"), "source,target,status\n# campaign pages\n/old,/new\n\"/a,b\",/ab,302\n//other.test/x,https://other.example/x,308\n").unwrap();
    std::fs::write(
        rules.join("blog.yaml"),
        "- { id: blog, match: { path_prefix: /blog/ }, redirect: { to: \"/articles/{rest}\" } }\n",
    )
    .unwrap();
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - name: site\n    hosts: [\"*\"]\n    pool: app\n    rules: [ {{ id: inline, match: {{ path: /inline }}, respond: {{ status: 204 }} }} ]\n    rules_files: [\"rules/*.csv\", \"rules/*.yaml\"]\n",
        up.addr_string()
    );
    let r = Rampart::start_in(dir, &yaml);
    let base = format!("http://{http}");
    assert_eq!(
        location(&base, "/old?q=1", "a.test").as_deref(),
        Some("/new?q=1")
    );
    assert_eq!(location(&base, "/a,b", "a.test").as_deref(), Some("/ab"));
    assert_eq!(
        location(&base, "/x", "other.test").as_deref(),
        Some("https://other.example/x")
    );
    assert_eq!(
        location(&base, "/x", "a.test"),
        None,
        "host-qualified CSV source"
    );
    assert_eq!(
        location(&base, "/blog/2024/post", "a.test").as_deref(),
        Some("/articles/2024/post")
    );
    assert_eq!(get(&format!("{base}/inline"), "a.test").status(), 204);
    assert_eq!(
        r.metric("rampart_rules_loaded{project=\"site\"}"),
        Some(5.0)
    );

    // A change is picked up without a restart.
    std::fs::write(
        r.dir().join("rules/redirects.csv"),
        "/old,/newer\n/added,/here\n",
    )
    .unwrap();
    poll_until(
        Duration::from_secs(10),
        "the changed CSV to be in force",
        || (location(&base, "/added", "a.test").as_deref() == Some("/here")).then_some(()),
    );
    assert_eq!(location(&base, "/old", "a.test").as_deref(), Some("/newer"));
    assert_eq!(
        r.metric("rampart_rules_loaded{project=\"site\"}"),
        Some(4.0)
    );

    // So is a rewrite that keeps the length and the modification time (`cp -p`, `rsync -a`,
    // `tar`): only the status-change time tells.
    let csv = r.dir().join("rules/redirects.csv");
    let mtime = std::fs::metadata(&csv).unwrap().modified().unwrap();
    std::fs::write(&csv, "/old,/newer\n/added,/hare\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&csv)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    poll_until(
        Duration::from_secs(10),
        "the same-size, same-mtime CSV to be in force",
        || (location(&base, "/added", "a.test").as_deref() == Some("/hare")).then_some(()),
    );

    // A broken file: the previous rules stay, the error is counted and shown.
    std::fs::write(
        r.dir().join("rules/blog.yaml"),
        "- { id: blog, match: { path_regex: '([' }, redirect: { to: /x } }\n",
    )
    .unwrap();
    poll_until(Duration::from_secs(10), "the reload error", || {
        (r.metric("rampart_rules_reloads_total{project=\"site\",result=\"error\"}") == Some(1.0))
            .then_some(())
    });
    assert_eq!(
        location(&base, "/blog/a", "a.test").as_deref(),
        Some("/articles/a"),
        "previous rules in force"
    );
    assert_eq!(
        location(&base, "/added", "a.test").as_deref(),
        Some("/hare")
    );
    assert_eq!(
        r.metric("rampart_fail_open_total{project=\"site\",reason=\"rules_reload\"}"),
        Some(1.0)
    );
    let successful = "rampart_rules_last_reload_successful{project=\"site\"}";
    assert_eq!(
        r.metric(successful),
        Some(0.0),
        "stays 0 while the file is broken"
    );
    // Hit counters survive reloads: one hit before the CSV reload, one after.
    let blog_hits = "rampart_rule_hits_total{project=\"site\",rule=\"blog\"}";
    assert_eq!(r.metric(blog_hits), Some(2.0));
    let status = r.status();
    let err = status["projects"][0]["last_reload_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.contains("blog.yaml:1:") && err.contains("path_regex"),
        "{status}"
    );
    r.wait_for_log("rules not reloaded", Duration::from_secs(2));

    // Fixed again, and SIGHUP forces a reload even without a change.
    std::fs::write(
        r.dir().join("rules/blog.yaml"),
        "- { id: blog, match: { path_prefix: /blog/ }, redirect: { to: \"/posts/{rest}\" } }\n",
    )
    .unwrap();
    poll_until(Duration::from_secs(10), "the fixed file", || {
        (location(&base, "/blog/a", "a.test").as_deref() == Some("/posts/a")).then_some(())
    });
    let ok = r
        .metric("rampart_rules_reloads_total{project=\"site\",result=\"ok\"}")
        .unwrap();
    // SIGHUP does not apply the main configuration, and says so when it changed.
    let conf = std::fs::read_to_string(r.config_path()).unwrap();
    std::fs::write(r.config_path(), conf + "# edited\n").unwrap();
    r.signal("HUP");
    r.wait_for_log(
        "changed since this process started; SIGHUP re-reads rules files only",
        Duration::from_secs(10),
    );
    poll_until(Duration::from_secs(10), "a reload on SIGHUP", || {
        (r.metric("rampart_rules_reloads_total{project=\"site\",result=\"ok\"}") == Some(ok + 1.0))
            .then_some(())
    });
    assert!(r.status()["projects"][0]["last_reload_error"].is_null());
    assert_eq!(r.metric(successful), Some(1.0));
    let hits = r.metric(blog_hits).unwrap();
    location(&base, "/blog/b", "a.test");
    assert_eq!(
        r.metric(blog_hits),
        Some(hits + 1.0),
        "counted after SIGHUP"
    );
    assert!(hits >= 3.0, "{hits}");
}

/// Teams keep their own `redirects.csv` in their own folder: the rules are named by as much
/// of the path as tells the files apart (logs, metrics, `rules test`), not refused as
/// duplicates.
#[test]
fn csv_files_of_one_name_in_two_folders_are_told_apart() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    for team in ["shop", "blog"] {
        let folder = dir.path().join("rules").join(team);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("redirects.csv"),
            format!("/{team}/old,/{team}/new\n"),
        )
        .unwrap();
    }
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - name: site\n    hosts: [\"*\"]\n    pool: app\n    rules_files: [\"rules/*/redirects.csv\"]\n",
        up.addr_string()
    );
    let r = Rampart::start_in(dir, &yaml);
    let base = format!("http://{http}");
    for team in ["shop", "blog"] {
        assert_eq!(
            location(&base, &format!("/{team}/old"), "a.test"),
            Some(format!("/{team}/new"))
        );
        assert_eq!(
            r.metric(&format!(
                "rampart_rule_hits_total{{project=\"site\",rule=\"{team}/redirects.csv:1\"}}"
            )),
            Some(1.0),
            "{team}'s rule is named by its folder"
        );
    }
}

#[test]
fn check_reports_rules_file_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.csv"), "/ok,/fine\n/only-one-field\n").unwrap();
    // Several mistakes, two in one rule: all listed, each at its key.
    let rules = "- id: a\n  match: { path: /a, pth: /b }\n  redirect: { to: /x, staus: 301 }\n- id: b\n  match: { path: /b }\n  respond: { status: \"x\" }\n";
    std::fs::write(dir.path().join("bad.yaml"), rules).unwrap();
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app: { backends: [\"127.0.0.1:3000\"] }\nprojects:\n  - { name: site, hosts: [\"*\"], pool: app, rules_files: [bad.csv, bad.yaml, missing.yaml] }\n";
    let out = rampart_with_config(dir, yaml, &["check"], &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let csv = out.dir.path().join("bad.csv");
    assert!(
        out.stderr.contains(&format!(
            "{}:2:1: expected `source,target[,status]`",
            csv.display()
        )),
        "{}",
        out.stderr
    );
    // At the list item naming it, in the config.
    assert!(
        out.stderr.lines().any(|l| l.contains(":6:")
            && l.contains("projects[0].rules_files[2]: ")
            && l.contains("missing.yaml: no such file")),
        "{}",
        out.stderr
    );
    let bad_yaml = out.dir.path().join("bad.yaml");
    for (at, message) in [
        ("2:22: [0].match.pth", "did you mean `path`?"),
        ("3:23: [0].redirect.staus", "did you mean `status`?"),
        ("6:14: [1].respond.status", "invalid type: string \"x\""),
    ] {
        let prefix = format!("{}:{at}: ", bad_yaml.display());
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(message)),
            "expected `{prefix}... {message}`:\n{}",
            out.stderr
        );
    }
    assert!(out.stderr.contains(": 5 error(s)"), "{}", out.stderr);
}

/// Two lists pasted into one rules file with a `---` between them: refused at that line, in
/// the rules file (serde_yaml gives no position for it).
#[test]
fn a_second_yaml_document_in_a_rules_file_is_pointed_at() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "- { id: a, match: { path: /a }, redirect: { to: /b } }\n---\n- { id: c, match: { path: /c }, redirect: { to: /d } }\n";
    std::fs::write(dir.path().join("two.yaml"), rules).unwrap();
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app: { backends: [\"127.0.0.1:3000\"] }\nprojects:\n  - { name: site, hosts: [\"*\"], pool: app, rules_files: [two.yaml] }\n";
    let out = rampart_with_config(dir, yaml, &["check"], &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let expected = format!(
        "{}:2:1: a second YAML document begins here (`---`)",
        out.dir.path().join("two.yaml").display()
    );
    assert!(out.stderr.contains(&expected), "{expected}\n{}", out.stderr);
}

#[test]
fn no_request_fails_while_rules_are_swapped_under_load() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("r.csv");
    let write = |generation: usize| {
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&format!("/page-{i},/gen-{generation}/page-{i}\n"));
        }
        // Write aside and rename, as deploy tools do, so a reader never sees half a file.
        let tmp = csv.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &csv).unwrap();
    };
    write(0);
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "server: {{ threads: 2 }}\nadmin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app, rules_files: [r.csv] }}\n",
        up.addr_string()
    );
    let r = Rampart::start_in(dir, &yaml);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, base) = (stop.clone(), format!("http://{http}"));
            std::thread::spawn(move || {
                let c = client();
                let (mut ok, mut bad) = (0usize, Vec::new());
                let mut i = w;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let page = i % 2000;
                    match c
                        .get(format!("{base}/page-{page}"))
                        .header("host", "a.test")
                        .send()
                    {
                        Ok(resp) if resp.status() == 301 => {
                            let loc = resp.headers()["location"].to_str().unwrap().to_string();
                            // Any generation, but always a whole rule: /gen-N/page-<same page>.
                            if loc.ends_with(&format!("/page-{page}")) && loc.starts_with("/gen-") {
                                ok += 1;
                            } else {
                                bad.push(loc);
                            }
                        }
                        Ok(resp) => bad.push(format!("status {}", resp.status())),
                        Err(e) => bad.push(format!("error {e}")),
                    }
                    i += 7;
                }
                (ok, bad)
            })
        })
        .collect();
    for generation in 1..=10 {
        write(generation);
        let want = format!("/gen-{generation}/page-1");
        poll_until(Duration::from_secs(10), "generation to be served", || {
            (location(&format!("http://{http}"), "/page-1", "a.test").as_deref()
                == Some(want.as_str()))
            .then_some(())
        });
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        let (ok, bad) = w.join().unwrap();
        assert!(
            bad.is_empty(),
            "failed or inconsistent requests during reloads: {:?}",
            &bad[..bad.len().min(5)]
        );
        total += ok;
    }
    assert!(total > 100, "the load ran ({total} requests)");
    assert_eq!(
        r.metric("rampart_rules_reloads_total{project=\"site\",result=\"error\"}"),
        Some(0.0)
    );
    assert!(
        r.metric("rampart_rules_reloads_total{project=\"site\",result=\"ok\"}")
            .unwrap()
            >= 11.0
    );
}

#[test]
fn reloads_give_the_replaced_rule_sets_memory_back() {
    // 50 000 CSV redirects take ~35 MiB. Before the fix, the set loaded at startup stayed
    // resident after the first reload replaced it.
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("source,target,status\n");
    for i in 0..50_000 {
        csv.push_str(&format!(
            "/old/category-{}/product-{i}.html,https://www.shop.test/p/{i},301\n",
            i % 500
        ));
    }
    std::fs::write(dir.path().join("r.csv"), csv).unwrap();
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"127.0.0.1:1\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app, rules_files: [r.csv] }}\n"
    );
    let r = Rampart::start_in(dir, &yaml);
    let base = format!("http://{http}");
    let path = "/old/category-7/product-7.html";
    assert_eq!(
        location(&base, path, "a.test").as_deref(),
        Some("https://www.shop.test/p/7")
    );
    let rss = || r.metric("process_resident_memory_bytes").unwrap() / (1024.0 * 1024.0);
    let at_start = rss();
    let reloads = "rampart_rules_reloads_total{project=\"site\",result=\"ok\"}";
    for _ in 0..4 {
        let ok = r.metric(reloads).unwrap();
        r.signal("HUP");
        poll_until(Duration::from_secs(30), "a reload on SIGHUP", || {
            (r.metric(reloads) == Some(ok + 1.0)).then_some(())
        });
    }
    assert_eq!(
        location(&base, path, "a.test").as_deref(),
        Some("https://www.shop.test/p/7")
    );
    // The replaced set is freed just after the swap, off the serving threads.
    let limit = at_start * 1.2;
    poll_until(
        Duration::from_secs(10),
        &format!("resident memory back under {limit:.1} MiB (1.2× the {at_start:.1} MiB at start)"),
        || (rss() <= limit).then_some(()),
    );
}

/// `rampart run -d -c rampart.yaml` from the config's directory, with `rules_files` relative
/// to it: the daemon changes to `/`, forks after the rules are first built, and must still
/// reload them. A removed file is an error reported once, not on every poll of the watcher.
#[test]
fn a_daemon_reloads_relative_rules_files_and_reports_a_missing_one_once() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let write = |name: &str, csv: &str| std::fs::write(rules.join(name), csv).unwrap();
    write("a.csv", "/old,/a1\n");
    write("b.csv", "/old,/b1\n");
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "{}admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: a, hosts: [a.test], pool: app, rules_files: [rules/a.csv] }}\n  - {{ name: b, hosts: [b.test], pool: app, rules_files: [rules/b.csv] }}\n",
        daemon_server_line(dir.path()),
        up.addr_string()
    );
    std::fs::write(dir.path().join("rampart.yaml"), yaml).unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    let _cleanup = KillOnDrop(started.clone());
    let pid = start_daemon(dir.path(), &started);

    let http_client = client();
    let redirect_of = |host: &str| -> Option<String> {
        let r = http_client
            .get(format!("http://{http}/old"))
            .header("Host", host)
            .send()
            .ok()?;
        Some(r.headers().get("location")?.to_str().ok()?.to_string())
    };
    let wait_location = |host: &str, want: &str| {
        poll_until(
            Duration::from_secs(10),
            &format!("{host} -> {want}"),
            || (redirect_of(host).as_deref() == Some(want)).then_some(()),
        )
    };
    let metrics = || raw_get(&admin, "/metrics", &[]).map(|r| r.text()).ok();
    let errors = || {
        let sample = "rampart_rules_reloads_total{project=\"a\",result=\"error\"}";
        metrics().and_then(|m| metric_in(&m, sample))
    };
    wait_location("a.test", "/a1");

    // Sizes differ at each write: a change is seen even within one timestamp tick.
    write("a.csv", "/old,/a22\n");
    wait_location("a.test", "/a22");

    std::fs::remove_file(rules.join("a.csv")).unwrap();
    poll_until(Duration::from_secs(10), "the missing file's error", || {
        (errors() == Some(1.0)).then_some(())
    });
    let status_json = raw_get(&admin, "/status", &[]).unwrap();
    assert!(
        status_json.text().contains("a.csv"),
        "/status names the missing file: {}",
        status_json.text()
    );
    // Two changes of b, each in a later poll of the watcher than the one before.
    write("b.csv", "/old,/b22\n");
    wait_location("b.test", "/b22");
    write("b.csv", "/old,/b333\n");
    wait_location("b.test", "/b333");
    assert_eq!(errors(), Some(1.0), "the missing file reported once");
    assert_eq!(
        redirect_of("a.test").as_deref(),
        Some("/a22"),
        "previous rules"
    );

    write("a.csv", "/old,/a4444\n");
    wait_location("a.test", "/a4444");
    signal("-TERM", pid);
    poll_until(Duration::from_secs(10), "the daemon to exit", || {
        (!alive(pid)).then_some(())
    });
}

/// A rules file rewritten in place by a writer that pauses (a slow copy, a generator) is
/// loaded once it stops changing, not in between: cut at a rule boundary, the first part is a
/// valid file without the block rule at its end.
#[test]
fn a_file_written_in_place_is_loaded_once_complete() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let block = "- { id: block, match: { path_prefix: /admin }, respond: { status: 403 } }\n";
    let redirects = |round: usize| -> String {
        (0..200)
            .map(|i| format!("- {{ id: r{i}, match: {{ path: /r{i} }}, redirect: {{ to: /n{i}-{round} }} }}\n"))
            .collect()
    };
    let file = rules.join("site.yaml");
    std::fs::write(&file, redirects(0) + block).unwrap();
    // What editors and macOS leave next to it is not a rules file (a shell's `*` skips them).
    std::os::unix::fs::symlink("user@host.123:1700000000", rules.join(".#site.yaml")).unwrap();
    std::fs::write(rules.join("._site.yaml"), [0u8, 5, 22, 7]).unwrap();
    let http = free_addr();
    let yaml = format!(
        "admin: {{ listen: \"{}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - name: site\n    hosts: [\"*\"]\n    pool: app\n    rules_files: [\"rules/*.yaml\"]\n",
        free_addr(),
        up.addr_string()
    );
    let _r = Rampart::start_in(dir, &yaml);
    let base = format!("http://{http}");
    assert_eq!(get(&format!("{base}/admin/x"), "a.test").status(), 403);

    // Meanwhile a client keeps asking for /admin.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, base) = (stop.clone(), base.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen.push(get(&format!("{base}/admin/x"), "a.test").status().as_u16());
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        })
    };
    for round in 1..=2 {
        use std::io::Write;
        // The previous set came in at a look at the files (once a second): start half-way to
        // the next look, so that it falls in the writer's pause.
        std::thread::sleep(Duration::from_millis(500));
        // In place (same inode), in two writes 0.8 s apart.
        let mut f = std::fs::File::create(&file).unwrap();
        f.write_all(redirects(round).as_bytes()).unwrap();
        f.sync_all().unwrap();
        std::thread::sleep(Duration::from_millis(800)); // the writer's pause, not a wait
        f.write_all(block.as_bytes()).unwrap();
        f.sync_all().unwrap();
        drop(f);
        let want = format!("/n0-{round}");
        poll_until(
            Duration::from_secs(10),
            "the rewritten file in force",
            || (location(&base, "/r0", "a.test").as_deref() == Some(want.as_str())).then_some(()),
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    assert!(seen.len() > 20, "{seen:?}");
    assert!(
        seen.iter().all(|&s| s == 403),
        "/admin got through: {seen:?}"
    );
}

/// A project's `ignore_path_params` holds for the rules its files are reloaded into, not only
/// for those loaded at start.
#[test]
fn reloaded_rules_still_ignore_path_params() {
    let up = Upstream::start("up");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("block.yaml");
    std::fs::write(
        &file,
        "- { id: block, match: { path: /admin }, respond: { status: 403 } }\n",
    )
    .unwrap();
    let (http, admin) = (free_addr(), free_addr());
    let yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"{}\"] }}\nprojects:\n  - {{ name: site, hosts: [\"*\"], pool: app, ignore_path_params: true, rules_files: [block.yaml] }}\n",
        up.addr_string()
    );
    let _r = Rampart::start_in(dir, &yaml);
    let status = |path: &str| raw_get(&http, path, &[]).unwrap().status;
    assert_eq!(status("/admin;x=1"), 403);
    std::fs::write(
        &file,
        "- { id: gone, match: { path: /admin }, respond: { status: 410, body: \"gone\\n\" } }\n",
    )
    .unwrap();
    poll_until(Duration::from_secs(10), "the new rules in force", || {
        (status("/admin") == 410).then_some(())
    });
    assert_eq!(status("/admin;x=1"), 410);
    assert_eq!(status("/a/..;/admin"), 410);
}

/// With `ignore_path_params`, a rule path holding a `;` could never match, nor a path regex
/// whose every match holds one: `check` (and so a reload) refuses them where they are
/// written, in the config or in a rules file. A regex that only may match a `;` is fine.
#[test]
fn check_refuses_rule_paths_with_parameters_a_project_ignores() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.csv"),
        "source,target\n/old;jsessionid=1,/new\n/fine,/ok\n",
    )
    .unwrap();
    let yaml = "listeners:\n  http: { address: \"127.0.0.1:8080\" }\npools:\n  app: { backends: [\"127.0.0.1:3000\"] }\nprojects:\n  - name: site\n    hosts: [\"*\"]\n    pool: app\n    ignore_path_params: true\n    rules:\n      - { id: x, match: { path_prefix: \"/x;y/\" }, respond: { status: 403 } }\n      - { id: re, match: { path_regex: '^/(a|b);v=[0-9]+$' }, respond: { status: 403 } }\n      - { id: maybe, match: { path_regex: '^/c(;v)?$' }, respond: { status: 403 } }\n    rules_files: [r.csv]\n";
    let out = rampart_with_config(dir, yaml, &["check"], &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let csv = out.dir.path().join("r.csv");
    for (at, message) in [
        (
            ":11:27: projects[0].rules[0].match.path_prefix: ".to_string(),
            "`/x;y/` holds a `;`, but this project has `ignore_path_params: true`",
        ),
        (
            ":12:28: projects[0].rules[1].match.path_regex: ".to_string(),
            "`^/(a|b);v=[0-9]+$` only matches paths with a `;`",
        ),
        (
            format!("{}:2:1: match.path: ", csv.display()),
            "Write the path without its parameters (`/old`)",
        ),
    ] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains(&at) && l.contains(message)),
            "expected `{at}... {message}`:\n{}",
            out.stderr
        );
    }
    assert!(out.stderr.contains(": 3 error(s)"), "{}", out.stderr);

    // Without the setting the same rules are fine: parameters are part of the path.
    let dir = out.dir;
    let yaml = yaml.replace("ignore_path_params: true", "ignore_path_params: false");
    let out = rampart_with_config(dir, &yaml, &["check"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Loaded inline rules cost about what the same rules cost from a CSV file: neither the
/// parsed configuration nor the rules' specs stay resident (those are compiled again only in
/// projects with rules files). 40 000 inline redirects held 125 MB, against 32 MB from a CSV.
#[test]
fn inline_rules_cost_about_what_the_same_rules_from_a_file_cost() {
    const RULES: usize = 20_000;
    let start = |rules: &str, files: &str, dir: tempfile::TempDir| {
        let (http, admin) = (free_addr(), free_addr());
        let yaml = format!(
            "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"127.0.0.1:1\"] }}\nprojects:\n  - name: site\n    hosts: [\"*\"]\n    pool: app\n{files}    rules:\n{rules}"
        );
        let r = Rampart::start_in(dir, &yaml);
        let path = format!("/old/{}", RULES - 1);
        let to = location(&format!("http://{http}"), &path, "a.test");
        assert_eq!(to.as_deref(), Some(format!("/new/{}", RULES - 1).as_str()));
        r.metric("process_resident_memory_bytes").unwrap() / (1024.0 * 1024.0)
    };
    let inline: String = (0..RULES)
        .map(|i| format!("      - {{ id: r{i}, match: {{ path: /old/{i} }}, redirect: {{ to: /new/{i} }} }}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let csv: String = (0..RULES)
        .map(|i| format!("/old/{i},/new/{i},302\n"))
        .collect();
    std::fs::write(dir.path().join("r.csv"), csv).unwrap();
    let from_file = start("      []\n", "    rules_files: [r.csv]\n", dir);
    let from_config = start(&inline, "", tempfile::tempdir().unwrap());
    assert!(
        from_config < from_file * 1.4,
        "{from_config:.1} MiB with inline rules, {from_file:.1} MiB with the same from a CSV file"
    );
}

/// A SIGHUP reads every project's rules files again and says so in one line, with a line of
/// a project's own only when its files changed or failed: 2 000 projects made 2 000 lines a
/// SIGHUP. The reload counters still count every project.
#[test]
fn a_sighup_is_one_log_line_unless_files_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (http, admin) = (free_addr(), free_addr());
    let mut yaml = format!(
        "admin: {{ listen: \"{admin}\" }}\naccess_log: {{ target: off }}\nlisteners:\n  http: {{ address: \"{http}\" }}\npools:\n  app: {{ backends: [\"127.0.0.1:1\"] }}\nprojects:\n"
    );
    for i in 0..3 {
        std::fs::write(dir.path().join(format!("r{i}.csv")), "/old,/new,301\n").unwrap();
        yaml += &format!(
            "  - {{ name: s{i}, hosts: [s{i}.test], pool: app, rules_files: [r{i}.csv] }}\n"
        );
    }
    let r = Rampart::start_in(dir, &yaml);
    assert!(r.signal("HUP"));
    let line = r.wait_for_log("read again", Duration::from_secs(10));
    assert!(
        line.contains(
            "SIGHUP: the rules files of 3 project(s) read again: 0 changed, 3 unchanged, 0 failed"
        ),
        "{line}"
    );
    assert!(!r.stderr().contains("rules reloaded"), "{}", r.stderr());
    let ok = r.metric("rampart_rules_reloads_total{project=\"s1\",result=\"ok\"}");
    assert_eq!(ok, Some(2.0), "the start's load and the SIGHUP's");
}
