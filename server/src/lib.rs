//! Switchboard's server as a library: `main` parses the configuration and calls [`run`]; tests
//! call the same [`run`] on `127.0.0.1:0`.

// Leptos view types nest deeply; their layouts need a higher limit.
#![recursion_limit = "512"]

pub mod cluster;
pub mod config;
pub mod error;
pub mod http;
pub mod hub;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod pages;
pub mod presence;
pub mod ratelimit;
pub mod refusals;
pub mod security;
pub mod serve;
pub mod services;
pub mod sessions;
pub mod state;
pub mod store;

use crate::config::Config;
use crate::hub::Hub;
use crate::ratelimit::RateLimiter;
use crate::state::{AppState, Inner};
use crate::store::Store;
use axum::extract::State;
use axum::middleware;
use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

/// How often expired sessions are swept from the store.
const SESSION_SWEEP: Duration = Duration::from_secs(3600);
/// Window of the rate limits (sign-in, sign-up, sends: counts are per this window).
const LIMIT_WINDOW: Duration = Duration::from_secs(60);
/// The window of the per-user quotas on creating rooms, jobs and announcements.
const QUOTA_WINDOW: Duration = Duration::from_secs(3600);

/// Serves Switchboard on `listener` until `shutdown` completes, then drains connections.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let db = store::Db::connect(
        &config.database_url,
        config.db_pool,
        config.synchronous,
        Duration::from_millis(config.db_lock_timeout_ms.max(1)),
    )
    .await?;
    let export_dir = data_dir(&config, &db)?.join("exports");
    let session_store = sessions::SessionBackend::open(&db).await?;
    let sweeper = tokio::spawn(session_store.clone().sweep_expired(SESSION_SWEEP));

    let store: Arc<dyn Store> = db.store();
    let hub = Hub::new(store.head().await?, store.log_floor().await?);
    let (switches, _) = tokio::sync::watch::channel(store.switches().await?);
    let addr = listener.local_addr()?;
    let leptos = LeptosOptions::builder()
        .output_name("switchboard")
        .site_root(config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let token = CancellationToken::new();
    let writer = services::writer::Writer::spawn(Arc::clone(&store), Arc::clone(&hub));
    let idle = Expiry::OnInactivity(tower_sessions::cookie::time::Duration::seconds(
        config.session_idle_secs.min(i64::MAX as u64) as i64,
    ));
    let sessions = sessions::Sessions::new(
        db.clone(),
        Duration::from_secs(config.session_max_secs),
        session_store.clone(),
        idle,
    )
    .await?;
    let state = AppState::new(Inner {
        writer,
        limits: limits::Limits::new(
            config.max_connections,
            config.max_connections_per_user,
            config.max_anonymous_connections,
        ),
        limiter: RateLimiter::new(LIMIT_WINDOW),
        quotas: RateLimiter::new(QUOTA_WINDOW),
        sessions,
        config,
        store,
        hub,
        leptos,
        shutdown: token.clone(),
        switches,
        jobs: services::jobs::JobRunner::new(export_dir),
        presence: presence::Presence::default(),
        meters: metrics::Meters::default(),
        users: state::UserCache::default(),
        rooms: state::RoomCache::default(),
        cluster: std::sync::OnceLock::new(),
    });
    if let Some(url) = state.config.redis_url.clone() {
        join_cluster(&state, &url)?;
    } else {
        cluster::spawn_single_gap_filler(
            Arc::clone(&state.hub),
            Arc::clone(&state.store),
            state.shutdown.clone(),
        );
    }
    let switch_follower = state
        .cluster
        .get()
        .is_some()
        .then(|| tokio::spawn(follow_switches(state.clone())));
    let sweeper_presence = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(presence::SWEEP_EVERY);
            loop {
                tick.tick().await;
                state.presence.sweep(&state.hub);
            }
        })
    };
    let presence_announcer = tokio::spawn(presence::announce_changes(state.clone()));
    services::jobs::recover(&state).await?;
    let orphans = tokio::spawn(services::jobs::sweep_orphans(state.clone()));
    let pruner = tokio::spawn(prune_events(state.clone()));

    let sessions = SessionManagerLayer::new(session_store)
        .with_name(sessions::COOKIE)
        .with_secure(state.config.secure_cookies)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(idle);

    // The origin check runs before the session is loaded; security headers go on everything.
    // The layers wrap the router once (`Router::layer` would wrap, box and clone them per
    // route and request). The live routes come first and skip them: see `http::live_router`.
    let full = tower::ServiceBuilder::new()
        .layer(middleware::from_fn(security::headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            http::body_time::limit_body_time,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            http::refuse_cross_origin,
        ))
        .layer(middleware::from_fn(error::bare_errors))
        .layer(sessions)
        .service(router(state.clone()));
    let app = http::live_router(&state).fallback_service(full);
    // Over-long targets and over-large headers get the JSON error before any route (the one
    // layer over the whole app, live routes included).
    let app = Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .layer(middleware::from_fn(error::oversized_head))
            .service(app),
    );
    tracing::info!(%addr, "listening");
    serve::serve(
        listener,
        app,
        state.limits.clone(),
        serve::Options {
            header_timeout: Duration::from_secs(state.config.header_timeout_secs.max(1)),
            drain: Duration::from_secs(state.config.drain_secs),
        },
        token,
        shutdown,
    )
    .await;
    sweeper.abort();
    if let Some(f) = switch_follower {
        f.abort();
    }
    pruner.abort();
    orphans.abort();
    sweeper_presence.abort();
    presence_announcer.abort();
    db.close().await;
    Ok(())
}

/// Starts the backplane: this server's commits, ephemerals and sign-outs go to the other
/// servers, theirs come here.
fn join_cluster(state: &AppState, url: &str) -> anyhow::Result<()> {
    struct Apply(AppState);
    impl cluster::Apply for Apply {
        fn signed_out(&self, user_id: &str, login_id: &str) {
            self.0.sessions.apply_signed_out(user_id, login_id);
        }
        fn signed_out_everywhere(&self, user_id: &str, generation: i64) {
            self.0
                .sessions
                .apply_signed_out_everywhere(user_id, generation);
        }
        fn user_changed(&self, user_id: &str) {
            self.0.users.forget(user_id);
        }
        fn presence(&self, node: &str, full: bool, users: Vec<(String, String, String)>) {
            self.0.presence.remote(&self.0.hub, node, full, users);
        }
        fn cancel_job(&self, job_id: &str) {
            self.0.jobs.cancel(job_id);
        }
        fn held_jobs(&self) -> Vec<String> {
            self.0.jobs.held()
        }
        fn backplane(&self, up: bool) {
            self.0.sessions.backplane_changed(up);
        }
    }
    let node = state
        .config
        .node
        .clone()
        .unwrap_or_else(cluster::default_node);
    // Down until the first subscription: sign-outs told before it are not heard here.
    state.sessions.backplane_changed(false);
    let joined = cluster::Cluster::start(
        url,
        state.config.cluster_channel.clone(),
        node,
        Duration::from_secs(state.config.node_ttl_secs.max(1)),
        Arc::clone(&state.hub),
        Arc::clone(&state.store),
        Arc::new(Apply(state.clone())),
        state.shutdown.clone(),
    )?;
    if let Some(relay) = state.hub.relay() {
        state.sessions.set_relay(relay.clone());
    }
    state.jobs.forget_versions();
    tracing::info!(node = %joined.node, channel = %joined.channel, "joined the cluster");
    let _ = state.cluster.set(joined);
    Ok(())
}

/// Keeps the transport switches in step with the log: an admin's change on another server of
/// the cluster arrives as a `transport` control event, and connections here of a transport
/// switched off close themselves on the watch.
async fn follow_switches(state: AppState) {
    loop {
        state.hub.switches_changed().await;
        match state.store.switches().await {
            Ok(now) => {
                state.switches.send_if_modified(|s| {
                    let changed = *s != now;
                    *s = now;
                    changed
                });
            }
            Err(e) => tracing::warn!(error = %e, "reading the transport switches"),
        }
    }
}

/// Where the server writes files: `--data-dir`, else beside the SQLite file, else `./data`.
fn data_dir(config: &Config, db: &store::Db) -> anyhow::Result<std::path::PathBuf> {
    Ok(match (&config.data_dir, db) {
        (Some(dir), _) => dir.clone(),
        (None, store::Db::Sqlite(_)) => store::sqlite::data_dir(&config.database_url)?,
        (None, store::Db::Postgres(_)) => std::path::PathBuf::from("data"),
    })
}

fn router(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let leptos = state.leptos.clone();
    let pages = Router::new()
        .leptos_routes(&state, routes, move || app::shell(leptos.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            app::shell,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            pages::prepare,
        ));
    Router::new()
        .nest("/api", http::api_router(&state))
        .route("/healthz", get(healthz))
        .route("/metrics", get(http::api::prometheus))
        .merge(pages)
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Result<&'static str, error::ApiError> {
    state.store.head().await?;
    Ok("ok")
}

/// Prunes the event log past its retention, and raises the hub's floor so an older cursor gets
/// a `resync` instead of a silent gap.
async fn prune_events(state: AppState) {
    let every = Duration::from_millis(state.config.prune_every_ms.max(10));
    let keep_ms =
        (state.config.event_retention_hours.saturating_mul(3_600_000)).min(i64::MAX as u64) as i64;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let before = services::now_ms().saturating_sub(keep_ms);
        let point = match state.store.prune_point(before).await {
            Ok(Some(point)) if point > state.hub.floor() => point,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "finding what to prune");
                continue;
            }
        };
        // Floor first: from now on a cursor below it gets resync, before its events go.
        state.hub.raise_floor(point);
        match state.store.delete_events_through(point).await {
            Ok(n) => tracing::info!(pruned = n, floor = point, "pruned the event log"),
            Err(e) => tracing::warn!(error = %e, "pruning the event log"),
        }
    }
}

/// Promotes an existing user to administrator (the `promote-admin` subcommand).
pub async fn promote_admin(config: &Config, username: &str) -> anyhow::Result<protocol::User> {
    let db = store::Db::connect(
        &config.database_url,
        2,
        config.synchronous,
        Duration::from_millis(config.db_lock_timeout_ms.max(1)),
    )
    .await?;
    let store = db.store();
    let name = protocol::normalize_username(username).map_err(anyhow::Error::msg)?;
    let record = store
        .user_by_name(&name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user named {name}"))?;
    store.set_admin(&record.user.id, true).await?;
    db.close().await;
    Ok(protocol::User {
        is_admin: true,
        ..record.user
    })
}
