//! Request heads larger than the listener's `max_header_size` (nginx:
//! `large_client_header_buffers`): answered `431`, or `414` when the request line alone is too
//! long, then closed once the client has stopped sending.

use super::answers::{HEAD_TOO_LARGE, URI_TOO_LONG};
use super::{HeadDeadline, State};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;

/// How long a connection refused for its head's size reads on before it closes.
const LINGER: Duration = Duration::from_secs(1);

impl HeadDeadline {
    /// The head passed `max_header_size`: `431` (`414` when the request line alone is too
    /// long) if the socket takes it now, then an error, as nginx does.
    #[cold]
    pub(super) fn too_large(
        &mut self,
        cx: &mut Context<'_>,
        line_ended: bool,
    ) -> Poll<std::io::Result<()>> {
        let answer = match line_ended {
            true => HEAD_TOO_LARGE,
            false => URI_TOO_LONG,
        };
        // A head that arrived in this one read has no timer of its own yet.
        let waited = match self.state {
            State::Head { .. } => self.head_waited().unwrap_or_default(),
            _ => Duration::ZERO,
        };
        // A limit answered, not a failure: no `error`, as for a 413.
        let code = self.send_own(cx, answer, waited, None);
        let limit = &self.limit;
        crate::throttled!(
            warn,
            limit.too_large_log,
            "listener {}: a request head was larger than max_header_size ({} bytes); answered {code} and closed",
            limit.listener,
            limit.max_size
        );
        self.state = State::Closing;
        self.set_timer(Instant::now() + LINGER);
        self.linger(cx)
    }

    /// Reads and drops what the client still sends (the rest of its head) until it stops or
    /// [`LINGER`] passes, then fails the read so that Pingora closes the connection. Closed
    /// with unread bytes, the socket would reset, and the client could lose the answer (as
    /// nginx's `lingering_close` avoids).
    #[cold]
    pub(super) fn linger(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let closed = || {
            Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the request head is larger than the listener's max_header_size",
            )))
        };
        // Set by `too_large`.
        let Some(timer) = self.timer.as_mut() else {
            return closed();
        };
        let mut scratch = [0u8; 8192];
        let mut waiting = false;
        // Bounded per poll: a client sending fast must not hold the thread.
        for _ in 0..16 {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
                Poll::Pending => {
                    waiting = true;
                    break;
                }
                // End of file, or an error: the client is done.
                Poll::Ready(_) => return closed(),
            }
        }
        if timer.as_mut().poll(cx).is_ready() {
            return closed();
        }
        if !waiting {
            // More may be there: read on once the thread's other tasks have run.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
