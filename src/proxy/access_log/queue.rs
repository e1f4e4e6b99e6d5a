//! Lines waiting for the writer: each thread that logs formats its lines into a text of its
//! own, behind a lock only the writer also takes (every 50 ms, to swap the text for an empty
//! one). A shared channel cost every request a record built from clones, a send and a receive
//! (~1 500 instructions), and all threads would contend on one buffer. Each line takes a
//! number from one counter, and the writer merges the threads' lines by it: the log keeps the
//! order in which requests finished.
//!
//! A writer that found nothing sleeps until a line comes (the line's thread wakes it, once)
//! rather than every 50 ms: an idle Rampart does not wake 20 times a second for its log.

use super::{LogFormat, LogRecord, TimeCache};
use crate::metrics::METRICS;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Text a thread may hold for the writer before its lines are dropped (and counted): 50 ms
/// of 100 000 lines/s is ~1 MiB.
const MAX_PENDING_BYTES: usize = 4 << 20;

/// Formatted lines: their text, and each line's number and end in the text.
#[derive(Default)]
pub struct Lines {
    pub text: String,
    pub ends: Vec<(u64, usize)>,
}

impl Lines {
    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

/// One thread's formatted lines.
#[derive(Default)]
struct Pending {
    lines: Lines,
    clock: TimeCache,
}

/// Every thread's pending lines, shared by the loggers and the writer.
pub(super) struct LogQueue {
    id: u64,
    format: LogFormat,
    /// The next line's number.
    next: AtomicU64,
    threads: Mutex<Vec<Arc<Mutex<Pending>>>>,
    /// Set by the writer before a take that may find nothing: the next line wakes it.
    writer_idle: AtomicBool,
    wake: tokio::sync::Notify,
}

/// A lock whose holder panicked still guards plain text: keep logging.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// This thread's pending lines, per queue (one in a running server).
    static MINE: RefCell<Vec<(u64, Arc<Mutex<Pending>>)>> = const { RefCell::new(Vec::new()) };
}

impl LogQueue {
    pub fn new(format: LogFormat) -> Self {
        static IDS: AtomicU64 = AtomicU64::new(0);
        LogQueue {
            id: IDS.fetch_add(1, Relaxed),
            format,
            next: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
            writer_idle: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Formats `record` into this thread's pending lines (registered with the queue on the
    /// thread's first line).
    fn log(&self, record: &LogRecord) {
        MINE.with(|mine| {
            let mut mine = mine.borrow_mut();
            let pending = match mine.iter().position(|(id, _)| *id == self.id) {
                Some(i) => &mine[i].1,
                None => {
                    // Entries of queues dropped since (tests start several servers) go.
                    mine.retain(|(_, p)| Arc::strong_count(p) > 1);
                    let p = Arc::new(Mutex::new(Pending::default()));
                    lock(&self.threads).push(p.clone());
                    mine.push((self.id, p));
                    &mine[mine.len() - 1].1
                }
            };
            let mut p = lock(pending);
            if p.lines.text.len() >= MAX_PENDING_BYTES {
                drop(p);
                METRICS.access_log_dropped.inc();
                return;
            }
            let Pending { lines, clock } = &mut *p;
            record.format_into(&self.format, &mut lines.text, clock);
            let number = self.next.fetch_add(1, Relaxed);
            lines.ends.push((number, lines.text.len()));
        });
        // After the line's lock is released: a writer that marked itself idle before taking
        // this thread's lines either took the line or is seen idle here (the lock orders both).
        if self.writer_idle.load(Relaxed) && self.writer_idle.swap(false, Relaxed) {
            self.wake.notify_one();
        }
    }

    /// The writer is about to take lines and will sleep if there are none: the next line
    /// logged wakes it ([`LogQueue::line_logged`]).
    pub fn writer_may_idle(&self) {
        self.writer_idle.store(true, SeqCst);
    }

    /// The writer took lines: it is not idle.
    pub fn writer_busy(&self) {
        self.writer_idle.store(false, Relaxed);
    }

    /// Resolves once a line was logged after [`LogQueue::writer_may_idle`] (at once if one was
    /// already: the wake is kept until awaited).
    pub async fn line_logged(&self) {
        self.wake.notified().await;
    }

    /// Takes every thread's lines: each thread's are swapped for an empty `Lines` from
    /// `spares` (so neither side allocates in the long run) and pushed on `taken`.
    pub fn take(&self, spares: &mut Vec<Lines>, taken: &mut Vec<Lines>) {
        for pending in lock(&self.threads).iter() {
            let mut p = lock(pending);
            if p.lines.ends.is_empty() {
                continue;
            }
            let mut lines = spares.pop().unwrap_or_default();
            lines.clear();
            std::mem::swap(&mut p.lines, &mut lines);
            taken.push(lines);
        }
    }
}

/// Appends the lines of every batch of `taken` to `out` in number order (each batch is in
/// order already); returns how many.
pub fn merge(taken: &[Lines], out: &mut String) -> usize {
    // Each batch's next line.
    let mut next = vec![0; taken.len()];
    while let Some((_, b)) = taken
        .iter()
        .zip(&next)
        .enumerate()
        .filter_map(|(b, (lines, &i))| lines.ends.get(i).map(|&(n, _)| (n, b)))
        .min()
    {
        let (lines, i) = (&taken[b], next[b]);
        let start = i.checked_sub(1).map_or(0, |before| lines.ends[before].1);
        out.push_str(&lines.text[start..lines.ends[i].1]);
        next[b] += 1;
    }
    next.iter().sum()
}

/// The request-path side: cheap to clone, never waits on I/O.
#[derive(Clone)]
pub struct AccessLogger {
    queue: Option<Arc<LogQueue>>,
}

impl std::fmt::Debug for AccessLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLogger")
            .field("enabled", &self.enabled())
            .finish()
    }
}

impl AccessLogger {
    pub(super) fn new(queue: Option<Arc<LogQueue>>) -> Self {
        AccessLogger { queue }
    }

    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    pub fn log(&self, record: &LogRecord) {
        if let Some(q) = &self.queue {
            q.log(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn line(queue: &LogQueue, path: &'static str) {
        let (uri, id) = (
            http::Uri::from_static(path),
            http::HeaderValue::from_static("rid"),
        );
        queue.log(&LogRecord {
            time: SystemTime::UNIX_EPOCH,
            client_ip: None,
            request: Some(crate::proxy::access_log::RequestLine {
                method: &http::Method::GET,
                uri: &uri,
                protocol: "HTTP/1.1",
            }),
            host: "a.test",
            status: 200,
            bytes: 0,
            duration: Duration::ZERO,
            referer: None,
            user_agent: None,
            request_id: &id,
            project: None,
            upstream: None,
            tls: None,
            rules: &[],
            error: None,
        });
    }

    #[test]
    fn lines_of_all_threads_are_taken_once_in_the_order_they_were_logged() {
        let queue = Arc::new(LogQueue::new(LogFormat::parse("{path}").unwrap()));
        line(&queue, "/a");
        let other = queue.clone();
        std::thread::spawn(move || line(&other, "/b"))
            .join()
            .unwrap();
        line(&queue, "/c");
        let (mut spares, mut taken) = (Vec::new(), Vec::new());
        queue.take(&mut spares, &mut taken);
        assert_eq!(taken.len(), 2, "one batch per thread");
        let mut out = String::new();
        assert_eq!(merge(&taken, &mut out), 3);
        assert_eq!(out, "/a\n/b\n/c\n");
        // Taken batches come back as spares; nothing is taken twice.
        spares.append(&mut taken);
        line(&queue, "/d");
        queue.take(&mut spares, &mut taken);
        out.clear();
        assert_eq!(merge(&taken, &mut out), 1);
        assert_eq!(out, "/d\n");
    }
}
