//! Error-log lines that a failure would otherwise repeat for every request (a dead backend,
//! a failing rule): the first is written at once, then at most one per period, saying how
//! many like it were left out. At 10 000 requests/s against a dead pool, an unthrottled
//! proxy writes tens of thousands of lines a second: journald drops them at random, and the
//! serving threads wait on a blocking write to stderr.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// At most one line per throttle in this period.
pub const PERIOD: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct Throttle {
    /// Milliseconds since the process's first throttled line before which lines are held.
    next_at_ms: AtomicU64,
    /// Lines held since the last one written.
    held: AtomicU64,
}

fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Throttle {
    pub const fn new() -> Throttle {
        Throttle {
            next_at_ms: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// `Some(Held(n))` when the line is to be written now (`n` like it were left out since the
    /// last one); `None` when it is held.
    pub fn admit(&self) -> Option<Held> {
        self.admit_at(clock_ms())
    }

    fn admit_at(&self, now_ms: u64) -> Option<Held> {
        let next = self.next_at_ms.load(Relaxed);
        let due = now_ms >= next
            && self
                .next_at_ms
                .compare_exchange(next, now_ms + PERIOD.as_millis() as u64, Relaxed, Relaxed)
                .is_ok();
        if due {
            Some(Held(self.held.swap(0, Relaxed)))
        } else {
            self.held.fetch_add(1, Relaxed);
            None
        }
    }
}

/// One throttle per kind of failure (connecting, a timeout, a closed connection, anything
/// else): a backend that starts refusing connections while its timeouts are being held back
/// gets its line at once, and each line's count says how many of its own kind were left out.
#[derive(Debug, Default)]
pub struct ByFailureKind([Throttle; 4]);

impl ByFailureKind {
    pub const fn new() -> ByFailureKind {
        ByFailureKind([
            Throttle::new(),
            Throttle::new(),
            Throttle::new(),
            Throttle::new(),
        ])
    }

    /// The throttle for failures of type `etype`.
    pub fn of(&self, etype: &pingora_error::ErrorType) -> &Throttle {
        use pingora_error::ErrorType::*;
        let kind = match etype {
            ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError | BindError
            | SocketError | ConnectProxyFailure | TLSHandshakeFailure | TLSHandshakeTimedout
            | TLSWantX509Lookup | InvalidCert | HandshakeError => 0,
            ReadTimedout | WriteTimedout => 1,
            ConnectionClosed => 2,
            _ => 3,
        };
        &self.0[kind]
    }
}

/// The end of a throttled line: how many like it were left out (nothing when none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held(pub u64);

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            1 => write!(f, " [1 more like this since the previous one]"),
            n => write!(f, " [{n} more like this since the previous one]"),
        }
    }
}

/// `throttled!(warn, throttle, "format", args…)`: the `log` macro of that level, through the
/// throttle.
#[macro_export]
macro_rules! throttled {
    ($level:ident, $throttle:expr, $($arg:tt)+) => {
        if let Some(held) = $throttle.admit() {
            log::$level!("{}{}", format_args!($($arg)+), held);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_own_throttle() {
        use pingora_error::ErrorType::*;
        let by_kind = ByFailureKind::new();
        assert_eq!(by_kind.of(&ConnectRefused).admit_at(1_000), Some(Held(0)));
        assert_eq!(
            by_kind.of(&ConnectTimedout).admit_at(1_001),
            None,
            "also connecting"
        );
        assert_eq!(by_kind.of(&ReadTimedout).admit_at(1_002), Some(Held(0)));
        assert_eq!(
            by_kind.of(&WriteTimedout).admit_at(1_003),
            None,
            "also a timeout"
        );
        assert_eq!(by_kind.of(&ConnectionClosed).admit_at(1_004), Some(Held(0)));
        assert_eq!(by_kind.of(&HTTPStatus(502)).admit_at(1_005), Some(Held(0)));
        assert_eq!(by_kind.of(&H1Error).admit_at(1_006), None, "anything else");
    }

    #[test]
    fn the_first_line_passes_then_one_per_period_with_the_count() {
        let t = Throttle::new();
        let period = PERIOD.as_millis() as u64;
        assert_eq!(t.admit_at(1_000), Some(Held(0)));
        assert_eq!(t.admit_at(1_001), None);
        assert_eq!(t.admit_at(1_000 + period - 1), None);
        assert_eq!(t.admit_at(1_000 + period), Some(Held(2)));
        assert_eq!(t.admit_at(1_000 + 3 * period), Some(Held(0)));
        assert_eq!(Held(0).to_string(), "");
        assert_eq!(
            Held(7).to_string(),
            " [7 more like this since the previous one]"
        );
    }

    #[test]
    fn one_line_per_period_across_threads() {
        let t = std::sync::Arc::new(Throttle::new());
        let written: u64 = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || (0..1000).filter(|_| t.admit_at(50).is_some()).count())
            })
            .map(|h| h.join().unwrap() as u64)
            .sum();
        assert_eq!(written, 1);
        assert_eq!(t.admit_at(50 + PERIOD.as_millis() as u64), Some(Held(3999)));
    }
}
