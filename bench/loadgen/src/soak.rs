//! `soak`: minutes of churn against one server, then a leak check (issue 13, item 5).
//!
//! Churn: viewers connect, subscribe (some with `since`), read, unsubscribe, and end
//! in one of four ways (a clean close, a dropped socket, a reset, or a silent socket
//! held until the server's 90 s timeout); SSE streams open and vanish; history is
//! read; the publish API and signed EventSub notifications (some re-sent, as
//! duplicates) keep messages flowing. With `ADMIN_TOKEN`, every channel also has an
//! alert overlay, as a streamer with OBS open has: it acks the alerts the follows make
//! (otherwise each channel's alert queue fills towards `ALERT_QUEUE_LEN` for the whole
//! run, which is storage by design, not a leak) and itself comes and goes.
//!
//! Measurements: the server's RSS (`/proc/PID/status`), its open file descriptors
//! (`/proc/PID/fd`) and the gauges of `/metrics`, at idle before any churn, at idle
//! after a warm-up of churn, every `--sample-secs` during the churn, and at idle after
//! it. A leak: RSS at the end above the warm-up level by more than `--rss-tolerance`,
//! or file descriptors or gauges not back to their idle values within `--settle-secs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::client_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::alerts::fetch_keys;
use crate::common::{Errors, Target, http_client, raise_nofile, rss_bytes, sign_in};

#[derive(Args, Debug, Clone)]
pub struct SoakArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Server PID (RSS and open files are read from /proc/PID).
    #[arg(long)]
    pub pid: u32,
    /// Whole run, minutes of churn (warm-up included): 30 after the warm-up.
    #[arg(long, default_value_t = 41.0)]
    pub minutes: f64,
    /// Minutes of churn before the reference (warm-up) measurement: longer than the
    /// server's 10-minute de-duplication and idempotency windows, so that its bounded
    /// stores (those, the retained history, the recent alerts) are at their steady size
    /// when the reference is taken.
    #[arg(long, default_value_t = 11.0)]
    pub warmup_minutes: f64,
    /// Viewer slots: each connects, churns, ends, and connects again.
    #[arg(long, default_value_t = 200)]
    pub viewers: usize,
    /// SSE slots, likewise.
    #[arg(long, default_value_t = 20)]
    pub sse: usize,
    /// Channels the load is spread over.
    #[arg(long, default_value_t = 50)]
    pub channels: usize,
    /// Signed-in users the viewers share.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Publish API calls per second (0: none).
    #[arg(long, default_value_t = 20.0)]
    pub publish_rate: f64,
    /// Signed EventSub notifications per second (0: none).
    #[arg(long, default_value_t = 10.0)]
    pub webhook_rate: f64,
    /// Bearer token of the publish API.
    #[arg(long, env = "PUBLISH_TOKEN")]
    pub publish_token: Option<String>,
    /// EVENTSUB_SECRET of the server (signs the notifications).
    #[arg(long, env = "EVENTSUB_SECRET")]
    pub secret: Option<String>,
    /// ADMIN_TOKEN of the server: reads the overlay keys, so that every channel has
    /// an overlay acking its alerts (none without it).
    #[arg(long, env = "ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Seconds between samples during the churn.
    #[arg(long, default_value_t = 60.0)]
    pub sample_secs: f64,
    /// Seconds allowed, after churn stops, for fds and gauges to return to idle.
    #[arg(long, default_value_t = 150.0)]
    pub settle_secs: f64,
    /// Allowed RSS growth of the end over the warm-up level (0.10: 10 %).
    #[arg(long, default_value_t = 0.10)]
    pub rss_tolerance: f64,
}

/// The gauges that must come back to their idle values.
const GAUGES: &[&str] = &[
    "eventsub_bridge_connections",
    "eventsub_bridge_channel_subscriptions",
];

#[derive(Debug, Clone)]
struct Sample {
    at_secs: f64,
    rss: u64,
    fds: u64,
    gauges: BTreeMap<String, i64>,
}

impl Sample {
    fn to_json(&self) -> Value {
        json!({
            "at_secs": (self.at_secs * 10.0).round() / 10.0,
            "rss": self.rss,
            "fds": self.fds,
            "gauges": self.gauges,
        })
    }

    fn line(&self, what: &str) -> String {
        let g: Vec<String> = self
            .gauges
            .iter()
            .map(|(k, v)| format!("{}={v}", k.trim_start_matches("eventsub_bridge_")))
            .collect();
        format!(
            "{what:>10} t={:>7.1}s  rss {:>7.1} MiB  fds {:>5}  {}",
            self.at_secs,
            self.rss as f64 / 1048576.0,
            self.fds,
            g.join(" ")
        )
    }
}

fn open_fds(pid: u32) -> Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("reading /proc/{pid}/fd"))?
        .count() as u64)
}

async fn gauges(client: &reqwest::Client, base: &str) -> Result<BTreeMap<String, i64>> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .context("GET /metrics")?
        .text()
        .await?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        if GAUGES.contains(&name) {
            out.insert(
                name.to_string(),
                value.parse::<f64>().unwrap_or(-1.0) as i64,
            );
        }
    }
    if out.len() != GAUGES.len() {
        bail!("/metrics lacks some of {GAUGES:?}: {out:?}");
    }
    Ok(out)
}

async fn sample(client: &reqwest::Client, a: &SoakArgs, start: Instant) -> Result<Sample> {
    Ok(Sample {
        at_secs: start.elapsed().as_secs_f64(),
        rss: rss_bytes(a.pid)?,
        fds: open_fds(a.pid)?,
        gauges: gauges(client, &Target::resolve(&a.url).await?.base).await?,
    })
}

/// A small, fast, good-enough random source (no crate needed).
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        Self(uuid::Uuid::new_v4().as_u64_pair().0 | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo).max(1))
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// What the churn did, counted.
#[derive(Default)]
struct Counts {
    ws_sessions: AtomicU64,
    ws_clean: AtomicU64,
    ws_dropped: AtomicU64,
    ws_reset: AtomicU64,
    ws_silent: AtomicU64,
    subscribes: AtomicU64,
    unsubscribes: AtomicU64,
    events: AtomicU64,
    gaps: AtomicU64,
    sse_streams: AtomicU64,
    history_reads: AtomicU64,
    publishes: AtomicU64,
    webhooks: AtomicU64,
    webhook_duplicates: AtomicU64,
    overlay_sessions: AtomicU64,
    alerts_shown: AtomicU64,
    alerts_acked: AtomicU64,
}

impl Counts {
    fn to_json(&self) -> Value {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "ws_sessions": g(&self.ws_sessions),
            "ws_clean_close": g(&self.ws_clean),
            "ws_dropped": g(&self.ws_dropped),
            "ws_reset": g(&self.ws_reset),
            "ws_silent_until_timeout": g(&self.ws_silent),
            "subscribes": g(&self.subscribes),
            "unsubscribes": g(&self.unsubscribes),
            "events_received": g(&self.events),
            "gaps": g(&self.gaps),
            "sse_streams": g(&self.sse_streams),
            "history_reads": g(&self.history_reads),
            "publishes": g(&self.publishes),
            "webhooks": g(&self.webhooks),
            "webhook_duplicates": g(&self.webhook_duplicates),
            "overlay_sessions": g(&self.overlay_sessions),
            "alerts_shown": g(&self.alerts_shown),
            "alerts_acked": g(&self.alerts_acked),
        })
    }
}

struct Shared {
    target: Target,
    client: reqwest::Client,
    cookies: Vec<String>,
    channels: Vec<String>,
    stop: AtomicBool,
    counts: Counts,
    errors: Mutex<Errors>,
    publish_token: Option<String>,
    secret: Option<String>,
    /// Each channel's overlay key (empty: no overlays).
    overlay_keys: Vec<String>,
}

impl Shared {
    async fn error(&self, what: impl Into<String>) {
        self.errors.lock().await.add(what);
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    /// Sleeps `d`, or less when the churn stops; true when it stopped.
    async fn nap(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.stopped() {
                return true;
            }
            tokio::time::sleep((end - Instant::now()).min(Duration::from_millis(250))).await;
        }
        self.stopped()
    }
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn next_json(ws: &mut Ws, within: Duration) -> Result<Option<Value>> {
    match tokio::time::timeout(within, ws.next()).await {
        Err(_) => Ok(None),
        Ok(None) => bail!("closed by the server"),
        Ok(Some(Err(e))) => bail!("read: {e}"),
        Ok(Some(Ok(Message::Text(t)))) => Ok(Some(serde_json::from_str(t.as_str())?)),
        Ok(Some(Ok(Message::Close(c)))) => bail!("server closed: {c:?}"),
        Ok(Some(Ok(_))) => Ok(Some(Value::Null)),
    }
}

/// Reads until a frame with `op`, counting events on the way.
async fn wait_op(
    ws: &mut Ws,
    op: &str,
    s: &Shared,
    last: &mut BTreeMap<String, String>,
) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(v) = next_json(ws, left).await? else {
            bail!("no {op} within 30 s");
        };
        if v["op"] == op {
            return Ok(v);
        }
        note_event(&v, s, last);
    }
}

fn note_event(v: &Value, s: &Shared, last: &mut BTreeMap<String, String>) {
    if v["op"] == "event" {
        s.counts.events.fetch_add(1, Ordering::Relaxed);
        if let (Some(ch), Some(id)) = (
            v["message"]["channel"].as_str(),
            v["message"]["id"].as_str(),
        ) {
            last.insert(ch.to_string(), id.to_string());
        }
    }
}

/// One viewer session: connect, subscribe, read, maybe unsubscribe, end somehow.
async fn viewer_session(
    s: &Shared,
    rng: &mut Rng,
    last: &mut BTreeMap<String, String>,
) -> Result<()> {
    let stream = TcpStream::connect(s.target.addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let mut req = s.target.ws_url.as_str().into_client_request()?;
    let cookie = &s.cookies[rng.below(s.cookies.len())];
    req.headers_mut().insert("Cookie", cookie.parse()?);
    let (mut ws, _) = client_async(req, stream).await.context("handshake")?;
    s.counts.ws_sessions.fetch_add(1, Ordering::Relaxed);
    wait_op(&mut ws, "welcome", s, last).await?;

    let n = 1 + rng.below(4);
    let mut subscribed = Vec::new();
    for _ in 0..n {
        let ch = s.channels[rng.below(s.channels.len())].clone();
        if subscribed.contains(&ch) {
            continue;
        }
        let mut op = json!({"op": "subscribe", "channel": ch});
        if let Some(since) = last.get(&ch).filter(|_| rng.chance(70)) {
            op["since"] = json!(since);
        }
        ws.send(Message::text(op.to_string())).await?;
        let ok = wait_op(&mut ws, "subscribed", s, last).await?;
        if ok["gap"] == true {
            s.counts.gaps.fetch_add(1, Ordering::Relaxed);
        }
        s.counts.subscribes.fetch_add(1, Ordering::Relaxed);
        subscribed.push(ch);
    }
    read_for(&mut ws, rng.millis(500, 6000), s, last).await?;
    if rng.chance(50) {
        let ch = &subscribed[rng.below(subscribed.len())];
        ws.send(Message::text(
            json!({"op": "unsubscribe", "channel": ch}).to_string(),
        ))
        .await?;
        wait_op(&mut ws, "unsubscribed", s, last).await?;
        s.counts.unsubscribes.fetch_add(1, Ordering::Relaxed);
        read_for(&mut ws, rng.millis(200, 2000), s, last).await?;
    }
    match rng.below(100) {
        0..45 => {
            ws.close(None).await.ok();
            // Read the server's close echo (or give up after 5 s).
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
            s.counts.ws_clean.fetch_add(1, Ordering::Relaxed);
        }
        45..75 => {
            // Vanishes: the socket is closed (FIN) without a WebSocket close.
            drop(ws);
            s.counts.ws_dropped.fetch_add(1, Ordering::Relaxed);
        }
        75..97 => {
            // Vanishes harder: a reset. (Linger zero does not block on drop.)
            #[allow(deprecated)]
            let _ = ws.get_ref().set_linger(Some(Duration::ZERO));
            drop(ws);
            s.counts.ws_reset.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            // Goes silent: reads nothing, answers no ping, until the server gives up
            // (90 s) or the churn stops.
            s.counts.ws_silent.fetch_add(1, Ordering::Relaxed);
            s.nap(Duration::from_secs(100)).await;
            drop(ws);
        }
    }
    Ok(())
}

async fn read_for(
    ws: &mut Ws,
    d: Duration,
    s: &Shared,
    last: &mut BTreeMap<String, String>,
) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end && !s.stopped() {
        let left = end.saturating_duration_since(Instant::now());
        if let Some(v) = next_json(ws, left.min(Duration::from_millis(500))).await? {
            note_event(&v, s, last);
        }
    }
    Ok(())
}

async fn viewer_slot(s: Arc<Shared>) {
    let mut rng = Rng::new();
    let mut last = BTreeMap::new();
    // Spread the first connections over a second.
    s.nap(rng.millis(0, 1000)).await;
    while !s.stopped() {
        if let Err(e) = viewer_session(&s, &mut rng, &mut last).await {
            s.error(format!("viewer: {e:#}")).await;
            s.nap(Duration::from_millis(500)).await;
        }
        if rng.chance(20) {
            last.clear(); // a fresh page load: no `since`
        }
    }
}

/// One overlay session on channel `idx`: connect with the key, ack every alert after a
/// short "display" (well within the 20 frames a second of SPEC §5), stay 5–60 s, then
/// leave with a close or by dropping the socket (OBS closed or the scene switched). An
/// alert in flight when it leaves is shown again next time (SPEC §8).
async fn overlay_session(s: &Shared, rng: &mut Rng, idx: usize) -> Result<()> {
    let (ch, key) = (&s.channels[idx], &s.overlay_keys[idx]);
    let stream = TcpStream::connect(s.target.addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let url = format!("ws://{}/overlay/{ch}/ws?key={key}", s.target.host);
    let (mut ws, _) = client_async(url.into_client_request()?, stream)
        .await
        .context("overlay handshake")?;
    s.counts.overlay_sessions.fetch_add(1, Ordering::Relaxed);
    let end = Instant::now() + rng.millis(5_000, 60_000);
    while Instant::now() < end && !s.stopped() {
        let left = end.saturating_duration_since(Instant::now());
        let Some(v) = next_json(&mut ws, left.min(Duration::from_millis(500))).await? else {
            continue;
        };
        if v["op"] == "alert" {
            s.counts.alerts_shown.fetch_add(1, Ordering::Relaxed);
            let Some(id) = v["alert"]["id"].as_str() else {
                bail!("alert frame without an id: {v}");
            };
            if s.nap(rng.millis(50, 400)).await {
                break;
            }
            ws.send(Message::text(json!({"op": "ack", "id": id}).to_string()))
                .await?;
            s.counts.alerts_acked.fetch_add(1, Ordering::Relaxed);
        } else if v["op"] == "error" {
            bail!("overlay error frame: {v}");
        }
    }
    if rng.chance(60) {
        ws.close(None).await.ok();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
    Ok(())
}

async fn overlay_slot(s: Arc<Shared>, idx: usize) {
    let mut rng = Rng::new();
    s.nap(rng.millis(0, 1000)).await;
    while !s.stopped() {
        if let Err(e) = overlay_session(&s, &mut rng, idx).await {
            s.error(format!("overlay: {e:#}")).await;
        }
        // OBS closed for a moment.
        s.nap(rng.millis(200, 3000)).await;
    }
}

async fn sse_slot(s: Arc<Shared>) {
    let mut rng = Rng::new();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    s.nap(rng.millis(0, 1000)).await;
    while !s.stopped() {
        let ch = s.channels[rng.below(s.channels.len())].clone();
        let cookie = &s.cookies[rng.below(s.cookies.len())];
        let mut req = s
            .client
            .get(format!("{}/api/channels/{ch}/events", s.target.base))
            .header("Cookie", cookie)
            .timeout(Duration::from_secs(60));
        if let Some(id) = last.get(&ch) {
            req = req.header("Last-Event-ID", id);
        }
        match req.send().await {
            Ok(r) if r.status() == 200 => {
                s.counts.sse_streams.fetch_add(1, Ordering::Relaxed);
                let mut r = r;
                let end = Instant::now() + rng.millis(1000, 10_000);
                while Instant::now() < end && !s.stopped() {
                    let left = end.saturating_duration_since(Instant::now());
                    match tokio::time::timeout(left.min(Duration::from_millis(500)), r.chunk())
                        .await
                    {
                        Ok(Ok(Some(chunk))) => {
                            let text = String::from_utf8_lossy(&chunk);
                            for id in text.lines().filter_map(|l| l.strip_prefix("id:")) {
                                s.counts.events.fetch_add(1, Ordering::Relaxed);
                                last.insert(ch.clone(), id.trim().to_string());
                            }
                        }
                        Ok(Err(e)) => {
                            s.error(format!("sse read: {e}")).await;
                            break;
                        }
                        Ok(Ok(None)) => {
                            s.error("sse: ended by the server").await;
                            break;
                        }
                        Err(_) => {}
                    }
                }
                // Dropped without reading further: the stream vanishes.
            }
            Ok(r) => s.error(format!("sse: {}", r.status())).await,
            Err(e) => s.error(format!("sse: {e}")).await,
        }
        if rng.chance(30) {
            let r = s
                .client
                .get(format!(
                    "{}/api/channels/{ch}/history?limit=20",
                    s.target.base
                ))
                .header("Cookie", cookie)
                .send()
                .await;
            match r {
                Ok(r) if r.status() == 200 => {
                    let _ = r.bytes().await;
                    s.counts.history_reads.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => s.error(format!("history: {}", r.status())).await,
                Err(e) => s.error(format!("history: {e}")).await,
            }
        }
    }
}

async fn publisher(s: Arc<Shared>, rate: f64) {
    let Some(token) = s.publish_token.clone() else {
        return;
    };
    let mut rng = Rng::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    while !s.stopped() {
        tick.tick().await;
        n += 1;
        let ch = &s.channels[rng.below(s.channels.len())];
        let mut req = s
            .client
            .post(format!("{}/api/publish", s.target.base))
            .bearer_auth(&token)
            .json(&json!({"channel": ch, "type": "soak.tick", "data": {"n": n}, "text": format!("tick {n}")}));
        if rng.chance(20) {
            req = req.header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
        }
        match req.send().await {
            Ok(r) if r.status() == 202 => {
                s.counts.publishes.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => s.error(format!("publish: {}", r.status())).await,
            Err(e) => s.error(format!("publish: {e}")).await,
        }
    }
}

fn signed_notification(
    secret: &str,
    id: &str,
    channel: &str,
    n: u64,
) -> Result<(String, String, String)> {
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let body = json!({
        "subscription": {
            "id": "soak-subscription",
            "status": "enabled",
            "type": "channel.follow",
            "version": "2",
            "condition": {"broadcaster_user_id": "1337", "moderator_user_id": "1337"},
            "transport": {"method": "webhook", "callback": "https://localhost/api/callback"},
            "created_at": ts,
            "cost": 0
        },
        "event": {
            "user_id": (100_000_000 + n).to_string(),
            "user_login": format!("soakfollower{n}"),
            "user_name": format!("SoakFollower{n}"),
            "broadcaster_user_id": "1337",
            "broadcaster_user_login": channel,
            "broadcaster_user_name": channel,
            "followed_at": ts
        }
    })
    .to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).context("HMAC key")?;
    mac.update(id.as_bytes());
    mac.update(ts.as_bytes());
    mac.update(body.as_bytes());
    let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    Ok((ts, sig, body))
}

async fn webhooks(s: Arc<Shared>, rate: f64) {
    let Some(secret) = s.secret.clone() else {
        return;
    };
    let mut rng = Rng::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    let mut previous: Option<(String, String, u64)> = None;
    while !s.stopped() {
        tick.tick().await;
        // One in twenty is a re-send of the previous one (same id): a duplicate.
        let (id, ch, k, duplicate) = match previous.clone().filter(|_| rng.chance(5)) {
            Some((id, ch, k)) => (id, ch, k, true),
            None => {
                n += 1;
                let ch = s.channels[rng.below(s.channels.len())].clone();
                (uuid::Uuid::new_v4().to_string(), ch, n, false)
            }
        };
        let (ts, sig, body) = match signed_notification(&secret, &id, &ch, k) {
            Ok(x) => x,
            Err(e) => {
                s.error(format!("webhook signing: {e}")).await;
                return;
            }
        };
        let r = s
            .client
            .post(format!("{}/api/callback", s.target.base))
            .header("Content-Type", "application/json")
            .header("Twitch-Eventsub-Message-Id", &id)
            .header("Twitch-Eventsub-Message-Timestamp", ts)
            .header("Twitch-Eventsub-Message-Signature", sig)
            .header("Twitch-Eventsub-Message-Type", "notification")
            .header("Twitch-Eventsub-Subscription-Type", "channel.follow")
            .header("Twitch-Eventsub-Subscription-Version", "2")
            .body(body)
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => {
                let c = if duplicate {
                    &s.counts.webhook_duplicates
                } else {
                    &s.counts.webhooks
                };
                c.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => s.error(format!("webhook: {}", r.status())).await,
            Err(e) => s.error(format!("webhook: {e}")).await,
        }
        previous = Some((id, ch, k));
    }
}

/// Runs the churn for `d`, sampling every `a.sample_secs`; returns the samples.
async fn churn(
    s: &Arc<Shared>,
    a: &SoakArgs,
    d: Duration,
    probe: &reqwest::Client,
    start: Instant,
    label: &str,
) -> Result<Vec<Sample>> {
    s.stop.store(false, Ordering::Relaxed);
    let mut tasks = Vec::new();
    for _ in 0..a.viewers {
        tasks.push(tokio::spawn(viewer_slot(s.clone())));
    }
    for _ in 0..a.sse {
        tasks.push(tokio::spawn(sse_slot(s.clone())));
    }
    for idx in 0..s.overlay_keys.len() {
        tasks.push(tokio::spawn(overlay_slot(s.clone(), idx)));
    }
    if a.publish_rate > 0.0 {
        tasks.push(tokio::spawn(publisher(s.clone(), a.publish_rate)));
    }
    if a.webhook_rate > 0.0 {
        tasks.push(tokio::spawn(webhooks(s.clone(), a.webhook_rate)));
    }
    let end = Instant::now() + d;
    let mut samples = Vec::new();
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs_f64(a.sample_secs))).await;
        let smp = sample(probe, a, start).await?;
        println!(
            "{}  ws {} ev {} pub {} wh {} err {}",
            smp.line(label),
            s.counts.ws_sessions.load(Ordering::Relaxed),
            s.counts.events.load(Ordering::Relaxed),
            s.counts.publishes.load(Ordering::Relaxed),
            s.counts.webhooks.load(Ordering::Relaxed),
            s.errors.lock().await.total()
        );
        samples.push(smp);
    }
    s.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    Ok(samples)
}

/// After the churn: waits until fds and gauges are back to `idle` (or the time is up),
/// then takes the idle sample.
async fn settle(
    a: &SoakArgs,
    probe: &reqwest::Client,
    start: Instant,
    idle: &Sample,
) -> Result<(Sample, f64)> {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(a.settle_secs);
    loop {
        let smp = sample(probe, a, start).await?;
        let back = smp.fds <= idle.fds && smp.gauges == idle.gauges;
        if back || Instant::now() >= deadline {
            // A little more quiet for the allocator, then the sample that counts.
            tokio::time::sleep(Duration::from_secs(3)).await;
            return Ok((sample(probe, a, start).await?, t0.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

pub async fn run(a: SoakArgs) -> Result<Value> {
    let nofile = raise_nofile();
    if a.warmup_minutes >= a.minutes {
        bail!("--warmup-minutes must be shorter than --minutes");
    }
    let target = Target::resolve(&a.url).await?;
    // The probe opens a fresh connection per request, so that it holds no server fd.
    let probe = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()?;
    let signin = http_client(0)?;
    let mut cookies = Vec::new();
    for k in 0..a.users.max(1) {
        cookies.push(sign_in(&signin, &target.base, &format!("soakviewer{k}")).await?);
    }
    drop(signin);
    println!(
        "soak: {} min ({} warm-up), {} viewer slots, {} SSE slots, {} channels, publish {}/s, webhooks {}/s, nofile {nofile}",
        a.minutes, a.warmup_minutes, a.viewers, a.sse, a.channels, a.publish_rate, a.webhook_rate
    );
    if a.publish_rate > 0.0 && a.publish_token.is_none() {
        println!("warning: no PUBLISH_TOKEN: no publishes");
    }
    if a.webhook_rate > 0.0 && a.secret.is_none() {
        println!("warning: no EVENTSUB_SECRET: no webhooks");
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle0 = sample(&probe, &a, start).await?;
    println!("{}", idle0.line("idle"));

    let channels: Vec<String> = (0..a.channels.max(1)).map(|i| format!("soak{i}")).collect();
    let overlay_keys = match &a.admin_token {
        Some(admin) => fetch_keys(&target, &channels, admin).await?,
        None => {
            println!(
                "warning: no ADMIN_TOKEN: no overlays (the alert queues fill towards ALERT_QUEUE_LEN)"
            );
            Vec::new()
        }
    };
    let shared = Arc::new(Shared {
        target: target.clone(),
        client: http_client(64)?,
        cookies,
        channels,
        overlay_keys,
        stop: AtomicBool::new(false),
        counts: Counts::default(),
        errors: Mutex::new(Errors::default()),
        publish_token: a.publish_token.clone(),
        secret: a.secret.clone(),
    });

    let warm_d = Duration::from_secs_f64(a.warmup_minutes * 60.0);
    let mut samples = churn(&shared, &a, warm_d, &probe, start, "warm-up").await?;
    let (warm, warm_settle) = settle(&a, &probe, start, &idle0).await?;
    println!(
        "{}  (settled in {warm_settle:.1} s)",
        warm.line("warm idle")
    );

    let main_d = Duration::from_secs_f64((a.minutes - a.warmup_minutes) * 60.0);
    samples.extend(churn(&shared, &a, main_d, &probe, start, "churn").await?);
    // The churn's keep-alive connections go with its client.
    let counts = shared.counts.to_json();
    let errors = shared.errors.lock().await.clone();
    drop(shared);
    let (end, end_settle) = settle(&a, &probe, start, &warm).await?;
    println!("{}  (settled in {end_settle:.1} s)", end.line("end idle"));

    let peak = samples.iter().map(|s| s.rss).max().unwrap_or(0);
    let rss_growth = end.rss as f64 / warm.rss as f64 - 1.0;
    let rss_ok = rss_growth <= a.rss_tolerance;
    let fds_ok = end.fds <= warm.fds && warm.fds <= idle0.fds;
    let gauges_ok = end.gauges == idle0.gauges && warm.gauges == idle0.gauges;
    println!(
        "RSS: idle {:.1} MiB, warm-up idle {:.1} MiB, peak under churn {:.1} MiB, end idle {:.1} MiB ({:+.1} % vs warm-up, limit {:.0} %): {}",
        idle0.rss as f64 / 1048576.0,
        warm.rss as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        end.rss as f64 / 1048576.0,
        rss_growth * 100.0,
        a.rss_tolerance * 100.0,
        if rss_ok { "ok" } else { "LEAK" }
    );
    println!(
        "fds: idle {}, warm-up idle {}, end idle {}: {}",
        idle0.fds,
        warm.fds,
        end.fds,
        if fds_ok { "ok" } else { "LEAK" }
    );
    println!(
        "gauges: idle {:?}, warm-up idle {:?}, end idle {:?}: {}",
        idle0.gauges,
        warm.gauges,
        end.gauges,
        if gauges_ok { "ok" } else { "LEAK" }
    );
    println!("churn: {counts}");
    errors.print("churn error");
    Ok(json!({
        "mode": "soak",
        "ok": rss_ok && fds_ok && gauges_ok,
        "rss_ok": rss_ok,
        "fds_ok": fds_ok,
        "gauges_ok": gauges_ok,
        "minutes": a.minutes,
        "warmup_minutes": a.warmup_minutes,
        "idle": idle0.to_json(),
        "warm": warm.to_json(),
        "end": end.to_json(),
        "rss_peak": peak,
        "rss_growth_pct": (rss_growth * 1000.0).round() / 10.0,
        "settle_secs": {"warm": warm_settle, "end": end_settle},
        "samples": samples.iter().map(Sample::to_json).collect::<Vec<_>>(),
        "counts": counts,
        "errors": errors.to_json(),
    }))
}
