//! Command-line types (clap): `serve` with every SPEC §2 variable as a flag
//! and an environment variable, plus the client subcommands.

use clap::{Args, Parser, Subcommand};

/// Twitch EventSub webhooks to live WebSocket and SSE channels.
#[derive(Debug, Parser)]
#[command(name = "eventsub-bridge", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands (SPEC §1).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bridge (the default).
    Serve(ServeArgs),
    /// Send one correctly signed sample notification, like `twitch event trigger`.
    Trigger(TriggerArgs),
    /// Send a challenge and check that it is echoed as Twitch requires.
    VerifySubscription(TargetArgs),
    /// Manage this app's EventSub subscriptions on Twitch (needs credentials).
    Subscriptions(SubscriptionsArgs),
}

/// `serve`: every field is also an environment variable (SPEC §2). Values
/// are kept raw here and validated by `Settings::from_args`, so that every
/// error names the variable and the rule in one line.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Listen address.
    #[arg(long, env = "BIND")]
    pub bind: Option<String>,
    /// External base URL.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Webhook secret, 10 to 100 ASCII characters.
    #[arg(long, env = "EVENTSUB_SECRET", hide_env_values = true)]
    pub eventsub_secret: Option<String>,
    /// Twitch application client id.
    #[arg(long, env = "TWITCH_CLIENT_ID")]
    pub twitch_client_id: Option<String>,
    /// Twitch application client secret.
    #[arg(long, env = "TWITCH_CLIENT_SECRET", hide_env_values = true)]
    pub twitch_client_secret: Option<String>,
    /// Base of the OAuth endpoints.
    #[arg(long, env = "TWITCH_AUTH_URL")]
    pub twitch_auth_url: Option<String>,
    /// Helix base URL.
    #[arg(long, env = "TWITCH_API_URL")]
    pub twitch_api_url: Option<String>,
    /// Redis URL; unset means the in-memory broker.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Session cookie signing key, at least 128 hex characters.
    #[arg(long, env = "SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<String>,
    /// Bearer token for `POST /api/publish`; unset turns the API off.
    #[arg(long, env = "PUBLISH_TOKEN", hide_env_values = true)]
    pub publish_token: Option<String>,
    /// Bearer token for `/api/subscriptions`; unset turns the API off.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Subscription types created when a streamer is first picked.
    #[arg(long, env = "EVENT_TYPES")]
    pub event_types: Option<String>,
    /// Messages kept per channel.
    #[arg(long, env = "HISTORY_LEN")]
    pub history_len: Option<String>,
    /// WebSocket and SSE connections per instance.
    #[arg(long, env = "MAX_CONNECTIONS")]
    pub max_connections: Option<String>,
    /// Alerts waiting per channel (SPEC §8).
    #[arg(long, env = "ALERT_QUEUE_LEN")]
    pub alert_queue_len: Option<String>,
    /// Key for room admin authentication (SPEC §9); unset: only streamers are admins.
    #[arg(long, env = "ROOM_SIGNING_KEY", hide_env_values = true)]
    pub room_signing_key: Option<String>,
    /// How Twitch mode receives EventSub: `webhook` or `websocket` (SPEC §10).
    #[arg(long, env = "EVENTSUB_TRANSPORT")]
    pub eventsub_transport: Option<String>,
    /// The EventSub WebSocket server (tests point it at a fake).
    #[arg(long, env = "TWITCH_EVENTSUB_WS_URL")]
    pub twitch_eventsub_ws_url: Option<String>,
}

/// Where a client subcommand sends to.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The full callback URL.
    #[arg(long, default_value = "http://localhost:8080/api/callback")]
    pub to: String,
    /// The webhook secret.
    #[arg(long, env = "EVENTSUB_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
}

/// `trigger TYPE`.
#[derive(Debug, Clone, Args)]
pub struct TriggerArgs {
    /// Subscription type, e.g. `channel.follow`.
    pub event_type: String,
    /// The channel (for `channel.raid`, the raided channel).
    #[arg(long, default_value = "teststreamer")]
    pub channel: String,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `subscriptions list|create|delete`.
#[derive(Debug, Clone, Args)]
pub struct SubscriptionsArgs {
    #[command(subcommand)]
    pub action: SubscriptionsAction,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What to do with subscriptions.
#[derive(Debug, Clone, Subcommand)]
pub enum SubscriptionsAction {
    /// List this app's subscriptions with status and cost.
    List,
    /// Create the subscriptions of `--types` (default `EVENT_TYPES`) for a streamer.
    Create {
        /// Streamer login.
        streamer: String,
        /// Comma-separated types.
        #[arg(long)]
        types: Option<String>,
    },
    /// Delete one subscription by id.
    Delete {
        /// Subscription id.
        id: String,
    },
}

impl ServeArgs {
    /// `serve` arguments from the environment alone (when no subcommand is given).
    pub fn from_env() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Only::parse_from(["eventsub-bridge"]).serve
    }
}
