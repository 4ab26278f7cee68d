//! `fanout`: N subscribed viewers, M published messages, end-to-end latency.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::common::{
    Dialer, Errors, Target, WsClient, cpu_seconds, fmt_latency, http_client, latency_summary,
    now_ns, raise_nofile, round2, rss_bytes, sign_in_many,
};
use crate::slow::SlowViewers;
use crate::viewers::{Fleet, Instance};

#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    /// Server base URL. Repeat it to spread the viewers round-robin over several instances
    /// (Redis mode: viewer i connects to URL number i mod N); each instance signs in its
    /// own users.
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub urls: Vec<String>,
    /// Where POST /api/publish goes (default: the first --url).
    #[arg(long, value_name = "URL")]
    pub publish_url: Option<String>,
    /// Number of subscribed viewers.
    #[arg(long, default_value_t = 1000)]
    pub viewers: usize,
    /// Number of messages to publish.
    #[arg(long, default_value_t = 200)]
    pub messages: usize,
    /// Approximate size of each publish request body in bytes (padded with `pad`).
    #[arg(long, default_value_t = 256)]
    pub bytes: usize,
    /// Messages per second; 0 publishes flat out.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Bearer token for POST /api/publish (the server's PUBLISH_TOKEN).
    #[arg(long, env = "PUBLISH_TOKEN")]
    pub publish_token: String,
    /// Channel every viewer subscribes to and every message goes to (with `--channels`
    /// above 1, the prefix of the channels' names: `{channel}_{k}`).
    #[arg(long, env = "BENCH_CHANNEL", default_value = "benchchannel")]
    pub channel: String,
    /// Channels to spread viewers and messages over: viewer i watches channel i mod N and
    /// message s goes to channel s mod N (so each message reaches viewers / N viewers).
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Concurrent publishers (HTTP connections) when flat out; the in-flight cap when paced.
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
    /// Viewers sharing one signed-in user (one sign-in per this many viewers).
    #[arg(long, default_value_t = 100)]
    pub viewers_per_user: usize,
    /// Viewer connections opened at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Loopback source addresses to spread viewers over (0: one per 1000 viewers).
    #[arg(long, default_value_t = 0)]
    pub sources: usize,
    /// WebSocket client of the viewers: `raw` (minimal, cheapest) or `tungstenite`.
    #[arg(long, value_enum, default_value_t = WsClient::Raw)]
    pub ws_client: WsClient,
    /// WebSocket read buffer per viewer, bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub read_buffer: usize,
    /// Seconds to wait for deliveries after the last publish answered.
    #[arg(long, default_value_t = 10.0)]
    pub drain_timeout: f64,
    /// Seconds allowed for all viewers to connect and subscribe.
    #[arg(long, default_value_t = 180.0)]
    pub connect_timeout: f64,
    /// Server PID: reports the server CPU time used between first publish and drain.
    /// Repeat it for several instances (in --url order): the CPU time is summed, and
    /// reported per instance too.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// PID of the Redis server (Redis mode): reports its CPU time over the same interval.
    #[arg(long, value_name = "PID", env = "BENCH_REDIS_PID")]
    pub redis_pid: Option<u32>,
    /// Extra viewers that subscribe like the others and then never read their socket again
    /// (the connection stays open and the kernel buffers fill). Not counted in deliveries,
    /// latency or loss; how they ended (e.g. close_4008) is reported separately.
    #[arg(long, default_value_t = 0)]
    pub slow_viewers: usize,
}

/// CPU seconds of every process in `pids`, or `None` when one cannot be read.
fn cpu_each(pids: &[u32]) -> Option<Vec<f64>> {
    pids.iter().map(|&p| cpu_seconds(p)).collect()
}

/// Per-instance totals of the viewers that connected to one instance.
#[derive(Default)]
struct PerInstance {
    viewers: u64,
    connected: u64,
    expected: u64,
    received: u64,
    lost: u64,
    duplicated: u64,
    closed_early: u64,
    latency: Option<hdrhistogram::Histogram<u64>>,
}

struct PublishOutcome {
    accepted: Vec<bool>,
    statuses: BTreeMap<u16, u64>,
    errors: Errors,
    latencies: Vec<u64>,
    first_ns: u64,
    secs: f64,
}

pub async fn run(a: FanoutArgs) -> Result<serde_json::Value> {
    let nofile = raise_nofile();
    if a.viewers == 0 {
        bail!("--viewers must be at least 1");
    }
    if a.urls.is_empty() {
        bail!("at least one --url is needed");
    }
    if !a.pids.is_empty() && a.pids.len() != a.urls.len() {
        bail!(
            "{} --pid for {} --url: give one PID per instance, in --url order",
            a.pids.len(),
            a.urls.len()
        );
    }
    if a.channels == 0 {
        bail!("--channels must be at least 1");
    }
    let channel_names = channel_names(&a.channel, a.channels);
    let n_inst = a.urls.len();
    let mut targets = Vec::with_capacity(n_inst);
    for url in &a.urls {
        targets.push(Target::resolve(url).await?);
    }
    let publish_target = match &a.publish_url {
        Some(url) => Target::resolve(url).await?,
        None => targets[0].clone(),
    };
    let client = http_client(a.publishers.max(8))?;
    // Viewer i goes to instance i mod N, so instance k gets ceil((viewers - k) / N).
    let viewers_of = |k: usize| (a.viewers + n_inst - 1 - k) / n_inst;
    let dialers: Vec<Dialer> = targets
        .iter()
        .enumerate()
        .map(|(k, t)| {
            Dialer::new(
                t.clone(),
                viewers_of(k),
                a.sources,
                a.read_buffer,
                a.ws_client,
            )
        })
        .collect();
    println!(
        "fanout: {} viewers x {} messages of ~{} B at {} on {} ({} source address(es) per instance, nofile {nofile})",
        a.viewers,
        a.messages,
        a.bytes,
        if a.rate > 0.0 {
            format!("{}/s", a.rate)
        } else {
            "flat out".to_string()
        },
        if a.channels == 1 {
            format!("channel {}", a.channel)
        } else {
            format!("{} channels {}_0..", a.channels, a.channel)
        },
        dialers[0].source_count()
    );
    if n_inst > 1 || a.publish_url.is_some() {
        for (k, t) in targets.iter().enumerate() {
            println!("  instance {k}: {} viewers on {}", viewers_of(k), t.base);
        }
        println!("  publishing through {}", publish_target.base);
    }

    // Every instance signs in its own users (distinct logins per instance), so that no
    // viewer relies on a session made elsewhere.
    let mut instances = Vec::with_capacity(n_inst);
    let mut signin_errors = Errors::default();
    for (k, dialer) in dialers.iter().enumerate() {
        let users = viewers_of(k).div_ceil(a.viewers_per_user.max(1));
        let prefix = if k == 0 {
            "viewer".to_string()
        } else {
            format!("viewer_i{k}_")
        };
        let (cookies, errors) = sign_in_many(&client, &dialer.target.base, &prefix, users).await;
        if n_inst > 1 {
            println!(
                "signed in {} of {users} users on instance {k}",
                cookies.len()
            );
        } else {
            println!("signed in {} of {users} users", cookies.len());
        }
        errors.print("sign-in error");
        signin_errors.merge(&errors);
        if cookies.is_empty() && users > 0 {
            bail!(
                "no user could sign in on {} (is the server in local mode?)",
                dialer.target.base
            );
        }
        instances.push(Instance {
            dialer: dialer.clone(),
            cookies: Arc::new(cookies),
        });
    }

    // The servers' memory before any viewer connects (after the sign-ins).
    let rss_before: Option<Vec<u64>> = a.pids.iter().map(|&p| rss_bytes(p).ok()).collect();
    let mut fleet = Fleet::spawn(
        &instances,
        &channel_names,
        a.viewers,
        a.messages,
        a.connect_concurrency,
    );
    let ready = fleet
        .wait_ready(Duration::from_secs_f64(a.connect_timeout))
        .await;
    println!(
        "subscribed {} of {} viewers in {:.2} s ({} failed)",
        ready.connected, a.viewers, ready.secs, ready.failed
    );
    ready.errors.print("connect error");
    if ready.connected == 0 {
        let _ = fleet.finish().await;
        bail!("no viewer could connect and subscribe");
    }
    let rss_subscribed: Option<Vec<u64>> = a.pids.iter().map(|&p| rss_bytes(p).ok()).collect();
    let bytes_per_connection = match (&rss_before, &rss_subscribed) {
        (Some(b), Some(s)) if !b.is_empty() => {
            let grown: i64 = s.iter().zip(b).map(|(s, b)| *s as i64 - *b as i64).sum();
            Some((grown as f64 / ready.connected as f64).round())
        }
        _ => None,
    };
    if let Some(per) = bytes_per_connection {
        println!(
            "server memory per subscribed viewer (RSS growth while they connected): {per:.0} bytes"
        );
    }
    // Opened after the measured viewers, so their connect time is not affected.
    let slow = if a.slow_viewers > 0 {
        let s = SlowViewers::open(&instances, &channel_names[0], a.slow_viewers, a.viewers).await;
        println!(
            "slow viewers: {} of {} subscribed; they never read again",
            s.connected(),
            s.requested
        );
        s.errors.print("slow viewer connect error");
        Some(s)
    } else {
        None
    };

    let cpu_before = cpu_each(&a.pids);
    let redis_cpu_before = a.redis_pid.and_then(cpu_seconds);
    let self_cpu_before = cpu_seconds(std::process::id());
    let measure_start = Instant::now();
    let publish = publish_all(&a, &channel_names, &client, &publish_target).await;
    let publish_end = Instant::now();
    let accepted_count = publish.accepted.iter().filter(|x| **x).count() as u64;
    println!(
        "published {} messages in {:.3} s: {} accepted, statuses {:?}",
        a.messages, publish.secs, accepted_count, publish.statuses
    );
    publish.errors.print("publish error");

    // Drain: until every connected viewer has every accepted message of its channel or
    // has gone away.
    let mut accepted_per_channel = vec![0u64; a.channels];
    for (seq, acc) in publish.accepted.iter().enumerate() {
        if *acc {
            accepted_per_channel[seq % a.channels] += 1;
        }
    }
    let target_total: u64 = ready
        .per_channel
        .iter()
        .zip(&accepted_per_channel)
        .map(|(viewers, acc)| viewers * acc)
        .sum();
    let drain_deadline = publish_end + Duration::from_secs_f64(a.drain_timeout);
    let progress = fleet.progress.clone();
    let mut drained = true;
    loop {
        let have =
            progress.unique.load(Ordering::Relaxed) + progress.given_up.load(Ordering::Relaxed);
        if have >= target_total {
            break;
        }
        if Instant::now() >= drain_deadline {
            drained = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drain_secs = publish_end.elapsed().as_secs_f64();
    let cpu_after = cpu_each(&a.pids);
    let redis_cpu_after = a.redis_pid.and_then(cpu_seconds);
    let self_cpu = match (self_cpu_before, cpu_seconds(std::process::id())) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    let measure_secs = measure_start.elapsed().as_secs_f64();
    let self_util = self_cpu.map(|c| c / measure_secs);
    let still_open = progress.open.load(Ordering::Relaxed);

    let (outs, task_errors) = fleet.finish().await;
    task_errors.print("viewer task error");
    // After the measurement: read what the slow viewers' sockets hold to see how they ended.
    let slow = match slow {
        Some(s) => Some(s.check().await),
        None => None,
    };
    if let Some(s) = &slow {
        println!(
            "slow viewers: {} of {} subscribed, {} closed by the server; endings {:?}; {} bytes unread in their sockets at drain end, then {} frames read from them",
            s.connected, s.requested, s.closed, s.endings, s.unread_bytes, s.frames_read_at_end
        );
    }

    // Aggregate.
    let mut lat = Vec::with_capacity((target_total as usize).min(50_000_000));
    let mut received_unique = 0u64;
    let mut received_accepted = 0u64;
    let mut dups = 0u64;
    let mut out_of_range = 0u64;
    let mut unparsed = 0u64;
    let mut other_frames = 0u64;
    let mut server_errors = 0u64;
    let mut bench_frames = 0u64;
    let mut bench_bytes = 0u64;
    let mut last_recv_ns = 0u64;
    let mut ends: BTreeMap<String, u64> = BTreeMap::new();
    let mut closed_early = 0u64;
    let mut viewers_with_loss = 0u64;
    let mut viewers_with_dups = 0u64;
    let mut expected = 0u64;
    let mut per: Vec<PerInstance> = (0..n_inst)
        .map(|k| PerInstance {
            viewers: viewers_of(k) as u64,
            latency: hdrhistogram::Histogram::new(3).ok(),
            ..PerInstance::default()
        })
        .collect();
    for o in &outs {
        if matches!(o.end, crate::viewers::End::NotConnected) {
            continue;
        }
        let mine = accepted_per_channel[o.share.channel];
        let pi = &mut per[o.instance.min(n_inst - 1)];
        pi.connected += 1;
        pi.expected += mine;
        pi.duplicated += o.dups;
        if o.end.early() {
            pi.closed_early += 1;
        }
        if let Some(h) = pi.latency.as_mut() {
            for &ns in &o.latencies {
                let _ = h.record(ns.max(1));
            }
        }
        *ends.entry(o.end.label()).or_insert(0) += 1;
        if o.end.early() {
            closed_early += 1;
        }
        expected += mine;
        let got = o
            .share
            .seqs()
            .filter(|&seq| publish.accepted[seq] && o.has(seq))
            .count() as u64;
        received_accepted += got;
        pi.received += got;
        pi.lost += mine - got;
        if got < mine {
            viewers_with_loss += 1;
        }
        if o.dups > 0 {
            viewers_with_dups += 1;
        }
        received_unique += o.unique;
        dups += o.dups;
        out_of_range += o.out_of_range;
        unparsed += o.unparsed;
        other_frames += o.other_frames;
        server_errors += o.server_errors;
        bench_frames += o.bench_frames;
        bench_bytes += o.bench_bytes;
        last_recv_ns = last_recv_ns.max(o.last_recv_ns);
        lat.extend_from_slice(&o.latencies);
    }
    let lost = expected.saturating_sub(received_accepted);
    let unexpected = received_unique - received_accepted;
    let span_secs = if last_recv_ns > publish.first_ns {
        (last_recv_ns - publish.first_ns) as f64 / 1e9
    } else {
        0.0
    };
    let deliveries_per_sec = if span_secs > 0.0 {
        received_unique as f64 / span_secs
    } else {
        0.0
    };
    let latency = latency_summary(&lat);
    let publish_latency = latency_summary(&publish.latencies);
    // Per instance, then summed: in Redis mode every instance is pinned to the same core,
    // so the sum is still "server CPU" on one core.
    let server_cpu_each: Option<Vec<f64>> = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) if !b.is_empty() => Some(a.iter().zip(&b).map(|(a, b)| a - b).collect()),
        _ => None,
    };
    let server_cpu = server_cpu_each.as_ref().map(|v| v.iter().sum::<f64>());
    let redis_cpu = match (redis_cpu_before, redis_cpu_after) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    let cpu_us_per_delivery = server_cpu
        .filter(|_| received_unique > 0)
        .map(|c| c * 1e6 / received_unique as f64);

    println!(
        "deliveries: {received_unique} distinct in {span_secs:.3} s = {:.0}/s (first publish -> last delivery)",
        deliveries_per_sec
    );
    println!(
        "latency (publish call start -> receipt): {}",
        fmt_latency(&latency)
    );
    println!("publish call latency: {}", fmt_latency(&publish_latency));
    println!(
        "expected {expected}, received {received_accepted}, lost {lost} ({viewers_with_loss} viewers), duplicated {dups} ({viewers_with_dups} viewers), unexpected {unexpected}, out of range {out_of_range}, unparsed {unparsed}"
    );
    println!(
        "viewers closed early: {closed_early}; endings {ends:?}; still open at drain end: {still_open}; drained: {drained} after {drain_secs:.3} s"
    );
    let avg_frame_bytes = bench_bytes.checked_div(bench_frames).unwrap_or(0);
    println!(
        "average event frame: {avg_frame_bytes} B; other frames: {other_frames}; server error frames: {server_errors}"
    );
    if let (Some(c), Some(per)) = (server_cpu, cpu_us_per_delivery) {
        println!(
            "server CPU during publish+drain: {c:.2} s = {per:.3} us per delivery ({:.0}% of one core)",
            c / measure_secs * 100.0
        );
    }
    if let Some(each) = server_cpu_each.as_ref().filter(|v| v.len() > 1) {
        let shown: Vec<String> = each.iter().map(|c| format!("{c:.2} s")).collect();
        println!("  server CPU per instance: {}", shown.join(", "));
    }
    if let Some(c) = redis_cpu {
        println!(
            "Redis CPU during publish+drain: {c:.2} s ({:.0}% of one core)",
            c / measure_secs * 100.0
        );
    }
    let instances_json: Vec<serde_json::Value> = per
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let lat = p
                .latency
                .as_ref()
                .map(crate::common::hist_summary)
                .unwrap_or(serde_json::Value::Null);
            if n_inst > 1 {
                println!(
                    "instance {k} ({}): {} of {} viewers, received {} of {}, lost {}, duplicated {}, closed early {}; latency {}",
                    targets[k].base,
                    p.connected,
                    p.viewers,
                    p.received,
                    p.expected,
                    p.lost,
                    p.duplicated,
                    p.closed_early,
                    fmt_latency(&lat)
                );
            }
            let cpu = server_cpu_each.as_ref().and_then(|v| v.get(k).copied());
            json!({
                "url": targets[k].base,
                "pid": a.pids.get(k),
                "viewers": p.viewers,
                "viewers_connected": p.connected,
                "expected": p.expected,
                "received": p.received,
                "lost": p.lost,
                "duplicated": p.duplicated,
                "closed_early": p.closed_early,
                "latency_ms": lat,
                "server_cpu_secs": cpu,
                "server_cpu_util": cpu.map(|c| round2(c / measure_secs)),
            })
        })
        .collect();
    if let (Some(c), Some(u)) = (self_cpu, self_util) {
        println!(
            "load generator CPU during publish+drain: {c:.2} s over {measure_secs:.2} s = {:.0}% of one core",
            u * 100.0
        );
    }

    let slow_failed = slow.as_ref().map_or(0, |s| s.failed);
    let ok = lost == 0 && dups == 0 && closed_early == 0 && ready.failed == 0 && slow_failed == 0;
    Ok(json!({
        "mode": "fanout",
        "ok": ok,
        "viewers": a.viewers,
        "messages": a.messages,
        "bytes": a.bytes,
        "rate": a.rate,
        "channel": a.channel,
        "channels": a.channels,
        "rss_before": rss_before.as_ref().map(|v| v.iter().sum::<u64>()),
        "rss_subscribed": rss_subscribed.as_ref().map(|v| v.iter().sum::<u64>()),
        "bytes_per_connection": bytes_per_connection,
        "urls": targets.iter().map(|t| t.base.as_str()).collect::<Vec<_>>(),
        "publish_url": publish_target.base,
        "instances": instances_json,
        "sources": dialers[0].source_count(),
        "signin_errors": signin_errors.total(),
        "viewers_connected": ready.connected,
        "viewers_failed": ready.failed,
        "connect_secs": round2(ready.secs),
        "connect_errors": ready.errors.to_json(),
        "published": a.messages,
        "publish_accepted": accepted_count,
        "publish_statuses": publish.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "publish_errors": publish.errors.to_json(),
        "publish_secs": publish.secs,
        "publish_latency_ms": publish_latency,
        "expected": expected,
        "received": received_accepted,
        "received_unique": received_unique,
        "lost": lost,
        "viewers_with_loss": viewers_with_loss,
        "duplicated": dups,
        "viewers_with_dups": viewers_with_dups,
        "unexpected": unexpected,
        "out_of_range": out_of_range,
        "unparsed": unparsed,
        "closed_early": closed_early,
        "endings": ends,
        "drained": drained,
        "drain_secs": drain_secs,
        "span_secs": span_secs,
        "deliveries_per_sec": deliveries_per_sec.round(),
        "latency_ms": latency,
        "avg_frame_bytes": avg_frame_bytes,
        "other_frames": other_frames,
        "server_error_frames": server_errors,
        "server_cpu_secs": server_cpu,
        "server_cpu_us_per_delivery": cpu_us_per_delivery.map(|x| (x * 1000.0).round() / 1000.0),
        "server_cpu_util": server_cpu.map(|c| round2(c / measure_secs)),
        "redis_cpu_secs": redis_cpu,
        "redis_cpu_util": redis_cpu.map(|c| round2(c / measure_secs)),
        "task_errors": task_errors.to_json(),
        "loadgen_cpu_secs": self_cpu,
        "loadgen_cpu_util": self_util.map(round2),
        "slow_viewers": a.slow_viewers,
        "slow_viewers_connected": slow.as_ref().map(|s| s.connected),
        "slow_viewers_failed": slow_failed,
        "slow_viewers_closed": slow.as_ref().map(|s| s.closed),
        "slow_endings": slow.as_ref().map(|s| s.endings.clone()),
        "slow_unread_bytes": slow.as_ref().map(|s| s.unread_bytes),
        "slow_frames_read_at_end": slow.as_ref().map(|s| s.frames_read_at_end),
    }))
}

/// The JSON body of message `seq`, padded so that the body is about `bytes` long.
fn body(channel: &str, seq: usize, sent_ns: u64, bytes: usize, pad: &str) -> String {
    // {"channel":"C","type":"bench","data":{"seq":S,"sent_ns":N,"pad":""}}
    let fixed = 65 + channel.len() + digits(seq as u64) + digits(sent_ns);
    let n = bytes.saturating_sub(fixed).min(pad.len());
    format!(
        r#"{{"channel":"{channel}","type":"bench","data":{{"seq":{seq},"sent_ns":{sent_ns},"pad":"{}"}}}}"#,
        &pad[..n]
    )
}

fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// The channels of a run: `channel` itself, or `{channel}_{k}` for k < `count`.
fn channel_names(channel: &str, count: usize) -> Vec<String> {
    if count <= 1 {
        vec![channel.to_string()]
    } else {
        (0..count).map(|k| format!("{channel}_{k}")).collect()
    }
}

struct Shared {
    url: String,
    bearer: String,
    /// Message `seq` goes to `channels[seq % channels.len()]`.
    channels: Vec<String>,
    bytes: usize,
    pad: String,
}

enum One {
    Status(u16, u64),
    Error(String, u64),
}

async fn publish_one(client: &reqwest::Client, s: &Shared, seq: usize) -> One {
    let sent = now_ns();
    let start = Instant::now();
    let channel = &s.channels[seq % s.channels.len()];
    let b = body(channel, seq, sent, s.bytes, &s.pad);
    let r = client
        .post(&s.url)
        .header(AUTHORIZATION, &s.bearer)
        .header(CONTENT_TYPE, "application/json")
        .body(b)
        .send()
        .await;
    match r {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let _ = resp.bytes().await;
            One::Status(status, start.elapsed().as_nanos() as u64)
        }
        Err(e) => One::Error(format!("{e:#}"), start.elapsed().as_nanos() as u64),
    }
}

async fn publish_all(
    a: &FanoutArgs,
    channels: &[String],
    client: &reqwest::Client,
    target: &Target,
) -> PublishOutcome {
    let shared = Arc::new(Shared {
        url: format!("{}/api/publish", target.base),
        bearer: format!("Bearer {}", a.publish_token),
        channels: channels.to_vec(),
        bytes: a.bytes,
        pad: "x".repeat(a.bytes),
    });
    let m = a.messages;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, One)>();
    let start = Instant::now();
    let first_ns = now_ns();
    if a.rate > 0.0 {
        // Paced: message i is started at start + i / rate, each in its own task, with at
        // most `publishers` in flight.
        let sem = Arc::new(Semaphore::new(a.publishers.max(1) * 4));
        let t0 = tokio::time::Instant::now();
        for seq in 0..m {
            let at = t0 + Duration::from_secs_f64(seq as f64 / a.rate);
            tokio::time::sleep_until(at).await;
            let Ok(permit) = sem.clone().acquire_owned().await else {
                break;
            };
            let client = client.clone();
            let shared = shared.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let r = publish_one(&client, &shared, seq).await;
                let _ = tx.send((seq, r));
                drop(permit);
            });
        }
    } else {
        let next = Arc::new(AtomicUsize::new(0));
        for _ in 0..a.publishers.max(1) {
            let client = client.clone();
            let shared = shared.clone();
            let tx = tx.clone();
            let next = next.clone();
            tokio::spawn(async move {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= m {
                        break;
                    }
                    let r = publish_one(&client, &shared, seq).await;
                    let _ = tx.send((seq, r));
                }
            });
        }
    }
    drop(tx);
    let mut out = PublishOutcome {
        accepted: vec![false; m],
        statuses: BTreeMap::new(),
        errors: Errors::default(),
        latencies: Vec::with_capacity(m),
        first_ns,
        secs: 0.0,
    };
    while let Some((seq, r)) = rx.recv().await {
        match r {
            One::Status(status, ns) => {
                *out.statuses.entry(status).or_insert(0) += 1;
                out.latencies.push(ns);
                if (200..300).contains(&status) {
                    out.accepted[seq] = true;
                }
            }
            One::Error(e, ns) => {
                out.latencies.push(ns);
                out.errors.add(e);
            }
        }
    }
    out.secs = start.elapsed().as_secs_f64();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_padded_to_size() {
        let pad = "x".repeat(1000);
        for seq in [0usize, 9, 10, 999, 123_456] {
            let b = body("benchchannel", seq, 1_763_884_800_000_000_000, 256, &pad);
            assert_eq!(b.len(), 256, "{b}");
            let v: serde_json::Value = serde_json::from_str(&b).unwrap();
            assert_eq!(v["data"]["seq"], seq);
        }
        // Too small to pad: no pad at all, still valid.
        let b = body("c", 1, 5, 10, &pad);
        assert!(serde_json::from_str::<serde_json::Value>(&b).is_ok());
    }
}
