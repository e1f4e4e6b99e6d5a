//! Rampart's answer to the signals Pingora's main loop acts on.
//!
//! Pingora takes SIGQUIT as "hand the listening sockets to a new process, then stop". With no
//! new process waiting for them, the hand-over fails and the process stops anyway: one stray
//! `kill -QUIT` took the site down. Here SIGQUIT starts the hand-over only once a new process
//! listens on `server.upgrade_sock` (waiting a few seconds for it, since `run -u -d` returns
//! before the new process binds it), and only in a process that holds its listening sockets
//! (not one still taking them over); otherwise it is logged and ignored.
//!
//! The old process goes on accepting until the new one has received the sockets, then stops
//! (see `drain`). Stopping at SIGQUIT left new connections queued until the new process's next
//! accept on its upgrade socket, which Pingora tries once a second: up to 1 s with no new
//! connection answered, at every reload (seen under systemd).

use crate::proxy::access_log::AccessLogFinisher;
use async_trait::async_trait;
use pingora_core::server::{ShutdownSignal, ShutdownSignalWatch};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Notify;

/// How long SIGQUIT waits for a new process to listen on the upgrade socket.
const WAIT_FOR_NEW_PROCESS: Duration = Duration::from_secs(5);
/// How long the old process waits for the new one to take the sockets before it stops
/// accepting anyway: Pingora drops the connections it has 5 s after the hand-over.
const HAND_OVER_DEADLINE: Duration = Duration::from_secs(4);
/// How often the old process looks whether the new one has taken the sockets.
const HAND_OVER_POLL: Duration = Duration::from_millis(5);

pub struct Signals {
    /// Read by the proxy on every request: respond with `Connection: close` once set.
    pub draining: Arc<AtomicBool>,
    pub upgrade_sock: String,
    /// Set by a SIGQUIT that came before this watcher (see [`catch_quit_while_starting`]).
    pub quit_while_starting: Arc<AtomicBool>,
    /// Written out at SIGINT, before Pingora drops the writer: the lines of the requests
    /// answered until then are kept.
    pub access_log: Option<Arc<AccessLogFinisher>>,
    /// Starts the stop service (`stop`) before Pingora's shutdown does.
    pub stop_now: Arc<Notify>,
    /// Has the stop service cut the requests still in flight and end the process: a SIGINT
    /// during a graceful stop, which Pingora no longer watches for.
    pub cut_now: Arc<Notify>,
    /// Removed at SIGINT if it names this process: Pingora's fast shutdown does not stop the
    /// service that removes it otherwise, and a stale pid file misleads `run -u` and scripts.
    pub pid_file: std::path::PathBuf,
}

/// From the building of the server on, a SIGQUIT only sets the returned flag instead of its
/// default action (ending the process with a core dump): until Pingora's main loop watches
/// signals, a starting process holds no sockets to hand over, and is not to be stopped by
/// SIGQUIT. During an upgrade that can last seconds: the main loop starts only once the old
/// process's sockets have arrived (Pingora's bootstrap holds a lock for the whole transfer
/// that starting the services also takes).
pub fn catch_quit_while_starting() -> Arc<AtomicBool> {
    flag_set_by(signal_hook::consts::SIGQUIT, "SIGQUIT while starting")
}

/// SIGUSR1 asks for the access log to be opened again (what nginx users send after rotating
/// logs); the returned flag is set. Caught in every process: its default action ends the
/// process, as it did a foreground Rampart. (The parent of a daemon also waits for it from its
/// child, `catch_early_readiness_signal`: both run.)
pub fn catch_reopen_signal() -> Arc<AtomicBool> {
    flag_set_by(
        signal_hook::consts::SIGUSR1,
        "SIGUSR1 (reopen the access log)",
    )
}

/// A tokio watch on `kind` (`name` in the warning), or `None`, with a warning that says what
/// the caller does without it (`otherwise`), when it cannot be set up.
pub fn watch_signal(
    kind: tokio::signal::unix::SignalKind,
    name: &str,
    otherwise: &str,
) -> Option<Signal> {
    match tokio::signal::unix::signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            log::warn!("cannot watch {name} ({e}); {otherwise}");
            None
        }
    }
}

/// Resolves at the next delivery of a watched signal; never when it could not be watched
/// (`None`), so that a `select!` loop goes on with its other branches.
pub async fn next_delivery(signal: &mut Option<Signal>) {
    if let Some(s) = signal {
        if s.recv().await.is_some() {
            return;
        }
    }
    std::future::pending().await
}

/// A flag that `signal` sets, in place of the signal's default action; `what` names it in the
/// warning if it cannot be caught.
fn flag_set_by(signal: i32, what: &str) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal, flag.clone()) {
        log::warn!("cannot catch {what}: {e}");
    }
    flag
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (mut quit, mut term, mut int) = match (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(q), Ok(t), Ok(i)) => (q, t, i),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                // Without signal handling the process could never be stopped cleanly.
                log::error!("cannot watch SIGQUIT/SIGTERM/SIGINT: {e}; stopping");
                return ShutdownSignal::FastShutdown;
            }
        };
        if self.quit_while_starting.swap(false, Relaxed) {
            log::warn!("SIGQUIT ignored: it came while this process was starting");
        }
        loop {
            tokio::select! {
                _ = quit.recv() => {
                    if !holds_its_sockets().await {
                        log::warn!("SIGQUIT ignored: this process does not hold its listening sockets yet (it is starting, or taking them over from the process it replaces); send SIGQUIT again once it serves");
                        continue;
                    }
                    if new_process_waiting(&self.upgrade_sock).await {
                        self.draining.store(true, Relaxed);
                        let handed_over = Arc::new(Notify::new());
                        stop_accepting_after_hand_over(self.upgrade_sock.clone(), handed_over.clone());
                        stop_on_signals_after_hand_over(
                            (term, int),
                            handed_over,
                            self.stop_now.clone(),
                            self.cut_now.clone(),
                        );
                        return ShutdownSignal::GracefulUpgrade;
                    }
                    log::warn!(
                        "SIGQUIT ignored: no new process listened on {} within {}s to take the listening sockets; still serving. Start the new one first (`rampart run -u`, or `systemctl reload rampart`); SIGTERM stops this one",
                        self.upgrade_sock,
                        WAIT_FOR_NEW_PROCESS.as_secs()
                    );
                }
                _ = term.recv() => {
                    self.draining.store(true, Relaxed);
                    cut_on_interrupt(int, self.cut_now.clone());
                    return ShutdownSignal::GracefulTerminate;
                }
                _ = int.recv() => {
                    if let Some(log) = &self.access_log {
                        log.finish(Duration::from_secs(1)).await;
                    }
                    super::pid_file::remove_ours(&self.pid_file);
                    return ShutdownSignal::FastShutdown;
                }
            }
        }
    }
}

/// During a graceful stop Pingora watches no signal: a SIGINT then (a second Ctrl-C, or an
/// operator who will not wait for long downloads) is what the operator's guide says SIGINT
/// is, a stop at once.
fn cut_on_interrupt(mut int: Signal, cut_now: Arc<Notify>) {
    tokio::spawn(async move {
        if int.recv().await.is_some() {
            cut_now.notify_one();
        }
    });
}

/// After the hand-over Pingora's main loop sleeps 5 s before its shutdown, and watches no
/// signal then or during the shutdown. Here a SIGTERM (`systemctl stop` right after a reload)
/// starts the stop service at once: the process exits when its requests in flight are
/// answered. A SIGINT, then or later, stops at once, cutting them, as it does in any graceful
/// stop (a replaced process may be draining long downloads). Neither acts before the new
/// process has the sockets (`handed_over`).
fn stop_on_signals_after_hand_over(
    (mut term, mut int): (Signal, Signal),
    handed_over: Arc<Notify>,
    stop_now: Arc<Notify>,
    cut_now: Arc<Notify>,
) {
    tokio::spawn(async move {
        let interrupted = tokio::select! {
            _ = term.recv() => false,
            _ = int.recv() => true,
        };
        handed_over.notified().await;
        if !interrupted {
            log::info!("upgrade: asked to stop; exiting once no request is in flight");
        }
        stop_now.notify_one();
        match interrupted {
            true => cut_now.notify_one(),
            false => cut_on_interrupt(int, cut_now),
        }
    });
}

/// On a thread of its own (Pingora's main loop blocks while it sends the sockets): waits until
/// the new process stops listening on `upgrade_sock`, which it does once it has received the
/// sockets, then stops accepting and tells `handed_over`. Gives up waiting after
/// [`HAND_OVER_DEADLINE`], before Pingora's own shutdown 5 s after the hand-over.
fn stop_accepting_after_hand_over(upgrade_sock: String, handed_over: Arc<Notify>) {
    let told = handed_over.clone();
    let spawned = std::thread::Builder::new()
        .name("hand-over".into())
        .spawn(move || {
            let absolute = std::path::absolute(&upgrade_sock).ok();
            let deadline = Instant::now() + HAND_OVER_DEADLINE;
            loop {
                match std::fs::read_to_string("/proc/net/unix") {
                    Ok(table) if listening_on(&table, &upgrade_sock, absolute.as_deref()) => {}
                    _ => break,
                }
                if Instant::now() >= deadline {
                    log::warn!(
                        "upgrade: the new process has not taken the listening sockets within {}s",
                        HAND_OVER_DEADLINE.as_secs()
                    );
                    break;
                }
                std::thread::sleep(HAND_OVER_POLL);
            }
            stop_accepting();
            handed_over.notify_one();
        });
    if let Err(e) = spawned {
        log::warn!("upgrade: cannot watch the hand-over ({e}); stopping accepting now");
        stop_accepting();
        told.notify_one();
    }
}

fn stop_accepting() {
    match super::drain::stop_accepting() {
        Ok(n) => log::info!(
            "upgrade: stopped accepting on {n} listening sockets; the new process takes new connections"
        ),
        Err(e) => log::warn!("upgrade: cannot stop accepting early ({e}); Pingora stops in 5 s"),
    }
}

/// Whether this process listens on any TCP socket (the admin listener at least, once it
/// serves). A process still taking the sockets over listens on the upgrade socket itself, so
/// without this check a SIGQUIT then would find "a new process waiting" (itself), and Pingora,
/// with no sockets to send, would exit, possibly with the sockets just handed to it.
/// Unknown counts as yes, keeping Pingora's behaviour.
async fn holds_its_sockets() -> bool {
    let me = std::process::id() as i32;
    match tokio::task::spawn_blocking(move || super::addresses::held_by(me)).await {
        Ok(Ok(held)) => !held.is_empty(),
        _ => true,
    }
}

/// Polls until a process listens on the unix socket `path`, for up to
/// [`WAIT_FOR_NEW_PROCESS`]. Connecting to find out would use up the new process's one
/// accept, so the kernel's socket table is read instead.
async fn new_process_waiting(path: &str) -> bool {
    let absolute = std::path::absolute(path).ok();
    let deadline = Instant::now() + WAIT_FOR_NEW_PROCESS;
    loop {
        match tokio::fs::read_to_string("/proc/net/unix").await {
            Ok(table) if listening_on(&table, path, absolute.as_deref()) => return true,
            Ok(_) => {}
            Err(e) => {
                // Cannot tell: keep Pingora's behaviour rather than ignore a real upgrade.
                log::warn!("cannot read /proc/net/unix ({e}); handing the sockets over blindly");
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True when `/proc/net/unix` (its text in `table`) has a listening socket bound to `path`.
/// Columns: Num RefCount Protocol Flags Type St Inode [Path]; flag 0x10000 is `SO_ACCEPTCON`.
/// (procfs parses this table but drops the flags, and a listening socket's state is
/// "unconnected" like any other bound one, so the flag is read here.)
fn listening_on(table: &str, path: &str, absolute: Option<&Path>) -> bool {
    const ACCEPTCON: u32 = 0x10000;
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(flags), Some(bound)) = (fields.get(3), fields.get(7)) else {
            return false;
        };
        u32::from_str_radix(flags, 16).is_ok_and(|f| f & ACCEPTCON != 0)
            && (*bound == path || absolute.is_some_and(|a| Path::new(bound) == a))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_listening_socket_by_its_path() {
        let dir = std::env::temp_dir().join(format!("rampart-signals-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("upgrade.sock");
        let _ = std::fs::remove_file(&sock);
        let path = sock.to_str().unwrap();
        let table = || std::fs::read_to_string("/proc/net/unix").unwrap();
        assert!(!listening_on(&table(), path, None));
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(listening_on(&table(), path, None));
        drop(listener);
        assert!(
            !listening_on(&table(), path, None),
            "a socket file left behind is not a waiting process"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
