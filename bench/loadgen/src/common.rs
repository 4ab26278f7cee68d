//! Pieces shared by the three modes: sign-in, viewer connections, timing, /proc readers
//! and the result line.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use reqwest::header::{HeaderValue, SET_COOKIE};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use crate::rawws::RawWs;

pub type Ws = WebSocketStream<TcpStream>;

/// Wall-clock nanoseconds since the Unix epoch (what `sent_ns` carries).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Raises the soft open-files limit to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("warning: could not raise RLIMIT_NOFILE: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(0)
        }
    }
}

/// Where the server is: the HTTP base URL, the WebSocket URL and the socket address.
#[derive(Clone, Debug)]
pub struct Target {
    pub base: String,
    /// `host[:port]` as in the URL (the Host header).
    pub host: String,
    pub ws_url: String,
    pub addr: SocketAddr,
}

impl Target {
    pub async fn resolve(url: &str) -> Result<Self> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("bad --url {url}"))?;
        if parsed.scheme() != "http" {
            bail!("--url must be http:// (the load generator speaks plain HTTP and ws://)");
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| anyhow!("--url {url} has no host"))?
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .find(|a| a.is_ipv4())
            .ok_or_else(|| anyhow!("{host} has no IPv4 address"))?;
        let base = url.trim_end_matches('/').to_string();
        let host_port = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        Ok(Self {
            ws_url: format!("ws://{host_port}/ws"),
            host: host_port,
            base,
            addr,
        })
    }
}

/// A plain HTTP client that does not follow redirects (sign-in answers 302/303).
pub fn http_client(max_idle: usize) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(max_idle)
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")
}

/// `POST /auth/local` with `login=NAME`; returns the `Cookie` header value built from
/// every `Set-Cookie` of the answer (whatever the cookie is called).
pub async fn sign_in(client: &reqwest::Client, base: &str, login: &str) -> Result<String> {
    let resp = client
        .post(format!("{base}/auth/local"))
        .form(&[("login", login)])
        .send()
        .await
        .context("POST /auth/local")?;
    let status = resp.status();
    let cookies: Vec<String> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(|pair| pair.trim().to_string())
        .filter(|pair| pair.contains('=') && !pair.ends_with('='))
        .collect();
    let _ = resp.bytes().await;
    if !(status.is_success() || status.is_redirection()) {
        bail!("POST /auth/local answered {status}");
    }
    if cookies.is_empty() {
        bail!("POST /auth/local answered {status} without a Set-Cookie");
    }
    Ok(cookies.join("; "))
}

/// Signs in `users` distinct users (`{prefix}{k}`), a few at a time. Returns the cookies
/// of those that worked and the errors of the others.
pub async fn sign_in_many(
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
    users: usize,
) -> (Vec<String>, Errors) {
    let sem = Arc::new(Semaphore::new(8));
    let mut handles = Vec::with_capacity(users);
    for k in 0..users {
        let client = client.clone();
        let base = base.to_string();
        let login = format!("{prefix}{k}");
        let sem = sem.clone();
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            sign_in(&client, &base, &login).await
        }));
    }
    let mut cookies = Vec::new();
    let mut errors = Errors::default();
    for h in handles {
        match h.await {
            Ok(Ok(c)) => cookies.push(c),
            Ok(Err(e)) => errors.add(format!("sign-in: {e:#}")),
            Err(e) => errors.add(format!("sign-in task: {e}")),
        }
    }
    (cookies, errors)
}

/// Counts errors by message (messages are shortened so that similar ones group).
#[derive(Default, Debug, Clone)]
pub struct Errors(pub BTreeMap<String, u64>);

impl Errors {
    pub fn add(&mut self, msg: impl Into<String>) {
        let mut msg: String = msg.into();
        if msg.len() > 240 {
            let mut cut = 240;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
        }
        *self.0.entry(msg).or_insert(0) += 1;
    }
    pub fn merge(&mut self, other: &Errors) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_insert(0) += v;
        }
    }
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
                .collect(),
        )
    }
    pub fn print(&self, what: &str) {
        for (k, v) in &self.0 {
            println!("  {what}: {v} x {k}");
        }
    }
}

/// Which WebSocket client the viewers use.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsClient {
    /// The built-in minimal client (a fraction of a microsecond per frame).
    Raw,
    /// tokio-tungstenite (to cross-check the raw client).
    Tungstenite,
}

/// An open, subscribed viewer connection.
pub enum Viewer {
    Raw(RawWs),
    Tungstenite(Box<Ws>),
}

/// How viewers reach the server: source addresses, WebSocket settings and timeouts.
#[derive(Clone)]
pub struct Dialer {
    pub target: Target,
    pub sources: Arc<Vec<Ipv4Addr>>,
    pub ws_config: WebSocketConfig,
    pub read_buffer: usize,
    pub client: WsClient,
    pub timeout: Duration,
}

impl Dialer {
    /// `sources == 0` picks one loopback source address per 1000 connections (at most
    /// 250) when the server is on loopback.
    pub fn new(
        target: Target,
        connections: usize,
        sources: usize,
        read_buffer: usize,
        client: WsClient,
    ) -> Self {
        let loopback = matches!(target.addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
        let count = if !loopback {
            0
        } else if sources == 0 {
            connections.div_ceil(1000).clamp(1, 250)
        } else {
            sources.min(250)
        };
        let list = if count > 1 {
            (1..=count as u8)
                .map(|x| Ipv4Addr::new(127, 0, 0, x))
                .collect()
        } else {
            Vec::new()
        };
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(read_buffer)
            .write_buffer_size(0)
            .max_message_size(Some(16 << 20));
        Self {
            target,
            sources: Arc::new(list),
            ws_config,
            read_buffer,
            client,
            timeout: Duration::from_secs(30),
        }
    }

    pub fn source_count(&self) -> usize {
        self.sources.len().max(1)
    }

    async fn tcp(&self, idx: usize) -> Result<TcpStream> {
        let socket = TcpSocket::new_v4().context("socket")?;
        if !self.sources.is_empty() {
            let src = self.sources[idx % self.sources.len()];
            bind_address_no_port(&socket);
            socket
                .bind(SocketAddr::new(IpAddr::V4(src), 0))
                .with_context(|| format!("bind {src}"))?;
        }
        let stream = socket.connect(self.target.addr).await.context("connect")?;
        stream.set_nodelay(true).context("nodelay")?;
        Ok(stream)
    }

    /// Opens `/ws` with the cookie, waits for `welcome`, subscribes to `channel` and waits
    /// for `subscribed`.
    pub async fn open_viewer(&self, idx: usize, cookie: &str, channel: &str) -> Result<Viewer> {
        let open = async {
            match self.client {
                WsClient::Raw => self.open_raw(idx, cookie, channel).await.map(Viewer::Raw),
                WsClient::Tungstenite => self
                    .open_tungstenite(idx, cookie, channel)
                    .await
                    .map(|ws| Viewer::Tungstenite(Box::new(ws))),
            }
        };
        tokio::time::timeout(self.timeout, open)
            .await
            .map_err(|_| anyhow!("timed out opening and subscribing"))?
    }

    async fn open_raw(&self, idx: usize, cookie: &str, channel: &str) -> Result<RawWs> {
        let stream = self.tcp(idx).await?;
        let mut ws =
            RawWs::handshake(stream, &self.target.host, "/ws", cookie, self.read_buffer).await?;
        ws.wait_for_op("welcome").await?;
        let sub = serde_json::json!({"op": "subscribe", "channel": channel}).to_string();
        ws.send_text(&sub).await.context("send subscribe")?;
        ws.wait_for_op("subscribed").await?;
        Ok(ws)
    }

    pub async fn open_tungstenite(&self, idx: usize, cookie: &str, channel: &str) -> Result<Ws> {
        let stream = self.tcp(idx).await?;
        let mut req = self
            .target
            .ws_url
            .as_str()
            .into_client_request()
            .context("ws request")?;
        req.headers_mut().insert(
            "cookie",
            HeaderValue::from_str(cookie).context("cookie header")?,
        );
        let (mut ws, _resp) = client_async_with_config(req, stream, Some(self.ws_config))
            .await
            .map_err(|e| match e {
                tungstenite::Error::Http(resp) => anyhow!("upgrade answered {}", resp.status()),
                other => anyhow!("upgrade: {other}"),
            })?;
        wait_for_op(&mut ws, "welcome").await?;
        let sub = serde_json::json!({"op": "subscribe", "channel": channel}).to_string();
        ws.send(Message::text(sub))
            .await
            .context("send subscribe")?;
        wait_for_op(&mut ws, "subscribed").await?;
        Ok(ws)
    }
}

/// Asks the kernel to pick the source port at connect time (not at bind), so that
/// ports are shared across destinations and TIME_WAIT reuse applies. Best effort.
fn bind_address_no_port(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
    let _ = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// Reads frames until one whose `op` is `want`; an `error` op or a close fails.
async fn wait_for_op(ws: &mut Ws, want: &str) -> Result<()> {
    loop {
        let msg = match ws.next().await {
            None => bail!("connection ended while waiting for {want}"),
            Some(Err(e)) => bail!("read while waiting for {want}: {e}"),
            Some(Ok(m)) => m,
        };
        let text = match &msg {
            Message::Text(t) => t.as_str(),
            Message::Close(f) => bail!(
                "closed ({}) while waiting for {want}",
                f.as_ref()
                    .map(|f| u16::from(f.code).to_string())
                    .unwrap_or_else(|| "no code".into())
            ),
            _ => continue,
        };
        let v: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => bail!("non-JSON frame while waiting for {want}"),
        };
        match v.get("op").and_then(|o| o.as_str()) {
            Some(op) if op == want => return Ok(()),
            Some("error") => bail!(
                "server error while waiting for {want}: {}",
                v.get("code").and_then(|c| c.as_str()).unwrap_or("?")
            ),
            _ => continue,
        }
    }
}

/// Parses the unsigned integer that follows `key` (e.g. `"seq":`) in `text`.
pub fn num_after(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let rest = text.as_bytes().get(start..)?;
    let mut i = 0;
    while i < rest.len() && (rest[i] == b' ' || rest[i] == b'\t') {
        i += 1;
    }
    let mut n: u64 = 0;
    let first = i;
    while i < rest.len() && rest[i].is_ascii_digit() {
        n = n.checked_mul(10)?.checked_add(u64::from(rest[i] - b'0'))?;
        i += 1;
    }
    (i > first).then_some(n)
}

/// Latency summary in milliseconds from nanosecond samples.
pub fn latency_summary(samples: &[u64]) -> serde_json::Value {
    let mut h = match hdrhistogram::Histogram::<u64>::new(3) {
        Ok(h) => h,
        Err(_) => return serde_json::Value::Null,
    };
    for &s in samples {
        let _ = h.record(s.max(1));
    }
    hist_summary(&h)
}

pub fn hist_summary(h: &hdrhistogram::Histogram<u64>) -> serde_json::Value {
    if h.is_empty() {
        return serde_json::json!({"count": 0});
    }
    let ms = |ns: u64| (ns as f64 / 1e6 * 1000.0).round() / 1000.0;
    serde_json::json!({
        "count": h.len(),
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "max": ms(h.max()),
        "mean": ms(h.mean() as u64),
    })
}

pub fn fmt_latency(v: &serde_json::Value) -> String {
    let g = |k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
    format!(
        "p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        g("p50"),
        g("p90"),
        g("p99"),
        g("max")
    )
}

/// The server's resident set size in bytes, from `/proc/PID/status`.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("bad VmRSS line {line:?}"))?;
    Ok(kb * 1024)
}

/// CPU seconds the process has used: the sum over its threads of
/// `/proc/PID/task/TID/schedstat` (nanoseconds), or `/proc/PID/stat` (clock ticks) when
/// schedstat is unavailable.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    schedstat_seconds(pid).or_else(|| stat_seconds(pid))
}

fn schedstat_seconds(pid: u32) -> Option<f64> {
    let mut ns: u64 = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    (ns > 0).then_some(ns as f64 / 1e9)
}

fn stat_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tck = if tck > 0 { tck as f64 } else { 100.0 };
    Some((utime + stime) / tck)
}

/// Prints the machine-readable result line that bench/run.sh parses.
pub fn print_result(v: &serde_json::Value) {
    println!("RESULT {v}");
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
