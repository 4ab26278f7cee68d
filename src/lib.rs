//! eventsub-bridge: Twitch EventSub webhooks to live WebSocket and SSE
//! channels.
//!
//! # Module map
//! - `cli`, `config`: command line and environment → validated `Settings`.
//! - `startup`, `state`: the `Application` (route table, bind, run) and the
//!   shared `AppState`; `signals`: SIGTERM and SIGINT, which both drain.
//! - `domain`: `ChannelName`, `MessageId`, `MessageDraft` / `Envelope`, `User`.
//! - `eventsub`: EventSub's wire format, whatever the transport: webhook
//!   `signature` rules, body `envelope` types, `websocket` frames, `translate` (event → sentence
//!   + routing), `samples` for `trigger`, the broadcaster `registry`.
//! - `twitch`: Twitch's APIs as a client (Twitch mode): the `helix` client,
//!   `oauth` (login and "connect alerts"), the `subscriptions` registry
//!   (ensure-on-watch, reconcile, revocations), the streamers' alert
//!   `grants` (kept, refreshed, validated hourly) and `eventsub_ws`, the
//!   EventSub WebSocket transport (SPEC §10: one socket per connected
//!   streamer, leased to one instance in Redis mode), which hands its
//!   notifications to `ingest` like the webhook, and `alert_sources`,
//!   "connect alerts" (SPEC §8 Twitch mode): the alert kinds'
//!   subscriptions of a channel, made sure of on connect, and their status
//!   for the dashboard.
//! - `webhook`: the webhook transport (SPEC §4 steps 1–3: body limit,
//!   headers, signature, timestamp) and legacy WebSub; `ingest`: steps 4–7,
//!   the same for every transport (de-duplication, challenge, revocation,
//!   notification → translate → publish).
//! - `broker`: `Broker` {Memory, Redis} with publish (also idempotent per
//!   key) / subscribe-with-replay / history / claims (`claim`: a lease per
//!   webhook id or idempotency key, done only once processed); `hub` is the
//!   local fan-out both variants share
//!   (Redis mode: streams + one pub/sub subscription per channel, see
//!   `docs/redis.md`).
//! - `ws`: the socket layer (every WebSocket) and the `/ws` viewer
//!   protocol; `sse`: the SSE stream.
//! - `rooms`: interactive rooms (SPEC §9) on `/websocket?room=`: the Pact
//!   frame codec, room state in a store {Memory, Redis}, coalescing, and
//!   the room protocol on the socket layer.
//! - `alerts`: alert overlays for OBS (SPEC §8): per-channel queues with
//!   one alert in flight, settings and templates, the overlay key, the
//!   memory and Redis stores, the overlay socket and its doorbell topic.
//! - `auth`: server-side sessions and the hourly token check; `routes`: thin handlers; `error`: the one
//!   `ResponseError`; `metrics`, `telemetry`; `client`: the CLI's requests.
//!
//! # Data flow
//! Twitch `POST /api/callback` → `routes::callback` reads ≤ 1 MiB →
//! `webhook::handle_eventsub` verifies signature and timestamp →
//! `ingest::ingest` claims the message id, parses the body →
//! `eventsub::translate` gives the sentence and
//! the channels → `Broker::publish` assigns the id, retains the message,
//! serializes it once into an `Envelope` → `hub` offers the envelope to
//! each subscribed connection's inbox: a WebSocket's `ws::conn` outbox (the
//! encoded frame is appended) or an SSE stream's bounded queue → the
//! worker's `ws::flusher` writes each pending outbox in one piece to the
//! socket that `ws::upgrade` took from the HTTP layer (or `sse` writes the
//! pre-built record) → the viewer. A notification of an alert kind then
//! also becomes one alert (`alerts::Alerts::from_notification`), queued
//! idempotently by message id; the queue's doorbell topic takes the alert
//! in flight to every open overlay. Only after the publish (and the
//! enqueue) succeeded does Twitch get its 2xx. With the WebSocket transport
//! a frame read by `twitch::eventsub_ws` enters the same way at
//! `ingest::ingest` (its payload is the webhook body), through the
//! socket's bounded queue.

pub mod alerts;
pub mod auth;
pub mod broker;
pub mod cli;
pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod eventsub;
pub mod ingest;
pub mod metrics;
pub mod rooms;
pub mod routes;
pub mod signals;
pub mod sse;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod twitch;
pub mod webhook;
pub mod ws;
