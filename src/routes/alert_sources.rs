//! `GET /api/alerts/{channel}/sources` (SPEC §8, Twitch mode): the alert
//! kinds' EventSub subscriptions of a channel with their status, the
//! streamer's grant and (WebSocket transport) the EventSub socket. For the
//! streamer of the channel or a holder of `ADMIN_TOKEN`; 404 in local mode.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::ChannelName;
use crate::error::ApiError;
use crate::routes::bearer::require_streamer_or_admin;
use crate::state::AppState;

/// `GET /api/alerts/{channel}/sources`.
///
/// # Errors
/// 400 for a bad channel, 401 / 403 (not the streamer), 404 in local mode,
/// 503 when the grant store is unreachable.
#[tracing::instrument(skip_all, fields(channel = %path.as_str()))]
pub async fn get_sources(
    req: HttpRequest,
    path: web::Path<String>,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let channel = ChannelName::parse(&path)?;
    let twitch = state.twitch.as_deref().ok_or(ApiError::NotFound(
        "alert sources need Twitch credentials (local mode has none)",
    ))?;
    require_streamer_or_admin(&req, &session, &state, &channel)?;
    let view = crate::twitch::alert_sources::sources(&state, twitch, &channel).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}
