//! Sign-in and sign-out: the local-mode sign-in (`POST /auth/local`) and
//! `POST /auth/logout`. Twitch OAuth lives in `routes::oauth`.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::auth::{sign_in, sign_out};
use crate::config::Mode;
use crate::domain::{ChannelName, User};
use crate::error::ApiError;
use crate::state::AppState;

/// The local sign-in form.
#[derive(Debug, Deserialize)]
pub struct LocalForm {
    login: String,
}

/// `POST /auth/local`: local mode only (404 otherwise).
pub async fn post_local(
    form: web::Form<LocalForm>,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !matches!(state.settings.mode, Mode::Local) {
        return Err(ApiError::NotFound(
            "local sign-in is only available in local mode",
        ));
    }
    let login = ChannelName::parse(form.login.trim())
        .map_err(|e| ApiError::bad_request("invalid_login", format!("login: {e}")))?;
    let user = User {
        id: format!("local:{login}"),
        login: login.to_string(),
        display_name: form.login.trim().to_owned(),
    };
    sign_in(&session, &user)?;
    tracing::info!(user = %user.login, "local sign-in");
    Ok(HttpResponse::Found()
        .insert_header(("Location", "/"))
        .finish())
}

/// `POST /auth/logout`: ends the session (its server-side state is deleted).
pub async fn post_logout(session: Session) -> HttpResponse {
    sign_out(&session);
    HttpResponse::Found()
        .insert_header(("Location", "/"))
        .finish()
}
