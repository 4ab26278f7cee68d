//! Alert sources (SPEC §8, "Twitch mode"): which EventSub subscriptions
//! feed a channel's alerts, the streamer's grant that allows them, and
//! their state, for the dashboard.
//!
//! "Connect alerts" ends here: [`connect`] keeps the grant
//! (`twitch::grants`) and makes sure of the alert kinds' subscriptions,
//! over the configured transport: webhook subscriptions with the app token
//! through the subscription registry, or (SPEC §10) the streamer's EventSub
//! socket, whose supervisor hears of the new grant and subscribes on its
//! session. [`on_revocation`] turns Twitch's `authorization_revoked` into a
//! revoked grant, and [`sources`] assembles what `GET
//! /api/alerts/{channel}/sources` shows.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::EventSubTransport;
use crate::domain::{ChannelName, User};
use crate::eventsub::envelope::Subscription;
use crate::eventsub::translate::condition_broadcaster_ids;
use crate::state::AppState;
use crate::twitch::Twitch;
use crate::twitch::eventsub_ws::status::SocketStatus;
use crate::twitch::grants::{Grant, GrantError};
use crate::twitch::oauth::{ALERT_SCOPES, IssuedTokens, ValidatedToken};
use crate::twitch::subscriptions::{scope_for, version_for};

/// One alert kind and the subscription type it comes from (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertSource {
    /// The alert kind.
    pub kind: &'static str,
    /// The EventSub subscription type.
    pub sub_type: &'static str,
}

/// The alert kinds that come from EventSub, in the dashboard's order. Raids
/// are subscribed as raids *to* the channel (SPEC §8: the raided channel).
pub const ALERT_SOURCES: &[AlertSource] = &[
    AlertSource {
        kind: "follow",
        sub_type: "channel.follow",
    },
    AlertSource {
        kind: "subscribe",
        sub_type: "channel.subscribe",
    },
    AlertSource {
        kind: "resub",
        sub_type: "channel.subscription.message",
    },
    AlertSource {
        kind: "gift",
        sub_type: "channel.subscription.gift",
    },
    AlertSource {
        kind: "cheer",
        sub_type: "channel.cheer",
    },
    AlertSource {
        kind: "raid",
        sub_type: "channel.raid",
    },
    AlertSource {
        kind: "redemption",
        sub_type: "channel.channel_points_custom_reward_redemption.add",
    },
    AlertSource {
        kind: "hype_train",
        sub_type: "channel.hype_train.begin",
    },
];

/// The subscription types of [`ALERT_SOURCES`].
pub fn alert_types() -> Vec<&'static str> {
    ALERT_SOURCES.iter().map(|s| s.sub_type).collect()
}

/// Revocation reasons that mean the streamer's grant is gone (TWITCH.md
/// §1.7).
const GRANT_ENDING_REASONS: &[&str] = &["authorization_revoked", "user_removed"];

/// The grant as the dashboard shows it (no token, ever).
#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    /// `connected`, `revoked` or `not_connected`.
    pub status: &'static str,
    /// Scopes the token carries.
    pub scopes: Vec<String>,
    /// Alert scopes it lacks.
    pub missing_scopes: Vec<&'static str>,
    /// When it was connected (RFC 3339).
    pub connected_at: Option<String>,
    /// When Twitch last said it is valid.
    pub validated_at: Option<String>,
    /// When the access token expires (it is refreshed before).
    pub expires_at: Option<String>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

/// One alert kind's subscription as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    /// The alert kind.
    pub kind: &'static str,
    /// The subscription type.
    #[serde(rename = "type")]
    pub sub_type: &'static str,
    /// Its version.
    pub version: &'static str,
    /// The scope it needs, if any.
    pub scope: Option<&'static str>,
    /// Twitch's status of the subscription (`enabled`, a revocation
    /// reason…) or the bridge's: `pending` (being created), `error`,
    /// `missing_scope`, `not_connected`, `grant_revoked` (none known and
    /// the grant is revoked), `socket_down`.
    pub status: String,
    /// The subscription id, once created.
    pub subscription_id: Option<String>,
    /// Why it could not be created.
    pub error: Option<String>,
}

/// `GET /api/alerts/{channel}/sources`.
#[derive(Debug, Clone, Serialize)]
pub struct SourcesView {
    /// The channel.
    pub channel: ChannelName,
    /// `webhook` or `websocket` (SPEC §10).
    pub transport: &'static str,
    /// The streamer's grant.
    pub grant: GrantView,
    /// One per alert kind from EventSub.
    pub sources: Vec<SourceView>,
    /// The EventSub socket (WebSocket transport only, once the streamer
    /// connected): state, session, holder, reconnects, last message, its
    /// subscriptions.
    pub socket: Option<SocketView>,
    /// Where "connect alerts" starts.
    pub connect_url: &'static str,
}

/// The streamer's EventSub socket as the dashboard shows it: its whole
/// status (the streamer may see the session id, `/readyz` does not) plus
/// what the dashboard would otherwise compute, `connected` and the last
/// message's age, so that it needs no clock of its own.
#[derive(Debug, Clone, Serialize)]
pub struct SocketView {
    /// The status as the socket's task wrote it.
    #[serde(flatten)]
    pub status: SocketStatus,
    /// True while subscribed and receiving.
    pub connected: bool,
    /// Seconds since the last message of any type (`null` before the
    /// first).
    pub last_message_age_s: Option<f64>,
}

impl From<SocketStatus> for SocketView {
    fn from(status: SocketStatus) -> Self {
        Self {
            connected: status.is_connected(),
            last_message_age_s: status.last_message_age().map(|d| d.as_secs_f64()),
            status,
        }
    }
}

fn rfc3339(unix: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp(unix, 0).map(|t| t.to_rfc3339())
}

fn grant_view(grant: Option<&Grant>) -> GrantView {
    let Some(g) = grant else {
        return GrantView {
            status: "not_connected",
            scopes: Vec::new(),
            missing_scopes: ALERT_SCOPES.to_vec(),
            connected_at: None,
            validated_at: None,
            expires_at: None,
            revoked_reason: None,
            revoked_at: None,
        };
    };
    GrantView {
        status: if g.is_active() {
            "connected"
        } else {
            "revoked"
        },
        scopes: g.scopes.clone(),
        missing_scopes: ALERT_SCOPES
            .iter()
            .copied()
            .filter(|s| !g.has_scope(s))
            .collect(),
        connected_at: rfc3339(g.connected_at),
        validated_at: rfc3339(g.validated_at),
        expires_at: g.expires_at.and_then(rfc3339),
        revoked_reason: g.revoked.as_ref().map(|r| r.reason.clone()),
        revoked_at: g.revoked.as_ref().and_then(|r| rfc3339(r.at)),
    }
}

/// What "connect alerts" does once Twitch gave the streamer's tokens: the
/// grant is kept for the user's own channel, then the alert kinds'
/// subscriptions are made sure of in the background (webhook transport),
/// or the streamer's EventSub socket is started or renewed (WebSocket
/// transport; the grant's topic rings its supervisor).
///
/// # Errors
/// [`GrantError::Store`] when the grant cannot be kept.
pub async fn connect(
    state: &AppState,
    twitch: &Twitch,
    user: &User,
    issued: &IssuedTokens,
    validated: &ValidatedToken,
) -> Result<(), GrantError> {
    let channel = ChannelName::parse(&user.login)
        .map_err(|e| GrantError::Store(crate::broker::BrokerError::Corrupt(e.to_string())))?;
    state.registry.learn(&user.id, channel.as_str());
    let grant = Grant::new(channel.clone(), issued, validated, Utc::now().timestamp());
    twitch.grants.put_new(&grant).await?;
    if state.settings.eventsub_transport == EventSubTransport::Webhook {
        let subs = twitch.subscriptions.clone();
        tokio::spawn(async move {
            if let Err(e) = subs.ensure_types(&channel, &alert_types()).await {
                tracing::warn!(%channel, error = %e, "could not subscribe the alert kinds");
            }
        });
    }
    Ok(())
}

/// A revocation arrived (either transport): when its reason means that
/// the streamer withdrew the grant, the grant is marked revoked. Failing
/// to record it is only logged: the hourly validation finds it too.
pub async fn on_revocation(state: &AppState, sub: &Subscription) {
    let Some(twitch) = &state.twitch else {
        return;
    };
    if !GRANT_ENDING_REASONS.contains(&sub.status.as_str()) {
        return;
    }
    for id in condition_broadcaster_ids(&sub.condition) {
        let Some(channel) = state.registry.login_for(&id) else {
            continue;
        };
        if let Err(e) = twitch.grants.revoke(&channel, &sub.status).await {
            tracing::warn!(%channel, error = %e, "could not mark the alert grant revoked");
        }
    }
}

/// What the dashboard shows about a channel's alert sources. In webhook
/// mode the subscriptions are read fresh from Helix (one filtered list);
/// when Twitch cannot be asked, the registry's last view is shown.
///
/// # Errors
/// [`GrantError::Store`] when the grant cannot be read.
pub async fn sources(
    state: &AppState,
    twitch: &Twitch,
    channel: &ChannelName,
) -> Result<SourcesView, GrantError> {
    let grant = twitch.grants.get(channel).await?;
    let transport = state.settings.eventsub_transport;
    let socket = match state.eventsub_ws.get() {
        Some(ws) if transport == EventSubTransport::WebSocket => ws.status_of(channel).await,
        _ => None,
    };
    let broadcaster_id = match &grant {
        Some(g) => Some(g.user_id.clone()),
        None => state.registry.id_for(channel),
    };
    if transport == EventSubTransport::Webhook {
        if let Some(id) = &broadcaster_id {
            if let Err(e) = twitch.subscriptions.sync_broadcaster(id).await {
                tracing::warn!(%channel, error = %e, "could not read the alert subscriptions from Twitch");
            }
        }
    }
    let sources = ALERT_SOURCES
        .iter()
        .map(|source| {
            let scope = scope_for(source.sub_type);
            let mut view = SourceView {
                kind: source.kind,
                sub_type: source.sub_type,
                version: version_for(source.sub_type),
                scope,
                status: String::new(),
                subscription_id: None,
                error: None,
            };
            let known = match transport {
                EventSubTransport::WebSocket => socket
                    .as_ref()
                    .map(|s| s.subscription(source.sub_type))
                    .unwrap_or_default(),
                EventSubTransport::Webhook => broadcaster_id
                    .as_deref()
                    .map(|id| {
                        let (sub, error) = twitch.subscriptions.status_of(id, source.sub_type);
                        (sub.map(|s| (s.id, s.status)), error)
                    })
                    .unwrap_or_default(),
            };
            let (sub, error) = known;
            view.error = error;
            let active = grant.as_ref().filter(|g| g.is_active());
            view.status = match (&sub, active) {
                (Some((id, status)), _) => {
                    view.subscription_id = Some(id.clone());
                    status.clone()
                }
                (None, None) if grant.is_some() => "grant_revoked".into(),
                (None, None) => "not_connected".into(),
                (None, Some(g)) if scope.is_some_and(|s| !g.has_scope(s)) => "missing_scope".into(),
                (None, Some(_)) if view.error.is_some() => "error".into(),
                (None, Some(_))
                    if transport == EventSubTransport::WebSocket
                        && socket.as_ref().is_none_or(|s| !s.is_connected()) =>
                {
                    "socket_down".into()
                }
                (None, Some(_)) => "pending".into(),
            };
            view
        })
        .collect();
    Ok(SourcesView {
        channel: channel.clone(),
        transport: transport.as_str(),
        grant: grant_view(grant.as_ref()),
        sources,
        socket: socket.map(SocketView::from),
        connect_url: "/auth/connect",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alert_type_is_a_known_subscription_type_with_its_scope() {
        for source in ALERT_SOURCES {
            let needs_scope = source.kind != "raid";
            assert_eq!(
                scope_for(source.sub_type).is_some(),
                needs_scope,
                "{}",
                source.sub_type
            );
            if let Some(scope) = scope_for(source.sub_type) {
                assert!(ALERT_SCOPES.contains(&scope), "{scope} is asked for");
            }
        }
        assert_eq!(version_for("channel.follow"), "2");
        assert_eq!(version_for("channel.hype_train.begin"), "2");
    }

    #[test]
    fn the_socket_view_adds_connected_and_the_last_message_age_to_the_status() {
        use crate::twitch::eventsub_ws::status::SocketState;
        let mut status = SocketStatus::new(ChannelName::parse("teststreamer").unwrap(), "i1");
        let view = serde_json::to_value(SocketView::from(status.clone())).unwrap();
        assert_eq!(view["state"], "connecting");
        assert_eq!(view["connected"], false);
        assert!(view["last_message_age_s"].is_null());
        status.state = SocketState::Connected;
        status.reconnects = 2;
        status.last_message_at_ms = Some(Utc::now().timestamp_millis() - 5_000);
        let view = serde_json::to_value(SocketView::from(status)).unwrap();
        assert_eq!(view["connected"], true);
        assert_eq!(view["reconnects"], 2);
        assert_eq!(view["channel"], "teststreamer");
        let age = view["last_message_age_s"].as_f64().unwrap();
        assert!((5.0..60.0).contains(&age), "{age}");
    }

    #[test]
    fn without_a_grant_every_alert_scope_is_missing() {
        let v = grant_view(None);
        assert_eq!(v.status, "not_connected");
        assert_eq!(v.missing_scopes.len(), ALERT_SCOPES.len());
    }
}
