//! `calibrate`: how fast this host's kernel is at what the benchmarks
//! stress, without the server. The same build of the server differs by
//! several times between hosts of the same machine kind (one host's ingest
//! was 17 k requests/s, another's 59 k), so every report carries these
//! figures and tables are only compared between runs with similar ones.
//!
//! - `syscall_ns`: one trivial system call (`getppid`).
//! - `tcp_send_recv_us`: one 256-byte write on a loopback TCP connection
//!   plus the read that takes it off the other end, in one thread (no
//!   cross-CPU wake-up): about what the server pays per delivery when every
//!   frame is its own write.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct CalibrateArgs {
    /// Iterations of each measurement (the best of 5 rounds is reported).
    #[arg(long, default_value_t = 100_000)]
    pub iterations: u32,
}

fn best_of<F: FnMut() -> anyhow::Result<f64>>(mut f: F) -> anyhow::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        best = best.min(f()?);
    }
    Ok(best)
}

pub async fn run(a: CalibrateArgs) -> anyhow::Result<Value> {
    let n = a.iterations.max(1);
    let syscall_ns = best_of(|| {
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(std::os::unix::process::parent_id());
        }
        Ok(start.elapsed().as_nanos() as f64 / f64::from(n))
    })?;
    let listener = TcpListener::bind("127.0.0.1:0").context("bind")?;
    let mut tx = TcpStream::connect(listener.local_addr()?).context("connect")?;
    let (mut rx, _) = listener.accept().context("accept")?;
    tx.set_nodelay(true)?;
    let frame = [b'x'; 256];
    let mut sink = [0u8; 256];
    let tcp_us = best_of(|| {
        let start = Instant::now();
        for _ in 0..n {
            tx.write_all(&frame)?;
            rx.read_exact(&mut sink)?;
        }
        Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(n))
    })?;
    println!(
        "one system call: {syscall_ns:.0} ns; one 256-byte loopback TCP write + read: {tcp_us:.2} us"
    );
    Ok(json!({
        "mode": "calibrate",
        "ok": true,
        "iterations": n,
        "syscall_ns": (syscall_ns * 10.0).round() / 10.0,
        "tcp_send_recv_us": (tcp_us * 1000.0).round() / 1000.0,
    }))
}
