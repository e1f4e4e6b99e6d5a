//! The .deb and .rpm that `scripts/package.sh` builds, from the binary this test run already
//! built (no second, release build): their contents, conffiles, dependencies and maintainer
//! scripts as `dpkg-deb` and `rpm` report them; the .deb installed on this machine (root
//! only), checked with the installed `rampart check`, upgraded with a modified conffile and
//! purged. The .rpm: `packaging/rpm.rs`; the scripts' systemd decisions: `packaging/scripts.rs`.
//!
//! systemd is not PID 1 on CI machines, so the postinst only enables the unit there and never
//! starts the service on its fixed ports (127.0.0.1:8080/9090); where systemd does run, the
//! install test is skipped rather than start a real service next to the other tests. The .deb
//! under a real systemd, booted in a container: `packaging/systemd.rs`.

mod common;
#[path = "packaging/rpm.rs"]
mod rpm;
#[path = "packaging/scripts.rs"]
mod scripts;
#[path = "packaging/systemd.rs"]
mod systemd;

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The packages of two builds: release 1, and release 2 to upgrade to.
pub struct Packages {
    pub deb: PathBuf,
    pub rpm: PathBuf,
    pub deb2: PathBuf,
    pub rpm2: PathBuf,
}

/// Builds the packages once per test binary, into target/tmp/packaging.
pub fn packages() -> &'static Packages {
    static BUILT: OnceLock<Packages> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packaging");
        let _ = std::fs::remove_dir_all(&out);
        let build = |release: &str| -> (PathBuf, PathBuf) {
            let stdout = run(Command::new(format!("{REPO}/scripts/package.sh"))
                .args(["--binary", env!("CARGO_BIN_EXE_rampart"), "--fast"])
                .args(["--release", release, "--out"])
                .arg(&out));
            let paths: Vec<PathBuf> = stdout.lines().map(PathBuf::from).collect();
            assert_eq!(paths.len(), 2, "package.sh prints two paths: {stdout}");
            for p in &paths {
                assert!(p.is_file(), "{} was not written", p.display());
            }
            (paths[0].clone(), paths[1].clone())
        };
        let (deb, rpm) = build("1");
        let (deb2, rpm2) = build("2");
        Packages {
            deb,
            rpm,
            deb2,
            rpm2,
        }
    })
}

/// Runs `cmd`, panics with its output unless it succeeds, returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (scripts/deps.sh installs it)"))
}

pub fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// `dpkg-deb -c` as path → (mode string, owner/group).
fn deb_listing(deb: &Path) -> Vec<(String, String, String)> {
    run(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f[5].trim_start_matches('.').to_string();
            (path, f[0].to_string(), f[1].to_string())
        })
        .collect()
}

#[test]
fn deb_holds_the_files_conffiles_dependencies_and_scripts() {
    let deb = &packages().deb;
    let listing = deb_listing(deb);
    let entry = |path: &str| {
        listing
            .iter()
            .find(|(p, ..)| p == path)
            .unwrap_or_else(|| panic!("{path} is not in the .deb: {listing:#?}"))
    };
    for (path, mode) in [
        ("/usr/bin/rampart", "-rwxr-xr-x"),
        ("/etc/rampart/rampart.yaml", "-rw-r--r--"),
        ("/etc/rampart/rules/", "drwxr-xr-x"),
        ("/etc/rampart/rules/README", "-rw-r--r--"),
        ("/etc/logrotate.d/rampart", "-rw-r--r--"),
        ("/usr/lib/systemd/system/rampart.service", "-rw-r--r--"),
        ("/usr/share/doc/rampart/README.md", "-rw-r--r--"),
        ("/usr/share/doc/rampart/configuration.md", "-rw-r--r--"),
        ("/usr/share/doc/rampart/copyright", "-rw-r--r--"),
    ] {
        let (_, m, owner) = entry(path);
        assert_eq!((m.as_str(), owner.as_str()), (mode, "0/0"), "{path}");
    }

    let info = run(Command::new("dpkg-deb").arg("-I").arg(deb));
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    for field in [
        "Package: rampart".to_string(),
        format!("Version: {VERSION}-1"),
        format!("Architecture: {}", arch.trim()),
    ] {
        assert!(info.contains(&field), "no `{field}` in:\n{info}");
    }
    let depends = info.lines().find(|l| l.trim().starts_with("Depends:"));
    let depends = depends.unwrap_or_else(|| panic!("no Depends in:\n{info}"));
    assert!(
        depends.contains("libc6 (>=") && depends.contains("libssl3") && depends.contains("passwd"),
        "{depends}"
    );

    let conffiles = run(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles"));
    let conffiles: BTreeSet<&str> = conffiles.lines().collect();
    let expected = [
        "/etc/logrotate.d/rampart",
        "/etc/rampart/rampart.yaml",
        "/etc/rampart/rules/README",
    ];
    assert_eq!(conffiles, expected.into_iter().collect());

    // Exactly our scripts: cargo-deb added no systemd snippet that would restart on upgrade.
    for script in ["postinst", "prerm", "postrm"] {
        let packaged = run(Command::new("dpkg-deb").arg("-I").arg(deb).arg(script));
        assert_eq!(packaged, read(format!("{REPO}/packaging/deb/{script}")));
    }
    let preinst = output(Command::new("dpkg-deb").arg("-I").arg(deb).arg("preinst"));
    assert!(!preinst.status.success(), "unexpected preinst");

    // The packaged binary runs, and validates the packaged config as shipped.
    let root = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root.path()));
    let bin = root.path().join("usr/bin/rampart");
    assert!(run(Command::new(&bin).arg("--version")).contains(VERSION));
    let config = root.path().join("etc/rampart/rampart.yaml");
    run(Command::new(&bin).arg("check").arg("-c").arg(&config));
    assert_eq!(
        read(&config),
        read(format!("{REPO}/packaging/rampart.yaml"))
    );
    assert_eq!(
        read(root.path().join("usr/lib/systemd/system/rampart.service")),
        read(format!("{REPO}/systemd/rampart.service"))
    );
}

/// Purges the package when the test ends, passed or failed, so the machine is left clean.
struct PurgeOnDrop;

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        let _ = dpkg(&["--purge", "rampart"]);
    }
}

fn dpkg(args: &[&str]) -> Output {
    output(
        Command::new("dpkg")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null()),
    )
}

fn dpkg_ok(args: &[&str]) {
    let out = dpkg(args);
    assert!(
        out.status.success(),
        "dpkg {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn installed_version() -> Option<String> {
    let out = output(Command::new("dpkg-query").args(["-W", "-f=${Version} ${Status}", "rampart"]));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// uid of `user`, or None when it does not exist.
fn uid_of(user: &str) -> Option<u32> {
    let out = output(Command::new("id").args(["-u", user]));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().unwrap())
}

fn group_exists(group: &str) -> bool {
    output(Command::new("getent").args(["group", group]))
        .status
        .success()
}

/// The installed `rampart check` on the installed config, as root and as the service user
/// (the unit's ExecStartPre runs it, with `--no-resolve`, as `rampart`).
fn installed_config_checks() {
    let check = [
        "/usr/bin/rampart",
        "check",
        "-c",
        "/etc/rampart/rampart.yaml",
    ];
    assert!(run(Command::new(check[0]).args(&check[1..])).contains("OK"));
    run(Command::new("runuser")
        .args(["-u", "rampart", "--"])
        .args(check));
}

const ENABLED_LINK: &str = "/etc/systemd/system/multi-user.target.wants/rampart.service";

#[test]
fn deb_installs_passes_check_keeps_a_modified_conffile_on_upgrade_and_purges() {
    let p = packages();
    if !is_root() {
        eprintln!("SKIPPED installing the .deb: needs root (CI runs as root)");
        return;
    }
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("SKIPPED installing the .deb: systemd runs here, the postinst would start the service on 127.0.0.1:8080/9090");
        return;
    }
    if let Some(v) = installed_version() {
        eprintln!("SKIPPED installing the .deb: rampart {v} is installed on this machine, leaving it alone");
        return;
    }
    let _purge = PurgeOnDrop;

    dpkg_ok(&["-i", p.deb.to_str().unwrap()]);
    assert!(installed_version()
        .unwrap()
        .starts_with(&format!("{VERSION}-1 install ok installed")));
    let uid = uid_of("rampart").expect("the postinst creates the user rampart");
    assert!(uid < 1000, "rampart is not a system user: uid {uid}");
    let passwd = run(Command::new("getent").args(["passwd", "rampart"]));
    assert!(
        passwd
            .trim_end()
            .ends_with(":/nonexistent:/usr/sbin/nologin"),
        "{passwd}"
    );
    for (path, mode, owner) in [
        ("/usr/bin/rampart", 0o755, 0),
        ("/etc/rampart/rampart.yaml", 0o644, 0),
        ("/etc/rampart/rules", 0o755, 0),
        ("/usr/lib/systemd/system/rampart.service", 0o644, 0),
        ("/usr/share/doc/rampart/README.md", 0o644, 0),
        ("/var/log/rampart", 0o750, uid),
    ] {
        let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            (m.permissions().mode() & 0o7777, m.uid()),
            (mode, owner),
            "{path}"
        );
    }
    let writable = ["-u", "rampart", "--", "test", "-w", "/var/log/rampart"];
    run(Command::new("runuser").args(writable));
    assert!(
        std::fs::symlink_metadata(ENABLED_LINK).is_ok(),
        "the unit is not enabled on first install"
    );
    assert!(
        !Path::new("/run/rampart/rampart.pid").exists(),
        "started without systemd?"
    );
    installed_config_checks();

    // Upgrade to release 2: the admin's change to the conffile stays, without a prompt.
    let conf = "/etc/rampart/rampart.yaml";
    let modified = read(conf) + "# changed by tests/packaging.rs\n";
    std::fs::write(conf, &modified).unwrap();
    dpkg_ok(&["-i", p.deb2.to_str().unwrap()]);
    assert!(installed_version()
        .unwrap()
        .starts_with(&format!("{VERSION}-2 install ok installed")));
    assert_eq!(
        read(conf),
        modified,
        "the upgrade replaced the modified conffile"
    );
    for leftover in [".dpkg-dist", ".dpkg-new", ".dpkg-old"] {
        assert!(
            !Path::new(&format!("{conf}{leftover}")).exists(),
            "{conf}{leftover}"
        );
    }
    assert_eq!(
        uid_of("rampart"),
        Some(uid),
        "the upgrade recreated the user"
    );
    installed_config_checks();

    dpkg_ok(&["--purge", "rampart"]);
    assert_eq!(installed_version(), None);
    for gone in [
        "/usr/bin/rampart",
        "/etc/rampart",
        "/var/log/rampart",
        ENABLED_LINK,
    ] {
        assert!(
            std::fs::symlink_metadata(gone).is_err(),
            "{gone} survived the purge"
        );
    }
    assert_eq!(uid_of("rampart"), None, "the purge left the user rampart");
    assert!(!group_exists("rampart"), "the purge left the group rampart");
}
