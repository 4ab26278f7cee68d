//! `alerts`: alert overlays (SPEC §8, issue 10) under load, through the real API.
//!
//! - `--scenario throughput`: N channels, each with one overlay socket
//!   (`/overlay/{channel}/ws?key=K`) that acks every alert as soon as it arrives; every
//!   channel gets `--rate` donations a second through `POST /api/alerts/{channel}`
//!   (`PUBLISH_TOKEN`) for `--seconds`. Publish→shown latency (the start of the POST to the
//!   overlay's receipt of the alert frame), lost, shown twice, out of order, server CPU per
//!   alert. A channel's alerts are all sent by one publisher, one after the other, so each
//!   was accepted before the next was sent: the overlay must show them in that order.
//! - `--scenario burst`: `--alerts` donations into one channel at once (`--concurrency`
//!   requests in flight) while `--overlays` overlays ack at once. Accepted (202) and
//!   refused (429: the queue holds `ALERT_QUEUE_LEN`), every accepted alert shown exactly
//!   once by every overlay and in order (an alert whose 202 came back before another was
//!   sent must be shown first), and the time from the first POST until the last alert
//!   was shown. With several overlays, overlay j acks the alerts it sees at positions
//!   j, j + K, … (any overlay's ack moves the queue).
//!
//! Overlay keys come from `GET /api/alerts/{channel}` with `ADMIN_TOKEN` (which makes the
//! key if the channel had none). An overlay is a client like any other: at most 20 frames
//! a second (SPEC §5), so acks are paced to `--ack-limit` a second per overlay; a
//! `rate_limited` or `unavailable` answer re-sends the ack (counted).
//!
//! With several `--url`s (Redis mode) every alert is published through the first instance;
//! throughput overlays go round-robin over the instances (overlay i on instance i mod N),
//! burst overlays start at the second instance (overlay j on instance (j + 1) mod N), so
//! the single burst overlay sees alerts that crossed Redis.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};

use crate::common::{
    Errors, Target, cpu_seconds, fmt_latency, http_client, latency_summary, now_ns, num_after,
    raise_nofile, round2,
};
use crate::rawhttp;
use crate::rawws::RawWs;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Throughput,
    Burst,
}

#[derive(Args, Debug, Clone)]
pub struct AlertsArgs {
    /// What to measure.
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Server base URL; repeat it for Redis mode (publishes go to the first).
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub urls: Vec<String>,
    /// Server PID (one per --url, in order): server CPU over the measurement.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// PID of the Redis server (Redis mode): its CPU over the same interval.
    #[arg(long, value_name = "PID", env = "BENCH_REDIS_PID")]
    pub redis_pid: Option<u32>,
    /// The channel (burst), or the prefix of the channels `{prefix}_{i}` (throughput).
    #[arg(long, env = "BENCH_CHANNEL", default_value = "benchchannel")]
    pub channel: String,
    /// Bearer token of `POST /api/alerts/{channel}`.
    #[arg(long, env = "PUBLISH_TOKEN")]
    pub publish_token: String,
    /// Bearer token of the alert API (`GET /api/alerts/{channel}`: the overlay key).
    #[arg(long, env = "ADMIN_TOKEN")]
    pub admin_token: String,
    /// throughput: channels, one overlay each.
    #[arg(long, default_value_t = 1000)]
    pub channels: usize,
    /// throughput: seconds of publishing.
    #[arg(long, default_value_t = 10)]
    pub seconds: usize,
    /// throughput: alerts per second per channel.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// throughput: publishing connections (a channel's alerts all go through one).
    #[arg(long, default_value_t = 64)]
    pub publishers: usize,
    /// burst: alerts sent at once.
    #[arg(long, default_value_t = 1000)]
    pub alerts: usize,
    /// burst: requests in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// burst: overlays open on the channel (they share the acks).
    #[arg(long, default_value_t = 1)]
    pub overlays: usize,
    /// Client frames (acks) per second per overlay (SPEC §5: at most 20).
    #[arg(long, default_value_t = 20)]
    pub ack_limit: usize,
    /// Overlay connections opened at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Seconds allowed to fetch keys and open every overlay.
    #[arg(long, default_value_t = 180.0)]
    pub connect_timeout: f64,
    /// Seconds to wait, after the last publish, for every accepted alert to be shown.
    #[arg(long, default_value_t = 120.0)]
    pub drain_timeout: f64,
}

/// The marks a published alert carries in its `message` (and so in the overlay's frame).
const SEQ_MARK: &str = "bench_seq=";
const NS_MARK: &str = "bench_ns=";

/// What the overlays share with the main task.
struct Shared {
    /// Distinct alerts shown, summed over overlays.
    shown: AtomicUsize,
}

/// How one overlay acks.
#[derive(Clone, Copy)]
struct AckRule {
    /// This overlay acks the alerts at positions `index`, `index + group`, …
    index: usize,
    group: usize,
    /// Frames a second at most.
    limit: usize,
}

/// What one overlay saw.
#[derive(Default)]
struct OverlayOut {
    /// `(seq, received ns)` of each distinct alert, in the order shown.
    shown: Vec<(u32, u64)>,
    /// Publish→shown of each distinct alert (ns).
    latencies: Vec<u64>,
    /// Alert frames for an alert already shown.
    dups: u64,
    /// Alert frames whose message carried no marks.
    unmarked: u64,
    acks: u64,
    /// Acks sent again after `rate_limited` / `unavailable`.
    resent: u64,
    /// `rate_limited` answers.
    rate_limited: u64,
    errors: BTreeMap<String, u64>,
    end: Option<String>,
}

async fn fetch_key(
    client: &reqwest::Client,
    base: &str,
    channel: &str,
    admin: &str,
) -> Result<String> {
    let resp = client
        .get(format!("{base}/api/alerts/{channel}"))
        .bearer_auth(admin)
        .send()
        .await
        .context("GET /api/alerts/{channel}")?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("GET /api/alerts/{{channel}} answered {status} (is ADMIN_TOKEN set on the server?)");
    }
    let url = body["overlay_url"]
        .as_str()
        .ok_or_else(|| anyhow!("GET /api/alerts/{{channel}}: no overlay_url"))?;
    let url = reqwest::Url::parse(url).context("overlay_url")?;
    url.query_pairs()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| anyhow!("overlay_url has no key"))
}

/// Fetches the keys of `channels` (a few at a time) through `target` (also the soak's).
pub(crate) async fn fetch_keys(
    target: &Target,
    channels: &[String],
    admin: &str,
) -> Result<Vec<String>> {
    let client = http_client(16)?;
    let sem = Arc::new(Semaphore::new(16));
    let mut handles = Vec::with_capacity(channels.len());
    for ch in channels {
        let (client, base, ch, admin, sem) = (
            client.clone(),
            target.base.clone(),
            ch.clone(),
            admin.to_owned(),
            sem.clone(),
        );
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            fetch_key(&client, &base, &ch, &admin).await
        }));
    }
    let mut keys = Vec::with_capacity(channels.len());
    for h in handles {
        keys.push(h.await.map_err(|e| anyhow!("key task: {e}"))??);
    }
    Ok(keys)
}

async fn open_overlay(target: &Target, channel: &str, key: &str) -> Result<RawWs> {
    let stream = TcpStream::connect(target.addr).await.context("connect")?;
    stream.set_nodelay(true).context("nodelay")?;
    let path = format!("/overlay/{channel}/ws?key={key}");
    // No session: the key is the overlay's only credential (the cookie is a dummy).
    let mut ws = RawWs::handshake(stream, &target.host, &path, "bench=1", 16 * 1024).await?;
    ws.wait_for_op("welcome").await?;
    Ok(ws)
}

/// Opens one overlay per `(target, channel, key)`, a few at a time.
async fn open_overlays(
    plan: Vec<(Target, String, String)>,
    concurrency: usize,
    timeout: Duration,
) -> Result<Vec<RawWs>> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut handles = Vec::with_capacity(plan.len());
    for (t, ch, key) in plan {
        let sem = sem.clone();
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            open_overlay(&t, &ch, &key).await
        }));
    }
    let mut out = Vec::with_capacity(handles.len());
    let mut errors = Errors::default();
    for h in handles {
        match tokio::time::timeout(timeout, h).await {
            Ok(Ok(Ok(ws))) => out.push(ws),
            Ok(Ok(Err(e))) => errors.add(format!("overlay: {e:#}")),
            Ok(Err(e)) => errors.add(format!("overlay task: {e}")),
            Err(_) => errors.add("overlay: timed out"),
        }
    }
    if errors.total() > 0 {
        errors.print("overlay error");
        bail!("{} overlays failed to open", errors.total());
    }
    Ok(out)
}

/// The alert's id in an `{"op":"alert","alert":{"id":…}}` frame.
fn alert_id(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    v["alert"]["id"].as_str().map(str::to_owned)
}

/// One overlay: acks its share of the alerts at once (paced to the frame limit) and
/// records what it saw, until stopped.
async fn overlay(
    mut ws: RawWs,
    rule: AckRule,
    seqs: usize,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> OverlayOut {
    let mut out = OverlayOut::default();
    let mut seen = vec![false; seqs];
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(rule.limit + 1);
    // The last ack this overlay sent: re-sent after a refusal.
    let mut last_ack: Option<String> = None;
    let mut retry: Option<Instant> = None;
    'outer: loop {
        tokio::select! {
            _ = stop.changed() => break,
            () = async {
                match retry {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                retry = None;
                if let Some(id) = last_ack.clone() {
                    out.resent += 1;
                    if let Err(e) = send_ack(&mut ws, &id, rule.limit, &mut sent).await {
                        out.end = Some(format!("send: {e}"));
                        break;
                    }
                }
            }
            r = ws.fill() => {
                match r {
                    Ok(0) => { out.end = Some("eof".into()); break; }
                    Err(e) => { out.end = Some(format!("read: {e}")); break; }
                    Ok(_) => {}
                }
                let mut to_ack: Vec<String> = Vec::new();
                let mut refused = false;
                let now = now_ns();
                let ctl = match ws.process(|data| {
                    let text = std::str::from_utf8(data).unwrap_or("");
                    if text.starts_with(r#"{"op":"alert""#) {
                        let (Some(seq), Some(sent_ns)) = (num_after(text, SEQ_MARK), num_after(text, NS_MARK)) else {
                            out.unmarked += 1;
                            return true;
                        };
                        let seq = seq as usize;
                        let first = seq < seen.len() && !seen[seq];
                        let position = out.shown.len();
                        if first {
                            seen[seq] = true;
                            out.shown.push((seq as u32, now));
                            out.latencies.push(now.saturating_sub(sent_ns));
                            shared.shown.fetch_add(1, Ordering::Relaxed);
                        } else {
                            out.dups += 1;
                        }
                        // A repeated head (redelivery) is acked again by whoever acks.
                        if !first || position % rule.group == rule.index {
                            match alert_id(text) {
                                Some(id) => to_ack.push(id),
                                None => *out.errors.entry("alert frame without id".into()).or_default() += 1,
                            }
                        }
                    } else if let Ok(v) = serde_json::from_str::<Value>(text) {
                        // Not an alert: only errors matter (keys in any order).
                        if v["op"] == "error" {
                            let code = v["code"].as_str().unwrap_or("?").to_owned();
                            if code == "rate_limited" || code == "unavailable" {
                                refused = true;
                            }
                            if code == "rate_limited" {
                                // The pacing's slack was not enough (the server timed the
                                // frames on arrival); the ack is re-sent, so not a failure.
                                out.rate_limited += 1;
                            } else {
                                *out.errors.entry(format!("server error {code}")).or_default() += 1;
                            }
                        }
                    }
                    true
                }) {
                    Ok(c) => c,
                    Err(e) => { out.end = Some(format!("protocol: {e}")); break; }
                };
                let _ = ws.answer(&ctl).await;
                if let Some(code) = ctl.close {
                    out.end = Some(format!("close_{}", code.unwrap_or(0)));
                    break;
                }
                if refused && last_ack.is_some() {
                    retry = Some(Instant::now() + Duration::from_millis(100));
                }
                for id in to_ack {
                    out.acks += 1;
                    if let Err(e) = send_ack(&mut ws, &id, rule.limit, &mut sent).await {
                        out.end = Some(format!("send: {e}"));
                        break 'outer;
                    }
                    last_ack = Some(id);
                }
            }
        }
    }
    out
}

/// Sends `{"op":"ack","id"}`, first waiting as long as needed to stay within `limit`
/// frames in any second (with a little slack for timer and scheduling differences).
async fn send_ack(
    ws: &mut RawWs,
    id: &str,
    limit: usize,
    sent: &mut VecDeque<Instant>,
) -> std::io::Result<()> {
    if let Some(&oldest) = sent.front().filter(|_| limit > 0 && sent.len() >= limit) {
        let free = oldest + Duration::from_millis(1050);
        if free > Instant::now() {
            tokio::time::sleep_until(free.into()).await;
        }
    }
    sent.push_back(Instant::now());
    while sent.len() > limit.max(1) {
        sent.pop_front();
    }
    ws.send_text(&format!(r#"{{"op":"ack","id":"{id}"}}"#))
        .await
}

/// The request of one donation, stamped now.
fn donation(host: &str, channel: &str, token: &str, seq: usize) -> Vec<u8> {
    let body = json!({
        "kind": "donation",
        "user": "benchdonor",
        "amount": "1.00",
        "currency": "USD",
        "message": format!("{SEQ_MARK}{seq} {NS_MARK}{}", now_ns()),
    })
    .to_string();
    let auth = format!("Bearer {token}");
    rawhttp::request(
        "POST",
        host,
        &format!("/api/alerts/{channel}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

/// One publish: `(channel index, seq, status or 0 on error, sent ns, answered ns, lag ns)`.
#[derive(Clone, Copy)]
struct Sent {
    channel: u32,
    seq: u32,
    status: u16,
    sent_ns: u64,
    answered_ns: u64,
    lag_ns: u64,
}

fn cpu_sum(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| cpu_seconds(p)).sum()
}

/// CPU seconds of the servers, Redis and this process.
struct Cpu {
    server: Option<f64>,
    redis: Option<f64>,
    me: Option<f64>,
}

impl Cpu {
    fn now(a: &AlertsArgs) -> Self {
        Self {
            server: cpu_sum(&a.pids),
            redis: a.redis_pid.and_then(cpu_seconds),
            me: cpu_seconds(std::process::id()),
        }
    }
    fn since(&self, before: &Cpu) -> Cpu {
        let d = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        Cpu {
            server: d(self.server, before.server),
            redis: d(self.redis, before.redis),
            me: d(self.me, before.me),
        }
    }
}

pub async fn run(a: AlertsArgs) -> Result<Value> {
    let nofile = raise_nofile();
    if a.urls.is_empty() {
        bail!("give at least one --url");
    }
    if !a.pids.is_empty() && a.pids.len() != a.urls.len() {
        bail!("give one --pid per --url, in the same order");
    }
    let mut targets = Vec::new();
    for url in &a.urls {
        targets.push(Target::resolve(url).await?);
    }
    println!(
        "alerts {:?} on {} instance(s) (nofile {nofile})",
        a.scenario,
        targets.len()
    );
    match a.scenario {
        Scenario::Throughput => throughput(&a, &targets).await,
        Scenario::Burst => burst(&a, &targets).await,
    }
}

/// Waits until `done()` or `deadline`; false on the deadline.
async fn wait_until(deadline: Instant, done: impl Fn() -> bool) -> bool {
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

fn statuses_json(sent: &[Sent]) -> (Value, usize, usize, usize) {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    let (mut accepted, mut full, mut other) = (0, 0, 0);
    for s in sent {
        let k = if s.status == 0 {
            "error".to_owned()
        } else {
            s.status.to_string()
        };
        *by.entry(k).or_default() += 1;
        match s.status {
            202 => accepted += 1,
            429 => full += 1,
            _ => other += 1,
        }
    }
    (json!(by), accepted, full, other)
}

async fn throughput(a: &AlertsArgs, targets: &[Target]) -> Result<Value> {
    let n = a.channels;
    if n == 0 || a.seconds == 0 || a.rate <= 0.0 {
        bail!("--channels, --seconds and --rate must be above 0");
    }
    let per_channel = (a.seconds as f64 * a.rate).round().max(1.0) as usize;
    let channels: Vec<String> = (0..n).map(|i| format!("{}_{i}", a.channel)).collect();
    let started = Instant::now();
    let keys = fetch_keys(&targets[0], &channels, &a.admin_token).await?;
    println!(
        "{n} overlay keys in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let plan = (0..n)
        .map(|i| {
            (
                targets[i % targets.len()].clone(),
                channels[i].clone(),
                keys[i].clone(),
            )
        })
        .collect();
    let started = Instant::now();
    let sockets = open_overlays(
        plan,
        a.connect_concurrency,
        Duration::from_secs_f64(a.connect_timeout),
    )
    .await?;
    println!(
        "{n} overlays open in {:.2} s; {per_channel} alerts per channel at {}/s",
        started.elapsed().as_secs_f64(),
        a.rate
    );

    let shared = Arc::new(Shared {
        shown: AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let rule = AckRule {
        index: 0,
        group: 1,
        limit: a.ack_limit,
    };
    let overlays: Vec<_> = sockets
        .into_iter()
        .map(|ws| {
            tokio::spawn(overlay(
                ws,
                rule,
                per_channel,
                shared.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();

    // Publishers: channel i is publisher i mod P's; each sends its alerts on schedule
    // (alert s of channel i at (s + i / N) / rate seconds), one after the other.
    let p_count = a.publishers.clamp(1, n);
    let gap = 1.0 / a.rate;
    let cpu_before = Cpu::now(a);
    let start = Instant::now() + Duration::from_millis(100);
    let mut pubs = Vec::with_capacity(p_count);
    for p in 0..p_count {
        let target = targets[0].clone();
        let token = a.publish_token.clone();
        let chans: Vec<(usize, String)> = (p..n)
            .step_by(p_count)
            .map(|i| (i, channels[i].clone()))
            .collect();
        pubs.push(tokio::spawn(async move {
            let mut conn = rawhttp::Conn::new(target.addr);
            let mut out = Vec::with_capacity(chans.len() * per_channel);
            for s in 0..per_channel {
                for (i, ch) in &chans {
                    let at =
                        start + Duration::from_secs_f64((s as f64 + *i as f64 / n as f64) * gap);
                    tokio::time::sleep_until(at.into()).await;
                    let lag_ns = at.elapsed().as_nanos() as u64;
                    let sent_ns = now_ns();
                    let req = donation(&target.host, ch, &token, s);
                    let status = conn.roundtrip(&req).await.unwrap_or(0);
                    out.push(Sent {
                        channel: *i as u32,
                        seq: s as u32,
                        status,
                        sent_ns,
                        answered_ns: now_ns(),
                        lag_ns,
                    });
                }
            }
            out
        }));
    }
    let mut sent = Vec::with_capacity(n * per_channel);
    for h in pubs {
        sent.extend(h.await.map_err(|e| anyhow!("publisher task: {e}"))?);
    }
    let publish_span = start.elapsed();
    let (statuses, accepted, full, other) = statuses_json(&sent);
    println!(
        "published {} alerts in {:.2} s: statuses {statuses}",
        sent.len(),
        publish_span.as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs_f64(a.drain_timeout);
    let complete = wait_until(deadline, || {
        shared.shown.load(Ordering::Relaxed) >= accepted
    })
    .await;
    let span = start.elapsed();
    let cpu = Cpu::now(a).since(&cpu_before);
    let _ = stop_tx.send(true);
    let mut outs = Vec::with_capacity(n);
    for h in overlays {
        outs.push(h.await.unwrap_or_default());
    }

    // Per channel: accepted seqs must each be shown once, in order.
    let mut accepted_of = vec![vec![false; per_channel]; n];
    for s in sent.iter().filter(|s| s.status == 202) {
        accepted_of[s.channel as usize][s.seq as usize] = true;
    }
    let (mut lost, mut unexpected, mut out_of_order, mut dups, mut unmarked) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut acks, mut resent, mut early, mut limited) = (0u64, 0u64, 0u64, 0u64);
    let mut lat = Vec::with_capacity(accepted);
    let mut errors = Errors::default();
    let mut endings: BTreeMap<String, u64> = BTreeMap::new();
    for (i, o) in outs.iter().enumerate() {
        let mut shown = vec![false; per_channel];
        let mut last: Option<u32> = None;
        for &(seq, _) in &o.shown {
            shown[seq as usize] = true;
            if !accepted_of[i][seq as usize] {
                unexpected += 1;
            }
            if last.is_some_and(|l| seq < l) {
                out_of_order += 1;
            }
            last = Some(seq);
        }
        lost += accepted_of[i]
            .iter()
            .zip(&shown)
            .filter(|(a, s)| **a && !**s)
            .count() as u64;
        lat.extend_from_slice(&o.latencies);
        dups += o.dups;
        unmarked += o.unmarked;
        acks += o.acks;
        resent += o.resent;
        limited += o.rate_limited;
        for (k, v) in &o.errors {
            for _ in 0..*v {
                errors.add(k.clone());
            }
        }
        if let Some(e) = &o.end {
            early += 1;
            *endings.entry(e.clone()).or_default() += 1;
        }
    }
    let shown_total: usize = outs.iter().map(|o| o.shown.len()).sum();
    let latency = latency_summary(&lat);
    let publish_ms = latency_summary(
        &sent
            .iter()
            .map(|s| s.answered_ns.saturating_sub(s.sent_ns))
            .collect::<Vec<_>>(),
    );
    let lag = latency_summary(&sent.iter().map(|s| s.lag_ns).collect::<Vec<_>>());
    let secs = span.as_secs_f64();
    let ok = complete
        && lost == 0
        && dups == 0
        && unexpected == 0
        && out_of_order == 0
        && unmarked == 0
        && early == 0
        && other == 0
        && full == 0
        && errors.total() == 0;
    errors.print("overlay");
    println!(
        "shown {shown_total} of {accepted} accepted ({lost} lost, {dups} twice, {out_of_order} out of order); publish→shown {}",
        fmt_latency(&latency)
    );
    println!(
        "publish call {}; schedule lag {}",
        fmt_latency(&publish_ms),
        fmt_latency(&lag)
    );
    print_cpu(&cpu, secs, accepted);
    Ok(json!({
        "mode": "alerts",
        "scenario": "throughput",
        "ok": ok,
        "instances": targets.len(),
        "channels": n,
        "overlays": n,
        "seconds": a.seconds,
        "rate": a.rate,
        "publishers": p_count,
        "sent": sent.len(),
        "accepted": accepted,
        "rejected_429": full,
        "statuses": statuses,
        "shown": shown_total,
        "complete": complete,
        "lost": lost,
        "duplicated": dups,
        "out_of_order": out_of_order,
        "shown_not_accepted": unexpected,
        "unmarked": unmarked,
        "closed_early": early,
        "endings": endings,
        "errors": errors.to_json(),
        "acks": acks,
        "acks_resent": resent,
        "acks_rate_limited": limited,
        "latency_ms": latency,
        "publish_call_ms": publish_ms,
        "schedule_lag_ms": lag,
        "publish_span_ms": round2(publish_span.as_secs_f64() * 1000.0),
        "span_ms": round2(secs * 1000.0),
        "throughput": {"value": round2(shown_total as f64 / secs.max(1e-9)), "unit": "alerts shown/s"},
        "server_cpu_s": cpu.server.map(round2),
        "server_cpu_util": cpu.server.map(|c| round2(c / secs.max(1e-9))),
        "server_cpu_us_per_op": cpu.server.and_then(|c| per_op(c, accepted)),
        "op": "alert",
        "redis_cpu_s": cpu.redis.map(round2),
        "redis_cpu_util": cpu.redis.map(|c| round2(c / secs.max(1e-9))),
        "loadgen_cpu_util": cpu.me.map(|c| round2(c / secs.max(1e-9))),
    }))
}

fn per_op(cpu_s: f64, ops: usize) -> Option<f64> {
    (ops > 0).then(|| round2(cpu_s * 1e6 / ops as f64))
}

fn print_cpu(cpu: &Cpu, secs: f64, alerts: usize) {
    if let Some(c) = cpu.server {
        println!(
            "server CPU {c:.3} s over {secs:.3} s ({:.0} %), {:.1} µs per accepted alert",
            c / secs * 100.0,
            c * 1e6 / alerts.max(1) as f64
        );
    }
    if let Some(c) = cpu.redis {
        println!("Redis CPU {c:.3} s ({:.0} %)", c / secs * 100.0);
    }
}

async fn burst(a: &AlertsArgs, targets: &[Target]) -> Result<Value> {
    let total = a.alerts;
    let k = a.overlays.max(1);
    if total == 0 {
        bail!("--alerts must be at least 1");
    }
    let key = fetch_keys(
        &targets[0],
        std::slice::from_ref(&a.channel),
        &a.admin_token,
    )
    .await?
    .remove(0);
    let plan = (0..k)
        .map(|j| {
            (
                targets[(j + 1) % targets.len()].clone(),
                a.channel.clone(),
                key.clone(),
            )
        })
        .collect();
    let sockets = open_overlays(
        plan,
        a.connect_concurrency,
        Duration::from_secs_f64(a.connect_timeout),
    )
    .await?;
    println!(
        "{k} overlay(s) open on {}; {total} alerts at once, {} in flight",
        a.channel, a.concurrency
    );
    let shared = Arc::new(Shared {
        shown: AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let overlays: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(j, ws)| {
            let rule = AckRule {
                index: j,
                group: k,
                limit: a.ack_limit,
            };
            tokio::spawn(overlay(ws, rule, total, shared.clone(), stop_rx.clone()))
        })
        .collect();

    let cpu_before = Cpu::now(a);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = now_ns();
    let start = Instant::now();
    let mut pubs = Vec::new();
    for _ in 0..a.concurrency.clamp(1, total) {
        let (target, token, channel, next) = (
            targets[0].clone(),
            a.publish_token.clone(),
            a.channel.clone(),
            next.clone(),
        );
        pubs.push(tokio::spawn(async move {
            let mut conn = rawhttp::Conn::new(target.addr);
            let mut out = Vec::new();
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= total {
                    break;
                }
                let sent_ns = now_ns();
                let req = donation(&target.host, &channel, &token, seq);
                let status = conn.roundtrip(&req).await.unwrap_or(0);
                out.push(Sent {
                    channel: 0,
                    seq: seq as u32,
                    status,
                    sent_ns,
                    answered_ns: now_ns(),
                    lag_ns: 0,
                });
            }
            out
        }));
    }
    let mut sent = Vec::with_capacity(total);
    for h in pubs {
        sent.extend(h.await.map_err(|e| anyhow!("publisher task: {e}"))?);
    }
    let publish_span = start.elapsed();
    let (statuses, accepted, full, other) = statuses_json(&sent);
    println!(
        "published {} alerts in {:.3} s: statuses {statuses}",
        sent.len(),
        publish_span.as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs_f64(a.drain_timeout);
    let complete = wait_until(deadline, || {
        shared.shown.load(Ordering::Relaxed) >= accepted * k
    })
    .await;
    let span = start.elapsed();
    let cpu = Cpu::now(a).since(&cpu_before);
    let _ = stop_tx.send(true);
    let mut outs = Vec::with_capacity(k);
    for h in overlays {
        outs.push(h.await.unwrap_or_default());
    }

    let mut by_seq: Vec<Option<Sent>> = vec![None; total];
    for s in &sent {
        by_seq[s.seq as usize] = Some(*s);
    }
    let accepted_seq = |seq: u32| by_seq[seq as usize].is_some_and(|s| s.status == 202);
    let (mut lost, mut unexpected, mut out_of_order, mut dups, mut unmarked) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut acks, mut resent, mut early, mut limited) = (0u64, 0u64, 0u64, 0u64);
    let mut lat = Vec::new();
    let mut last_shown_ns = 0u64;
    let mut first_shown_ns = u64::MAX;
    let mut errors = Errors::default();
    let mut endings: BTreeMap<String, u64> = BTreeMap::new();
    for o in &outs {
        let mut shown = vec![false; total];
        // In order: no alert shown after one whose request started after its own 202.
        let mut max_sent_before = 0u64;
        for &(seq, at) in &o.shown {
            shown[seq as usize] = true;
            if !accepted_seq(seq) {
                unexpected += 1;
            }
            if let Some(s) = by_seq[seq as usize] {
                if s.answered_ns < max_sent_before {
                    out_of_order += 1;
                }
                max_sent_before = max_sent_before.max(s.sent_ns);
            }
            last_shown_ns = last_shown_ns.max(at);
            first_shown_ns = first_shown_ns.min(at);
        }
        lost += (0..total as u32)
            .filter(|&s| accepted_seq(s) && !shown[s as usize])
            .count() as u64;
        lat.extend_from_slice(&o.latencies);
        dups += o.dups;
        unmarked += o.unmarked;
        acks += o.acks;
        resent += o.resent;
        limited += o.rate_limited;
        for (k, v) in &o.errors {
            for _ in 0..*v {
                errors.add(k.clone());
            }
        }
        if let Some(e) = &o.end {
            early += 1;
            *endings.entry(e.clone()).or_default() += 1;
        }
    }
    let shown_total: usize = outs.iter().map(|o| o.shown.len()).sum();
    let latency = latency_summary(&lat);
    let publish_ms = latency_summary(
        &sent
            .iter()
            .map(|s| s.answered_ns.saturating_sub(s.sent_ns))
            .collect::<Vec<_>>(),
    );
    let secs = span.as_secs_f64();
    let last_shown_ms =
        (last_shown_ns > 0).then(|| round2(last_shown_ns.saturating_sub(t0) as f64 / 1e6));
    let drain_s = if first_shown_ns < last_shown_ns {
        (last_shown_ns - first_shown_ns) as f64 / 1e9
    } else {
        0.0
    };
    let shown_per_s = (drain_s > 0.0).then(|| round2(accepted.saturating_sub(1) as f64 / drain_s));
    let ok = complete
        && lost == 0
        && dups == 0
        && unexpected == 0
        && out_of_order == 0
        && unmarked == 0
        && early == 0
        && other == 0
        && errors.total() == 0;
    errors.print("overlay");
    println!(
        "{accepted} accepted, {full} refused with 429; shown {shown_total} (over {k} overlay(s)): {lost} lost, {dups} twice, {out_of_order} out of order"
    );
    println!(
        "last shown {} ms after the first POST; {} alerts shown/s; publish→shown {}",
        last_shown_ms
            .map(|v| format!("{v:.0}"))
            .unwrap_or_else(|| "–".into()),
        shown_per_s
            .map(|v| format!("{v:.1}"))
            .unwrap_or_else(|| "–".into()),
        fmt_latency(&latency)
    );
    print_cpu(&cpu, secs, accepted);
    Ok(json!({
        "mode": "alerts",
        "scenario": "burst",
        "ok": ok,
        "instances": targets.len(),
        "channels": 1,
        "overlays": k,
        "alerts": total,
        "concurrency": a.concurrency,
        "sent": sent.len(),
        "accepted": accepted,
        "rejected_429": full,
        "statuses": statuses,
        "shown": shown_total,
        "complete": complete,
        "lost": lost,
        "duplicated": dups,
        "out_of_order": out_of_order,
        "shown_not_accepted": unexpected,
        "unmarked": unmarked,
        "closed_early": early,
        "endings": endings,
        "errors": errors.to_json(),
        "acks": acks,
        "acks_resent": resent,
        "acks_rate_limited": limited,
        "latency_ms": latency,
        "publish_call_ms": publish_ms,
        "publish_span_ms": round2(publish_span.as_secs_f64() * 1000.0),
        "last_shown_ms": last_shown_ms,
        "shown_per_sec": shown_per_s,
        "span_ms": round2(secs * 1000.0),
        "throughput": {"value": shown_per_s, "unit": "alerts shown/s"},
        "server_cpu_s": cpu.server.map(round2),
        "server_cpu_util": cpu.server.map(|c| round2(c / secs.max(1e-9))),
        "server_cpu_us_per_op": cpu.server.and_then(|c| per_op(c, accepted)),
        "op": "alert",
        "redis_cpu_s": cpu.redis.map(round2),
        "redis_cpu_util": cpu.redis.map(|c| round2(c / secs.max(1e-9))),
        "loadgen_cpu_util": cpu.me.map(|c| round2(c / secs.max(1e-9))),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_id_come_out_of_an_alert_frame() {
        let frame = r#"{"op":"alert","alert":{"id":"abc123","channel":"c","kind":"donation","text":"benchdonor donated 1.00 USD: bench_seq=42 bench_ns=1700000000000000000","message":"bench_seq=42 bench_ns=1700000000000000000"}}"#;
        assert_eq!(num_after(frame, SEQ_MARK), Some(42));
        assert_eq!(num_after(frame, NS_MARK), Some(1_700_000_000_000_000_000));
        assert_eq!(alert_id(frame).as_deref(), Some("abc123"));
        assert_eq!(alert_id(r#"{"op":"welcome"}"#), None);
    }

    #[test]
    fn statuses_are_counted_by_kind() {
        let s = |status| Sent {
            channel: 0,
            seq: 0,
            status,
            sent_ns: 0,
            answered_ns: 0,
            lag_ns: 0,
        };
        let (by, accepted, full, other) = statuses_json(&[s(202), s(202), s(429), s(0), s(500)]);
        assert_eq!((accepted, full, other), (2, 1, 2));
        assert_eq!(by["202"], 2);
        assert_eq!(by["error"], 1);
    }
}
