//! A connection's outbox: the `/ws` frames our session task produces
//! (welcome, subscribed, replays, events, pongs, errors), encoded straight
//! into one buffer that the connection's HTTP dispatcher takes whole on its
//! next poll. One hand-off per batch instead of one channel message per
//! frame, so a busy viewer is not capped at actix-ws's 32 frames per
//! scheduler round (bench/README.md, "What limits it"). Pings, pongs to the
//! client's pings and close frames still go through actix-ws's `Session`;
//! `OutboxBody` merges both into the response body.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use actix_http::ws::{OpCode, Parser};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

/// The outbox holds more frames than its connection may have pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

#[derive(Debug, Default)]
struct Inner {
    /// Encoded frames not yet taken by the dispatcher.
    buf: BytesMut,
    /// Frames in `buf`; never above the outbox's `max_frames`.
    frames: usize,
    /// The dispatcher waiting for bytes.
    reader: Option<Waker>,
}

/// Frames waiting for one connection's writer.
#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    /// Most frames pending before the viewer counts as too slow.
    max_frames: usize,
}

impl Outbox {
    /// An empty outbox holding at most `max_frames` pending frames.
    pub fn new(max_frames: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            max_frames: max_frames.max(1),
        })
    }

    /// Appends one text frame.
    ///
    /// # Errors
    /// [`Overflow`] when `max_frames` are already pending; nothing is appended.
    pub fn push_text(&self, payload: &[u8]) -> Result<(), Overflow> {
        let waker = {
            let mut inner = self.inner.lock();
            if inner.frames >= self.max_frames {
                return Err(Overflow);
            }
            Parser::write_message(&mut inner.buf, payload, OpCode::Text, true, false);
            inner.frames += 1;
            inner.reader.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Drops every pending frame (a viewer closed for overflow resumes with `since`).
    pub fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.buf.clear();
        inner.frames = 0;
    }

    fn take(&self, cx: &Context<'_>) -> Option<Bytes> {
        let mut inner = self.inner.lock();
        if inner.buf.is_empty() {
            inner.reader = Some(cx.waker().clone());
            return None;
        }
        inner.frames = 0;
        Some(inner.buf.split().freeze())
    }
}

/// The `/ws` response body: actix-ws's control stream plus the outbox.
pub struct OutboxBody {
    control: BoxBody,
    outbox: Arc<Outbox>,
}

impl OutboxBody {
    /// Merges actix-ws's body (`control`) with `outbox`.
    pub fn new(control: BoxBody, outbox: Arc<Outbox>) -> Self {
        Self { control, outbox }
    }
}

impl MessageBody for OutboxBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        // Pending frames first, so that a close frame follows what was queued.
        if let Some(bytes) = this.outbox.take(cx) {
            return Poll::Ready(Some(Ok(bytes)));
        }
        // actix-ws's stream ends after its close frame: then the body ends.
        MessageBody::poll_next(Pin::new(&mut this.control), cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_encoded_server_style_and_taken_whole() {
        let outbox = Outbox::new(4);
        outbox.push_text(b"{\"op\":\"pong\"}").unwrap();
        outbox.push_text(&[b' '; 200]).unwrap();
        let waker = futures_util::task::noop_waker();
        let cx = Context::from_waker(&waker);
        let bytes = outbox.take(&cx).unwrap();
        // FIN + text, unmasked 13-byte payload; then a 16-bit length for 200 bytes.
        assert_eq!(&bytes[..2], &[0x81, 13]);
        assert_eq!(&bytes[2..15], b"{\"op\":\"pong\"}");
        assert_eq!(&bytes[15..19], &[0x81, 126, 0, 200]);
        assert_eq!(bytes.len(), 15 + 4 + 200);
        assert!(outbox.take(&cx).is_none());
    }

    #[test]
    fn pending_frames_are_capped_until_taken() {
        let outbox = Outbox::new(2);
        outbox.push_text(b"a").unwrap();
        outbox.push_text(b"b").unwrap();
        assert_eq!(outbox.push_text(b"c"), Err(Overflow));
        let waker = futures_util::task::noop_waker();
        assert!(outbox.take(&Context::from_waker(&waker)).is_some());
        assert_eq!(outbox.push_text(b"c"), Ok(()));
    }
}
