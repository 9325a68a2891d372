//! The HTTP surface: routes, thin handlers over the services, and the cross-cutting layers
//! (sessions, origin checks, body limits, JSON errors everywhere under /api).

pub mod api;
pub mod body_time;
pub mod extract;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;

/// Largest request body accepted on /api. A 4000-character message in UTF-8 is at most 16 KiB,
/// so this leaves room for JSON escaping while refusing anything absurd early.
pub const MAX_API_BODY: usize = 64 * 1024;

pub fn api_router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    if state.config.ws_echo {
        router = router.route("/live/echo", get(crate::live::echo::upgrade));
    }
    router
        .route("/auth/signup", post(api::signup))
        .route("/auth/login", post(api::login))
        .route("/auth/logout", post(api::logout))
        .route("/auth/logout-everywhere", post(api::logout_everywhere))
        .route("/me", get(api::me))
        .route("/rooms", get(api::list_rooms).post(api::create_room))
        .route("/rooms/{room_id}/join", post(api::join_room))
        .route("/rooms/{room_id}/leave", post(api::leave_room))
        .route("/rooms/{room_id}/invite", post(api::invite))
        .route(
            "/rooms/{room_id}/messages",
            get(api::history).post(api::send_message),
        )
        .route("/rooms/{room_id}/read", post(api::mark_read))
        .route("/rooms/{room_id}/typing", post(api::typing))
        .route("/dms", post(api::dm))
        .route("/race/room", post(api::race_room))
        .route("/admin/users", get(api::admin_users))
        .route("/admin/users/{user_id}", put(api::admin_set_user))
        .route("/admin/announcements", post(api::announce))
        .route("/admin/metrics", get(api::admin_metrics))
        .route("/admin/metrics/live", get(api::admin_metrics_live))
        .route("/admin/audit", get(api::admin_audit))
        .route(
            "/admin/settings",
            get(api::admin_settings).put(api::admin_set_settings),
        )
        .route("/presence", get(api::presence).post(api::set_presence))
        .route("/notifications", get(api::notifications))
        .route("/notifications/read", post(api::mark_notifications_read))
        .route("/jobs", get(api::jobs).post(api::submit_job))
        .route("/jobs/{job_id}", get(api::job))
        .route("/jobs/{job_id}/cancel", post(api::cancel_job))
        .route("/jobs/{job_id}/result", get(api::job_result))
        .route(
            "/me/transports",
            get(api::my_transports).put(api::set_my_transports),
        )
        .route(
            "/admin/users/{user_id}/transports",
            put(api::admin_set_transports),
        )
        .route(
            "/admin/transports",
            get(api::admin_switches).put(api::admin_set_switches),
        )
        .route("/live/stats", post(api::client_stats))
        .route("/time", get(api::server_time))
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_API_BODY))
}

/// The live routes (socket, event stream, poll), served before the rest and without its layers:
/// a poll is a full request per delivery, and a parked long poll holds whatever wraps it. Here
/// one small guard does what they need of those layers (the origin check and the security
/// headers), and the extractors read the session from the cookie themselves
/// (`Sessions::request_session`), so a poll skips the cookie jar and the session layer, and a
/// parked one holds its handler's state only. Everything else falls through to `fallback`.
pub fn live_router(state: &AppState) -> Router {
    Router::new()
        .route("/api/live/ws", get(crate::live::ws::upgrade))
        .route("/api/live/sse", get(crate::live::sse::stream))
        .route("/api/live/poll", get(crate::live::poll::poll))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            live_guard,
        ))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
}

/// The origin check and the security headers of the live routes (see [`live_router`]).
async fn live_guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // The session's renewed cookie, if the request renews its idle expiry (no session layer).
    let renewed = crate::sessions::RenewedCookie::default();
    req.extensions_mut().insert(renewed.clone());
    let mut res = match misdirected(&state, &req).or_else(|| refused(&state, &req, true)) {
        Some(refusal) => refusal,
        None => next.run(req).await,
    };
    if let Some(id) = renewed.take() {
        let cookie = state
            .sessions
            .renewed_cookie(id, state.config.secure_cookies);
        if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
            res.headers_mut().append(axum::http::header::SET_COOKIE, v);
        }
    }
    crate::security::other_headers(res.headers_mut());
    res
}

/// The 400 for a request to a host name this server does not answer to
/// (`extract::check_host`), if it is one. `/healthz` answers any host: a load balancer's health
/// check may name the server by its service name, and the answer tells nothing.
fn misdirected(state: &AppState, req: &Request) -> Option<Response> {
    if req.uri().path() == "/healthz"
        || extract::check_host(
            req.headers(),
            &state.config.allowed_hosts,
            &state.config.allowed_origins,
        )
    {
        return None;
    }
    tracing::info!(path = %req.uri().path(), host = ?req.headers().get("host"), "refused by the host policy");
    Some(
        ApiError::bad(
            "invalid_host",
            "This server does not answer to that host name.",
        )
        .into_response(),
    )
}

/// The 403 for a request the origin policy refuses (`extract::check_origin`), if it does.
fn refused(state: &AppState, req: &Request, live: bool) -> Option<Response> {
    let why = extract::check_origin(req.headers(), &state.config.allowed_origins, live).err()?;
    tracing::info!(path = %req.uri().path(), origin = ?req.headers().get("origin"), "refused by the origin policy");
    Some(ApiError::Forbidden(why.into()).into_response())
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound("route")
}

async fn method_not_allowed() -> Response {
    let err = ApiError::bad(
        "method_not_allowed",
        "This route does not take that method.",
    );
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(err.body()),
    )
        .into_response()
}

/// Live routes: a cross-site page must not be able to open these with the user's cookie (a
/// WebSocket has no CORS at all), so they need an origin signal even though they are GETs.
fn is_live(path: &str) -> bool {
    path.starts_with("/api/live/") || path == "/api/admin/metrics/live"
}

/// Refuses requests to host names this server does not answer to (DNS rebinding), and
/// state-changing requests and live connections from pages of other origins (CSRF and
/// cross-site WebSocket hijacking); safe reads pass. Layered over the whole router, so it covers
/// every route that takes a write: the API, the sign-in forms, and any Leptos server function.
pub async fn refuse_cross_origin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(refusal) = misdirected(&state, &req) {
        return refusal;
    }
    // Layered around the router (not under a nest): the URI is the whole path.
    let live = is_live(req.uri().path());
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if write || live {
        if let Some(refusal) = refused(&state, &req, live) {
            return refusal;
        }
    }
    next.run(req).await
}
