//! The HTTP API: its routes, thin handlers over the services, and the request-body time limit.
//! (The extractors are `extract.rs`'s, the origin policy `origin.rs`'s, the live routes
//! `live/`'s.)

pub mod api;
pub mod body_time;

use crate::error::{api_not_found, method_not_allowed};
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post, put};
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
        .route("/me", get(api::me).patch(api::update_me))
        .route("/me/password", post(api::change_password))
        .route("/rooms", get(api::list_rooms).post(api::create_room))
        .route("/rooms/{room_id}", get(api::room).patch(api::update_room))
        .route("/rooms/{room_id}/members", get(api::room_members))
        .route("/rooms/{room_id}/join", post(api::join_room))
        .route("/rooms/{room_id}/leave", post(api::leave_room))
        .route("/rooms/{room_id}/invite", post(api::invite))
        .route(
            "/rooms/{room_id}/messages",
            get(api::history).post(api::send_message),
        )
        .route(
            "/rooms/{room_id}/messages/{message_id}",
            patch(api::edit_message).delete(api::delete_message),
        )
        .route(
            "/rooms/{room_id}/messages/{message_id}/reactions/{emoji}",
            put(api::add_reaction).delete(api::remove_reaction),
        )
        .route(
            "/rooms/{room_id}/messages/{message_id}/thread",
            get(api::thread),
        )
        .route("/rooms/{room_id}/read", post(api::mark_read))
        .route("/rooms/{room_id}/typing", post(api::typing))
        .route("/dms", post(api::dm))
        .route("/search", get(api::search))
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
        // The file is the body, streamed in (the size limit is `--upload-max-bytes`, applied
        // as it arrives), so the API's small body limit does not apply.
        .route(
            "/uploads",
            post(api::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/uploads/{upload_id}", get(api::upload_file))
        .route("/uploads/{upload_id}/thumbnail", get(api::upload_thumbnail))
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_API_BODY))
}
