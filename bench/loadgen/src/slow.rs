//! `fanout --slow-viewers K`: viewers that sign in, open `/ws`, subscribe to the channel
//! like the others, and then never read their socket again. The TCP connection stays
//! open, so the kernel buffers fill and the server's slow-consumer path (bounded outbox,
//! close 4008) is exercised while the normal viewers are measured. They are not counted
//! in deliveries, latency or loss.
//!
//! How each one ended is found out only after the measurement: its socket is read until
//! a close frame, the end of the stream, or nothing more arrives for a moment.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::common::{Errors, Viewer, WsClient};
use crate::rawws::RawWs;
use crate::viewers::{End, Instance};

/// Nothing read for this long at the end: the connection is still open.
const QUIET: Duration = Duration::from_millis(300);
/// At most this long reading one slow viewer's backlog at the end.
const CHECK_LIMIT: Duration = Duration::from_secs(5);

pub struct SlowViewers {
    conns: Vec<RawWs>,
    pub requested: usize,
    pub failed: u64,
    pub errors: Errors,
}

/// What the slow viewers' sockets held at the end.
pub struct SlowReport {
    pub requested: usize,
    pub connected: u64,
    pub failed: u64,
    /// Connection endings by label (`close_4008`, `eof`, `open`, ...).
    pub endings: BTreeMap<String, u64>,
    /// Closed by the server (a close frame or the end of the stream).
    pub closed: u64,
    /// Bytes waiting unread in their sockets when the measurement ended, summed: shows
    /// that the kernel buffers filled.
    pub unread_bytes: u64,
    /// Data frames read from their sockets at the end (what the kernel and the server had
    /// buffered for them), summed.
    pub frames_read_at_end: u64,
}

impl SlowViewers {
    /// Opens `k` slow viewers, round-robin over `instances` like the normal viewers, with
    /// source-address indexes from `first_idx` on (after the normal viewers'). They always
    /// use the raw client, whose buffer can be read at the end.
    pub async fn open(instances: &[Instance], channel: &str, k: usize, first_idx: usize) -> Self {
        let mut handles = Vec::with_capacity(k);
        for j in 0..k {
            let Some(inst) = instances.get(j % instances.len().max(1)) else {
                break;
            };
            let mut dialer = inst.dialer.clone();
            dialer.client = WsClient::Raw;
            let cookie = inst
                .cookies
                .get(j % inst.cookies.len().max(1))
                .cloned()
                .unwrap_or_default();
            let channel = channel.to_string();
            handles.push(tokio::spawn(async move {
                dialer.open_viewer(first_idx + j, &cookie, &channel).await
            }));
        }
        let mut s = Self {
            conns: Vec::with_capacity(k),
            requested: k,
            failed: 0,
            errors: Errors::default(),
        };
        for h in handles {
            match h.await {
                Ok(Ok(Viewer::Raw(ws))) => s.conns.push(ws),
                Ok(Ok(Viewer::Tungstenite(_))) => {
                    s.failed += 1;
                    s.errors.add("slow viewer: not the raw client");
                }
                Ok(Err(e)) => {
                    s.failed += 1;
                    s.errors.add(format!("slow viewer: {e:#}"));
                }
                Err(e) => {
                    s.failed += 1;
                    s.errors.add(format!("slow viewer task: {e}"));
                }
            }
        }
        s
    }

    pub fn connected(&self) -> u64 {
        self.conns.len() as u64
    }

    /// Reads every slow viewer's socket (all at once) to see how it ended, then drops it.
    pub async fn check(self) -> SlowReport {
        let unread_bytes = self.conns.iter().filter_map(RawWs::unread_bytes).sum();
        let handles: Vec<_> = self
            .conns
            .into_iter()
            .map(|ws| tokio::spawn(ending(ws)))
            .collect();
        let mut r = SlowReport {
            requested: self.requested,
            connected: handles.len() as u64,
            failed: self.failed,
            endings: BTreeMap::new(),
            closed: 0,
            unread_bytes,
            frames_read_at_end: 0,
        };
        for h in handles {
            let (end, frames) = match h.await {
                Ok(x) => x,
                Err(e) => (End::Error(format!("task: {e}")), 0),
            };
            if matches!(end, End::Closed(_) | End::Eof) {
                r.closed += 1;
            }
            *r.endings.entry(end.label()).or_insert(0) += 1;
            r.frames_read_at_end += frames;
        }
        r
    }
}

/// Reads what is buffered for one slow viewer until a close frame, the end of the stream,
/// or a quiet moment (still open). Pings are not answered: the viewer stays "slow".
async fn ending(mut ws: RawWs) -> (End, u64) {
    let deadline = Instant::now() + CHECK_LIMIT;
    let mut frames = 0u64;
    loop {
        let ctl = match ws.process(|_| {
            frames += 1;
            true
        }) {
            Ok(c) => c,
            Err(e) => return (End::Error(format!("{e:#}")), frames),
        };
        if let Some(code) = ctl.close {
            return (End::Closed(code), frames);
        }
        let until = deadline.min(Instant::now() + QUIET);
        match tokio::time::timeout_at(until, ws.fill()).await {
            Err(_) => return (End::Stopped, frames),
            Ok(Ok(0)) => return (End::Eof, frames),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return (End::Error(e.to_string()), frames),
        }
    }
}
