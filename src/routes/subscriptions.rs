//! The admin API `/api/subscriptions` (SPEC §4, §7.9): `Authorization:
//! Bearer ADMIN_TOKEN`, 404 while the token is unset (or in local mode,
//! where there is no Twitch to ask). Backed by the subscription registry.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::domain::ChannelName;
use crate::error::ApiError;
use crate::routes::bearer::check_bearer;
use crate::state::AppState;
use crate::twitch::subscriptions::{SubscriptionRegistry, parse_type};

/// Longest subscription id accepted in a path (Twitch's are UUIDs).
const MAX_ID_CHARS: usize = 100;

fn registry<'a>(
    req: &HttpRequest,
    state: &'a AppState,
) -> Result<&'a SubscriptionRegistry, ApiError> {
    let token = state
        .settings
        .admin_token
        .as_ref()
        .ok_or(ApiError::NotFound(
            "the admin API is off: ADMIN_TOKEN is not set",
        ))?;
    check_bearer(req, token)?;
    state
        .twitch
        .as_deref()
        .map(|t| t.subscriptions.as_ref())
        .ok_or(ApiError::NotFound(
            "the admin API needs Twitch credentials (local mode has no subscriptions)",
        ))
}

/// `GET /api/subscriptions`: our subscriptions, fresh from Helix.
///
/// # Errors
/// 404 / 401 as above; 502 when Twitch fails.
#[tracing::instrument(skip_all)]
pub async fn get_subscriptions(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let snapshot = registry(&req, &state)?.sync().await?;
    Ok(HttpResponse::Ok().json(snapshot))
}

/// `types` as a JSON array or a comma-separated string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Types {
    /// `["stream.online", …]`.
    List(Vec<String>),
    /// `"stream.online,stream.offline"`.
    Csv(String),
}

/// The POST body.
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    streamer: String,
    types: Option<Types>,
}

/// `POST /api/subscriptions`: 201 with the created (or adopted) subscriptions.
///
/// # Errors
/// 400 for a bad streamer or type, 404 / 401 as above, 502 when Twitch fails.
#[tracing::instrument(skip_all, fields(channel))]
pub async fn post_subscriptions(
    req: HttpRequest,
    body: web::Json<CreateBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let registry = registry(&req, &state)?;
    let streamer = ChannelName::parse(body.streamer.trim())?;
    tracing::Span::current().record("channel", streamer.as_str());
    let raw: Vec<String> = match &body.types {
        None => state.settings.event_types.clone(),
        Some(Types::List(l)) => l.clone(),
        Some(Types::Csv(s)) => s.split(',').map(str::to_owned).collect(),
    };
    let mut types: Vec<String> = Vec::new();
    for t in raw.iter().filter(|t| !t.trim().is_empty()) {
        let t = parse_type(t)?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    if types.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_type",
            "types must name at least one subscription type",
        ));
    }
    let created = registry.create(&streamer, &types).await?;
    let snapshot = registry.snapshot();
    Ok(HttpResponse::Created().json(json!({
        "total": created.len(),
        "data": created,
        "total_cost": snapshot.total_cost,
        "max_total_cost": snapshot.max_total_cost,
    })))
}

/// `DELETE /api/subscriptions/{id}`: 204, or 404 for an unknown id.
///
/// # Errors
/// 404 / 401 as above, 502 when Twitch fails.
#[tracing::instrument(skip_all, fields(subscription_id))]
pub async fn delete_subscription(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let registry = registry(&req, &state)?;
    let id = path.into_inner();
    if id.is_empty()
        || id.len() > MAX_ID_CHARS
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ApiError::NotFound("Twitch has no such subscription"));
    }
    tracing::Span::current().record("subscription_id", id.as_str());
    registry.delete(&id).await?;
    Ok(HttpResponse::NoContent().finish())
}
