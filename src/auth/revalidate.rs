//! The hourly token check Twitch requires (TWITCH.md §4), done as a check
//! on request: a middleware inside the session middleware looks at the
//! session's Twitch token, and when its last validation is older than
//! `token_revalidate_interval` (an hour) asks `/oauth2/validate` again. An
//! expired token is refreshed once; a token that neither validates nor
//! refreshes ends the session before the handler runs. When Twitch cannot be
//! asked the session is kept and checked again on the next request.
//!
//! Chosen over a background sweep because sessions live in the session store
//! (memory or Redis), which has no per-user index to sweep; the cost is that
//! an open WebSocket is only cut at its next reconnect.

use actix_session::{Session, SessionExt};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use chrono::Utc;

use crate::auth::{set_token_record, sign_out, token_record};
use crate::state::AppState;
use crate::twitch::oauth::Revalidation;

/// The middleware function (wrap it inside `SessionMiddleware`).
///
/// # Errors
/// Only the inner service's errors.
pub async fn revalidate_session(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>().cloned() {
        check(&state, &req.get_session()).await;
    }
    next.call(req).await
}

/// Re-validates the session's Twitch token when its last check is too old.
async fn check(state: &AppState, session: &Session) {
    let Some(twitch) = &state.twitch else {
        return;
    };
    let Some(record) = token_record(session) else {
        return;
    };
    let now = Utc::now().timestamp();
    let interval = state.settings.limits.token_revalidate_interval.as_secs() as i64;
    if now - record.validated_at < interval {
        return;
    }
    match twitch.oauth.revalidate(&record, now).await {
        Revalidation::Valid(fresh) => {
            if let Err(e) = set_token_record(session, &fresh) {
                tracing::warn!(error = %e, "could not store a re-validated token");
            }
        }
        Revalidation::Ended => {
            tracing::info!("Twitch token no longer validates; session ended");
            sign_out(session);
        }
        Revalidation::Unknown(e) => {
            tracing::warn!(error = %e, "could not re-validate a Twitch token; keeping the session");
        }
    }
}
