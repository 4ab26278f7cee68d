//! `POST /api/publish`: apps publish to a channel with the bearer token
//! (SPEC §4), idempotent under `Idempotency-Key`.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::broker::Claim;
use crate::domain::{ChannelName, MessageDraft, Source};
use crate::error::ApiError;
use crate::routes::bearer::check_bearer;
use crate::state::AppState;

const IDEMPOTENCY_NAMESPACE: &str = "idem";
const MAX_TYPE_CHARS: usize = 100;
const MAX_TEXT_CHARS: usize = 1000;
/// The longest a publish waits for the flusher pass in progress before it
/// is answered anyway: long enough for a pass over every viewer of a busy
/// instance, so that the wait stays the backpressure under overload.
const PUBLISH_SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// The publish body.
#[derive(Debug, Deserialize)]
pub struct PublishBody {
    channel: String,
    #[serde(rename = "type")]
    event_type: String,
    data: Box<RawValue>,
    text: Option<String>,
}

/// `POST /api/publish`.
#[tracing::instrument(skip_all, fields(channel))]
pub async fn post_publish(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = &state.settings.publish_token else {
        return Err(ApiError::NotFound(
            "the publish API is off: set PUBLISH_TOKEN",
        ));
    };
    check_bearer(&req, token)?;
    // The body is parsed only after the token check, so an unauthorized
    // caller learns nothing about the body rules.
    let body: PublishBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("body: {e}")))?;
    let channel = ChannelName::parse(&body.channel)?;
    tracing::Span::current().record("channel", channel.as_str());
    let event_type = body.event_type.trim();
    if event_type.is_empty() || event_type.chars().count() > MAX_TYPE_CHARS {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("type must be 1 to {MAX_TYPE_CHARS} characters"),
        ));
    }
    if body
        .text
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS)
    {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("text must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    let idem_key = req
        .headers()
        .get("Idempotency-Key")
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .map(|k| format!("{channel}:{k}"))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 200 visible ASCII characters",
                    )
                })
        })
        .transpose()?;
    let limits = &state.settings.limits;
    let window = limits.idempotency_window;
    let attempt = match &idem_key {
        None => None,
        Some(key) => match state
            .broker
            .claim(IDEMPOTENCY_NAMESPACE, key, limits.claim_lease)
            .await?
        {
            Claim::New(attempt) => Some(attempt),
            Claim::Done(id) => {
                return Ok(HttpResponse::Accepted().json(serde_json::json!({"id": id})));
            }
            // SPEC §7.19.
            Claim::InFlight => {
                return Err(ApiError::Conflict(
                    "a publish with this Idempotency-Key is still in progress",
                ));
            }
        },
    };
    let draft = MessageDraft {
        text: body.text.unwrap_or_else(|| event_type.to_owned()),
        channel,
        event_type: event_type.to_owned(),
        version: "1".into(),
        source: Source::Publish,
        at: Utc::now(),
        data: body.data,
    };
    // An error drops `attempt`, which frees the key for the client's retry;
    // a publish that ran in Redis although it timed out here is not
    // repeated by that retry (`publish_once`), which gets its id.
    let id = match (&idem_key, attempt) {
        (Some(key), Some(attempt)) => {
            let id = state
                .broker
                .publish_once(draft, &format!("{IDEMPOTENCY_NAMESPACE}:{key}"), window)
                .await?
                .to_string();
            attempt.complete(&id, window).await?;
            id
        }
        _ => state.broker.publish(draft).await?.id().to_string(),
    };
    // While the sockets are behind (a flusher pass in progress), answered
    // once that pass is over: publishers cannot queue faster than the
    // viewers' sockets take it (issue 14). Otherwise at once: the frames
    // are queued and the flusher's next pass writes them.
    state.flushers.settle_if_behind(PUBLISH_SETTLE_LIMIT).await;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"id": id})))
}
