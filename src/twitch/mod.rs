//! Everything Twitch-shaped: webhook signatures and bodies, translation of
//! events into messages, sample payloads for `trigger`, and the registry of
//! broadcasters.

pub mod envelope;
pub mod registry;
pub mod samples;
pub mod signature;
pub mod translate;
