//! `/api/channels/{name}/history` and `/api/channels/{name}/events` (SSE).
//! Both need a session (SPEC §7.4).

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::require_user;
use crate::broker::Subscriber;
use crate::domain::{ChannelName, MessageId};
use crate::error::ApiError;
use crate::sse::SseStream;
use crate::state::AppState;

/// `?since=&limit=`.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    since: Option<String>,
    limit: Option<String>,
}

fn since(raw: Option<&str>) -> Result<Option<MessageId>, ApiError> {
    raw.filter(|s| !s.is_empty())
        .map(MessageId::parse)
        .transpose()
        .map_err(ApiError::from)
}

/// `GET /api/channels/{name}/history`.
#[tracing::instrument(skip_all, fields(channel = %path))]
pub async fn get_history(
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_user(&session)?;
    let channel = ChannelName::parse(&path)?;
    let since = since(query.since.as_deref())?;
    let cap = state.settings.limits.history_len.get();
    let limit = match query.limit.as_deref() {
        None | Some("") => cap,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    "limit must be a whole number of at least 1",
                )
            })?
            .min(cap),
    };
    let messages = state.broker.history(&channel, since, limit).await?;
    let mut body =
        String::with_capacity(messages.iter().map(|m| m.json().len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(m.json());
    }
    body.push(']');
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// `?since=` for SSE.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    since: Option<String>,
}

/// `GET /api/channels/{name}/events`.
#[tracing::instrument(skip_all, fields(channel = %path))]
pub async fn get_events(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<EventsQuery>,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_user(&session)?;
    let channel = ChannelName::parse(&path)?;
    let last_event_id = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok());
    let since = since(last_event_id.or(query.since.as_deref()))?;
    let permit = state.connections.clone().try_acquire_owned().map_err(|_| {
        state.metrics.rejected_connections.inc();
        ApiError::AtCapacity("this instance is at MAX_CONNECTIONS")
    })?;
    let conn = state.next_conn_id();
    let (tx, rx) = mpsc::channel(state.settings.limits.outbound_queue);
    let overflow = CancellationToken::new();
    let replay = state
        .broker
        .subscribe(
            &channel,
            since,
            Subscriber::queue(
                conn,
                tx,
                overflow.clone(),
                state.metrics.slow_consumers.clone(),
            ),
        )
        .await;
    let replay = match replay {
        Ok(r) => r,
        Err(e) => {
            state.broker.unsubscribe(&channel, conn);
            return Err(e.into());
        }
    };
    let gap = since.is_some() && replay.gap;
    let stream = SseStream::new(
        state.broker.clone(),
        channel,
        conn,
        replay,
        rx,
        overflow,
        state.shutdown.clone(),
        state.settings.limits.sse_keepalive,
        permit,
        state.metrics.connections.clone(),
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header(("X-Replay-Gap", if gap { "true" } else { "false" }))
        .streaming(stream.into_body()))
}
