//! Integration tests: each starts the real server on port 0 and talks to it
//! over real HTTP and WebSocket.
// Tests may unwrap and panic; helpers are shared by files that each use a part.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

mod helpers;

mod auth_local;
mod channels;
mod cli;
mod health;
mod oauth;
mod publish;
mod subscriptions;
mod webhook;
mod websocket;
