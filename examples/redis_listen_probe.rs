//! Measures how an instance should hear other instances' publishes: Redis
//! pub/sub versus blocking `XREAD` on the channel streams. Each message is
//! written the way the broker writes it (`XADD` to the stream, plus `PUBLISH`
//! for the pub/sub variant) and timed from before the write to its arrival
//! on the listening connection.
//!
//! `cargo run --example redis_listen_probe -- [redis://127.0.0.1:6379] [channels] [messages]`
//!
//! A measurement tool, not part of the service: it prints and exits.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn report(name: &str, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{name:<34} n={:<6} p50 {:>7.1} µs  p99 {:>7.1} µs  max {:>7.1} µs",
        lat.len(),
        percentile(&lat, 0.5).as_secs_f64() * 1e6,
        percentile(&lat, 0.99).as_secs_f64() * 1e6,
        percentile(&lat, 1.0).as_secs_f64() * 1e6,
    );
}

async fn pubsub(client: &redis::Client, prefix: &str, channels: usize, n: usize) -> Res<()> {
    let mut pubsub = client.get_async_pubsub().await?;
    for c in 0..channels {
        pubsub.subscribe(format!("{prefix}:ch:c{c}")).await?;
    }
    let mut stream = pubsub.into_on_message();
    let mut conn = client.get_multiplexed_async_connection().await?;
    let script = redis::Script::new(
        "local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', 100, '*', 'm', ARGV[1]) \
         redis.call('PUBLISH', KEYS[1], id .. ' ' .. ARGV[1]) return id",
    );
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("{prefix}:ch:c{}", i % channels);
        let t = Instant::now();
        let _: String = script
            .key(&key)
            .arg("x".repeat(300))
            .invoke_async(&mut conn)
            .await?;
        stream.next().await.ok_or("pub/sub closed")?;
        lat.push(t.elapsed());
    }
    report(&format!("pub/sub, {channels} channels"), lat);
    Ok(())
}

async fn xread(client: &redis::Client, prefix: &str, channels: usize, n: usize) -> Res<()> {
    let mut reader: MultiplexedConnection = client.get_multiplexed_async_connection().await?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = (0..channels).map(|c| format!("{prefix}:xr:c{c}")).collect();
    let mut last: Vec<String> = vec!["0-0".to_owned(); channels];
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let key = &keys[i % channels];
        // The reader is blocked (one connection listening to every stream)
        // before the write, as a listener would be.
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(100)
            .arg("BLOCK")
            .arg(5000)
            .arg("STREAMS");
        cmd.arg(&keys).arg(&last);
        let read = async {
            let v: redis::Value = cmd.query_async(&mut reader).await?;
            Res::Ok(v)
        };
        let write = async {
            tokio::time::sleep(Duration::from_micros(200)).await;
            let t = Instant::now();
            let id: String = redis::cmd("XADD")
                .arg(key)
                .arg("MAXLEN")
                .arg("~")
                .arg(100)
                .arg("*")
                .arg("m")
                .arg("x".repeat(300))
                .query_async(&mut conn)
                .await?;
            Res::Ok((t, id))
        };
        let (read, write) = tokio::join!(read, write);
        read?;
        let (t, id) = write?;
        lat.push(t.elapsed());
        last[i % channels] = id;
    }
    report(&format!("blocking XREAD, {channels} streams"), lat);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let channels: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let client = redis::Client::open(url)?;
    let prefix = format!("esb-probe-{}", std::process::id());
    for c in [1, channels] {
        pubsub(&client, &prefix, c, n).await?;
        xread(&client, &prefix, c, n).await?;
    }
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await?;
    for chunk in keys.chunks(500) {
        let _: i64 = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await?;
    }
    Ok(())
}
