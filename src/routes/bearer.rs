//! Bearer-token checks for the publish and admin APIs, in constant time,
//! and the "streamer of the channel or `ADMIN_TOKEN`" rule of SPEC §8.

use actix_session::Session;
use actix_web::HttpRequest;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::current_user;
use crate::domain::ChannelName;
use crate::error::ApiError;
use crate::state::AppState;

/// Checks `Authorization: Bearer <token>` against `expected`.
///
/// # Errors
/// 401 when the header is missing or the token differs.
pub fn check_bearer(req: &HttpRequest, expected: &SecretString) -> Result<(), ApiError> {
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized(
            "Authorization: Bearer <token> is required",
        ))?;
    // Compare digests so that neither length nor content leaks through timing.
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(expected.expose_secret().as_bytes());
    if bool::from(a.ct_eq(&b)) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("the bearer token is not valid"))
    }
}

/// SPEC §8: the signed-in user whose login is `channel`, or (when set)
/// `Authorization: Bearer ADMIN_TOKEN`.
///
/// # Errors
/// 401 without a session or with a wrong bearer token; 403 for a signed-in
/// user who is not the streamer.
pub fn require_streamer_or_admin(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    channel: &ChannelName,
) -> Result<(), ApiError> {
    let has_bearer = req
        .headers()
        .contains_key(actix_web::http::header::AUTHORIZATION);
    if has_bearer {
        if let Some(admin) = &state.settings.admin_token {
            return check_bearer(req, admin);
        }
    }
    let user = current_user(session).ok_or(ApiError::Unauthorized(
        "sign in as the streamer (or send the admin token)",
    ))?;
    if user.login == channel.as_str() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "only {channel} (or an admin) may see this channel's alerts"
        )))
    }
}
