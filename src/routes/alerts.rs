//! The alert API (SPEC §8): the streamer's own channel (session whose
//! login is the channel) or `ADMIN_TOKEN`; anyone else gets 403. Session
//! `POST`/`PUT` calls need a same-origin `Origin` or `Referer`, so that
//! another site cannot drive a streamer's dashboard. And
//! `POST /api/alerts/{channel}` with `PUBLISH_TOKEN` for donations and
//! custom alerts, idempotent under `Idempotency-Key`.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Value, json};

use crate::alerts::alert::{Alert, RecentAlert};
use crate::alerts::kind::Kind;
use crate::alerts::settings::Settings;
use crate::alerts::{Origin, Submitted};
use crate::domain::ChannelName;
use crate::error::ApiError;
use crate::routes::bearer::{check_bearer, require_streamer_or_admin};
use crate::state::AppState;

const QUEUE_FULL: &str = "this channel's alert queue is full (ALERT_QUEUE_LEN): retry later";

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// The signed-in streamer of the channel.
    Streamer,
    /// A holder of `ADMIN_TOKEN`.
    Admin,
}

/// The channel's streamer or the admin token (`bearer`'s rule of SPEC
/// §8): 401 without either, 403 for another signed-in user.
fn authorize(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    channel: &ChannelName,
) -> Result<Caller, ApiError> {
    require_streamer_or_admin(req, session, state, channel)?;
    let bearer = req.headers().contains_key(header::AUTHORIZATION);
    Ok(if bearer && state.settings.admin_token.is_some() {
        Caller::Admin
    } else {
        Caller::Streamer
    })
}

/// SPEC §8: a session's `POST`/`PUT` needs `Origin` (or, without one,
/// `Referer`) on `PUBLIC_URL`'s origin.
fn same_origin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let allowed = state.settings.allowed_origin();
    let headers = req.headers();
    let from = if let Some(origin) = headers.get(header::ORIGIN) {
        origin.to_str().ok().map(str::to_owned)
    } else {
        headers
            .get(header::REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .map(|u| u.origin().ascii_serialization())
    };
    if from.as_deref() == Some(allowed.as_str()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "this needs an Origin or Referer of {allowed}: the dashboard's own page"
        )))
    }
}

/// Authorizes a changing call: the streamer from the same origin, or the admin.
fn authorize_change(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    channel: &ChannelName,
) -> Result<(), ApiError> {
    if authorize(req, session, state, channel)? == Caller::Streamer {
        same_origin(req, state)?;
    }
    Ok(())
}

fn channel_of(path: &str) -> Result<ChannelName, ApiError> {
    Ok(ChannelName::parse(path)?)
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("body is not JSON: {e}")))
}

/// The overlay URL of `channel` with `key`.
pub fn overlay_url(state: &AppState, channel: &ChannelName, key: &str) -> String {
    format!(
        "{}/overlay/{channel}?key={key}",
        state.settings.public_base()
    )
}

#[derive(Serialize)]
struct AlertsView<'a> {
    settings: &'a Settings,
    paused: bool,
    in_flight: &'a Option<Alert>,
    queued: &'a [Alert],
    recent: &'a [RecentAlert],
    overlay_url: String,
    /// `memory` (kept for the life of the process) or `redis`.
    storage: &'static str,
}

/// `GET /api/alerts/{channel}`.
#[tracing::instrument(skip_all, fields(channel = %path))]
pub async fn get_alerts(
    path: web::Path<String>,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let channel = channel_of(&path)?;
    authorize(&req, &session, &state, &channel)?;
    let key = state.alerts.ensure_key(&channel).await?;
    let s = state.alerts.state(&channel).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(AlertsView {
            settings: &s.settings,
            paused: s.paused,
            in_flight: &s.in_flight,
            queued: &s.queued,
            recent: &s.recent,
            overlay_url: overlay_url(&state, &channel, &key.key),
            storage: if state.alerts.is_memory() {
                "memory"
            } else {
                "redis"
            },
        }))
}

/// `PUT /api/alerts/{channel}/settings`.
#[tracing::instrument(skip_all, fields(channel = %path))]
pub async fn put_settings(
    path: web::Path<String>,
    req: HttpRequest,
    session: Session,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let channel = channel_of(&path)?;
    authorize_change(&req, &session, &state, &channel)?;
    let settings = Settings::parse(&json_body(&body)?)?;
    state
        .alerts
        .put_settings(&channel, settings.clone())
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "settings": settings })))
}

fn accepted(submitted: Submitted) -> Result<HttpResponse, ApiError> {
    match submitted {
        Submitted::Queued(id) | Submitted::Duplicate(id) => {
            Ok(HttpResponse::Accepted().json(json!({ "id": id })))
        }
        Submitted::Filtered(reason) => {
            Ok(HttpResponse::Ok().json(json!({ "id": null, "filtered": reason.as_str() })))
        }
        Submitted::Full => Err(ApiError::TooManyRequests(QUEUE_FULL)),
    }
}

/// A string field of a small JSON body, or 400 naming it.
fn string_field(body: &Value, field: &'static str) -> Result<String, ApiError> {
    body.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::bad_request("invalid_body", format!("{field}: a string is required"))
        })
}

/// `POST /api/alerts/{channel}/test`.
#[tracing::instrument(skip_all, fields(channel = %path))]
pub async fn post_test(
    path: web::Path<String>,
    req: HttpRequest,
    session: Session,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let channel = channel_of(&path)?;
    authorize_change(&req, &session, &state, &channel)?;
    let raw = string_field(&json_body(&body)?, "kind")?;
    let unknown = || {
        ApiError::bad_request(
            "invalid_kind",
            format!(
                "kind: `{}` is not an alert kind (follow, subscribe, resub, gift, cheer, raid, redemption, hype_train, donation)",
                raw.chars().take(50).collect::<String>()
            ),
        )
    };
    let kind = Kind::known(&raw).ok_or_else(unknown)?;
    let submitted = state
        .alerts
        .test(&channel, &kind)
        .await?
        .ok_or_else(unknown)?;
    accepted(submitted)
}

/// `POST /api/alerts/{channel}/replay`.
#[tracing::instrument(skip_all, fields(channel = %path))]
pub async fn post_replay(
    path: web::Path<String>,
    req: HttpRequest,
    session: Session,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let channel = channel_of(&path)?;
    authorize_change(&req, &session, &state, &channel)?;
    let id = string_field(&json_body(&body)?, "id")?;
    match state.alerts.replay(&channel, &id).await? {
        Some(submitted) => accepted(submitted),
        None => Err(ApiError::NotFound(
            "id: no such alert among the last 50 shown or skipped",
        )),
    }
}

/// The body-less controls.
#[derive(Debug, Clone, Copy)]
pub enum Control {
    /// Send nothing new.
    Pause,
    /// Go on.
    Resume,
    /// End the alert on screen.
    Skip,
    /// Empty the waiting queue.
    Clear,
}

async fn control(
    control: Control,
    path: web::Path<String>,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let channel = channel_of(&path)?;
    authorize_change(&req, &session, &state, &channel)?;
    let alerts = &state.alerts;
    match control {
        Control::Pause => alerts.set_paused(&channel, true).await?,
        Control::Resume => alerts.set_paused(&channel, false).await?,
        Control::Skip => alerts.skip(&channel).await?,
        Control::Clear => alerts.clear(&channel).await?,
    }
    tracing::info!(channel = %channel, ?control, "alert control");
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/alerts/{channel}/pause`.
pub async fn post_pause(
    path: web::Path<String>,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    control(Control::Pause, path, req, session, state).await
}

/// `POST /api/alerts/{channel}/resume`.
pub async fn post_resume(
    path: web::Path<String>,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    control(Control::Resume, path, req, session, state).await
}

/// `POST /api/alerts/{channel}/skip`.
pub async fn post_skip(
    path: web::Path<String>,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    control(Control::Skip, path, req, session, state).await
}

/// `POST /api/alerts/{channel}/clear`.
pub async fn post_clear(
    path: web::Path<String>,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    control(Control::Clear, path, req, session, state).await
}

/// `POST /api/alerts/{channel}/key`.
#[tracing::instrument(skip_all, fields(channel = %path))]
pub async fn post_key(
    path: web::Path<String>,
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let channel = channel_of(&path)?;
    authorize_change(&req, &session, &state, &channel)?;
    let key = state.alerts.rotate_key(&channel).await?;
    // The key itself is never logged.
    tracing::info!(channel = %channel, generation = key.generation, "overlay key replaced");
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "key": key.key, "url": overlay_url(&state, &channel, &key.key) })))
}

/// `POST /api/alerts/{channel}`: a donation or custom alert (`PUBLISH_TOKEN`).
#[tracing::instrument(skip_all, fields(channel = %path))]
pub async fn post_alert(
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = &state.settings.publish_token else {
        return Err(ApiError::NotFound(
            "the alert API for apps is off: set PUBLISH_TOKEN",
        ));
    };
    check_bearer(&req, token)?;
    let channel = channel_of(&path)?;
    let draft = crate::alerts::sources::from_api(&json_body(&body)?)?;
    let source = req
        .headers()
        .get("Idempotency-Key")
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .map(|k| state.alerts.api_source(k))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 200 visible ASCII characters",
                    )
                })
        })
        .transpose()?;
    let submitted = state
        .alerts
        .submit(&channel, draft, Origin::Api, source.as_ref())
        .await?;
    accepted(submitted)
}
