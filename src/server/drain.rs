//! Draining before an upgrade: once the hand-over starts (see `signals`), the old process stops
//! taking new connections and ends each keep-alive connection after its current response.
//!
//! Pingora 0.9.1 keeps accepting in the old process for 5 s after handing the listening
//! sockets over (both processes accept from the same queue), then drops every connection that
//! is waiting for a request, including one accepted a moment earlier whose request was still
//! on the wire: that client gets a closed connection and no response. So at SIGQUIT this
//! process removes its listening sockets from its own epoll sets. The sockets stay open (the
//! new process shares them) and the pending connections stay queued, for the new process to
//! accept. Pingora's accept loops simply wait until its shutdown ends them.

use std::os::fd::RawFd;

/// Removes every listening TCP socket of this process from every epoll set of this process.
/// Returns how many listening sockets were found.
pub fn stop_accepting() -> std::io::Result<usize> {
    let mut listeners = Vec::new();
    let mut epolls = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<RawFd>().ok())
        else {
            continue;
        };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if target == "anon_inode:[eventpoll]" {
            epolls.push(fd);
        } else if target.starts_with("socket:") && is_tcp_listener(fd) {
            listeners.push(fd);
        }
    }
    for &ep in &epolls {
        for &fd in &listeners {
            // SAFETY: plain syscall on fds of this process; ENOENT (not in this set) is expected.
            unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
        }
    }
    Ok(listeners.len())
}

fn is_tcp_listener(fd: RawFd) -> bool {
    let get = |opt| {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: value and len are valid for writes of a c_int.
        let rc = unsafe {
            libc::getsockopt(fd, libc::SOL_SOCKET, opt, (&raw mut value).cast(), &mut len)
        };
        (rc == 0).then_some(value)
    };
    get(libc::SO_ACCEPTCONN) == Some(1)
        && matches!(get(libc::SO_DOMAIN), Some(libc::AF_INET | libc::AF_INET6))
}
