//! `idle`: N subscribed viewers held for S seconds; server RSS per connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use serde_json::json;

use crate::common::{
    Dialer, Target, WsClient, http_client, raise_nofile, round2, rss_bytes, sign_in_many,
};
use crate::viewers::{Fleet, Instance};

#[derive(Args, Debug, Clone)]
pub struct IdleArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Number of subscribed viewers to hold.
    #[arg(long, default_value_t = 10_000)]
    pub viewers: usize,
    /// Seconds to hold them after all subscribed.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Server PID (its /proc/PID/status VmRSS is read).
    #[arg(long)]
    pub pid: u32,
    /// Channel every viewer subscribes to.
    #[arg(long, env = "BENCH_CHANNEL", default_value = "benchchannel")]
    pub channel: String,
    /// Viewers sharing one signed-in user.
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
    /// WebSocket read buffer per viewer, bytes (client side only).
    #[arg(long, default_value_t = 4 * 1024)]
    pub read_buffer: usize,
    /// Seconds allowed for all viewers to connect and subscribe.
    #[arg(long, default_value_t = 300.0)]
    pub connect_timeout: f64,
}

pub async fn run(a: IdleArgs) -> Result<serde_json::Value> {
    let nofile = raise_nofile();
    if a.viewers == 0 {
        bail!("--viewers must be at least 1");
    }
    if (a.viewers as u64) + 64 > nofile {
        println!(
            "warning: {} viewers need more open files than the limit {nofile}",
            a.viewers
        );
    }
    let target = Target::resolve(&a.url).await?;
    let client = http_client(8)?;
    let dialer = Dialer::new(
        target.clone(),
        a.viewers,
        a.sources,
        a.read_buffer,
        a.ws_client,
    );
    println!(
        "idle: {} viewers on channel {} held {} s ({} source address(es), nofile {nofile})",
        a.viewers,
        a.channel,
        a.seconds,
        dialer.source_count()
    );

    let users = a.viewers.div_ceil(a.viewers_per_user.max(1));
    let (cookies, signin_errors) = sign_in_many(&client, &target.base, "viewer", users).await;
    println!("signed in {} of {users} users", cookies.len());
    signin_errors.print("sign-in error");
    if cookies.is_empty() {
        bail!("no user could sign in (is the server in local mode?)");
    }
    // Let the sign-in's allocations settle, then measure the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_bytes(a.pid)?;
    println!(
        "server RSS before: {:.1} MiB",
        rss_before as f64 / 1048576.0
    );

    let instance = Instance {
        dialer: dialer.clone(),
        cookies: Arc::new(cookies),
    };
    let mut fleet = Fleet::spawn(
        std::slice::from_ref(&instance),
        std::slice::from_ref(&a.channel),
        a.viewers,
        0,
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
    let rss_subscribed = rss_bytes(a.pid)?;
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    let rss_after = rss_bytes(a.pid)?;
    let still_open = fleet.progress.open.load(Ordering::Relaxed);
    let (outs, task_errors) = fleet.finish().await;
    task_errors.print("viewer task error");
    let closed_early = outs.iter().filter(|o| o.end.early()).count() as u64;
    let mut ends = std::collections::BTreeMap::new();
    for o in &outs {
        *ends.entry(o.end.label()).or_insert(0u64) += 1;
    }

    let delta = rss_after as i64 - rss_before as i64;
    let per_conn = delta as f64 / ready.connected as f64;
    println!(
        "server RSS: before {:.1} MiB, all subscribed {:.1} MiB, after {} s {:.1} MiB",
        rss_before as f64 / 1048576.0,
        rss_subscribed as f64 / 1048576.0,
        a.seconds,
        rss_after as f64 / 1048576.0
    );
    println!(
        "per connection: {:.0} bytes ({:.2} KB); still open {still_open}, closed early {closed_early}, endings {ends:?}",
        per_conn,
        per_conn / 1000.0
    );
    let ok = ready.failed == 0 && closed_early == 0;
    Ok(json!({
        "mode": "idle",
        "ok": ok,
        "viewers": a.viewers,
        "seconds": a.seconds,
        "sources": dialer.source_count(),
        "viewers_connected": ready.connected,
        "viewers_failed": ready.failed,
        "connect_secs": round2(ready.secs),
        "connect_errors": ready.errors.to_json(),
        "rss_before": rss_before,
        "rss_subscribed": rss_subscribed,
        "rss_after": rss_after,
        "bytes_per_connection": per_conn.round(),
        "closed_early": closed_early,
        "still_open": still_open,
        "endings": ends,
    }))
}
