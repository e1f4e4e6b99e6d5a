//! The open-file limit. Each proxied connection holds two descriptors (the client's and the
//! backend's) and the pools keep idle ones, so the soft limit a shell, a container or a unit
//! without `LimitNOFILE=` gives (often 1 024) caps a proxy at a few hundred clients: past it
//! `accept` fails with "Too many open files" and health checks fail on this host's side, not
//! the backend's. As HAProxy and Go programs do, the soft limit is raised to the hard one at
//! start; a limit still too low for the listeners is named in the log with its fix.

use crate::config::Config;

/// Descriptors besides connections: listening sockets, the admin, log and rules files, the
/// health checks' probes, the runtime's own (~45 for the shipped config).
const SPARE: u64 = 100;
/// Without `max_connections`, a limit under this gets a warning saying how many clients it
/// allows.
const LOW: u64 = 4096;

/// Raises the soft open-file limit to the hard one (within the kernel's `fs.nr_open`) and
/// logs what it did, and a warning when the limit is too low for `config`'s listeners.
pub fn raise_and_check(config: &Config) {
    let (soft, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(e) => {
            log::warn!("cannot read the open-file limit: {e}");
            return;
        }
    };
    let target = hard.min(kernel_ceiling());
    let limit = if soft < target {
        match rlimit::Resource::NOFILE.set(target, hard) {
            Ok(()) => {
                let ceiling = if target == hard {
                    "the hard limit"
                } else {
                    "the kernel's fs.nr_open"
                };
                log::info!("open-file limit raised from {soft} to {target} ({ceiling})");
                target
            }
            Err(e) => {
                log::warn!("cannot raise the open-file limit from {soft} to {target}: {e}");
                soft
            }
        }
    } else {
        soft
    };
    if let Some(warning) = low_limit_warning(limit, max_clients(config)) {
        log::warn!("{warning}");
    }
}

/// The most clients the listeners admit at once, when every listener sets `max_connections`.
fn max_clients(config: &Config) -> Option<u64> {
    config
        .listeners
        .iter()
        .map(|l| l.max_connections.map(u64::from))
        .sum()
}

/// Linux refuses a `RLIMIT_NOFILE` above `fs.nr_open` (1 048 576 by default), even when the
/// hard limit is unlimited.
fn kernel_ceiling() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

/// What to say when `limit` descriptors cannot serve `clients` proxied connections (or, with
/// no `max_connections` on some listener, when the limit is under [`LOW`]).
fn low_limit_warning(limit: u64, clients: Option<u64>) -> Option<String> {
    let fix = "raise it with LimitNOFILE= in the systemd unit (the packaged unit sets 1048576) \
               or `ulimit -n` in the shell that starts rampart";
    let room = limit.saturating_sub(SPARE) / 2;
    match clients {
        Some(clients) if room < clients => {
            let needed = clients * 2 + SPARE;
            Some(format!(
                "open-file limit {limit} is too low for the listeners' max_connections \
                 ({clients} clients, two descriptors each when proxied): past about {room} \
                 clients, new connections fail with \"Too many open files\"; {fix} to at least \
                 {needed}"
            ))
        }
        None if limit < LOW => Some(format!(
            "open-file limit {limit}: past about {room} proxied clients at once, new \
             connections fail with \"Too many open files\"; {fix}"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_when_max_connections_need_more_descriptors_than_the_limit() {
        let w = low_limit_warning(1024, Some(1000)).expect("1 000 clients need 2 100");
        assert!(w.contains("open-file limit 1024"), "{w}");
        assert!(w.contains("past about 462 clients"), "{w}");
        assert!(w.contains("to at least 2100"), "{w}");
        assert_eq!(low_limit_warning(4096, Some(1000)), None);
    }

    #[test]
    fn without_max_connections_warns_only_under_the_low_mark() {
        let w = low_limit_warning(1024, None).expect("1 024 is low");
        assert!(w.contains("past about 462 proxied clients"), "{w}");
        assert!(w.contains("LimitNOFILE="), "{w}");
        assert_eq!(low_limit_warning(LOW, None), None);
        assert_eq!(low_limit_warning(1_048_576, None), None);
    }

    #[test]
    fn a_limit_under_the_spare_descriptors_admits_no_client() {
        let w = low_limit_warning(SPARE, Some(1)).expect("no room beyond the spare descriptors");
        assert!(w.contains("past about 0 clients"), "{w}");
    }
}
