//! `server.error_log`, which Pingora makes a daemon's stderr, followed across rotations as the
//! access log is: once its path names another file or none (logrotate renamed it, the packaged
//! rule covers `/var/log/rampart/*.log`), the next line opens the path again and makes the new
//! file stderr. Before, the daemon wrote on into the rotated file, then into a deleted one once
//! logrotate had compressed it. Checked when a line is written, at most once a second: an idle
//! process does not wake for it.

use log::Level;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Instant;

struct Followed {
    path: PathBuf,
    start: Instant,
    /// Seconds after `start` of the next look at the path.
    next_check: AtomicU64,
    /// A failed reopen is said once, not every second.
    failed: AtomicBool,
    /// stderr was seen to be the file at the path: it differs later only when the file was
    /// moved. Before (the lines of a start, until Pingora makes the file the daemon's stderr)
    /// the path is opened as well, without a word of rotation.
    was_the_file: AtomicBool,
}

static FOLLOWED: OnceLock<Followed> = OnceLock::new();

/// Follows `path` from now on: to be called only when stderr is that file (a daemon's
/// `server.error_log`).
pub fn follow_error_log(path: PathBuf) {
    let _ = FOLLOWED.set(Followed {
        path,
        start: Instant::now(),
        next_check: AtomicU64::new(0),
        failed: AtomicBool::new(false),
        was_the_file: AtomicBool::new(false),
    });
}

/// Makes the followed path stderr again when it names another file than stderr; at most one
/// look a second, by one thread. Returns what to log (by the caller, in the file now written).
pub fn follow() -> Option<(Level, String)> {
    let f = FOLLOWED.get()?;
    let now = f.start.elapsed().as_secs();
    let next = f.next_check.load(Relaxed);
    if now < next
        || f.next_check
            .compare_exchange(next, now + 1, Relaxed, Relaxed)
            .is_err()
    {
        return None;
    }
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    // The file stderr is, even when no path names it any more.
    let stderr = std::fs::metadata("/proc/self/fd/2").ok().map(id)?;
    if std::fs::metadata(&f.path).ok().map(id) == Some(stderr) {
        f.was_the_file.store(true, Relaxed);
        return None;
    }
    let path = f.path.display();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&f.path);
    let result = file.and_then(|file| {
        // SAFETY: `file`'s descriptor stays open for the call; dup2 makes descriptor 2 a copy
        // of it in one step (a line written meanwhile goes whole to one file or the other),
        // and `file` is then closed without affecting descriptor 2.
        match unsafe { libc::dup2(file.as_raw_fd(), 2) } {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        }
    });
    match result {
        Ok(()) => {
            f.failed.store(false, Relaxed);
            f.was_the_file.swap(true, Relaxed).then_some((
                Level::Info,
                format!(
                    "error log: {path} was moved or removed (rotated?); writing to a new file there"
                ),
            ))
        }
        Err(e) if !f.failed.swap(true, Relaxed) => Some((
            Level::Warn,
            format!("error log: cannot open {path} again: {e}; still writing to the file it was"),
        )),
        Err(_) => None,
    }
}
