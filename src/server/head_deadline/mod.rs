//! A deadline for a whole HTTP/1 request head, as nginx's `client_header_timeout`: Pingora
//! times each read of a head alone (60 s), so a client sending a byte every few seconds
//! (slowloris) keeps its connection, and its place under `max_connections`, for ever.
//!
//! The client's stream is wrapped: reads look for the blank line that ends a head, writes
//! show that the request was answered (a new head may begin once the proxy is done with it:
//! until then the client may still be sending the body a backend answered early). The timer
//! is armed only when a read leaves a head incomplete; a head that arrives in one read (nearly
//! all) costs a scan of its bytes. When the deadline passes, the client is told `408` and the
//! read fails. The same scan counts a head's bytes against the listener's `max_header_size`
//! (`oversized`): Pingora alone takes HTTP/1 heads of up to 1 MiB.
//!
//! The same timer closes a connection idle between requests for the listener's
//! `keepalive_timeout`, in place of Pingora's keep-alive timeout, which creates and drops a
//! timer for every request (~2 100 instructions, a quarter of what Rampart adds to a bare
//! Pingora proxy). Here the timer moves only when it fires: while requests keep coming it
//! fires once per `keepalive_timeout` and is set again for the connection's latest idle time.
//! A new connection that sends nothing is closed after `header_timeout`, as nginx does.
//!
//! The writes also show the answers Pingora gives on its own, before any of Rampart's phases:
//! a head it cannot parse gets `400` (a `CONNECT`, `405`) and the connection closes, with no
//! hook called. A status line written while a head is in and the proxy was not handed it is
//! such an answer; the client gets it in Rampart's words (`answers`). It, the
//! `408` above and the `431`/`414` of an oversized head are counted with the requests that
//! reached no project and written to the access log (`head_answers`), so malformed, stalled
//! and oversized requests show where nginx shows them.

use crate::proxy::access_log::Failure;
use pingora_core::protocols::Stream;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

mod answers;
mod oversized;
mod passthrough;

use crate::server::head_answers;
use answers::{OwnAnswer, TIMED_OUT};

/// `HeadDeadline::idle_since` of a connection that has not begun a request yet.
const NEW: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests: no head begun (`keepalive_timeout` applies, or `header_timeout` before
    /// the first request: `poll_keepalive`).
    Idle,
    /// Part of a head arrived: `len` bytes, ending with `tail` (for an end split across
    /// reads); `line_ended`: the request line is among them.
    Head {
        tail: [u8; 3],
        len: usize,
        line_ended: bool,
    },
    /// The head is in; its body, if any, may take its time.
    Body,
    /// A response was written while the proxy has the request in hand: what the client
    /// sends until the proxy is done with it is the rest of its body (a backend may answer an
    /// upload before reading it), not a new head, however much or slow it comes.
    Answered,
    /// After a `101 Switching Protocols`: no longer HTTP.
    Tunnel,
    /// A head too large was answered: what the client still sends is read and dropped, for
    /// at most a second, before the connection closes (`oversized`).
    Closing,
}

/// What a listener's heads are held to, and where a late one is told.
#[derive(Debug)]
pub struct HeadLimit {
    pub listener: String,
    pub limit: Duration,
    /// The listener's `max_header_size`: the largest head, in bytes.
    pub max_size: usize,
    /// The listener's `keepalive_timeout`: how long a connection may idle between requests.
    pub keepalive: Duration,
    pub late: prometheus::IntCounter,
    pub log: crate::log_throttle::Throttle,
    /// Where Pingora's own answers are counted: with the requests that reached no project.
    pub unrouted: Arc<crate::metrics::ProjectMetrics>,
    /// Where they are logged, as the proxy logs the requests it answers.
    pub access_log: crate::proxy::access_log::AccessLogger,
    pub own_answer_log: crate::log_throttle::Throttle,
    /// `CONNECT`s are warned of apart: a scanner's flood of one kind hides no other.
    pub connect_log: crate::log_throttle::Throttle,
    pub too_large_log: crate::log_throttle::Throttle,
}

/// Where a read left the request head it brought bytes of.
enum Head {
    /// Ended (or no head was being read: a body, a tunnel).
    Complete,
    /// Begun and not ended yet.
    Incomplete,
    /// Past `max_header_size`.
    TooLarge { line_ended: bool },
}

#[derive(Debug)]
pub struct HeadDeadline {
    inner: Stream,
    limit: Arc<HeadLimit>,
    state: State,
    /// Kept across requests and reset: creating a timer per slow head would cost more.
    timer: Option<Pin<Box<Sleep>>>,
    /// The keep-alive check polled `timer` since it was last set: it will wake this
    /// connection's task (the only one reading it) when it fires, with no need to poll again.
    timer_polled: bool,
    /// When the connection was accepted: the origin of `idle_since`.
    opened: Instant,
    /// Milliseconds after `opened` at which the last request was done, plus one; 0 while a
    /// request is in hand (the proxy's phases took it); [`NEW`] until the first request.
    /// Atomic because the proxy's phases reach the stream only by shared reference.
    idle_since: AtomicU64,
    /// How many bytes of [`HELD_BODY_END`] the next reads give before the client's: set by
    /// [`HeadDeadline::end_held_body`] (see `proxy::tunnel`).
    held_end_left: AtomicU8,
}

/// The end of a chunked body, which ends a request body held open (`proxy::tunnel`).
const HELD_BODY_END: &[u8] = b"0\r\n\r\n";

impl HeadDeadline {
    pub fn wrap(inner: Stream, limit: Arc<HeadLimit>) -> Stream {
        Box::new(HeadDeadline {
            inner,
            limit,
            state: State::Idle,
            timer: None,
            timer_polled: false,
            opened: Instant::now(),
            idle_since: AtomicU64::new(NEW),
            held_end_left: AtomicU8::new(0),
        })
    }

    /// The wrapper under a client's stream, if it has one (HTTP/2 connections do not).
    pub fn of(stream: &Stream) -> Option<&HeadDeadline> {
        // The boxed stream itself, not the box (which would be `Any` as well).
        (**stream).as_any().downcast_ref()
    }

    /// A request is in hand: the keep-alive timeout does not run, however long it takes, and
    /// its answer is the proxy's, not one of Pingora's own (`answered`). Told by the proxy, as
    /// a pipelined request's head never passes through here on its own.
    pub fn request_began(&self) {
        self.idle_since.store(0, Relaxed);
    }

    /// The request was answered in full at `at`: the connection idles until the next one.
    pub fn request_done(&self, at: std::time::Instant) {
        let after = Instant::from_std(at).saturating_duration_since(self.opened);
        self.idle_since.store(after.as_millis() as u64 + 1, Relaxed);
    }

    /// Ends the request body `proxy::tunnel` held open: the next reads give the end of a
    /// chunked body (`0\r\n\r\n`) before anything the client sends.
    pub fn end_held_body(&self) {
        self.held_end_left.store(HELD_BODY_END.len() as u8, Relaxed);
    }

    /// Gives the `left` last bytes of the held body's end, as many as `buf` takes.
    fn give_held_end(&mut self, left: u8, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let rest = &HELD_BODY_END[HELD_BODY_END.len() - left as usize..];
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        *self.held_end_left.get_mut() = left - n as u8;
        Poll::Ready(Ok(()))
    }

    /// Between requests, with nothing to read: end of file for Pingora (which then closes
    /// the connection quietly, as after its own keep-alive timeout) once the connection has
    /// idled for `keepalive_timeout`, or, before its first request, for `header_timeout`.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let deadline = match self.idle_since.load(Relaxed) {
            0 => return Poll::Pending,
            // Pingora would wait 60 s whatever the listener says; nginx waits for
            // `client_header_timeout`, and closes as quietly.
            NEW => self.opened + self.limit.limit,
            since => self.opened + Duration::from_millis(since - 1) + self.limit.keepalive,
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        // Set for an earlier idle time or a head (or a later head deadline): moved now.
        if timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
            self.timer_polled = false;
        }
        if self.timer_polled && !timer.is_elapsed() {
            return Poll::Pending;
        }
        while timer.as_mut().poll(cx).is_ready() {
            if timer.deadline() >= deadline {
                return Poll::Ready(Ok(()));
            }
            timer.as_mut().reset(deadline);
        }
        self.timer_polled = true;
        Poll::Pending
    }

    /// Follows the bytes a read brought: where the head they belong to stands.
    fn saw(&mut self, new: &[u8]) -> Head {
        let (tail, before, line_ended) = match self.state {
            State::Idle => ([0; 3], 0, false),
            State::Head {
                tail,
                len,
                line_ended,
            } => (tail, len, line_ended),
            State::Body | State::Answered | State::Tunnel | State::Closing => {
                return Head::Complete
            }
        };
        if new.is_empty() {
            return Head::Complete;
        }
        let max = self.limit.max_size;
        // A head that came in one read (nearly all) ends it: no search.
        if new.ends_with(b"\r\n\r\n") && before + new.len() <= max {
            self.state = State::Body;
            return Head::Complete;
        }
        let mut joined = [0u8; 6];
        let take = new.len().min(3);
        joined[..3].copy_from_slice(&tail);
        joined[3..3 + take].copy_from_slice(&new[..take]);
        // Built once: `memmem::find` would build its searcher on every read.
        static END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
        // How many of `new`'s bytes belong to the head, when it ends in them.
        let end = match joined[..3 + take].windows(4).position(|w| w == b"\r\n\r\n") {
            Some(at) => Some(at + 1),
            None => END.find(new).map(|at| at + 4),
        };
        let len = before + end.unwrap_or(new.len());
        if len > max {
            // Whether the request line ended within the limit: 431 if so, 414 if not.
            let within = &new[..(max - before).min(new.len())];
            return Head::TooLarge {
                line_ended: line_ended || memchr::memchr(b'\n', within).is_some(),
            };
        }
        if end.is_some() {
            self.state = State::Body;
            return Head::Complete;
        }
        // The last three bytes of what came so far: of `new`, or of the old tail and `new`.
        let seen = if new.len() >= 3 {
            new
        } else {
            &joined[..3 + take]
        };
        let mut tail = [0u8; 3];
        tail.copy_from_slice(&seen[seen.len() - 3..]);
        self.state = State::Head {
            tail,
            len,
            line_ended: line_ended || memchr::memchr(b'\n', new).is_some(),
        };
        if before == 0 {
            self.set_timer(Instant::now() + self.limit.limit);
        }
        Head::Incomplete
    }

    /// Sets the connection's one timer to `deadline` (made the first time it is needed).
    fn set_timer(&mut self, deadline: Instant) {
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        self.timer_polled = false;
    }

    /// How long the head being read has been coming: its first read set the timer to
    /// `header_timeout` from then.
    fn head_waited(&self) -> Option<Duration> {
        let timer = self.timer.as_ref()?;
        Some((timer.deadline() - self.limit.limit).elapsed())
    }

    /// The head's deadline passed: a `408` if the socket takes it now, then an error.
    fn time_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let waited = self.head_waited().unwrap_or(self.limit.limit);
        self.send_own(cx, TIMED_OUT, waited, Some(Failure::CLIENT_TIMED_OUT));
        self.state = State::Body;
        let limit = &self.limit;
        limit.late.inc();
        crate::throttled!(
            warn,
            limit.log,
            "listener {}: a client took longer than header_timeout ({:?}) to send a request head; answered 408 and closed",
            limit.listener,
            limit.limit
        );
        Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request head did not arrive within the listener's header_timeout",
        )))
    }

    /// Writes one of the wrapper's own answers (the `408` here, `oversized`'s `431` and `414`)
    /// if the socket takes it now, and counts and logs it with the status and body it has;
    /// returns the status.
    #[cold]
    fn send_own(
        &mut self,
        cx: &mut Context<'_>,
        answer: &[u8],
        waited: Duration,
        failure: Option<Failure>,
    ) -> u16 {
        let _ = Pin::new(&mut self.inner).poll_write(cx, answer);
        let _ = Pin::new(&mut self.inner).poll_flush(cx);
        let code = status_of(answer).unwrap_or_default();
        let body =
            memchr::memmem::find(answer, b"\r\n\r\n").map_or(0, |end| answer.len() - end - 4);
        let limit = &self.limit;
        head_answers::account(limit, &self.inner, code, waited, body, failure);
        code
    }

    /// What a response written to the client says about the next bytes read.
    fn answered(&mut self, first: &[u8]) {
        if matches!(self.state, State::Tunnel | State::Closing) {
            return;
        }
        match status_of(first) {
            Some(101) => self.state = State::Tunnel,
            // `100 Continue`, `103 Early Hints`: the request's body is still to come.
            Some(100..=199) => {}
            code => {
                // One of Pingora's own answers that `answers` does not word (none in
                // Pingora 0.9.1): passed on as it is, and still counted and logged.
                if let Some(code) = code.filter(|_| self.pingoras_own()) {
                    let failure = Some(Failure::CLIENT_UNPARSABLE);
                    head_answers::account(
                        &self.limit,
                        &self.inner,
                        code,
                        Duration::ZERO,
                        0,
                        failure,
                    );
                    self.log_own_answer(code, "Pingora could not take");
                }
                // A response's later writes (its body) come in `Answered`: never taken for
                // one.
                self.state = State::Answered;
            }
        }
    }

    /// Whether a response written now is one of Pingora's own answers: a head is in and no
    /// phase of the proxy was handed it.
    fn pingoras_own(&self) -> bool {
        matches!(self.state, State::Head { .. } | State::Body) && self.idle_since.load(Relaxed) != 0
    }

    /// Pingora answers a head the proxy never saw (`400` to one it cannot parse, `405` to a
    /// `CONNECT`) with `Server: Pingora` and no body. The client is told the same status in
    /// Rampart's words instead (`answers`), and it is counted and logged, as the proxy's
    /// `logging` phase does for the others. Returns Pingora's bytes as written.
    #[cold]
    fn replace_own_answer(
        &mut self,
        cx: &mut Context<'_>,
        own: OwnAnswer,
        pingoras: usize,
    ) -> usize {
        let OwnAnswer {
            answer,
            failure,
            why,
        } = own;
        // The head came in at once, nearly always: no clock was read for it.
        let code = self.send_own(cx, answer, Duration::ZERO, failure);
        self.state = State::Idle;
        self.log_own_answer(code, why);
        pingoras
    }

    fn log_own_answer(&self, code: u16, why: &str) {
        let limit = &self.limit;
        let client = self.inner.get_socket_digest();
        let client = client.as_ref().and_then(|d| d.peer_addr());
        let throttle = match code {
            405 => &limit.connect_log,
            _ => &limit.own_answer_log,
        };
        crate::throttled!(
            warn,
            throttle,
            "listener {}: answered {code} to a request head from {} that {why} (before any rule; counted in rampart_requests_total{{project=\"{}\"}})",
            limit.listener,
            client.map_or_else(|| "an unknown address".to_string(), |a| a.to_string()),
            crate::metrics::NO_PROJECT,
        );
    }
}

/// The status of a response's first line (`HTTP/1.1 400 ...`). Runs for every write to a
/// client (a body's too): the digits are read as bytes, not through `str::parse`.
fn status_of(first: &[u8]) -> Option<u16> {
    match first {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'0' | b'1', b' ', d @ ..] => match d {
            [a @ b'1'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9', ..] => {
                Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
            }
            _ => None,
        },
        _ => None,
    }
}

impl AsyncRead for HeadDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match this.state {
            State::Closing => return this.linger(cx),
            // The request was answered and done with: a new head may come.
            State::Answered if this.idle_since.load(Relaxed) != 0 => this.state = State::Idle,
            _ => {}
        }
        let left = this.held_end_left.load(Relaxed);
        if left > 0 {
            return this.give_held_end(left, buf);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => match this.saw(&buf.filled()[before..]) {
                Head::Complete => Poll::Ready(Ok(())),
                // The clock is read only for a head still incomplete.
                Head::Incomplete => {
                    let late = this
                        .timer
                        .as_ref()
                        .is_some_and(|t| t.deadline() <= Instant::now());
                    if late {
                        return this.time_out(cx);
                    }
                    Poll::Ready(Ok(()))
                }
                Head::TooLarge { line_ended } => this.too_large(cx, line_ended),
            },
            Poll::Pending => match this.state {
                State::Head { .. } => match this.timer.as_mut().map(|t| t.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => this.time_out(cx),
                    _ => Poll::Pending,
                },
                State::Idle => this.poll_keepalive(cx),
                State::Body | State::Answered | State::Tunnel | State::Closing => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for HeadDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(own) = self.own_answer(buf) {
            return Poll::Ready(Ok(self.replace_own_answer(cx, own, buf.len())));
        }
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        if n > 0 {
            self.answered(buf);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
        if let Some(own) = self.own_answer(first) {
            let all = bufs.iter().map(|b| b.len()).sum();
            return Poll::Ready(Ok(self.replace_own_answer(cx, own, all)));
        }
        let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        if n > 0 {
            self.answered(first);
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
