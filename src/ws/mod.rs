//! The socket layer and the viewer protocol. Transport, for every
//! WebSocket the server accepts: accepting the handshake (`handshake`),
//! the server's upgrade hook that takes the socket from the HTTP layer
//! (`upgrade`), client frames off the socket (`reader`, with the RFC 6455
//! rules of `frame` that actix-http's parser leaves out), the per-connection
//! rate limit (`rate`), the frames waiting for the socket (`conn`), one
//! writer per worker (`flusher`) and the connection's task (`session`),
//! which runs a [`session::Protocol`]. The viewer protocol of `/ws`:
//! its frames (`protocol`) and what they do (`viewer`).

pub mod conn;
pub mod flusher;
pub mod frame;
pub mod handshake;
pub mod protocol;
pub mod rate;
pub mod reader;
pub mod session;
pub mod upgrade;
pub mod viewer;
