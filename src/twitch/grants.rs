//! Streamers' alert grants (SPEC §8, "Twitch mode"): the user access and
//! refresh token a streamer gave the bridge through "connect alerts", kept
//! server-side for their channel (never in a cookie, never logged), in
//! memory or in Redis (shared by every instance), and kept alive as
//! TWITCH.md §4 asks: refreshed when it expires (or Helix answers 401) and
//! validated every hour. A grant that stops working (the refresh token is
//! refused, a refreshed token does not validate, or Twitch revokes it with
//! `authorization_revoked`) is kept as revoked, so that the dashboard can
//! say so and ask to connect again.
//!
//! Redis keys: `{prefix}:grant:{channel}` (JSON, no expiry: a grant lasts
//! until it is replaced) and the set `{prefix}:grants` of channels that have
//! one (at most [`MAX_GRANTS`]). Every change rings the `grants` topic
//! (`Broker::publish_topic`) with the channel name, so that the EventSub
//! socket supervisor of every instance hears of it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use parking_lot::RwLock;
use redis::aio::ConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, BrokerError};
use crate::domain::ChannelName;
use crate::twitch::oauth::{IssuedTokens, OAuthClient, OAuthError, ValidatedToken};

/// Most grants kept (one per connected streamer).
pub const MAX_GRANTS: usize = 100_000;
/// The topic rung with a channel name whenever its grant changes.
pub const GRANTS_TOPIC: &str = "grants";
/// A token is refreshed this long before Twitch said it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(120);

/// Why a grant could not be used or kept.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The streamer never connected alerts.
    #[error("{0} has not connected alerts")]
    NotConnected(ChannelName),
    /// The grant was revoked; the streamer must connect again.
    #[error("the alert grant of {channel} was revoked ({reason}); connect alerts again")]
    Revoked {
        /// The channel.
        channel: ChannelName,
        /// Why.
        reason: String,
    },
    /// Twitch could not be asked.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The store (Redis) failed.
    #[error(transparent)]
    Store(#[from] BrokerError),
}

/// Why a grant stopped working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// `authorization_revoked`, `refresh_refused`, `token_invalid`, …
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
}

/// One streamer's grant. `Debug` and the public fields never show a token.
#[derive(Clone, Serialize, Deserialize)]
pub struct Grant {
    /// The channel (the streamer's login).
    pub channel: ChannelName,
    /// The streamer's Twitch user id.
    pub user_id: String,
    /// Scopes Twitch says the token carries.
    pub scopes: Vec<String>,
    /// Unix seconds of the connect.
    pub connected_at: i64,
    /// Unix seconds of the last successful validation.
    pub validated_at: i64,
    /// Unix seconds when the access token expires, when Twitch said.
    pub expires_at: Option<i64>,
    /// Set once the grant stopped working.
    pub revoked: Option<Revoked>,
    access_token: String,
    refresh_token: Option<String>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("channel", &self.channel)
            .field("user_id", &self.user_id)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

impl Grant {
    /// A new, working grant from a code exchange and its validation.
    pub fn new(
        channel: ChannelName,
        issued: &IssuedTokens,
        validated: &ValidatedToken,
        now: i64,
    ) -> Self {
        let mut grant = Self {
            channel,
            user_id: validated.user_id.clone().unwrap_or_default(),
            scopes: Vec::new(),
            connected_at: now,
            validated_at: now,
            expires_at: None,
            revoked: None,
            access_token: String::new(),
            refresh_token: None,
        };
        grant.take_tokens(issued, now);
        grant.note_validation(validated, now);
        grant
    }

    /// The access token.
    pub fn access_token(&self) -> SecretString {
        SecretString::from(self.access_token.as_str())
    }

    /// True while the grant works.
    pub fn is_active(&self) -> bool {
        self.revoked.is_none()
    }

    /// True when `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// True when the access token expires within the refresh margin.
    pub fn is_expiring(&self, now: i64) -> bool {
        self.expires_at
            .is_some_and(|at| at - (REFRESH_MARGIN.as_secs() as i64) <= now)
    }

    fn take_tokens(&mut self, issued: &IssuedTokens, now: i64) {
        self.access_token = issued.access_token.expose_secret().to_owned();
        if let Some(r) = &issued.refresh_token {
            self.refresh_token = Some(r.expose_secret().to_owned());
        }
        if !issued.scopes.is_empty() {
            self.scopes.clone_from(&issued.scopes);
        }
        self.expires_at = issued
            .expires_in
            .filter(|d| !d.is_zero())
            .map(|d| now + d.as_secs() as i64);
    }

    fn note_validation(&mut self, v: &ValidatedToken, now: i64) {
        self.validated_at = now;
        self.scopes.clone_from(&v.scopes);
        // TWITCH.md §4: `expires_in` 0 means the token does not expire.
        self.expires_at = (v.expires_in > 0).then(|| now + v.expires_in as i64);
    }

    fn revoke(&mut self, reason: &str, now: i64) {
        if self.revoked.is_none() {
            self.revoked = Some(Revoked {
                reason: reason.to_owned(),
                at: now,
            });
        }
    }
}

/// Where grants live.
enum GrantStore {
    /// One process.
    Memory(RwLock<HashMap<ChannelName, Grant>>),
    /// Shared by every instance.
    Redis {
        conn: ConnectionManager,
        prefix: String,
        timeout: Duration,
    },
}

async fn query<T: redis::FromRedisValue>(
    conn: &ConnectionManager,
    timeout: Duration,
    cmd: &redis::Cmd,
) -> Result<T, BrokerError> {
    let mut conn = conn.clone();
    tokio::time::timeout(timeout, cmd.query_async(&mut conn))
        .await
        .map_err(|_| BrokerError::Timeout)?
        .map_err(|e| BrokerError::Unavailable(e.to_string()))
}

impl GrantStore {
    async fn get(&self, channel: &ChannelName) -> Result<Option<Grant>, BrokerError> {
        match self {
            Self::Memory(map) => Ok(map.read().get(channel).cloned()),
            Self::Redis {
                conn,
                prefix,
                timeout,
            } => {
                let raw: Option<String> = query(
                    conn,
                    *timeout,
                    redis::cmd("GET").arg(format!("{prefix}:grant:{channel}")),
                )
                .await?;
                raw.map(|r| serde_json::from_str(&r))
                    .transpose()
                    .map_err(|e| BrokerError::Corrupt(format!("grant of {channel}: {e}")))
            }
        }
    }

    async fn put(&self, grant: &Grant) -> Result<(), BrokerError> {
        match self {
            Self::Memory(map) => {
                let mut map = map.write();
                if map.len() < MAX_GRANTS || map.contains_key(&grant.channel) {
                    map.insert(grant.channel.clone(), grant.clone());
                    Ok(())
                } else {
                    Err(BrokerError::Unavailable(format!(
                        "more than {MAX_GRANTS} grants"
                    )))
                }
            }
            Self::Redis {
                conn,
                prefix,
                timeout,
            } => {
                let set = format!("{prefix}:grants");
                let count: u64 = query(conn, *timeout, redis::cmd("SCARD").arg(&set)).await?;
                let member: bool = query(
                    conn,
                    *timeout,
                    redis::cmd("SISMEMBER")
                        .arg(&set)
                        .arg(grant.channel.as_str()),
                )
                .await?;
                if count as usize >= MAX_GRANTS && !member {
                    return Err(BrokerError::Unavailable(format!(
                        "more than {MAX_GRANTS} grants"
                    )));
                }
                let json = serde_json::to_string(grant)
                    .map_err(|e| BrokerError::Corrupt(e.to_string()))?;
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("SET")
                    .arg(format!("{prefix}:grant:{}", grant.channel))
                    .arg(json)
                    .ignore()
                    .cmd("SADD")
                    .arg(&set)
                    .arg(grant.channel.as_str())
                    .ignore();
                let mut c = conn.clone();
                tokio::time::timeout(*timeout, pipe.query_async::<()>(&mut c))
                    .await
                    .map_err(|_| BrokerError::Timeout)?
                    .map_err(|e| BrokerError::Unavailable(e.to_string()))
            }
        }
    }

    async fn channels(&self) -> Result<Vec<ChannelName>, BrokerError> {
        match self {
            Self::Memory(map) => Ok(map.read().keys().cloned().collect()),
            Self::Redis {
                conn,
                prefix,
                timeout,
            } => {
                let raw: Vec<String> = query(
                    conn,
                    *timeout,
                    redis::cmd("SMEMBERS").arg(format!("{prefix}:grants")),
                )
                .await?;
                Ok(raw
                    .iter()
                    .filter_map(|c| ChannelName::parse(c).ok())
                    .collect())
            }
        }
    }

    /// `SET key 1 NX PX ttl` in Redis: true for the one caller that got it.
    /// In memory there is one process, so always true.
    async fn try_once(&self, name: &str, ttl: Duration) -> Result<bool, BrokerError> {
        match self {
            Self::Memory(_) => Ok(true),
            Self::Redis {
                conn,
                prefix,
                timeout,
            } => {
                let ok: Option<String> = query(
                    conn,
                    *timeout,
                    redis::cmd("SET")
                        .arg(format!("{prefix}:{name}"))
                        .arg(1)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl.as_millis() as u64),
                )
                .await?;
                Ok(ok.is_some())
            }
        }
    }
}

/// The grants of every connected streamer, and their upkeep.
pub struct Grants {
    store: GrantStore,
    oauth: OAuthClient,
    broker: Arc<Broker>,
    /// One refresh at a time in this process, so that two callers that saw
    /// the same expired token do not both spend the refresh token.
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grants").finish_non_exhaustive()
    }
}

fn now() -> i64 {
    Utc::now().timestamp()
}

impl Grants {
    /// Grants in Redis when the broker is Redis, in memory otherwise.
    pub fn new(oauth: OAuthClient, broker: Arc<Broker>) -> Self {
        let store = match broker.redis() {
            Some(redis) => {
                let (conn, prefix, timeout) = redis.store();
                GrantStore::Redis {
                    conn,
                    prefix: prefix.to_owned(),
                    timeout,
                }
            }
            None => GrantStore::Memory(RwLock::new(HashMap::new())),
        };
        Self {
            store,
            oauth,
            broker,
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The grant of `channel`, working or revoked.
    ///
    /// # Errors
    /// [`GrantError::Store`].
    pub async fn get(&self, channel: &ChannelName) -> Result<Option<Grant>, GrantError> {
        Ok(self.store.get(channel).await?)
    }

    /// Every channel that has a grant (working or revoked).
    ///
    /// # Errors
    /// [`GrantError::Store`].
    pub async fn channels(&self) -> Result<Vec<ChannelName>, GrantError> {
        Ok(self.store.channels().await?)
    }

    /// Keeps a new grant (replacing any earlier one of the channel).
    ///
    /// # Errors
    /// [`GrantError::Store`].
    #[tracing::instrument(skip_all, fields(channel = %grant.channel))]
    pub async fn put_new(&self, grant: &Grant) -> Result<(), GrantError> {
        self.store.put(grant).await?;
        tracing::info!(scopes = ?grant.scopes, "alert grant connected");
        self.ring(&grant.channel).await;
        Ok(())
    }

    /// Marks the grant of `channel` revoked (no-op without one).
    ///
    /// # Errors
    /// [`GrantError::Store`].
    #[tracing::instrument(skip(self))]
    pub async fn revoke(&self, channel: &ChannelName, reason: &str) -> Result<(), GrantError> {
        let Some(mut grant) = self.store.get(channel).await? else {
            return Ok(());
        };
        if !grant.is_active() {
            return Ok(());
        }
        grant.revoke(reason, now());
        self.store.put(&grant).await?;
        tracing::warn!(reason, "alert grant revoked");
        self.ring(channel).await;
        Ok(())
    }

    async fn ring(&self, channel: &ChannelName) {
        if let Err(e) = self
            .broker
            .publish_topic(GRANTS_TOPIC, channel.as_str().as_bytes())
            .await
        {
            // The supervisors also look at the grants on their own timer.
            tracing::warn!(error = %e, "could not announce a grant change");
        }
    }

    fn working(channel: &ChannelName, grant: Option<Grant>) -> Result<Grant, GrantError> {
        let grant = grant.ok_or_else(|| GrantError::NotConnected(channel.clone()))?;
        match &grant.revoked {
            None => Ok(grant),
            Some(r) => Err(GrantError::Revoked {
                channel: channel.clone(),
                reason: r.reason.clone(),
            }),
        }
    }

    /// A working access token of `channel`, refreshed first when it is
    /// about to expire.
    ///
    /// # Errors
    /// [`GrantError::NotConnected`], [`GrantError::Revoked`] (also when the
    /// refresh is refused now), or Twitch / the store failing.
    pub async fn access_token(&self, channel: &ChannelName) -> Result<Grant, GrantError> {
        let grant = Self::working(channel, self.store.get(channel).await?)?;
        if !grant.is_expiring(now()) {
            return Ok(grant);
        }
        self.refresh_from(channel, &grant.access_token).await
    }

    /// Refreshes the token of `channel` because Twitch refused `stale` (a
    /// Helix 401). A token already replaced meanwhile is simply returned.
    ///
    /// # Errors
    /// As [`Self::access_token`].
    pub async fn refresh_after_401(
        &self,
        channel: &ChannelName,
        stale: &SecretString,
    ) -> Result<Grant, GrantError> {
        self.refresh_from(channel, stale.expose_secret()).await
    }

    #[tracing::instrument(skip(self, stale))]
    async fn refresh_from(&self, channel: &ChannelName, stale: &str) -> Result<Grant, GrantError> {
        let _one = self.refreshing.lock().await;
        let mut grant = Self::working(channel, self.store.get(channel).await?)?;
        if grant.access_token != stale {
            return Ok(grant);
        }
        let Some(refresh) = grant.refresh_token.clone() else {
            self.revoke(channel, "no_refresh_token").await?;
            return Err(GrantError::Revoked {
                channel: channel.clone(),
                reason: "no_refresh_token".into(),
            });
        };
        match self.oauth.refresh(&SecretString::from(refresh)).await {
            Ok(issued) => {
                let t = now();
                grant.take_tokens(&issued, t);
                self.store.put(&grant).await?;
                tracing::info!("alert grant token refreshed");
                Ok(grant)
            }
            Err(OAuthError::RefreshRefused) => {
                self.revoke(channel, "refresh_refused").await?;
                Err(GrantError::Revoked {
                    channel: channel.clone(),
                    reason: "refresh_refused".into(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The hourly check of one grant (TWITCH.md §4): validate; on a 401
    /// refresh and validate the new token; a grant that fails for good is
    /// marked revoked. Twitch not answering leaves it as it is.
    ///
    /// # Errors
    /// Twitch or the store failing (the grant is kept).
    #[tracing::instrument(skip(self))]
    pub async fn revalidate(&self, channel: &ChannelName) -> Result<(), GrantError> {
        let Some(grant) = self.store.get(channel).await? else {
            return Ok(());
        };
        if !grant.is_active() {
            return Ok(());
        }
        let grant = match self.oauth.validate(&grant.access_token()).await {
            Ok(v) => return self.note_valid(channel, &grant.access_token, &v).await,
            Err(OAuthError::TokenInvalid) => {
                match self.refresh_from(channel, &grant.access_token).await {
                    Ok(g) => g,
                    Err(GrantError::Revoked { .. }) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e.into()),
        };
        match self.oauth.validate(&grant.access_token()).await {
            Ok(v) => self.note_valid(channel, &grant.access_token, &v).await,
            Err(OAuthError::TokenInvalid) => self.revoke(channel, "token_invalid").await,
            Err(e) => Err(e.into()),
        }
    }

    async fn note_valid(
        &self,
        channel: &ChannelName,
        token: &str,
        v: &ValidatedToken,
    ) -> Result<(), GrantError> {
        let _one = self.refreshing.lock().await;
        let Some(mut grant) = self.store.get(channel).await? else {
            return Ok(());
        };
        // Only if nothing replaced the token meanwhile.
        if grant.is_active() && grant.access_token == token {
            grant.note_validation(v, now());
            self.store.put(&grant).await?;
        }
        Ok(())
    }

    /// Validates every working grant now (one instance per interval in
    /// Redis mode).
    pub async fn revalidate_all(&self, interval: Duration) {
        match self
            .store
            .try_once("grants:revalidate", interval.mul_f64(0.9))
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot validate alert grants now");
                return;
            }
        }
        let channels = match self.store.channels().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list alert grants");
                return;
            }
        };
        for channel in channels {
            if let Err(e) = self.revalidate(&channel).await {
                tracing::warn!(%channel, error = %e, "could not validate an alert grant; keeping it");
            }
        }
    }

    /// Validates every grant every `interval` until `shutdown`.
    pub fn spawn_revalidation(self: &Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is now: a restart validates at once (TWITCH.md
            // §4: at start and hourly).
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => this.revalidate_all(interval).await,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(access: &str, expires_in: u64) -> IssuedTokens {
        IssuedTokens {
            access_token: SecretString::from(access),
            refresh_token: Some(SecretString::from("refresh-secret")),
            expires_in: Some(Duration::from_secs(expires_in)),
            scopes: vec!["bits:read".into()],
        }
    }

    fn validated(expires_in: u64) -> ValidatedToken {
        ValidatedToken {
            client_id: "c".into(),
            login: Some("teststreamer".into()),
            user_id: Some("1001".into()),
            scopes: vec!["bits:read".into(), "channel:read:subscriptions".into()],
            expires_in,
        }
    }

    fn grant() -> Grant {
        Grant::new(
            ChannelName::parse("teststreamer").unwrap(),
            &issued("access-secret", 3600),
            &validated(3000),
            1_000,
        )
    }

    #[test]
    fn a_new_grant_takes_scopes_and_expiry_from_the_validation() {
        let g = grant();
        assert_eq!(g.user_id, "1001");
        assert!(g.has_scope("channel:read:subscriptions"));
        assert_eq!(g.expires_at, Some(4_000));
        assert!(g.is_active());
        assert!(!g.is_expiring(1_000));
        assert!(g.is_expiring(4_000 - 60));
    }

    #[test]
    fn grants_never_show_their_tokens() {
        let g = grant();
        let debug = format!("{g:?}");
        assert!(!debug.contains("access-secret") && !debug.contains("refresh-secret"));
        let view = format!("{:?}", issued("access-secret", 1));
        assert!(!view.contains("access-secret"));
    }

    #[test]
    fn a_revocation_is_kept_with_its_first_reason() {
        let mut g = grant();
        g.revoke("authorization_revoked", 5);
        g.revoke("refresh_refused", 6);
        assert!(!g.is_active());
        assert_eq!(
            g.revoked,
            Some(Revoked {
                reason: "authorization_revoked".into(),
                at: 5
            })
        );
    }

    #[test]
    fn a_token_that_does_not_expire_is_never_expiring() {
        let mut g = grant();
        g.note_validation(&validated(0), 10);
        assert_eq!(g.expires_at, None);
        assert!(!g.is_expiring(i64::MAX / 2));
    }

    #[test]
    fn a_grant_round_trips_through_json_for_redis() {
        let g = grant();
        let json = serde_json::to_string(&g).unwrap();
        let back: Grant = serde_json::from_str(&json).unwrap();
        assert_eq!(back.access_token().expose_secret(), "access-secret");
        assert_eq!(back.scopes, g.scopes);
    }
}
