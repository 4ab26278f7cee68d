//! The `/ws` viewer protocol: frame parsing (`protocol`), the per-connection
//! rate limit (`rate`) and the connection loop (`session`).

pub mod protocol;
pub mod rate;
pub mod session;
