//! SIGTERM and SIGINT against the real binary: both drain. Viewers on every
//! socket get 1001, SSE streams end, a request in flight completes, the
//! process exits 0 within the drain bound and the port is closed.

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{RoomClient, WsClient, local_cookie};

const TOKEN: &str = "signals-publish-token";
const CHANNEL: &str = "teststreamer";
/// The server's drain bound: viewers 2 s, requests 8 s, cleanup 2 s.
const DRAIN_BOUND: Duration = Duration::from_secs(12);
const WAIT: Duration = Duration::from_secs(5);

/// The binary in local mode, memory broker, on a free port.
struct Bridge {
    child: Child,
    addr: String,
    /// The log lines after "listening", collected until the process ends.
    log: tokio::task::JoinHandle<Vec<String>>,
}

impl Bridge {
    async fn spawn() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_eventsub-bridge"))
            .arg("serve")
            .env_clear()
            .env("BIND", "127.0.0.1:0")
            .env("EVENTSUB_SECRET", "signals-test-secret")
            .env("PUBLISH_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the server binary starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if !line.contains("listening") {
                    continue;
                }
                if let Some(rest) = line.split("addr=").nth(1) {
                    return rest
                        .chars()
                        .skip_while(|c| !c.is_ascii_digit())
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect::<String>();
                }
            }
            panic!("the binary ended before listening");
        })
        .await
        .expect("the binary listens within 20 s");
        // Keep reading its log so that it never blocks on a full pipe.
        let log = tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                kept.push(line);
            }
            kept
        });
        Self { child, addr, log }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the binary is running");
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` body off `tcp`.
async fn read_response(tcp: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut chunk))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(n > 0, "connection closed before a whole response");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

async fn drains_on(signal: &str) {
    let mut bridge = Bridge::spawn().await;
    let base = bridge.base();
    let cookie = local_cookie(&base, "viewer1").await;

    // A viewer on each kind of socket, and an SSE stream.
    let mut viewer = WsClient::connect(&base, Some(&cookie), None)
        .await
        .expect("ws upgrade");
    assert_eq!(viewer.next_json().await["op"], "welcome");
    viewer.subscribe(CHANNEL, None).await;
    let mut room = RoomClient::open(&base, CHANNEL, &cookie).await;
    let streamer = local_cookie(&base, CHANNEL).await;
    let alerts = reqwest::Client::new()
        .get(format!("{base}/api/alerts/{CHANNEL}"))
        .header("Cookie", &streamer)
        .header("Origin", &base)
        .send()
        .await
        .unwrap();
    assert_eq!(alerts.status(), 200, "the streamer's alert state");
    let overlay_url = alerts.json::<serde_json::Value>().await.unwrap()["overlay_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = overlay_url.split("key=").nth(1).unwrap();
    let mut overlay = WsClient::connect_path(
        &base,
        &format!("/overlay/{CHANNEL}/ws?key={key}"),
        None,
        None,
    )
    .await
    .expect("overlay upgrade");
    overlay.expect_op("welcome").await;
    let sse_client = reqwest::Client::new();
    let sse = sse_client
        .get(format!("{base}/api/channels/{CHANNEL}/events"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200, "SSE stream");
    let mut sse = sse.bytes_stream();

    // A request in flight: served once on this connection (so a worker
    // holds it), then a publish whose body is only half sent.
    let mut tcp = TcpStream::connect(&bridge.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut tcp).await.starts_with("HTTP/1.1 200"));
    let body = json!({"channel": CHANNEL, "type": "in_flight", "data": {}}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let head = format!(
        "POST /api/publish HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();

    bridge.signal(signal).await;
    let signalled = tokio::time::Instant::now();

    assert_eq!(viewer.close_code(WAIT).await, Some(CloseCode::Away), "/ws");
    assert_eq!(
        room.ws.close_code(WAIT).await,
        Some(CloseCode::Away),
        "room"
    );
    assert_eq!(
        overlay.close_code(WAIT).await,
        Some(CloseCode::Away),
        "overlay"
    );
    tokio::time::timeout(WAIT, async {
        while let Some(chunk) = sse.next().await {
            chunk.expect("the SSE stream ends cleanly, not cut");
        }
    })
    .await
    .expect("the SSE stream ends");
    drop(sse_client);

    // The rest of the body after the viewers are gone: still answered.
    tcp.write_all(rest.as_bytes()).await.unwrap();
    let answer = read_response(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "published: {answer}");
    assert!(answer.contains("{\"id\":\""), "the message's id: {answer}");

    let status = tokio::time::timeout_at(signalled + DRAIN_BOUND, bridge.child.wait())
        .await
        .expect("the process exits within the drain bound")
        .unwrap();
    assert_eq!(status.code(), Some(0), "exit status after {signal}");
    assert!(
        TcpStream::connect(&bridge.addr).await.is_err(),
        "the port is closed"
    );
    let log = bridge.log.await.unwrap().join("\n");
    assert!(
        log.contains("shutting down") && log.contains(&format!("SIG{signal}")),
        "the log names the signal: {log}"
    );
}

#[actix_web::test]
async fn sigterm_drains() {
    drains_on("TERM").await;
}

#[actix_web::test]
async fn sigint_drains() {
    drains_on("INT").await;
}
