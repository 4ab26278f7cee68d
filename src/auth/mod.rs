//! Viewer sessions: the server-side store behind actix-session, and the
//! helpers that read and write the signed-in user.

pub mod redis_sessions;
pub mod store;

use actix_session::Session;

use crate::domain::User;
use crate::error::ApiError;

const USER_KEY: &str = "user";

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
    session
        .insert(USER_KEY, user)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("session insert: {e}")))
}

/// Ends the session: its server-side state is deleted.
pub fn sign_out(session: &Session) {
    session.purge();
}
