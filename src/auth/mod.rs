//! Viewer sessions: the server-side store behind actix-session, and the
//! helpers that read and write the signed-in user, the OAuth `state`s this
//! browser started, and (Twitch mode) the viewer's tokens. All of it lives
//! in the server-side session state; the cookie carries only the key.

pub mod redis_sessions;
pub mod revalidate;
pub mod store;

use actix_session::Session;

use crate::domain::User;
use crate::error::ApiError;
use crate::twitch::oauth::{PendingState, TokenRecord};

const USER_KEY: &str = "user";
/// The login attempts this browser started (SPEC §4: state bound to the browser).
const STATES_KEY: &str = "oauth_states";
/// The viewer's Twitch tokens (never sent to the browser).
const TOKEN_KEY: &str = "twitch_token";

fn session_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("session insert: {e}"))
}

/// The OAuth states this browser has pending (empty when none).
pub fn pending_states(session: &Session) -> Vec<PendingState> {
    session
        .get::<Vec<PendingState>>(STATES_KEY)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Stores the pending OAuth states (removes the key when empty).
///
/// # Errors
/// 500 if the session cannot be written.
pub fn set_pending_states(session: &Session, states: &[PendingState]) -> Result<(), ApiError> {
    if states.is_empty() {
        session.remove(STATES_KEY);
        return Ok(());
    }
    session.insert(STATES_KEY, states).map_err(session_error)
}

/// The viewer's Twitch tokens, if signed in with Twitch.
pub fn token_record(session: &Session) -> Option<TokenRecord> {
    session.get::<TokenRecord>(TOKEN_KEY).ok().flatten()
}

/// Stores the viewer's Twitch tokens server-side.
///
/// # Errors
/// 500 if the session cannot be written.
pub fn set_token_record(session: &Session, record: &TokenRecord) -> Result<(), ApiError> {
    session.insert(TOKEN_KEY, record).map_err(session_error)
}

/// The signed-in user of this request, if any.
pub fn current_user(session: &Session) -> Option<User> {
    session.get::<User>(USER_KEY).ok().flatten()
}

/// The signed-in user, or 401.
///
/// # Errors
/// [`ApiError::Unauthorized`] without a session.
pub fn require_user(session: &Session) -> Result<User, ApiError> {
    current_user(session).ok_or(ApiError::Unauthorized(
        "sign in first: this needs a session",
    ))
}

/// Starts a fresh session for `user` (a new key, so a fixated one is dropped).
///
/// # Errors
/// 500 if the session cannot be written.
pub fn sign_in(session: &Session, user: &User) -> Result<(), ApiError> {
    session.renew();
    session.insert(USER_KEY, user).map_err(session_error)
}

/// Ends the session: its server-side state is deleted.
pub fn sign_out(session: &Session) {
    session.purge();
}
