//! The TCP sockets a process listens on, from `/proc`: its descriptors, matched by inode
//! against the kernel's TCP tables (procfs). Used to find what an old process hands over
//! (`addresses`) and what this process stops accepting on (`drain`).

use procfs::net::TcpState;
use procfs::process::{FDInfo, FDTarget, Process};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The descriptors of `process`.
pub fn descriptors(process: &Process) -> procfs::ProcResult<Vec<FDInfo>> {
    Ok(process.fd()?.flatten().collect())
}

/// Of `fds`, the listening TCP sockets: (descriptor, address).
pub fn tcp_listeners(fds: &[FDInfo]) -> procfs::ProcResult<Vec<(i32, SocketAddr)>> {
    let fd_of_socket: HashMap<u64, i32> = fds
        .iter()
        .filter_map(|fd| match fd.target {
            FDTarget::Socket(inode) => Some((inode, fd.fd)),
            _ => None,
        })
        .collect();
    let mut table = procfs::net::tcp()?;
    // No IPv6 on the host is not an error.
    table.extend(procfs::net::tcp6().unwrap_or_default());
    Ok(table
        .into_iter()
        .filter(|e| e.state == TcpState::Listen)
        .filter_map(|e| Some((*fd_of_socket.get(&e.inode)?, e.local_address)))
        .collect())
}
