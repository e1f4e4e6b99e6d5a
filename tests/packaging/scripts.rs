//! What the packaged maintainer scripts ask of systemd, on install, upgrade and removal, with
//! systemd running and without. systemd is not PID 1 on CI machines, so the scripts run
//! against a recording `systemctl` (and Debian's `deb-systemd-helper`/`deb-systemd-invoke`,
//! `getent`, `useradd`...: every command they would use to change the machine), in a private
//! mount namespace where `/run/systemd/system` exists or not as each case needs.

use super::{is_root, packages, run};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Commands the scripts may run that change the machine: all recorded, none executed.
const STUBBED: &[&str] = &[
    "systemctl",
    "deb-systemd-helper",
    "deb-systemd-invoke",
    "getent",
    "groupadd",
    "useradd",
    "groupdel",
    "userdel",
    "install",
];

/// Logs its name and arguments; `is-active` answers from $STUB_ACTIVE; `getent` says the
/// user and group exist (an installed machine).
const STUB: &str = r#"#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
case " $* " in
*" is-active "*) [ "$STUB_ACTIVE" = yes ] ;;
*) exit 0 ;;
esac
"#;

struct Sandbox {
    dir: tempfile::TempDir,
    /// `unshare` and its options (with a user namespace when not root).
    unshare: Vec<&'static str>,
}

#[derive(Clone, Copy)]
enum Systemd {
    Running { active: bool },
    Absent,
}

impl Sandbox {
    fn new() -> Option<Sandbox> {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for name in STUBBED {
            let path = bin.join(name);
            std::fs::write(&path, STUB).unwrap();
            std::fs::set_permissions(&path, PermissionsExt::from_mode(0o755)).unwrap();
        }
        let unshare = if is_root() {
            vec!["unshare", "--mount"]
        } else {
            vec!["unshare", "--user", "--map-root-user", "--mount"]
        };
        let probe = Command::new(unshare[0])
            .args(&unshare[1..])
            .arg("true")
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            eprintln!(
                "SKIPPED the maintainer-script cases: cannot make a mount namespace ({unshare:?})"
            );
            return None;
        }
        Some(Sandbox { dir, unshare })
    }

    /// Runs `script ARGS` and returns the stubbed commands it ran, one per line.
    fn run(&self, script: &Path, args: &[&str], systemd: Systemd) -> String {
        let log = self.dir.path().join("log");
        std::fs::write(&log, "").unwrap();
        let (running, active) = match systemd {
            Systemd::Running { active } => (true, active),
            Systemd::Absent => (false, false),
        };
        // A tmpfs on /run, private to this process, decides what `[ -d /run/systemd/system ]`
        // sees without touching the machine's /run.
        let setup = if running {
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && exec \"$@\""
        } else {
            "mount -t tmpfs tmpfs /run && exec \"$@\""
        };
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap()
        );
        let out = Command::new(self.unshare[0])
            .args(&self.unshare[1..])
            .args(["sh", "-c", setup, "sh", "sh"])
            .arg(script)
            .args(args)
            .env("PATH", path)
            .env("STUB_LOG", &log)
            .env("STUB_ACTIVE", if active { "yes" } else { "no" })
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&log).unwrap()
    }
}

/// The systemd actions in a log: lines of systemctl / deb-systemd-*.
fn systemd_calls(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.starts_with("systemctl") || l.starts_with("deb-systemd"))
        .collect()
}

/// One run of a packaged script, and the systemd calls it must make, in order.
struct Case {
    script: &'static str,
    args: &'static [&'static str],
    systemd: Systemd,
    calls: Vec<&'static str>,
    what: &'static str,
}

fn run_cases(sb: &Sandbox, dir: &Path, cases: &[Case]) {
    for c in cases {
        let log = sb.run(&dir.join(c.script), c.args, c.systemd);
        assert_eq!(systemd_calls(&log), c.calls, "{}; full log:\n{log}", c.what);
        assert!(!log.contains("restart"), "{}: restarted:\n{log}", c.what);
    }
}

/// The .deb's maintainer scripts as packaged (`dpkg-deb -e`), in `DIR/deb`.
fn deb_scripts(dir: &Path) -> PathBuf {
    let deb = dir.join("deb");
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&packages().deb)
        .arg(&deb));
    deb
}

/// The .rpm's scriptlets as packaged (`rpm -qp`), in `DIR/rpm`.
fn rpm_scripts(dir: &Path) -> PathBuf {
    let rpm = dir.join("rpm");
    std::fs::create_dir(&rpm).unwrap();
    for (tag, file) in [("POSTIN", "post"), ("PREUN", "preun"), ("POSTUN", "postun")] {
        let body = run(Command::new("rpm")
            .args(["-qp", "--qf", &format!("%{{{tag}}}")])
            .arg(&packages().rpm));
        std::fs::write(rpm.join(file), body).unwrap();
    }
    rpm
}

const ON: Systemd = Systemd::Running { active: true };
const OFF: Systemd = Systemd::Running { active: false };

#[test]
fn deb_scripts_start_on_install_reload_on_upgrade_stop_on_remove() {
    let Some(sb) = Sandbox::new() else { return };
    let deb = deb_scripts(sb.dir.path());
    // deb-systemd-helper keeps the enable state: enabled unless an admin disabled it.
    let enable = [
        "deb-systemd-helper unmask rampart.service",
        "deb-systemd-helper --quiet was-enabled rampart.service",
        "deb-systemd-helper enable rampart.service",
    ];
    let with_enable = |more: &[&'static str]| [&enable[..], more].concat();
    let cases = [
        Case {
            script: "postinst",
            args: &["configure", ""],
            systemd: OFF,
            calls: with_enable(&[
                "systemctl --system daemon-reload",
                "deb-systemd-invoke start rampart.service",
            ]),
            what: "first install: enable and start",
        },
        Case {
            script: "postinst",
            args: &["configure", "0.0.9-1"],
            systemd: ON,
            calls: with_enable(&[
                "systemctl --system daemon-reload",
                "systemctl --quiet is-active rampart.service",
                "deb-systemd-invoke reload rampart.service",
            ]),
            what: "upgrade of a running service: reload",
        },
        Case {
            script: "postinst",
            args: &["configure", "0.0.9-1"],
            systemd: OFF,
            calls: with_enable(&[
                "systemctl --system daemon-reload",
                "systemctl --quiet is-active rampart.service",
            ]),
            what: "upgrade of a stopped service: stays stopped",
        },
        Case {
            script: "postinst",
            args: &["configure", ""],
            systemd: Systemd::Absent,
            calls: with_enable(&[]),
            what: "first install without systemd: enable only",
        },
        Case {
            script: "prerm",
            args: &["upgrade", "0.1.1-1"],
            systemd: ON,
            calls: vec![],
            what: "prerm upgrade: keeps serving",
        },
        Case {
            script: "prerm",
            args: &["remove"],
            systemd: ON,
            calls: vec!["deb-systemd-invoke stop rampart.service"],
            what: "prerm remove: stop",
        },
        Case {
            script: "postrm",
            args: &["upgrade", "0.1.1-1"],
            systemd: ON,
            calls: vec![],
            what: "postrm upgrade",
        },
        Case {
            script: "postrm",
            args: &["remove"],
            systemd: ON,
            calls: vec!["systemctl --system daemon-reload"],
            what: "postrm remove",
        },
    ];
    run_cases(&sb, &deb, &cases);
}

#[test]
fn rpm_scriptlets_start_on_install_reload_on_upgrade_stop_on_erase() {
    let Some(sb) = Sandbox::new() else { return };
    let rpm = rpm_scripts(sb.dir.path());
    let cases = [
        Case {
            script: "post",
            args: &["1"],
            systemd: OFF,
            calls: vec![
                "systemctl --no-reload enable rampart.service",
                "systemctl daemon-reload",
                "systemctl start rampart.service",
            ],
            what: "%post 1 (install): enable and start",
        },
        Case {
            script: "post",
            args: &["2"],
            systemd: ON,
            calls: vec![
                "systemctl daemon-reload",
                "systemctl --quiet is-active rampart.service",
                "systemctl reload rampart.service",
            ],
            what: "%post 2 (upgrade) of a running service: reload",
        },
        Case {
            script: "post",
            args: &["2"],
            systemd: OFF,
            calls: vec![
                "systemctl daemon-reload",
                "systemctl --quiet is-active rampart.service",
            ],
            what: "%post 2 (upgrade) of a stopped service: stays stopped",
        },
        Case {
            script: "post",
            args: &["1"],
            systemd: Systemd::Absent,
            calls: vec!["systemctl --no-reload enable rampart.service"],
            what: "%post 1 without systemd: enable only",
        },
        Case {
            script: "preun",
            args: &["1"],
            systemd: ON,
            calls: vec![],
            what: "%preun 1 (upgrade): keeps serving",
        },
        Case {
            script: "preun",
            args: &["0"],
            systemd: ON,
            calls: vec![
                "systemctl stop rampart.service",
                "systemctl --no-reload disable rampart.service",
            ],
            what: "%preun 0 (erase): stop and disable",
        },
        Case {
            script: "postun",
            args: &["1"],
            systemd: ON,
            calls: vec![],
            what: "%postun 1 (upgrade)",
        },
        Case {
            script: "postun",
            args: &["0"],
            systemd: ON,
            calls: vec!["systemctl daemon-reload"],
            what: "%postun 0 (erase)",
        },
    ];
    run_cases(&sb, &rpm, &cases);
}
