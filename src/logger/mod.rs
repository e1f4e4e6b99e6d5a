//! The process's error log: env_logger (filter from `RUST_LOG`), with millisecond times, and
//! three things an edge proxy needs that it lacks:
//! - Pingora logs at ERROR, once per event, what clients cause every minute on the internet
//!   (failed TLS handshakes, connections closed mid-request, pages not read to the end):
//!   those lines are logged at INFO and throttled (`log_throttle`), like Rampart's own.
//! - An upgrade's wait for the old process's sockets is logged at ERROR each second although
//!   it is expected: INFO.
//! - Accept failures (e.g. out of file descriptors) repeat as fast as the loop spins:
//!   throttled, kept at ERROR.
//! - Pingora writes request targets into some lines; an admin token given in a URL
//!   (`/dashboard?token=…`) is replaced by `token=<redacted>` in every line.
//! - No line is longer than [`MAX_MESSAGE`] (with the note of how much was cut).
//! - A daemon's `server.error_log` is followed across rotations (`rotation`).

mod rotation;
pub use rotation::follow_error_log;

use crate::log_throttle::Throttle;
use log::{Level, Log, Metadata, Record};

/// The longest message written, as nginx's 2 KiB for its error log: a longer one (Pingora's
/// errors can carry a whole buffer read, or a 60 KB request target) is cut, before journald's
/// own limit splits it or a log shipper drops it.
const MAX_MESSAGE: usize = 2048;

/// Pingora's lines about what clients do, matched by target and start of the message.
struct Noisy {
    target: &'static str,
    starts_with: &'static str,
    /// Required in the message too (e.g. "Downstream": errors on the client's side).
    contains: &'static str,
    level: Level,
    throttle: Throttle,
}

const fn noisy(target: &'static str, starts_with: &'static str, contains: &'static str) -> Noisy {
    Noisy {
        target,
        starts_with,
        contains,
        level: Level::Info,
        throttle: Throttle::new(),
    }
}

pub struct ProcessLogger {
    inner: env_logger::Logger,
    noisy: [Noisy; 6],
}

impl ProcessLogger {
    fn new(inner: env_logger::Logger) -> ProcessLogger {
        const LISTENING: &str = "pingora_core::services::listening";
        const APP: &str = "pingora_core::apps::http_app";
        let mut accept = noisy(LISTENING, "Accept() failed", "");
        accept.level = Level::Error;
        ProcessLogger {
            inner,
            noisy: [
                noisy(LISTENING, "Downstream handshake", ""),
                noisy("pingora_core::apps", "H2 handshake error", ""),
                // The admin service: a client that left before reading its answer.
                noisy(APP, "HTTP server fails to", ""),
                noisy("pingora_proxy", "Fail to proxy", "Downstream"),
                // Every upgrade's first look for the old process's sockets misses (the old
                // process gets SIGQUIT after `run -u` returns); `Giving up` stays an error.
                noisy(
                    "pingora_core::server::transfer_fd",
                    "No incoming socket transfer",
                    "",
                ),
                accept,
            ],
        }
    }

    fn classify(&self, target: &str, text: &str) -> Option<&Noisy> {
        self.noisy.iter().find(|n| {
            n.target == target && text.starts_with(n.starts_with) && text.contains(n.contains)
        })
    }
}

/// Installs the logger: `RUST_LOG` when set, else `default_filter`.
pub fn init(default_filter: &str) {
    let inner =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter))
            .format_timestamp_millis()
            .build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(ProcessLogger::new(inner))).is_ok() {
        log::set_max_level(max);
    }
}

impl Log for ProcessLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.inner.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        let (level, held) = match self.classify(record.target(), &text) {
            Some(n) => {
                let demoted = Metadata::builder()
                    .level(n.level)
                    .target(record.target())
                    .build();
                if !self.inner.enabled(&demoted) {
                    return;
                }
                match n.throttle.admit() {
                    Some(held) => (n.level, Some(held)),
                    None => return,
                }
            }
            None => (record.level(), None),
        };
        let text = redact_tokens(&text);
        // In the new file, before the line that found the old one gone.
        if let Some((level, note)) = rotation::follow() {
            self.inner.log(
                &Record::builder()
                    .level(level)
                    .target(module_path!())
                    .args(format_args!("{note}"))
                    .build(),
            );
        }
        // `Held(0)` writes nothing.
        let held = held.unwrap_or(crate::log_throttle::Held(0));
        self.inner.log(
            &Record::builder()
                .level(level)
                .target(record.target())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .args(format_args!("{}{held}", Capped(&text, MAX_MESSAGE)))
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush()
    }
}

/// `text` (`.0`), or its first `.1` bytes (cut on a character) and a note of the rest.
pub struct Capped<'a>(pub &'a str, pub usize);

impl std::fmt::Display for Capped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Capped(text, max) = *self;
        if text.len() <= max {
            return f.write_str(text);
        }
        // The last character boundary at or before `max` (`floor_char_boundary` is newer
        // than the crate's minimum Rust).
        let end = (0..=max)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        write!(f, "{}... [{} more bytes]", &text[..end], text.len() - end)
    }
}

/// `…?token=s3cr3t&x…` → `…?token=<redacted>&x…`.
pub fn redact_tokens(text: &str) -> std::borrow::Cow<'_, str> {
    const KEY: &str = "token=";
    if !text.contains(KEY) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        out.push_str(&rest[..at + KEY.len()]);
        rest = &rest[at + KEY.len()..];
        let end = rest
            .find(|c: char| c == '&' || c == '#' || c == ',' || c == '"' || c.is_whitespace())
            .unwrap_or(rest.len());
        if end > 0 {
            out.push_str("<redacted>");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_urls_are_redacted() {
        assert_eq!(
            redact_tokens("GET /dashboard?token=s3cr3t, Host: a"),
            "GET /dashboard?token=<redacted>, Host: a"
        );
        assert_eq!(
            redact_tokens("x?a=1&token=a+b/c==&b=2 token= end token=z"),
            "x?a=1&token=<redacted>&b=2 token= end token=<redacted>"
        );
        assert_eq!(redact_tokens("no secret here"), "no secret here");
    }

    #[test]
    fn pingora_client_lines_are_recognised() {
        let logger = ProcessLogger::new(env_logger::Builder::new().build());
        let level = |target, text| logger.classify(target, text).map(|n| n.level);
        assert_eq!(
            level(
                "pingora_core::services::listening",
                "Downstream handshake error from 1.2.3.4:5: TLSHandshakeFailure"
            ),
            Some(Level::Info)
        );
        assert_eq!(
            level(
                "pingora_proxy",
                "Fail to proxy: Downstream ConnectionClosed context: while reading"
            ),
            Some(Level::Info)
        );
        // The proxy's own failures are not the client's.
        assert_eq!(
            level("pingora_proxy", "Fail to proxy: Internal HTTPStatus(500)"),
            None
        );
        assert_eq!(
            level(
                "pingora_core::services::listening",
                "Accept() failed Too many open files"
            ),
            Some(Level::Error)
        );
    }
}
