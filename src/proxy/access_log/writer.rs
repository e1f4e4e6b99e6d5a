//! The access log's writer, a Pingora background service: on a timer, it takes the lines
//! each thread has formatted and writes them, in order, in one write. With nothing to write
//! it sleeps until a line comes (or SIGUSR1).
//!
//! It goes on writing after Pingora's shutdown begins (requests still in flight then are
//! logged too) until the process, about to exit, asks it to write what is queued and stop
//! ([`AccessLogFinisher`]).
//!
//! A log file is followed across rotations: once its path names another file or none
//! (logrotate renamed it, or someone removed it), the writer opens the path again, within a
//! second while lines come, and before the next line after a quiet spell. No signal is
//! needed, nor `copytruncate`, which loses the lines written between its copy and its
//! truncation; SIGUSR1 (nginx's "reopen") opens the path again at once.

use super::queue::{merge, LogQueue};
use super::{AccessLogger, LogFormat, LogTarget};
use crate::metrics::METRICS;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// How often the writer drains the queue.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// How often a log file's path is compared with the file being written.
const ROTATION_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The writer, run as a Pingora background service.
pub struct AccessLogWriter {
    queue: Arc<LogQueue>,
    target: LogTarget,
    finish: Arc<Notify>,
    finished: Arc<Notify>,
    /// Set by SIGUSR1: open the file again now.
    reopen: Arc<AtomicBool>,
}

/// Asks the writer to write every queued line and stop, and waits for it: the last thing a
/// stopping process does, since Pingora drops the writer's task without a word.
pub struct AccessLogFinisher {
    finish: Arc<Notify>,
    finished: Arc<Notify>,
}

impl AccessLogFinisher {
    /// False when the writer did not finish `within`.
    pub async fn finish(&self, within: Duration) -> bool {
        self.finish.notify_one();
        tokio::time::timeout(within, self.finished.notified())
            .await
            .is_ok()
    }
}

/// Tells the finisher, however the writer's task ends.
struct NotifyOnDrop(Arc<Notify>);

impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// Creates the logger and its writer service with the writer's finisher (`None` when the
/// target is `off`). `reopen`: set when the file is to be opened again at once.
pub fn access_log(
    target: LogTarget,
    format: LogFormat,
    reopen: Arc<AtomicBool>,
) -> (AccessLogger, Option<(AccessLogWriter, AccessLogFinisher)>) {
    if target == LogTarget::Off {
        return (AccessLogger::new(None), None);
    }
    let queue = Arc::new(LogQueue::new(format));
    let (finish, finished) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let writer = AccessLogWriter {
        queue: queue.clone(),
        target,
        finish: finish.clone(),
        finished: finished.clone(),
        reopen,
    };
    (
        AccessLogger::new(Some(queue)),
        Some((writer, AccessLogFinisher { finish, finished })),
    )
}

/// A file's identity: (device, inode).
type FileId = (u64, u64);

/// An open log file and the path it was opened at.
struct LogFile {
    path: PathBuf,
    last_check: Instant,
    /// A failed reopen is logged once, not every second.
    reopen_failed: bool,
    opened: Opened,
}

/// What is kept of the file open for writing.
struct Opened {
    id: FileId,
    /// The same open file, to learn how much of a failed write landed.
    probe: tokio::fs::File,
    /// Its length once every write so far has landed.
    len: u64,
}

/// Where the lines go. Each batch is one write (no buffer of our own: a line that could not be
/// written is gone, and counted, rather than kept for a retry that may write it later).
struct Output {
    out: Box<dyn AsyncWrite + Send + Unpin>,
    file: Option<LogFile>,
    /// Writing fails (disk full...): logged when it starts and when it ends, not per batch.
    failing: bool,
    /// A failed write left part of a line at the file's end: the next write ends it first, so
    /// that the next lines are not glued to it.
    torn: bool,
}

/// The file to write, and what is kept of it.
async fn open_file(path: &Path) -> std::io::Result<(tokio::fs::File, Opened)> {
    // Readable too where allowed: after a failed write the probe reads the file's last byte.
    let mut options = tokio::fs::OpenOptions::new();
    options.create(true).append(true);
    let file = match options.clone().read(true).open(path).await {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => options.open(path).await?,
        opened => opened?,
    };
    let meta = file.metadata().await?;
    let opened = Opened {
        id: (meta.dev(), meta.ino()),
        probe: file.try_clone().await?,
        len: meta.len(),
    };
    Ok((file, opened))
}

/// Whether the file of length `len` does not end with a newline. `probe` shares the writer's
/// file offset, which appends do not use.
async fn ends_within_a_line(probe: &mut tokio::fs::File, len: u64) -> bool {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut last = [b'\n'];
    if len > 0 && probe.seek(std::io::SeekFrom::Start(len - 1)).await.is_ok() {
        let _ = probe.read_exact(&mut last).await;
    }
    last[0] != b'\n'
}

impl Output {
    async fn open(target: &LogTarget) -> std::io::Result<Output> {
        let (out, file) = match target {
            LogTarget::Stdout => (Box::new(tokio::io::stdout()) as Box<_>, None),
            LogTarget::Stderr => (Box::new(tokio::io::stderr()) as Box<_>, None),
            LogTarget::Off => (Box::new(tokio::io::sink()) as Box<_>, None),
            LogTarget::File(path) => {
                let (f, opened) = open_file(path).await?;
                let file = LogFile {
                    path: path.clone(),
                    last_check: Instant::now(),
                    reopen_failed: false,
                    opened,
                };
                (Box::new(f) as Box<_>, Some(file))
            }
        };
        Ok(Output {
            out,
            file,
            failing: false,
            torn: false,
        })
    }

    /// Writes `lines` formatted lines; the lines that did not land whole are counted as
    /// dropped.
    async fn write(&mut self, text: &str, lines: usize) {
        if self.torn {
            if let Err(e) = self.write_all(b"\n").await {
                return self.failed(e, b"", lines).await;
            }
            self.torn = false;
        }
        match self.write_all(text.as_bytes()).await {
            Ok(()) if self.failing => {
                self.failing = false;
                log::info!("access log: writing again");
            }
            Ok(()) => {}
            Err(e) => self.failed(e, text.as_bytes(), lines).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes).await?;
        self.out.flush().await?;
        if let Some(file) = &mut self.file {
            file.opened.len += bytes.len() as u64;
        }
        Ok(())
    }

    /// A write of `bytes` failed: counts the lines that did not land whole. A file tells how
    /// much did (its length grew by that much, unless another process appends to it too, as
    /// during an upgrade), and whether it now ends within a line, which the next write ends.
    async fn failed(&mut self, e: std::io::Error, bytes: &[u8], lines: usize) {
        let landed = match &mut self.file {
            Some(LogFile { opened: o, .. }) => {
                let now = o.probe.metadata().await.map_or(o.len, |m| m.len());
                let landed = now.saturating_sub(o.len).min(bytes.len() as u64) as usize;
                o.len = now;
                self.torn = ends_within_a_line(&mut o.probe, now).await;
                landed
            }
            None => 0,
        };
        let whole = bytes[..landed].iter().filter(|&&b| b == b'\n').count();
        METRICS
            .access_log_dropped
            .inc_by(lines.saturating_sub(whole) as u64);
        if !self.failing {
            self.failing = true;
            log::warn!("access log: cannot write: {e}; lines are dropped, and counted in rampart_access_log_dropped_total, until writing works again");
        }
    }

    /// Opens the path again if it no longer names the file written (looked at when lines are
    /// drained, at most once a second), or at once when `asked` (SIGUSR1). The lines written
    /// meanwhile are in the rotated file, where they belong.
    async fn follow_rotation(&mut self, asked: bool) {
        let Some(file) = &mut self.file else { return };
        if !asked {
            if file.last_check.elapsed() < ROTATION_CHECK_EVERY {
                return;
            }
            file.last_check = Instant::now();
            let now = tokio::fs::metadata(&file.path)
                .await
                .ok()
                .map(|m| (m.dev(), m.ino()));
            if now == Some(file.opened.id) {
                return;
            }
        }
        match open_file(&file.path).await {
            Ok((f, opened)) => {
                self.out = Box::new(f);
                file.opened = opened;
                file.reopen_failed = false;
                // The line cut short is in the old file.
                self.torn = false;
                let why = if asked {
                    "reopened on SIGUSR1"
                } else {
                    "was moved or removed (rotated?); writing to a new file there"
                };
                log::info!("access log: {} {why}", file.path.display());
            }
            Err(e) if !file.reopen_failed => {
                file.reopen_failed = true;
                log::warn!(
                    "access log: cannot open {} again: {e}; still writing to the file it was",
                    file.path.display()
                );
            }
            Err(_) => {}
        }
    }
}

#[async_trait]
impl BackgroundService for AccessLogWriter {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let _finished = NotifyOnDrop(self.finished.clone());
        let mut out = match Output::open(&self.target).await {
            Ok(o) => o,
            Err(e) => {
                log::error!(
                    "access log: cannot open {:?}: {e}; access log disabled",
                    self.target
                );
                return;
            }
        };
        // Wake on a timer while lines come, rather than per line: a writer waiting for each
        // line would make every request pay for waking this thread. Once a drain finds nothing,
        // the next line wakes it (once), or SIGUSR1. A quiet writer does not look at the log
        // file's path: nothing is written meanwhile, and the drains that follow look again.
        // Only where SIGUSR1 cannot be watched does it still look once a second.
        let mut usr1 = crate::server::watch_signal(
            tokio::signal::unix::SignalKind::user_defined1(),
            "SIGUSR1",
            "the access log looks at its file's path once a second",
        );
        let poll_path = out.file.is_some() && usr1.is_none();
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut spares, mut taken) = (Vec::new(), Vec::new());
        let mut text = String::new();
        let mut quiet = false;
        loop {
            // Quiet: a line (then wait a tick for the lines after it, as while busy), SIGUSR1,
            // or the finish.
            let woken = if quiet {
                tokio::select! {
                    _ = self.queue.line_logged() => {
                        tick.reset();
                        None
                    }
                    _ = crate::server::next_delivery(&mut usr1) => Some(false),
                    _ = tokio::time::sleep(ROTATION_CHECK_EVERY), if poll_path => Some(false),
                    _ = self.finish.notified() => Some(true),
                }
            } else {
                None
            };
            let stopping = match woken {
                Some(stopping) => stopping,
                None => tokio::select! {
                    _ = tick.tick() => false,
                    _ = crate::server::next_delivery(&mut usr1) => false,
                    _ = self.finish.notified() => true,
                },
            };
            out.follow_rotation(self.reopen.swap(false, Relaxed)).await;
            self.queue.writer_may_idle();
            self.queue.take(&mut spares, &mut taken);
            quiet = taken.is_empty();
            if !quiet {
                self.queue.writer_busy();
            }
            match taken.as_slice() {
                [] => {}
                [one] => out.write(&one.text, one.ends.len()).await,
                several => {
                    text.clear();
                    let lines = merge(several, &mut text);
                    out.write(&text, lines).await;
                }
            }
            spares.append(&mut taken);
            // No logger left (the proxy is gone): nothing more will come.
            if stopping || Arc::strong_count(&self.queue) == 1 {
                break;
            }
        }
        let _ = out.out.flush().await; // stdout and stderr may hold a partial write
    }
}
