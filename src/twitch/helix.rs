//! The Helix client (TWITCH.md §3): one shared reqwest client with timeouts,
//! the app access token by client credentials (cached, refreshed before it
//! expires and once on a 401), Get Users, create / list / delete of
//! EventSub webhook subscriptions, and creation of WebSocket-transport
//! subscriptions with a streamer's user token (SPEC §10).
//!
//! Every call goes through [`HelixClient::send_retrying`], which honours
//! `Ratelimit-Remaining` / `Ratelimit-Reset` and retries 429, 5xx and
//! unanswered requests with bounded, jittered exponential backoff. Tokens
//! never appear in errors or logs.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rand::Rng;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{Mode, Settings};

/// Most logins or ids in one Get Users call (TWITCH.md §3.6).
pub const MAX_USERS_PER_CALL: usize = 100;
/// Most pages read when listing subscriptions (100 per page → 100 000 subs).
const MAX_PAGES: usize = 1_000;
/// An app token is refreshed this long before Twitch says it expires.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Assumed lifetime of an app token that comes without `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Why a Helix (or app-token) call failed.
#[derive(Debug, thiserror::Error)]
pub enum HelixError {
    /// Local mode: no client id / secret.
    #[error("Twitch credentials (TWITCH_CLIENT_ID, TWITCH_CLIENT_SECRET) are not configured")]
    NoCredentials,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A Twitch URL from the settings is unusable.
    #[error("invalid Twitch configuration: {0}")]
    Config(String),
    /// No answer (connect error, timeout) after the retries.
    #[error("Twitch did not answer: {0}")]
    Transport(#[source] reqwest::Error),
    /// The token endpoint refused the client credentials.
    #[error("Twitch refused the app credentials ({status}): {message}")]
    Token {
        /// HTTP status.
        status: u16,
        /// Twitch's message.
        message: String,
    },
    /// 401 even with a fresh token.
    #[error("Twitch refused the token: {0}")]
    Unauthorized(String),
    /// 429 after the retries.
    #[error("Twitch rate limit still exceeded after retries: {0}")]
    RateLimited(String),
    /// 5xx after the retries.
    #[error("Twitch failed ({status}) after retries: {message}")]
    Upstream {
        /// HTTP status.
        status: u16,
        /// Twitch's message.
        message: String,
    },
    /// 404 (e.g. deleting an unknown subscription).
    #[error("Twitch does not know it: {0}")]
    NotFound(String),
    /// Any other 4xx: Twitch refused the request itself.
    #[error("Twitch refused the request ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Twitch's message.
        message: String,
    },
    /// A 2xx whose body is not what Twitch documents.
    #[error("unexpected answer from Twitch: {0}")]
    Decode(String),
}

/// A Helix user (only the fields the bridge reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelixUser {
    /// User id (digits, as a string).
    pub id: String,
    /// Lower-case login.
    pub login: String,
    /// Display name.
    pub display_name: String,
}

/// Helix and the webhook speak of one subscription object; the type lives in
/// `envelope` and is named here for what Helix returns.
pub use crate::eventsub::envelope::{
    Subscription as HelixSubscription, Transport as HelixTransport,
};

/// Costs as the last Helix answer reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Costs {
    /// Sum of the costs of the client's subscriptions.
    pub total_cost: u64,
    /// The client's limit.
    pub max_total_cost: u64,
}

/// Every subscription of the app (all pages).
#[derive(Debug, Clone, Default)]
pub struct SubscriptionList {
    /// The subscriptions, oldest first.
    pub data: Vec<HelixSubscription>,
    /// `total` as Twitch reported it.
    pub total: u64,
    /// Costs as Twitch reported them.
    pub costs: Costs,
}

/// What creating a subscription led to.
#[derive(Debug, Clone)]
pub enum Created {
    /// 202: a new subscription.
    New(HelixSubscription, Costs),
    /// 409: an identical live subscription exists; it is given when Helix
    /// could find it (TWITCH.md §3.2).
    Existing(Option<HelixSubscription>),
}

/// Whose token a call carries.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// The app access token (refreshed once on a 401).
    App,
    /// A viewer's user token (a 401 is final).
    User(&'a SecretString),
}

#[derive(Deserialize)]
struct AppTokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TwitchErrorBody {
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct DataPage<T> {
    data: Vec<T>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    total_cost: Option<u64>,
    #[serde(default)]
    max_total_cost: Option<u64>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize, Default)]
struct Pagination {
    #[serde(default)]
    cursor: Option<String>,
}

struct AppToken {
    value: SecretString,
    refresh_at: Instant,
}

/// The last `Ratelimit-*` headers seen.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    remaining: u64,
    /// Unix seconds when the bucket refills.
    reset: u64,
}

/// Retry and wait bounds.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    retries: u32,
    backoff: Duration,
    max_wait: Duration,
}

struct Inner {
    http: reqwest::Client,
    api_base: String,
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    callback: String,
    eventsub_secret: SecretString,
    policy: RetryPolicy,
    /// Held across the token request so that concurrent callers wait for
    /// one refresh instead of each fetching their own.
    token: tokio::sync::Mutex<Option<AppToken>>,
    bucket: Mutex<Option<Bucket>>,
}

/// A cheap-to-clone Helix client.
#[derive(Clone)]
pub struct HelixClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HelixClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelixClient")
            .field("api_base", &self.inner.api_base)
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

/// The one HTTP client for every Twitch call: timeouts on every request,
/// no redirects (the oauth2 crate requires that for the token endpoint).
///
/// # Errors
/// [`HelixError::Client`] if TLS cannot be initialised.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, HelixError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("eventsub-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(HelixError::Client)
}

fn trim_base(url: &url::Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn header_u64(resp: &Response, name: &str) -> Option<u64> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

async fn error_message(resp: Response) -> String {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    serde_json::from_str::<TwitchErrorBody>(&text)
        .ok()
        .map(|b| b.message)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").to_owned())
}

/// The condition user ids of a subscription, for the `user_id` filter.
fn first_condition_id(condition: &Value) -> Option<String> {
    condition
        .as_object()?
        .values()
        .filter_map(Value::as_str)
        .find(|s| !s.is_empty())
        .map(str::to_owned)
}

/// True when two conditions name the same non-empty fields with the same
/// values (TWITCH.md §1.2: unset fields come back as `""`).
pub fn same_condition(a: &Value, b: &Value) -> bool {
    fn set(v: &Value) -> Vec<(&str, &Value)> {
        let mut out: Vec<(&str, &Value)> = v
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| v.as_str() != Some(""))
                    .map(|(k, v)| (k.as_str(), v))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|x, y| x.0.cmp(y.0));
        out
    }
    set(a) == set(b)
}

impl HelixClient {
    /// A client for the Twitch application in `settings`.
    ///
    /// # Errors
    /// [`HelixError::NoCredentials`] in local mode.
    pub fn new(http: reqwest::Client, settings: &Settings) -> Result<Self, HelixError> {
        let Mode::Twitch(creds) = &settings.mode else {
            return Err(HelixError::NoCredentials);
        };
        let limits = &settings.limits;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                api_base: trim_base(&settings.twitch_api_url),
                token_url: format!("{}/oauth2/token", trim_base(&settings.twitch_auth_url)),
                client_id: creds.client_id.clone(),
                client_secret: creds.client_secret.clone(),
                callback: settings.callback_url(),
                eventsub_secret: SecretString::from(settings.eventsub_secret.expose()),
                policy: RetryPolicy {
                    retries: limits.helix_retries,
                    backoff: limits.helix_backoff,
                    max_wait: limits.helix_max_wait,
                },
                token: tokio::sync::Mutex::new(None),
                bucket: Mutex::new(None),
            }),
        })
    }

    /// The webhook callback every subscription of this bridge uses.
    pub fn callback(&self) -> &str {
        &self.inner.callback
    }

    /// The client id (sent as `Client-Id`).
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The shared HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let p = self.inner.policy;
        let base = p
            .backoff
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(p.max_wait);
        // Up to +50 % jitter so that many waiters do not retry in step.
        let jitter_ms = rand::rng().random_range(0..=base.as_millis() as u64 / 2);
        (base + Duration::from_millis(jitter_ms)).min(p.max_wait)
    }

    /// How long to wait before the bucket refills (0 when it is not empty).
    fn bucket_wait(&self) -> Duration {
        let bucket = *self.inner.bucket.lock();
        match bucket {
            Some(b) if b.remaining == 0 => Duration::from_secs(b.reset.saturating_sub(unix_now()))
                .min(self.inner.policy.max_wait),
            _ => Duration::ZERO,
        }
    }

    fn note_bucket(&self, resp: &Response) {
        let remaining = header_u64(resp, "ratelimit-remaining");
        let reset = header_u64(resp, "ratelimit-reset");
        if let (Some(remaining), Some(reset)) = (remaining, reset) {
            *self.inner.bucket.lock() = Some(Bucket { remaining, reset });
        }
    }

    /// Sends the request `make` builds, waiting for an empty rate-limit
    /// bucket first and retrying 429, 5xx and unanswered requests. Any other
    /// answer is returned for the caller to interpret.
    async fn send_retrying(
        &self,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Response, HelixError> {
        let retries = self.inner.policy.retries;
        let mut attempt = 0u32;
        loop {
            let wait = self.bucket_wait();
            if !wait.is_zero() {
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    "Helix rate limit: waiting for the bucket to refill"
                );
                tokio::time::sleep(wait).await;
                *self.inner.bucket.lock() = None;
            }
            let resp = match make().send().await {
                Ok(resp) => resp,
                Err(e) if attempt < retries => {
                    tracing::warn!(error = %e, attempt, "Twitch did not answer; retrying");
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(HelixError::Transport(e.without_url())),
            };
            self.note_bucket(&resp);
            let status = resp.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                if attempt >= retries {
                    return Err(HelixError::RateLimited(error_message(resp).await));
                }
                // TWITCH.md §3.1: wait until Ratelimit-Reset, at least the backoff.
                let reset_wait = header_u64(&resp, "ratelimit-reset")
                    .map(|r| Duration::from_secs(r.saturating_sub(unix_now())))
                    .unwrap_or_default();
                let wait = reset_wait
                    .max(self.backoff(attempt))
                    .min(self.inner.policy.max_wait);
                tracing::warn!(
                    wait_ms = wait.as_millis() as u64,
                    attempt,
                    "Helix answered 429; retrying"
                );
                *self.inner.bucket.lock() = None;
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            if status.is_server_error() {
                if attempt >= retries {
                    return Err(HelixError::Upstream {
                        status: status.as_u16(),
                        message: error_message(resp).await,
                    });
                }
                tracing::warn!(
                    status = status.as_u16(),
                    attempt,
                    "Helix answered 5xx; retrying"
                );
                tokio::time::sleep(self.backoff(attempt)).await;
                attempt += 1;
                continue;
            }
            return Ok(resp);
        }
    }

    /// The cached app access token, fetched by client credentials when
    /// missing or about to expire.
    async fn app_token(&self) -> Result<SecretString, HelixError> {
        let mut guard = self.inner.token.lock().await;
        if let Some(t) = guard.as_ref() {
            if Instant::now() < t.refresh_at {
                return Ok(t.value.clone());
            }
        }
        let inner = &self.inner;
        let resp = self
            .send_retrying(|| {
                inner.http.post(&inner.token_url).form(&[
                    ("client_id", inner.client_id.as_str()),
                    ("client_secret", inner.client_secret.expose_secret()),
                    ("grant_type", "client_credentials"),
                ])
            })
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(HelixError::Token {
                status: status.as_u16(),
                message: error_message(resp).await,
            });
        }
        let body: AppTokenResponse = resp
            .json()
            .await
            .map_err(|e| HelixError::Decode(format!("app token: {e}")))?;
        let lifetime = body
            .expires_in
            .filter(|s| *s > 0)
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        let margin = TOKEN_REFRESH_MARGIN.min(lifetime / 2);
        let value = SecretString::from(body.access_token);
        *guard = Some(AppToken {
            value: value.clone(),
            refresh_at: Instant::now() + lifetime - margin,
        });
        tracing::info!(
            expires_in_s = lifetime.as_secs(),
            "fetched a Twitch app access token"
        );
        Ok(value)
    }

    /// Forgets the cached app token if it is still `stale` (so that only one
    /// of several callers that saw the same 401 refreshes it).
    async fn invalidate(&self, stale: &SecretString) {
        let mut guard = self.inner.token.lock().await;
        if guard
            .as_ref()
            .is_some_and(|t| t.value.expose_secret() == stale.expose_secret())
        {
            *guard = None;
        }
    }

    /// One Helix call: `Authorization` + `Client-Id`, a 401 with the app
    /// token refreshes it once, then the retrying send.
    async fn call(
        &self,
        auth: Auth<'_>,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Response, HelixError> {
        let url = format!("{}{path}", self.inner.api_base);
        let mut refreshed = false;
        loop {
            let token = match auth {
                Auth::App => self.app_token().await?,
                Auth::User(t) => t.clone(),
            };
            let resp = self
                .send_retrying(|| {
                    let mut req = self
                        .inner
                        .http
                        .request(method.clone(), &url)
                        .query(query)
                        .bearer_auth(token.expose_secret())
                        .header("Client-Id", &self.inner.client_id);
                    if let Some(b) = body {
                        req = req.json(b);
                    }
                    req
                })
                .await?;
            if resp.status() == StatusCode::UNAUTHORIZED {
                if matches!(auth, Auth::App) && !refreshed {
                    tracing::info!("Helix answered 401; refreshing the app token once");
                    self.invalidate(&token).await;
                    refreshed = true;
                    continue;
                }
                return Err(HelixError::Unauthorized(error_message(resp).await));
            }
            return Ok(resp);
        }
    }

    async fn expect_ok(resp: Response) -> Result<Response, HelixError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let message = error_message(resp).await;
        Err(if status == StatusCode::NOT_FOUND {
            HelixError::NotFound(message)
        } else {
            HelixError::Rejected {
                status: status.as_u16(),
                message,
            }
        })
    }

    async fn users(
        &self,
        auth: Auth<'_>,
        query: &[(&str, String)],
    ) -> Result<Vec<HelixUser>, HelixError> {
        let resp = self.call(auth, Method::GET, "/users", query, None).await?;
        let page: DataPage<HelixUser> = Self::expect_ok(resp)
            .await?
            .json()
            .await
            .map_err(|e| HelixError::Decode(format!("users: {e}")))?;
        Ok(page.data)
    }

    /// Get Users by login (at most [`MAX_USERS_PER_CALL`] per call; more are
    /// sent in several calls). Unknown logins are simply absent.
    ///
    /// # Errors
    /// [`HelixError`] from the call.
    #[tracing::instrument(skip_all, fields(count = logins.len()))]
    pub async fn users_by_login(&self, logins: &[&str]) -> Result<Vec<HelixUser>, HelixError> {
        self.users_by("login", logins).await
    }

    /// Get Users by id, like [`Self::users_by_login`].
    ///
    /// # Errors
    /// [`HelixError`] from the call.
    #[tracing::instrument(skip_all, fields(count = ids.len()))]
    pub async fn users_by_id(&self, ids: &[&str]) -> Result<Vec<HelixUser>, HelixError> {
        self.users_by("id", ids).await
    }

    async fn users_by(&self, key: &str, values: &[&str]) -> Result<Vec<HelixUser>, HelixError> {
        let mut out = Vec::new();
        for chunk in values.chunks(MAX_USERS_PER_CALL) {
            let query: Vec<(&str, String)> = chunk.iter().map(|v| (key, (*v).to_owned())).collect();
            out.extend(self.users(Auth::App, &query).await?);
        }
        Ok(out)
    }

    /// The user a viewer's token belongs to (Get Users without parameters).
    ///
    /// # Errors
    /// [`HelixError`]; `Decode` when Helix returns no user.
    pub async fn user_for_token(&self, token: &SecretString) -> Result<HelixUser, HelixError> {
        self.users(Auth::User(token), &[])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| HelixError::Decode("Get Users returned no user for the token".into()))
    }

    /// Creates a webhook subscription to our callback with our secret.
    /// A 409 is success: the existing subscription is looked up and adopted.
    ///
    /// # Errors
    /// [`HelixError`] for every other failure.
    #[tracing::instrument(skip(self, condition))]
    pub async fn create_subscription(
        &self,
        sub_type: &str,
        version: &str,
        condition: &Value,
    ) -> Result<Created, HelixError> {
        let body = json!({
            "type": sub_type,
            "version": version,
            "condition": condition,
            "transport": {
                "method": "webhook",
                "callback": self.inner.callback,
                "secret": self.inner.eventsub_secret.expose_secret(),
            }
        });
        let resp = self
            .call(
                Auth::App,
                Method::POST,
                "/eventsub/subscriptions",
                &[],
                Some(&body),
            )
            .await?;
        if resp.status() == StatusCode::CONFLICT {
            tracing::info!("subscription exists already (409); adopting it");
            let existing = self.find_subscription(sub_type, condition).await?;
            return Ok(Created::Existing(existing));
        }
        let page: DataPage<HelixSubscription> = Self::expect_ok(resp)
            .await?
            .json()
            .await
            .map_err(|e| HelixError::Decode(format!("create subscription: {e}")))?;
        let costs = Costs {
            total_cost: page.total_cost.unwrap_or(0),
            max_total_cost: page.max_total_cost.unwrap_or(0),
        };
        let sub = page
            .data
            .into_iter()
            .next()
            .ok_or_else(|| HelixError::Decode("create subscription returned no data".into()))?;
        tracing::info!(subscription_id = %sub.id, status = %sub.status, "subscription created");
        Ok(Created::New(sub, costs))
    }

    /// Creates a subscription on an EventSub WebSocket session (TWITCH.md
    /// §12): `{"method":"websocket","session_id"}`, with the user token of
    /// the streamer whose grant covers the type. A 409 (the session has it
    /// already, e.g. after a retried request) counts as created.
    ///
    /// # Errors
    /// [`HelixError::Unauthorized`] when the user token is refused (refresh
    /// it and try again), [`HelixError::Rejected`] (403: the scope is
    /// missing; 400: the session is not live), or another [`HelixError`].
    #[tracing::instrument(skip(self, token, condition, session_id))]
    pub async fn create_websocket_subscription(
        &self,
        token: &SecretString,
        sub_type: &str,
        version: &str,
        condition: &Value,
        session_id: &str,
    ) -> Result<Created, HelixError> {
        let body = json!({
            "type": sub_type,
            "version": version,
            "condition": condition,
            "transport": {"method": "websocket", "session_id": session_id},
        });
        let resp = self
            .call(
                Auth::User(token),
                Method::POST,
                "/eventsub/subscriptions",
                &[],
                Some(&body),
            )
            .await?;
        if resp.status() == StatusCode::CONFLICT {
            return Ok(Created::Existing(None));
        }
        let page: DataPage<HelixSubscription> = Self::expect_ok(resp)
            .await?
            .json()
            .await
            .map_err(|e| HelixError::Decode(format!("create subscription: {e}")))?;
        let costs = Costs {
            total_cost: page.total_cost.unwrap_or(0),
            max_total_cost: page.max_total_cost.unwrap_or(0),
        };
        let sub = page
            .data
            .into_iter()
            .next()
            .ok_or_else(|| HelixError::Decode("create subscription returned no data".into()))?;
        Ok(Created::New(sub, costs))
    }

    /// The app's subscriptions whose condition names `user_id` (one
    /// filtered list, all pages).
    ///
    /// # Errors
    /// [`HelixError`] from any page.
    pub async fn list_for_user(&self, user_id: &str) -> Result<Vec<HelixSubscription>, HelixError> {
        Ok(self
            .list_filtered(Some(("user_id", user_id.to_owned())))
            .await?
            .data)
    }

    /// The live subscription of `sub_type` with exactly `condition` to our
    /// callback, if Helix lists one (filtered by a condition user id).
    async fn find_subscription(
        &self,
        sub_type: &str,
        condition: &Value,
    ) -> Result<Option<HelixSubscription>, HelixError> {
        let filter = first_condition_id(condition).map(|id| ("user_id", id));
        let list = self.list_filtered(filter).await?;
        Ok(list.data.into_iter().find(|s| {
            s.sub_type == sub_type
                && same_condition(&s.condition, condition)
                && s.callback() == Some(self.callback())
        }))
    }

    /// Every subscription of the app, all pages.
    ///
    /// # Errors
    /// [`HelixError`] from any page.
    #[tracing::instrument(skip_all)]
    pub async fn list_subscriptions(&self) -> Result<SubscriptionList, HelixError> {
        self.list_filtered(None).await
    }

    async fn list_filtered(
        &self,
        filter: Option<(&str, String)>,
    ) -> Result<SubscriptionList, HelixError> {
        let mut out = SubscriptionList::default();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some((k, v)) = &filter {
                query.push((k, v.clone()));
            }
            if let Some(c) = &cursor {
                query.push(("after", c.clone()));
            }
            let resp = self
                .call(
                    Auth::App,
                    Method::GET,
                    "/eventsub/subscriptions",
                    &query,
                    None,
                )
                .await?;
            let page: DataPage<HelixSubscription> = Self::expect_ok(resp)
                .await?
                .json()
                .await
                .map_err(|e| HelixError::Decode(format!("list subscriptions: {e}")))?;
            out.data.extend(page.data);
            out.total = page.total.unwrap_or(out.data.len() as u64);
            out.costs = Costs {
                total_cost: page.total_cost.unwrap_or(0),
                max_total_cost: page.max_total_cost.unwrap_or(0),
            };
            cursor = page
                .pagination
                .and_then(|p| p.cursor)
                .filter(|c| !c.is_empty());
            if cursor.is_none() {
                return Ok(out);
            }
        }
        Err(HelixError::Decode(format!(
            "more than {MAX_PAGES} pages of subscriptions"
        )))
    }

    /// Deletes a subscription.
    ///
    /// # Errors
    /// [`HelixError::NotFound`] for an unknown id, or another [`HelixError`].
    #[tracing::instrument(skip(self))]
    pub async fn delete_subscription(&self, id: &str) -> Result<(), HelixError> {
        let resp = self
            .call(
                Auth::App,
                Method::DELETE,
                "/eventsub/subscriptions",
                &[("id", id.to_owned())],
                None,
            )
            .await?;
        Self::expect_ok(resp).await?;
        tracing::info!("subscription deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_subscription_parses_with_its_transport() {
        let raw = r#"{"id":"f1c2a387","status":"enabled","type":"stream.online","version":"1",
            "condition":{"broadcaster_user_id":"1234"},"created_at":"2026-11-23T08:00:00Z",
            "transport":{"method":"webhook","callback":"https://example.com/api/callback"},"cost":1}"#;
        let s: HelixSubscription = serde_json::from_str(raw).unwrap();
        assert_eq!(s.callback(), Some("https://example.com/api/callback"));
        assert_eq!(s.cost, 1);
        assert_eq!(first_condition_id(&s.condition).as_deref(), Some("1234"));
    }

    #[test]
    fn conditions_match_ignoring_empty_fields() {
        let a = json!({"from_broadcaster_user_id": "", "to_broadcaster_user_id": "42"});
        assert!(same_condition(&a, &json!({"to_broadcaster_user_id": "42"})));
        assert!(!same_condition(
            &a,
            &json!({"to_broadcaster_user_id": "43"})
        ));
    }

    #[test]
    fn the_user_id_filter_skips_empty_condition_fields() {
        let c = json!({"from_broadcaster_user_id": "", "to_broadcaster_user_id": "42"});
        assert_eq!(first_condition_id(&c).as_deref(), Some("42"));
    }
}
