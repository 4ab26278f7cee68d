//! The `/ws` viewer protocol: frame parsing (`protocol`), the per-connection
//! rate limit (`rate`), client frames off the socket (`reader`), the frames
//! waiting for the socket and the channels of a connection (`conn`), the
//! connection's task (`session`) and the HTTP upgrade hook that hands it the
//! socket (`upgrade`).

pub mod conn;
pub mod flusher;
pub mod protocol;
pub mod rate;
pub mod reader;
pub mod session;
pub mod upgrade;
