//! Switchboard's server as a library: `main` parses the configuration and calls [`run`]; tests
//! call the same [`run`] on `127.0.0.1:0`.

// Leptos view types nest deeply; their layouts need a higher limit.
#![recursion_limit = "512"]

pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod extract;
pub mod http;
pub mod hub;
pub mod job_runner;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod origin;
pub mod pages;
pub mod presence;
pub mod ratelimit;
pub mod refusals;
pub mod security;
pub mod seed;
pub mod serve;
pub mod services;
pub mod sessions;
pub mod state;
pub mod store;
#[cfg(test)]
mod testing;

use crate::config::Config;
use crate::state::{AppState, Composed};
use axum::extract::State;
use axum::middleware;
use axum::routing::get;
use axum::Router;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_sessions::cookie::SameSite;
use tower_sessions::SessionManagerLayer;

/// How often expired sessions are swept from the store.
const SESSION_SWEEP: Duration = Duration::from_secs(3600);

/// Serves Switchboard on `listener` until `shutdown` completes, then drains connections.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let token = CancellationToken::new();
    let Composed {
        state,
        db,
        session_store,
        idle,
    } = state::compose(config, addr, token.clone()).await?;
    let sweeper = tokio::spawn(session_store.clone().sweep_expired(SESSION_SWEEP));
    if let Some(url) = state.config.redis_url.clone() {
        join_cluster(&state, &url)?;
    } else {
        hub::gaps::spawn_single_gap_filler(
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
    let presence_announcer = tokio::spawn(presence::announce_changes(
        Arc::clone(&state.presence),
        Arc::clone(&state.hub),
        Arc::clone(&state.store),
        Duration::from_millis(state.config.presence_coalesce_ms),
    ));
    services::jobs::recover(&state).await?;
    let orphans = tokio::spawn(services::jobs::sweep_orphans(state.clone()));
    let pruner = tokio::spawn(prune_events(state.clone()));
    let upload_sweeper = tokio::spawn(services::uploads::sweep_orphans(state.clone()));

    let sessions = SessionManagerLayer::new(session_store)
        .with_name(sessions::COOKIE)
        .with_secure(state.config.secure_cookies)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(idle);

    // The origin check runs before the session is loaded; security headers go on everything.
    // The layers wrap the router once (`Router::layer` would wrap, box and clone them per
    // route and request). The live routes come first and skip them: see `live::router`.
    let full = tower::ServiceBuilder::new()
        .layer(middleware::from_fn(security::headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            http::body_time::limit_body_time,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            origin::refuse_cross_origin,
        ))
        .layer(middleware::from_fn(error::bare_errors))
        .layer(sessions)
        .service(router(state.clone()));
    let app = live::router(&state).fallback_service(full);
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
    upload_sweeper.abort();
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
            self.0.jobs.held().into_iter().map(String::from).collect()
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
    state.sessions.set_relay(joined.relay.clone());
    state.presence.set_relay(joined.relay.clone());
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

/// The app's routes, generated once per process. Generating them runs the app with resource
/// loading switched off process-wide (a global flag in leptos_server, leptos issue #4773): a page
/// that another server in the same process (the integration tests run many) starts rendering in
/// that moment would wait forever. Once made, the list is only read.
pub fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: LazyLock<Vec<AxumRouteListing>> =
        LazyLock::new(|| generate_route_list(app::App));
    ROUTES.clone()
}

fn router(state: AppState) -> Router {
    let routes = route_list();
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
        let before = clock::now_ms().saturating_sub(keep_ms);
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
