//! `ApiError`: the one `ResponseError` of the HTTP layer. Every layer's error
//! converts into it; this is the only place statuses and error bodies are
//! chosen (`{"error":"code","message":"…"}`), and where 5xx causes are logged.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::alerts::settings::SettingsError;
use crate::alerts::sources::InputError;
use crate::broker::BrokerError;
use crate::domain::{ChannelNameError, MessageIdError};
use crate::twitch::grants::GrantError;
use crate::twitch::helix::HelixError;
use crate::twitch::oauth::OAuthError;
use crate::twitch::subscriptions::SubscriptionError;

/// An HTTP error with a machine code and a human message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400.
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// 401.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(&'static str),
    /// 409.
    #[error("{0}")]
    Conflict(&'static str),
    /// 413.
    #[error("body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 429: a queue is full (e.g. a channel's alerts, SPEC §8).
    #[error("{0}")]
    TooManyRequests(&'static str),
    /// 503, with the cause logged.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// 503 for a capacity limit (nothing to log).
    #[error("{0}")]
    AtCapacity(&'static str),
    /// 502: an upstream (Twitch) answered badly.
    #[error("upstream error")]
    BadGateway(#[source] anyhow::Error),
    /// 500, with the cause logged.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } => code,
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::TooManyRequests(_) => "queue_full",
            Self::Unavailable(_) | Self::AtCapacity(_) => "unavailable",
            Self::BadGateway(_) => "bad_gateway",
            Self::Internal(_) => "internal",
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::AtCapacity(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            Self::Unavailable(e) | Self::BadGateway(e) | Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), %status, "request failed");
            }
            _ => {}
        }
        let mut resp = HttpResponse::build(status);
        if matches!(
            self,
            Self::Unavailable(_) | Self::AtCapacity(_) | Self::TooManyRequests(_)
        ) {
            resp.insert_header(("Retry-After", "5"));
        }
        if matches!(self, Self::PayloadTooLarge(_)) {
            // The unread body is left on the connection, so it is closed; say
            // so, or the client may reuse it for its next request and fail.
            resp.force_close();
        }
        resp.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
        })
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        // A broker failure is never the client's fault (STYLE: never a 4xx).
        Self::Unavailable(e.into())
    }
}

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        Self::bad_request("invalid_settings", e.to_string())
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        Self::bad_request("invalid_alert", e.to_string())
    }
}

impl From<ChannelNameError> for ApiError {
    fn from(e: ChannelNameError) -> Self {
        Self::bad_request("invalid_channel", e.to_string())
    }
}

impl From<MessageIdError> for ApiError {
    fn from(e: MessageIdError) -> Self {
        Self::bad_request("invalid_id", e.to_string())
    }
}

impl From<HelixError> for ApiError {
    fn from(e: HelixError) -> Self {
        match e {
            HelixError::NoCredentials => {
                Self::NotFound("this needs Twitch credentials (TWITCH_CLIENT_ID)")
            }
            HelixError::NotFound(_) => Self::NotFound("Twitch has no such subscription"),
            // Twitch refused the request itself (bad type, version, condition…).
            HelixError::Rejected { .. } => Self::bad_request("twitch_rejected", e.to_string()),
            _ => Self::BadGateway(e.into()),
        }
    }
}

impl From<SubscriptionError> for ApiError {
    fn from(e: SubscriptionError) -> Self {
        match e {
            SubscriptionError::UnknownStreamer(_) => {
                Self::bad_request("unknown_streamer", e.to_string())
            }
            SubscriptionError::InvalidType(_) => Self::bad_request("invalid_type", e.to_string()),
            SubscriptionError::CostLimit { .. } => {
                Self::Conflict("the Twitch subscription cost limit is reached")
            }
            SubscriptionError::Helix(h) => h.into(),
        }
    }
}

impl From<GrantError> for ApiError {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::Store(b) => b.into(),
            GrantError::OAuth(o) => o.into(),
            GrantError::NotConnected(_) | GrantError::Revoked { .. } => {
                Self::Conflict("connect alerts first: the grant is missing or revoked")
            }
        }
    }
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        let code = match &e {
            OAuthError::StateMissing => "missing_state",
            OAuthError::StateInvalid => "invalid_state",
            OAuthError::StateExpired => "expired_state",
            OAuthError::Denied => "access_denied",
            OAuthError::Provider { .. } => "oauth_error",
            OAuthError::MissingCode => "missing_code",
            OAuthError::Session(_) | OAuthError::Url(_) => return Self::Internal(e.into()),
            OAuthError::OtherAccount { .. } => return Self::Forbidden(e.to_string()),
            OAuthError::Unavailable(_) => return Self::Unavailable(e.into()),
            OAuthError::Exchange(_)
            | OAuthError::TokenInvalid
            | OAuthError::WrongClient
            | OAuthError::Validate(_)
            | OAuthError::RefreshRefused
            | OAuthError::User(_) => return Self::BadGateway(e.into()),
        };
        Self::bad_request(code, e.to_string())
    }
}

/// Maps actix's extractor errors (JSON, query, payload size) to `ApiError`
/// bodies, so every 4xx has the same shape.
pub fn json_config(limit: usize) -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _| {
            let api = match &err {
                actix_web::error::JsonPayloadError::Overflow { .. }
                | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => {
                    ApiError::PayloadTooLarge(limit)
                }
                _ => ApiError::bad_request("invalid_body", err.to_string()),
            };
            api.into()
        })
}

/// Query-string errors as 400 `invalid_query`.
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default()
        .error_handler(|err, _| ApiError::bad_request("invalid_query", err.to_string()).into())
}

/// Form errors as 400 `invalid_form`.
pub fn form_config() -> actix_web::web::FormConfig {
    actix_web::web::FormConfig::default()
        .limit(16 * 1024)
        .error_handler(|err, _| ApiError::bad_request("invalid_form", err.to_string()).into())
}

/// Raw body errors: 413 past the limit.
pub fn payload_config(limit: usize) -> actix_web::web::PayloadConfig {
    actix_web::web::PayloadConfig::new(limit)
}
