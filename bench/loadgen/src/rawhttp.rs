//! A minimal keep-alive HTTP/1.1 client for the ingest hot loop: each request is a
//! pre-serialized byte string (written with one call), and only the status line and the
//! body framing of the answer are read. This keeps the load generator's cost per request
//! a few microseconds, so that it does not cap what it measures.

use std::net::SocketAddr;

use anyhow::{Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serializes one request; `headers` are `(name, value)` pairs.
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n").as_bytes());
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// One keep-alive connection, opened on first use and again after the server closed it.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Sends `req` and reads the whole answer; returns its status code. On any error the
    /// connection is dropped (the next call reconnects); the request is not retried.
    pub async fn roundtrip(&mut self, req: &[u8]) -> Result<u16> {
        match self.try_roundtrip(req).await {
            Ok((status, keep)) => {
                if !keep {
                    self.stream = None;
                }
                Ok(status)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    async fn try_roundtrip(&mut self, req: &[u8]) -> Result<(u16, bool)> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr)
                .await
                .map_err(|e| anyhow!("connect: {e}"))?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else {
            bail!("no connection");
        };
        stream
            .write_all(req)
            .await
            .map_err(|e| anyhow!("write: {e}"))?;
        self.buf.clear();
        // Head.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > 64 * 1024 {
                bail!("response head over 64 KiB");
            }
            read_more(stream, &mut self.buf).await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| anyhow!("non-UTF-8 response head"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        let mut keep = status_line.starts_with("HTTP/1.1");
        for line in lines {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.parse().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().contains("chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                let v = v.to_ascii_lowercase();
                if v.contains("close") {
                    keep = false;
                } else if v.contains("keep-alive") {
                    keep = true;
                }
            }
        }
        // Body.
        if status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok((status, keep));
        }
        if chunked {
            while !self.buf[head_end..].ends_with(b"0\r\n\r\n") {
                read_more(stream, &mut self.buf).await?;
            }
        } else if let Some(n) = content_length {
            while self.buf.len() < head_end + n {
                read_more(stream, &mut self.buf).await?;
            }
        } else {
            // Delimited by the end of the connection.
            let mut tmp = Vec::new();
            stream
                .read_to_end(&mut tmp)
                .await
                .map_err(|e| anyhow!("read body: {e}"))?;
            keep = false;
        }
        Ok((status, keep))
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    let mut chunk = [0u8; 4096];
    let n = stream
        .read(&mut chunk)
        .await
        .map_err(|e| anyhow!("read: {e}"))?;
    if n == 0 {
        bail!("connection closed before the response ended");
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn serve_once(answers: Vec<&'static [u8]>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            for a in answers {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(a).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_framed_answers_on_one_connection() {
        let addr = serve_once(vec![
            b"HTTP/1.1 204 No Content\r\ndate: x\r\n\r\n",
            b"HTTP/1.1 403 Forbidden\r\ncontent-length: 5\r\n\r\nnope!",
            b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ])
        .await;
        let mut c = Conn::new(addr);
        let req = request("POST", "h", "/api/callback", &[("A", "b")], b"{}");
        assert_eq!(c.roundtrip(&req).await.unwrap(), 204);
        assert_eq!(c.roundtrip(&req).await.unwrap(), 403);
        assert_eq!(c.roundtrip(&req).await.unwrap(), 400);
        assert_eq!(c.roundtrip(&req).await.unwrap(), 200);
    }

    #[test]
    fn serializes_a_request() {
        let r = request("POST", "h:1", "/p", &[("X-A", "1")], b"body");
        assert_eq!(
            r,
            b"POST /p HTTP/1.1\r\nHost: h:1\r\nX-A: 1\r\nContent-Length: 4\r\n\r\nbody".to_vec()
        );
    }
}
