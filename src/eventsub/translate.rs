//! Pure translation of EventSub events: the one-sentence `text` of a message (SPEC §3),
//! the channel logins an event is routed to, and the broadcaster ids and logins it names.
//!
//! Sits between the webhook envelope (which hands over `subscription.type` and the raw
//! `event`) and the broker: the callback route asks this module where an event goes and
//! what it says, then publishes the event untouched as the message's `data`. Nothing here
//! validates a login; the caller parses each one into a `ChannelName`.
//!
//! Each known type has a small serde shape holding only the fields its sentence needs
//! (TWITCH.md §5). Fields Twitch sends as `null` (anonymous gifters and cheerers, a
//! permanent ban's `ends_at`) are `Option`s, so they never fail deserialization. An event
//! that does not fit its shape is described by its type name, like an unknown type.

use chrono::DateTime;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Every event type with its own sentence (SPEC §3), in a stable order.
pub const KNOWN_TYPES: &[&str] = &[
    STREAM_ONLINE,
    STREAM_OFFLINE,
    CHANNEL_UPDATE,
    CHANNEL_FOLLOW,
    CHANNEL_SUBSCRIBE,
    CHANNEL_SUBSCRIPTION_GIFT,
    CHANNEL_SUBSCRIPTION_MESSAGE,
    CHANNEL_CHEER,
    CHANNEL_RAID,
    CHANNEL_REDEMPTION_ADD,
    CHANNEL_POLL_BEGIN,
    CHANNEL_POLL_PROGRESS,
    CHANNEL_POLL_END,
    CHANNEL_PREDICTION_BEGIN,
    CHANNEL_PREDICTION_PROGRESS,
    CHANNEL_PREDICTION_LOCK,
    CHANNEL_PREDICTION_END,
    CHANNEL_HYPE_TRAIN_BEGIN,
    CHANNEL_HYPE_TRAIN_PROGRESS,
    CHANNEL_HYPE_TRAIN_END,
    CHANNEL_BAN,
    CHANNEL_CHAT_MESSAGE,
];

const STREAM_ONLINE: &str = "stream.online";
const STREAM_OFFLINE: &str = "stream.offline";
const CHANNEL_UPDATE: &str = "channel.update";
const CHANNEL_FOLLOW: &str = "channel.follow";
const CHANNEL_SUBSCRIBE: &str = "channel.subscribe";
const CHANNEL_SUBSCRIPTION_GIFT: &str = "channel.subscription.gift";
const CHANNEL_SUBSCRIPTION_MESSAGE: &str = "channel.subscription.message";
const CHANNEL_CHEER: &str = "channel.cheer";
const CHANNEL_RAID: &str = "channel.raid";
const CHANNEL_REDEMPTION_ADD: &str = "channel.channel_points_custom_reward_redemption.add";
const CHANNEL_POLL_BEGIN: &str = "channel.poll.begin";
const CHANNEL_POLL_PROGRESS: &str = "channel.poll.progress";
const CHANNEL_POLL_END: &str = "channel.poll.end";
const CHANNEL_PREDICTION_BEGIN: &str = "channel.prediction.begin";
const CHANNEL_PREDICTION_PROGRESS: &str = "channel.prediction.progress";
const CHANNEL_PREDICTION_LOCK: &str = "channel.prediction.lock";
const CHANNEL_PREDICTION_END: &str = "channel.prediction.end";
const CHANNEL_HYPE_TRAIN_BEGIN: &str = "channel.hype_train.begin";
const CHANNEL_HYPE_TRAIN_PROGRESS: &str = "channel.hype_train.progress";
const CHANNEL_HYPE_TRAIN_END: &str = "channel.hype_train.end";
const CHANNEL_BAN: &str = "channel.ban";
const CHANNEL_CHAT_MESSAGE: &str = "channel.chat.message";

/// True when `event_type` is one of the known types listed in SPEC §3.
pub fn is_known(event_type: &str) -> bool {
    KNOWN_TYPES.contains(&event_type)
}

/// One human sentence for a known type (e.g. "viewer42 followed teststreamer",
/// "gifter gifted 5 Tier 1 subs to teststreamer", "raider raided teststreamer with 42 viewers");
/// for an unknown type, or a known type whose event does not match its serde shape, the type name itself.
///
/// People are named by display name (`*_user_name`), falling back to their login.
pub fn sentence(event_type: &str, event: &Value) -> String {
    describe(event_type, event).unwrap_or_else(|| event_type.to_owned())
}

/// The channel logins this event is routed to, lower-cased, deduplicated, in order (NOT validated here):
/// `event.broadcaster_user_login`; for `channel.raid` the `to_broadcaster_user_login` then `from_broadcaster_user_login`.
/// Empty when the event carries no login (then the caller routes by broadcaster id).
pub fn route_logins(event_type: &str, event: &Value) -> Vec<String> {
    let mut keys = vec!["broadcaster_user_login"];
    if event_type == CHANNEL_RAID {
        keys.extend(["to_broadcaster_user_login", "from_broadcaster_user_login"]);
    }
    let mut logins = Vec::new();
    for key in keys {
        if let Some(login) = non_empty_str(event, key) {
            push_unique(&mut logins, login.to_lowercase());
        }
    }
    logins
}

/// The broadcaster ids named in a subscription condition (`broadcaster_user_id`, `to_broadcaster_user_id`,
/// `from_broadcaster_user_id`; empty strings ignored), used to route events without a login and revocations.
pub fn condition_broadcaster_ids(condition: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for key in [
        "broadcaster_user_id",
        "to_broadcaster_user_id",
        "from_broadcaster_user_id",
    ] {
        // TWITCH.md §1.2: unset condition fields arrive as "".
        if let Some(id) = non_empty_str(condition, key) {
            push_unique(&mut ids, id.to_owned());
        }
    }
    ids
}

/// (id, login) pairs this event teaches the registry: broadcaster_user_id/login, to_/from_broadcaster pairs.
///
/// Logins are lower-cased (not validated); a pair missing either half is skipped.
pub fn learned_broadcasters(event: &Value) -> Vec<(String, String)> {
    // The (id, login) field pairs, spelled out: every notification looks
    // them up, and building the names cost six allocations each time.
    const FIELDS: [(&str, &str); 3] = [
        ("broadcaster_user_id", "broadcaster_user_login"),
        ("to_broadcaster_user_id", "to_broadcaster_user_login"),
        ("from_broadcaster_user_id", "from_broadcaster_user_login"),
    ];
    let mut pairs = Vec::new();
    for (id_key, login_key) in FIELDS {
        let id = non_empty_str(event, id_key);
        let login = non_empty_str(event, login_key);
        if let (Some(id), Some(login)) = (id, login) {
            push_unique(&mut pairs, (id.to_owned(), login.to_lowercase()));
        }
    }
    pairs
}

/// Sentence for a legacy WebSub stream.changed item (Get Streams shape, TWITCH.md §6); `None` item = stream went offline.
pub fn websub_stream_changed_sentence(channel: &str, item: Option<&Value>) -> String {
    let Some(item) = item else {
        return format!("{channel} went offline");
    };
    let Some(stream) = parse::<WebSubStream>(item) else {
        return format!("{channel} is live");
    };
    let who = display(stream.user_name.as_deref(), stream.user_login.as_deref()).unwrap_or(channel);
    let mut text = format!("{who} is live");
    if let Some(title) = stream.title.as_deref().filter(|t| !t.is_empty()) {
        text.push_str(": ");
        text.push_str(title);
    }
    if let Some(game) = stream.game_name.as_deref().filter(|g| !g.is_empty()) {
        text = format!("{text} ({game})");
    }
    text
}

fn describe(event_type: &str, event: &Value) -> Option<String> {
    match event_type {
        STREAM_ONLINE => render::<StreamOnline>(event),
        STREAM_OFFLINE => render::<StreamOffline>(event),
        CHANNEL_UPDATE => render::<ChannelUpdate>(event),
        CHANNEL_FOLLOW => render::<Follow>(event),
        CHANNEL_SUBSCRIBE => render::<Subscribe>(event),
        CHANNEL_SUBSCRIPTION_GIFT => render::<SubscriptionGift>(event),
        CHANNEL_SUBSCRIPTION_MESSAGE => render::<SubscriptionMessage>(event),
        CHANNEL_CHEER => render::<Cheer>(event),
        CHANNEL_RAID => render::<Raid>(event),
        CHANNEL_REDEMPTION_ADD => render::<Redemption>(event),
        CHANNEL_POLL_BEGIN => render::<PollBegin>(event),
        CHANNEL_POLL_PROGRESS => render::<PollProgress>(event),
        CHANNEL_POLL_END => render::<PollEnd>(event),
        CHANNEL_PREDICTION_BEGIN => render::<PredictionBegin>(event),
        CHANNEL_PREDICTION_PROGRESS => render::<PredictionProgress>(event),
        CHANNEL_PREDICTION_LOCK => render::<PredictionLock>(event),
        CHANNEL_PREDICTION_END => render::<PredictionEnd>(event),
        CHANNEL_HYPE_TRAIN_BEGIN => render::<HypeTrainBegin>(event),
        CHANNEL_HYPE_TRAIN_PROGRESS => render::<HypeTrainProgress>(event),
        CHANNEL_HYPE_TRAIN_END => render::<HypeTrainEnd>(event),
        CHANNEL_BAN => render::<Ban>(event),
        CHANNEL_CHAT_MESSAGE => render::<ChatMessage>(event),
        _ => None,
    }
}

/// A serde shape that can say what happened in one sentence; `None` when the event lacks
/// someone to name.
trait Describe {
    fn describe(&self) -> Option<String>;
}

fn parse<T: DeserializeOwned>(value: &Value) -> Option<T> {
    T::deserialize(value).ok()
}

fn render<T: DeserializeOwned + Describe>(event: &Value) -> Option<String> {
    parse::<T>(event)?.describe()
}

fn non_empty_str<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn push_unique<T: PartialEq>(items: &mut Vec<T>, item: T) {
    if !items.contains(&item) {
        items.push(item);
    }
}

/// The display name, else the login; empty strings count as missing.
fn display<'a>(name: Option<&'a str>, login: Option<&'a str>) -> Option<&'a str> {
    name.filter(|n| !n.is_empty())
        .or_else(|| login.filter(|l| !l.is_empty()))
}

/// `1 bit`, `2 bits`.
fn count(n: u64, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("{n} {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// TWITCH.md §5: tiers arrive as "1000", "2000", "3000".
fn tier(raw: &str) -> String {
    match raw {
        "1000" => "Tier 1".to_owned(),
        "2000" => "Tier 2".to_owned(),
        "3000" => "Tier 3".to_owned(),
        other => format!("tier {other}"),
    }
}

/// `base` followed by `: detail` when the detail has any text.
fn with_detail(base: String, detail: Option<&str>) -> String {
    match detail.map(str::trim).filter(|d| !d.is_empty()) {
        Some(detail) => format!("{base}: {detail}"),
        None => base,
    }
}

/// `broadcaster_user_*`, flattened into each event shape.
#[derive(Debug, Deserialize)]
struct Broadcaster {
    broadcaster_user_login: String,
    #[serde(default)]
    broadcaster_user_name: Option<String>,
}

impl Broadcaster {
    fn name(&self) -> &str {
        display(
            self.broadcaster_user_name.as_deref(),
            Some(&self.broadcaster_user_login),
        )
        .unwrap_or(&self.broadcaster_user_login)
    }
}

/// `user_*`, null for anonymous gifters and cheerers.
#[derive(Debug, Deserialize)]
struct User {
    #[serde(default)]
    user_login: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
}

impl User {
    fn name(&self) -> Option<&str> {
        display(self.user_name.as_deref(), self.user_login.as_deref())
    }
}

#[derive(Debug, Deserialize)]
struct StreamOnline {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl Describe for StreamOnline {
    fn describe(&self) -> Option<String> {
        let who = self.broadcaster.name();
        Some(match self.kind.as_deref() {
            Some("playlist") => format!("{who} started a playlist"),
            Some("watch_party") => format!("{who} started a watch party"),
            Some("premiere") => format!("{who} started a premiere"),
            Some("rerun") => format!("{who} started a rerun"),
            _ => format!("{who} went live"),
        })
    }
}

#[derive(Debug, Deserialize)]
struct StreamOffline {
    #[serde(flatten)]
    broadcaster: Broadcaster,
}

impl Describe for StreamOffline {
    fn describe(&self) -> Option<String> {
        Some(format!("{} went offline", self.broadcaster.name()))
    }
}

/// v2; v1 (with `is_mature`) carries the same title and category fields.
#[derive(Debug, Deserialize)]
struct ChannelUpdate {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    title: String,
    #[serde(default)]
    category_name: Option<String>,
}

impl Describe for ChannelUpdate {
    fn describe(&self) -> Option<String> {
        let who = self.broadcaster.name();
        let mut text = if self.title.trim().is_empty() {
            format!("{who} updated the stream")
        } else {
            format!("{who} changed the title to {}", self.title.trim())
        };
        if let Some(category) = self.category_name.as_deref().filter(|c| !c.is_empty()) {
            text = format!("{text} ({category})");
        }
        Some(text)
    }
}

#[derive(Debug, Deserialize)]
struct Follow {
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    broadcaster: Broadcaster,
}

impl Describe for Follow {
    fn describe(&self) -> Option<String> {
        Some(format!(
            "{} followed {}",
            self.user.name()?,
            self.broadcaster.name()
        ))
    }
}

#[derive(Debug, Deserialize)]
struct Subscribe {
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    tier: String,
    #[serde(default)]
    is_gift: bool,
}

impl Describe for Subscribe {
    fn describe(&self) -> Option<String> {
        let who = self.user.name()?;
        let to = self.broadcaster.name();
        let tier = tier(&self.tier);
        Some(if self.is_gift {
            format!("{who} received a gifted {tier} sub to {to}")
        } else {
            format!("{who} subscribed to {to} at {tier}")
        })
    }
}

#[derive(Debug, Deserialize)]
struct SubscriptionGift {
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    total: u64,
    tier: String,
    #[serde(default)]
    is_anonymous: bool,
}

impl Describe for SubscriptionGift {
    fn describe(&self) -> Option<String> {
        let gifter = match self.user.name() {
            Some(name) if !self.is_anonymous => name,
            _ => "An anonymous gifter",
        };
        let subs = count(
            self.total,
            &format!("{} sub", tier(&self.tier)),
            &format!("{} subs", tier(&self.tier)),
        );
        Some(format!(
            "{gifter} gifted {subs} to {}",
            self.broadcaster.name()
        ))
    }
}

#[derive(Debug, Deserialize)]
struct SubscriptionMessage {
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    tier: String,
    #[serde(default)]
    message: Option<ChatText>,
    cumulative_months: u64,
}

/// `message` objects carry `text` plus emote or fragment lists this module ignores.
#[derive(Debug, Deserialize)]
struct ChatText {
    #[serde(default)]
    text: Option<String>,
}

impl Describe for SubscriptionMessage {
    fn describe(&self) -> Option<String> {
        let base = format!(
            "{} resubscribed to {} at {} for {}",
            self.user.name()?,
            self.broadcaster.name(),
            tier(&self.tier),
            count(self.cumulative_months, "month", "months"),
        );
        let text = self.message.as_ref().and_then(|m| m.text.as_deref());
        Some(with_detail(base, text))
    }
}

#[derive(Debug, Deserialize)]
struct Cheer {
    #[serde(default)]
    is_anonymous: bool,
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    #[serde(default)]
    message: Option<String>,
    bits: u64,
}

impl Describe for Cheer {
    fn describe(&self) -> Option<String> {
        let cheerer = match self.user.name() {
            Some(name) if !self.is_anonymous => name,
            _ => "An anonymous cheerer",
        };
        let base = format!(
            "{cheerer} cheered {} to {}",
            count(self.bits, "bit", "bits"),
            self.broadcaster.name()
        );
        Some(with_detail(base, self.message.as_deref()))
    }
}

#[derive(Debug, Deserialize)]
struct Raid {
    from_broadcaster_user_login: String,
    #[serde(default)]
    from_broadcaster_user_name: Option<String>,
    to_broadcaster_user_login: String,
    #[serde(default)]
    to_broadcaster_user_name: Option<String>,
    viewers: u64,
}

impl Describe for Raid {
    fn describe(&self) -> Option<String> {
        let from = display(
            self.from_broadcaster_user_name.as_deref(),
            Some(&self.from_broadcaster_user_login),
        )?;
        let to = display(
            self.to_broadcaster_user_name.as_deref(),
            Some(&self.to_broadcaster_user_login),
        )?;
        Some(format!(
            "{from} raided {to} with {}",
            count(self.viewers, "viewer", "viewers")
        ))
    }
}

#[derive(Debug, Deserialize)]
struct Redemption {
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    #[serde(default)]
    user_input: Option<String>,
    reward: Reward,
}

#[derive(Debug, Deserialize)]
struct Reward {
    title: String,
    cost: u64,
}

impl Describe for Redemption {
    fn describe(&self) -> Option<String> {
        let base = format!(
            "{} redeemed {} ({}) on {}",
            self.user.name()?,
            self.reward.title,
            count(self.reward.cost, "point", "points"),
            self.broadcaster.name()
        );
        Some(with_detail(base, self.user_input.as_deref()))
    }
}

#[derive(Debug, Deserialize)]
struct PollBegin {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    title: String,
    choices: Vec<PollChoice>,
}

#[derive(Debug, Deserialize)]
struct PollChoice {
    title: String,
    /// Absent on `channel.poll.begin`.
    #[serde(default)]
    votes: Option<u64>,
}

impl Describe for PollBegin {
    fn describe(&self) -> Option<String> {
        let choices: Vec<&str> = self.choices.iter().map(|c| c.title.as_str()).collect();
        Some(format!(
            "{} started a poll: {} ({})",
            self.broadcaster.name(),
            self.title,
            choices.join(", ")
        ))
    }
}

/// "Shoes 32 votes, Socks 7 votes", in Twitch's choice order.
fn poll_standings(choices: &[PollChoice]) -> String {
    let standings: Vec<String> = choices
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c.title,
                count(c.votes.unwrap_or(0), "vote", "votes")
            )
        })
        .collect();
    standings.join(", ")
}

#[derive(Debug, Deserialize)]
struct PollProgress {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    title: String,
    choices: Vec<PollChoice>,
}

impl Describe for PollProgress {
    fn describe(&self) -> Option<String> {
        Some(format!(
            "Poll on {}: {} ({})",
            self.broadcaster.name(),
            self.title,
            poll_standings(&self.choices)
        ))
    }
}

#[derive(Debug, Deserialize)]
struct PollEnd {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    title: String,
    choices: Vec<PollChoice>,
    #[serde(default)]
    status: Option<String>,
}

impl Describe for PollEnd {
    fn describe(&self) -> Option<String> {
        let who = self.broadcaster.name();
        let title = &self.title;
        if self.status.as_deref() == Some("archived") {
            return Some(format!("{who} archived the poll: {title}"));
        }
        let verb = match self.status.as_deref() {
            Some("terminated") => "ended early",
            _ => "ended",
        };
        let best = self
            .choices
            .iter()
            .filter_map(|c| c.votes)
            .max()
            .unwrap_or(0);
        let leaders: Vec<&str> = self
            .choices
            .iter()
            .filter(|c| best > 0 && c.votes == Some(best))
            .map(|c| c.title.as_str())
            .collect();
        let outcome = match leaders.as_slice() {
            [] => "no votes".to_owned(),
            [winner] => format!("{winner} won with {}", count(best, "vote", "votes")),
            tied => format!(
                "a tie between {} with {} each",
                tied.join(" and "),
                count(best, "vote", "votes")
            ),
        };
        Some(format!("{who}'s poll {verb}: {title}, {outcome}"))
    }
}

#[derive(Debug, Deserialize)]
struct PredictionOutcome {
    id: String,
    title: String,
    /// Absent on `channel.prediction.begin`.
    #[serde(default)]
    channel_points: Option<u64>,
}

/// "Yes / No".
fn outcome_titles(outcomes: &[PredictionOutcome]) -> String {
    let titles: Vec<&str> = outcomes.iter().map(|o| o.title.as_str()).collect();
    titles.join(" / ")
}

/// "Yes 15000 points, No 3000 points".
fn outcome_points(outcomes: &[PredictionOutcome]) -> String {
    let points: Vec<String> = outcomes
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o.title,
                count(o.channel_points.unwrap_or(0), "point", "points")
            )
        })
        .collect();
    points.join(", ")
}

#[derive(Debug, Deserialize)]
struct PredictionBegin {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    title: String,
    outcomes: Vec<PredictionOutcome>,
}

impl Describe for PredictionBegin {
    fn describe(&self) -> Option<String> {
        Some(format!(
            "{} started a prediction: {} ({})",
            self.broadcaster.name(),
            self.title,
            outcome_titles(&self.outcomes)
        ))
    }
}

#[derive(Debug, Deserialize)]
struct PredictionProgress {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    title: String,
    outcomes: Vec<PredictionOutcome>,
}

impl Describe for PredictionProgress {
    fn describe(&self) -> Option<String> {
        Some(format!(
            "Prediction on {}: {} ({})",
            self.broadcaster.name(),
            self.title,
            outcome_points(&self.outcomes)
        ))
    }
}

#[derive(Debug, Deserialize)]
struct PredictionLock {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    title: String,
    outcomes: Vec<PredictionOutcome>,
}

impl Describe for PredictionLock {
    fn describe(&self) -> Option<String> {
        Some(format!(
            "{} locked the prediction: {} ({})",
            self.broadcaster.name(),
            self.title,
            outcome_points(&self.outcomes)
        ))
    }
}

#[derive(Debug, Deserialize)]
struct PredictionEnd {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    title: String,
    outcomes: Vec<PredictionOutcome>,
    #[serde(default)]
    winning_outcome_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

impl Describe for PredictionEnd {
    fn describe(&self) -> Option<String> {
        let who = self.broadcaster.name();
        let title = &self.title;
        let winner = self
            .outcomes
            .iter()
            .find(|o| self.winning_outcome_id.as_deref() == Some(o.id.as_str()));
        Some(match (self.status.as_deref(), winner) {
            (Some("canceled"), _) | (_, None) => {
                format!("{who} canceled the prediction: {title}")
            }
            (_, Some(winner)) => format!("{who}'s prediction ended: {title}, {} won", winner.title),
        })
    }
}

/// Hype train v2 `type`: `regular`, `treasure`, `golden_kappa`.
fn train_name(kind: Option<&str>) -> &'static str {
    match kind {
        Some("treasure") => "treasure train",
        Some("golden_kappa") => "Golden Kappa train",
        _ => "hype train",
    }
}

#[derive(Debug, Deserialize)]
struct HypeTrainBegin {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    /// Absent on some v1 payloads; a train starts at level 1.
    #[serde(default)]
    level: Option<u64>,
    progress: u64,
    goal: u64,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl Describe for HypeTrainBegin {
    fn describe(&self) -> Option<String> {
        Some(format!(
            "A {} started on {}: level {}, {}/{} to the next level",
            train_name(self.kind.as_deref()),
            self.broadcaster.name(),
            self.level.unwrap_or(1),
            self.progress,
            self.goal
        ))
    }
}

#[derive(Debug, Deserialize)]
struct HypeTrainProgress {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    level: u64,
    progress: u64,
    goal: u64,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl Describe for HypeTrainProgress {
    fn describe(&self) -> Option<String> {
        Some(format!(
            "The {} on {} is at level {}, {}/{} to the next level",
            train_name(self.kind.as_deref()),
            self.broadcaster.name(),
            self.level,
            self.progress,
            self.goal
        ))
    }
}

#[derive(Debug, Deserialize)]
struct HypeTrainEnd {
    #[serde(flatten)]
    broadcaster: Broadcaster,
    level: u64,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl Describe for HypeTrainEnd {
    fn describe(&self) -> Option<String> {
        Some(format!(
            "The {} on {} ended at level {}",
            train_name(self.kind.as_deref()),
            self.broadcaster.name(),
            self.level
        ))
    }
}

#[derive(Debug, Deserialize)]
struct Ban {
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    broadcaster: Broadcaster,
    #[serde(default)]
    moderator_user_login: Option<String>,
    #[serde(default)]
    moderator_user_name: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    banned_at: Option<String>,
    /// Null when the ban is permanent.
    #[serde(default)]
    ends_at: Option<String>,
    is_permanent: bool,
}

impl Ban {
    /// "for 10 minutes", from `ends_at - banned_at`; `None` when either is missing or unparsable.
    fn timeout_length(&self) -> Option<String> {
        let start = DateTime::parse_from_rfc3339(self.banned_at.as_deref()?).ok()?;
        let end = DateTime::parse_from_rfc3339(self.ends_at.as_deref()?).ok()?;
        let seconds = u64::try_from((end - start).num_seconds()).ok()?;
        Some(match seconds {
            0 => return None,
            s if s % 86_400 == 0 => count(s / 86_400, "day", "days"),
            s if s % 3_600 == 0 => count(s / 3_600, "hour", "hours"),
            s if s % 60 == 0 => count(s / 60, "minute", "minutes"),
            s => count(s, "second", "seconds"),
        })
    }
}

impl Describe for Ban {
    fn describe(&self) -> Option<String> {
        let user = self.user.name()?;
        let channel = self.broadcaster.name();
        let moderator = display(
            self.moderator_user_name.as_deref(),
            self.moderator_user_login.as_deref(),
        )
        .unwrap_or("A moderator");
        let base = if self.is_permanent {
            format!("{moderator} banned {user} from {channel}")
        } else {
            match self.timeout_length() {
                Some(length) => format!("{moderator} timed out {user} in {channel} for {length}"),
                None => format!("{moderator} timed out {user} in {channel}"),
            }
        };
        Some(with_detail(base, self.reason.as_deref()))
    }
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    chatter_user_login: String,
    #[serde(default)]
    chatter_user_name: Option<String>,
    message: ChatText,
}

impl Describe for ChatMessage {
    fn describe(&self) -> Option<String> {
        let chatter = display(
            self.chatter_user_name.as_deref(),
            Some(&self.chatter_user_login),
        )?;
        let text = self.message.text.as_deref().unwrap_or_default();
        Some(format!("{chatter}: {text}"))
    }
}

/// One item of a legacy WebSub `stream.changed` body (Get Streams shape, TWITCH.md §6).
#[derive(Debug, Deserialize)]
struct WebSubStream {
    #[serde(default)]
    user_login: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    game_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// Every sample notification body, by type, as `samples.rs` compiles them in.
    const SAMPLES: &[(&str, &str)] = &[
        (
            STREAM_ONLINE,
            include_str!("../../samples/stream.online.json"),
        ),
        (
            STREAM_OFFLINE,
            include_str!("../../samples/stream.offline.json"),
        ),
        (
            CHANNEL_UPDATE,
            include_str!("../../samples/channel.update.json"),
        ),
        (
            CHANNEL_FOLLOW,
            include_str!("../../samples/channel.follow.json"),
        ),
        (
            CHANNEL_SUBSCRIBE,
            include_str!("../../samples/channel.subscribe.json"),
        ),
        (
            CHANNEL_SUBSCRIPTION_GIFT,
            include_str!("../../samples/channel.subscription.gift.json"),
        ),
        (
            CHANNEL_SUBSCRIPTION_MESSAGE,
            include_str!("../../samples/channel.subscription.message.json"),
        ),
        (
            CHANNEL_CHEER,
            include_str!("../../samples/channel.cheer.json"),
        ),
        (
            CHANNEL_RAID,
            include_str!("../../samples/channel.raid.json"),
        ),
        (
            CHANNEL_REDEMPTION_ADD,
            include_str!("../../samples/channel.channel_points_custom_reward_redemption.add.json"),
        ),
        (
            CHANNEL_POLL_BEGIN,
            include_str!("../../samples/channel.poll.begin.json"),
        ),
        (
            CHANNEL_POLL_PROGRESS,
            include_str!("../../samples/channel.poll.progress.json"),
        ),
        (
            CHANNEL_POLL_END,
            include_str!("../../samples/channel.poll.end.json"),
        ),
        (
            CHANNEL_PREDICTION_BEGIN,
            include_str!("../../samples/channel.prediction.begin.json"),
        ),
        (
            CHANNEL_PREDICTION_PROGRESS,
            include_str!("../../samples/channel.prediction.progress.json"),
        ),
        (
            CHANNEL_PREDICTION_LOCK,
            include_str!("../../samples/channel.prediction.lock.json"),
        ),
        (
            CHANNEL_PREDICTION_END,
            include_str!("../../samples/channel.prediction.end.json"),
        ),
        (
            CHANNEL_HYPE_TRAIN_BEGIN,
            include_str!("../../samples/channel.hype_train.begin.json"),
        ),
        (
            CHANNEL_HYPE_TRAIN_PROGRESS,
            include_str!("../../samples/channel.hype_train.progress.json"),
        ),
        (
            CHANNEL_HYPE_TRAIN_END,
            include_str!("../../samples/channel.hype_train.end.json"),
        ),
        (CHANNEL_BAN, include_str!("../../samples/channel.ban.json")),
        (
            CHANNEL_CHAT_MESSAGE,
            include_str!("../../samples/channel.chat.message.json"),
        ),
    ];

    fn sample_event(event_type: &str) -> Value {
        let body = SAMPLES
            .iter()
            .find(|(t, _)| *t == event_type)
            .map(|(_, body)| *body)
            .unwrap();
        let body: Value = serde_json::from_str(body).unwrap();
        body["event"].clone()
    }

    fn sample_sentence(event_type: &str) -> String {
        sentence(event_type, &sample_event(event_type))
    }

    #[test]
    fn every_known_type_has_a_sample_and_every_sample_is_known() {
        let sampled: Vec<&str> = SAMPLES.iter().map(|(t, _)| *t).collect();
        assert_eq!(sampled, KNOWN_TYPES);
    }

    #[test]
    fn every_sample_matches_its_serde_shape() {
        for (event_type, _) in SAMPLES {
            let text = sample_sentence(event_type);
            assert_ne!(text, *event_type, "{event_type} sample fell back");
            assert!(!text.is_empty());
        }
    }

    #[test]
    fn every_sample_routes_to_teststreamer() {
        for (event_type, _) in SAMPLES {
            let logins = route_logins(event_type, &sample_event(event_type));
            let expected: &[&str] = if *event_type == CHANNEL_RAID {
                &["teststreamer", "raidingstreamer"]
            } else {
                &["teststreamer"]
            };
            assert_eq!(logins, expected, "{event_type}");
        }
    }

    #[test]
    fn every_sample_teaches_the_teststreamer_id() {
        for (event_type, _) in SAMPLES {
            let learned = learned_broadcasters(&sample_event(event_type));
            assert_eq!(
                learned.first(),
                Some(&("12345678".to_owned(), "teststreamer".to_owned())),
                "{event_type}"
            );
        }
    }

    #[test]
    fn known_types_are_known_and_others_are_not() {
        for event_type in KNOWN_TYPES {
            assert!(is_known(event_type));
        }
        assert!(!is_known("channel.shoutout.create"));
        assert!(!is_known(""));
        assert!(!is_known("Channel.Follow"));
    }

    #[test]
    fn stream_online_says_the_streamer_went_live() {
        assert_eq!(sample_sentence(STREAM_ONLINE), "TestStreamer went live");
    }

    #[test]
    fn stream_online_rerun_says_a_rerun_started() {
        let event = json!({"broadcaster_user_login": "teststreamer", "broadcaster_user_name": "TestStreamer", "type": "rerun"});
        assert_eq!(
            sentence(STREAM_ONLINE, &event),
            "TestStreamer started a rerun"
        );
    }

    #[test]
    fn stream_offline_says_the_streamer_went_offline() {
        assert_eq!(sample_sentence(STREAM_OFFLINE), "TestStreamer went offline");
    }

    #[test]
    fn channel_update_names_the_title_and_category() {
        assert_eq!(
            sample_sentence(CHANNEL_UPDATE),
            "TestStreamer changed the title to Speedrunning until the sun comes up (Just Chatting)"
        );
    }

    #[test]
    fn channel_update_v1_with_is_mature_is_tolerated() {
        let event = json!({
            "broadcaster_user_id": "1337", "broadcaster_user_login": "cool_user",
            "broadcaster_user_name": "Cool_User", "title": "Best Stream Ever", "language": "en",
            "category_id": "21779", "category_name": "Fortnite", "is_mature": false
        });
        assert_eq!(
            sentence(CHANNEL_UPDATE, &event),
            "Cool_User changed the title to Best Stream Ever (Fortnite)"
        );
    }

    #[test]
    fn follow_names_the_follower_and_the_streamer() {
        assert_eq!(
            sample_sentence(CHANNEL_FOLLOW),
            "Viewer42 followed TestStreamer"
        );
    }

    #[test]
    fn follow_without_display_names_falls_back_to_logins() {
        let event = json!({"user_login": "viewer42", "user_name": null, "broadcaster_user_login": "teststreamer"});
        assert_eq!(
            sentence(CHANNEL_FOLLOW, &event),
            "viewer42 followed teststreamer"
        );
    }

    #[test]
    fn subscribe_names_the_tier() {
        assert_eq!(
            sample_sentence(CHANNEL_SUBSCRIBE),
            "Viewer42 subscribed to TestStreamer at Tier 1"
        );
    }

    #[test]
    fn gifted_subscribe_says_the_sub_was_a_gift() {
        let mut event = sample_event(CHANNEL_SUBSCRIBE);
        event["is_gift"] = json!(true);
        event["tier"] = json!("3000");
        assert_eq!(
            sentence(CHANNEL_SUBSCRIBE, &event),
            "Viewer42 received a gifted Tier 3 sub to TestStreamer"
        );
    }

    #[test]
    fn gift_names_the_gifter_count_and_tier() {
        assert_eq!(
            sample_sentence(CHANNEL_SUBSCRIPTION_GIFT),
            "GenerousGifter gifted 5 Tier 1 subs to TestStreamer"
        );
    }

    #[test]
    fn anonymous_gift_with_null_user_fields_names_an_anonymous_gifter() {
        let event = json!({
            "user_id": null, "user_login": null, "user_name": null,
            "broadcaster_user_id": "12345678", "broadcaster_user_login": "teststreamer",
            "broadcaster_user_name": "TestStreamer", "total": 1, "tier": "2000",
            "cumulative_total": null, "is_anonymous": true
        });
        assert_eq!(
            sentence(CHANNEL_SUBSCRIPTION_GIFT, &event),
            "An anonymous gifter gifted 1 Tier 2 sub to TestStreamer"
        );
    }

    #[test]
    fn resub_names_months_tier_and_message() {
        assert_eq!(
            sample_sentence(CHANNEL_SUBSCRIPTION_MESSAGE),
            "Viewer42 resubscribed to TestStreamer at Tier 2 for 15 months: Fifteen months already! Kappa"
        );
    }

    #[test]
    fn resub_without_message_text_ends_after_the_months() {
        let mut event = sample_event(CHANNEL_SUBSCRIPTION_MESSAGE);
        event["message"] = json!({"text": "", "emotes": null});
        event["cumulative_months"] = json!(1);
        assert_eq!(
            sentence(CHANNEL_SUBSCRIPTION_MESSAGE, &event),
            "Viewer42 resubscribed to TestStreamer at Tier 2 for 1 month"
        );
    }

    #[test]
    fn cheer_names_the_bits_and_message() {
        assert_eq!(
            sample_sentence(CHANNEL_CHEER),
            "Viewer42 cheered 100 bits to TestStreamer: Cheer100 great play!"
        );
    }

    #[test]
    fn anonymous_cheer_of_one_bit_is_singular() {
        let event = json!({
            "is_anonymous": true, "user_id": null, "user_login": null, "user_name": null,
            "broadcaster_user_id": "12345678", "broadcaster_user_login": "teststreamer",
            "broadcaster_user_name": "TestStreamer", "message": "", "bits": 1
        });
        assert_eq!(
            sentence(CHANNEL_CHEER, &event),
            "An anonymous cheerer cheered 1 bit to TestStreamer"
        );
    }

    #[test]
    fn raid_names_both_streamers_and_the_viewers() {
        assert_eq!(
            sample_sentence(CHANNEL_RAID),
            "RaidingStreamer raided TestStreamer with 42 viewers"
        );
    }

    #[test]
    fn raid_routes_to_the_raided_then_the_raider() {
        let event = json!({
            "from_broadcaster_user_id": "1", "from_broadcaster_user_login": "Raider",
            "to_broadcaster_user_id": "2", "to_broadcaster_user_login": "testBroadcaster",
            "viewers": 9
        });
        assert_eq!(
            route_logins(CHANNEL_RAID, &event),
            ["testbroadcaster", "raider"]
        );
        assert_eq!(
            learned_broadcasters(&event),
            [
                ("2".to_owned(), "testbroadcaster".to_owned()),
                ("1".to_owned(), "raider".to_owned())
            ]
        );
    }

    #[test]
    fn raid_between_the_same_channel_routes_once() {
        let event = json!({"from_broadcaster_user_login": "a", "to_broadcaster_user_login": "A", "viewers": 1});
        assert_eq!(route_logins(CHANNEL_RAID, &event), ["a"]);
    }

    #[test]
    fn redemption_names_the_reward_cost_and_input() {
        assert_eq!(
            sample_sentence(CHANNEL_REDEMPTION_ADD),
            "Viewer42 redeemed Song request (500 points) on TestStreamer: Play the sandstorm song"
        );
    }

    #[test]
    fn poll_begin_names_the_title_and_choices() {
        assert_eq!(
            sample_sentence(CHANNEL_POLL_BEGIN),
            "TestStreamer started a poll: Aren't shoes just really hard socks? (Blaba, TwitchConGenerator, Zelda)"
        );
    }

    #[test]
    fn poll_progress_names_the_standings() {
        assert_eq!(
            sample_sentence(CHANNEL_POLL_PROGRESS),
            "Poll on TestStreamer: Aren't shoes just really hard socks? (Blaba 10 votes, TwitchConGenerator 32 votes, Zelda 7 votes)"
        );
    }

    #[test]
    fn poll_end_names_the_winner() {
        assert_eq!(
            sample_sentence(CHANNEL_POLL_END),
            "TestStreamer's poll ended: Aren't shoes just really hard socks?, TwitchConGenerator won with 32 votes"
        );
    }

    #[test]
    fn poll_end_with_a_tie_names_both_leaders() {
        let mut event = sample_event(CHANNEL_POLL_END);
        event["choices"][0]["votes"] = json!(32);
        event["status"] = json!("terminated");
        assert_eq!(
            sentence(CHANNEL_POLL_END, &event),
            "TestStreamer's poll ended early: Aren't shoes just really hard socks?, a tie between Blaba and TwitchConGenerator with 32 votes each"
        );
    }

    #[test]
    fn prediction_begin_names_the_outcomes() {
        assert_eq!(
            sample_sentence(CHANNEL_PREDICTION_BEGIN),
            "TestStreamer started a prediction: Will we beat the boss this try? (Yes / No)"
        );
    }

    #[test]
    fn prediction_progress_and_lock_name_the_points() {
        assert_eq!(
            sample_sentence(CHANNEL_PREDICTION_PROGRESS),
            "Prediction on TestStreamer: Will we beat the boss this try? (Yes 15000 points, No 3000 points)"
        );
        assert_eq!(
            sample_sentence(CHANNEL_PREDICTION_LOCK),
            "TestStreamer locked the prediction: Will we beat the boss this try? (Yes 15000 points, No 3000 points)"
        );
    }

    #[test]
    fn prediction_end_names_the_winning_outcome() {
        assert_eq!(
            sample_sentence(CHANNEL_PREDICTION_END),
            "TestStreamer's prediction ended: Will we beat the boss this try?, Yes won"
        );
    }

    #[test]
    fn canceled_prediction_says_it_was_canceled() {
        let mut event = sample_event(CHANNEL_PREDICTION_END);
        event["winning_outcome_id"] = Value::Null;
        event["status"] = json!("canceled");
        assert_eq!(
            sentence(CHANNEL_PREDICTION_END, &event),
            "TestStreamer canceled the prediction: Will we beat the boss this try?"
        );
    }

    #[test]
    fn hype_train_begin_names_level_and_progress() {
        assert_eq!(
            sample_sentence(CHANNEL_HYPE_TRAIN_BEGIN),
            "A hype train started on TestStreamer: level 2, 700/1800 to the next level"
        );
    }

    #[test]
    fn golden_kappa_train_is_named_as_such() {
        let mut event = sample_event(CHANNEL_HYPE_TRAIN_BEGIN);
        event["type"] = json!("golden_kappa");
        assert!(sentence(CHANNEL_HYPE_TRAIN_BEGIN, &event).starts_with("A Golden Kappa train"));
    }

    #[test]
    fn hype_train_progress_and_end_name_the_level() {
        assert_eq!(
            sample_sentence(CHANNEL_HYPE_TRAIN_PROGRESS),
            "The hype train on TestStreamer is at level 3, 1900/2100 to the next level"
        );
        assert_eq!(
            sample_sentence(CHANNEL_HYPE_TRAIN_END),
            "The hype train on TestStreamer ended at level 4"
        );
    }

    #[test]
    fn timeout_names_its_length_and_reason() {
        assert_eq!(
            sample_sentence(CHANNEL_BAN),
            "ModPerson timed out Troll123 in TestStreamer for 10 minutes: spamming links"
        );
    }

    #[test]
    fn permanent_ban_with_null_ends_at_says_banned() {
        let mut event = sample_event(CHANNEL_BAN);
        event["ends_at"] = Value::Null;
        event["is_permanent"] = json!(true);
        event["reason"] = json!("");
        assert_eq!(
            sentence(CHANNEL_BAN, &event),
            "ModPerson banned Troll123 from TestStreamer"
        );
    }

    #[test]
    fn chat_message_is_the_chatter_and_the_text() {
        assert_eq!(
            sample_sentence(CHANNEL_CHAT_MESSAGE),
            "ChattyViewer: Hi chat, first time here!"
        );
    }

    #[test]
    fn unknown_type_passes_through_as_its_name() {
        let event = json!({"broadcaster_user_login": "teststreamer", "anything": [1, 2]});
        assert_eq!(
            sentence("channel.shoutout.create", &event),
            "channel.shoutout.create"
        );
        assert_eq!(
            route_logins("channel.shoutout.create", &event),
            ["teststreamer"]
        );
    }

    #[test]
    fn known_type_with_the_wrong_shape_falls_back_to_its_name() {
        assert_eq!(sentence(CHANNEL_FOLLOW, &json!({})), CHANNEL_FOLLOW);
        assert_eq!(
            sentence(CHANNEL_CHEER, &json!({"bits": "many"})),
            CHANNEL_CHEER
        );
        assert_eq!(sentence(CHANNEL_RAID, &json!([1, 2, 3])), CHANNEL_RAID);
        assert_eq!(sentence(STREAM_ONLINE, &Value::Null), STREAM_ONLINE);
    }

    #[test]
    fn mixed_case_cli_logins_are_lower_cased() {
        let event = json!({"broadcaster_user_id": "4242", "broadcaster_user_login": "testBroadcaster", "broadcaster_user_name": "testBroadcaster"});
        assert_eq!(route_logins(STREAM_ONLINE, &event), ["testbroadcaster"]);
        assert_eq!(
            learned_broadcasters(&event),
            [("4242".to_owned(), "testbroadcaster".to_owned())]
        );
    }

    #[test]
    fn event_without_a_login_routes_nowhere() {
        let event = json!({"broadcaster_user_id": "4242", "broadcaster_user_login": ""});
        assert!(route_logins(STREAM_ONLINE, &event).is_empty());
        assert!(learned_broadcasters(&event).is_empty());
        assert!(route_logins(STREAM_ONLINE, &json!(null)).is_empty());
    }

    #[test]
    fn condition_ids_ignore_empty_strings() {
        let raid = json!({"from_broadcaster_user_id": "", "to_broadcaster_user_id": "12345678"});
        assert_eq!(condition_broadcaster_ids(&raid), ["12345678"]);
        let follow = json!({"broadcaster_user_id": "1", "moderator_user_id": "2"});
        assert_eq!(condition_broadcaster_ids(&follow), ["1"]);
        let both = json!({"from_broadcaster_user_id": "7", "to_broadcaster_user_id": "8"});
        assert_eq!(condition_broadcaster_ids(&both), ["8", "7"]);
        assert!(condition_broadcaster_ids(&json!({"broadcaster_user_id": ""})).is_empty());
    }

    #[test]
    fn websub_live_item_names_title_and_game() {
        let item = json!({
            "id": "26007494656", "user_id": "23161357", "user_login": "teststreamer",
            "user_name": "TestStreamer", "game_id": "509658", "game_name": "Just Chatting",
            "type": "live", "title": "Hello", "viewer_count": 78365,
            "started_at": "2021-03-10T15:04:21Z", "language": "en",
            "thumbnail_url": "https://example.com/{width}x{height}.jpg", "tag_ids": [], "is_mature": false
        });
        assert_eq!(
            websub_stream_changed_sentence("teststreamer", Some(&item)),
            "TestStreamer is live: Hello (Just Chatting)"
        );
    }

    #[test]
    fn websub_empty_data_means_offline() {
        assert_eq!(
            websub_stream_changed_sentence("teststreamer", None),
            "teststreamer went offline"
        );
        assert_eq!(
            websub_stream_changed_sentence("teststreamer", Some(&json!("junk"))),
            "teststreamer is live"
        );
    }

    /// Every sample's event.
    fn sample_events() -> Vec<(&'static str, Value)> {
        SAMPLES
            .iter()
            .map(|(t, body)| {
                let v: Value = serde_json::from_str(body).unwrap();
                (*t, v["event"].clone())
            })
            .collect()
    }

    /// Every key and JSON pointer in `v`, depth first.
    fn walk(v: &Value, at: &str, keys: &mut Vec<String>, pointers: &mut Vec<String>) {
        let children: Vec<(String, &Value)> = match v {
            Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => return,
        };
        for (k, child) in children {
            let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
            if v.is_object() && !keys.contains(&k) {
                keys.push(k);
            }
            pointers.push(p.clone());
            walk(child, &p, keys, pointers);
        }
    }

    /// Any JSON value, its object keys mostly the samples' own.
    fn any_json() -> impl Strategy<Value = Value> {
        let mut keys = Vec::new();
        for (_, event) in sample_events() {
            walk(&event, "", &mut keys, &mut Vec::new());
        }
        let key = prop_oneof![
            3 => proptest::sample::select(keys),
            1 => "[a-z_]{0,12}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            proptest::sample::select(vec![
                "",
                "1",
                "-1",
                "1000",
                "tier1",
                "1000.5",
                "2023-06-13T10:00:00Z",
                "2023-06-13T10:00:00.123456789Z"
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Everything this module says about `event` under `event_type`.
    fn translate_all(event_type: &str, event: &Value) -> Result<(), TestCaseError> {
        prop_assert!(!sentence(event_type, event).is_empty());
        for login in route_logins(event_type, event) {
            prop_assert!(!login.is_empty());
            prop_assert_eq!(login.to_lowercase(), login);
        }
        for (id, login) in learned_broadcasters(event) {
            prop_assert!(!id.is_empty() && !login.is_empty());
        }
        let _ = condition_broadcaster_ids(event);
        prop_assert!(!websub_stream_changed_sentence("teststreamer", Some(event)).is_empty());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn translate_never_panics_on_any_json_event(event in any_json()) {
            for event_type in KNOWN_TYPES.iter().chain(&["channel.unknown"]) {
                translate_all(event_type, &event)?;
            }
        }

        #[test]
        fn translate_never_panics_on_samples_with_fields_replaced(
            pick in any::<proptest::sample::Index>(),
            changes in proptest::collection::vec((any::<proptest::sample::Index>(), any_json()), 1..4),
        ) {
            let events = sample_events();
            let (event_type, mut event) = pick.get(&events).clone();
            for (at, value) in changes {
                let mut pointers = Vec::new();
                walk(&event, "", &mut Vec::new(), &mut pointers);
                if pointers.is_empty() {
                    break;
                }
                let pointer = at.get(&pointers).clone();
                if let Some(slot) = event.pointer_mut(&pointer) {
                    *slot = value;
                }
            }
            translate_all(event_type, &event)?;
        }
    }
}
