//! Checking, before Pingora starts, that every address can be listened on.
//!
//! Pingora binds in its listener threads, where a failure is retried for a while and then
//! panics that thread, leaving a process that looks healthy but does not serve the port. So
//! `rampart run` binds (and closes) each address itself first and exits 1 naming the key.
//!
//! During an upgrade the sockets come from the old process, so its addresses are not free,
//! but an address the reload adds is bound by the new process like any other; a taken one
//! would be noticed only after the old process had handed over and quit. The old process's
//! listening sockets are found through its pid file and `/proc`, and only the other
//! addresses are tried: a reload adding a taken address fails before SIGQUIT is sent.
//!
//! A process started by a reload a moment ago may not hold its sockets yet: it takes them from
//! its own predecessor, which Pingora tries once a second. A second reload then waits for it;
//! replacing it before it has them would leave no process to hand the sockets on.

use super::{listening, StartError};
use crate::config::Config;
use procfs::process::Process;
use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long `run -u` waits for the process it replaces to hold its listening sockets (Pingora
/// gives up taking them over after about 6 s).
const WAIT_FOR_OLD_PROCESS: Duration = Duration::from_secs(10);

/// `old_pid_file`: during an upgrade, the pid file naming the process handing over.
pub fn check_addresses_free(
    config: &Config,
    old_pid_file: Option<&Path>,
) -> Result<(), StartError> {
    let inherited = match old_pid_file {
        None => HashSet::new(),
        Some(pid_file) => {
            match old_pid(pid_file).and_then(|pid| Ok((pid, held_once_settled(pid)?))) {
                Ok((pid, held)) if held.is_empty() => {
                    return Err(StartError::PreviousUpgradeUnfinished {
                        pid,
                        pid_file: pid_file.display().to_string(),
                        waited_s: WAIT_FOR_OLD_PROCESS.as_secs(),
                    })
                }
                Ok((_, held)) => held,
                // Pingora would wait for sockets no process will send, and exit 6 s later
                // with the pid file naming it.
                Err(reason) => return Err(StartError::NothingToUpgrade { reason }),
            }
        }
    };
    let listeners = config
        .listeners
        .iter()
        .map(|l| (format!("listeners.{}.address", l.name), l.address));
    for (key, addr) in listeners.chain([("admin.listen".to_string(), config.admin.listen)]) {
        if inherited.contains(&addr) {
            continue;
        }
        if let Err(source) = std::net::TcpListener::bind(addr) {
            let overlapped = inherited
                .iter()
                .find(|held| crate::config::overlaps(**held, addr));
            let hint = match (source.kind(), overlapped) {
                (ErrorKind::PermissionDenied, _) => {
                    " (ports below 1024 need root or CAP_NET_BIND_SERVICE, which the systemd unit grants)".into()
                }
                (ErrorKind::AddrInUse, Some(held)) => format!(
                    " (the rampart being replaced listens on {held}, the same port: a reload takes its sockets over as they are, so an address overlapping one of them cannot be added; to move a listener between an address and a wildcard on one port, restart rampart (`systemctl restart rampart`); the running rampart goes on serving)"
                ),
                (ErrorKind::AddrInUse, None) if old_pid_file.is_some() => {
                    " (another process listens there, not the rampart being replaced: this reload adds the address, so free it or choose another; the running rampart goes on serving)".into()
                }
                (ErrorKind::AddrInUse, None) => {
                    " (another process listens there; to replace a running rampart without dropping connections use `rampart run --upgrade`, i.e. `systemctl reload rampart`)".into()
                }
                _ => String::new(),
            };
            return Err(StartError::Bind {
                key,
                addr,
                source,
                hint,
            });
        }
    }
    Ok(())
}

/// The TCP addresses process `pid` listens on, once it listens on any (for up to
/// [`WAIT_FOR_OLD_PROCESS`]; empty if it never does).
fn held_once_settled(pid: i32) -> Result<HashSet<SocketAddr>, String> {
    let deadline = Instant::now() + WAIT_FOR_OLD_PROCESS;
    loop {
        let held = held_by(pid)?;
        if !held.is_empty() || Instant::now() >= deadline {
            return Ok(held);
        }
        // Before Pingora starts: no runtime to block.
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn old_pid(pid_file: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|e| format!("reading {}: {e}", pid_file.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{} holds no pid", pid_file.display()))
}

/// The TCP addresses process `pid` listens on.
pub fn held_by(pid: i32) -> Result<HashSet<SocketAddr>, String> {
    let fds = Process::new(pid)
        .and_then(|p| listening::descriptors(&p))
        .map_err(|e| format!("process {pid}: {e}"))?;
    let listeners = listening::tcp_listeners(&fds).map_err(|e| format!("/proc/net/tcp: {e}"))?;
    Ok(listeners.into_iter().map(|(_, addr)| addr).collect())
}
