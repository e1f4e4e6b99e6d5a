//! Draining before an upgrade: once the hand-over is done (see `signals`), the old process stops
//! taking new connections; from SIGQUIT on it ends each keep-alive connection after its current
//! response.
//!
//! Pingora 0.9.1 keeps accepting in the old process for 5 s after handing the listening
//! sockets over (both processes accept from the same queue), then drops every connection that
//! is waiting for a request, including one accepted a moment earlier whose request was still
//! on the wire: that client gets a closed connection and no response. So once the new process
//! has received the sockets (see `signals`), this process removes them from its own epoll
//! sets. The sockets stay open (the new process shares them) and the pending connections stay
//! queued, for the new process to accept. Pingora's accept loops simply wait until its
//! shutdown ends them.

use super::listening;
use procfs::process::{FDTarget, Process};

/// Removes every listening TCP socket of this process from every epoll set of this process.
/// Returns how many listening sockets were found.
pub fn stop_accepting() -> std::io::Result<usize> {
    let fds = Process::myself()
        .and_then(|me| listening::descriptors(&me))
        .map_err(std::io::Error::other)?;
    let listeners = listening::tcp_listeners(&fds).map_err(std::io::Error::other)?;
    let epolls = fds
        .iter()
        .filter(|fd| matches!(&fd.target, FDTarget::AnonInode(kind) if kind == "[eventpoll]"));
    for ep in epolls {
        for (fd, _) in &listeners {
            // SAFETY: plain syscall on fds of this process; ENOENT (not in this set) is expected.
            unsafe { libc::epoll_ctl(ep.fd, libc::EPOLL_CTL_DEL, *fd, std::ptr::null_mut()) };
        }
    }
    Ok(listeners.len())
}
