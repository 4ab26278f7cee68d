//! `room`: interactive rooms (SPEC §9, issue 11) under load, on `/websocket?room=`.
//!
//! - `--scenario chat`: N members subscribed to `chat`; one of them sends M chat
//!   messages at R/s, each carrying its send time; end-to-end latency, loss and
//!   duplicates per delivery, server CPU per delivery (compare with `fanout` of the
//!   same size on `/ws`).
//! - `--scenario votes`: N members, each its own signed-in viewer, subscribed to one
//!   poll; every member votes once, spread evenly over `--window` seconds. Time until
//!   every member holds the final tally, poll frames each received (coalescing: at most
//!   10 a second), server CPU.
//! - `--scenario counter`: N members subscribed to one counter; each adds `0.01`
//!   `--messages` times at `--rate` per second (below the 20-a-second rate limit). The
//!   final value must be exact (`N × M / 100`); time until every member holds it.
//!
//! With several `--url`s (Redis mode) member i connects to instance i mod N; each
//! instance signs in its own users.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};

use crate::common::{
    Errors, Target, cpu_seconds, fmt_latency, http_client, latency_summary, now_ns, num_after,
    raise_nofile, round2, sign_in_many,
};
use crate::rawws::RawWs;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Chat,
    Votes,
    Counter,
}

#[derive(Args, Debug, Clone)]
pub struct RoomArgs {
    /// What to measure.
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Server base URL; repeat it to spread members round-robin over instances.
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
    /// Room (channel) every member joins.
    #[arg(long, env = "BENCH_CHANNEL", default_value = "benchchannel")]
    pub channel: String,
    /// Members (room connections).
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// chat: messages sent; counter: increments per member.
    #[arg(long, default_value_t = 50)]
    pub messages: usize,
    /// chat: messages per second; counter: increments per member per second.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// votes: seconds over which the members' votes are spread.
    #[arg(long, default_value_t = 1.0)]
    pub window: f64,
    /// Members sharing one signed-in user (votes: always 1, one vote per viewer).
    #[arg(long, default_value_t = 50)]
    pub members_per_user: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Seconds allowed for everyone to connect and subscribe.
    #[arg(long, default_value_t = 180.0)]
    pub connect_timeout: f64,
    /// Seconds to wait, after the last frame was sent, for everyone to settle.
    #[arg(long, default_value_t = 15.0)]
    pub drain_timeout: f64,
}

const ANSWERS: usize = 4;

/// What every member task shares with the main task.
struct Shared {
    scenario: Scenario,
    /// The stats (votes) or value (counter) every member must end with.
    last: Value,
    /// Members that hold the final value.
    settled: AtomicUsize,
    /// Chat messages received, summed over members.
    received: AtomicUsize,
}

/// What one member saw.
#[derive(Default)]
struct Outcome {
    frames: u64,
    latencies: Vec<u64>,
    seen: Vec<bool>,
    dups: u64,
    settled_ns: Option<u64>,
    errors: BTreeMap<String, u64>,
    end: Option<String>,
}

/// One member's sends: `(at, frame)`, sorted by time.
type Plan = Vec<(Duration, String)>;

async fn open_member(target: &Target, cookie: &str, room: &str, subscribe: &str) -> Result<RawWs> {
    let stream = TcpStream::connect(target.addr).await.context("connect")?;
    stream.set_nodelay(true).context("nodelay")?;
    let path = format!("/websocket?room={room}");
    let mut ws = RawWs::handshake(stream, &target.host, &path, cookie, 64 * 1024).await?;
    ws.send_text(&json!({"type": "subscribe", "data": subscribe}).to_string())
        .await?;
    // Frames are handled in order: the pong means the subscription is in place.
    ws.send_text(r#"{"type":"ping"}"#).await?;
    wait_for_type(&mut ws, "pong").await?;
    Ok(ws)
}

async fn wait_for_type(ws: &mut RawWs, want: &str) -> Result<()> {
    loop {
        let mut found = false;
        let ctl = ws.process(|data| {
            if let Ok(v) = serde_json::from_slice::<Value>(data) {
                found = v["type"] == want;
            }
            !found
        })?;
        ws.answer(&ctl).await?;
        if let Some(code) = ctl.close {
            bail!("closed ({code:?}) while waiting for {want}");
        }
        if found {
            return Ok(());
        }
        if ws.fill().await? == 0 {
            bail!("connection ended while waiting for {want}");
        }
    }
}

/// Handles one frame a member received.
fn on_frame(data: &[u8], shared: &Shared, out: &mut Outcome, start_ns: u64) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        *out.errors.entry("unparsed frame".into()).or_default() += 1;
        return;
    };
    let ty = v["type"].as_str().unwrap_or("");
    match (shared.scenario, ty) {
        (Scenario::Chat, "chat") => {
            out.frames += 1;
            let text = v["data"]["message"].as_str().unwrap_or("");
            let (Some(seq), Some(sent)) = (num_after(text, "seq="), num_after(text, "ns=")) else {
                return;
            };
            let seq = seq as usize;
            if seq < out.seen.len() {
                if out.seen[seq] {
                    out.dups += 1;
                } else {
                    out.seen[seq] = true;
                    shared.received.fetch_add(1, Ordering::Relaxed);
                    out.latencies.push(now_ns().saturating_sub(sent));
                }
            }
        }
        (Scenario::Votes, "poll") | (Scenario::Counter, "counter") => {
            out.frames += 1;
            let current = if ty == "poll" {
                &v["data"]["stats"]
            } else {
                &v["data"]["value"]
            };
            if *current == shared.last && out.settled_ns.is_none() {
                out.settled_ns = Some(now_ns().saturating_sub(start_ns));
                shared.settled.fetch_add(1, Ordering::Relaxed);
            }
        }
        (_, "error") => {
            let code = v["data"]["code"].as_str().unwrap_or("?").to_owned();
            *out.errors
                .entry(format!("server error {code}"))
                .or_default() += 1;
        }
        _ => {}
    }
}

/// A member: sends its plan on time and reads until stopped.
async fn member(
    mut ws: RawWs,
    plan: Plan,
    shared: Arc<Shared>,
    start: Instant,
    start_ns: u64,
    chat_messages: usize,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut out = Outcome {
        seen: vec![false; chat_messages],
        ..Outcome::default()
    };
    let mut plan = plan.into_iter().peekable();
    loop {
        let next = plan.peek().map(|(at, _)| start + *at);
        tokio::select! {
            _ = stop.changed() => break,
            () = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some((_, frame)) = plan.next() {
                    let frame = frame.replace("{ns}", &now_ns().to_string());
                    if let Err(e) = ws.send_text(&frame).await {
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
                let ctl = match ws.process(|data| { on_frame(data, &shared, &mut out, start_ns); true }) {
                    Ok(c) => c,
                    Err(e) => { out.end = Some(format!("protocol: {e}")); break; }
                };
                let _ = ws.answer(&ctl).await;
                if let Some(code) = ctl.close {
                    out.end = Some(format!("close_{}", code.unwrap_or(0)));
                    break;
                }
            }
        }
    }
    out
}

/// `0.01 × n` written as the server writes it (no trailing zeros).
fn cents(n: usize) -> String {
    let (int, frac) = (n / 100, n % 100);
    match frac {
        0 => int.to_string(),
        f if f % 10 == 0 => format!("{int}.{}", f / 10),
        f => format!("{int}.{f:02}"),
    }
}

fn cpu_sum(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| cpu_seconds(p)).sum()
}

pub async fn run(a: RoomArgs) -> Result<Value> {
    let nofile = raise_nofile();
    if a.members == 0 || a.urls.is_empty() {
        bail!("--members must be at least 1, with at least one --url");
    }
    if !a.pids.is_empty() && a.pids.len() != a.urls.len() {
        bail!("give one --pid per --url, in the same order");
    }
    let n_inst = a.urls.len();
    let mut targets = Vec::new();
    for url in &a.urls {
        targets.push(Target::resolve(url).await?);
    }
    let per_user = if a.scenario == Scenario::Votes {
        1
    } else {
        a.members_per_user.max(1)
    };
    let members_of = |k: usize| (a.members + n_inst - 1 - k) / n_inst;
    println!(
        "room {:?}: {} members in room {} on {} instance(s) (nofile {nofile})",
        a.scenario, a.members, a.channel, n_inst
    );

    // Sign in: distinct users per instance.
    let client = http_client(16)?;
    let mut cookies: Vec<Vec<String>> = Vec::new();
    let mut errors = Errors::default();
    for (k, t) in targets.iter().enumerate() {
        let users = members_of(k).div_ceil(per_user);
        let (c, e) = sign_in_many(&client, &t.base, &format!("member_i{k}_"), users).await;
        println!("signed in {} of {users} users on instance {k}", c.len());
        errors.merge(&e);
        if c.len() < users {
            bail!("sign-in failed on {} (is it in local mode?)", t.base);
        }
        cookies.push(c);
    }

    // Connect and subscribe everyone.
    let subscribe = match a.scenario {
        Scenario::Chat => "chat".to_owned(),
        Scenario::Votes => "poll:bench".to_owned(),
        Scenario::Counter => "counter:bench".to_owned(),
    };
    let connect_started = Instant::now();
    let sem = Arc::new(Semaphore::new(a.connect_concurrency.max(1)));
    let mut opening = Vec::with_capacity(a.members);
    for i in 0..a.members {
        let k = i % n_inst;
        let local = i / n_inst;
        let target = targets[k].clone();
        let cookie = cookies[k][local / per_user].clone();
        let (room, sub, sem) = (a.channel.clone(), subscribe.clone(), sem.clone());
        opening.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            open_member(&target, &cookie, &room, &sub).await
        }));
    }
    let mut sockets = Vec::with_capacity(a.members);
    let connect_deadline = Duration::from_secs_f64(a.connect_timeout);
    for h in opening {
        match tokio::time::timeout(connect_deadline, h).await {
            Ok(Ok(Ok(ws))) => sockets.push(ws),
            Ok(Ok(Err(e))) => errors.add(format!("connect: {e:#}")),
            Ok(Err(e)) => errors.add(format!("connect task: {e}")),
            Err(_) => errors.add("connect: timed out"),
        }
    }
    println!(
        "{} of {} members subscribed in {:.2} s",
        sockets.len(),
        a.members,
        connect_started.elapsed().as_secs_f64()
    );
    errors.print("connect error");
    if sockets.len() < a.members {
        bail!("only {} of {} members connected", sockets.len(), a.members);
    }

    // Plans and the value everyone must end with.
    let n = sockets.len();
    let mut plans: Vec<Plan> = vec![Vec::new(); n];
    let last = match a.scenario {
        Scenario::Chat => {
            let gap = 1.0 / a.rate.max(0.001);
            plans[0] = (0..a.messages)
                .map(|seq| {
                    let text = format!("seq={seq} ns={{ns}}");
                    (
                        Duration::from_secs_f64(gap * seq as f64),
                        json!({"type": "chat", "data": text}).to_string(),
                    )
                })
                .collect();
            Value::Null
        }
        Scenario::Votes => {
            let mut stats = serde_json::Map::new();
            for (i, plan) in plans.iter_mut().enumerate() {
                let answer = format!("a{}", i % ANSWERS);
                let at = Duration::from_secs_f64(a.window * i as f64 / n as f64);
                let frame = json!({"type": "poll", "data": {"id": "bench", "answer": answer}});
                plan.push((at, frame.to_string()));
                let count = stats.entry(answer).or_insert(json!(0));
                *count = json!(count.as_u64().unwrap_or(0) + 1);
            }
            Value::Object(stats)
        }
        Scenario::Counter => {
            let gap = 1.0 / a.rate.max(0.001);
            let frame =
                json!({"type": "counter", "data": {"id": "bench", "value": "0.01"}}).to_string();
            for (i, plan) in plans.iter_mut().enumerate() {
                // Members start spread over one gap, so sends are even over time.
                let offset = gap * i as f64 / n as f64;
                *plan = (0..a.messages)
                    .map(|s| {
                        (
                            Duration::from_secs_f64(offset + gap * s as f64),
                            frame.clone(),
                        )
                    })
                    .collect();
            }
            Value::String(cents(n * a.messages))
        }
    };
    let sends: usize = plans.iter().map(Vec::len).sum();
    let send_span = plans
        .iter()
        .filter_map(|p| p.last().map(|(at, _)| *at))
        .max()
        .unwrap_or_default();

    let shared = Arc::new(Shared {
        scenario: a.scenario,
        last: last.clone(),
        settled: AtomicUsize::new(0),
        received: AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let cpu_before = cpu_sum(&a.pids);
    let redis_before = a.redis_pid.and_then(cpu_seconds);
    let start = Instant::now() + Duration::from_millis(200);
    let start_ns = now_ns() + 200_000_000;
    let chat_messages = if a.scenario == Scenario::Chat {
        a.messages
    } else {
        0
    };
    let mut tasks = Vec::with_capacity(n);
    for (ws, plan) in sockets.into_iter().zip(plans) {
        tasks.push(tokio::spawn(member(
            ws,
            plan,
            shared.clone(),
            start,
            start_ns,
            chat_messages,
            stop_rx.clone(),
        )));
    }

    // Wait until everyone holds the final value (or has every chat message).
    let deadline = start + send_span + Duration::from_secs_f64(a.drain_timeout);
    let done = || match a.scenario {
        Scenario::Chat => shared.received.load(Ordering::Relaxed) >= n * a.messages,
        _ => shared.settled.load(Ordering::Relaxed) >= n,
    };
    let mut complete = true;
    while !done() {
        if Instant::now() >= deadline {
            complete = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let settle = start.elapsed();
    let cpu_after = cpu_sum(&a.pids);
    let redis_after = a.redis_pid.and_then(cpu_seconds);
    let _ = stop_tx.send(true);
    let mut outs = Vec::with_capacity(n);
    for t in tasks {
        outs.push(t.await.unwrap_or_default());
    }

    // Aggregate.
    let mut lat = Vec::new();
    let mut frames = Vec::with_capacity(n);
    let mut settled_ns = Vec::new();
    let mut dups = 0;
    let mut early = 0;
    let mut server_errors = Errors::default();
    for o in &outs {
        lat.extend_from_slice(&o.latencies);
        frames.push(o.frames);
        dups += o.dups;
        settled_ns.extend(o.settled_ns);
        if o.end.is_some() {
            early += 1;
        }
        for (k, v) in &o.errors {
            for _ in 0..*v {
                server_errors.add(k.clone());
            }
        }
    }
    server_errors.print("member error");
    let received: u64 = outs.iter().map(|o| o.latencies.len() as u64).sum();
    let (deliveries, lost) = match a.scenario {
        Scenario::Chat => {
            let expected = (n * a.messages) as u64;
            (received, expected.saturating_sub(received))
        }
        _ => (frames.iter().sum(), (n - settled_ns.len()) as u64),
    };
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(b), Some(c)) => Some(c - b),
        _ => None,
    };
    let redis_cpu = match (redis_before, redis_after) {
        (Some(b), Some(c)) => Some(c - b),
        _ => None,
    };
    let per = |total: f64, count: u64| (count > 0).then(|| round2(total * 1e6 / count as f64));
    let frames_mean = frames.iter().sum::<u64>() as f64 / n as f64;
    let frames_max = frames.iter().copied().max().unwrap_or(0);
    let latency = latency_summary(&lat);
    let settle_summary = latency_summary(&settled_ns);
    let secs = settle.as_secs_f64();
    let ok = complete && lost == 0 && dups == 0 && early == 0 && server_errors.total() == 0;
    match a.scenario {
        Scenario::Chat => println!(
            "chat: {received} of {} deliveries, {dups} duplicated; latency {}",
            n * a.messages,
            fmt_latency(&latency)
        ),
        _ => println!(
            "{:?}: {} of {n} members hold the final {} after {:.3} s; {:.1} frames per member (max {frames_max})",
            a.scenario,
            settled_ns.len(),
            last,
            secs,
            frames_mean
        ),
    }
    if let Some(c) = server_cpu {
        println!(
            "server CPU {:.3} s over {:.3} s ({:.0} %)",
            c,
            secs,
            c / secs * 100.0
        );
    }
    let ops = match a.scenario {
        Scenario::Chat => deliveries,
        _ => sends as u64,
    };
    Ok(json!({
        "mode": "room",
        "scenario": format!("{:?}", a.scenario).to_lowercase(),
        "ok": ok,
        "instances": n_inst,
        "members": n,
        "sends": sends,
        "complete": complete,
        "final": last,
        "settle_ms": round2(secs * 1000.0),
        "settle_after_last_send_ms": round2((secs - send_span.as_secs_f64()).max(0.0) * 1000.0),
        "settled_after_ms": settle_summary,
        "frames_per_member": {"mean": round2(frames_mean), "max": frames_max},
        "latency_ms": if a.scenario == Scenario::Chat { latency } else { Value::Null },
        "deliveries": deliveries,
        "lost": lost,
        "duplicated": dups,
        "closed_early": early,
        "errors": server_errors.to_json(),
        "throughput": {"value": round2(ops as f64 / secs.max(1e-9)), "unit": if a.scenario == Scenario::Chat { "deliveries/s" } else { "sends/s" }},
        "server_cpu_s": server_cpu.map(round2),
        "server_cpu_util": server_cpu.map(|c| round2(c / secs.max(1e-9))),
        "server_cpu_us_per_op": server_cpu.and_then(|c| per(c, ops)),
        "op": if a.scenario == Scenario::Chat { "delivery" } else { "send" },
        "redis_cpu_s": redis_cpu.map(round2),
    }))
}
