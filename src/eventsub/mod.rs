//! EventSub's wire format and meaning, whatever transport carried it: the
//! webhook `signature` and timestamp rules, the message bodies
//! (`envelope`), the WebSocket transport's frames (`websocket`), `translate` (event → sentence + routing), the broadcaster
//! `registry` (id ↔ login, for events without a login) and the `samples`
//! that `trigger` sends. Pure or in-memory: no network here.

pub mod envelope;
pub mod registry;
pub mod samples;
pub mod signature;
pub mod translate;
pub mod websocket;
