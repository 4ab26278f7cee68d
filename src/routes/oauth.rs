//! Twitch OAuth (SPEC §4, §8): `GET /auth/login` starts a login and `GET
//! /auth/connect` a streamer's "connect alerts", each with a `state` bound
//! to this browser's session that says which flow it belongs to; `GET
//! /auth/callback` checks that state (single use, 10 minutes), exchanges
//! the code and validates the token, then either reads the user from Helix
//! and signs in, or keeps the grant for the signed-in streamer's channel
//! (`twitch::alert_sources::connect`). All answer 404 in local mode.
//! Failures render a page (the user arrives here in a browser) with the
//! status `ApiError` gives them.

use actix_session::Session;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::auth::{current_user, pending_states, set_pending_states, set_token_record, sign_in};
use crate::domain::User;
use crate::error::ApiError;
use crate::state::AppState;
use crate::twitch::Twitch;
use crate::twitch::oauth::{Flow, OAuthError, TokenRecord, new_state, push_state, take_state};

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

fn twitch(state: &AppState) -> Result<&Twitch, ApiError> {
    state.twitch.as_deref().ok_or(ApiError::NotFound(
        "Twitch login is not available in local mode",
    ))
}

fn found(to: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", to))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// A fresh state for `flow`, remembered in the session, and the 302 to
/// Twitch's authorize page carrying it.
fn start(
    twitch: &Twitch,
    state: &AppState,
    session: &Session,
    flow: Flow,
) -> Result<HttpResponse, ApiError> {
    let csrf = new_state();
    let mut pending = pending_states(session);
    push_state(
        &mut pending,
        csrf.clone(),
        flow,
        Utc::now().timestamp_millis(),
        state.settings.limits.oauth_state_ttl,
    );
    set_pending_states(session, &pending)?;
    Ok(found(twitch.oauth.authorize_url(&csrf, flow).as_str()))
}

/// `GET /auth/login`: 302 to Twitch's authorize page with a fresh state.
///
/// # Errors
/// 404 in local mode; 500 if the session cannot be written.
#[tracing::instrument(skip_all)]
pub async fn get_login(
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let twitch = twitch(&state)?;
    start(twitch, &state, &session, Flow::Login)
}

/// `GET /auth/connect` (SPEC §8): login required (302 to `/`); 302 to
/// Twitch's authorize page asking for the alert scopes.
///
/// # Errors
/// 404 in local mode; 500 if the session cannot be written.
#[tracing::instrument(skip_all)]
pub async fn get_connect(
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let twitch = twitch(&state)?;
    if current_user(&session).is_none() {
        return Ok(found("/"));
    }
    start(twitch, &state, &session, Flow::Connect)
}

/// What Twitch appends to the redirect URI.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback`.
///
/// # Errors
/// 404 in local mode; every other failure is rendered as a page.
#[tracing::instrument(skip_all)]
pub async fn get_callback(
    query: web::Query<CallbackQuery>,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let twitch = twitch(&state)?;
    let (flow, result) = match check_state(&state, &session, &query) {
        Err((flow, e)) => (flow, Err(e)),
        Ok((Flow::Login, code)) => (
            Flow::Login,
            complete_login(twitch, &state, &session, &code)
                .await
                .map(|user| tracing::info!(user = %user.login, "signed in with Twitch")),
        ),
        Ok((Flow::Connect, code)) => (
            Flow::Connect,
            complete_connect(twitch, &state, &session, &code).await,
        ),
    };
    let home = match flow {
        Flow::Login => "/",
        Flow::Connect => "/dashboard",
    };
    match result {
        Ok(()) => Ok(found(home)),
        // SPEC §7.12: back to where it started, which says why.
        Err(OAuthError::Denied) => {
            tracing::info!(?flow, "Twitch authorization declined");
            Ok(found(&format!("{home}?error=access_denied")))
        }
        Err(e) => Ok(error_page(e)),
    }
}

/// Consumes the callback's state (single use, whatever happens next) and
/// returns its flow and the code. An error carries the flow it belongs to
/// when the state was good, so that a refusal returns where it started.
fn check_state(
    state: &AppState,
    session: &Session,
    query: &CallbackQuery,
) -> Result<(Flow, String), (Flow, OAuthError)> {
    let now_ms = Utc::now().timestamp_millis();
    let ttl = state.settings.limits.oauth_state_ttl;
    let mut pending = pending_states(session);
    let given = query.state.as_deref().filter(|s| !s.is_empty());
    if let Some(error) = query.error.as_deref() {
        // The attempt is over either way: consume its state.
        let flow = given
            .and_then(|g| take_state(&mut pending, g, now_ms, ttl).ok())
            .unwrap_or_default();
        if given.is_some() {
            store_states(session, &pending).map_err(|e| (flow, e))?;
        }
        return Err((
            flow,
            if error == "access_denied" {
                OAuthError::Denied
            } else {
                OAuthError::Provider {
                    error: error.chars().take(100).collect(),
                    description: query
                        .error_description
                        .as_deref()
                        .unwrap_or("")
                        .chars()
                        .take(300)
                        .collect(),
                }
            },
        ));
    }
    let given = given.ok_or((Flow::Login, OAuthError::StateMissing))?;
    let checked = take_state(&mut pending, given, now_ms, ttl);
    store_states(session, &pending).map_err(|e| (Flow::Login, e))?;
    let flow = checked.map_err(|e| (Flow::Login, e))?;
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or((flow, OAuthError::MissingCode))?;
    Ok((flow, code.to_owned()))
}

/// The streamer came back from "connect alerts": the token must belong to
/// the signed-in user, whose channel then keeps the grant.
async fn complete_connect(
    twitch: &Twitch,
    state: &AppState,
    session: &Session,
    code: &str,
) -> Result<(), OAuthError> {
    let user = current_user(session)
        .ok_or_else(|| OAuthError::Session("the session ended during connect".into()))?;
    let issued = twitch.oauth.exchange_code(code).await?;
    let validated = twitch.oauth.validate_login(&issued.access_token).await?;
    if validated.user_id.as_deref() != Some(user.id.as_str()) {
        return Err(OAuthError::OtherAccount {
            authorized: validated.login.clone().unwrap_or_default(),
            signed_in: user.login.clone(),
        });
    }
    crate::twitch::alert_sources::connect(state, twitch, &user, &issued, &validated)
        .await
        .map_err(|e| OAuthError::Unavailable(format!("keeping the grant: {e}")))?;
    tracing::info!(channel = %user.login, "alerts connected");
    Ok(())
}

async fn complete_login(
    twitch: &Twitch,
    state: &AppState,
    session: &Session,
    code: &str,
) -> Result<User, OAuthError> {
    let now_ms = Utc::now().timestamp_millis();
    let issued = twitch.oauth.exchange_code(code).await?;
    let mut record = TokenRecord::from_issued(&issued);
    // TWITCH.md §4: validate at login.
    let validated = twitch.oauth.validate_login(&record.access()).await?;
    let helix_user = twitch.helix.user_for_token(&record.access()).await?;
    if validated.user_id.as_deref() != Some(helix_user.id.as_str()) {
        return Err(OAuthError::WrongClient);
    }
    let user = User {
        id: helix_user.id,
        login: helix_user.login.to_ascii_lowercase(),
        display_name: helix_user.display_name,
    };
    state.registry.learn(&user.id, &user.login);
    record.validated_at = now_ms / 1000;
    sign_in(session, &user).map_err(|e| OAuthError::Session(e.to_string()))?;
    set_token_record(session, &record).map_err(|e| OAuthError::Session(e.to_string()))?;
    // The login is done: no other attempt of this browser may complete it.
    store_states(session, &[])?;
    Ok(user)
}

fn store_states(
    session: &Session,
    pending: &[crate::twitch::oauth::PendingState],
) -> Result<(), OAuthError> {
    set_pending_states(session, pending).map_err(|e| OAuthError::Session(e.to_string()))
}

/// A page naming the problem, with the status `ApiError` maps it to; the
/// cause is logged once here.
fn error_page(e: OAuthError) -> HttpResponse {
    let detail = e.to_string();
    let api = ApiError::from(e);
    let status = api.status_code();
    let (title, message) = if status.is_server_error() {
        tracing::error!(error = %detail, %status, "Twitch login failed");
        (
            "Twitch login failed",
            "Twitch did not answer as expected, so you are not signed in. Please try again."
                .to_owned(),
        )
    } else {
        tracing::info!(error = %detail, %status, "Twitch login refused");
        ("Login not completed", capitalize(&detail))
    };
    let body = ErrorPage {
        title,
        message: &message,
    }
    .render()
    .unwrap_or_else(|_| message.clone());
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}
