//! A WebSocket connection as the rest of the process sees it: its socket,
//! the frames waiting for it (already encoded) and the channels it is on.
//! The hub appends published messages here from the publisher's task
//! ([`Inbox::offer`]); the first pending frame puts the connection on its
//! worker's `ws::flusher` list, and the flusher writes everything pending
//! in one piece with one system call. A published message's frame is
//! encoded once ([`Envelope::wire`]) and shared: the outbox holds a
//! reference to it, not a copy, and the write gathers the frames with one
//! `writev` (issue 14: the per-viewer copy was most of the bridge's user
//! time flat out). Frames of our own (replies, pings) are encoded into a
//! small buffer of the connection's. A busy viewer gets many frames per
//! write and keeps its queue from one write to the next; a quiet one gives
//! it back after each write. When the socket is full, the connection's own
//! task (`ws::session`) waits for it and writes the rest.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Weak};

use actix_http::ws::{CloseReason, OpCode, Parser};
use actix_web::rt::net::TcpStream;
use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use prometheus::IntCounter;
use tokio::sync::Notify;

use crate::broker::{ConnId, Inbox, Offer};
use crate::domain::{ChannelName, Envelope, MessageId};

use super::flusher::{Flusher, Pending};

/// A write at least this large leaves its queue to the next batch.
const KEEP_MIN_BYTES: usize = 1024;
/// A queue that held a larger batch is given back after it.
const KEEP_MAX_BYTES: usize = 64 * 1024;
/// Frames gathered into one system call at most (Linux takes 1024).
const MAX_SLICES: usize = 128;

/// The outbox holds as many frames as its connection may have pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// How far a channel of this connection is.
#[derive(Debug)]
enum Feed {
    /// Subscribing: the replay is being read; live messages wait here so
    /// that they follow it.
    Pending(Vec<Envelope>),
    /// Live; messages up to `after` duplicate the replay and are skipped.
    Live { after: Option<MessageId> },
}

/// The channels of one connection: a few at most (`MAX_CHANNELS_PER_CONNECTION`).
/// The first is held inline: most connections watch one channel, and every
/// delivery looks its feed up, so it sits in the connection's own memory
/// (no pointer to chase, no allocation); the others are in a list.
#[derive(Debug, Default)]
struct Feeds {
    first: Option<(ChannelName, Feed)>,
    more: Vec<(ChannelName, Feed)>,
}

impl Feeds {
    fn iter(&self) -> impl Iterator<Item = &(ChannelName, Feed)> {
        self.first.iter().chain(self.more.iter())
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    fn get_mut(&mut self, channel: &ChannelName) -> Option<&mut Feed> {
        self.first
            .iter_mut()
            .chain(self.more.iter_mut())
            .find(|(c, _)| c == channel)
            .map(|(_, feed)| feed)
    }

    fn insert(&mut self, channel: &ChannelName, feed: Feed) {
        if let Some(existing) = self.get_mut(channel) {
            *existing = feed;
        } else if self.first.is_none() {
            self.first = Some((channel.clone(), feed));
        } else {
            self.more.reserve_exact(1);
            self.more.push((channel.clone(), feed));
        }
    }

    fn contains(&self, channel: &ChannelName) -> bool {
        self.iter().any(|(c, _)| c == channel)
    }

    fn remove(&mut self, channel: &ChannelName) -> bool {
        if self.first.as_ref().is_some_and(|(c, _)| c == channel) {
            self.first = self.more.pop();
            return true;
        }
        let before = self.more.len();
        self.more.retain(|(c, _)| c != channel);
        self.more.len() < before
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Encoded frames not yet accepted by the kernel, in order: the batch
    /// being written (its first `batch` entries; the first may be partly
    /// written), then those queued after it. Published frames are shared
    /// with every other viewer of the message.
    queue: VecDeque<Bytes>,
    /// Frames of our own queued after `queue`'s last, not yet cut off
    /// into it.
    own: BytesMut,
    /// Entries at the front of `queue` taken for writing.
    batch: usize,
    /// Data frames queued after the batch being written.
    frames: usize,
    channels: Feeds,
    /// Set once the viewer fell behind; nothing more is queued.
    overflowed: bool,
    /// Set when the connection ended; nothing more is queued.
    closed: bool,
    /// On the flusher's list.
    scheduled: bool,
    /// The socket was full: the connection's task writes when it drains.
    blocked: bool,
    /// A write failed: the connection is dead.
    failed: bool,
    /// The close code its protocol ended it with (0: not ended).
    end_code: u16,
}

impl Inner {
    /// Moves the frames of our own into the queue, behind what is there.
    fn cut_own(&mut self) {
        if !self.own.is_empty() {
            let own = self.own.split().freeze();
            self.queue.push_back(own);
        }
    }

    /// Drops the first `n` bytes of the batch: the kernel took them.
    fn consume(&mut self, mut n: usize) {
        while n > 0 && self.batch > 0 {
            let Some(front) = self.queue.front_mut() else {
                break;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.queue.pop_front();
            self.batch -= 1;
        }
    }
}

/// What a flush came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything pending was written.
    Done,
    /// The socket is full; the rest waits for it to drain.
    Blocked,
    /// The socket failed.
    Failed,
}

/// One viewer connection's shared state.
#[derive(Debug)]
pub struct Conn {
    id: ConnId,
    /// Most data frames pending before the viewer counts as too slow.
    max_frames: usize,
    /// Wakes the connection's task: an overflow, a full socket, a failed write.
    wake: Notify,
    /// Counts the overflow (`slow_consumers`).
    slow: IntCounter,
    inner: Mutex<Inner>,
    /// The socket and the worker's flusher (none in unit tests).
    link: Option<(TcpStream, Arc<Flusher>)>,
    /// This connection, for the flusher's list.
    me: Weak<Conn>,
}

/// What a subscribe found when it went live.
#[derive(Debug, PartialEq, Eq)]
pub enum GoLive {
    /// Replay and waiting messages are queued.
    Queued,
    /// They did not fit: the connection overflowed.
    Overflow,
    /// The channel was left meanwhile.
    Gone,
}

impl Conn {
    /// A connection on `io` with room for `max_frames` pending data frames,
    /// written by `flusher`.
    pub fn new(
        id: ConnId,
        max_frames: usize,
        slow: IntCounter,
        link: Option<(TcpStream, Arc<Flusher>)>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            id,
            max_frames: max_frames.max(1),
            wake: Notify::new(),
            slow,
            inner: Mutex::new(Inner::default()),
            link,
            me: me.clone(),
        })
    }

    /// The socket.
    pub fn io(&self) -> Option<&TcpStream> {
        self.link.as_ref().map(|(io, _)| io)
    }

    /// Whether the socket is full and the connection's task must write.
    pub fn blocked(&self) -> bool {
        self.inner.lock().blocked
    }

    /// Whether a write failed.
    pub fn failed(&self) -> bool {
        self.inner.lock().failed
    }

    /// Writes what is pending to the socket until done or the socket is full.
    pub fn flush(&self) -> Flushed {
        let Some((io, _)) = &self.link else {
            return Flushed::Failed;
        };
        let mut inner = self.inner.lock();
        self.write_with(&mut inner, |slices| match slices {
            // One frame (a paced viewer's usual write): a plain `write`,
            // which costs the kernel less than a `writev` of one slice.
            [one] => io.try_write(one),
            _ => io.try_write_vectored(slices),
        })
    }

    fn write_with(
        &self,
        inner: &mut Inner,
        mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> Flushed {
        inner.scheduled = false;
        if inner.failed {
            return Flushed::Failed;
        }
        let mut written = 0;
        loop {
            if inner.batch == 0 {
                inner.cut_own();
                if inner.queue.is_empty() {
                    inner.blocked = false;
                    // A busy connection keeps its queue and buffer for the
                    // next batch (no allocation per write); a quiet one, or
                    // one whose batch was large, gives them back.
                    if !(KEEP_MIN_BYTES..=KEEP_MAX_BYTES).contains(&written) {
                        inner.queue = VecDeque::new();
                        inner.own = BytesMut::new();
                    }
                    return Flushed::Done;
                }
                inner.frames = 0;
                inner.batch = inner.queue.len();
            }
            let result = {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let mut count = 0;
                for (slot, frame) in slices.iter_mut().zip(inner.queue.iter().take(inner.batch)) {
                    *slot = IoSlice::new(frame);
                    count += 1;
                }
                write(&slices[..count])
            };
            match result {
                Ok(0) => break,
                Ok(n) => {
                    inner.consume(n);
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !inner.blocked {
                        inner.blocked = true;
                        self.wake.notify_one();
                    }
                    return Flushed::Blocked;
                }
                Err(_) => break,
            }
        }
        inner.failed = true;
        inner.queue = VecDeque::new();
        inner.own = BytesMut::new();
        inner.batch = 0;
        self.wake.notify_one();
        Flushed::Failed
    }

    /// Puts the connection on the flusher's list, once, unless its task is
    /// waiting for the socket anyway.
    fn schedule(&self, inner: &mut Inner) {
        if inner.scheduled || inner.blocked {
            return;
        }
        if let (Some((_, flusher)), Some(me)) = (&self.link, self.me.upgrade()) {
            let me: Arc<dyn Pending> = me;
            inner.scheduled = true;
            flusher.mark(me);
        }
    }

    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Waits until the viewer overflowed, the socket filled or a write failed.
    pub async fn notified(&self) {
        self.wake.notified().await;
    }

    /// Queues a text frame of our own (welcome, replies, errors).
    ///
    /// # Errors
    /// [`Overflow`] when the viewer is too far behind; nothing is queued.
    pub fn push_text(&self, text: &str) -> Result<(), Overflow> {
        let mut inner = self.inner.lock();
        self.push_frame(&mut inner, text.as_bytes())
    }

    /// Queues a control frame (ping, pong); these are not counted.
    pub fn push_control(&self, op: OpCode, payload: &[u8]) {
        let mut inner = self.inner.lock();
        if inner.closed {
            return;
        }
        Parser::write_message(&mut inner.own, payload, op, true, false);
        self.schedule(&mut inner);
    }

    /// Drops what is pending and queues the close frame as the last one:
    /// nothing is queued after it.
    pub fn push_close(&self, reason: CloseReason, drop_pending: bool) {
        let mut inner = self.inner.lock();
        if inner.closed {
            return;
        }
        if drop_pending {
            // The batch being written stays: a frame cut short would break
            // the stream.
            let batch = inner.batch;
            inner.queue.truncate(batch);
            inner.own.clear();
            inner.frames = 0;
        }
        Parser::write_close(&mut inner.own, Some(reason), false);
        inner.closed = true;
    }

    /// Marks the connection ended: later offers answer [`Offer::Closed`].
    pub fn close(&self) {
        self.inner.lock().closed = true;
    }

    /// Ends the connection with close `code` (e.g. 4001 for an overlay
    /// whose key changed): its task closes it; nothing more is queued.
    pub fn end(&self, code: u16) {
        let mut inner = self.inner.lock();
        if inner.end_code == 0 && !inner.closed {
            inner.end_code = code;
            self.wake.notify_one();
        }
    }

    /// The close code [`Conn::end`] asked for, with its reason.
    pub fn ended(&self) -> Option<(u16, &'static str)> {
        let code = self.inner.lock().end_code;
        (code != 0).then_some((code, "closed by the server"))
    }

    /// Whether the viewer fell behind and must be closed with 4008.
    pub fn overflowed(&self) -> bool {
        self.inner.lock().overflowed
    }

    /// The channels the connection is on or joining.
    pub fn channels(&self) -> Vec<ChannelName> {
        self.inner
            .lock()
            .channels
            .iter()
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// How many channels the connection is on or joining.
    pub fn channel_count(&self) -> usize {
        self.inner.lock().channels.len()
    }

    /// Whether the connection is on or joining `channel`.
    pub fn has_channel(&self, channel: &ChannelName) -> bool {
        self.inner.lock().channels.contains(channel)
    }

    /// Starts joining `channel`: live messages are held back until
    /// [`Conn::go_live`] queues the replay in front of them.
    pub fn begin(&self, channel: &ChannelName) {
        self.inner
            .lock()
            .channels
            .insert(channel, Feed::Pending(Vec::new()));
    }

    /// Queues `head` (the `subscribed` frame), the replay, then the live
    /// messages that arrived meanwhile and follow `after`; from now on
    /// live messages up to `after` are skipped.
    pub fn go_live(
        &self,
        channel: &ChannelName,
        after: Option<MessageId>,
        head: &str,
        replay: &[Envelope],
    ) -> GoLive {
        let mut inner = self.inner.lock();
        let Some(feed) = inner.channels.get_mut(channel) else {
            return GoLive::Gone;
        };
        let held = match std::mem::replace(feed, Feed::Live { after }) {
            Feed::Pending(held) => held,
            Feed::Live { .. } => Vec::new(),
        };
        let fresh = held
            .iter()
            .filter(|env| after.is_none_or(|after| env.id() > after));
        if self.push_frame(&mut inner, head.as_bytes()).is_err() {
            return GoLive::Overflow;
        }
        for env in replay.iter().chain(fresh) {
            if self.push_shared(&mut inner, env.wire()).is_err() {
                return GoLive::Overflow;
            }
        }
        GoLive::Queued
    }

    /// Leaves `channel`; returns whether the connection was on it.
    pub fn leave(&self, channel: &ChannelName) -> bool {
        self.inner.lock().channels.remove(channel)
    }

    /// Room for one more data frame, or the overflow.
    fn admit(&self, inner: &mut Inner) -> Result<(), Overflow> {
        if inner.overflowed || inner.closed {
            return Err(Overflow);
        }
        if inner.frames >= self.max_frames {
            self.overflow(inner);
            return Err(Overflow);
        }
        inner.frames += 1;
        Ok(())
    }

    /// Queues a text frame of ours, encoded here.
    fn push_frame(&self, inner: &mut Inner, payload: &[u8]) -> Result<(), Overflow> {
        self.admit(inner)?;
        Parser::write_message(&mut inner.own, payload, OpCode::Text, true, false);
        self.schedule(inner);
        Ok(())
    }

    /// Queues an encoded frame shared with other viewers, not copied.
    fn push_shared(&self, inner: &mut Inner, wire: &Bytes) -> Result<(), Overflow> {
        self.admit(inner)?;
        inner.cut_own();
        inner.queue.push_back(wire.clone());
        self.schedule(inner);
        Ok(())
    }

    /// Queues a text frame encoded by the caller for many connections
    /// (e.g. with [`crate::domain::text_frame`]): shared, not copied.
    ///
    /// # Errors
    /// [`Overflow`] when the viewer is too far behind; nothing is queued.
    pub fn push_encoded(&self, wire: &Bytes) -> Result<(), Overflow> {
        let mut inner = self.inner.lock();
        self.push_shared(&mut inner, wire)
    }

    fn overflow(&self, inner: &mut Inner) {
        inner.overflowed = true;
        self.slow.inc();
        self.wake.notify_one();
    }
}

impl Pending for Conn {
    fn flush(&self) {
        // A full socket or a failed write wakes the connection's task.
        let _ = Conn::flush(self);
    }
}

impl Inbox for Conn {
    fn offer(&self, env: &Envelope) -> Offer {
        let mut inner = self.inner.lock();
        if inner.closed || inner.overflowed {
            return Offer::Closed;
        }
        let limit = self.max_frames;
        match inner.channels.get_mut(env.channel()) {
            None => Offer::Skipped,
            Some(Feed::Pending(held)) => {
                if held.len() >= limit {
                    self.overflow(&mut inner);
                    return Offer::Overflow;
                }
                held.push(env.clone());
                Offer::Taken
            }
            Some(Feed::Live { after }) => {
                if after.is_some_and(|after| env.id() <= after) {
                    return Offer::Skipped;
                }
                match self.push_shared(&mut inner, env.wire()) {
                    Ok(()) => Offer::Taken,
                    Err(Overflow) => Offer::Overflow,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(max: usize) -> Arc<Conn> {
        Conn::new(1, max, IntCounter::new("slow", "slow").unwrap(), None)
    }

    /// Everything pending, as a socket that takes all would receive it.
    fn written(conn: &Conn) -> Vec<u8> {
        let mut out = Vec::new();
        let mut inner = conn.inner.lock();
        let flushed = conn.write_with(&mut inner, |slices| Ok(take(&mut out, slices, usize::MAX)));
        assert_eq!(flushed, Flushed::Done);
        out
    }

    /// What a socket with room for `room` bytes takes of `slices`.
    fn take(out: &mut Vec<u8>, slices: &[IoSlice<'_>], room: usize) -> usize {
        let mut taken = 0;
        for slice in slices {
            let n = slice.len().min(room - taken);
            out.extend_from_slice(&slice[..n]);
            taken += n;
        }
        taken
    }

    fn channel() -> ChannelName {
        ChannelName::parse("somechannel").unwrap()
    }

    fn env(ms: u64) -> Envelope {
        let body = r#"{"channel":"somechannel","type":"custom","data":{}}"#;
        Envelope::from_parts(MessageId::ZERO.next(ms), body).unwrap()
    }

    #[test]
    fn frames_are_encoded_server_style_and_taken_whole() {
        let conn = conn(4);
        conn.push_text("{\"op\":\"pong\"}").unwrap();
        conn.push_text(&" ".repeat(200)).unwrap();
        let bytes = written(&conn);
        // FIN + text, unmasked 13-byte payload; then a 16-bit length for 200 bytes.
        assert_eq!(&bytes[..2], &[0x81, 13]);
        assert_eq!(&bytes[2..15], b"{\"op\":\"pong\"}");
        assert_eq!(&bytes[15..19], &[0x81, 126, 0, 200]);
        assert_eq!(bytes.len(), 15 + 4 + 200);
        assert!(written(&conn).is_empty());
    }

    #[test]
    fn pending_frames_are_capped_and_the_overflow_sticks() {
        let conn = conn(2);
        conn.push_text("a").unwrap();
        conn.push_text("b").unwrap();
        assert_eq!(conn.push_text("c"), Err(Overflow));
        assert!(conn.overflowed());
        assert!(!written(&conn).is_empty());
        assert_eq!(
            conn.push_text("c"),
            Err(Overflow),
            "an overflowed viewer gets nothing more"
        );
    }

    #[test]
    fn offers_follow_the_channel_feed() {
        let conn = conn(100);
        assert_eq!(conn.offer(&env(1)), Offer::Skipped, "not on the channel");
        conn.begin(&channel());
        // Held while subscribing, then queued after the replay, minus duplicates.
        assert_eq!(conn.offer(&env(2)), Offer::Taken);
        assert_eq!(conn.offer(&env(3)), Offer::Taken);
        assert!(
            written(&conn).is_empty(),
            "held back until the replay is queued"
        );
        let replay = [env(2)];
        let live = conn.go_live(
            &channel(),
            Some(env(2).id()),
            "{\"op\":\"subscribed\"}",
            &replay,
        );
        assert_eq!(live, GoLive::Queued);
        let out = written(&conn);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("\"op\":\"event\"").count(), 2, "{text}");
        assert!(text.find("subscribed").unwrap() < text.find("\"op\":\"event\"").unwrap());
        // Live: at or below the replay's last id is a duplicate.
        assert_eq!(conn.offer(&env(2)), Offer::Skipped);
        assert_eq!(conn.offer(&env(4)), Offer::Taken);
        assert!(conn.leave(&channel()));
        assert_eq!(conn.offer(&env(5)), Offer::Skipped);
    }

    #[test]
    fn a_connection_on_several_channels_leaves_them_one_by_one() {
        let names: Vec<ChannelName> = ["somechannel", "other", "third"]
            .iter()
            .map(|n| ChannelName::parse(n).unwrap())
            .collect();
        let conn = conn(100);
        for name in &names {
            conn.begin(name);
            assert_eq!(conn.go_live(name, None, "{}", &[]), GoLive::Queued);
        }
        assert_eq!(conn.channel_count(), 3);
        assert_eq!(conn.offer(&env(1)), Offer::Taken, "somechannel is on");
        assert!(conn.leave(&names[0]), "the first one leaves");
        assert!(!conn.leave(&names[0]), "once");
        assert_eq!(conn.offer(&env(2)), Offer::Skipped);
        let mut left = conn.channels();
        left.sort();
        assert_eq!(left, vec![names[1].clone(), names[2].clone()]);
        assert!(conn.has_channel(&names[2]));
        assert!(conn.leave(&names[2]) && conn.leave(&names[1]));
        assert_eq!(conn.channel_count(), 0);
    }

    #[test]
    fn a_busy_connection_keeps_its_buffer_and_a_quiet_one_gives_it_back() {
        let conn = conn(100);
        for _ in 0..10 {
            conn.push_text(&"x".repeat(200)).unwrap();
        }
        assert!(written(&conn).len() > KEEP_MIN_BYTES);
        assert!(
            conn.inner.lock().queue.capacity() > 0,
            "kept for the next batch"
        );
        conn.push_text("small").unwrap();
        assert_eq!(written(&conn).len(), 7);
        assert_eq!(conn.inner.lock().queue.capacity(), 0, "given back");
        assert_eq!(conn.inner.lock().own.capacity(), 0, "given back");
    }

    #[test]
    fn a_full_outbox_overflows_once_and_then_reads_closed() {
        let conn = conn(1);
        conn.begin(&channel());
        assert_eq!(conn.go_live(&channel(), None, "{}", &[]), GoLive::Queued);
        assert_eq!(conn.offer(&env(1)), Offer::Overflow);
        assert_eq!(conn.offer(&env(2)), Offer::Closed);
        assert_eq!(conn.slow.get(), 1, "counted once");
    }

    #[test]
    fn writes_resume_where_the_socket_filled_up() {
        let conn = conn(10);
        conn.push_text("abcdef").unwrap();
        let mut inner = conn.inner.lock();
        let mut written = Vec::new();
        // The socket takes 3 bytes, then is full.
        let mut room = 3;
        let flushed = conn.write_with(&mut inner, |slices| {
            if room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = take(&mut written, slices, room);
            room -= n;
            Ok(n)
        });
        assert_eq!(flushed, Flushed::Blocked);
        assert!(inner.blocked);
        drop(inner);
        conn.push_text("gh").unwrap();
        let mut inner = conn.inner.lock();
        let flushed = conn.write_with(&mut inner, |slices| {
            Ok(take(&mut written, slices, usize::MAX))
        });
        assert_eq!(flushed, Flushed::Done);
        assert!(!inner.blocked);
        let mut expected = BytesMut::new();
        Parser::write_message(&mut expected, b"abcdef", OpCode::Text, true, false);
        Parser::write_message(&mut expected, b"gh", OpCode::Text, true, false);
        assert_eq!(written, expected.to_vec(), "every byte once, in order");
    }

    #[test]
    fn shared_and_own_frames_go_out_in_order_through_short_writes() {
        let conn = conn(100);
        conn.begin(&channel());
        assert_eq!(conn.go_live(&channel(), None, "{}", &[]), GoLive::Queued);
        let events: Vec<Envelope> = (1..=4).map(env).collect();
        let mut expected = BytesMut::new();
        Parser::write_message(&mut expected, b"{}", OpCode::Text, true, false);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(conn.offer(e), Offer::Taken);
            expected.extend_from_slice(e.wire());
            let own = format!("own {i}");
            conn.push_text(&own).unwrap();
            Parser::write_message(&mut expected, own.as_bytes(), OpCode::Text, true, false);
        }
        conn.push_control(OpCode::Ping, b"");
        Parser::write_message(&mut expected, b"", OpCode::Ping, true, false);
        // A socket that takes 7 bytes a call, with a full socket between
        // calls, while more frames arrive behind the batch.
        let mut out = Vec::new();
        let mut inner = conn.inner.lock();
        let mut full = false;
        let flushed = conn.write_with(&mut inner, |slices| {
            full = !full;
            if full {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(take(&mut out, slices, 7))
        });
        assert_eq!(flushed, Flushed::Blocked);
        drop(inner);
        assert_eq!(conn.offer(&env(9)), Offer::Taken);
        expected.extend_from_slice(env(9).wire());
        loop {
            let mut inner = conn.inner.lock();
            let mut calls = 0;
            let flushed = conn.write_with(&mut inner, |slices| {
                calls += 1;
                if calls > 1 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(take(&mut out, slices, 7))
            });
            if flushed == Flushed::Done {
                break;
            }
        }
        assert_eq!(out, expected.to_vec(), "every byte once, in order");
        assert!(written(&conn).is_empty());
    }

    #[test]
    fn a_close_that_drops_pending_keeps_the_frame_cut_short() {
        let conn = conn(100);
        conn.begin(&channel());
        assert_eq!(conn.go_live(&channel(), None, "{}", &[]), GoLive::Queued);
        let mut out = written(&conn);
        out.clear();
        assert_eq!(conn.offer(&env(1)), Offer::Taken);
        let mut inner = conn.inner.lock();
        let flushed = conn.write_with(&mut inner, |slices| {
            if out.is_empty() {
                Ok(take(&mut out, slices, 5))
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            }
        });
        assert_eq!(flushed, Flushed::Blocked);
        drop(inner);
        assert_eq!(conn.offer(&env(2)), Offer::Taken);
        conn.push_close(
            CloseReason {
                code: actix_http::ws::CloseCode::Away,
                description: None,
            },
            true,
        );
        out.extend(written(&conn));
        let mut expected = env(1).wire().to_vec();
        expected.extend_from_slice(&[0x88, 2, 0x03, 0xE9]);
        assert_eq!(out, expected, "the started frame whole, then the close");
    }

    #[test]
    fn a_failed_write_marks_the_connection_dead() {
        let conn = conn(10);
        conn.push_text("a").unwrap();
        let mut inner = conn.inner.lock();
        let flushed = conn.write_with(&mut inner, |_| Err(io::ErrorKind::BrokenPipe.into()));
        assert_eq!(flushed, Flushed::Failed);
        drop(inner);
        assert!(conn.failed());
    }

    #[test]
    fn the_close_frame_is_last() {
        let conn = conn(10);
        conn.push_text("a").unwrap();
        conn.push_close(
            CloseReason {
                code: actix_http::ws::CloseCode::Away,
                description: None,
            },
            true,
        );
        assert_eq!(conn.push_text("b"), Err(Overflow));
        let out = written(&conn);
        assert_eq!(
            &out[..],
            &[0x88, 2, 0x03, 0xE9],
            "only the close frame, 1001"
        );
    }
}
