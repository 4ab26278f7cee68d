//! Thin HTTP handlers, one file per resource. Each parses its input into
//! domain types and returns `Result<_, ApiError>`.

pub mod alert_sources;
pub mod alerts;
pub mod auth;
pub mod bearer;
pub mod callback;
pub mod channels;
pub mod dashboard;
pub mod headers;
pub mod health;
pub mod oauth;
pub mod overlay;
pub mod pages;
pub mod publish;
pub mod rooms;
pub mod subscriptions;
pub mod ws;
