//! The integration test binary: one module per feature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod broker_behaviour;
mod redis_broker;
mod redis_server;
