//! Client frames out of the bytes read from a socket, checked against RFC
//! 6455: each frame's header is checked first (`frame::peek`: reserved
//! bits and opcodes, the mask, control frame rules, the length), so that
//! nothing is buffered for a frame that will be refused; actix-http's
//! parser then unmasks the payload. This joins fragmented messages, keeps
//! them in order (no continuation without a start, no new message inside
//! one), holds them to the size limit (SPEC §7.3), checks text for UTF-8
//! fragment by fragment, and checks close payloads. The read buffer exists
//! only while bytes are waiting, and a message being joined is boxed, so
//! an idle connection holds neither.

use actix_http::ws::{Parser, ProtocolError};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

use super::frame::{self, CloseError, HeaderError, Op};

/// How much one read may take from the socket.
pub const READ_CHUNK: usize = 4096;

/// Close codes for a broken frame (RFC 6455 §7.4.1).
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_UNSUPPORTED: u16 = 1003;
const CLOSE_NOT_UTF8: u16 = 1007;
const CLOSE_TOO_BIG: u16 = 1009;

/// One whole client message.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A text message, valid UTF-8.
    Text(ByteString),
    /// A ping, answered with a pong carrying `Bytes`.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// The client's close frame, with its status code if it had one.
    Close(Option<u16>),
}

/// Why the client's bytes cannot be read on: the connection closes with
/// [`ReadError::close_code`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    /// A message over the limit (1009).
    #[error("message too big")]
    TooBig,
    /// A binary message (1003: every protocol here speaks JSON text),
    /// refused from its first header, before its payload is read.
    #[error("binary message")]
    Binary,
    /// Text, or a close reason, that is not UTF-8 (1007).
    #[error("text is not UTF-8")]
    NotUtf8,
    /// A frame header RFC 6455 forbids (1002).
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A close payload RFC 6455 forbids (1002).
    #[error(transparent)]
    Close(CloseError),
    /// A continuation frame with no message to continue (1002).
    #[error("continuation frame without a message to continue")]
    ContinuationWithoutStart,
    /// A new data frame before the fragmented message ended (1002).
    #[error("new message inside a fragmented message")]
    MessageInsideMessage,
    /// A frame the parser refused after its header passed (1002).
    #[error("malformed frame")]
    Malformed,
}

impl ReadError {
    /// The close code to end the connection with.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::TooBig => CLOSE_TOO_BIG,
            Self::Binary => CLOSE_UNSUPPORTED,
            Self::NotUtf8 | Self::Close(CloseError::ReasonNotUtf8) => CLOSE_NOT_UTF8,
            Self::Header(_)
            | Self::Close(_)
            | Self::ContinuationWithoutStart
            | Self::MessageInsideMessage
            | Self::Malformed => CLOSE_PROTOCOL,
        }
    }

    /// The close frame's reason: short, fixed text.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooBig => "message too big",
            Self::Binary => "binary frames are not supported: send JSON text",
            Self::NotUtf8 | Self::Close(CloseError::ReasonNotUtf8) => "text is not UTF-8",
            Self::Header(HeaderError::ReservedBits) => "reserved bits set",
            Self::Header(HeaderError::ReservedOpcode(_)) => "reserved opcode",
            Self::Header(HeaderError::Unmasked) => "unmasked client frame",
            Self::Header(HeaderError::FragmentedControl) => "fragmented control frame",
            Self::Header(HeaderError::LongControl) => "control frame over 125 bytes",
            Self::Header(HeaderError::LengthTopBit) => "invalid 64-bit length",
            Self::Close(CloseError::OneByte) => "close payload of one byte",
            Self::Close(CloseError::InvalidCode(_)) => "invalid close code",
            Self::ContinuationWithoutStart => "continuation without a message",
            Self::MessageInsideMessage => "new message inside a fragmented one",
            Self::Malformed => "malformed frame",
        }
    }
}

/// A fragmented text message being joined.
#[derive(Debug)]
struct Partial {
    bytes: BytesMut,
    /// How many leading bytes are known to be UTF-8 (the rest is at most
    /// the start of one code point).
    checked: usize,
}

impl Partial {
    /// Adds a fragment and checks what it completes for UTF-8.
    fn push(&mut self, fragment: &[u8], last: bool) -> Result<(), ReadError> {
        self.bytes.extend_from_slice(fragment);
        let unchecked = self.bytes.get(self.checked..).unwrap_or_default();
        self.checked += utf8_prefix(unchecked, last)?;
        Ok(())
    }
}

/// How many leading bytes of `bytes` are UTF-8, when what is left can
/// still become UTF-8 with more bytes (and none may follow when `last`).
fn utf8_prefix(bytes: &[u8], last: bool) -> Result<usize, ReadError> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(bytes.len()),
        // `error_len` is `None` when the input ends inside a code point.
        Err(e) if e.error_len().is_none() && !last => Ok(e.valid_up_to()),
        Err(_) => Err(ReadError::NotUtf8),
    }
}

/// The decoding side of one connection.
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
    /// The text message being joined; boxed, so it costs an idle connection
    /// one pointer.
    partial: Option<Box<Partial>>,
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
            let Some(header) = frame::peek(&self.buf)? else {
                return Ok(self.wait());
            };
            // What the header alone decides, before the payload is waited for.
            let joined = match (header.op, &self.partial) {
                (Op::Continue, None) => return Err(ReadError::ContinuationWithoutStart),
                (Op::Text | Op::Binary, Some(_)) => return Err(ReadError::MessageInsideMessage),
                (Op::Binary, None) => return Err(ReadError::Binary),
                (Op::Continue, Some(p)) => p.bytes.len(),
                _ => 0,
            };
            let limit = self.max.saturating_sub(joined) as u64;
            if !header.op.is_control() && header.len > limit {
                return Err(ReadError::TooBig);
            }
            // The header was checked: the parser only waits, splits and unmasks.
            let parsed = Parser::parse(&mut self.buf, true, self.max.max(125));
            let payload = match parsed {
                Ok(Some((_, _, payload))) => payload.unwrap_or_default(),
                Ok(None) => return Ok(self.wait()),
                Err(ProtocolError::Overflow) => return Err(ReadError::TooBig),
                Err(_) => return Err(ReadError::Malformed),
            };
            if let Some(message) = self.take(header.op, header.fin, payload)? {
                return Ok(Some(message));
            }
        }
    }

    /// `None`, giving the buffer's allocation back when nothing waits in it.
    fn wait(&mut self) -> Option<Incoming> {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        None
    }

    /// Handles one whole frame; `None` while a fragmented message goes on.
    fn take(
        &mut self,
        op: Op,
        fin: bool,
        payload: BytesMut,
    ) -> Result<Option<Incoming>, ReadError> {
        let text = match op {
            Op::Ping => return Ok(Some(Incoming::Ping(payload.freeze()))),
            Op::Pong => return Ok(Some(Incoming::Pong)),
            Op::Close => {
                let code = frame::close_code(&payload).map_err(ReadError::Close)?;
                return Ok(Some(Incoming::Close(code)));
            }
            // Refused in `next_message` before the payload was read.
            Op::Binary => return Err(ReadError::Binary),
            Op::Text if fin => payload.freeze(),
            Op::Text => {
                let mut partial = Box::new(Partial {
                    bytes: BytesMut::new(),
                    checked: 0,
                });
                partial.push(&payload, false)?;
                self.partial = Some(partial);
                return Ok(None);
            }
            Op::Continue => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(ReadError::ContinuationWithoutStart);
                };
                partial.push(&payload, fin)?;
                if !fin {
                    return Ok(None);
                }
                match self.partial.take() {
                    Some(done) => done.bytes.freeze(),
                    None => return Err(ReadError::ContinuationWithoutStart),
                }
            }
        };
        ByteString::try_from(text)
            .map(|text| Some(Incoming::Text(text)))
            .map_err(|_| ReadError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use actix_http::ws::OpCode;
    use proptest::prelude::*;

    use super::*;

    fn client_frame(payload: &[u8], op: OpCode, fin: bool) -> BytesMut {
        let mut buf = BytesMut::new();
        Parser::write_message(&mut buf, payload, op, fin, true);
        buf
    }

    fn feed(reader: &mut FrameReader, bytes: &[u8]) {
        reader.buf_for_read().extend_from_slice(bytes);
    }

    fn text(s: &str) -> Incoming {
        Incoming::Text(ByteString::from(s))
    }

    /// Every message in `stream`, fed in pieces of the given sizes (the
    /// last piece takes the rest), up to the first error.
    fn read_in_pieces(
        stream: &[u8],
        pieces: &[usize],
        max: usize,
    ) -> Vec<Result<Incoming, ReadError>> {
        let mut reader = FrameReader::new(BytesMut::new(), max);
        let mut out = Vec::new();
        let mut rest = stream;
        let mut sizes = pieces.iter();
        while !rest.is_empty() {
            let n = sizes
                .next()
                .copied()
                .unwrap_or(rest.len())
                .clamp(1, rest.len());
            let (piece, tail) = rest.split_at(n);
            rest = tail;
            feed(&mut reader, piece);
            loop {
                match reader.next_message() {
                    Ok(Some(m)) => out.push(Ok(m)),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(e));
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Frames with all three length encodings, fragments, control frames
    /// between fragments, and a code point split across fragments.
    fn mixed_stream(big: usize) -> Vec<u8> {
        let mut s = BytesMut::new();
        s.extend_from_slice(&client_frame(b"", OpCode::Text, true));
        s.extend_from_slice(&client_frame(&[b'a'; 125], OpCode::Text, true));
        s.extend_from_slice(&client_frame(&[b'b'; 126], OpCode::Text, true));
        s.extend_from_slice(&client_frame(&vec![b'c'; big], OpCode::Text, true));
        s.extend_from_slice(&client_frame(
            "κό".as_bytes()[..3].as_ref(),
            OpCode::Text,
            false,
        ));
        s.extend_from_slice(&client_frame(b"ping", OpCode::Ping, true));
        s.extend_from_slice(&client_frame(
            &"κό".as_bytes()[3..],
            OpCode::Continue,
            false,
        ));
        s.extend_from_slice(&client_frame(b"", OpCode::Pong, true));
        s.extend_from_slice(&client_frame(b"!", OpCode::Continue, true));
        s.extend_from_slice(&client_frame(&1000u16.to_be_bytes(), OpCode::Close, true));
        s.to_vec()
    }

    fn mixed_messages(big: usize) -> Vec<Result<Incoming, ReadError>> {
        vec![
            Ok(text("")),
            Ok(text(&"a".repeat(125))),
            Ok(text(&"b".repeat(126))),
            Ok(text(&"c".repeat(big))),
            Ok(Incoming::Ping(Bytes::from_static(b"ping"))),
            Ok(Incoming::Pong),
            Ok(text("κό!")),
            Ok(Incoming::Close(Some(1000))),
        ]
    }

    #[test]
    fn whole_and_split_frames_come_out_once_complete() {
        let frame = client_frame(b"{\"op\":\"ping\"}", OpCode::Text, true);
        let mut reader = FrameReader::new(BytesMut::new(), 1024);
        feed(&mut reader, &frame[..3]);
        assert_eq!(reader.next_message(), Ok(None));
        feed(&mut reader, &frame[3..]);
        assert_eq!(reader.next_message(), Ok(Some(text("{\"op\":\"ping\"}"))));
        assert_eq!(reader.next_message(), Ok(None));
        assert_eq!(reader.buf.capacity(), 0, "an idle reader holds no buffer");
    }

    #[test]
    fn an_idle_reader_is_small() {
        // Part of every connection's task: a buffer, a pointer and the limit.
        assert!(std::mem::size_of::<FrameReader>() <= 48);
    }

    #[test]
    fn a_large_message_split_at_every_byte_boundary_reads_the_same() {
        // 65,536 bytes: the SPEC limit, which takes the 64-bit length form.
        let big = 65_536;
        let stream = mixed_stream(big);
        let expected = mixed_messages(big);
        assert_eq!(read_in_pieces(&stream, &[], big), expected);
        // One byte at a time is every boundary at once.
        assert_eq!(
            read_in_pieces(&stream, &vec![1; stream.len()], big),
            expected
        );
        // And each boundary alone, through the headers and into the payload.
        for at in 1..400 {
            assert_eq!(
                read_in_pieces(&stream, &[at], big),
                expected,
                "split at {at}"
            );
        }
    }

    #[test]
    fn bytes_sent_with_the_upgrade_are_read_first() {
        let frame = client_frame(b"hi", OpCode::Text, true);
        let mut reader = FrameReader::new(frame, 1024);
        assert_eq!(reader.next_message(), Ok(Some(text("hi"))));
    }

    #[test]
    fn fragments_are_joined_and_held_to_the_limit() {
        let mut reader = FrameReader::new(BytesMut::new(), 8);
        feed(&mut reader, &client_frame(b"abcd", OpCode::Text, false));
        feed(&mut reader, &client_frame(b"efgh", OpCode::Continue, true));
        assert_eq!(reader.next_message(), Ok(Some(text("abcdefgh"))));
        feed(&mut reader, &client_frame(b"abcd", OpCode::Text, false));
        feed(&mut reader, &client_frame(b"efghi", OpCode::Continue, true));
        assert_eq!(reader.next_message(), Err(ReadError::TooBig));
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_header_alone() {
        let frame = client_frame(&[b'x'; 70_000], OpCode::Text, true);
        let mut reader = FrameReader::new(BytesMut::new(), 65_536);
        // The header only: nothing waits for the payload.
        feed(&mut reader, &frame[..14]);
        assert_eq!(reader.next_message(), Err(ReadError::TooBig));
        // A fragment that would take the message over the limit, likewise.
        let mut reader = FrameReader::new(BytesMut::new(), 8);
        feed(&mut reader, &client_frame(b"abcd", OpCode::Text, false));
        feed(
            &mut reader,
            &client_frame(b"efghi", OpCode::Continue, true)[..2],
        );
        assert_eq!(reader.next_message(), Err(ReadError::TooBig));
    }

    #[test]
    fn broken_headers_are_refused_before_their_payload() {
        let mut unmasked = BytesMut::new();
        Parser::write_message(&mut unmasked, b"x", OpCode::Text, true, false);
        let mut rsv = client_frame(b"x", OpCode::Text, true);
        rsv[0] |= 0x40;
        let mut top_bit = vec![0x81, 0xFF];
        top_bit.extend_from_slice(&u64::MAX.to_be_bytes());
        let mut long_ping = client_frame(&[0; 126], OpCode::Ping, true);
        long_ping.truncate(4);
        for (bytes, error) in [
            (unmasked.to_vec(), HeaderError::Unmasked),
            (rsv[..2].to_vec(), HeaderError::ReservedBits),
            (top_bit, HeaderError::LengthTopBit),
            (long_ping.to_vec(), HeaderError::LongControl),
            (vec![0x83, 0x80], HeaderError::ReservedOpcode(3)),
            (vec![0x09, 0x80], HeaderError::FragmentedControl),
        ] {
            let mut reader = FrameReader::new(BytesMut::new(), 1024);
            feed(&mut reader, &bytes);
            assert_eq!(reader.next_message(), Err(ReadError::Header(error)));
            assert_eq!(ReadError::Header(error).close_code(), 1002);
        }
    }

    #[test]
    fn fragments_out_of_order_are_refused() {
        let mut reader = FrameReader::new(BytesMut::new(), 64);
        feed(&mut reader, &client_frame(b"x", OpCode::Continue, true));
        assert_eq!(
            reader.next_message(),
            Err(ReadError::ContinuationWithoutStart)
        );
        let mut reader = FrameReader::new(BytesMut::new(), 64);
        feed(&mut reader, &client_frame(b"ab", OpCode::Text, false));
        feed(&mut reader, &client_frame(b"cd", OpCode::Text, true));
        assert_eq!(reader.next_message(), Err(ReadError::MessageInsideMessage));
    }

    #[test]
    fn binary_is_reported_from_its_header() {
        let mut reader = FrameReader::new(BytesMut::new(), 64);
        feed(
            &mut reader,
            &client_frame(b"abc", OpCode::Binary, false)[..2],
        );
        assert_eq!(reader.next_message(), Err(ReadError::Binary));
        assert_eq!(ReadError::Binary.close_code(), 1003);
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
        assert_eq!(reader.next_message(), Ok(Some(text("abcd"))));
    }

    #[test]
    fn invalid_utf8_is_found_in_the_fragment_that_brings_it() {
        // Autobahn 6.4.1: valid, then the fragment holding U+110000's
        // encoding, then more; the second fragment already fails.
        let mut reader = FrameReader::new(BytesMut::new(), 1024);
        feed(
            &mut reader,
            &client_frame("κόσμε".as_bytes(), OpCode::Text, false),
        );
        assert_eq!(reader.next_message(), Ok(None));
        feed(
            &mut reader,
            &client_frame(&[0xF4, 0x90, 0x80, 0x80], OpCode::Continue, false),
        );
        assert_eq!(reader.next_message(), Err(ReadError::NotUtf8));
        // A code point whose first byte ends a fragment: fine until the end.
        let mut reader = FrameReader::new(BytesMut::new(), 1024);
        feed(
            &mut reader,
            &client_frame(&[b'a', 0xE2], OpCode::Text, false),
        );
        assert_eq!(reader.next_message(), Ok(None));
        feed(&mut reader, &client_frame(&[0x82], OpCode::Continue, false));
        assert_eq!(reader.next_message(), Ok(None));
        feed(&mut reader, &client_frame(&[0xAC], OpCode::Continue, true));
        assert_eq!(reader.next_message(), Ok(Some(text("a€"))));
        // ...but not when the message ends inside it.
        let mut reader = FrameReader::new(BytesMut::new(), 1024);
        feed(
            &mut reader,
            &client_frame(&[b'a', 0xE2], OpCode::Text, false),
        );
        feed(&mut reader, &client_frame(&[0x82], OpCode::Continue, true));
        assert_eq!(reader.next_message(), Err(ReadError::NotUtf8));
        // A whole frame.
        let mut reader = FrameReader::new(BytesMut::new(), 1024);
        feed(&mut reader, &client_frame(&[0xFF], OpCode::Text, true));
        assert_eq!(reader.next_message(), Err(ReadError::NotUtf8));
        assert_eq!(ReadError::NotUtf8.close_code(), 1007);
    }

    #[test]
    fn close_frames_carry_their_code_or_are_refused() {
        let close = |payload: &[u8]| {
            let mut reader = FrameReader::new(BytesMut::new(), 1024);
            feed(&mut reader, &client_frame(payload, OpCode::Close, true));
            reader.next_message()
        };
        assert_eq!(close(b""), Ok(Some(Incoming::Close(None))));
        assert_eq!(close(b"\x0f\xa0bye"), Ok(Some(Incoming::Close(Some(4000)))));
        let one = close(b"\x03").unwrap_err();
        assert_eq!(
            (one.close_code(), one.reason()),
            (1002, "close payload of one byte")
        );
        assert_eq!(close(b"\x03\xed").unwrap_err().close_code(), 1002);
        assert_eq!(close(b"\x03\xe8\xff").unwrap_err().close_code(), 1007);
    }

    proptest! {
        #[test]
        fn any_split_of_a_stream_reads_the_same(pieces in proptest::collection::vec(1usize..300, 0..40)) {
            let big = 1000;
            prop_assert_eq!(read_in_pieces(&mixed_stream(big), &pieces, big), mixed_messages(big));
        }

        #[test]
        fn encoded_messages_in_any_fragments_read_back_as_sent(
            messages in proptest::collection::vec(("\\PC{0,300}", 1usize..6, any::<bool>()), 1..8),
            pieces in proptest::collection::vec(1usize..200, 0..20),
        ) {
            // Each message: its text, the number of fragments, and a ping
            // between its first two fragments.
            let mut stream = BytesMut::new();
            let mut expected = Vec::new();
            for (text_in, parts, ping) in &messages {
                let bytes = text_in.as_bytes();
                let size = bytes.len().div_ceil(*parts).max(1);
                let chunks: Vec<&[u8]> = if bytes.is_empty() { vec![&[]] } else { bytes.chunks(size).collect() };
                for (i, chunk) in chunks.iter().enumerate() {
                    let op = if i == 0 { OpCode::Text } else { OpCode::Continue };
                    stream.extend_from_slice(&client_frame(chunk, op, i + 1 == chunks.len()));
                    if i == 0 && *ping && chunks.len() > 1 {
                        stream.extend_from_slice(&client_frame(b"p", OpCode::Ping, true));
                        expected.push(Ok(Incoming::Ping(Bytes::from_static(b"p"))));
                    }
                }
                expected.push(Ok(text(text_in)));
            }
            prop_assert_eq!(read_in_pieces(&stream, &pieces, 4096), expected);
        }

        #[test]
        fn any_bytes_end_in_messages_or_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), cut in 1usize..64) {
            let whole = read_in_pieces(&bytes, &[], 256);
            prop_assert_eq!(&whole, &read_in_pieces(&bytes, &[cut; 64], 256));
        }

        #[test]
        fn text_fragments_are_accepted_exactly_when_their_join_is_utf8(
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
            cuts in proptest::collection::vec(0usize..40, 0..6),
        ) {
            let mut ends: Vec<usize> = cuts.into_iter().filter(|c| *c <= bytes.len()).collect();
            ends.sort_unstable();
            ends.push(bytes.len());
            let mut stream = BytesMut::new();
            let mut start = 0;
            for (i, end) in ends.iter().copied().enumerate() {
                let op = if i == 0 { OpCode::Text } else { OpCode::Continue };
                stream.extend_from_slice(&client_frame(&bytes[start..end], op, i + 1 == ends.len()));
                start = end;
            }
            let read = read_in_pieces(&stream, &[], 1024);
            match std::str::from_utf8(&bytes) {
                Ok(s) => prop_assert_eq!(read, vec![Ok(text(s))]),
                Err(_) => prop_assert_eq!(read.last(), Some(&Err(ReadError::NotUtf8))),
            }
        }
    }
}
