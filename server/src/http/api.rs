//! Handlers for the JSON API: parse, call a service, shape the answer. No rules live here.

use crate::error::{ApiError, ApiResult};
use crate::extract::{
    json_rejection, AdminUser, ApiJson, ApiPath, ApiQuery, ClientIp, CurrentUser,
};
use crate::services::{
    admin, auth, chat, jobs, messages, notifications, search, transports, uploads,
};
use crate::state::AppState;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use protocol::{
    AdminUserUpdate, AdminUserView, Announcement, AuditQuery, CreateRoom, Credentials, EditMessage,
    HistoryQuery, JobId, MarkRead, MemberList, Message, MessageId, MessageList, NotificationQuery,
    PasswordChange, PresenceUpdate, ProfileUpdate, ReadPosition, Room, RoomId, RoomList,
    RoomUpdate, SearchQuery, SearchResults, SendMessage, Switches, Thread, TransportSettings, User,
    UserId, UsernameBody,
};
use tower_sessions::Session;

/// Sign-up and sign-in take JSON (the app, API clients) or a plain HTML form (the page before
/// its wasm has loaded), and answer a form with a redirect instead of JSON.
pub struct AuthInput {
    creds: Credentials,
    from_form: bool,
}

impl FromRequest<AppState> for AuthInput {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            let Form(creds) = Form::<Credentials>::from_request(req, state)
                .await
                .map_err(|e| ApiError::bad("invalid_form", e.body_text()))?;
            Ok(AuthInput {
                creds,
                from_form: true,
            })
        } else {
            let creds = Json::<Credentials>::from_request(req, state)
                .await
                .map_err(json_rejection)?
                .0;
            Ok(AuthInput {
                creds,
                from_form: false,
            })
        }
    }
}

async fn start_session(state: &AppState, session: &Session, user: &User) -> ApiResult<()> {
    // A new id at every sign-in, so a session id planted before sign-in is worthless after.
    state.sessions.begin(session, &user.id).await
}

fn form_answer(page: &str, result: ApiResult<()>) -> Response {
    match result {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => Redirect::to(&format!("{page}?error={}", e.code())).into_response(),
    }
}

pub async fn signup(
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
    input: AuthInput,
) -> ApiResult<Response> {
    let result = async {
        let user = auth::signup(&state, input.creds, ip).await?;
        start_session(&state, &session, &user).await?;
        Ok(user)
    }
    .await;
    if input.from_form {
        return Ok(form_answer("/signup", result.map(|_| ())));
    }
    Ok((StatusCode::CREATED, Json(result?)).into_response())
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
    input: AuthInput,
) -> ApiResult<Response> {
    let result = async {
        let user = auth::login(&state, input.creds, ip).await?;
        start_session(&state, &session, &user).await?;
        Ok(user)
    }
    .await;
    if input.from_form {
        return Ok(form_answer("/login", result.map(|_| ())));
    }
    Ok(Json(result?).into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    // Destroys the session and ends its open live connections.
    state.sessions.end(&session).await?;
    let from_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if from_form {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Signs the user out of every session on every device, this one included, and ends their open
/// live connections.
pub async fn logout_everywhere(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    session: Session,
) -> ApiResult<StatusCode> {
    state.sessions.end_everywhere(&session, &me.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(CurrentUser(user): CurrentUser) -> Json<User> {
    Json(user)
}

/// Sets my display name; 200 with me as I am now.
pub async fn update_me(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<ProfileUpdate>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        auth::set_display_name(&state, &me, &body.display_name).await?,
    ))
}

/// Changes my password and signs out every other session of mine (this one stays).
pub async fn change_password(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    session: Session,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    auth::change_password(&state, &me, body.current_password, body.new_password).await?;
    state.sessions.end_others(&session, &me.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn room(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(room_id): ApiPath<RoomId>,
) -> ApiResult<Json<Room>> {
    Ok(Json(chat::room(&state, &me, &room_id).await?))
}

pub async fn update_room(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(room_id): ApiPath<RoomId>,
    ApiJson(body): ApiJson<RoomUpdate>,
) -> ApiResult<Json<Room>> {
    Ok(Json(chat::update_room(&state, &me, &room_id, &body).await?))
}

pub async fn room_members(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(room_id): ApiPath<RoomId>,
) -> ApiResult<Json<MemberList>> {
    Ok(Json(MemberList {
        members: chat::members(&state, &me, &room_id).await?,
    }))
}

pub async fn list_rooms(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> ApiResult<Json<RoomList>> {
    Ok(Json(RoomList {
        rooms: chat::list_rooms(&state, &me).await?,
    }))
}

pub async fn create_room(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<CreateRoom>,
) -> ApiResult<impl IntoResponse> {
    crate::services::per_hour(
        &state,
        "rooms",
        &me.id,
        state.config.rooms_per_user_per_hour,
    )?;
    let room = chat::create_room(&state, &me, &body.name, body.private).await?;
    Ok((StatusCode::CREATED, Json(room)))
}

/// The caller's own private race room (created on first use).
pub async fn race_room(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> ApiResult<impl IntoResponse> {
    let (room, created) = chat::race_room(&state, &me).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(room)))
}

pub async fn join_room(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(room_id): ApiPath<RoomId>,
) -> ApiResult<StatusCode> {
    chat::join(&state, &me, &room_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn leave_room(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(room_id): ApiPath<RoomId>,
) -> ApiResult<StatusCode> {
    chat::leave(&state, &me, &room_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn invite(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(room_id): ApiPath<RoomId>,
    ApiJson(body): ApiJson<UsernameBody>,
) -> ApiResult<StatusCode> {
    chat::invite(&state, &me, &room_id, &body.username).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn dm(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<UsernameBody>,
) -> ApiResult<impl IntoResponse> {
    let (room, created) = chat::dm(&state, &me, &body.username).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(room)))
}

pub async fn history(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(room_id): ApiPath<RoomId>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<MessageList>> {
    let page = match &q.around {
        Some(_) if q.before.is_some() => {
            return Err(ApiError::bad(
                "invalid_query",
                "around and before cannot be used together",
            ))
        }
        Some(around) => chat::history_around(&state, &me, &room_id, around, q.limit).await?,
        None => chat::history(&state, &me, &room_id, q.before.as_ref(), q.limit).await?,
    };
    Ok(Json(page))
}

pub async fn search(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let results = search::search(&state, &me, &q).await?;
    Ok(Json(SearchResults { results }))
}

pub async fn send_message(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(room_id): ApiPath<RoomId>,
    ApiJson(body): ApiJson<SendMessage>,
) -> ApiResult<impl IntoResponse> {
    let (message, created) = chat::send_reply(
        &state,
        &me,
        &room_id,
        &body.body,
        &body.client_id,
        body.reply_to.as_ref(),
        &body.attachments,
    )
    .await?;
    // A retry gets the first answer again; 200 tells it apart from a fresh 201.
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(message)))
}

pub async fn edit_message(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath((room_id, message_id)): ApiPath<(RoomId, MessageId)>,
    ApiJson(body): ApiJson<EditMessage>,
) -> ApiResult<Json<Message>> {
    let message = messages::edit(&state, &me, &room_id, &message_id, &body.body).await?;
    Ok(Json(message))
}

pub async fn delete_message(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath((room_id, message_id)): ApiPath<(RoomId, MessageId)>,
) -> ApiResult<StatusCode> {
    messages::delete(&state, &me, &room_id, &message_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_reaction(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath((room_id, message_id, emoji)): ApiPath<(RoomId, MessageId, String)>,
) -> ApiResult<StatusCode> {
    messages::react(&state, &me, &room_id, &message_id, &emoji, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_reaction(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath((room_id, message_id, emoji)): ApiPath<(RoomId, MessageId, String)>,
) -> ApiResult<StatusCode> {
    messages::react(&state, &me, &room_id, &message_id, &emoji, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn thread(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath((room_id, message_id)): ApiPath<(RoomId, MessageId)>,
) -> ApiResult<Json<Thread>> {
    Ok(Json(
        messages::thread(&state, &me, &room_id, &message_id).await?,
    ))
}

pub async fn mark_read(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(room_id): ApiPath<RoomId>,
    ApiJson(body): ApiJson<ReadPosition>,
) -> ApiResult<StatusCode> {
    chat::mark_read(&state, &me, &room_id, &body.message_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn typing(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(room_id): ApiPath<RoomId>,
) -> ApiResult<StatusCode> {
    chat::typing(&state, &me, &room_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn admin_users(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> ApiResult<Json<serde_json::Value>> {
    let mut users = Vec::new();
    for user in admin::users(&state).await? {
        let transports = transports::settings_for(&state, &user.id).await?;
        users.push(AdminUserView { user, transports });
    }
    Ok(Json(serde_json::json!({ "users": users })))
}

pub async fn my_transports(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> ApiResult<Json<TransportSettings>> {
    Ok(Json(transports::settings_for(&state, &me.id).await?))
}

pub async fn set_my_transports(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<TransportSettings>> {
    Ok(Json(transports::update_mine(&state, &me, &body).await?))
}

pub async fn admin_set_transports(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<TransportSettings>> {
    Ok(Json(
        transports::set_overrides(&state, &admin, &user_id, &body).await?,
    ))
}

pub async fn admin_switches(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Json<Switches> {
    Json(*state.switches.borrow())
}

pub async fn admin_set_switches(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<Switches>> {
    Ok(Json(transports::set_switches(&state, &admin, &body).await?))
}

pub async fn admin_set_user(
    State(state): State<AppState>,
    AdminUser(me): AdminUser,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(body): ApiJson<AdminUserUpdate>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        admin::set_admin(&state, &me, &user_id, body.is_admin).await?,
    ))
}

pub async fn notifications(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> ApiResult<Json<protocol::NotificationList>> {
    let list = notifications::list(
        &state,
        &me,
        q.unread_only.unwrap_or(false),
        q.before.as_ref(),
        q.limit,
    )
    .await?;
    Ok(Json(list))
}

pub async fn mark_notifications_read(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<MarkRead>,
) -> ApiResult<StatusCode> {
    notifications::mark_read(&state, &me, body.ids, body.all).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn announce(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(body): ApiJson<Announcement>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    crate::services::per_hour(
        &state,
        "announcements",
        &admin.id,
        state.config.announcements_per_user_per_hour,
    )?;
    let count = notifications::announce(&state, &admin, &body.title, &body.body).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "recipients": count })),
    ))
}

pub async fn submit_job(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<jobs::JobRequest>,
) -> ApiResult<(StatusCode, Json<protocol::Job>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(jobs::submit(&state, &me, body).await?),
    ))
}

pub async fn jobs(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> ApiResult<Json<protocol::JobList>> {
    Ok(Json(protocol::JobList {
        jobs: jobs::list(&state, &me).await?,
    }))
}

/// A job's snapshot with its version as the ETag; `If-None-Match` with it answers 304.
pub async fn job(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(job_id): ApiPath<JobId>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let matches = |tag: &str| {
        if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
    };
    // A poll that already has the current version is answered without reading the job.
    if let Some(tag) = state.jobs.current_etag(&job_id, &me.id) {
        if matches(&tag) {
            return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), &tag));
        }
    }
    let record = jobs::mine(&state, &me, &job_id).await?;
    let tag = jobs::etag(&record);
    let res = if matches(&tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(jobs::view(&record)).into_response()
    };
    Ok(with_etag(res, &tag))
}

/// A job status answer's validators: its ETag, and "ask again each time".
fn with_etag(mut res: Response, tag: &str) -> Response {
    if let Ok(v) = axum::http::HeaderValue::from_str(tag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    res
}

pub async fn cancel_job(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(job_id): ApiPath<JobId>,
) -> ApiResult<(StatusCode, Json<protocol::Job>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(jobs::cancel(&state, &me, &job_id).await?),
    ))
}

pub async fn job_result(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiPath(job_id): ApiPath<JobId>,
) -> ApiResult<Response> {
    let (path, name) = match jobs::result_file(&state, &me, &job_id).await? {
        jobs::JobResult::Disk(path, name) => (path, name),
        // Stored in the database: served as every upload is (the owner is its uploader).
        jobs::JobResult::Upload(id) => return serve_upload(&state, &me, &id).await,
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::NotFound("result"))?;
    // Streamed from disk, never read whole into memory.
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), file))
            }
        }
    });
    let mut res = Response::new(axum::body::Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// Everyone online or idle now who shares a room (or a DM) with me, and me (offline users are
/// absent).
pub async fn presence(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> ApiResult<Json<serde_json::Value>> {
    let users = state
        .presence
        .snapshot_for(&state.hub, &*state.store, &me.id)
        .await?;
    Ok(Json(serde_json::json!({ "users": users })))
}

/// For clients without a WebSocket: I am `idle` or `online` again.
pub async fn set_presence(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<PresenceUpdate>,
) -> ApiResult<StatusCode> {
    chat::set_status(&state, &me, &body.status)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Per transport and feed: open connections, requests, empty answers, events delivered, bytes,
/// reconnects, and delivery latency over the last minute.
pub async fn admin_metrics(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Json<serde_json::Value> {
    Json(metrics_snapshot(&state))
}

/// The meters plus the group-commit writer's batch counters.
fn metrics_snapshot(state: &AppState) -> serde_json::Value {
    let mut snapshot = state.meters.snapshot();
    if let Some(map) = snapshot.as_object_mut() {
        map.insert("writer".into(), state.writer.stats().json());
        // What a leak would grow: open TCP connections, users holding live connections, hub
        // subscribers and the runtime's tasks.
        map.insert(
            "runtime".into(),
            serde_json::json!({
                "connections": state.limits.open(),
                "users_connected": state.limits.users_connected(),
                "subscribers": state.hub.subscriber_count(),
                "tasks": tokio::runtime::Handle::current().metrics().num_alive_tasks(),
                "hub_head": state.hub.head(),
                "hub_pending": state.hub.pending(),
                "jobs_held": state.jobs.held_count(),
            }),
        );
        // In a cluster: this server's node name and the backplane's counters.
        if let Some(cluster) = state.cluster.get() {
            map.insert("cluster".into(), cluster.snapshot());
        }
    }
    snapshot
}

/// The server's clock, for clients' offset estimates. No session needed; never cached.
pub async fn server_time() -> Response {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as f64 / 1000.0)
        .unwrap_or(0.0);
    let mut res = Json(protocol::ServerTime { now_ms }).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

/// A browser's measurements (commit-to-screen latency, gaps, duplicates) for the admin's
/// end-to-end figures. Rate-limited per user, and each report's counts are clamped to what the
/// server delivered on that transport and feed since the user's previous report.
pub async fn client_stats(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiJson(body): ApiJson<protocol::ClientStats>,
) -> ApiResult<StatusCode> {
    body.validate()
        .map_err(|m| ApiError::bad("invalid_stats", m))?;
    crate::services::per_minute(
        &state,
        "stats",
        &me.id,
        state.config.stats_per_user_per_minute,
    )?;
    for r in &body.reports {
        let budget = state.meters.report_budget(&me.id, r.transport, r.feed);
        let samples = r.latency_ms.len().min(budget as usize);
        state.meters.client_report(
            r.transport,
            r.feed,
            &r.latency_ms[..samples],
            r.gaps.min(budget),
            r.duplicates.min(budget),
        );
    }
    Ok(StatusCode::NO_CONTENT)
}

/// How often the admin console's live comparison is pushed.
pub const METRICS_PUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The admin console's live feed: an SSE stream with the metrics snapshot every second (event
/// `metrics`), ending when the server shuts down.
pub async fn admin_metrics_live(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> Response {
    let mut tick = tokio::time::interval(METRICS_PUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream =
        futures_util::stream::unfold((state, tick, true), |(state, mut tick, first)| async move {
            tokio::select! {
                _ = state.shutdown.cancelled() => return None,
                _ = tick.tick() => {}
            }
            let mut out = String::new();
            if first {
                out.push_str("retry: 2000\n\n");
            }
            let snapshot = metrics_snapshot(&state).to_string();
            out.push_str(&crate::hub::event::frame(None, "metrics", &snapshot));
            Some((
                Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(out)),
                (state, tick, false),
            ))
        });
    crate::live::sse::event_stream(axum::body::Body::from_stream(stream))
}

/// The same meters in Prometheus text format (admins only).
pub async fn prometheus(State(state): State<AppState>, AdminUser(_): AdminUser) -> Response {
    let mut text = state.meters.prometheus();
    state.writer.stats().prometheus(&mut text);
    let renewals = state.sessions.renewals();
    text.push_str(&format!(
        "# TYPE switchboard_session_renewals_total counter\nswitchboard_session_renewals_total {renewals}\n"
    ));
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

pub async fn admin_audit(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::json!({ "entries": admin::audit_log(&state, q.limit).await? }),
    ))
}

pub async fn admin_settings(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(transports::poll_settings(&state).await?))
}

pub async fn admin_set_settings(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        transports::set_poll_settings(&state, &admin, &body).await?,
    ))
}

#[derive(Debug, serde::Deserialize)]
pub struct UploadQuery {
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /api/uploads?name=`: the body is the file, streamed into the database.
pub async fn upload(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    ApiQuery(q): ApiQuery<UploadQuery>,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    let headers = req.headers();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = req.into_body().into_data_stream();
    let upload = uploads::receive(
        &state,
        &me,
        q.name.as_deref(),
        content_type.as_deref(),
        length,
        body,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(upload)))
}

/// The headers every answer with an upload's bytes carries: its type, inline only for the
/// images browsers show without running anything, never sniffed, a sandboxing policy, and a
/// cache kept by the browser alone.
fn upload_headers(
    h: &mut axum::http::HeaderMap,
    content_type: &str,
    name: &str,
    size: Option<i64>,
) {
    use axum::http::HeaderValue;
    let ty = HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, ty);
    let disposition = if protocol::is_inline_image(content_type) {
        "inline"
    } else {
        "attachment"
    };
    // An ASCII stand-in for old clients, and the real name (RFC 6266 / 8187).
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::security::UPLOAD_POLICY),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    if let Some(size) = size {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size.max(0)));
    }
}

/// `GET /api/uploads/{id}`: the bytes, chunk by chunk from the database.
pub async fn upload_file(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Response> {
    serve_upload(&state, &me, &id).await
}

async fn serve_upload(state: &AppState, me: &User, id: &str) -> ApiResult<Response> {
    let record = uploads::find(state, me, id).await?;
    let up = record.upload;
    let mut res = Response::new(axum::body::Body::from_stream(uploads::chunks(
        state,
        up.id.clone(),
    )));
    upload_headers(res.headers_mut(), &up.content_type, &up.name, Some(up.size));
    Ok(res)
}

/// `GET /api/uploads/{id}/thumbnail`: an image's thumbnail (404 for other files).
pub async fn upload_thumbnail(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Response> {
    let (bytes, ty) = uploads::thumbnail(&state, &me, &id).await?;
    let size = bytes.len() as i64;
    let mut res = Response::new(axum::body::Body::from(bytes));
    upload_headers(res.headers_mut(), &ty, "thumbnail", Some(size));
    Ok(res)
}
