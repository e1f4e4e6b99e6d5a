//! HTTP/2 streams a client resets after Rampart took them (a variant of the rapid-reset
//! attack, CVE-2023-44487). Pingora's HTTP/2 layer closes a connection whose client resets
//! streams before they are accepted, but a client that waits a few milliseconds gets each
//! stream accepted and sent to a backend before resetting it: a backend request per stream,
//! thousands a second on one connection, for answers nobody reads. Each HTTP/2 connection
//! counts, over `WINDOW`, the streams its client reset before their answer; once they pass
//! `ALLOWED` and outnumber the ones it let be answered, the connection's further requests in
//! that window are answered `429` by Rampart without reaching a backend. A browser cancels
//! a stream now and then (a page left, a download stopped), not hundreds more than it reads
//! in half a minute; a client whose calls mostly time out (a backend in trouble) is refused
//! for what is left of the window, not for the rest of its connection's life.

use super::context::RequestCtx;
use super::respond::{send, Answer};
use super::state::Project;
use pingora_error::Result;
use pingora_proxy::Session;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Resets a connection's client may make in a window before they are weighed against its
/// answers.
pub const ALLOWED: u32 = 100;
/// How long counts last: from a connection's first count, then from the first after that.
const WINDOW: Duration = Duration::from_secs(30);

/// Windows are read as milliseconds since the first.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

const REFUSAL: &str =
    "Too many requests reset by this client on this connection: open a new connection.\n";

/// One HTTP/2 connection's counts, kept with its TLS session, or for h2c in [`CLEARTEXT`].
#[derive(Default)]
pub struct StreamResets {
    /// When the counts' window began (`now_ms`); 0 before any count.
    window_began: AtomicU64,
    reset: AtomicU32,
    answered: AtomicU32,
    /// Said in the log once per connection.
    warned: AtomicBool,
}

impl StreamResets {
    /// A fresh count for a connection whose client chose `alpn` (nothing kept for HTTP/1).
    pub fn for_alpn(alpn: Option<&[u8]>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        (alpn == Some(b"h2")).then(|| Arc::new(StreamResets::default()) as Arc<_>)
    }

    /// Calls `f` with the counts of the HTTP/2 connection `session`'s request came on.
    fn with<R>(session: &Session, f: impl FnOnce(&StreamResets) -> R) -> Option<R> {
        let digest = session.as_downstream().digest()?;
        if let Some(tls) = &digest.ssl_digest {
            return tls.extension.get::<StreamResets>().map(f);
        }
        let key = Arc::as_ptr(digest.socket_digest.as_ref()?) as usize;
        CLEARTEXT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .map(f)
    }

    /// Starts a new window when the last one is over; concurrent streams may each start
    /// one, which only loses a few counts.
    fn roll(&self, now: u64) {
        let now = now.max(1);
        let began = self.window_began.load(Relaxed);
        if began == 0 || now - began.min(now) >= WINDOW.as_millis() as u64 {
            self.window_began.store(now, Relaxed);
            self.reset.store(0, Relaxed);
            self.answered.store(0, Relaxed);
        }
    }

    /// Whether the connection's requests are refused now, and whether to say so in the log.
    fn refusing(&self) -> (bool, bool) {
        self.roll(now_ms());
        let reset = self.reset.load(Relaxed);
        if reset > ALLOWED && reset > self.answered.load(Relaxed) {
            return (true, !self.warned.swap(true, Relaxed));
        }
        (false, false)
    }

    /// Counts a request that went on to be proxied: reset by its client before any answer,
    /// or not.
    fn count(&self, reset_by_client: bool) {
        self.roll(now_ms());
        let counter = if reset_by_client {
            &self.reset
        } else {
            &self.answered
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// The counts of h2c connections (HTTP/2 without TLS, so no TLS session to keep them with),
/// by their socket's digest, which every stream of a connection shares and which outlives
/// the entry (a key is not reused while a stream could still look it up).
static CLEARTEXT: LazyLock<Mutex<HashMap<usize, StreamResets>>> = LazyLock::new(Default::default);

/// An h2c connection's entry in [`CLEARTEXT`], for as long as the connection is served.
pub struct CleartextResets(usize);

impl CleartextResets {
    /// Makes the entry of the connection on `stream` (none for a stream without a socket).
    pub fn enter(stream: &pingora_core::protocols::Stream) -> Option<Self> {
        let key = Arc::as_ptr(&stream.get_socket_digest()?) as usize;
        let mut map = CLEARTEXT.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(key, StreamResets::default());
        Some(CleartextResets(key))
    }
}

impl Drop for CleartextResets {
    fn drop(&mut self) {
        let mut map = CLEARTEXT.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&self.0);
    }
}

/// Answers `429` to an HTTP/2 request whose connection's client resets too many (true: the
/// request is answered); otherwise marks it to be counted when it ends.
pub async fn refuse(
    session: &mut Session,
    ctx: &mut RequestCtx,
    project: Option<&Project>,
) -> Result<bool> {
    if session.req_header().version != http::Version::HTTP_2 {
        return Ok(false);
    }
    let Some(refusing) = StreamResets::with(session, StreamResets::refusing) else {
        return Ok(false);
    };
    match refusing {
        (false, _) => {
            ctx.h2_counted = true;
            Ok(false)
        }
        (true, first) => {
            if first {
                super::failure_log::h2_resets(project, session.req_header());
            }
            send(session, Answer::text(429, REFUSAL), &ctx.request_id).await?;
            Ok(true)
        }
    }
}

/// Counts a request marked by [`refuse`] once it ended with `status` (`499`: the client
/// left before any answer, an HTTP/2 client by resetting the stream).
pub fn ended(session: &Session, ctx: &RequestCtx, status: u16) {
    if ctx.h2_counted {
        StreamResets::with(session, |resets| resets.count(status == 499));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_past_the_allowance_and_the_answers_refuse_until_the_window_ends() {
        let c = StreamResets::default();
        for _ in 0..ALLOWED {
            c.count(true);
        }
        assert_eq!(c.refusing(), (false, false), "the allowance itself");
        c.count(true);
        assert_eq!(c.refusing(), (true, true), "past it, said once");
        assert_eq!(c.refusing(), (true, false));
        // A window later the counts start again.
        c.roll(c.window_began.load(Relaxed) + WINDOW.as_millis() as u64);
        assert!(!c.refusing().0);
    }

    #[test]
    fn a_client_answered_as_often_as_it_resets_is_not_refused() {
        let c = StreamResets::default();
        for _ in 0..=2 * ALLOWED {
            c.count(false);
            c.count(true);
        }
        assert_eq!(c.refusing(), (false, false));
        c.count(true);
        assert!(c.refusing().0);
    }
}
