//! Viewer connections: many lightweight tasks, each reading one `/ws` socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Dialer, Errors, Viewer, Ws, now_ns, num_after};
use crate::rawws::RawWs;

/// Counters the main task watches while deliveries drain.
#[derive(Default)]
pub struct Progress {
    /// Distinct bench messages received, summed over viewers.
    pub unique: AtomicU64,
    /// For viewers whose connection ended early: the messages they can no longer get.
    pub given_up: AtomicU64,
    /// Viewers whose connection is open right now.
    pub open: AtomicU64,
}

/// How a viewer's connection ended.
#[derive(Debug, Clone)]
pub enum End {
    NotConnected,
    /// Still open when the run stopped it (the normal case).
    Stopped,
    /// The server sent a close frame with this code.
    Closed(Option<u16>),
    /// The TCP connection ended without a close frame.
    Eof,
    Error(String),
}

impl End {
    pub fn label(&self) -> String {
        match self {
            End::NotConnected => "not_connected".into(),
            End::Stopped => "open".into(),
            End::Closed(Some(code)) => format!("close_{code}"),
            End::Closed(None) => "close_no_code".into(),
            End::Eof => "eof".into(),
            End::Error(e) => format!("error: {e}"),
        }
    }
    pub fn early(&self) -> bool {
        !matches!(self, End::Stopped | End::NotConnected)
    }
}

/// The messages one viewer expects: message `seq` goes to channel `seq % count`, and
/// the viewer watches channel number `channel`.
#[derive(Debug, Clone, Copy)]
pub struct Share {
    pub channel: usize,
    pub count: usize,
    /// Messages published in all (to every channel).
    pub messages: usize,
}

impl Share {
    /// How many of the messages go to this viewer's channel.
    pub fn expected(&self) -> usize {
        if self.channel >= self.messages {
            0
        } else {
            (self.messages - self.channel).div_ceil(self.count.max(1))
        }
    }

    /// The viewer-local index of message `seq`, if it is for this viewer's channel.
    pub fn local(&self, seq: usize) -> Option<usize> {
        let count = self.count.max(1);
        (seq < self.messages && seq % count == self.channel).then_some(seq / count)
    }

    /// The message numbers of this viewer's channel.
    pub fn seqs(&self) -> impl Iterator<Item = usize> + use<> {
        let (channel, count) = (self.channel, self.count.max(1));
        (0..self.expected()).map(move |local| local * count + channel)
    }
}

/// What one viewer saw.
pub struct ViewerOutcome {
    /// Index of the server instance (in `Fleet::spawn`'s `instances`) it connected to.
    pub instance: usize,
    /// Which messages it expects.
    pub share: Share,
    pub end: End,
    /// Bit `local` is set once the viewer's message number `local` arrived.
    pub seen: Vec<u64>,
    pub unique: u64,
    pub dups: u64,
    /// Bench frames whose seq is not one of this viewer's messages.
    pub out_of_range: u64,
    /// Latencies in ns, one per distinct delivery.
    pub latencies: Vec<u64>,
    pub last_recv_ns: u64,
    pub bench_frames: u64,
    pub bench_bytes: u64,
    pub other_frames: u64,
    /// `{"op":"error"}` frames.
    pub server_errors: u64,
    /// Bench frames whose seq or sent_ns could not be read.
    pub unparsed: u64,
}

impl ViewerOutcome {
    fn new(instance: usize, share: Share) -> Self {
        Self {
            instance,
            share,
            end: End::NotConnected,
            seen: vec![0; share.expected().div_ceil(64)],
            unique: 0,
            dups: 0,
            out_of_range: 0,
            latencies: Vec::new(),
            last_recv_ns: 0,
            bench_frames: 0,
            bench_bytes: 0,
            other_frames: 0,
            server_errors: 0,
            unparsed: 0,
        }
    }

    /// Whether message `seq` (one of this viewer's) arrived.
    pub fn has(&self, seq: usize) -> bool {
        self.share.local(seq).is_some_and(|local| {
            self.seen
                .get(local / 64)
                .is_some_and(|w| w & (1u64 << (local % 64)) != 0)
        })
    }
}

/// One server instance the viewers connect to: how to reach it and the session cookies
/// signed in on it.
pub struct Instance {
    pub dialer: Dialer,
    pub cookies: Arc<Vec<String>>,
}

pub struct Fleet {
    pub handles: Vec<JoinHandle<ViewerOutcome>>,
    /// A viewer's channel index once it subscribed, or why it could not.
    ready: mpsc::UnboundedReceiver<Result<usize, String>>,
    channels: usize,
    pub progress: Arc<Progress>,
    stop: watch::Sender<bool>,
}

pub struct Readiness {
    pub connected: u64,
    /// Subscribed viewers per channel index.
    pub per_channel: Vec<u64>,
    pub failed: u64,
    pub errors: Errors,
    pub secs: f64,
}

impl Fleet {
    /// Spawns `n` viewers that connect (at most `concurrency` at a time), subscribe to
    /// one of `channels` (viewer `idx` to `channels[idx % channels.len()]`), and then read
    /// until stopped, expecting their share of `messages` bench messages (message `seq`
    /// goes to `channels[seq % channels.len()]`).
    /// Viewer `idx` connects to `instances[idx % instances.len()]` (round-robin) and is
    /// that instance's viewer number `idx / instances.len()` (which picks its cookie and
    /// source address).
    pub fn spawn(
        instances: &[Instance],
        channels: &[String],
        n: usize,
        messages: usize,
        concurrency: usize,
    ) -> Self {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = mpsc::unbounded_channel();
        let progress = Arc::new(Progress::default());
        let sem = Arc::new(Semaphore::new(concurrency.max(1)));
        let names: Vec<Arc<str>> = channels.iter().map(|c| Arc::from(c.as_str())).collect();
        let channel_count = names.len().max(1);
        let mut handles = Vec::with_capacity(n);
        let count = instances.len().max(1);
        for idx in 0..n {
            let (instance, local) = (idx % count, idx / count);
            let Some(target) = instances.get(instance) else {
                break;
            };
            let dialer = target.dialer.clone();
            let cookies = target.cookies.clone();
            let share = Share {
                channel: idx % channel_count,
                count: channel_count,
                messages,
            };
            let Some(channel) = names.get(share.channel).cloned() else {
                break;
            };
            let sem = sem.clone();
            let ready_tx = ready_tx.clone();
            let stop_rx = stop_rx.clone();
            let progress = progress.clone();
            handles.push(tokio::spawn(async move {
                let mut out = ViewerOutcome::new(instance, share);
                let expected = share.expected();
                let ws = {
                    let _permit = sem.acquire_owned().await;
                    let cookie = cookies
                        .get(local % cookies.len().max(1))
                        .map(String::as_str)
                        .unwrap_or("");
                    dialer.open_viewer(local, cookie, &channel).await
                };
                let ws = match ws {
                    Ok(ws) => ws,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return out;
                    }
                };
                progress.open.fetch_add(1, Ordering::Relaxed);
                let _ = ready_tx.send(Ok(share.channel));
                drop(ready_tx);
                out.latencies.reserve_exact(expected);
                match ws {
                    Viewer::Raw(ws) => raw_loop(ws, &mut out, stop_rx, &progress).await,
                    Viewer::Tungstenite(ws) => read_loop(*ws, &mut out, stop_rx, &progress).await,
                }
                progress.open.fetch_sub(1, Ordering::Relaxed);
                if out.end.early() && (out.unique as usize) < expected {
                    progress
                        .given_up
                        .fetch_add(expected as u64 - out.unique, Ordering::Relaxed);
                }
                out
            }));
        }
        Self {
            handles,
            ready: ready_rx,
            channels: channel_count,
            progress,
            stop: stop_tx,
        }
    }

    /// Waits until every viewer has reported whether it subscribed, or `timeout`.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Readiness {
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let n = self.handles.len() as u64;
        let mut r = Readiness {
            connected: 0,
            per_channel: vec![0; self.channels],
            failed: 0,
            errors: Errors::default(),
            secs: 0.0,
        };
        let mut last_print = Instant::now();
        while r.connected + r.failed < n {
            match tokio::time::timeout_at(deadline, self.ready.recv()).await {
                Ok(Some(Ok(channel))) => {
                    r.connected += 1;
                    if let Some(c) = r.per_channel.get_mut(channel) {
                        *c += 1;
                    }
                }
                Ok(Some(Err(e))) => {
                    r.failed += 1;
                    r.errors.add(e);
                }
                Ok(None) => break,
                Err(_) => {
                    let missing = n - r.connected - r.failed;
                    r.failed += missing;
                    r.errors
                        .0
                        .insert("not subscribed before the timeout".into(), missing);
                    break;
                }
            }
            if last_print.elapsed() > Duration::from_secs(5) {
                println!("  ... {} of {n} viewers subscribed", r.connected);
                last_print = Instant::now();
            }
        }
        r.secs = start.elapsed().as_secs_f64();
        r
    }

    /// Stops every viewer (each sends a close frame) and collects what they saw.
    pub async fn finish(self) -> (Vec<ViewerOutcome>, Errors) {
        let _ = self.stop.send(true);
        let mut outs = Vec::with_capacity(self.handles.len());
        let mut errors = Errors::default();
        for h in self.handles {
            match tokio::time::timeout(Duration::from_secs(30), h).await {
                Ok(Ok(o)) => outs.push(o),
                Ok(Err(e)) => errors.add(format!("viewer task: {e}")),
                Err(_) => errors.add("viewer task did not stop within 30 s"),
            }
        }
        (outs, errors)
    }
}

async fn read_loop(
    mut ws: Ws,
    out: &mut ViewerOutcome,
    mut stop: watch::Receiver<bool>,
    progress: &Progress,
) {
    // Registered once: re-arming a notification per frame costs more than the frame.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        let msg = tokio::select! {
            biased;
            _ = &mut stopped => {
                out.end = End::Stopped;
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return;
            }
            m = ws.next() => m,
        };
        match msg {
            None => {
                out.end = End::Eof;
                return;
            }
            Some(Err(e)) => {
                out.end = End::Error(e.to_string());
                return;
            }
            Some(Ok(Message::Text(t))) => on_text(t.as_str(), out, progress),
            Some(Ok(Message::Binary(b))) => match std::str::from_utf8(&b) {
                Ok(t) => on_text(t, out, progress),
                Err(_) => out.other_frames += 1,
            },
            Some(Ok(Message::Close(f))) => {
                out.end = End::Closed(f.map(|f| u16::from(f.code)));
                return;
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn raw_loop(
    mut ws: RawWs,
    out: &mut ViewerOutcome,
    mut stop: watch::Receiver<bool>,
    progress: &Progress,
) {
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        let ctl = ws.process(|data| {
            match std::str::from_utf8(data) {
                Ok(t) => on_text(t, out, progress),
                Err(_) => out.other_frames += 1,
            }
            true
        });
        let ctl = match ctl {
            Ok(c) => c,
            Err(e) => {
                out.end = End::Error(format!("{e:#}"));
                return;
            }
        };
        if !ctl.pings.is_empty() || ctl.close.is_some() {
            if let Err(e) = ws.answer(&ctl).await {
                out.end = End::Error(format!("write: {e}"));
                return;
            }
            if let Some(code) = ctl.close {
                out.end = End::Closed(code);
                return;
            }
        }
        let n = tokio::select! {
            biased;
            _ = &mut stopped => {
                out.end = End::Stopped;
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close()).await;
                return;
            }
            n = ws.fill() => n,
        };
        match n {
            Ok(0) => {
                out.end = End::Eof;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                out.end = End::Error(e.to_string());
                return;
            }
        }
    }
}

fn on_text(text: &str, out: &mut ViewerOutcome, progress: &Progress) {
    let recv_ns = now_ns();
    let Some(sent) = num_after(text, "\"sent_ns\":") else {
        out.other_frames += 1;
        if text.contains("\"error\"") {
            out.server_errors += 1;
        }
        return;
    };
    out.bench_frames += 1;
    out.bench_bytes += text.len() as u64;
    let Some(seq) = num_after(text, "\"seq\":") else {
        out.unparsed += 1;
        return;
    };
    let Some(local) = out.share.local(seq as usize) else {
        out.out_of_range += 1;
        return;
    };
    let (word, bit) = (local / 64, 1u64 << (local % 64));
    if out.seen[word] & bit != 0 {
        out.dups += 1;
        return;
    }
    out.seen[word] |= bit;
    out.unique += 1;
    out.latencies.push(recv_ns.saturating_sub(sent));
    out.last_recv_ns = recv_ns;
    progress.unique.fetch_add(1, Ordering::Relaxed);
}
