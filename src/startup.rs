//! `Application`: builds the state and the route table, binds first (so a
//! test can read the port back), then runs until stopped.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::{HttpService, KeepAlive, Protocol, error::DispatchError};
use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _, map_config};
use actix_session::SessionMiddleware;
use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{
    AppConfig, Server, ServerHandle, Service, ServiceFactory, ServiceRequest, ServiceResponse,
    fn_factory, fn_service,
};
use actix_web::rt::net::TcpStream;
use actix_web::{App, web};
use tokio_util::sync::CancellationToken;

use crate::auth::redis_sessions::RedisSessions;
use crate::auth::store::{MemorySessions, SessionBackend};
use crate::broker::{Broker, MemoryBroker, RedisBroker};
use crate::config::Settings;
use crate::error::{ApiError, form_config, json_config, query_config};
use crate::metrics::Metrics;
use crate::routes;
use crate::state::AppState;

/// Session cookie name.
pub const SESSION_COOKIE: &str = "esb_session";
/// How long a session lives without use.
const SESSION_TTL_DAYS: i64 = 7;
/// At shutdown, how long viewers (WebSocket, SSE) get to take their 1001
/// close or the end of their stream before requests are drained.
const VIEWERS_DRAIN: Duration = Duration::from_secs(2);
/// At shutdown, how long requests in flight get once viewers are gone
/// (actix counts whole seconds). With `VIEWERS_DRAIN`: 10 s from the signal.
const REQUESTS_DRAIN_SECS: u64 = 8;
/// At shutdown, how long the EventSub sockets get to close and release
/// their leases once no request is left.
const CLEANUP_DRAIN: Duration = Duration::from_secs(2);

/// A bound, not yet running server.
pub struct Application {
    addr: SocketAddr,
    server: Server,
    state: web::Data<AppState>,
    /// Stops the broker (pub/sub listener, pinger), after the drain: the
    /// requests in flight at shutdown still publish and deliver.
    broker_stop: CancellationToken,
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("broker: {0}")]
    Broker(String),
    #[error("Twitch client: {0}")]
    Twitch(#[from] crate::twitch::helix::HelixError),
}

impl Application {
    /// Builds everything and binds the listener.
    ///
    /// # Errors
    /// [`StartupError`] when the address cannot be bound or the broker cannot start.
    pub async fn build(
        settings: Settings,
        shutdown: CancellationToken,
    ) -> Result<Self, StartupError> {
        let settings = Arc::new(settings);
        let metrics = Metrics::new();
        let broker_stop = CancellationToken::new();
        let (broker, sessions) = build_broker(&settings, &metrics, &broker_stop).await?;
        let broker = Arc::new(broker);
        let state = web::Data::new(
            AppState::new(settings.clone(), broker, metrics, shutdown.clone()).with_twitch()?,
        );
        if let Some(twitch) = &state.twitch {
            twitch.spawn_reconcile(shutdown.clone());
            twitch
                .grants
                .spawn_revalidation(settings.limits.token_revalidate_interval, shutdown.clone());
        }
        if let Some(sockets) = crate::twitch::eventsub_ws::EventSubSockets::start(&state) {
            let _ = state.eventsub_ws.set(sockets);
        }
        let key = Key::from(settings.session_key.as_bytes());
        let secure = settings.is_https();
        let body_limit = settings.limits.max_body_bytes;
        let app_state = state.clone();
        let listener =
            std::net::TcpListener::bind(settings.bind).map_err(|source| StartupError::Bind {
                addr: settings.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.bind,
            source,
        })?;
        let make_app = move || {
            let session = SessionMiddleware::builder(sessions.clone(), key.clone())
                .cookie_name(SESSION_COOKIE.to_owned())
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .cookie_secure(secure)
                .session_lifecycle(
                    PersistentSession::default()
                        .session_ttl(actix_web::cookie::time::Duration::days(SESSION_TTL_DAYS))
                        .session_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
                )
                .build();
            App::new()
                .app_data(app_state.clone())
                .app_data(json_config(body_limit))
                .app_data(query_config())
                .app_data(form_config())
                // Inside the session middleware, so that it can end a session.
                .wrap(actix_web::middleware::from_fn(
                    crate::auth::revalidate::revalidate_session,
                ))
                .wrap(session)
                .wrap_fn(|req, srv| {
                    let response = srv.call(req);
                    async move { response.await.map_err(session_store_outage) }
                })
                // Outermost: HEAD is routed as GET, and every response,
                // errors of the middlewares above included, gets its headers.
                .wrap(actix_web::middleware::from_fn(
                    routes::headers::security_headers,
                ))
                .configure(routes_table)
        };
        let mut server = actix_server::Server::build()
            .listen("eventsub-bridge", listener, {
                let broker = state.broker.clone();
                // Runs on each worker thread as it starts.
                move || {
                    broker.on_worker_start();
                    http_service(make_app.clone(), addr)
                }
            })
            .map_err(|source| StartupError::Bind {
                addr: settings.bind,
                source,
            })?
            .shutdown_timeout(REQUESTS_DRAIN_SECS)
            .disable_signals();
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let server = server.run();
        Ok(Self {
            addr,
            server,
            state,
            broker_stop,
        })
    }

    /// The bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The shared state (tests read metrics and the broker through it).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until `stop` is called on the handle or the shutdown token
    /// fires. Then drains, each step bounded: stop accepting; viewers get
    /// their 1001 close and SSE streams end (`VIEWERS_DRAIN`); requests in
    /// flight finish (`REQUESTS_DRAIN_SECS`); the EventSub sockets close and
    /// release their leases (`CLEANUP_DRAIN`); the broker's pub/sub
    /// connection closes.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let state = self.state.clone();
        let stopper = actix_web::rt::spawn(async move {
            state.shutdown.cancelled().await;
            tracing::info!("draining: no new connections; closing viewers");
            handle.pause().await;
            // Held until the end: a keep-alive connection cannot open a
            // new socket (503) while the rest drains.
            let all_permits = viewers_gone(&state, VIEWERS_DRAIN).await;
            if all_permits.is_none() {
                tracing::warn!("viewers still open after {VIEWERS_DRAIN:?}; stopping without them");
            }
            handle.stop(true).await;
            drop(all_permits);
        });
        let result = self.server.await;
        self.state.shutdown.cancel();
        stopper.abort();
        if let Some(sockets) = self.state.eventsub_ws.get() {
            let stopped = tokio::time::timeout(CLEANUP_DRAIN, sockets.stopped()).await;
            if stopped.is_err() {
                tracing::warn!(
                    "EventSub sockets not stopped after {CLEANUP_DRAIN:?}; their leases expire"
                );
            }
        }
        self.broker_stop.cancel();
        tracing::info!("stopped");
        result
    }
}

/// Waits up to `bound` for every WebSocket and SSE connection to end (each
/// holds a permit of `connections` until then); all the permits when they
/// did, `None` when some are still open.
async fn viewers_gone(
    state: &AppState,
    bound: Duration,
) -> Option<tokio::sync::SemaphorePermit<'_>> {
    let max = state
        .settings
        .limits
        .max_connections
        .min(tokio::sync::Semaphore::MAX_PERMITS);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    tokio::time::timeout(bound, state.connections.acquire_many(all))
        .await
        .ok()?
        .ok()
}

/// One worker's HTTP service: the application, plus the upgrade hook that
/// gives accepted `/ws` sockets to `ws::session` (what `HttpServer` builds,
/// which has no way to install that hook).
fn http_service<F, T, B>(
    make_app: F,
    addr: SocketAddr,
) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = DispatchError, InitError = ()>
where
    F: Fn() -> App<T> + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    // The application as actix-http serves it (what `HttpServer` does).
    let app_service = move || {
        map_config(
            make_app()
                .into_factory()
                .map_err(|e: actix_web::Error| e.error_response()),
            |(): ()| AppConfig::default(),
        )
    };
    let upgrade_app = app_service.clone();
    let upgrade = fn_factory(move || {
        let app = upgrade_app().new_service(());
        async move {
            let app = Rc::new(app.await?);
            Ok::<_, ()>(fn_service(move |(req, framed)| {
                crate::ws::upgrade::serve(app.clone(), req, framed)
            }))
        }
    });
    let http = HttpService::build()
        .keep_alive(KeepAlive::default())
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        .local_addr(addr)
        .upgrade(upgrade)
        .finish(app_service());
    fn_service(|io: TcpStream| async move {
        // Small frames must leave at once, not wait for the peer's delayed
        // ACK (Nagle): actix leaves TCP_NODELAY off.
        let _ = io.set_nodelay(true);
        let peer = io.peer_addr().ok();
        Ok((io, Protocol::Http1, peer))
    })
    .and_then(http)
}

/// actix-session answers a failing session store with a bare 500. Only the
/// Redis store can fail, and then Redis is unreachable: that is a 503 (SPEC
/// §6), so that clients and Twitch retry; `ApiError` logs the cause once.
fn session_store_outage(e: actix_web::Error) -> actix_web::Error {
    use actix_session::storage::{SaveError, UpdateError};
    use actix_web::error::InternalError;
    let from_store = e.as_error::<InternalError<anyhow::Error>>().is_some()
        || e.as_error::<InternalError<SaveError>>().is_some()
        || e.as_error::<InternalError<UpdateError>>().is_some();
    if from_store {
        ApiError::Unavailable(anyhow::anyhow!("session store: {e}")).into()
    } else {
        e
    }
}

/// The broker and session store: in memory, or in Redis when `REDIS_URL`
/// is set. A Redis that is down at start does not stop the process: it
/// serves un-ready (`/readyz` 503) and keeps reconnecting (SPEC §6).
async fn build_broker(
    settings: &Settings,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<(Broker, SessionBackend), StartupError> {
    use secrecy::ExposeSecret;
    let Some(url) = &settings.redis_url else {
        let broker = Broker::Memory(MemoryBroker::new(
            settings.limits.history_len.get(),
            settings.limits.dedupe_capacity,
            metrics.clone(),
        ));
        return Ok((
            broker,
            SessionBackend::Memory(Arc::new(MemorySessions::default())),
        ));
    };
    let redis = RedisBroker::connect(
        url.expose_secret(),
        &settings.redis_prefix,
        &settings.limits,
        metrics.clone(),
        shutdown.clone(),
    )
    .await
    .map_err(|e| StartupError::Broker(e.to_string()))?;
    let sessions = SessionBackend::Redis(RedisSessions::new(
        redis.commands(),
        &settings.redis_prefix,
        settings.limits.broker_timeout,
    ));
    Ok((Broker::Redis(redis), sessions))
}

/// The route table (SPEC §4). The hot routes (webhook, publish, `/ws`) come
/// first: actix tries routes in order, and dynamic patterns cost a regex match.
pub fn routes_table(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/callback",
        web::post().to(routes::callback::post_callback),
    )
    .route(
        "/api/callback",
        web::get().to(routes::callback::get_callback),
    )
    .route(
        "/api/publish",
        web::post().to(routes::publish::post_publish),
    )
    .route("/ws", web::get().to(routes::ws::get_ws))
    .route("/healthz", web::get().to(routes::health::get_healthz))
    .route("/readyz", web::get().to(routes::health::get_readyz))
    .route("/metrics", web::get().to(routes::health::get_metrics))
    .route("/", web::get().to(routes::pages::get_home))
    .route("/pick", web::get().to(routes::pages::get_pick))
    .route("/static/style.css", web::get().to(routes::pages::get_style))
    .route("/static/feed.js", web::get().to(routes::pages::get_feed_js))
    .route("/auth/local", web::post().to(routes::auth::post_local))
    .route("/auth/logout", web::post().to(routes::auth::post_logout))
    .route("/auth/login", web::get().to(routes::oauth::get_login))
    .route("/auth/callback", web::get().to(routes::oauth::get_callback))
    .route("/auth/connect", web::get().to(routes::oauth::get_connect))
    .route(
        "/api/alerts/{channel}/sources",
        web::get().to(routes::alert_sources::get_sources),
    )
    .route(
        "/api/subscriptions",
        web::get().to(routes::subscriptions::get_subscriptions),
    )
    .route(
        "/api/subscriptions",
        web::post().to(routes::subscriptions::post_subscriptions),
    )
    .route(
        "/api/subscriptions/{id}",
        web::delete().to(routes::subscriptions::delete_subscription),
    )
    .route("/watch/{streamer}", web::get().to(routes::pages::get_watch))
    .route(
        "/api/channels/{name}/events",
        web::get().to(routes::channels::get_events),
    )
    .route(
        "/api/channels/{name}/history",
        web::get().to(routes::channels::get_history),
    )
    .configure(room_routes)
    .configure(alert_routes);
}

/// SPEC §9: the room socket, the streamer's room page and its assets.
fn room_routes(cfg: &mut web::ServiceConfig) {
    use routes::rooms as r;
    cfg.route("/websocket", web::get().to(r::get_websocket))
        .route("/rooms/{channel}", web::get().to(r::get_room_page))
        .route("/static/room.js", web::get().to(r::get_room_js))
        .route("/static/room-admin.js", web::get().to(r::get_room_admin_js))
        .route("/static/rooms.css", web::get().to(r::get_rooms_css));
}

/// SPEC §8: the dashboard, the overlay and the alert API.
fn alert_routes(cfg: &mut web::ServiceConfig) {
    use routes::alerts as a;
    cfg.route(
        "/dashboard",
        web::get().to(routes::dashboard::get_dashboard),
    )
    .route(
        "/static/dashboard.js",
        web::get().to(routes::dashboard::get_dashboard_js),
    )
    .route(
        "/static/overlay.js",
        web::get().to(routes::overlay::get_overlay_js),
    )
    .route(
        "/static/overlay.css",
        web::get().to(routes::overlay::get_overlay_css),
    )
    .route(
        "/overlay/{channel}",
        web::get().to(routes::overlay::get_overlay),
    )
    .route(
        "/overlay/{channel}/ws",
        web::get().to(routes::overlay::get_overlay_ws),
    )
    .route("/api/alerts/{channel}", web::get().to(a::get_alerts))
    .route("/api/alerts/{channel}", web::post().to(a::post_alert))
    .route(
        "/api/alerts/{channel}/settings",
        web::put().to(a::put_settings),
    )
    .route("/api/alerts/{channel}/test", web::post().to(a::post_test))
    .route(
        "/api/alerts/{channel}/replay",
        web::post().to(a::post_replay),
    )
    .route("/api/alerts/{channel}/pause", web::post().to(a::post_pause))
    .route(
        "/api/alerts/{channel}/resume",
        web::post().to(a::post_resume),
    )
    .route("/api/alerts/{channel}/skip", web::post().to(a::post_skip))
    .route("/api/alerts/{channel}/clear", web::post().to(a::post_clear))
    .route("/api/alerts/{channel}/key", web::post().to(a::post_key));
}
