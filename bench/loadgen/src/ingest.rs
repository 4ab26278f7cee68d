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
    Dialer, Errors, Target, cpu_seconds, fmt_latency, http_client, latency_summary, num_after,
    raise_nofile, round2, sign_in,
};

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
    #[arg(long, default_value = "benchchannel")]
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
}

const LOGIN_PREFIX: &str = "ingestfollower";

struct Prepared {
    id: HeaderValue,
    timestamp: HeaderValue,
    signature: HeaderValue,
    body: Bytes,
}

fn prepare(secret: &str, channel: &str, count: usize) -> Result<Vec<Prepared>> {
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
        out.push(Prepared {
            id: HeaderValue::from_str(&id)?,
            timestamp: HeaderValue::from_str(&ts)?,
            signature: HeaderValue::from_str(&sig)?,
            body: Bytes::from(body),
        });
    }
    Ok(out)
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
    let dialer = Dialer::new(target.clone(), 1, 1, 64 * 1024);
    let mut ws = dialer.open_viewer(0, &cookie, channel).await?;
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

pub async fn run(a: IngestArgs) -> Result<serde_json::Value> {
    let nofile = raise_nofile();
    if a.count == 0 || a.concurrency == 0 {
        bail!("--count and --concurrency must be at least 1");
    }
    let target = Target::resolve(&a.url).await?;
    let client = http_client(a.concurrency.max(8))?;
    println!(
        "ingest: {} channel.follow notifications at concurrency {} for channel {} (nofile {nofile})",
        a.count, a.concurrency, a.channel
    );

    let built = Instant::now();
    let prepared = Arc::new(prepare(&a.secret, &a.channel, a.count)?);
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
    let cpu_before = a.pid.and_then(cpu_seconds);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(a.concurrency);
    for _ in 0..a.concurrency {
        let client = client.clone();
        let prepared = prepared.clone();
        let next = next.clone();
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let mut out = WorkerOut {
                statuses: BTreeMap::new(),
                errors: Errors::default(),
                latencies: Vec::new(),
                accepted: Vec::new(),
            };
            let h_id = HeaderName::from_static("twitch-eventsub-message-id");
            let h_ts = HeaderName::from_static("twitch-eventsub-message-timestamp");
            let h_sig = HeaderName::from_static("twitch-eventsub-message-signature");
            let h_type = HeaderName::from_static("twitch-eventsub-message-type");
            let h_sub = HeaderName::from_static("twitch-eventsub-subscription-type");
            let h_ver = HeaderName::from_static("twitch-eventsub-subscription-version");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = prepared.get(i) else { break };
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header(CONTENT_TYPE, "application/json")
                    .header(&h_id, p.id.clone())
                    .header(&h_ts, p.timestamp.clone())
                    .header(&h_sig, p.signature.clone())
                    .header(&h_type, HeaderValue::from_static("notification"))
                    .header(&h_sub, HeaderValue::from_static("channel.follow"))
                    .header(&h_ver, HeaderValue::from_static("2"))
                    .body(p.body.clone())
                    .send()
                    .await;
                match r {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let _ = resp.bytes().await;
                        out.latencies.push(t.elapsed().as_nanos() as u64);
                        *out.statuses.entry(status).or_insert(0) += 1;
                        if (200..300).contains(&status) {
                            out.accepted.push(i);
                        }
                    }
                    Err(e) => {
                        out.latencies.push(t.elapsed().as_nanos() as u64);
                        out.errors.add(format!("{e:#}"));
                    }
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

    // Loss check through the watcher.
    let mut watch_json = serde_json::Value::Null;
    let mut lost: Option<u64> = None;
    if let Some(w) = watcher {
        let deadline = Instant::now() + Duration::from_secs_f64(a.drain_timeout);
        while w.unique.load(Ordering::Relaxed) < accepted_count && Instant::now() < deadline {
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
                lost = Some(missing);
                println!(
                    "watcher: received {received} of {accepted_count} accepted, lost {missing}, duplicated {dups}, unparsed {unparsed}, ending {end}"
                );
                watch_json = json!({
                    "received": received,
                    "lost": missing,
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
    let ok = non_2xx == 0 && errors.total() == 0 && lost.unwrap_or(0) == 0;
    Ok(json!({
        "mode": "ingest",
        "ok": ok,
        "count": a.count,
        "concurrency": a.concurrency,
        "channel": a.channel,
        "secs": secs,
        "requests_per_sec": rps.round(),
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "accepted": accepted_count,
        "non_2xx": non_2xx,
        "errors": errors.to_json(),
        "error_count": errors.total(),
        "latency_ms": latency,
        "lost": lost,
        "watch": watch_json,
        "server_cpu_secs": server_cpu,
        "server_cpu_us_per_request": cpu_us_per_request.map(round2),
    }))
}
