//! The pid file systemd follows (`PIDFile=`), written atomically by the daemon itself.
//!
//! Pingora's daemonize renames the previous pid file to `*.old` before forking and the
//! grandchild creates the new one later, so for a few milliseconds of every reload there is
//! no pid file at all, then an empty one. Pingora is therefore given a private path, and the
//! public file is replaced in one `rename` by the new daemon before it tells its parent it is
//! ready, so `rampart run -u -d` returns only once the file names the new process.

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
        if let Err(e) = self.write() {
            // Without it systemd would keep following the old process: refuse to start, so
            // the reload fails and the old process keeps serving.
            log::error!("cannot write pid file {}: {e}", self.path.display());
            std::process::exit(1);
        }
        ready_notifier.notify_ready();
        let _ = shutdown.changed().await;
    }
}
