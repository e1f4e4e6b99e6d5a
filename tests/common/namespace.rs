//! Running a process with mounts of the test's own, in a mount namespace of its own that
//! nothing else on the machine sees: the test's files over system files (`/etc/hosts`), so
//! the system resolver the process calls reads what the test writes; or a small file system
//! the test can fill, as a full disk. Needs root, as CI runs. The test reaches the process's
//! mounts through `/proc/PID/root`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// A mount made for the process only.
pub enum Mount<'a> {
    /// `file` bind-mounted over `over`. A file written in place afterwards (not replaced by a
    /// rename) is what the process reads next.
    FileOver(&'a Path, &'a str),
    /// A tmpfs of `bytes` mounted on the directory.
    SmallDisk(&'a Path, usize),
}

/// What one mount(2) call takes, made before the fork.
struct MountCall {
    source: CString,
    target: CString,
    fstype: Option<CString>,
    flags: libc::c_ulong,
    data: Option<CString>,
}

fn c(bytes: &[u8]) -> CString {
    CString::new(bytes).unwrap()
}

/// Makes `command` run in a mount namespace of its own with `mounts`.
pub fn in_mount_namespace(command: &mut Command, mounts: &[Mount]) {
    let calls: Vec<MountCall> = mounts
        .iter()
        .map(|m| match m {
            Mount::FileOver(file, over) => MountCall {
                source: c(file.as_os_str().as_bytes()),
                target: c(over.as_bytes()),
                fstype: None,
                flags: libc::MS_BIND,
                data: None,
            },
            Mount::SmallDisk(dir, bytes) => MountCall {
                source: c(b"tmpfs"),
                target: c(dir.as_os_str().as_bytes()),
                fstype: Some(c(b"tmpfs")),
                flags: 0,
                data: Some(c(format!("size={bytes}").as_bytes())),
            },
        })
        .collect();
    let fail = |what: &str| {
        let e = std::io::Error::last_os_error();
        std::io::Error::new(e.kind(), format!("{what}: {e} (these tests run as root)"))
    };
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: between fork and exec the closure only makes system calls (unshare, mount) on
    // strings made before the fork; it allocates only to report a failure, after which the
    // child exits.
    unsafe {
        command.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(fail("unshare(CLONE_NEWNS)"));
            }
            // Mounts made here must not reach the machine's namespace.
            let (none, root) = (std::ptr::null(), c"/".as_ptr());
            if libc::mount(
                none,
                root,
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                none.cast(),
            ) != 0
            {
                return Err(fail("making / private"));
            }
            for m in &calls {
                let data = ptr(&m.data).cast();
                let (source, target) = (m.source.as_ptr(), m.target.as_ptr());
                if libc::mount(source, target, ptr(&m.fstype), m.flags, data) != 0 {
                    return Err(fail("mount"));
                }
            }
            Ok(())
        });
    }
}
