//! The shipped systemd unit is accepted by `systemd-analyze verify` and runs what the contract
//! says: check before start and reload, reload as a graceful upgrade.

use std::process::Command;

#[test]
fn unit_verifies_and_reloads_by_upgrade() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/rampart.service"
    ))
    .unwrap();
    for needle in [
        "ExecStartPre=/usr/bin/rampart check --no-resolve -c /etc/rampart/rampart.yaml",
        "ExecReload=/usr/bin/rampart check -c /etc/rampart/rampart.yaml",
        "rampart run -u -d -c /etc/rampart/rampart.yaml && /bin/kill -QUIT",
        "PIDFile=/run/rampart/rampart.pid",
        "RuntimeDirectory=rampart",
        "User=rampart",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit.contains(needle), "the unit lacks `{needle}`");
    }
    // systemd-analyze checks that executables exist: point them at the built binary.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/rampart", env!("CARGO_BIN_EXE_rampart")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (from the systemd package) must be installed to verify the unit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("rampart.service"))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}
