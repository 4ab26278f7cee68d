//! `GET /dashboard` (SPEC §8): the signed-in streamer's own alerts. The
//! page is a shell; `static/dashboard.js` fills it from the alert API and
//! drives it. Twitch mode's alert-source status has its own section.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::auth::current_user;
use crate::config::Mode;
use crate::domain::{ChannelName, User};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage<'a> {
    user: &'a User,
    channel: &'a str,
    /// Alerts live only as long as the process (no `REDIS_URL`).
    memory_mode: bool,
    twitch_mode: bool,
}

/// `GET /dashboard`: login required (302 to `/`).
pub async fn get_dashboard(
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(user) = current_user(&session) else {
        return Ok(HttpResponse::Found()
            .insert_header(("Location", "/"))
            .finish());
    };
    let channel = ChannelName::parse(&user.login)?;
    let body = DashboardPage {
        user: &user,
        channel: channel.as_str(),
        memory_mode: state.alerts.is_memory(),
        twitch_mode: matches!(state.settings.mode, Mode::Twitch(_)),
    }
    .render()
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("template: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}

/// `GET /static/dashboard.js` (compiled in).
pub async fn get_dashboard_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(include_str!("../../static/dashboard.js"))
}
