//! The `/ws` viewer protocol: frame parsing (`protocol`), the per-connection
//! rate limit (`rate`), the frames waiting for the socket (`outbox`) and the
//! connection loop (`session`).

pub mod outbox;
pub mod protocol;
pub mod rate;
pub mod session;
