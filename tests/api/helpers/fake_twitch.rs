//! `FakeTwitch`: a wiremock server that speaks Twitch's JSON for the OAuth
//! endpoints (`/oauth2/token` for client credentials, authorization code and
//! refresh; `/oauth2/validate`) and Helix (`/helix/users`,
//! `/helix/eventsub/subscriptions` POST/GET/DELETE), backed by state so that
//! tokens, codes and subscriptions behave as on Twitch (TWITCH.md §3, §4).
//!
//! Users grant scopes: a code carries the scopes of the authorize URL it
//! answers ([`FakeTwitch::authorize`]), tokens carry them (validate lists
//! them; refresh keeps them), and Helix refuses a scoped subscription type
//! with 403 unless the condition's user granted its scope (TWITCH.md §5).
//!
//! Failure modes are queued per endpoint with [`FakeTwitch::fail_next`]:
//! a status (5xx, 400…), a 401, or a 429 with `Ratelimit-Reset`. Calls are
//! counted per endpoint, and [`FakeTwitch::expect`] mounts a wiremock
//! `expect(n)` for an endpoint.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventsub_bridge::config::{Mode, Settings, TwitchCredentials};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::TestApp;

pub const CLIENT_ID: &str = "fake-client-id-0123";
pub const CLIENT_SECRET: &str = "fake-client-secret-0123";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// The Twitch users every fake knows: (id, login, display name).
pub const USERS: &[(&str, &str, &str)] = &[
    ("1001", "teststreamer", "TestStreamer"),
    ("1002", "otherstreamer", "OtherStreamer"),
    ("2042", "viewer42", "Viewer42"),
];

/// A fake Twitch endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Token,
    Validate,
    Users,
    CreateSub,
    ListSubs,
    DeleteSub,
}

impl Endpoint {
    fn route(self) -> (&'static str, &'static str) {
        match self {
            Self::Token => ("POST", "/oauth2/token"),
            Self::Validate => ("GET", "/oauth2/validate"),
            Self::Users => ("GET", "/helix/users"),
            Self::CreateSub => ("POST", "/helix/eventsub/subscriptions"),
            Self::ListSubs => ("GET", "/helix/eventsub/subscriptions"),
            Self::DeleteSub => ("DELETE", "/helix/eventsub/subscriptions"),
        }
    }

    const ALL: [Self; 6] = [
        Self::Token,
        Self::Validate,
        Self::Users,
        Self::CreateSub,
        Self::ListSubs,
        Self::DeleteSub,
    ];
}

/// A forced answer.
#[derive(Debug, Clone)]
pub enum Failure {
    /// That status with Twitch's error body.
    Status(u16),
    /// 401 Invalid OAuth token.
    Unauthorized,
    /// 429 with `Ratelimit-Remaining: 0` and `Ratelimit-Reset` this far ahead.
    RateLimited { reset_in_secs: u64 },
}

/// A user access token as the fake knows it.
#[derive(Debug, Clone)]
struct UserToken {
    user: String,
    scopes: Vec<String>,
    /// Unix seconds.
    expires_at: u64,
}

/// Lifetime of a user access token the fake issues.
pub const USER_TOKEN_SECS: u64 = 14_124;

/// The scope a subscription type needs (TWITCH.md §5), as Twitch checks it.
fn required_scope(sub_type: &str) -> Option<&'static str> {
    Some(match sub_type {
        "channel.follow" => "moderator:read:followers",
        "channel.subscribe" | "channel.subscription.gift" | "channel.subscription.message" => {
            "channel:read:subscriptions"
        }
        "channel.cheer" => "bits:read",
        "channel.channel_points_custom_reward_redemption.add" => "channel:read:redemptions",
        "channel.hype_train.begin" => "channel:read:hype_train",
        _ => return None,
    })
}

#[derive(Default)]
pub(super) struct State {
    users: Vec<(String, String, String)>,
    app_tokens: HashSet<String>,
    user_tokens: HashMap<String, UserToken>,
    /// refresh token → (user id, scopes)
    refresh_tokens: HashMap<String, (String, Vec<String>)>,
    /// code → (user id, scopes) (single use)
    codes: HashMap<String, (String, Vec<String>)>,
    /// user id → scopes the user granted this client (TWITCH.md §3.3).
    granted: HashMap<String, HashSet<String>>,
    pub(super) subs: Vec<Value>,
    counter: u64,
    failures: HashMap<Endpoint, VecDeque<Failure>>,
    calls: HashMap<Endpoint, usize>,
    page_size: usize,
    max_total_cost: u64,
    refresh_works: bool,
    token_forms: Vec<HashMap<String, String>>,
    /// The fake EventSub WebSocket server's sessions and settings.
    pub(super) ws: super::fake_eventsub_ws::WsState,
}

/// The fake. Dropping it stops the server.
pub struct FakeTwitch {
    pub server: MockServer,
    pub(super) state: Arc<Mutex<State>>,
}

#[derive(Clone)]
struct Handler {
    state: Arc<Mutex<State>>,
    endpoint: Endpoint,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn twitch_error(status: u16, message: &str) -> ResponseTemplate {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": reason, "status": status, "message": message}))
}

fn ratelimit(t: ResponseTemplate, remaining: u64) -> ResponseTemplate {
    t.insert_header("Ratelimit-Limit", "800")
        .insert_header("Ratelimit-Remaining", remaining.to_string().as_str())
        .insert_header("Ratelimit-Reset", (now_unix() + 60).to_string().as_str())
}

fn query(req: &Request) -> Vec<(String, String)> {
    req.url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn estimated_cost(sub_type: &str) -> u64 {
    match sub_type {
        "stream.online" | "stream.offline" | "channel.update" | "channel.raid" => 1,
        _ => 0,
    }
}

fn non_empty_condition(v: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = v
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| v.as_str() != Some(""))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn is_live(status: &str) -> bool {
    matches!(status, "enabled" | "webhook_callback_verification_pending")
}

impl State {
    fn user_json(&self, id: &str) -> Option<Value> {
        self.users
            .iter()
            .find(|u| u.0 == id)
            .map(|(id, login, name)| {
                json!({
                    "id": id, "login": login, "display_name": name, "type": "",
                    "broadcaster_type": "", "description": "", "profile_image_url": "",
                    "offline_image_url": "", "view_count": 0, "created_at": "2016-12-14T20:32:28Z"
                })
            })
    }

    fn total_cost(&self) -> u64 {
        self.subs
            .iter()
            .filter(|s| is_live(s["status"].as_str().unwrap_or("")))
            .map(|s| s["cost"].as_u64().unwrap_or(0))
            .sum()
    }

    pub(super) fn next(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{}", self.counter)
    }

    /// Bearer token of a Helix request: Some(None) = app, Some(Some(user)) = user.
    fn helix_auth(&self, req: &Request) -> Option<Option<String>> {
        let client = req.headers.get("client-id")?.to_str().ok()?;
        if client != CLIENT_ID {
            return None;
        }
        let auth = req.headers.get("authorization")?.to_str().ok()?;
        let token = auth.strip_prefix("Bearer ")?;
        if self.app_tokens.contains(token) {
            return Some(None);
        }
        self.live_token(token).map(|t| Some(t.user.clone()))
    }

    /// A user token that exists and has not expired.
    fn live_token(&self, token: &str) -> Option<&UserToken> {
        self.user_tokens
            .get(token)
            .filter(|t| t.expires_at > now_unix())
    }

    fn issue_user_token(&mut self, user: &str, scopes: &[String]) -> String {
        let access = self.next("user-token");
        self.user_tokens.insert(
            access.clone(),
            UserToken {
                user: user.to_owned(),
                scopes: scopes.to_vec(),
                expires_at: now_unix() + USER_TOKEN_SECS,
            },
        );
        access
    }

    /// True when the condition's users granted what `sub_type` needs.
    fn authorized_for(&self, sub_type: &str, condition: &Value) -> bool {
        let Some(scope) = required_scope(sub_type) else {
            return true;
        };
        let user = condition["broadcaster_user_id"].as_str().unwrap_or("");
        let user = if sub_type == "channel.follow" {
            condition["moderator_user_id"].as_str().unwrap_or(user)
        } else {
            user
        };
        self.granted
            .get(user)
            .is_some_and(|scopes| scopes.contains(scope))
    }
}

impl Respond for Handler {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.state.lock().unwrap();
        *st.calls.entry(self.endpoint).or_default() += 1;
        if let Some(f) = st
            .failures
            .get_mut(&self.endpoint)
            .and_then(VecDeque::pop_front)
        {
            return match f {
                Failure::Status(code) => twitch_error(code, "fake failure"),
                Failure::Unauthorized => twitch_error(401, "Invalid OAuth token"),
                Failure::RateLimited { reset_in_secs } => twitch_error(429, "Too Many Requests")
                    .insert_header("Ratelimit-Limit", "800")
                    .insert_header("Ratelimit-Remaining", "0")
                    .insert_header(
                        "Ratelimit-Reset",
                        (now_unix() + reset_in_secs).to_string().as_str(),
                    ),
            };
        }
        match self.endpoint {
            Endpoint::Token => token(&mut st, req),
            Endpoint::Validate => validate(&st, req),
            Endpoint::Users => users(&st, req),
            Endpoint::CreateSub => create_sub(&mut st, req),
            Endpoint::ListSubs => list_subs(&st, req),
            Endpoint::DeleteSub => delete_sub(&mut st, req),
        }
    }
}

fn token(st: &mut State, req: &Request) -> ResponseTemplate {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    st.token_forms.push(form.clone());
    // TWITCH.md §4: credentials in the form body.
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return twitch_error(403, "invalid client secret");
    }
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            let t = st.next("app-token");
            st.app_tokens.insert(t.clone());
            ResponseTemplate::new(200).set_body_json(
                json!({"access_token": t, "expires_in": 5_011_271, "token_type": "bearer"}),
            )
        }
        Some("authorization_code") => {
            let Some((user, scopes)) = form.get("code").and_then(|c| st.codes.remove(c)) else {
                return twitch_error(400, "Invalid authorization code");
            };
            if !form.contains_key("redirect_uri") {
                return twitch_error(400, "Parameter redirect_uri does not match registered URI");
            }
            let access = st.issue_user_token(&user, &scopes);
            let refresh = st.next("refresh-token");
            st.refresh_tokens
                .insert(refresh.clone(), (user.clone(), scopes.clone()));
            st.granted.entry(user).or_default().extend(scopes.clone());
            ResponseTemplate::new(200).set_body_json(json!({
                "access_token": access, "expires_in": USER_TOKEN_SECS, "refresh_token": refresh,
                "scope": scopes, "token_type": "bearer"
            }))
        }
        Some("refresh_token") => {
            let grant = form
                .get("refresh_token")
                .and_then(|r| st.refresh_tokens.get(r).cloned());
            match grant {
                Some((user, scopes)) if st.refresh_works => {
                    let access = st.issue_user_token(&user, &scopes);
                    ResponseTemplate::new(200).set_body_json(json!({
                        "access_token": access, "expires_in": USER_TOKEN_SECS,
                        "refresh_token": form["refresh_token"], "scope": scopes,
                        "token_type": "bearer"
                    }))
                }
                _ => twitch_error(400, "Invalid refresh token"),
            }
        }
        _ => twitch_error(400, "unsupported grant type"),
    }
}

fn validate(st: &State, req: &Request) -> ResponseTemplate {
    let token = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("OAuth "))
        .unwrap_or("");
    if st.app_tokens.contains(token) {
        return ResponseTemplate::new(200)
            .set_body_json(json!({"client_id": CLIENT_ID, "scopes": [], "expires_in": 5_000_000}));
    }
    let Some(t) = st.live_token(token) else {
        return twitch_error(401, "invalid access token");
    };
    match st.user_json(&t.user) {
        Some(u) => ResponseTemplate::new(200).set_body_json(json!({
            "client_id": CLIENT_ID, "login": u["login"], "scopes": t.scopes,
            "user_id": u["id"], "expires_in": t.expires_at.saturating_sub(now_unix())
        })),
        None => twitch_error(401, "invalid access token"),
    }
}

fn users(st: &State, req: &Request) -> ResponseTemplate {
    let Some(auth) = st.helix_auth(req) else {
        return twitch_error(401, "Invalid OAuth token");
    };
    let q = query(req);
    if q.is_empty() {
        return match auth {
            Some(user) => ratelimit(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": [st.user_json(&user).unwrap()]})),
                799,
            ),
            None => twitch_error(400, "Missing User OAUTH Token"),
        };
    }
    let data: Vec<Value> = st
        .users
        .iter()
        .filter(|(id, login, _)| {
            q.iter().any(|(k, v)| {
                (k == "id" && v == id) || (k == "login" && v.eq_ignore_ascii_case(login))
            })
        })
        .filter_map(|(id, _, _)| st.user_json(id))
        .collect();
    ratelimit(
        ResponseTemplate::new(200).set_body_json(json!({ "data": data })),
        799,
    )
}

/// Create Subscription with `{"method":"websocket","session_id"}`
/// (TWITCH.md §12): a user token whose user is the condition's, carrying
/// the type's scope, and a session that is open and welcomed.
fn create_websocket_sub(st: &mut State, req: &Request, body: &Value) -> ResponseTemplate {
    let user = match st.helix_auth(req) {
        Some(Some(user)) => user,
        Some(None) => {
            return twitch_error(400, "websocket transport requires a user access token");
        }
        None => return twitch_error(401, "Invalid OAuth token"),
    };
    let token = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let scopes = st
        .live_token(token)
        .map(|t| t.scopes.clone())
        .unwrap_or_default();
    let sub_type = body["type"].as_str().unwrap_or("").to_owned();
    if sub_type.is_empty() || body["version"].as_str().is_none() {
        return twitch_error(400, "invalid type or version");
    }
    let session_id = body["transport"]["session_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    if !st.ws.is_live(&session_id) {
        return twitch_error(
            400,
            "websocket transport session does not exist or has already disconnected",
        );
    }
    let names_user = body["condition"]
        .as_object()
        .is_some_and(|o| o.values().any(|v| v == user.as_str()));
    if !names_user {
        return twitch_error(403, "the condition must name the token's user");
    }
    if let Some(scope) = required_scope(&sub_type) {
        if !scopes.iter().any(|s| s == scope) {
            return twitch_error(403, "subscription missing proper authorization");
        }
    }
    let cond = non_empty_condition(&body["condition"]);
    let on_session = |s: &&Value| s["transport"]["session_id"] == session_id.as_str();
    let live: Vec<&Value> = st
        .subs
        .iter()
        .filter(on_session)
        .filter(|s| s["status"] == "enabled")
        .collect();
    if live
        .iter()
        .any(|s| s["type"] == sub_type.as_str() && non_empty_condition(&s["condition"]) == cond)
    {
        return twitch_error(409, "subscription already exists");
    }
    if live.len() >= super::fake_eventsub_ws::MAX_SUBS_PER_SESSION {
        return twitch_error(429, "websocket transport limit exceeded");
    }
    let id = uuid::Uuid::new_v4().to_string();
    let sub = json!({
        "id": id, "status": "enabled", "type": sub_type, "version": body["version"],
        "condition": body["condition"], "created_at": super::fake_eventsub_ws::now_rfc3339(),
        "transport": {"method": "websocket", "session_id": session_id,
                      "connected_at": super::fake_eventsub_ws::now_rfc3339()},
        "cost": 0
    });
    st.subs.push(sub.clone());
    st.ws.note_subscribed(&session_id, &user);
    ratelimit(
        ResponseTemplate::new(202).set_body_json(json!({
            "data": [sub], "total": 1, "total_cost": 0, "max_total_cost": 10
        })),
        799,
    )
}

fn create_sub(st: &mut State, req: &Request) -> ResponseTemplate {
    if let Ok(body) = serde_json::from_slice::<Value>(&req.body) {
        if body["transport"]["method"] == "websocket" {
            return create_websocket_sub(st, req, &body);
        }
    }
    match st.helix_auth(req) {
        Some(None) => {}
        Some(Some(_)) => {
            return twitch_error(401, "webhook subscriptions require an app access token");
        }
        None => return twitch_error(401, "Invalid OAuth token"),
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return twitch_error(400, "invalid JSON");
    };
    let secret_len = body["transport"]["secret"].as_str().map_or(0, str::len);
    if body["transport"]["method"] != "webhook"
        || body["transport"]["callback"].as_str().is_none()
        || !(10..=100).contains(&secret_len)
    {
        return twitch_error(400, "invalid transport");
    }
    let sub_type = body["type"].as_str().unwrap_or("").to_owned();
    if sub_type.is_empty() || body["version"].as_str().is_none() {
        return twitch_error(400, "invalid type or version");
    }
    // TWITCH.md §3.2: a scoped type needs the condition user's grant.
    if !st.authorized_for(&sub_type, &body["condition"]) {
        return twitch_error(403, "subscription missing proper authorization");
    }
    let cond = non_empty_condition(&body["condition"]);
    if st.subs.iter().any(|s| {
        s["type"] == body["type"]
            && non_empty_condition(&s["condition"]) == cond
            && s["transport"]["callback"] == body["transport"]["callback"]
            && is_live(s["status"].as_str().unwrap_or(""))
    }) {
        return twitch_error(409, "subscription already exists");
    }
    let id = uuid::Uuid::new_v4().to_string();
    let sub = json!({
        "id": id, "status": "webhook_callback_verification_pending", "type": sub_type,
        "version": body["version"], "condition": body["condition"],
        "created_at": format!("2026-11-23T08:00:{:02}.{:09}Z", st.counter % 60, st.counter),
        "transport": {"method": "webhook", "callback": body["transport"]["callback"]},
        "cost": estimated_cost(&sub_type)
    });
    st.counter += 1;
    // The challenge is assumed answered: listed as enabled from now on.
    let mut stored = sub.clone();
    stored["status"] = json!("enabled");
    st.subs.push(stored);
    ratelimit(
        ResponseTemplate::new(202).set_body_json(json!({
            "data": [sub], "total": st.subs.len(), "total_cost": st.total_cost(),
            "max_total_cost": st.max_total_cost
        })),
        799,
    )
}

fn list_subs(st: &State, req: &Request) -> ResponseTemplate {
    if st.helix_auth(req) != Some(None) {
        return twitch_error(401, "Invalid OAuth token");
    }
    let q = query(req);
    let filters: Vec<&(String, String)> = q
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "status" | "type" | "user_id" | "subscription_id"
            )
        })
        .collect();
    if filters.len() > 1 {
        return twitch_error(400, "only one filter may be given");
    }
    // An app token lists webhook (and conduit) subscriptions only.
    let matching: Vec<&Value> = st
        .subs
        .iter()
        .filter(|s| s["transport"]["method"] != "websocket")
        .filter(|s| match filters.first() {
            None => true,
            Some((k, v)) => match k.as_str() {
                "status" => s["status"] == v.as_str(),
                "type" => s["type"] == v.as_str(),
                "subscription_id" => s["id"] == v.as_str(),
                _ => s["condition"]
                    .as_object()
                    .is_some_and(|o| o.values().any(|x| x == v.as_str())),
            },
        })
        .collect();
    let start = match q.iter().find(|(k, _)| k == "after") {
        None => 0,
        Some((_, c)) => match c.parse::<usize>() {
            Ok(n) if n <= matching.len() => n,
            _ => return twitch_error(400, "invalid cursor"),
        },
    };
    let end = (start + st.page_size).min(matching.len());
    let pagination = if end < matching.len() {
        json!({"cursor": end.to_string()})
    } else {
        json!({})
    };
    ratelimit(
        ResponseTemplate::new(200).set_body_json(json!({
            "total": matching.len(), "data": &matching[start..end],
            "total_cost": st.total_cost(), "max_total_cost": st.max_total_cost,
            "pagination": pagination
        })),
        799,
    )
}

fn delete_sub(st: &mut State, req: &Request) -> ResponseTemplate {
    if st.helix_auth(req) != Some(None) {
        return twitch_error(401, "Invalid OAuth token");
    }
    let Some(id) = query(req)
        .into_iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v)
    else {
        return twitch_error(400, "Missing required parameter \"id\"");
    };
    let before = st.subs.len();
    st.subs.retain(|s| s["id"] != id.as_str());
    if st.subs.len() == before {
        return twitch_error(404, "subscription not found");
    }
    ratelimit(ResponseTemplate::new(204), 799)
}

impl FakeTwitch {
    /// Starts the fake with the default users and no subscriptions.
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            users: USERS
                .iter()
                .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
                .collect(),
            page_size: 100,
            max_total_cost: 10_000,
            refresh_works: true,
            ..Default::default()
        }));
        for endpoint in Endpoint::ALL {
            let (m, p) = endpoint.route();
            Mock::given(method(m))
                .and(path(p))
                .respond_with(Handler {
                    state: state.clone(),
                    endpoint,
                })
                .with_priority(10)
                .mount(&server)
                .await;
        }
        Self { server, state }
    }

    /// `TWITCH_AUTH_URL` for the bridge.
    pub fn auth_url(&self) -> String {
        self.server.uri()
    }

    /// `TWITCH_API_URL` for the bridge.
    pub fn api_url(&self) -> String {
        format!("{}/helix", self.server.uri())
    }

    /// Puts `s` in Twitch mode against this fake with the webhook transport
    /// (the tests' `PUBLIC_URL` is http, which would pick the WebSocket
    /// transport: its tests set it themselves), the admin API on and short
    /// retry waits.
    pub fn configure(&self, s: &mut Settings) {
        s.eventsub_transport = eventsub_bridge::config::EventSubTransport::Webhook;
        s.mode = Mode::Twitch(TwitchCredentials {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.to_owned().into(),
        });
        s.twitch_auth_url = url::Url::parse(&self.auth_url()).unwrap();
        s.twitch_api_url = url::Url::parse(&self.api_url()).unwrap();
        s.admin_token = Some(ADMIN_TOKEN.to_owned().into());
        s.limits.helix_backoff = Duration::from_millis(20);
        s.limits.helix_max_wait = Duration::from_secs(3);
        s.limits.twitch_timeout = Duration::from_secs(5);
    }

    /// Queues `failure` as the next answer of `endpoint`, `times` times.
    pub fn fail_next(&self, endpoint: Endpoint, failure: Failure, times: usize) {
        let mut st = self.state.lock().unwrap();
        let q = st.failures.entry(endpoint).or_default();
        for _ in 0..times {
            q.push_back(failure.clone());
        }
    }

    /// How many requests `endpoint` has answered.
    pub fn calls(&self, endpoint: Endpoint) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(&endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Mounts a wiremock expectation: `endpoint` is called exactly `n` times
    /// (checked by [`Self::verify`] or when the fake is dropped).
    pub async fn expect(&self, endpoint: Endpoint, n: u64) {
        let (m, p) = endpoint.route();
        Mock::given(method(m))
            .and(path(p))
            .respond_with(Handler {
                state: self.state.clone(),
                endpoint,
            })
            .with_priority(1)
            .expect(n)
            .named(format!("{endpoint:?}"))
            .mount(&self.server)
            .await;
    }

    /// Checks the `expect` calls now.
    pub async fn verify(&self) {
        self.server.verify().await;
    }

    /// The user consented: a one-time authorization code for `login`
    /// (with the scope `user:read:email`).
    pub fn issue_code(&self, login: &str) -> String {
        self.issue_code_with_scopes(login, &["user:read:email"])
    }

    /// The user consented to `scopes`: a one-time code for `login`.
    pub fn issue_code_with_scopes(&self, login: &str, scopes: &[&str]) -> String {
        let mut st = self.state.lock().unwrap();
        let id = user_id_of(&st, login);
        let code = st.next("code");
        st.codes.insert(
            code.clone(),
            (id, scopes.iter().map(|s| (*s).to_owned()).collect()),
        );
        code
    }

    /// What Twitch's consent page does: `login` accepts the scopes the
    /// authorize URL (`location`) asks for. Returns the code and the state
    /// to send back to the redirect URI.
    pub fn authorize(&self, location: &str, login: &str) -> (String, String) {
        let url = reqwest::Url::parse(location).unwrap();
        assert!(url.path().ends_with("/oauth2/authorize"), "{location}");
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], CLIENT_ID);
        assert_eq!(q["response_type"], "code");
        let scopes: Vec<&str> = q["scope"].split(' ').filter(|s| !s.is_empty()).collect();
        (
            self.issue_code_with_scopes(login, &scopes),
            q["state"].clone(),
        )
    }

    /// The scopes `login` has granted this client.
    pub fn granted_scopes(&self, login: &str) -> HashSet<String> {
        let st = self.state.lock().unwrap();
        let id = user_id_of(&st, login);
        st.granted.get(&id).cloned().unwrap_or_default()
    }

    /// `login`'s access tokens expire now (refresh still works).
    pub fn expire_user_tokens(&self, login: &str) {
        let mut st = self.state.lock().unwrap();
        let id = user_id_of(&st, login);
        for t in st.user_tokens.values_mut().filter(|t| t.user == id) {
            t.expires_at = 0;
        }
    }

    /// `login` disconnected the app on Twitch: tokens, refresh tokens and
    /// grants are gone, and the subscriptions that needed the grant are
    /// revoked with `authorization_revoked`. Returns those subscriptions.
    pub fn revoke_grant(&self, login: &str) -> Vec<Value> {
        let mut st = self.state.lock().unwrap();
        let id = user_id_of(&st, login);
        st.user_tokens.retain(|_, t| t.user != id);
        st.refresh_tokens.retain(|_, (u, _)| *u != id);
        st.granted.remove(&id);
        let mut revoked = Vec::new();
        for sub in &mut st.subs {
            let sub_type = sub["type"].as_str().unwrap_or("").to_owned();
            let names_user = sub["condition"]
                .as_object()
                .is_some_and(|o| o.values().any(|v| v == id.as_str()));
            if names_user
                && required_scope(&sub_type).is_some()
                && is_live(sub["status"].as_str().unwrap_or(""))
            {
                sub["status"] = json!("authorization_revoked");
                revoked.push(sub.clone());
            }
        }
        revoked
    }

    /// Every token ever issued stops working (as after a credential reset).
    pub fn revoke_app_tokens(&self) {
        self.state.lock().unwrap().app_tokens.clear();
    }

    /// The viewer disconnected the app: their access tokens stop validating
    /// and, unless `refresh_still_works`, refresh tokens are refused.
    pub fn revoke_user_tokens(&self, refresh_still_works: bool) {
        let mut st = self.state.lock().unwrap();
        st.user_tokens.clear();
        st.refresh_works = refresh_still_works;
    }

    /// Twitch's `max_total_cost` for this client.
    pub fn set_max_total_cost(&self, n: u64) {
        self.state.lock().unwrap().max_total_cost = n;
    }

    /// Subscriptions per list page.
    pub fn set_page_size(&self, n: usize) {
        self.state.lock().unwrap().page_size = n;
    }

    /// Adds a subscription as if created earlier; returns its id.
    pub fn seed_subscription(
        &self,
        sub_type: &str,
        condition: Value,
        status: &str,
        callback: &str,
    ) -> String {
        let mut st = self.state.lock().unwrap();
        let id = uuid::Uuid::new_v4().to_string();
        st.counter += 1;
        let sub = json!({
            "id": id, "status": status, "type": sub_type, "version": "1",
            "condition": condition,
            "created_at": format!("2026-11-22T08:00:00.{:09}Z", st.counter),
            "transport": {"method": "webhook", "callback": callback},
            "cost": estimated_cost(sub_type)
        });
        st.subs.push(sub);
        id
    }

    /// The subscriptions as Twitch holds them.
    pub fn subscriptions(&self) -> Vec<Value> {
        self.state.lock().unwrap().subs.clone()
    }

    /// Every `/oauth2/token` form received.
    pub fn token_forms(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().token_forms.clone()
    }
}

fn user_id_of(st: &State, login: &str) -> String {
    st.users
        .iter()
        .find(|u| u.1 == login)
        .map(|u| u.0.clone())
        .expect("a known fake user")
}

/// Polls `check` every 20 ms until it is true, failing after 5 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

impl TestApp {
    /// `GET /auth/login` → the `state` in the authorize URL (checked to
    /// carry Twitch's parameters).
    pub async fn start_twitch_login(&self, fake: &FakeTwitch) -> String {
        let r = self
            .client
            .get(self.url("/auth/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "/auth/login redirects");
        let location = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert_eq!(
            location.as_str().split('?').next().unwrap(),
            format!("{}/oauth2/authorize", fake.auth_url())
        );
        let q: HashMap<String, String> = location.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], CLIENT_ID);
        assert_eq!(q["redirect_uri"], "http://localhost:8080/auth/callback");
        assert!(q.contains_key("scope"));
        q["state"].clone()
    }

    /// Calls `/auth/callback` with this query string.
    pub async fn twitch_callback(&self, query: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/auth/callback?{query}")))
            .send()
            .await
            .unwrap()
    }

    /// The whole login as `login` through the fake; asserts it succeeded.
    pub async fn twitch_login(&self, fake: &FakeTwitch, login: &str) {
        let state = self.start_twitch_login(fake).await;
        let code = fake.issue_code(login);
        let r = self
            .twitch_callback(&format!(
                "code={code}&scope=user%3Aread%3Aemail&state={state}"
            ))
            .await;
        assert_eq!(r.status(), 302, "{:?}", r.text().await);
        assert_eq!(r.headers()["location"], "/");
    }

    /// GET /api/subscriptions with the admin token.
    pub async fn admin_list(&self) -> Value {
        let r = self
            .client
            .get(self.url("/api/subscriptions"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

/// Starts a fake Twitch and a bridge in Twitch mode pointed at it.
pub async fn spawn_twitch_app(change: impl FnOnce(&mut Settings)) -> (TestApp, FakeTwitch) {
    let fake = FakeTwitch::start().await;
    let app = super::spawn_app(|s| {
        fake.configure(s);
        change(s);
    })
    .await;
    let subs = app.state.twitch.as_ref().unwrap().subscriptions.clone();
    eventually("start-up reconciliation", || {
        let done = subs.is_reconciled();
        async move { done }
    })
    .await;
    (app, fake)
}
