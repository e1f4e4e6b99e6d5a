//! The pid file systemd follows (`PIDFile=`), written atomically by the daemon itself.
//!
//! Pingora's daemonize renames the previous pid file to `*.old` before forking and the
//! grandchild creates the new one later, so for a few milliseconds of every reload there is
//! no pid file at all, then an empty one. Pingora is therefore given a private path, and the
//! public file is replaced in one `rename` by the new daemon before it tells its parent it is
//! ready, so `rampart run -u -d` returns only once the file names the new process.
//!
//! In the foreground (Pingora writes nothing then) the file is written the same way when its
//! directory exists, so scripts and `run -u` find the serving process; failing to write it
//! only warns there. Either way a process removes the file when it exits, if the file still
//! names it (after an upgrade it names the new process and stays), and Pingora's copies are
//! removed too: none is left in the pid file's directory once the last process is gone.

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_core::services::ServiceReadyNotifier;
use std::path::PathBuf;

/// Where Pingora writes its own copy of the pid file.
pub fn pingora_path(public: &str) -> String {
    format!("{public}.daemon")
}

pub struct PidFileWriter {
    pub path: PathBuf,
    /// Daemon: no pid file, no start. Foreground: best effort.
    pub required: bool,
}

/// Removes the pid file at `public`, and Pingora's copy of it, each if it still names this
/// process.
pub fn remove_ours(public: &std::path::Path) {
    remove_if_ours(public);
    remove_if_ours(std::path::Path::new(&pingora_path(
        &public.to_string_lossy(),
    )));
}

/// Removes the pid file at `path` if it still names this process.
fn remove_if_ours(path: &std::path::Path) {
    let ours = std::fs::read_to_string(path)
        .is_ok_and(|text| text.trim() == std::process::id().to_string());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

impl PidFileWriter {
    fn write(&self) -> std::io::Result<()> {
        let tmp = self
            .path
            .with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[async_trait]
impl BackgroundService for PidFileWriter {
    async fn start_with_ready_notifier(
        &self,
        mut shutdown: ShutdownWatch,
        ready_notifier: ServiceReadyNotifier,
    ) {
        let wanted = self.required || self.path.parent().is_some_and(|dir| dir.is_dir());
        let written = wanted
            && match self.write() {
                Ok(()) => true,
                Err(e) if self.required => {
                    // Without it systemd would keep following the old process: refuse to
                    // start, so the reload fails and the old process keeps serving.
                    log::error!("cannot write pid file {}: {e}", self.path.display());
                    std::process::exit(1);
                }
                Err(e) => {
                    let path = self.path.display();
                    log::warn!("cannot write pid file {path}: {e}; running without one");
                    false
                }
            };
        ready_notifier.notify_ready();
        // Pingora's own copy: its previous one, renamed `*.old` by a reload, names the process
        // replaced; the current one names this process until the next reload.
        let private = pingora_path(&self.path.to_string_lossy());
        let _ = std::fs::remove_file(format!("{private}.old"));
        let _ = shutdown.changed().await;
        if written {
            remove_ours(&self.path);
        } else {
            remove_if_ours(std::path::Path::new(&private));
        }
    }
}
