//! `User`: who a session belongs to (a Twitch user, or a local sign-in).

use serde::{Deserialize, Serialize};

/// The signed-in user, as sent in the WebSocket `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Twitch user id (`local:<login>` for a local sign-in).
    pub id: String,
    /// Lower-case login.
    pub login: String,
    /// Display name.
    pub display_name: String,
}
