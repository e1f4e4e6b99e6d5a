//! The access log on a disk that fills up and frees again: a line cut short by the full disk
//! stays a line of its own (the lines after it start on a new line), and
//! `rampart_access_log_dropped_total` counts exactly the lines that did not land whole. The
//! disk is a small tmpfs mounted for the Rampart process only.

mod common;
use common::*;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(10);

#[test]
fn a_line_cut_by_a_full_disk_does_not_swallow_the_next_and_is_counted() {
    let up = Upstream::start("up");
    let (http, admin) = (free_addr(), free_addr());
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let yaml = format!(
        r#"admin: {{ listen: "{admin}" }}
access_log: {{ target: "{}/access.log", format: json }}
listeners:
  http: {{ address: "{http}" }}
pools:
  app: {{ backends: ["{}"] }}
projects:
  - {{ name: shop, hosts: [shop.test], pool: app }}
"#,
        logs.display(),
        up.addr_string()
    );
    let r = Rampart::start_with_mounts(dir, &yaml, &[Mount::SmallDisk(&logs, 64 * 1024)]);
    // The process's tmpfs, as the test sees it.
    let seen = PathBuf::from(format!("/proc/{}/root{}", r.pid(), logs.display()));
    let log = seen.join("access.log");
    let dropped = || r.metric("rampart_access_log_dropped_total").unwrap_or(0.0) as usize;
    let mut sent = 0;
    let mut request = |path: &str| {
        let url = format!("http://{http}{path}");
        assert_eq!(get(&url, "shop.test").status(), 200, "requests are served");
        sent += 1;
    };
    let logged = |path: &str| {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains(&format!("\"{path}\""))
    };

    request("/first");
    poll_until(DEADLINE, "the first line", || {
        logged("/first").then_some(())
    });
    // Fill the disk: the log file has what is left of its last page.
    let mut filler = std::fs::File::create(seen.join("filler")).unwrap();
    while filler.write_all(&[b'x'; 4096]).is_ok() {}
    // Lines of ~500 bytes, one at a time, until one does not fit.
    let long = "y".repeat(400);
    for i in 0.. {
        assert!(i < 20, "the disk never filled up");
        let path = format!("/fill/{i}/{long}");
        request(&path);
        let landed = poll_until(DEADLINE, "the line written or dropped", || {
            if dropped() > 0 {
                Some(false)
            } else {
                logged(&path).then_some(true)
            }
        });
        if !landed {
            break;
        }
    }
    assert_eq!(dropped(), 1, "{}", r.stderr());

    // Room again: the next line is a line of its own.
    drop(filler);
    std::fs::remove_file(seen.join("filler")).unwrap();
    request("/after");
    poll_until(DEADLINE, "the line after the full disk", || {
        logged("/after").then_some(())
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    let (whole, cut): (Vec<&str>, Vec<&str>) = text
        .lines()
        .partition(|l| serde_json::from_str::<serde_json::Value>(l).is_ok());
    assert_eq!(cut.len(), 1, "one line cut short by the full disk: {cut:?}");
    assert!(cut[0].starts_with("{\""), "{cut:?}");
    let last: serde_json::Value = serde_json::from_str(whole.last().unwrap()).unwrap();
    assert_eq!(last["uri"], "/after", "{text}");
    // Every request is a whole line or a dropped one.
    assert_eq!(whole.len() + dropped(), sent, "{text}");
    assert!(
        r.stderr().contains("access log: writing again"),
        "{}",
        r.stderr()
    );
}
