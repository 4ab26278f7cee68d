//! `ServeArgs` → `Settings`: every SPEC §2 variable parsed into a type, with
//! a `ConfigError` naming the variable and the rule it broke.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::cli::ServeArgs;

/// A configuration value that breaks its rule.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {rule}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// The rule it broke.
    pub rule: String,
}

fn invalid(variable: &'static str, rule: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        rule: rule.into(),
    }
}

/// Default subscription types (SPEC §2).
pub const DEFAULT_EVENT_TYPES: &str = "stream.online,stream.offline,channel.update,channel.raid";

/// Twitch application credentials.
#[derive(Debug, Clone)]
pub struct TwitchCredentials {
    /// Client id (not secret).
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
}

/// Local mode (no Twitch) or a real Twitch application.
#[derive(Debug, Clone)]
pub enum Mode {
    /// No credentials: local sign-in, Helix skipped.
    Local,
    /// With credentials.
    Twitch(TwitchCredentials),
}

/// The EventSub secret: 10 to 100 ASCII characters (TWITCH.md §1.8).
#[derive(Debug, Clone)]
pub struct EventSubSecret(SecretString);

impl EventSubSecret {
    /// Checks the length and ASCII rules.
    ///
    /// # Errors
    /// The rule broken, naming `EVENTSUB_SECRET`.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        if !raw.is_ascii() || raw.bytes().any(|b| b.is_ascii_control()) {
            return Err(invalid(
                "EVENTSUB_SECRET",
                "must be printable ASCII characters",
            ));
        }
        if !(10..=100).contains(&raw.len()) {
            return Err(invalid(
                "EVENTSUB_SECRET",
                "must be 10 to 100 ASCII characters",
            ));
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// A random 40-character secret for local mode.
    pub fn generate() -> Self {
        let s: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(40)
            .map(char::from)
            .collect();
        Self(SecretString::from(s))
    }

    /// The secret bytes, for HMAC keys only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// How Twitch mode receives EventSub (SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSubTransport {
    /// Twitch POSTs to `PUBLIC_URL/api/callback` (needs a public https URL).
    Webhook,
    /// The bridge opens a WebSocket to Twitch per connected streamer.
    WebSocket,
}

impl EventSubTransport {
    /// `webhook` or `websocket`.
    ///
    /// # Errors
    /// The rule broken, naming `EVENTSUB_TRANSPORT`.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "webhook" => Ok(Self::Webhook),
            "websocket" => Ok(Self::WebSocket),
            _ => Err(invalid(
                "EVENTSUB_TRANSPORT",
                "must be `webhook` or `websocket`",
            )),
        }
    }

    /// The name used in the configuration and on `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::WebSocket => "websocket",
        }
    }
}

/// The session cookie signing key: 64 bytes or more (SPEC §7.10).
#[derive(Clone)]
pub struct SessionKey(Vec<u8>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([REDACTED])")
    }
}

impl SessionKey {
    /// Parses at least 128 hex characters.
    ///
    /// # Errors
    /// The rule broken, naming `SESSION_KEY`.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let rule = "must be at least 128 hex characters (64 bytes)";
        if raw.len() < 128 || raw.len() % 2 != 0 {
            return Err(invalid("SESSION_KEY", rule));
        }
        hex::decode(raw)
            .map(Self)
            .map_err(|_| invalid("SESSION_KEY", rule))
    }

    /// A random 64-byte key.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 64];
        rand::rng().fill(bytes.as_mut_slice());
        Self(bytes)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Timings and limits. SPEC defaults; tests shrink them.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Messages kept per channel (`HISTORY_LEN`).
    pub history_len: NonZeroUsize,
    /// WebSocket + SSE connections per instance (`MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// How long webhook message ids are remembered (SPEC §4 step 4).
    pub dedupe_window: Duration,
    /// Most webhook ids remembered in memory; the oldest go first past it.
    pub dedupe_capacity: usize,
    /// How long one attempt holds a webhook id or idempotency key before
    /// another may take it over (`broker::claim`): longer than an attempt
    /// takes (a claim, two publishes and the completion, each under
    /// `broker_timeout`), short enough that a lease whose owner vanished
    /// holds up Twitch's retries for seconds, not minutes.
    pub claim_lease: Duration,
    /// How long publish `Idempotency-Key`s are remembered.
    pub idempotency_window: Duration,
    /// Largest webhook body (SPEC §4 step 1).
    pub max_body_bytes: usize,
    /// Oldest accepted webhook timestamp.
    pub max_timestamp_age: Duration,
    /// Furthest future webhook timestamp.
    pub max_timestamp_skew: Duration,
    /// Server ping interval (SPEC §5).
    pub ping_interval: Duration,
    /// A connection silent this long is closed (SPEC §5).
    pub idle_timeout: Duration,
    /// Outbound queue per connection; overflow closes with 4008.
    pub outbound_queue: usize,
    /// Channels one connection may subscribe to.
    pub max_channels_per_connection: usize,
    /// Largest client message payload (SPEC §7.3).
    pub max_frame_bytes: usize,
    /// Client frames allowed per `rate_window` (SPEC §7.2).
    pub rate_limit_frames: usize,
    /// The rate-limit window.
    pub rate_window: Duration,
    /// SSE keep-alive comment interval.
    pub sse_keepalive: Duration,
    /// Timeout on every broker (Redis) call.
    pub broker_timeout: Duration,
    /// How long an OAuth `state` is valid.
    pub oauth_state_ttl: Duration,
    /// Timeout of every Twitch (Helix, OAuth) request.
    pub twitch_timeout: Duration,
    /// Retries of a Helix call answered 429 or 5xx (or not answered).
    pub helix_retries: u32,
    /// First retry delay; doubled per retry.
    pub helix_backoff: Duration,
    /// Longest wait for a rate-limit bucket (`Ratelimit-Reset`) or backoff.
    pub helix_max_wait: Duration,
    /// How often a viewer's Twitch token is validated again (TWITCH.md §4: hourly).
    pub token_revalidate_interval: Duration,
    /// After a failed ensure, how long `/watch` waits before asking Helix again.
    pub ensure_retry_after: Duration,
    /// Alerts waiting per channel, not counting the one in flight (`ALERT_QUEUE_LEN`).
    pub alert_queue_len: NonZeroUsize,
    /// EventSub WebSocket (SPEC §10): silence past the session's
    /// `keepalive_timeout_seconds` plus this means the socket is lost.
    pub ws_keepalive_margin: Duration,
    /// How long the welcome may take after the socket opened.
    pub ws_welcome_timeout: Duration,
    /// First reconnect delay after a failed socket; doubled per failure.
    pub ws_backoff_min: Duration,
    /// Longest reconnect delay.
    pub ws_backoff_max: Duration,
    /// Redis mode: how long a streamer's socket lease lasts unless renewed
    /// (renewed every third of it); a dead holder's socket is taken over
    /// within this plus `ws_lease_poll`.
    pub ws_lease_ttl: Duration,
    /// How often each instance looks for grants whose socket nobody holds.
    pub ws_lease_poll: Duration,
    /// Notifications waiting to be ingested per socket (beyond: dropped,
    /// counted).
    pub ws_ingest_queue: usize,
    /// How long a notification is retried while the broker cannot take it.
    pub ws_ingest_retry_for: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            history_len: NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN),
            max_connections: 100_000,
            dedupe_window: Duration::from_secs(600),
            dedupe_capacity: 1_000_000,
            claim_lease: Duration::from_secs(15),
            idempotency_window: Duration::from_secs(600),
            max_body_bytes: 1024 * 1024,
            max_timestamp_age: Duration::from_secs(600),
            max_timestamp_skew: Duration::from_secs(60),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            outbound_queue: 1024,
            max_channels_per_connection: 100,
            max_frame_bytes: 64 * 1024,
            rate_limit_frames: 20,
            rate_window: Duration::from_secs(1),
            sse_keepalive: Duration::from_secs(15),
            broker_timeout: Duration::from_secs(3),
            oauth_state_ttl: Duration::from_secs(600),
            twitch_timeout: Duration::from_secs(10),
            helix_retries: 3,
            helix_backoff: Duration::from_millis(250),
            helix_max_wait: Duration::from_secs(30),
            token_revalidate_interval: Duration::from_secs(3600),
            ensure_retry_after: Duration::from_secs(60),
            alert_queue_len: NonZeroUsize::new(500).unwrap_or(NonZeroUsize::MIN),
            ws_keepalive_margin: Duration::from_secs(5),
            ws_welcome_timeout: Duration::from_secs(10),
            ws_backoff_min: Duration::from_secs(1),
            ws_backoff_max: Duration::from_secs(60),
            ws_lease_ttl: Duration::from_secs(15),
            ws_lease_poll: Duration::from_secs(5),
            ws_ingest_queue: 1_000,
            ws_ingest_retry_for: Duration::from_secs(60),
        }
    }
}

/// Everything the server needs, typed and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub bind: SocketAddr,
    /// External base URL (no trailing slash in `public_base`).
    pub public_url: Url,
    /// Webhook secret.
    pub eventsub_secret: EventSubSecret,
    /// True when the secret was generated at start (then it is printed once).
    pub eventsub_secret_generated: bool,
    /// Local or Twitch.
    pub mode: Mode,
    /// OAuth base.
    pub twitch_auth_url: Url,
    /// Helix base.
    pub twitch_api_url: Url,
    /// Redis URL (may hold a password).
    pub redis_url: Option<SecretString>,
    /// Cookie signing key.
    pub session_key: SessionKey,
    /// Publish API token.
    pub publish_token: Option<SecretString>,
    /// Admin API token.
    pub admin_token: Option<SecretString>,
    /// Types subscribed for a newly picked streamer.
    pub event_types: Vec<String>,
    /// Room admin key (SPEC §9); `None`: only streamers are room admins.
    pub room_signing_key: Option<SecretString>,
    /// How Twitch mode receives EventSub (SPEC §10).
    pub eventsub_transport: EventSubTransport,
    /// The EventSub WebSocket server.
    pub twitch_eventsub_ws_url: Url,
    /// Timings and limits.
    pub limits: Limits,
    /// actix worker threads (0 = one per core).
    pub workers: usize,
    /// Prefix of every Redis key.
    pub redis_prefix: String,
}

fn parse_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| invalid(variable, format!("not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            variable,
            "must be an http:// or https:// URL with a host",
        ));
    }
    Ok(url)
}

fn non_empty(raw: Option<String>) -> Option<String> {
    raw.filter(|s| !s.trim().is_empty())
}

impl Settings {
    /// Validates raw `serve` arguments.
    ///
    /// # Errors
    /// The first variable that breaks its rule.
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let bind = non_empty(args.bind)
            .as_deref()
            .unwrap_or("0.0.0.0:8080")
            .parse::<SocketAddr>()
            .map_err(|_| invalid("BIND", "must be an address like 0.0.0.0:8080"))?;
        let public_url = parse_url(
            "PUBLIC_URL",
            non_empty(args.public_url)
                .as_deref()
                .unwrap_or("http://localhost:8080"),
        )?;
        let mode = match (
            non_empty(args.twitch_client_id),
            non_empty(args.twitch_client_secret),
        ) {
            (None, None) => Mode::Local,
            (Some(client_id), Some(secret)) => Mode::Twitch(TwitchCredentials {
                client_id,
                client_secret: SecretString::from(secret),
            }),
            (Some(_), None) => {
                return Err(invalid(
                    "TWITCH_CLIENT_SECRET",
                    "is required when TWITCH_CLIENT_ID is set",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "TWITCH_CLIENT_ID",
                    "is required when TWITCH_CLIENT_SECRET is set",
                ));
            }
        };
        let (eventsub_secret, eventsub_secret_generated) = match non_empty(args.eventsub_secret) {
            Some(raw) => (EventSubSecret::parse(&raw)?, false),
            None if matches!(mode, Mode::Local) => (EventSubSecret::generate(), true),
            None => {
                return Err(invalid(
                    "EVENTSUB_SECRET",
                    "is required when Twitch credentials are set",
                ));
            }
        };
        if let Mode::Twitch(creds) = &mode {
            if creds.client_secret.expose_secret() == eventsub_secret.expose() {
                return Err(invalid(
                    "EVENTSUB_SECRET",
                    "must not be the Twitch client secret",
                ));
            }
        }
        let twitch_auth_url = parse_url(
            "TWITCH_AUTH_URL",
            non_empty(args.twitch_auth_url)
                .as_deref()
                .unwrap_or("https://id.twitch.tv"),
        )?;
        let twitch_api_url = parse_url(
            "TWITCH_API_URL",
            non_empty(args.twitch_api_url)
                .as_deref()
                .unwrap_or("https://api.twitch.tv/helix"),
        )?;
        let redis_url = match non_empty(args.redis_url) {
            None => None,
            Some(raw) => {
                let url = Url::parse(&raw)
                    .map_err(|_| invalid("REDIS_URL", "not a valid redis:// or rediss:// URL"))?;
                if !matches!(url.scheme(), "redis" | "rediss") {
                    return Err(invalid(
                        "REDIS_URL",
                        "must start with redis:// or rediss://",
                    ));
                }
                Some(SecretString::from(raw))
            }
        };
        let session_key = match non_empty(args.session_key) {
            Some(raw) => SessionKey::parse(raw.trim())?,
            None => SessionKey::generate(),
        };
        let publish_token = non_empty(args.publish_token).map(SecretString::from);
        let admin_token = non_empty(args.admin_token).map(SecretString::from);
        let event_types = parse_event_types(
            non_empty(args.event_types)
                .as_deref()
                .unwrap_or(DEFAULT_EVENT_TYPES),
        )?;
        let mut limits = Limits::default();
        if let Some(raw) = non_empty(args.history_len) {
            limits.history_len = raw
                .trim()
                .parse::<NonZeroUsize>()
                .ok()
                .filter(|n| n.get() <= 100_000)
                .ok_or_else(|| invalid("HISTORY_LEN", "must be a whole number from 1 to 100000"))?;
        }
        if let Some(raw) = non_empty(args.max_connections) {
            limits.max_connections = raw
                .trim()
                .parse::<NonZeroUsize>()
                .map_err(|_| invalid("MAX_CONNECTIONS", "must be a whole number of at least 1"))?
                .get();
        }
        if let Some(raw) = non_empty(args.alert_queue_len) {
            limits.alert_queue_len = raw
                .trim()
                .parse::<NonZeroUsize>()
                .ok()
                .filter(|n| n.get() <= 100_000)
                .ok_or_else(|| {
                    invalid("ALERT_QUEUE_LEN", "must be a whole number from 1 to 100000")
                })?;
        }
        let room_signing_key = non_empty(args.room_signing_key).map(SecretString::from);
        let eventsub_transport = match non_empty(args.eventsub_transport) {
            Some(raw) => EventSubTransport::parse(&raw)?,
            // SPEC §10: Twitch can only POST to a public https URL.
            None if public_url.scheme() == "https" => EventSubTransport::Webhook,
            None => EventSubTransport::WebSocket,
        };
        let twitch_eventsub_ws_url = {
            let raw = non_empty(args.twitch_eventsub_ws_url)
                .unwrap_or_else(|| "wss://eventsub.wss.twitch.tv/ws".to_owned());
            let url = Url::parse(raw.trim())
                .map_err(|e| invalid("TWITCH_EVENTSUB_WS_URL", format!("not a valid URL ({e})")))?;
            if !matches!(url.scheme(), "ws" | "wss") || url.host_str().is_none() {
                return Err(invalid(
                    "TWITCH_EVENTSUB_WS_URL",
                    "must be a ws:// or wss:// URL with a host",
                ));
            }
            url
        };
        Ok(Self {
            bind,
            public_url,
            eventsub_secret,
            eventsub_secret_generated,
            mode,
            twitch_auth_url,
            twitch_api_url,
            redis_url,
            session_key,
            publish_token,
            admin_token,
            event_types,
            room_signing_key,
            eventsub_transport,
            twitch_eventsub_ws_url,
            limits,
            workers: 0,
            redis_prefix: "esb".to_owned(),
        })
    }

    /// `PUBLIC_URL` without a trailing slash, for building absolute URLs.
    pub fn public_base(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The embed `parent`: the host of `PUBLIC_URL` (SPEC §7.17).
    pub fn embed_parent(&self) -> String {
        self.public_url.host_str().unwrap_or("localhost").to_owned()
    }

    /// The only allowed WebSocket `Origin` (SPEC §4).
    pub fn allowed_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// The webhook callback URL.
    pub fn callback_url(&self) -> String {
        format!("{}/api/callback", self.public_base())
    }

    /// True when cookies must be `Secure`.
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

fn parse_event_types(raw: &str) -> Result<Vec<String>, ConfigError> {
    let mut types = Vec::new();
    for t in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !t
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
        {
            return Err(invalid(
                "EVENT_TYPES",
                format!("`{t}` is not a subscription type like channel.follow"),
            ));
        }
        if !types.iter().any(|x| x == t) {
            types.push(t.to_owned());
        }
    }
    if types.is_empty() {
        return Err(invalid("EVENT_TYPES", "must name at least one type"));
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(args: ServeArgs) -> String {
        Settings::from_args(args).unwrap_err().to_string()
    }

    #[test]
    fn no_configuration_is_local_mode_with_a_generated_secret() {
        let s = Settings::from_args(ServeArgs::default()).unwrap();
        assert!(matches!(s.mode, Mode::Local));
        assert!(s.eventsub_secret_generated);
        assert_eq!(s.eventsub_secret.expose().len(), 40);
        assert_eq!(s.bind.to_string(), "0.0.0.0:8080");
        assert_eq!(s.embed_parent(), "localhost");
        assert_eq!(s.allowed_origin(), "http://localhost:8080");
        assert_eq!(s.limits.history_len.get(), 100);
        assert_eq!(s.event_types.len(), 4);
        assert_eq!(s.limits.alert_queue_len.get(), 500);
        assert!(s.room_signing_key.is_none());
        assert_eq!(
            s.twitch_eventsub_ws_url.as_str(),
            "wss://eventsub.wss.twitch.tv/ws"
        );
    }

    #[test]
    fn the_eventsub_transport_follows_the_public_url_unless_set() {
        let http = Settings::from_args(ServeArgs::default()).unwrap();
        assert_eq!(http.eventsub_transport, EventSubTransport::WebSocket);
        let https = Settings::from_args(ServeArgs {
            public_url: Some("https://bridge.example.com".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(https.eventsub_transport, EventSubTransport::Webhook);
        let forced = Settings::from_args(ServeArgs {
            public_url: Some("https://bridge.example.com".into()),
            eventsub_transport: Some("WebSocket".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(forced.eventsub_transport, EventSubTransport::WebSocket);
    }

    #[test]
    fn a_short_secret_names_the_variable_and_rule() {
        let e = err(ServeArgs {
            eventsub_secret: Some("short".into()),
            ..Default::default()
        });
        assert_eq!(e, "EVENTSUB_SECRET: must be 10 to 100 ASCII characters");
        assert!(
            EventSubSecret::parse(&"x".repeat(101)).is_err()
                && EventSubSecret::parse(&"x".repeat(100)).is_ok()
        );
    }

    #[test]
    fn credentials_make_the_secret_required() {
        let e = err(ServeArgs {
            twitch_client_id: Some("id".into()),
            twitch_client_secret: Some("secret".into()),
            ..Default::default()
        });
        assert!(e.starts_with("EVENTSUB_SECRET:"), "{e}");
        let e = err(ServeArgs {
            twitch_client_id: Some("id".into()),
            ..Default::default()
        });
        assert!(e.starts_with("TWITCH_CLIENT_SECRET:"), "{e}");
    }

    #[test]
    fn bad_urls_and_numbers_name_their_variable() {
        for (args, var) in [
            (
                ServeArgs {
                    public_url: Some("not a url".into()),
                    ..Default::default()
                },
                "PUBLIC_URL:",
            ),
            (
                ServeArgs {
                    redis_url: Some("http://x".into()),
                    ..Default::default()
                },
                "REDIS_URL:",
            ),
            (
                ServeArgs {
                    bind: Some("nope".into()),
                    ..Default::default()
                },
                "BIND:",
            ),
            (
                ServeArgs {
                    history_len: Some("0".into()),
                    ..Default::default()
                },
                "HISTORY_LEN:",
            ),
            (
                ServeArgs {
                    max_connections: Some("-3".into()),
                    ..Default::default()
                },
                "MAX_CONNECTIONS:",
            ),
            (
                ServeArgs {
                    session_key: Some("ab".repeat(63)),
                    ..Default::default()
                },
                "SESSION_KEY:",
            ),
            (
                ServeArgs {
                    event_types: Some("Channel Follow".into()),
                    ..Default::default()
                },
                "EVENT_TYPES:",
            ),
            (
                ServeArgs {
                    alert_queue_len: Some("0".into()),
                    ..Default::default()
                },
                "ALERT_QUEUE_LEN:",
            ),
            (
                ServeArgs {
                    eventsub_transport: Some("carrier-pigeon".into()),
                    ..Default::default()
                },
                "EVENTSUB_TRANSPORT:",
            ),
            (
                ServeArgs {
                    twitch_eventsub_ws_url: Some("https://eventsub.example".into()),
                    ..Default::default()
                },
                "TWITCH_EVENTSUB_WS_URL:",
            ),
        ] {
            let e = err(args);
            assert!(e.starts_with(var), "{e}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let s = Settings::from_args(ServeArgs {
            eventsub_secret: Some("supersecretvalue123".into()),
            session_key: Some("ab".repeat(64)),
            publish_token: Some("publish-token-0123456789".into()),
            ..Default::default()
        })
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("supersecretvalue123"));
        assert!(!debug.contains(&"ab".repeat(64)));
        assert!(!debug.contains("publish-token-0123456789"));
    }
}
