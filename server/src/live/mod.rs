//! The live transports: views over the one event log. Each takes a cursor in and sends events
//! after it out, through a session ([`session::LiveSession`]) whose subscription replays from
//! the log and then follows the hub. This module mounts their routes behind their own guard.

pub mod echo;
pub mod gate;
pub mod params;
pub mod poll;
pub mod session;
pub mod sse;
pub mod ws;

use crate::error::method_not_allowed;
use crate::origin;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

/// Events a streaming pump (WebSocket, SSE) writes before one flush when several are ready at
/// once: fewer wake-ups and syscalls under load, while one batch stays small enough not to
/// delay the first of them noticeably.
pub const WRITE_BATCH: usize = 64;

/// The live routes (socket, event stream, poll), served before the rest and without its layers:
/// a poll is a full request per delivery, and a parked long poll holds whatever wraps it. Here
/// one small guard does what they need of those layers (the origin check and the security
/// headers), and the extractors read the session from the cookie themselves
/// (`Sessions::request_session`), so a poll skips the cookie jar and the session layer, and a
/// parked one holds its handler's state only. Everything else falls through to `fallback`.
pub fn router(state: &AppState) -> Router {
    Router::new()
        .route("/api/live/ws", get(ws::upgrade))
        .route("/api/live/sse", get(sse::stream))
        .route("/api/live/poll", get(poll::poll))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            live_guard,
        ))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
}

/// The origin check and the security headers of the live routes (see [`router`]).
async fn live_guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // The session's renewed cookie, if the request renews its idle expiry (no session layer).
    let renewed = crate::sessions::RenewedCookie::default();
    req.extensions_mut().insert(renewed.clone());
    let mut res =
        match origin::misdirected(&state, &req).or_else(|| origin::refused(&state, &req, true)) {
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
