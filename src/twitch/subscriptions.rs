//! The subscription registry: which EventSub subscriptions this bridge has
//! on Twitch (those whose callback is ours), their status and cost against
//! `max_total_cost`, and the operations that change them.
//!
//! - `ensure_on_watch` (from `/watch/{streamer}`): a single-flight map makes
//!   sure at most one Helix round per streamer runs at a time, in a spawned
//!   task so the page never waits; failures go to the channel as `system`
//!   messages of type `subscription.error`, so they show in the feed.
//! - `reconcile` (at start): adopts our live subscriptions, deletes our
//!   failed ones, and learns their broadcasters' logins.
//! - `mark_revoked` (from the webhook): a revocation is final.
//! - `sync` / `create` / `delete` for the admin API.
//! - `ensure_types` / `sync_broadcaster` / `status_of` for "connect alerts"
//!   (SPEC §8): the alert kinds' subscriptions of one streamer, each with
//!   its outcome, and the last error of a type that could not be created.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::broker::Broker;
use crate::domain::{ChannelName, MessageDraft, Source};
use crate::eventsub::envelope::Subscription as WebhookSubscription;
use crate::eventsub::registry::BroadcasterRegistry;
use crate::eventsub::translate::condition_broadcaster_ids;
use crate::twitch::helix::{Costs, Created, HelixClient, HelixError, HelixSubscription};

/// Most subscriptions tracked; Twitch's default cost limit is 10 000.
pub const MAX_TRACKED: usize = 200_000;
/// Most streamers remembered in the single-flight map.
pub const MAX_FLIGHTS: usize = 100_000;
/// The `type` of the system message that reports a failed ensure.
pub const ERROR_EVENT_TYPE: &str = "subscription.error";

/// Why a subscription operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// Get Users found no such login.
    #[error("Twitch has no user named {0}")]
    UnknownStreamer(ChannelName),
    /// Creating it would pass `max_total_cost`.
    #[error("the subscription cost limit is reached ({total_cost} of {max_total_cost})")]
    CostLimit {
        /// Current total cost.
        total_cost: u64,
        /// The limit.
        max_total_cost: u64,
    },
    /// A type name that is not a subscription type.
    #[error("`{0}` is not a subscription type like stream.online")]
    InvalidType(String),
    /// Helix failed.
    #[error(transparent)]
    Helix(#[from] HelixError),
}

/// True for the statuses of a working (or about to work) subscription.
pub fn is_live(status: &str) -> bool {
    matches!(status, "enabled" | "webhook_callback_verification_pending")
}

/// The version the bridge subscribes to for a type (TWITCH.md §5).
pub fn version_for(sub_type: &str) -> &'static str {
    match sub_type {
        "channel.update" | "channel.follow" | "channel.hype_train.begin" => "2",
        _ => "1",
    }
}

/// The condition for a streamer's subscription of `sub_type` (TWITCH.md §5).
/// Raids are subscribed as raids *to* the streamer (one subscription per
/// type, as SPEC's cost of 4 per streamer assumes).
pub fn condition_for(sub_type: &str, broadcaster_id: &str) -> Value {
    match sub_type {
        "channel.raid" => json!({ "to_broadcaster_user_id": broadcaster_id }),
        "channel.follow" => json!({
            "broadcaster_user_id": broadcaster_id,
            "moderator_user_id": broadcaster_id,
        }),
        "channel.chat.message" => json!({
            "broadcaster_user_id": broadcaster_id,
            "user_id": broadcaster_id,
        }),
        _ => json!({ "broadcaster_user_id": broadcaster_id }),
    }
}

/// The scope a subscription of `sub_type` needs from the broadcaster
/// (TWITCH.md §5); `None` for the types anyone may subscribe to.
pub fn scope_for(sub_type: &str) -> Option<&'static str> {
    Some(match sub_type {
        "channel.follow" => "moderator:read:followers",
        "channel.subscribe" | "channel.subscription.gift" | "channel.subscription.message" => {
            "channel:read:subscriptions"
        }
        "channel.cheer" => "bits:read",
        "channel.channel_points_custom_reward_redemption.add" => "channel:read:redemptions",
        "channel.hype_train.begin" => "channel:read:hype_train",
        "channel.poll.begin" | "channel.poll.end" => "channel:read:polls",
        "channel.prediction.begin" => "channel:read:predictions",
        "channel.ban" => "channel:moderate",
        "channel.chat.message" => "user:read:chat",
        _ => return None,
    })
}

/// What a subscription of `sub_type` probably costs: 1 for the types that
/// need no scope, 0 for those that need the broadcaster's grant (TWITCH.md §3.3).
pub fn estimated_cost(sub_type: &str) -> u64 {
    match sub_type {
        "stream.online" | "stream.offline" | "channel.update" | "channel.raid" => 1,
        _ => 0,
    }
}

/// Checks a type name (same rule as `EVENT_TYPES`).
///
/// # Errors
/// [`SubscriptionError::InvalidType`].
pub fn parse_type(raw: &str) -> Result<String, SubscriptionError> {
    let t = raw.trim();
    let ok = !t.is_empty()
        && t.len() <= 100
        && t.contains('.')
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
    if ok {
        Ok(t.to_owned())
    } else {
        Err(SubscriptionError::InvalidType(raw.to_owned()))
    }
}

/// A subscription type and whether making sure of it worked.
pub type TypeOutcome = (String, Result<(), SubscriptionError>);

/// One subscription as the admin API shows it (SPEC §7.9).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackedSubscription {
    /// Subscription id.
    pub id: String,
    /// Subscription type.
    #[serde(rename = "type")]
    pub sub_type: String,
    /// Version.
    pub version: String,
    /// Status (a revocation reason once revoked).
    pub status: String,
    /// Condition.
    pub condition: Value,
    /// Cost.
    pub cost: u64,
    /// RFC 3339 creation time.
    pub created_at: String,
}

impl From<HelixSubscription> for TrackedSubscription {
    fn from(s: HelixSubscription) -> Self {
        Self {
            id: s.id,
            sub_type: s.sub_type,
            version: s.version,
            status: s.status,
            condition: s.condition,
            cost: s.cost,
            created_at: s.created_at.unwrap_or_default(),
        }
    }
}

/// The admin API's list (SPEC §7.9).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Subscriptions, oldest first.
    pub data: Vec<TrackedSubscription>,
    /// Number of subscriptions in `data`.
    pub total: usize,
    /// Total cost as last reported by Twitch (adjusted for revocations).
    pub total_cost: u64,
    /// Twitch's limit (0 until Twitch reported it).
    pub max_total_cost: u64,
}

/// What reconciliation at start did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Live subscriptions to our callback, now tracked.
    pub adopted: usize,
    /// Failed subscriptions to our callback, deleted.
    pub deleted: usize,
    /// Subscriptions to other callbacks, left alone.
    pub ignored: usize,
}

#[derive(Debug, Default)]
struct Table {
    subs: HashMap<String, TrackedSubscription>,
    /// (broadcaster id, type) → why its last creation failed; cleared by a
    /// success. At most `MAX_TRACKED`.
    errors: HashMap<(String, String), String>,
    /// Ids revoked by a webhook: final, never un-revoked by a later list.
    revoked: HashSet<String>,
    /// (broadcaster id, type) that answered 409 but could not be looked up.
    assumed: HashSet<(String, String)>,
    costs: Costs,
}

impl Table {
    fn insert(&mut self, sub: TrackedSubscription) {
        if self.subs.len() < MAX_TRACKED || self.subs.contains_key(&sub.id) {
            self.subs.insert(sub.id.clone(), sub);
        }
    }

    fn has_live(&self, broadcaster_id: &str, sub_type: &str) -> bool {
        self.assumed
            .contains(&(broadcaster_id.to_owned(), sub_type.to_owned()))
            || self.subs.values().any(|s| {
                s.sub_type == sub_type
                    && is_live(&s.status)
                    && condition_broadcaster_ids(&s.condition)
                        .iter()
                        .any(|id| id == broadcaster_id)
            })
    }

    /// The subscription of `sub_type` for the broadcaster: a live one if
    /// any, else the newest known (revoked or failed).
    fn status_of(&self, broadcaster_id: &str, sub_type: &str) -> Option<&TrackedSubscription> {
        let mut matching: Vec<&TrackedSubscription> = self
            .subs
            .values()
            .filter(|s| {
                s.sub_type == sub_type
                    && condition_broadcaster_ids(&s.condition)
                        .iter()
                        .any(|id| id == broadcaster_id)
            })
            .collect();
        matching.sort_by(|a, b| {
            (is_live(&a.status), &a.created_at, &a.id).cmp(&(
                is_live(&b.status),
                &b.created_at,
                &b.id,
            ))
        });
        matching.last().copied()
    }

    fn note_error(&mut self, broadcaster_id: &str, sub_type: &str, error: Option<String>) {
        let key = (broadcaster_id.to_owned(), sub_type.to_owned());
        match error {
            Some(e) if self.errors.len() < MAX_TRACKED || self.errors.contains_key(&key) => {
                self.errors.insert(key, e);
            }
            Some(_) => {}
            None => {
                self.errors.remove(&key);
            }
        }
    }

    fn note_costs(&mut self, costs: Costs, added: u64) {
        if costs.max_total_cost > 0 {
            self.costs = costs;
        } else {
            self.costs.total_cost += added;
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Flight {
    Running,
    Failed(Instant),
}

/// The registry; one per process, shared through `AppState`.
pub struct SubscriptionRegistry {
    helix: HelixClient,
    broadcasters: Arc<BroadcasterRegistry>,
    broker: Arc<Broker>,
    event_types: Vec<String>,
    retry_after: Duration,
    table: RwLock<Table>,
    /// Streamers with a Helix round running, or whose last round failed
    /// (then retried only after `retry_after`).
    flights: Mutex<HashMap<ChannelName, Flight>>,
    /// Set once the start-up reconciliation has finished (or failed).
    reconciled: AtomicBool,
}

impl std::fmt::Debug for SubscriptionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionRegistry")
            .field("event_types", &self.event_types)
            .finish_non_exhaustive()
    }
}

impl SubscriptionRegistry {
    /// A registry that subscribes streamers to `event_types`.
    pub fn new(
        helix: HelixClient,
        broadcasters: Arc<BroadcasterRegistry>,
        broker: Arc<Broker>,
        event_types: Vec<String>,
        retry_after: Duration,
    ) -> Self {
        Self {
            helix,
            broadcasters,
            broker,
            event_types,
            retry_after,
            table: RwLock::new(Table::default()),
            flights: Mutex::new(HashMap::new()),
            reconciled: AtomicBool::new(false),
        }
    }

    /// True once the start-up reconciliation has finished (or failed).
    pub fn is_reconciled(&self) -> bool {
        self.reconciled.load(Ordering::Acquire)
    }

    /// The Helix client.
    pub fn helix(&self) -> &HelixClient {
        &self.helix
    }

    /// True when every `EVENT_TYPES` subscription of the streamer is live.
    pub fn covered(&self, streamer: &ChannelName) -> bool {
        let Some(id) = self.broadcasters.id_for(streamer) else {
            return false;
        };
        let table = self.table.read();
        self.event_types.iter().all(|t| table.has_live(&id, t))
    }

    /// Makes sure the streamer's subscriptions exist, without waiting: at
    /// most one Helix round per streamer at a time, none while they are
    /// known to exist, and none within `retry_after` of a failed round.
    pub fn ensure_on_watch(self: &Arc<Self>, streamer: &ChannelName) {
        if self.covered(streamer) {
            return;
        }
        {
            let mut flights = self.flights.lock();
            match flights.get(streamer) {
                Some(Flight::Running) => return,
                Some(Flight::Failed(at)) if at.elapsed() < self.retry_after => return,
                _ => {}
            }
            if flights.len() >= MAX_FLIGHTS {
                let retry_after = self.retry_after;
                flights.retain(|_, f| match f {
                    Flight::Running => true,
                    Flight::Failed(at) => at.elapsed() < retry_after,
                });
                if flights.len() >= MAX_FLIGHTS {
                    tracing::warn!("too many streamers being subscribed at once; skipping");
                    return;
                }
            }
            flights.insert(streamer.clone(), Flight::Running);
        }
        let this = Arc::clone(self);
        let streamer = streamer.clone();
        tokio::spawn(async move {
            let ok = this.ensure(&streamer).await;
            let mut flights = this.flights.lock();
            if ok {
                flights.remove(&streamer);
            } else {
                flights.insert(streamer, Flight::Failed(Instant::now()));
            }
        });
    }

    /// One Helix round for a streamer; every failure is published to its
    /// channel. True when all types are live afterwards.
    #[tracing::instrument(skip(self), fields(channel = %streamer))]
    async fn ensure(&self, streamer: &ChannelName) -> bool {
        let id = match self.resolve(streamer).await {
            Ok(id) => id,
            Err(e) => {
                self.report(streamer, None, &e).await;
                return false;
            }
        };
        let mut ok = true;
        for sub_type in &self.event_types {
            if self.table.read().has_live(&id, sub_type) {
                continue;
            }
            if let Err(e) = self.create_one(&id, sub_type).await {
                ok = false;
                self.report(streamer, Some(sub_type), &e).await;
            }
        }
        if ok {
            tracing::info!("subscriptions ensured");
        }
        ok
    }

    /// Publishes a `system` message saying what failed.
    async fn report(&self, streamer: &ChannelName, sub_type: Option<&str>, e: &SubscriptionError) {
        tracing::warn!(channel = %streamer, sub_type, error = %e, "ensuring subscriptions failed");
        let text = match (sub_type, e) {
            (_, SubscriptionError::UnknownStreamer(_)) => {
                format!("Twitch has no user named {streamer}, so no events will arrive for it")
            }
            (Some(t), e) => format!("Could not subscribe to {t} events of {streamer}: {e}"),
            (None, e) => format!("Could not subscribe to the events of {streamer}: {e}"),
        };
        let data = json!({
            "streamer": streamer.as_str(),
            "type": sub_type,
            "error": e.to_string(),
        });
        let Ok(data) = RawValue::from_string(data.to_string()) else {
            return;
        };
        let draft = MessageDraft {
            channel: streamer.clone(),
            event_type: ERROR_EVENT_TYPE.into(),
            version: "1".into(),
            source: Source::System,
            at: Utc::now(),
            text,
            data,
        };
        if let Err(e) = self.broker.publish(draft).await {
            tracing::warn!(error = %e, "could not publish the subscription error");
        }
    }

    /// The broadcaster id of a login, from the registry or Helix.
    ///
    /// # Errors
    /// [`SubscriptionError::UnknownStreamer`] or a Helix failure.
    pub async fn resolve(&self, streamer: &ChannelName) -> Result<String, SubscriptionError> {
        if let Some(id) = self.broadcasters.id_for(streamer) {
            return Ok(id);
        }
        let users = self.helix.users_by_login(&[streamer.as_str()]).await?;
        let user = users
            .into_iter()
            .find(|u| u.login.eq_ignore_ascii_case(streamer.as_str()))
            .ok_or_else(|| SubscriptionError::UnknownStreamer(streamer.clone()))?;
        self.broadcasters.learn(&user.id, &user.login);
        Ok(user.id)
    }

    /// Creates (or adopts, on 409) one subscription.
    async fn create_one(
        &self,
        broadcaster_id: &str,
        sub_type: &str,
    ) -> Result<Option<TrackedSubscription>, SubscriptionError> {
        {
            let table = self.table.read();
            let Costs {
                total_cost,
                max_total_cost,
            } = table.costs;
            if max_total_cost > 0 && total_cost + estimated_cost(sub_type) > max_total_cost {
                return Err(SubscriptionError::CostLimit {
                    total_cost,
                    max_total_cost,
                });
            }
        }
        let condition = condition_for(sub_type, broadcaster_id);
        let created = self
            .helix
            .create_subscription(sub_type, version_for(sub_type), &condition)
            .await?;
        let mut table = self.table.write();
        Ok(match created {
            Created::New(sub, costs) => {
                let sub = TrackedSubscription::from(sub);
                table.note_costs(costs, sub.cost);
                table.insert(sub.clone());
                Some(sub)
            }
            Created::Existing(Some(sub)) => {
                let sub = TrackedSubscription::from(sub);
                table.insert(sub.clone());
                Some(sub)
            }
            Created::Existing(None) => {
                table
                    .assumed
                    .insert((broadcaster_id.to_owned(), sub_type.to_owned()));
                None
            }
        })
    }

    /// Creates `types` for a streamer now (admin API); 409s are adopted and
    /// included. Stops at the first failure.
    ///
    /// # Errors
    /// [`SubscriptionError`].
    pub async fn create(
        &self,
        streamer: &ChannelName,
        types: &[String],
    ) -> Result<Vec<TrackedSubscription>, SubscriptionError> {
        let id = self.resolve(streamer).await?;
        let mut out = Vec::new();
        for t in types {
            if let Some(sub) = self.create_one(&id, t).await? {
                out.push(sub);
            }
        }
        Ok(out)
    }

    /// Makes sure `types` exist for a streamer now (webhook transport, app
    /// token), skipping those already live, and says for each type whether
    /// it worked. Failures are also published to the channel as
    /// `subscription.error` (SPEC §7.21) and kept for [`Self::status_of`].
    ///
    /// # Errors
    /// [`SubscriptionError`] when the streamer cannot be resolved.
    #[tracing::instrument(skip(self, types), fields(channel = %streamer))]
    pub async fn ensure_types(
        &self,
        streamer: &ChannelName,
        types: &[&str],
    ) -> Result<Vec<TypeOutcome>, SubscriptionError> {
        let id = match self.resolve(streamer).await {
            Ok(id) => id,
            Err(e) => {
                self.report(streamer, None, &e).await;
                return Err(e);
            }
        };
        let mut out = Vec::with_capacity(types.len());
        for sub_type in types {
            if self.table.read().has_live(&id, sub_type) {
                out.push(((*sub_type).to_owned(), Ok(())));
                continue;
            }
            let result = self.create_one(&id, sub_type).await.map(|_| ());
            self.table.write().note_error(
                &id,
                sub_type,
                result.as_ref().err().map(ToString::to_string),
            );
            if let Err(e) = &result {
                self.report(streamer, Some(sub_type), e).await;
            }
            out.push(((*sub_type).to_owned(), result));
        }
        Ok(out)
    }

    /// Refreshes what the registry knows of one broadcaster's
    /// subscriptions from Helix (one filtered list), keeping revoked ones.
    ///
    /// # Errors
    /// [`SubscriptionError::Helix`].
    pub async fn sync_broadcaster(&self, broadcaster_id: &str) -> Result<(), SubscriptionError> {
        let list = self.helix.list_for_user(broadcaster_id).await?;
        let mut table = self.table.write();
        let revoked = table.revoked.clone();
        let listed: HashSet<String> = list.iter().map(|s| s.id.clone()).collect();
        table.subs.retain(|id, s| {
            listed.contains(id)
                || revoked.contains(id)
                || !condition_broadcaster_ids(&s.condition)
                    .iter()
                    .any(|b| b == broadcaster_id)
        });
        for s in list {
            if s.callback() == Some(self.helix.callback()) && !revoked.contains(&s.id) {
                table.insert(s.into());
            }
        }
        Ok(())
    }

    /// What the registry knows of the broadcaster's subscription of
    /// `sub_type`: the subscription (live first, else the newest), and why
    /// its last creation failed, if it did.
    pub fn status_of(
        &self,
        broadcaster_id: &str,
        sub_type: &str,
    ) -> (Option<TrackedSubscription>, Option<String>) {
        let table = self.table.read();
        (
            table.status_of(broadcaster_id, sub_type).cloned(),
            table
                .errors
                .get(&(broadcaster_id.to_owned(), sub_type.to_owned()))
                .cloned(),
        )
    }

    /// Deletes one subscription on Twitch and forgets it.
    ///
    /// # Errors
    /// [`HelixError::NotFound`] (inside [`SubscriptionError::Helix`]) for an unknown id.
    pub async fn delete(&self, id: &str) -> Result<(), SubscriptionError> {
        let result = self.helix.delete_subscription(id).await;
        if matches!(result, Ok(()) | Err(HelixError::NotFound(_))) {
            let mut table = self.table.write();
            if let Some(sub) = table.subs.remove(id) {
                if is_live(&sub.status) {
                    table.costs.total_cost = table.costs.total_cost.saturating_sub(sub.cost);
                }
            }
        }
        Ok(result?)
    }

    /// A revocation arrived: the subscription is marked revoked, for good.
    pub fn mark_revoked(&self, sub: &WebhookSubscription) {
        let mut table = self.table.write();
        let was_live = table.subs.get(&sub.id).is_some_and(|s| is_live(&s.status));
        if was_live {
            table.costs.total_cost = table.costs.total_cost.saturating_sub(sub.cost);
        }
        table.insert(TrackedSubscription::from(sub.clone()));
        if table.revoked.len() < MAX_TRACKED {
            table.revoked.insert(sub.id.clone());
        }
        for id in condition_broadcaster_ids(&sub.condition) {
            table.assumed.remove(&(id, sub.sub_type.clone()));
        }
    }

    /// What the registry knows now.
    pub fn snapshot(&self) -> Snapshot {
        let table = self.table.read();
        let mut data: Vec<TrackedSubscription> = table.subs.values().cloned().collect();
        data.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Snapshot {
            total: data.len(),
            data,
            total_cost: table.costs.total_cost,
            max_total_cost: table.costs.max_total_cost,
        }
    }

    /// Refreshes the registry from Helix (all pages) and returns it: our
    /// subscriptions with Twitch's status, revoked ones kept as revoked.
    ///
    /// # Errors
    /// [`SubscriptionError::Helix`].
    pub async fn sync(&self) -> Result<Snapshot, SubscriptionError> {
        let list = self.helix.list_subscriptions().await?;
        {
            let mut table = self.table.write();
            let ours: Vec<HelixSubscription> = list
                .data
                .into_iter()
                .filter(|s| s.callback() == Some(self.helix.callback()))
                .collect();
            let listed: HashSet<String> = ours.iter().map(|s| s.id.clone()).collect();
            let revoked = table.revoked.clone();
            table
                .subs
                .retain(|id, _| listed.contains(id) || revoked.contains(id));
            for s in ours {
                if !revoked.contains(&s.id) {
                    table.insert(s.into());
                }
            }
            table.costs = list.costs;
        }
        Ok(self.snapshot())
    }

    /// At start: adopt our live subscriptions, delete our failed ones, and
    /// learn the logins of the adopted broadcasters.
    ///
    /// # Errors
    /// [`SubscriptionError::Helix`] when the list cannot be read.
    #[tracing::instrument(skip_all)]
    pub async fn reconcile(&self) -> Result<ReconcileReport, SubscriptionError> {
        let result = self.reconcile_inner().await;
        self.reconciled.store(true, Ordering::Release);
        result
    }

    async fn reconcile_inner(&self) -> Result<ReconcileReport, SubscriptionError> {
        let list = self.helix.list_subscriptions().await?;
        let mut report = ReconcileReport::default();
        let mut costs = list.costs;
        let mut adopted_ids: Vec<String> = Vec::new();
        for s in list.data {
            if s.callback() != Some(self.helix.callback()) {
                report.ignored += 1;
                continue;
            }
            if is_live(&s.status) {
                for id in condition_broadcaster_ids(&s.condition) {
                    if !adopted_ids.contains(&id) {
                        adopted_ids.push(id);
                    }
                }
                self.table.write().insert(s.into());
                report.adopted += 1;
                continue;
            }
            match self.helix.delete_subscription(&s.id).await {
                Ok(()) | Err(HelixError::NotFound(_)) => {
                    report.deleted += 1;
                    costs.total_cost = costs.total_cost.saturating_sub(s.cost);
                    tracing::info!(subscription_id = %s.id, status = %s.status, "deleted a failed subscription");
                }
                Err(e) => {
                    tracing::warn!(subscription_id = %s.id, error = %e, "could not delete a failed subscription");
                }
            }
        }
        self.table.write().costs = costs;
        let unknown: Vec<&str> = adopted_ids
            .iter()
            .filter(|id| self.broadcasters.login_for(id).is_none())
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            for u in self.helix.users_by_id(&unknown).await? {
                self.broadcasters.learn(&u.id, &u.login);
            }
        }
        tracing::info!(
            adopted = report.adopted,
            deleted = report.deleted,
            ignored = report.ignored,
            "reconciled subscriptions with Twitch"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_and_versions_follow_twitch() {
        assert_eq!(
            condition_for("channel.raid", "42"),
            json!({"to_broadcaster_user_id": "42"})
        );
        assert_eq!(
            condition_for("stream.online", "42"),
            json!({"broadcaster_user_id": "42"})
        );
        assert_eq!(version_for("channel.update"), "2");
        assert_eq!(version_for("stream.online"), "1");
        assert_eq!(estimated_cost("channel.raid"), 1);
        assert_eq!(estimated_cost("channel.follow"), 0);
    }

    #[test]
    fn alert_types_name_the_scope_they_need() {
        assert_eq!(
            scope_for("channel.follow"),
            Some("moderator:read:followers")
        );
        assert_eq!(scope_for("channel.cheer"), Some("bits:read"));
        assert_eq!(
            scope_for("channel.subscription.gift"),
            Some("channel:read:subscriptions")
        );
        assert_eq!(scope_for("channel.raid"), None);
        assert_eq!(scope_for("stream.online"), None);
    }

    #[test]
    fn the_status_of_a_type_prefers_a_live_subscription() {
        let mut t = Table::default();
        let sub = |id: &str, status: &str, created: &str| TrackedSubscription {
            id: id.into(),
            sub_type: "channel.cheer".into(),
            version: "1".into(),
            status: status.into(),
            condition: json!({"broadcaster_user_id": "42"}),
            cost: 0,
            created_at: created.into(),
        };
        t.insert(sub("old", "authorization_revoked", "2026-01-02"));
        assert_eq!(t.status_of("42", "channel.cheer").unwrap().id, "old");
        t.insert(sub("new", "enabled", "2026-01-01"));
        assert_eq!(t.status_of("42", "channel.cheer").unwrap().id, "new");
        assert!(t.status_of("43", "channel.cheer").is_none());
        t.note_error("42", "channel.follow", Some("403".into()));
        assert_eq!(t.errors.len(), 1);
        t.note_error("42", "channel.follow", None);
        assert!(t.errors.is_empty());
    }

    #[test]
    fn type_names_are_checked() {
        assert!(parse_type("stream.online").is_ok());
        assert!(parse_type("Stream Online").is_err());
        assert!(parse_type("nodot").is_err());
    }

    #[test]
    fn live_means_enabled_or_pending() {
        assert!(is_live("enabled"));
        assert!(is_live("webhook_callback_verification_pending"));
        assert!(!is_live("authorization_revoked"));
        assert!(!is_live("webhook_callback_verification_failed"));
    }

    #[test]
    fn a_table_knows_which_broadcasters_are_covered() {
        let mut t = Table::default();
        t.insert(TrackedSubscription {
            id: "a".into(),
            sub_type: "channel.raid".into(),
            version: "1".into(),
            status: "enabled".into(),
            condition: json!({"from_broadcaster_user_id": "", "to_broadcaster_user_id": "42"}),
            cost: 1,
            created_at: String::new(),
        });
        assert!(t.has_live("42", "channel.raid"));
        assert!(!t.has_live("42", "stream.online"));
        assert!(!t.has_live("43", "channel.raid"));
    }
}
