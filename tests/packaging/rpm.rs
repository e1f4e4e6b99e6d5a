//! The .rpm as `rpm` reports it: files, %config(noreplace), scriptlets, requirements; and, as
//! root, installed into an empty root directory (`rpm --root`, without scriptlets: those run
//! in `scripts.rs`), upgraded over a modified config and erased.

use super::{is_root, packages, read, run, REPO, VERSION};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

#[test]
fn rpm_holds_the_files_noreplace_config_and_scriptlets() {
    let rpm = &packages().rpm;
    let query = |args: &[&str]| run(Command::new("rpm").args(args).arg(rpm));
    assert_eq!(
        query(&["-qp", "--qf", "%{NAME} %{VERSION}-%{RELEASE}"]),
        format!("rampart {VERSION}-1")
    );
    let files: BTreeSet<String> = query(&["-qlp"]).lines().map(str::to_string).collect();
    let expected: BTreeSet<String> = [
        "/usr/bin/rampart",
        "/etc/rampart/rampart.yaml",
        "/etc/rampart/rules/README",
        "/etc/logrotate.d/rampart",
        "/usr/lib/systemd/system/rampart.service",
        "/usr/share/doc/rampart/README.md",
        "/usr/share/doc/rampart/configuration.md",
        "/usr/share/doc/rampart/metrics.md",
        "/usr/share/doc/rampart/operators-guide.md",
        "/usr/share/doc/rampart/performance.md",
        "/usr/share/doc/rampart/rules.md",
        "/usr/share/doc/rampart/grafana-dashboard.json",
        "/usr/share/doc/rampart/prometheus-alerts.yaml",
    ]
    .map(String::from)
    .into();
    assert_eq!(files, expected);

    // %config(noreplace): "c" config, "n" noreplace.
    let flags = query(&["-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]"]);
    for conf in ["/etc/rampart/rampart.yaml", "/etc/logrotate.d/rampart"] {
        assert!(flags.contains(&format!("cn {conf}\n")), "{flags}");
    }
    assert_eq!(
        query(&["-qcp"]),
        "/etc/logrotate.d/rampart\n/etc/rampart/rampart.yaml\n"
    );
    let modes = query(&[
        "-qp",
        "--qf",
        "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILENAMES}\n]",
    ]);
    assert!(
        modes.contains("-rwxr-xr-x root /usr/bin/rampart\n"),
        "{modes}"
    );

    let scripts = query(&["-qp", "--scripts"]);
    for (name, file) in [
        ("preinstall", "pre.sh"),
        ("postinstall", "post.sh"),
        ("preuninstall", "preun.sh"),
        ("postuninstall", "postun.sh"),
    ] {
        let body = read(format!("{REPO}/packaging/rpm/{file}"));
        let section = format!("{name} scriptlet (using /bin/sh):\n{body}");
        assert!(
            scripts.contains(&section),
            "{name}: {file} not in:\n{scripts}"
        );
    }

    let requires = query(&["-qp", "--requires"]);
    assert!(requires.contains("libc.so.6("), "{requires}");
    assert!(requires.contains("libssl.so.3("), "{requires}");
    assert!(requires.lines().any(|l| l == "shadow-utils"), "{requires}");
}

/// `rpm --root ROOT ARGS`.
fn rpm_in(root: &Path, args: &[&str]) -> String {
    run(Command::new("rpm").arg("--root").arg(root).args(args))
}

/// Installs, upgrades (`-U`) or erases (`-e`) without dependencies (ROOT's database knows no
/// libc) and without scriptlets.
fn rpm_change(root: &Path, action: &str, what: impl AsRef<std::ffi::OsStr>) {
    run(Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args([action, "--nodeps", "--noscripts"])
        .arg(what));
}

#[test]
fn rpm_installs_keeps_a_modified_config_on_upgrade_and_saves_it_on_erase() {
    if !is_root() {
        eprintln!(
            "SKIPPED installing the .rpm into a root directory: needs root (CI runs as root)"
        );
        return;
    }
    let p = packages();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    rpm_change(root, "-i", &p.rpm);
    let bin = root.join("usr/bin/rampart");
    let conf = root.join("etc/rampart/rampart.yaml");
    assert!(root.join("etc/rampart/rules/README").is_file());
    assert!(run(Command::new(&bin).arg("check").arg("-c").arg(&conf)).contains("OK"));

    let modified = read(&conf) + "# changed by tests/packaging/rpm.rs\n";
    std::fs::write(&conf, &modified).unwrap();
    rpm_change(root, "-U", &p.rpm2);
    let installed = rpm_in(root, &["-q", "rampart"]);
    assert!(
        installed.starts_with(&format!("rampart-{VERSION}-2.")),
        "{installed}"
    );
    assert_eq!(
        read(&conf),
        modified,
        "the upgrade replaced the modified config"
    );
    assert!(!root.join("etc/rampart/rampart.yaml.rpmnew").exists());

    rpm_change(root, "-e", "rampart");
    assert!(!bin.exists() && !conf.exists());
    assert_eq!(
        read(root.join("etc/rampart/rampart.yaml.rpmsave")),
        modified
    );
}
