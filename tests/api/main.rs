//! Integration tests: each starts the real server on port 0 and talks to it
//! over real HTTP and WebSocket.
// Tests may unwrap and panic; helpers are shared by files that each use a part.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

mod helpers;

mod alerts;
mod alerts_redis;
mod auth_local;
mod broker_behaviour;
mod channels;
mod cli;
mod connect_alerts;
mod eventsub_ws;
mod eventsub_ws_instances;
mod faults;
mod headers;
mod health;
mod oauth;
mod publish;
mod redis_broker;
mod redis_instances;
mod redis_outage;
mod redis_server;
mod room_store;
mod rooms;
mod rooms_redis;
mod signals;
mod subscriptions;
mod webhook;
mod websocket;
mod ws_conformance;
mod ws_transport;
