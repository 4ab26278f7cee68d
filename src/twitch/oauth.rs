//! Twitch OAuth (TWITCH.md §4) for viewer login and for a streamer's
//! "connect alerts" grant (SPEC §8): the authorize URL, the code exchange
//! with the `oauth2` crate (credentials in the request body; Twitch's
//! `scope` is a JSON array, hence [`TwitchTokenResponse`]), token validation
//! and refresh, and the `state` bookkeeping that binds an attempt to the
//! browser that started it and says which flow it belongs to (pure
//! functions over the session's list).
//!
//! Tokens stay on the server: they live in the server-side session state and
//! every type that holds one redacts it from `Debug`.

use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardRevocableToken, TokenResponse, TokenUrl,
};
use rand::Rng;
use rand::distr::Alphanumeric;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::config::{Mode, Settings};
use crate::twitch::helix::HelixError;

/// Most login attempts one browser may have in flight (one per tab).
pub const MAX_PENDING_STATES: usize = 5;
/// Scopes asked for at login. The bridge only needs to know who the viewer
/// is, so none; Twitch still expects the `scope` parameter.
pub const LOGIN_SCOPES: &[&str] = &[];
/// Scopes asked for by "connect alerts" (SPEC §8): follows, subs and gifts,
/// cheers, redemptions and hype trains of the streamer's own channel.
pub const ALERT_SCOPES: &[&str] = &[
    "moderator:read:followers",
    "channel:read:subscriptions",
    "bits:read",
    "channel:read:redemptions",
    "channel:read:hype_train",
];

/// Why a login or a token check failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// No `state` came back.
    #[error("the login response has no state parameter")]
    StateMissing,
    /// A `state` this browser did not start, or one already used.
    #[error("the login state is not one this browser started, or it was already used")]
    StateInvalid,
    /// Older than the 10-minute limit.
    #[error("the login took too long (its state expired); please start again")]
    StateExpired,
    /// The viewer refused (`error=access_denied`).
    #[error("the Twitch login was declined")]
    Denied,
    /// Another `error=` from Twitch.
    #[error("Twitch returned an error: {error} ({description})")]
    Provider {
        /// The `error` parameter.
        error: String,
        /// The `error_description` parameter.
        description: String,
    },
    /// Neither `code` nor `error` came back.
    #[error("the login response has no code")]
    MissingCode,
    /// The token endpoint did not give a token.
    #[error("the code exchange failed: {0}")]
    Exchange(String),
    /// `/oauth2/validate` answered 401.
    #[error("the token does not validate")]
    TokenInvalid,
    /// The token belongs to another client, or names no user.
    #[error("the token is not a user token of this application")]
    WrongClient,
    /// `/oauth2/validate` could not be asked.
    #[error("token validation failed: {0}")]
    Validate(String),
    /// The token endpoint refused the refresh token (the grant is gone).
    #[error("Twitch refused the refresh token")]
    RefreshRefused,
    /// "Connect alerts" was authorized by another Twitch account than the
    /// one signed in.
    #[error(
        "Twitch authorized {authorized}, but you are signed in as {signed_in}; sign in as {authorized} to connect its alerts"
    )]
    OtherAccount {
        /// The login the token belongs to.
        authorized: String,
        /// The signed-in login.
        signed_in: String,
    },
    /// Helix `GET /users` failed.
    #[error("reading the Twitch user failed: {0}")]
    User(#[from] HelixError),
    /// The session could not be read or written.
    #[error("session: {0}")]
    Session(String),
    /// A store the flow needs (Redis) is unreachable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An endpoint URL built from the settings does not parse.
    #[error("invalid OAuth URL: {0}")]
    Url(String),
}

/// Twitch's token response: like RFC 6749's, except `scope` is a JSON array
/// (TWITCH.md §4; oauth2-rs #269).
#[derive(Clone, Serialize, Deserialize)]
pub struct TwitchTokenResponse {
    access_token: AccessToken,
    token_type: BasicTokenType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<RefreshToken>,
    #[serde(rename = "scope", default, skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<Scope>>,
}

impl std::fmt::Debug for TwitchTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwitchTokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl TokenResponse for TwitchTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

type TwitchOAuth2 = oauth2::Client<
    BasicErrorResponse,
    TwitchTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What `/oauth2/validate` says about a token.
#[derive(Debug, Clone, Deserialize)]
pub struct ValidatedToken {
    /// The client the token was issued to.
    pub client_id: String,
    /// The user's login (absent for app tokens).
    #[serde(default)]
    pub login: Option<String>,
    /// The user's id (absent for app tokens).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Seconds left; 0 for tokens that do not expire.
    #[serde(default)]
    pub expires_in: u64,
}

/// What the token endpoint issued (a code exchange or a refresh). The
/// tokens are secrets: `Debug` shows neither.
#[derive(Clone)]
pub struct IssuedTokens {
    /// The user access token.
    pub access_token: SecretString,
    /// The refresh token, if Twitch gave one.
    pub refresh_token: Option<SecretString>,
    /// Lifetime of the access token, if Twitch said.
    pub expires_in: Option<Duration>,
    /// The scopes granted (Twitch's array).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl IssuedTokens {
    fn from_response(resp: &TwitchTokenResponse) -> Self {
        Self {
            access_token: SecretString::from(resp.access_token().secret().as_str()),
            refresh_token: resp
                .refresh_token()
                .map(|r| SecretString::from(r.secret().as_str())),
            expires_in: resp.expires_in(),
            scopes: resp
                .scopes()
                .map(|v| v.iter().map(|s| s.as_str().to_owned()).collect())
                .unwrap_or_default(),
        }
    }
}

/// A viewer's tokens as kept in the server-side session state.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The user access token.
    pub access_token: String,
    /// The refresh token, if Twitch gave one.
    pub refresh_token: Option<String>,
    /// Unix seconds of the last successful validation.
    pub validated_at: i64,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("validated_at", &self.validated_at)
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    /// A login's record of freshly issued tokens (not validated yet).
    pub fn from_issued(issued: &IssuedTokens) -> Self {
        Self {
            access_token: issued.access_token.expose_secret().to_owned(),
            refresh_token: issued
                .refresh_token
                .as_ref()
                .map(|r| r.expose_secret().to_owned()),
            validated_at: 0,
        }
    }

    /// The access token as a secret.
    pub fn access(&self) -> SecretString {
        SecretString::from(self.access_token.as_str())
    }
}

/// The outcome of re-validating a session's token.
#[derive(Debug)]
pub enum Revalidation {
    /// Still good (possibly refreshed): store this record.
    Valid(TokenRecord),
    /// The token no longer validates and cannot be refreshed: end the session.
    Ended,
    /// Twitch could not be asked; keep the session and try again later.
    Unknown(OAuthError),
}

/// Which OAuth flow a `state` was issued for; the callback is shared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// `/auth/login`: sign in as a viewer.
    #[default]
    Login,
    /// `/auth/connect`: a streamer grants the alert scopes (SPEC §8).
    Connect,
}

/// One login attempt this browser started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingState {
    /// The random `state` value.
    pub state: String,
    /// Unix milliseconds when it was issued.
    pub issued_at_ms: i64,
    /// The flow it belongs to (states stored before flows existed are logins).
    #[serde(default)]
    pub flow: Flow,
}

/// A fresh, unguessable `state` (43 alphanumeric characters, ~256 bits).
pub fn new_state() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(43)
        .map(char::from)
        .collect()
}

/// Remembers a new state for `flow`, dropping expired ones and, past
/// [`MAX_PENDING_STATES`], the oldest.
pub fn push_state(
    pending: &mut Vec<PendingState>,
    state: String,
    flow: Flow,
    now_ms: i64,
    ttl: Duration,
) {
    let ttl = ttl.as_millis() as i64;
    pending.retain(|p| now_ms - p.issued_at_ms <= ttl);
    while pending.len() >= MAX_PENDING_STATES {
        pending.remove(0);
    }
    pending.push(PendingState {
        state,
        issued_at_ms: now_ms,
        flow,
    });
}

/// Consumes `given` from the browser's pending states (times in Unix ms): single use (it is
/// removed whether or not it expired), compared in constant time. Returns
/// the flow it was issued for.
///
/// # Errors
/// [`OAuthError::StateInvalid`] when this browser did not issue it (or it was
/// used already), [`OAuthError::StateExpired`] past `ttl`.
pub fn take_state(
    pending: &mut Vec<PendingState>,
    given: &str,
    now_ms: i64,
    ttl: Duration,
) -> Result<Flow, OAuthError> {
    let pos = pending
        .iter()
        .position(|p| bool::from(p.state.as_bytes().ct_eq(given.as_bytes())))
        .ok_or(OAuthError::StateInvalid)?;
    let found = pending.remove(pos);
    let age = now_ms - found.issued_at_ms;
    if age > ttl.as_millis() as i64 || age < 0 {
        return Err(OAuthError::StateExpired);
    }
    Ok(found.flow)
}

/// The OAuth client of the Twitch application.
#[derive(Clone)]
pub struct OAuthClient {
    client: TwitchOAuth2,
    http: reqwest::Client,
    validate_url: String,
    client_id: String,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("validate_url", &self.validate_url)
            .finish_non_exhaustive()
    }
}

fn request_error<RE: std::error::Error + 'static>(
    e: &RequestTokenError<RE, BasicErrorResponse>,
) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => format!("Twitch refused: {}", r.error()),
        RequestTokenError::Request(inner) => format!("no answer: {inner}"),
        RequestTokenError::Parse(inner, _) => format!("unexpected answer: {inner}"),
        RequestTokenError::Other(s) => s.clone(),
    }
}

/// True when the token endpoint itself refused (as opposed to not answering).
fn is_refusal<RE: std::error::Error + 'static>(
    e: &RequestTokenError<RE, BasicErrorResponse>,
) -> bool {
    // Twitch's 400 body is `{"status":400,"message":…}`, which does not
    // parse as an RFC error, so a refusal can also surface as Parse.
    matches!(
        e,
        RequestTokenError::ServerResponse(_) | RequestTokenError::Parse(..)
    )
}

impl OAuthClient {
    /// The client for `settings` (redirect URI `PUBLIC_URL/auth/callback`).
    ///
    /// # Errors
    /// [`OAuthError::Url`] naming a URL that does not parse; `None` in local mode.
    pub fn new(http: reqwest::Client, settings: &Settings) -> Result<Option<Self>, OAuthError> {
        let Mode::Twitch(creds) = &settings.mode else {
            return Ok(None);
        };
        let auth_base = settings.twitch_auth_url.as_str().trim_end_matches('/');
        let bad = |what: &str, e: url::ParseError| OAuthError::Url(format!("{what}: {e}"));
        let client = oauth2::Client::new(ClientId::new(creds.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                creds.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(
                AuthUrl::new(format!("{auth_base}/oauth2/authorize"))
                    .map_err(|e| bad("authorize URL", e))?,
            )
            .set_token_uri(
                TokenUrl::new(format!("{auth_base}/oauth2/token"))
                    .map_err(|e| bad("token URL", e))?,
            )
            .set_redirect_uri(
                RedirectUrl::new(format!("{}/auth/callback", settings.public_base()))
                    .map_err(|e| bad("redirect URL", e))?,
            )
            // TWITCH.md §4: credentials in the form body, not HTTP Basic.
            .set_auth_type(AuthType::RequestBody);
        Ok(Some(Self {
            client,
            http,
            validate_url: format!("{auth_base}/oauth2/validate"),
            client_id: creds.client_id.clone(),
        }))
    }

    /// The `/oauth2/authorize` URL for an attempt of `flow` carrying
    /// `state`: no scopes for a login, [`ALERT_SCOPES`] for "connect
    /// alerts" (with `force_verify`, so that Twitch shows which account
    /// grants them).
    pub fn authorize_url(&self, state: &str, flow: Flow) -> url::Url {
        let state = state.to_owned();
        let scopes = match flow {
            Flow::Login => LOGIN_SCOPES,
            Flow::Connect => ALERT_SCOPES,
        };
        let mut req = self
            .client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())));
        if scopes.is_empty() {
            req = req.add_extra_param("scope", "");
        }
        if flow == Flow::Connect {
            req = req.add_extra_param("force_verify", "true");
        }
        req.url().0
    }

    /// Exchanges an authorization code for the user's tokens.
    ///
    /// # Errors
    /// [`OAuthError::Exchange`] with a reason that names no secret.
    pub async fn exchange_code(&self, code: &str) -> Result<IssuedTokens, OAuthError> {
        let resp = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| OAuthError::Exchange(request_error(&e)))?;
        Ok(IssuedTokens::from_response(&resp))
    }

    /// Trades a refresh token for fresh tokens (TWITCH.md §4).
    ///
    /// # Errors
    /// [`OAuthError::RefreshRefused`] when Twitch refuses it (the grant is
    /// gone), [`OAuthError::Exchange`] when Twitch cannot be asked.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<IssuedTokens, OAuthError> {
        match self
            .client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.expose_secret().to_owned()))
            .request_async(&self.http)
            .await
        {
            Ok(resp) => Ok(IssuedTokens::from_response(&resp)),
            Err(e) if is_refusal(&e) => Err(OAuthError::RefreshRefused),
            Err(e) => Err(OAuthError::Exchange(request_error(&e))),
        }
    }

    /// Asks `/oauth2/validate` about a token (`Authorization: OAuth …`).
    ///
    /// # Errors
    /// [`OAuthError::TokenInvalid`] on a 401, [`OAuthError::Validate`] when
    /// Twitch cannot be asked.
    pub async fn validate(&self, token: &SecretString) -> Result<ValidatedToken, OAuthError> {
        let resp = self
            .http
            .get(&self.validate_url)
            .header("Authorization", format!("OAuth {}", token.expose_secret()))
            .send()
            .await
            .map_err(|e| OAuthError::Validate(e.without_url().to_string()))?;
        match resp.status() {
            s if s.is_success() => resp
                .json()
                .await
                .map_err(|e| OAuthError::Validate(format!("unexpected answer: {e}"))),
            StatusCode::UNAUTHORIZED => Err(OAuthError::TokenInvalid),
            s => Err(OAuthError::Validate(format!("status {s}"))),
        }
    }

    /// Validates a fresh login token: it must belong to this client and a user.
    ///
    /// # Errors
    /// [`OAuthError::WrongClient`], or the validation's error.
    pub async fn validate_login(&self, token: &SecretString) -> Result<ValidatedToken, OAuthError> {
        let v = self.validate(token).await?;
        if v.client_id != self.client_id || v.user_id.as_deref().unwrap_or("").is_empty() {
            return Err(OAuthError::WrongClient);
        }
        Ok(v)
    }

    /// The hourly check (TWITCH.md §4): validate; on a 401 try the refresh
    /// token once and validate the new token.
    pub async fn revalidate(&self, record: &TokenRecord, now: i64) -> Revalidation {
        match self.validate(&record.access()).await {
            Ok(_) => {
                return Revalidation::Valid(TokenRecord {
                    validated_at: now,
                    ..record.clone()
                });
            }
            Err(OAuthError::TokenInvalid) => {}
            Err(e) => return Revalidation::Unknown(e),
        }
        let Some(refresh) = &record.refresh_token else {
            return Revalidation::Ended;
        };
        let issued = match self.refresh(&SecretString::from(refresh.as_str())).await {
            Ok(issued) => issued,
            Err(OAuthError::RefreshRefused) => return Revalidation::Ended,
            Err(e) => return Revalidation::Unknown(e),
        };
        let fresh = TokenRecord {
            access_token: issued.access_token.expose_secret().to_owned(),
            refresh_token: issued
                .refresh_token
                .map(|r| r.expose_secret().to_owned())
                .or_else(|| record.refresh_token.clone()),
            validated_at: now,
        };
        match self.validate(&fresh.access()).await {
            Ok(_) => Revalidation::Valid(fresh),
            Err(OAuthError::TokenInvalid) => Revalidation::Ended,
            Err(e) => Revalidation::Unknown(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(600);

    #[test]
    fn twitch_token_response_with_a_scope_array_parses() {
        let raw = r#"{"access_token":"abc","expires_in":14124,"refresh_token":"def",
            "scope":["user:read:email","moderator:read:followers"],"token_type":"bearer"}"#;
        let t: TwitchTokenResponse = serde_json::from_str(raw).unwrap();
        assert_eq!(t.scopes().unwrap().len(), 2);
        assert_eq!(t.refresh_token().unwrap().secret(), "def");
        assert_eq!(t.token_type(), &BasicTokenType::Bearer);
        assert!(!format!("{t:?}").contains("abc"));
    }

    #[test]
    fn a_state_is_single_use() {
        let mut p = Vec::new();
        push_state(&mut p, "s1".into(), Flow::Login, 1000, TTL);
        assert_eq!(take_state(&mut p, "s1", 1001, TTL).unwrap(), Flow::Login);
        assert!(matches!(
            take_state(&mut p, "s1", 1002, TTL),
            Err(OAuthError::StateInvalid)
        ));
    }

    #[test]
    fn a_wrong_state_is_invalid_and_an_old_one_expired() {
        let mut p = Vec::new();
        push_state(&mut p, "s1".into(), Flow::Login, 1000, TTL);
        assert!(matches!(
            take_state(&mut p, "other", 1001, TTL),
            Err(OAuthError::StateInvalid)
        ));
        assert!(matches!(
            take_state(&mut p, "s1", 1000 + 600_001, TTL),
            Err(OAuthError::StateExpired)
        ));
        assert!(p.is_empty(), "an expired state is consumed too");
    }

    #[test]
    fn pending_states_are_bounded_and_pruned() {
        let mut p = Vec::new();
        for i in 0..(MAX_PENDING_STATES + 3) {
            push_state(&mut p, format!("s{i}"), Flow::Login, 1000, TTL);
        }
        assert_eq!(p.len(), MAX_PENDING_STATES);
        assert_eq!(p[0].state, "s3");
        push_state(&mut p, "late".into(), Flow::Login, 1_000_000, TTL);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn a_state_tells_which_flow_it_belongs_to() {
        let mut p = Vec::new();
        push_state(&mut p, "login".into(), Flow::Login, 1000, TTL);
        push_state(&mut p, "connect".into(), Flow::Connect, 1000, TTL);
        assert_eq!(
            take_state(&mut p, "connect", 1001, TTL).unwrap(),
            Flow::Connect
        );
        assert_eq!(take_state(&mut p, "login", 1001, TTL).unwrap(), Flow::Login);
        // A state stored before flows existed is a login.
        let old: PendingState = serde_json::from_str(r#"{"state":"x","issued_at_ms":1}"#).unwrap();
        assert_eq!(old.flow, Flow::Login);
    }

    #[test]
    fn token_records_do_not_debug_their_tokens() {
        let r = TokenRecord {
            access_token: "secret-access".into(),
            refresh_token: Some("secret-refresh".into()),
            validated_at: 1,
        };
        let d = format!("{r:?}");
        assert!(!d.contains("secret-access") && !d.contains("secret-refresh"));
    }

    #[test]
    fn new_states_are_long_and_distinct() {
        let a = new_state();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_state());
    }
}
