//! A byte-level WebSocket client: it writes exactly the bytes a test
//! builds (any frame, broken or not, in any chops) and decodes the
//! server's frames, so that transport rules can be tested exactly.

use std::time::Duration;

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, OpCode, Parser};
use bytes::BytesMut;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::TestApp;

/// How long any one read may wait.
pub const RAW_WAIT: Duration = Duration::from_secs(10);

/// A masked client frame.
pub fn client_frame(payload: &[u8], op: OpCode, fin: bool) -> BytesMut {
    let mut buf = BytesMut::new();
    Parser::write_message(&mut buf, payload, op, fin, true);
    buf
}

/// A byte-level WebSocket client.
pub struct RawWs {
    pub stream: TcpStream,
    buf: BytesMut,
    codec: Codec,
}

impl RawWs {
    /// Opens `/ws` with the app's session, sending `early` in the same
    /// write as the handshake; returns the client and the response head.
    pub async fn open(app: &TestApp, early: &[u8]) -> (Self, String) {
        let cookie = app.cookie_header().unwrap_or_default();
        Self::open_path(app, "/ws", &format!("Cookie: {cookie}\r\n"), early).await
    }

    /// Sends an upgrade request for `target` with the extra header lines
    /// `headers` (each ending in CRLF), then `early`.
    pub async fn open_path(
        app: &TestApp,
        target: &str,
        headers: &str,
        early: &[u8],
    ) -> (Self, String) {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut req = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\n{headers}Upgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n",
            app.addr
        )
        .into_bytes();
        req.extend_from_slice(early);
        stream.write_all(&req).await.unwrap();
        let mut buf = BytesMut::new();
        let head = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = buf.split_to(end + 4);
                break String::from_utf8_lossy(&head).into_owned();
            }
            let n = tokio::time::timeout(RAW_WAIT, stream.read_buf(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed before the response head");
        };
        let codec = Codec::new().client_mode().max_size(1 << 20);
        (Self { stream, buf, codec }, head)
    }

    /// The next frame from the server, `None` at the end of the stream
    /// (or a reset); panics when nothing comes within [`RAW_WAIT`].
    pub async fn next_frame(&mut self) -> Option<Frame> {
        self.next_frame_within(RAW_WAIT)
            .await
            .expect("a frame or the end within the wait")
    }

    /// The next frame from the server (`Some(None)` at the end of the
    /// stream or a reset), or `None` when nothing comes within `wait`.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Option<Option<Frame>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf).unwrap() {
                return Some(Some(frame));
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf));
            match read.await {
                Err(_) => return None,
                Ok(Ok(0) | Err(_)) => return Some(None),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next text frame as JSON, skipping pings and pongs.
    pub async fn next_json(&mut self) -> Value {
        loop {
            match self.next_frame().await.expect("a frame before the end") {
                Frame::Text(t) => return serde_json::from_slice(&t).unwrap(),
                Frame::Ping(_) | Frame::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Writes `bytes` in one write. A write the server no longer reads is
    /// not an error here: what the server sent back decides.
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Writes `bytes` in writes of `chop` bytes each.
    pub async fn send_chopped(&mut self, bytes: &[u8], chop: usize) {
        for piece in bytes.chunks(chop.max(1)) {
            if self.stream.write_all(piece).await.is_err() {
                return;
            }
            let _ = self.stream.flush().await;
        }
    }

    /// Reads the welcome, subscribes to `teststreamer` and reads the answer.
    pub async fn welcome_and_subscribe(&mut self) {
        assert_eq!(self.next_json().await["op"], "welcome");
        let op = br#"{"op":"subscribe","channel":"teststreamer"}"#;
        self.send(&client_frame(op, OpCode::Text, true)).await;
        assert_eq!(self.next_json().await["op"], "subscribed");
    }
}
