//! The WebSocket frame reader (`ws::reader`, `ws::frame`) over any bytes
//! from a client: it never panics, and the bytes read in one piece or in
//! pieces of the size the first input byte picks give the same messages
//! and the same error.
#![no_main]

use bytes::BytesMut;
use eventsub_bridge::ws::reader::{FrameReader, Incoming, ReadError};
use libfuzzer_sys::fuzz_target;

/// A small limit, so that the fuzzer reaches it.
const MAX: usize = 1024;

fn read(early: &[u8], bytes: &[u8], piece: usize) -> Vec<Result<Incoming, ReadError>> {
    let mut reader = FrameReader::new(BytesMut::from(early), MAX);
    let mut out = Vec::new();
    let mut pieces = bytes.chunks(piece.max(1)).peekable();
    loop {
        loop {
            match reader.next_message() {
                Ok(Some(message)) => out.push(Ok(message)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
        let Some(next) = pieces.next() else {
            return out;
        };
        reader.buf_for_read().extend_from_slice(next);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let whole = read(bytes, &[], 1);
    let piece = usize::from(first % 64) + 1;
    // Some bytes arrive with the upgrade request, the rest in pieces.
    let (early, rest) = bytes.split_at(usize::from(first >> 6).min(bytes.len()));
    assert_eq!(whole, read(early, rest, piece));
});
