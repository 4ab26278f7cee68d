//! Twitch's APIs, as a client (Twitch mode only): the Helix client, OAuth
//! (login and "connect alerts"), the subscription registry and the
//! streamers' alert grants, bundled in [`Twitch`]; the client side of
//! EventSub's WebSocket transport (`eventsub_ws`, SPEC §10); and
//! `alert_sources`, "connect alerts" (SPEC §8 Twitch mode): the alert
//! kinds' subscriptions of a channel and their status. What EventSub messages
//! look like and mean (signatures, bodies, translation) is
//! `crate::eventsub`.

pub mod alert_sources;
pub mod eventsub_ws;
pub mod grants;
pub mod helix;
pub mod oauth;
pub mod subscriptions;

use std::sync::Arc;

use crate::broker::Broker;
use crate::config::Settings;
use crate::eventsub::registry::BroadcasterRegistry;
use grants::Grants;
use helix::{HelixClient, HelixError};
use oauth::OAuthClient;
use subscriptions::SubscriptionRegistry;

/// The Twitch side of a server in Twitch mode: one shared HTTP client
/// behind the Helix and OAuth clients, and the subscription registry.
#[derive(Debug)]
pub struct Twitch {
    /// Helix (app token).
    pub helix: HelixClient,
    /// Viewer login.
    pub oauth: OAuthClient,
    /// Our EventSub subscriptions.
    pub subscriptions: Arc<SubscriptionRegistry>,
    /// Streamers' alert grants (SPEC §8).
    pub grants: Arc<Grants>,
}

impl Twitch {
    /// Builds the clients; `None` in local mode.
    ///
    /// # Errors
    /// [`HelixError`] when the HTTP client or a URL cannot be built.
    pub fn from_settings(
        settings: &Settings,
        broadcasters: Arc<BroadcasterRegistry>,
        broker: Arc<Broker>,
    ) -> Result<Option<Self>, HelixError> {
        if matches!(settings.mode, crate::config::Mode::Local) {
            return Ok(None);
        }
        let http = helix::http_client(settings.limits.twitch_timeout)?;
        let Some(oauth) = OAuthClient::new(http.clone(), settings)
            .map_err(|e| HelixError::Config(e.to_string()))?
        else {
            return Ok(None);
        };
        let helix = HelixClient::new(http, settings)?;
        let grants = Arc::new(Grants::new(oauth.clone(), broker.clone()));
        let subscriptions = Arc::new(SubscriptionRegistry::new(
            helix.clone(),
            broadcasters,
            broker,
            settings.event_types.clone(),
            settings.limits.ensure_retry_after,
        ));
        Ok(Some(Self {
            helix,
            oauth,
            subscriptions,
            grants,
        }))
    }

    /// Reconciles the subscription registry with Helix in the background
    /// (the server does not wait for it); stops early on shutdown.
    pub fn spawn_reconcile(&self, shutdown: tokio_util::sync::CancellationToken) {
        let subs = Arc::clone(&self.subscriptions);
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                result = subs.reconcile() => {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "reconciling subscriptions with Twitch failed");
                    }
                }
            }
        });
    }
}
