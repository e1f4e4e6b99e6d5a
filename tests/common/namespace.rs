//! Running a process with the test's own files over system files (`/etc/hosts`,
//! `/etc/resolv.conf`): in a mount namespace of its own, so the system resolver the process
//! calls reads what the test writes, and nothing else on the machine sees it. Needs root, as
//! CI runs.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Makes `command` run with each `(file, over)` pair's `file` bind-mounted on `over`. A file
/// written in place afterwards (not replaced by a rename) is what the process reads next.
pub fn with_files_over(command: &mut Command, files: &[(&Path, &str)]) {
    let mounts: Vec<(CString, CString)> = files
        .iter()
        .map(|(file, over)| {
            (
                CString::new(file.as_os_str().as_bytes()).unwrap(),
                CString::new(*over).unwrap(),
            )
        })
        .collect();
    let fail = |what: &str| {
        std::io::Error::new(
            std::io::Error::last_os_error().kind(),
            format!(
                "{what}: {} (these tests run as root)",
                std::io::Error::last_os_error()
            ),
        )
    };
    // SAFETY: between fork and exec the closure only makes system calls (unshare, mount) on
    // strings made before the fork; it allocates only to report a failure, after which the
    // child exits.
    unsafe {
        command.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(fail("unshare(CLONE_NEWNS)"));
            }
            // Mounts made here must not reach the machine's namespace.
            let root = c"/";
            let flags = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            ) != 0
            {
                return Err(fail("making / private"));
            }
            for (file, over) in &mounts {
                let bind = libc::MS_BIND;
                if libc::mount(
                    file.as_ptr(),
                    over.as_ptr(),
                    std::ptr::null(),
                    bind,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(fail("bind mount"));
                }
            }
            Ok(())
        });
    }
}
