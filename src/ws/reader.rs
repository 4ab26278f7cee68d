//! Client frames out of the bytes read from a `/ws` socket: actix-http's
//! WebSocket codec does the framing and unmasking; this joins fragmented
//! messages and holds them to the size limit (SPEC §7.3). The read buffer
//! exists only while bytes are waiting, so an idle connection holds none.

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, Item, ProtocolError};
use bytes::{Bytes, BytesMut};

/// How much one read may take from the socket.
pub const READ_CHUNK: usize = 4096;

/// One whole client message.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A text message (not yet checked for UTF-8).
    Text(Bytes),
    /// A binary message (not supported by the protocol; answered with an error).
    Binary,
    /// A ping, answered with a pong carrying `Bytes`.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// The client's close frame.
    Close,
}

/// Why the client's bytes cannot be read on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    /// A message over the limit (close 1009).
    #[error("message too big")]
    TooBig,
    /// Anything else the WebSocket protocol forbids (close 1002).
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// A fragmented message being joined.
#[derive(Debug)]
struct Partial {
    text: bool,
    bytes: BytesMut,
}

/// The decoding side of one connection.
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
    codec: Codec,
    partial: Option<Partial>,
    max: usize,
}

impl FrameReader {
    /// A reader for messages up to `max` bytes, starting with the bytes
    /// that came in with the upgrade request.
    pub fn new(early: BytesMut, max: usize) -> Self {
        // The HTTP layer's buffer is large; keep it only if it holds something.
        let buf = if early.is_empty() {
            BytesMut::new()
        } else {
            early
        };
        Self {
            buf,
            codec: Codec::new().max_size(max),
            partial: None,
            max,
        }
    }

    /// Whether bytes are waiting to be decoded.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The buffer to read into, with room for [`READ_CHUNK`] bytes.
    pub fn buf_for_read(&mut self) -> &mut BytesMut {
        self.buf.reserve(READ_CHUNK);
        &mut self.buf
    }

    /// The next whole message, or `None` until more bytes arrive.
    ///
    /// # Errors
    /// [`ReadError`] when the connection must be closed.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, ReadError> {
        loop {
            let frame = match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    if self.buf.is_empty() {
                        // Nothing waiting: give the allocation back.
                        self.buf = BytesMut::new();
                    }
                    return Ok(None);
                }
                Err(ProtocolError::Overflow) => return Err(ReadError::TooBig),
                Err(e) => return Err(ReadError::Protocol(e.to_string())),
            };
            let message = match frame {
                Frame::Text(bytes) => Some(Incoming::Text(bytes)),
                Frame::Binary(_) => Some(Incoming::Binary),
                Frame::Ping(bytes) => Some(Incoming::Ping(bytes)),
                Frame::Pong(_) => Some(Incoming::Pong),
                Frame::Close(_) => Some(Incoming::Close),
                Frame::Continuation(item) => self.join(item)?,
            };
            if let Some(message) = message {
                return Ok(Some(message));
            }
        }
    }

    fn join(&mut self, item: Item) -> Result<Option<Incoming>, ReadError> {
        let (first, text, bytes, last) = match item {
            Item::FirstText(b) => (true, true, b, false),
            Item::FirstBinary(b) => (true, false, b, false),
            Item::Continue(b) => (false, false, b, false),
            Item::Last(b) => (false, false, b, true),
        };
        if first {
            if self.partial.is_some() {
                return Err(ReadError::Protocol(
                    "a new message inside a fragmented one".into(),
                ));
            }
            self.partial = Some(Partial {
                text,
                bytes: BytesMut::new(),
            });
        }
        let Some(partial) = self.partial.as_mut() else {
            return Err(ReadError::Protocol(
                "a continuation without a first frame".into(),
            ));
        };
        if partial.bytes.len() + bytes.len() > self.max {
            return Err(ReadError::TooBig);
        }
        partial.bytes.extend_from_slice(&bytes);
        if !last {
            return Ok(None);
        }
        let Some(done) = self.partial.take() else {
            return Ok(None);
        };
        Ok(Some(if done.text {
            Incoming::Text(done.bytes.freeze())
        } else {
            Incoming::Binary
        }))
    }
}

#[cfg(test)]
mod tests {
    use actix_http::ws::{OpCode, Parser};

    use super::*;

    fn client_frame(payload: &[u8], op: OpCode, fin: bool) -> BytesMut {
        let mut buf = BytesMut::new();
        Parser::write_message(&mut buf, payload, op, fin, true);
        buf
    }

    fn feed(reader: &mut FrameReader, bytes: &[u8]) {
        reader.buf_for_read().extend_from_slice(bytes);
    }

    #[test]
    fn whole_and_split_frames_come_out_once_complete() {
        let frame = client_frame(b"{\"op\":\"ping\"}", OpCode::Text, true);
        let mut reader = FrameReader::new(BytesMut::new(), 1024);
        feed(&mut reader, &frame[..3]);
        assert_eq!(reader.next_message(), Ok(None));
        feed(&mut reader, &frame[3..]);
        assert_eq!(
            reader.next_message(),
            Ok(Some(Incoming::Text(Bytes::from_static(
                b"{\"op\":\"ping\"}"
            ))))
        );
        assert_eq!(reader.next_message(), Ok(None));
        assert_eq!(reader.buf.capacity(), 0, "an idle reader holds no buffer");
    }

    #[test]
    fn bytes_sent_with_the_upgrade_are_read_first() {
        let frame = client_frame(b"hi", OpCode::Text, true);
        let mut reader = FrameReader::new(frame, 1024);
        assert_eq!(
            reader.next_message(),
            Ok(Some(Incoming::Text(Bytes::from_static(b"hi"))))
        );
    }

    #[test]
    fn fragments_are_joined_and_held_to_the_limit() {
        let mut reader = FrameReader::new(BytesMut::new(), 8);
        feed(&mut reader, &client_frame(b"abcd", OpCode::Text, false));
        feed(&mut reader, &client_frame(b"efgh", OpCode::Continue, true));
        assert_eq!(
            reader.next_message(),
            Ok(Some(Incoming::Text(Bytes::from_static(b"abcdefgh"))))
        );
        feed(&mut reader, &client_frame(b"abcd", OpCode::Text, false));
        feed(&mut reader, &client_frame(b"efghi", OpCode::Continue, true));
        assert_eq!(reader.next_message(), Err(ReadError::TooBig));
    }

    #[test]
    fn an_oversized_frame_and_an_unmasked_frame_are_refused() {
        let mut reader = FrameReader::new(BytesMut::new(), 4);
        feed(&mut reader, &client_frame(b"12345", OpCode::Text, true));
        assert_eq!(reader.next_message(), Err(ReadError::TooBig));
        let mut reader = FrameReader::new(BytesMut::new(), 4);
        let mut unmasked = BytesMut::new();
        Parser::write_message(&mut unmasked, b"x", OpCode::Text, true, false);
        feed(&mut reader, &unmasked);
        assert!(matches!(reader.next_message(), Err(ReadError::Protocol(_))));
    }

    #[test]
    fn control_frames_pass_between_fragments() {
        let mut reader = FrameReader::new(BytesMut::new(), 64);
        feed(&mut reader, &client_frame(b"ab", OpCode::Text, false));
        feed(&mut reader, &client_frame(b"p", OpCode::Ping, true));
        feed(&mut reader, &client_frame(b"cd", OpCode::Continue, true));
        assert_eq!(
            reader.next_message(),
            Ok(Some(Incoming::Ping(Bytes::from_static(b"p"))))
        );
        assert_eq!(
            reader.next_message(),
            Ok(Some(Incoming::Text(Bytes::from_static(b"abcd"))))
        );
    }
}
