//! Bearer-token checks for the publish and admin APIs, in constant time.

use actix_web::HttpRequest;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

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
