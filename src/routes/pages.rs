//! The HTML pages: home (sign-in or streamer picker) and the watch page.
//! Templates are askama, compiled in from `templates/`.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::current_user;
use crate::config::Mode;
use crate::domain::{ChannelName, User};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    user: Option<&'a User>,
    local_mode: bool,
    error: Option<String>,
    streamer: &'a str,
}

#[derive(Template)]
#[template(path = "watch.html")]
struct WatchPage<'a> {
    user: &'a User,
    streamer: &'a str,
    parent: &'a str,
}

fn html(body: Result<String, askama::Error>) -> Result<HttpResponse, ApiError> {
    let body = body.map_err(|e| ApiError::Internal(anyhow::anyhow!("template: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}

/// `?error=` on the home page (e.g. after a refused Twitch login).
#[derive(Debug, Deserialize)]
pub struct HomeQuery {
    error: Option<String>,
}

fn error_text(code: &str) -> String {
    match code {
        "access_denied" => "You declined the Twitch login, so you are not signed in.".into(),
        "login_failed" => "Twitch login failed. Please try again.".into(),
        "session_ended" => "Your Twitch session ended. Please sign in again.".into(),
        _ => "Something went wrong. Please try again.".into(),
    }
}

/// `GET /`.
pub async fn get_home(
    session: Session,
    query: web::Query<HomeQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user = current_user(&session);
    html(
        HomePage {
            user: user.as_ref(),
            local_mode: matches!(state.settings.mode, Mode::Local),
            error: query.error.as_deref().map(error_text),
            streamer: "",
        }
        .render(),
    )
}

/// `?streamer=` of the picker form.
#[derive(Debug, Deserialize)]
pub struct PickQuery {
    streamer: Option<String>,
}

/// `GET /pick?streamer=`: validates the name, then goes to its watch page;
/// a bad name re-renders home with the reason.
pub async fn get_pick(
    session: Session,
    query: web::Query<PickQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(user) = current_user(&session) else {
        return Ok(redirect("/"));
    };
    let raw = query.streamer.as_deref().unwrap_or("").trim();
    match ChannelName::parse(raw) {
        Ok(name) => Ok(redirect(&format!("/watch/{name}"))),
        Err(e) => {
            let body = HomePage {
                user: Some(&user),
                local_mode: matches!(state.settings.mode, Mode::Local),
                error: Some(format!("“{raw}” is not a Twitch login: {e}.")),
                streamer: raw,
            }
            .render()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("template: {e}")))?;
            Ok(HttpResponse::BadRequest()
                .content_type("text/html; charset=utf-8")
                .body(body))
        }
    }
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", to))
        .finish()
}

/// `GET /watch/{streamer}`: login required (302 to `/` otherwise).
pub async fn get_watch(
    path: web::Path<String>,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(user) = current_user(&session) else {
        return Ok(redirect("/"));
    };
    let streamer = ChannelName::parse(&path)?;
    state.on_watch(&streamer);
    let parent = state.settings.embed_parent();
    html(
        WatchPage {
            user: &user,
            streamer: streamer.as_str(),
            parent: &parent,
        }
        .render(),
    )
}

/// `GET /static/style.css` (compiled in; no CDN).
pub async fn get_style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(include_str!("../../static/style.css"))
}

/// `GET /static/feed.js` (compiled in; no CDN).
pub async fn get_feed_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(include_str!("../../static/feed.js"))
}
