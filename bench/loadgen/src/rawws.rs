//! A minimal WebSocket client for viewers: one buffer per connection, frames parsed in
//! place, no allocation per message. At a million deliveries a second on one core a
//! general-purpose client costs more than the server under test does; this one costs a
//! fraction of a microsecond per frame. `--ws-client tungstenite` cross-checks it.
//!
//! Supports what a viewer needs: the HTTP/1.1 upgrade (no extensions), text and binary
//! frames (fragmented too), ping → pong, close (with its code), masked client frames.

use anyhow::{Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Payload of a fragmented message being assembled.
    frag: Vec<u8>,
    in_frag: bool,
}

/// What `process` found besides data frames.
#[derive(Default, Debug)]
pub struct Control {
    /// Ping payloads to answer with pongs.
    pub pings: Vec<Vec<u8>>,
    /// The server closed the connection: `Some(code)` (`None` inside: no code).
    pub close: Option<Option<u16>>,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl RawWs {
    /// Sends the upgrade request on `stream` and reads the answer (101 expected).
    pub async fn handshake(
        mut stream: TcpStream,
        host: &str,
        path: &str,
        cookie: &str,
        read_buffer: usize,
    ) -> Result<Self> {
        let key = base64(uuid::Uuid::new_v4().as_bytes());
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n"
        );
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| anyhow!("write upgrade: {e}"))?;
        let mut buf = vec![0u8; read_buffer.max(4096)];
        let mut end = 0;
        let head_end = loop {
            if let Some(i) = find(&buf[..end], b"\r\n\r\n") {
                break i + 4;
            }
            if end == buf.len() {
                bail!("upgrade answer head too long");
            }
            let n = stream
                .read(&mut buf[end..])
                .await
                .map_err(|e| anyhow!("read upgrade answer: {e}"))?;
            if n == 0 {
                bail!("connection closed during the upgrade");
            }
            end += n;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]);
        let status = head.split_whitespace().nth(1).unwrap_or("?").to_string();
        if status != "101" {
            bail!("upgrade answered {status}");
        }
        Ok(Self {
            stream,
            buf,
            start: head_end,
            end,
            frag: Vec::new(),
            in_frag: false,
        })
    }

    /// Reads once from the socket into the buffer. Cancel-safe. `Ok(0)`: end of stream.
    pub async fn fill(&mut self) -> std::io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // One frame larger than the buffer: grow.
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Parses every complete frame in the buffer: data messages go to `on_data` (which
    /// returns false to stop parsing after that message), control frames are returned.
    /// Stops at a close frame.
    pub fn process(&mut self, mut on_data: impl FnMut(&[u8]) -> bool) -> Result<Control> {
        let mut ctl = Control::default();
        loop {
            let avail = &self.buf[self.start..self.end];
            if avail.len() < 2 {
                break;
            }
            let (b0, b1) = (avail[0], avail[1]);
            let fin = b0 & 0x80 != 0;
            let opcode = b0 & 0x0f;
            let masked = b1 & 0x80 != 0;
            let mut pos = 2usize;
            let len = match b1 & 0x7f {
                126 => {
                    if avail.len() < 4 {
                        break;
                    }
                    pos = 4;
                    u64::from(u16::from_be_bytes([avail[2], avail[3]]))
                }
                127 => {
                    if avail.len() < 10 {
                        break;
                    }
                    pos = 10;
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&avail[2..10]);
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            if len > (64 << 20) {
                bail!("frame of {len} bytes");
            }
            let len = len as usize;
            let mask_at = pos;
            if masked {
                pos += 4;
            }
            if avail.len() < pos + len {
                break;
            }
            let frame_start = self.start;
            self.start += pos + len;
            let payload_range = frame_start + pos..frame_start + pos + len;
            if masked {
                let key = [
                    self.buf[frame_start + mask_at],
                    self.buf[frame_start + mask_at + 1],
                    self.buf[frame_start + mask_at + 2],
                    self.buf[frame_start + mask_at + 3],
                ];
                for (i, b) in self.buf[payload_range.clone()].iter_mut().enumerate() {
                    *b ^= key[i % 4];
                }
            }
            let payload = &self.buf[payload_range];
            match opcode {
                0x1 | 0x2 if fin && !self.in_frag => {
                    if !on_data(payload) {
                        return Ok(ctl);
                    }
                }
                0x1 | 0x2 => {
                    self.frag.clear();
                    self.frag.extend_from_slice(payload);
                    self.in_frag = true;
                }
                0x0 if self.in_frag => {
                    self.frag.extend_from_slice(payload);
                    if fin {
                        self.in_frag = false;
                        if !on_data(&self.frag) {
                            return Ok(ctl);
                        }
                    }
                }
                0x0 => bail!("continuation frame without a start"),
                0x8 => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    ctl.close = Some(code);
                    return Ok(ctl);
                }
                0x9 => ctl.pings.push(payload.to_vec()),
                0xA => {}
                other => bail!("unknown opcode {other:#x}"),
            }
        }
        Ok(ctl)
    }

    /// Sends one masked frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mask = uuid::Uuid::new_v4().as_bytes()[..4].to_vec();
        let mut f = Vec::with_capacity(payload.len() + 14);
        f.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&f).await
    }

    pub async fn send_text(&mut self, text: &str) -> std::io::Result<()> {
        self.send(0x1, text.as_bytes()).await
    }

    /// Answers pings; after a close frame from the server, answers it too.
    pub async fn answer(&mut self, ctl: &Control) -> std::io::Result<()> {
        for p in &ctl.pings {
            self.send(0xA, p).await?;
        }
        if let Some(code) = ctl.close {
            let payload = code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
            self.send(0x8, &payload).await?;
        }
        Ok(())
    }

    /// Bytes received by the kernel and not yet read from the socket (`FIONREAD`), plus
    /// what is in our buffer unparsed.
    pub fn unread_bytes(&self) -> Option<u64> {
        use std::os::fd::AsRawFd;
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD on a socket we own, writing into a live c_int.
        let rc = unsafe { libc::ioctl(self.stream.as_raw_fd(), libc::FIONREAD, &mut n) };
        (rc == 0).then(|| n.max(0) as u64 + (self.end - self.start) as u64)
    }

    /// Sends a normal close (1000) and stops.
    pub async fn close(mut self) {
        let _ = self.send(0x8, &1000u16.to_be_bytes()).await;
        let _ = self.stream.shutdown().await;
    }

    /// Reads until a text message whose `op` is `want`; `error` ops and closes fail.
    pub async fn wait_for_op(&mut self, want: &str) -> Result<()> {
        loop {
            let mut found: Option<Result<()>> = None;
            let ctl = self.process(|data| {
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
                    return true;
                };
                match v.get("op").and_then(|o| o.as_str()) {
                    Some(op) if op == want => found = Some(Ok(())),
                    Some("error") => {
                        found = Some(Err(anyhow!(
                            "server error while waiting for {want}: {}",
                            v.get("code").and_then(|c| c.as_str()).unwrap_or("?")
                        )))
                    }
                    _ => {}
                }
                found.is_none()
            })?;
            self.answer(&ctl).await?;
            if let Some(code) = ctl.close {
                bail!(
                    "closed ({}) while waiting for {want}",
                    code.map(|c| c.to_string())
                        .unwrap_or_else(|| "no code".into())
                );
            }
            if let Some(r) = found {
                return r;
            }
            if self.fill().await? == 0 {
                bail!("connection ended while waiting for {want}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
        if payload.len() < 126 {
            f.push(payload.len() as u8);
        } else {
            f.push(126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(payload);
        f
    }

    #[tokio::test]
    async fn upgrade_frames_ping_and_close() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = vec![0u8; 4096];
            let n = s.read(&mut req).await.unwrap();
            let req = String::from_utf8_lossy(&req[..n]).to_string();
            // Answer and the first frame in one write.
            let mut out =
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
            out.extend(frame(true, 1, br#"{"op":"welcome"}"#));
            s.write_all(&out).await.unwrap();
            // The subscribe frame (masked).
            let mut sub = vec![0u8; 4096];
            let n = s.read(&mut sub).await.unwrap();
            assert_eq!(sub[0], 0x81);
            let len = (sub[1] & 0x7f) as usize;
            let key = [sub[2], sub[3], sub[4], sub[5]];
            let text: Vec<u8> = sub[6..6 + len]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            assert_eq!(n, 6 + len);
            assert_eq!(text, br#"{"op":"subscribe","channel":"c"}"#);
            let mut out = frame(true, 1, br#"{"op":"subscribed"}"#);
            out.extend(frame(false, 1, b"hel"));
            out.extend(frame(true, 9, b"pi"));
            out.extend(frame(true, 0, b"lo"));
            out.extend(frame(true, 1, &[b'x'; 300]));
            // Split a frame across writes.
            let tail = frame(true, 1, b"split");
            s.write_all(&out).await.unwrap();
            s.write_all(&tail[..3]).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            s.write_all(&tail[3..]).await.unwrap();
            let mut close = frame(true, 8, &4008u16.to_be_bytes());
            close.extend(b"ignored after close");
            s.write_all(&close).await.unwrap();
            let mut pong = vec![0u8; 64];
            let n = s.read(&mut pong).await.unwrap();
            (req, pong[..n].to_vec())
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut ws = RawWs::handshake(stream, "h", "/ws", "id=1", 4096)
            .await
            .unwrap();
        ws.wait_for_op("welcome").await.unwrap();
        ws.send_text(r#"{"op":"subscribe","channel":"c"}"#)
            .await
            .unwrap();
        ws.wait_for_op("subscribed").await.unwrap();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut closed = None;
        let mut pings = 0;
        while closed.is_none() {
            let ctl = ws
                .process(|d| {
                    got.push(d.to_vec());
                    true
                })
                .unwrap();
            pings += ctl.pings.len();
            ws.answer(&ctl).await.unwrap();
            closed = ctl.close;
            if closed.is_none() {
                assert!(ws.fill().await.unwrap() > 0);
            }
        }
        assert_eq!(
            got,
            vec![b"hello".to_vec(), vec![b'x'; 300], b"split".to_vec()]
        );
        assert_eq!(pings, 1);
        assert_eq!(closed, Some(Some(4008)));
        let (req, pong) = server.await.unwrap();
        assert!(req.contains("Cookie: id=1\r\n"), "{req}");
        assert!(req.contains("Sec-WebSocket-Key: "), "{req}");
        assert_eq!(pong[0], 0x8a);
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0u8; 16]).len(), 24);
    }
}
