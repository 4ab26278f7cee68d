//! The hand-over from a streamer's EventSub socket to `ingest`: a bounded
//! queue per socket and one task that ingests its messages in order. The
//! socket's reader never waits for the broker (it must keep reading, or
//! keepalives and pings go unanswered); a message the broker cannot take
//! (Redis down) is retried for `ws_ingest_retry_for`, since, unlike a
//! webhook, nobody will send it again. Beyond the queue's bound or the
//! retry time a message is dropped, logged and counted
//! (`eventsub_ws_messages_total{outcome="dropped"}`).

use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::domain::ChannelName;
use crate::eventsub::envelope::MessageType;
use crate::ingest::{Delivery, IngestError, Outcome, ingest};
use crate::state::AppState;

/// Longest wait between two attempts at a message the broker refused.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// One notification or revocation waiting for `ingest`.
#[derive(Debug)]
pub struct Queued {
    /// The message id (de-duplication key, shared with webhooks).
    pub message_id: String,
    /// Notification or revocation.
    pub kind: MessageType,
    /// When Twitch sent it.
    pub at: DateTime<Utc>,
    /// `{"subscription", "event"}` or `{"subscription"}`.
    pub payload: String,
}

/// The sending side, held by the socket's reader.
#[derive(Clone)]
pub struct DeliverySender {
    tx: mpsc::Sender<Queued>,
    state: web::Data<AppState>,
    channel: ChannelName,
}

impl std::fmt::Debug for DeliverySender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliverySender")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl DeliverySender {
    /// Queues a message without waiting; a full queue drops it (counted).
    pub fn push(&self, q: Queued) {
        if let Err(e) = self.tx.try_send(q) {
            let q = match e {
                mpsc::error::TrySendError::Full(q) | mpsc::error::TrySendError::Closed(q) => q,
            };
            self.state
                .metrics
                .eventsub_ws
                .messages
                .with_label_values(&["dropped"])
                .inc();
            tracing::error!(channel = %self.channel, message_id = %q.message_id,
                "EventSub WebSocket message dropped: the ingest queue is full");
        }
    }
}

/// Starts the ingest task of one socket; it ends once every sender is gone
/// and the queue is empty, or at shutdown.
pub fn spawn(
    state: web::Data<AppState>,
    channel: ChannelName,
    shutdown: CancellationToken,
) -> DeliverySender {
    let (tx, rx) = mpsc::channel(state.settings.limits.ws_ingest_queue.max(1));
    tokio::spawn(run(state.clone(), channel.clone(), rx, shutdown));
    DeliverySender { tx, state, channel }
}

async fn run(
    state: web::Data<AppState>,
    channel: ChannelName,
    mut rx: mpsc::Receiver<Queued>,
    shutdown: CancellationToken,
) {
    let retry_for = state.settings.limits.ws_ingest_retry_for;
    while let Some(q) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + retry_for;
        let mut wait = Duration::from_millis(100);
        let outcome = loop {
            let delivery = Delivery {
                message_id: &q.message_id,
                kind: q.kind,
                at: q.at,
                payload: q.payload.as_bytes(),
            };
            match ingest(&state, delivery).await {
                Ok(Outcome::Done(outcome)) => break outcome,
                Ok(Outcome::Challenge(_)) => break "invalid",
                // In flight: a lease of an attempt that failed ambiguously
                // (`broker::claim`); it is freed within `claim_lease`.
                Err(e @ (IngestError::Broker(_) | IngestError::InFlight))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tracing::warn!(%channel, message_id = %q.message_id, error = %e,
                        "the broker cannot take an EventSub WebSocket message; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break "dropped",
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(MAX_RETRY_WAIT);
                }
                Err(e @ (IngestError::Broker(_) | IngestError::InFlight)) => {
                    tracing::error!(%channel, message_id = %q.message_id, error = %e,
                        "EventSub WebSocket message dropped: the broker refused it too long");
                    break "dropped";
                }
                Err(e) => {
                    tracing::warn!(%channel, message_id = %q.message_id, error = %e,
                        "EventSub WebSocket message rejected");
                    break e.outcome();
                }
            }
        };
        state
            .metrics
            .eventsub_ws
            .messages
            .with_label_values(&[outcome])
            .inc();
    }
}
