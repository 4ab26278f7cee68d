//! `ingest`: N signed, unique EventSub notifications sent to /api/callback.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{
    Dialer, Errors, Target, WsClient, cpu_seconds, fmt_latency, http_client, latency_summary,
    num_after, raise_nofile, round2, sign_in,
};
use crate::rawhttp;

#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Notifications to send.
    #[arg(long, default_value_t = 20_000)]
    pub count: usize,
    /// Concurrent senders (one HTTP connection each).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// The server's EVENTSUB_SECRET.
    #[arg(long, env = "EVENTSUB_SECRET")]
    pub secret: String,
    /// broadcaster_user_login of every notification.
    #[arg(long, env = "BENCH_CHANNEL", default_value = "benchchannel")]
    pub channel: String,
    /// Do not sign in and watch the channel over /ws to count what was published.
    #[arg(long)]
    pub no_watch: bool,
    /// Seconds to wait for the watcher to see every accepted notification.
    #[arg(long, default_value_t = 10.0)]
    pub drain_timeout: f64,
    /// Server PID: reports the server CPU time used while sending.
    #[arg(long)]
    pub pid: Option<u32>,
    /// HTTP client: `raw` (pre-serialized requests on keep-alive connections, cheapest)
    /// or `reqwest`.
    #[arg(long, value_enum, default_value_t = Client::Raw)]
    pub client: Client,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Raw,
    Reqwest,
}

const LOGIN_PREFIX: &str = "ingestfollower";

struct Prepared {
    /// The whole request, serialized, for the raw client.
    raw: Vec<u8>,
    id: HeaderValue,
    timestamp: HeaderValue,
    signature: HeaderValue,
    body: Bytes,
}

fn prepare(secret: &str, channel: &str, count: usize, host: &str) -> Result<Vec<Prepared>> {
    let sub_id = uuid::Uuid::new_v4().to_string();
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let id = uuid::Uuid::new_v4().to_string();
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let body = json!({
            "subscription": {
                "id": sub_id,
                "status": "enabled",
                "type": "channel.follow",
                "version": "2",
                "condition": {"broadcaster_user_id": "1337", "moderator_user_id": "1337"},
                "transport": {"method": "webhook", "callback": "https://localhost/api/callback"},
                "created_at": created,
                "cost": 0
            },
            "event": {
                "user_id": (100_000_000 + i).to_string(),
                "user_login": format!("{LOGIN_PREFIX}{i}"),
                "user_name": format!("IngestFollower{i}"),
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
        let raw = rawhttp::request(
            "POST",
            host,
            "/api/callback",
            &[
                ("Content-Type", "application/json"),
                ("Twitch-Eventsub-Message-Id", &id),
                ("Twitch-Eventsub-Message-Timestamp", &ts),
                ("Twitch-Eventsub-Message-Signature", &sig),
                ("Twitch-Eventsub-Message-Type", "notification"),
                ("Twitch-Eventsub-Subscription-Type", "channel.follow"),
                ("Twitch-Eventsub-Subscription-Version", "2"),
            ],
            body.as_bytes(),
        );
        out.push(Prepared {
            raw,
            id: HeaderValue::from_str(&id)?,
            timestamp: HeaderValue::from_str(&ts)?,
            signature: HeaderValue::from_str(&sig)?,
            body: Bytes::from(body),
        });
    }
    Ok(out)
}

struct Names {
    id: HeaderName,
    ts: HeaderName,
    sig: HeaderName,
    kind: HeaderName,
    sub: HeaderName,
    ver: HeaderName,
}

impl Names {
    fn new() -> Self {
        Self {
            id: HeaderName::from_static("twitch-eventsub-message-id"),
            ts: HeaderName::from_static("twitch-eventsub-message-timestamp"),
            sig: HeaderName::from_static("twitch-eventsub-message-signature"),
            kind: HeaderName::from_static("twitch-eventsub-message-type"),
            sub: HeaderName::from_static("twitch-eventsub-subscription-type"),
            ver: HeaderName::from_static("twitch-eventsub-subscription-version"),
        }
    }
}

async fn reqwest_send(client: &reqwest::Client, url: &str, p: &Prepared, n: &Names) -> Result<u16> {
    let resp = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(&n.id, p.id.clone())
        .header(&n.ts, p.timestamp.clone())
        .header(&n.sig, p.signature.clone())
        .header(&n.kind, HeaderValue::from_static("notification"))
        .header(&n.sub, HeaderValue::from_static("channel.follow"))
        .header(&n.ver, HeaderValue::from_static("2"))
        .body(p.body.clone())
        .send()
        .await?;
    let status = resp.status().as_u16();
    let _ = resp.bytes().await;
    Ok(status)
}

struct WorkerOut {
    statuses: BTreeMap<u16, u64>,
    errors: Errors,
    latencies: Vec<u64>,
    accepted: Vec<usize>,
}

/// Watches the channel and records which followers' notifications were published.
struct Watcher {
    unique: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<(Vec<bool>, u64, u64, u64, String)>,
}

async fn start_watcher(
    target: &Target,
    client: &reqwest::Client,
    channel: &str,
    count: usize,
) -> Result<Watcher> {
    let cookie = sign_in(client, &target.base, "ingestwatcher").await?;
    let dialer = Dialer::new(target.clone(), 1, 1, 64 * 1024, WsClient::Tungstenite);
    let mut ws = tokio::time::timeout(dialer.timeout, dialer.open_tungstenite(0, &cookie, channel))
        .await
        .map_err(|_| anyhow::anyhow!("watcher timed out subscribing"))??;
    let unique = Arc::new(AtomicU64::new(0));
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let u = unique.clone();
    let key = format!("\"user_login\":\"{LOGIN_PREFIX}");
    let handle = tokio::spawn(async move {
        let mut seen = vec![false; count];
        let (mut dups, mut unparsed, mut other) = (0u64, 0u64, 0u64);
        let end;
        loop {
            let msg = tokio::select! {
                biased;
                _ = stop_rx.changed() => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    end = "open".to_string();
                    break;
                }
                m = ws.next() => m,
            };
            let text = match msg {
                None => {
                    end = "eof".to_string();
                    break;
                }
                Some(Err(e)) => {
                    end = format!("error: {e}");
                    break;
                }
                Some(Ok(Message::Close(f))) => {
                    end = format!("close_{}", f.map(|f| u16::from(f.code)).unwrap_or(0));
                    break;
                }
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(_)) => continue,
            };
            let text = text.as_str();
            if !text.contains("\"event\"") {
                other += 1;
                continue;
            }
            match num_after(text, &key) {
                Some(i) if (i as usize) < count => {
                    if seen[i as usize] {
                        dups += 1;
                    } else {
                        seen[i as usize] = true;
                        u.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => unparsed += 1,
            }
        }
        (seen, dups, unparsed, other, end)
    });
    Ok(Watcher {
        unique,
        stop: stop_tx,
        handle,
    })
}

/// `eventsub_bridge_messages_published_total` from `/metrics`, when the server has it.
async fn published_total(client: &reqwest::Client, base: &str) -> Option<u64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("eventsub_bridge_messages_published_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

pub async fn run(a: IngestArgs) -> Result<serde_json::Value> {
    let nofile = raise_nofile();
    if a.count == 0 || a.concurrency == 0 {
        bail!("--count and --concurrency must be at least 1");
    }
    let target = Target::resolve(&a.url).await?;
    let client = http_client(a.concurrency.max(8))?;
    println!(
        "ingest: {} channel.follow notifications at concurrency {} for channel {} ({:?} client, nofile {nofile})",
        a.count, a.concurrency, a.channel, a.client
    );

    let built = Instant::now();
    let prepared = Arc::new(prepare(&a.secret, &a.channel, a.count, &target.host)?);
    println!(
        "signed {} notifications in {:.3} s (before timing)",
        a.count,
        built.elapsed().as_secs_f64()
    );

    let watcher = if a.no_watch {
        None
    } else {
        match start_watcher(&target, &client, &a.channel, a.count).await {
            Ok(w) => Some(w),
            Err(e) => {
                println!("warning: no watcher, loss is not checked: {e:#}");
                None
            }
        }
    };

    let url = format!("{}/api/callback", target.base);
    let next = Arc::new(AtomicUsize::new(0));
    let published_before = published_total(&client, &target.base).await;
    let cpu_before = a.pid.and_then(cpu_seconds);
    let self_cpu_before = cpu_seconds(std::process::id());
    let start = Instant::now();
    let mut handles = Vec::with_capacity(a.concurrency);
    for _ in 0..a.concurrency {
        let client = client.clone();
        let prepared = prepared.clone();
        let next = next.clone();
        let url = url.clone();
        let addr = target.addr;
        let kind = a.client;
        handles.push(tokio::spawn(async move {
            let mut out = WorkerOut {
                statuses: BTreeMap::new(),
                errors: Errors::default(),
                latencies: Vec::new(),
                accepted: Vec::new(),
            };
            let names = Names::new();
            let mut conn = rawhttp::Conn::new(addr);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = prepared.get(i) else { break };
                let t = Instant::now();
                let r = if kind == Client::Raw {
                    conn.roundtrip(&p.raw).await
                } else {
                    reqwest_send(&client, &url, p, &names).await
                };
                out.latencies.push(t.elapsed().as_nanos() as u64);
                match r {
                    Ok(status) => {
                        *out.statuses.entry(status).or_insert(0) += 1;
                        if (200..300).contains(&status) {
                            out.accepted.push(i);
                        }
                    }
                    Err(e) => out.errors.add(format!("{e:#}")),
                }
            }
            out
        }));
    }
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut errors = Errors::default();
    let mut lat = Vec::with_capacity(a.count);
    let mut accepted = vec![false; a.count];
    for h in handles {
        match h.await {
            Ok(w) => {
                for (k, v) in w.statuses {
                    *statuses.entry(k).or_insert(0) += v;
                }
                errors.merge(&w.errors);
                lat.extend_from_slice(&w.latencies);
                for i in w.accepted {
                    accepted[i] = true;
                }
            }
            Err(e) => errors.add(format!("worker task: {e}")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_after = a.pid.and_then(cpu_seconds);
    let self_util = match (self_cpu_before, cpu_seconds(std::process::id())) {
        (Some(b), Some(a)) => Some((a - b) / secs),
        _ => None,
    };
    let oldest_age = built.elapsed().as_secs_f64();
    let accepted_count = accepted.iter().filter(|x| **x).count() as u64;
    let rps = a.count as f64 / secs;
    let latency = latency_summary(&lat);
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    let cpu_us_per_request = server_cpu.map(|c| c * 1e6 / a.count as f64);

    println!(
        "sent {} in {secs:.3} s = {rps:.0} requests/s; statuses {statuses:?}",
        a.count
    );
    println!("latency: {}", fmt_latency(&latency));
    errors.print("request error");
    if oldest_age > 540.0 {
        println!("warning: the oldest timestamp was {oldest_age:.0} s old at the end");
    }
    if let (Some(c), Some(per)) = (server_cpu, cpu_us_per_request) {
        println!("server CPU while sending: {c:.2} s = {per:.2} us per request");
    }
    if let Some(u) = self_util {
        println!(
            "load generator CPU while sending: {:.0}% of one core",
            u * 100.0
        );
    }

    // Loss check 1: the server's own count of published messages (a fresh server has
    // published nothing else).
    let mut published: Option<u64> = None;
    if let Some(before) = published_before {
        let deadline = Instant::now() + Duration::from_secs_f64(a.drain_timeout);
        loop {
            let now = published_total(&client, &target.base).await;
            published = now.map(|n| n.saturating_sub(before));
            if published.is_none_or(|p| p >= accepted_count) || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let lost = published.map(|p| accepted_count.saturating_sub(p));
    match published {
        Some(p) => println!(
            "server metrics: {p} messages published for {accepted_count} accepted notifications, lost {}",
            accepted_count.saturating_sub(p)
        ),
        None => println!(
            "server metrics: no eventsub_bridge_messages_published_total, loss not counted there"
        ),
    }

    // Loss check 2: a viewer subscribed to the channel.
    let mut watch_json = serde_json::Value::Null;
    let mut watch_missed = 0u64;
    if let Some(w) = watcher {
        let deadline = Instant::now() + Duration::from_secs_f64(a.drain_timeout);
        while w.unique.load(Ordering::Relaxed) < accepted_count
            && !w.handle.is_finished()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = w.stop.send(true);
        match tokio::time::timeout(Duration::from_secs(10), w.handle).await {
            Ok(Ok((seen, dups, unparsed, other, end))) => {
                let received = seen.iter().filter(|x| **x).count() as u64;
                let missing = accepted
                    .iter()
                    .zip(&seen)
                    .filter(|(acc, s)| **acc && !**s)
                    .count() as u64;
                watch_missed = missing + dups;
                println!(
                    "watcher viewer: received {received} of {accepted_count} accepted, missed {missing}, duplicated {dups}, unparsed {unparsed}, ending {end}"
                );
                watch_json = json!({
                    "received": received,
                    "missed": missing,
                    "duplicated": dups,
                    "unparsed": unparsed,
                    "other_frames": other,
                    "ending": end,
                });
            }
            Ok(Err(e)) => println!("watcher task failed: {e}"),
            Err(_) => println!("watcher did not stop"),
        }
    }

    let non_2xx: u64 = statuses
        .iter()
        .filter(|(k, _)| !(200..300).contains(*k))
        .map(|(_, v)| v)
        .sum();
    let ok = non_2xx == 0 && errors.total() == 0 && lost.unwrap_or(0) == 0 && watch_missed == 0;
    Ok(json!({
        "mode": "ingest",
        "ok": ok,
        "count": a.count,
        "concurrency": a.concurrency,
        "client": format!("{:?}", a.client).to_lowercase(),
        "channel": a.channel,
        "secs": secs,
        "requests_per_sec": rps.round(),
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "accepted": accepted_count,
        "non_2xx": non_2xx,
        "errors": errors.to_json(),
        "error_count": errors.total(),
        "latency_ms": latency,
        "published": published,
        "lost": lost,
        "watch": watch_json,
        "server_cpu_secs": server_cpu,
        "server_cpu_us_per_request": cpu_us_per_request.map(round2),
        "loadgen_cpu_util": self_util.map(round2),
        "server_cpu_util": server_cpu.map(|c| round2(c / secs)),
    }))
}
