//! Load generator for eventsub-bridge: `fanout`, `ingest`, `idle`, `room`, `alerts` and `soak`
//! modes, and `calibrate` (this host's kernel speed, for comparing reports).
//!
//! Every run prints human-readable lines and ends with one `RESULT {json}` line that
//! bench/run.sh parses. Exit status: 0 when `ok` (no loss, duplicate, error or early
//! close), 2 when it ran but something of that kind happened, 1 when it could not run.
#![recursion_limit = "256"]

mod alerts;
mod calibrate;
mod common;
mod fanout;
mod idle;
mod ingest;
mod rawhttp;
mod rawws;
mod rooms;
mod slow;
mod soak;
mod viewers;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Benchmark load generator for eventsub-bridge"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// N viewers subscribe to one channel; M messages are published; latency and loss.
    Fanout(fanout::FanoutArgs),
    /// N signed EventSub notifications to /api/callback at concurrency C.
    Ingest(ingest::IngestArgs),
    /// N subscribed viewers held S seconds; the server's RSS per connection.
    Idle(idle::IdleArgs),
    /// This host's speed at system calls and loopback TCP (no server needed).
    Calibrate(calibrate::CalibrateArgs),
    /// Interactive rooms (SPEC §9): chat fan-out, a vote storm or a counter storm.
    Room(rooms::RoomArgs),
    /// Alert overlays (SPEC §8): many channels at a paced rate, or a burst into one.
    Alerts(alerts::AlertsArgs),
    /// Minutes of churn (viewers, SSE, publishes, webhooks), then a leak check.
    Soak(soak::SoakArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (mode, result) = match cli.mode {
        Mode::Fanout(a) => ("fanout", fanout::run(a).await),
        Mode::Ingest(a) => ("ingest", ingest::run(a).await),
        Mode::Idle(a) => ("idle", idle::run(a).await),
        Mode::Calibrate(a) => ("calibrate", calibrate::run(a).await),
        Mode::Room(a) => ("room", rooms::run(a).await),
        Mode::Alerts(a) => ("alerts", alerts::run(a).await),
        Mode::Soak(a) => ("soak", soak::run(a).await),
    };
    match result {
        Ok(v) => {
            common::print_result(&v);
            // 2: it ran, but saw loss, duplicates, errors or early closes.
            if v.get("ok").and_then(|o| o.as_bool()) == Some(true) {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("loadgen {mode}: {e:#}");
            common::print_result(&serde_json::json!({
                "mode": mode,
                "ok": false,
                "error": format!("{e:#}"),
            }));
            std::process::ExitCode::FAILURE
        }
    }
}
