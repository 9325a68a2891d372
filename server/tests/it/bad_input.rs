//! Bad input on every /api route, against the real server: malformed JSON, wrong types,
//! missing fields, over-long strings, unknown and malformed ids, bad queries, cursors and
//! `wait` values, and malformed WebSocket frames. Every answer must be the documented status
//! with the JSON error body `{"error":{"code","message"}}`: never a panic, a 500, a hang, or
//! axum's plain-text rejection.

use crate::common::{Client, TestApp};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A well-formed id that names nothing.
const NOBODY: &str = "00000000-0000-4000-8000-000000000000";

/// Sends `body` (raw bytes) with `content_type`; returns the status and the body as JSON
/// (a JSON string holding the text when the body is not JSON, so that assertions show it).
async fn raw(
    c: &Client,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = c.http.request(method, c.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

async fn json_req(c: &Client, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    raw(
        c,
        method,
        path,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
}

/// The answer is `status` with the documented JSON error body carrying `code`.
#[track_caller]
fn assert_error(what: &str, got: (StatusCode, Value), status: StatusCode, code: &str) {
    let (got_status, body) = got;
    assert_eq!(got_status, status, "{what}: status (body {body})");
    let err = &body["error"];
    assert!(
        err["code"].is_string() && err["message"].is_string(),
        "{what}: not the JSON error body: {body}"
    );
    assert_eq!(err["code"], code, "{what}: code (body {body})");
    assert!(
        !err["message"].as_str().unwrap_or_default().is_empty(),
        "{what}: empty message"
    );
}

/// The /api routes that take a JSON body, with the id placeholders filled in.
fn json_routes(room: &str, user: &str) -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/api/auth/signup".into()),
        (Method::POST, "/api/auth/login".into()),
        (Method::POST, "/api/rooms".into()),
        (Method::POST, format!("/api/rooms/{room}/invite")),
        (Method::POST, "/api/dms".into()),
        (Method::POST, format!("/api/rooms/{room}/messages")),
        (
            Method::PATCH,
            format!("/api/rooms/{room}/messages/{NOBODY}"),
        ),
        (Method::POST, format!("/api/rooms/{room}/read")),
        (Method::PUT, format!("/api/admin/users/{user}")),
        (Method::POST, "/api/admin/announcements".into()),
        (Method::PUT, "/api/admin/settings".into()),
        (Method::POST, "/api/presence".into()),
        (Method::POST, "/api/notifications/read".into()),
        (Method::POST, "/api/jobs".into()),
        (Method::PUT, "/api/me/transports".into()),
        (Method::PUT, format!("/api/admin/users/{user}/transports")),
        (Method::PUT, "/api/admin/transports".into()),
        (Method::POST, "/api/live/stats".into()),
    ]
}

/// Signs up the first account (an admin) and a room it is in.
async fn admin_with_room(app: &TestApp) -> (Client, protocol::User, String) {
    let admin = app.client();
    let me = admin.signup("root").await;
    let room = admin.create_room("lobby", false).await;
    (admin, me, room)
}

/// A malformed body: what it is, its content type, its bytes, and the expected status and code.
type BadBody = (
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    StatusCode,
    &'static str,
);

#[tokio::test]
async fn malformed_bodies_get_json_errors_on_every_json_route() {
    let app = TestApp::spawn().await;
    let (admin, me, room) = admin_with_room(&app).await;
    // Under the body limit, far over serde_json's nesting limit.
    let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let bodies: Vec<BadBody> = vec![
        (
            "cut-off JSON",
            Some("application/json"),
            b"{\"a\":".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "trailing garbage",
            Some("application/json"),
            b"{} x".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "an array",
            Some("application/json"),
            b"[1,2]".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "null",
            Some("application/json"),
            b"null".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "a string",
            Some("application/json"),
            b"\"x\"".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "empty",
            Some("application/json"),
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "invalid UTF-8",
            Some("application/json"),
            b"{\"name\":\"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "nested 30000 deep",
            Some("application/json"),
            deep.into_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "no content type",
            None,
            b"{}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "text/plain",
            Some("text/plain"),
            b"{}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "over 64 KiB",
            Some("application/json"),
            format!("{{\"x\":\"{}\"}}", "y".repeat(70_000)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
    ];
    for (method, path) in json_routes(&room, &me.id) {
        for (what, ct, body, status, code) in &bodies {
            let got = raw(&admin, method.clone(), &path, *ct, body.clone()).await;
            assert_error(&format!("{method} {path} with {what}"), got, *status, code);
        }
    }
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_400_with_the_route_code() {
    let app = TestApp::spawn().await;
    let (admin, me, room) = admin_with_room(&app).await;
    let invalid = StatusCode::BAD_REQUEST;
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/api/auth/signup".into(),
            json!({}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/auth/signup".into(),
            json!({"username": 1, "password": 2}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/auth/signup".into(),
            json!({"username": "abc"}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/auth/login".into(),
            json!({"username": ["root"], "password": "x"}),
            "invalid_json",
        ),
        (Method::POST, "/api/rooms".into(), json!({}), "invalid_json"),
        (
            Method::POST,
            "/api/rooms".into(),
            json!({"name": "x", "private": "yes"}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/rooms".into(),
            json!({"name": 7}),
            "invalid_json",
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/invite"),
            json!({}),
            "invalid_json",
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/invite"),
            json!({"username": 5}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/dms".into(),
            json!({"user": "root"}),
            "invalid_json",
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/messages"),
            json!({}),
            "invalid_json",
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/messages"),
            json!({"body": 1, "client_id": "c"}),
            "invalid_json",
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/messages"),
            json!({"body": "hi", "client_id": null}),
            "invalid_json",
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/read"),
            json!({}),
            "invalid_json",
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/read"),
            json!({"message_id": 7}),
            "invalid_json",
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{}", me.id),
            json!({}),
            "invalid_json",
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{}", me.id),
            json!({"is_admin": "yes"}),
            "invalid_json",
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{}", me.id),
            json!({"is_admin": true, "x": 1}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/admin/announcements".into(),
            json!({}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/admin/announcements".into(),
            json!({"title": 1}),
            "invalid_json",
        ),
        (
            Method::PUT,
            "/api/admin/settings".into(),
            json!({}),
            "invalid_setting",
        ),
        (
            Method::PUT,
            "/api/admin/settings".into(),
            json!({"long_poll_s": "5"}),
            "invalid_setting",
        ),
        (
            Method::PUT,
            "/api/admin/settings".into(),
            json!({"short_poll_ms": -1}),
            "invalid_setting",
        ),
        (
            Method::PUT,
            "/api/admin/settings".into(),
            json!({"short_poll_ms": 1.5e300}),
            "invalid_setting",
        ),
        (
            Method::POST,
            "/api/presence".into(),
            json!({}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/presence".into(),
            json!({"status": 1}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/presence".into(),
            json!({"status": "asleep"}),
            "invalid_status",
        ),
        (
            Method::POST,
            "/api/notifications/read".into(),
            json!({}),
            "invalid_request",
        ),
        (
            Method::POST,
            "/api/notifications/read".into(),
            json!({"ids": []}),
            "invalid_request",
        ),
        (
            Method::POST,
            "/api/notifications/read".into(),
            json!({"ids": "x"}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/notifications/read".into(),
            json!({"all": "yes"}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/notifications/read".into(),
            json!({"ids": [1]}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/notifications/read".into(),
            json!({"ids": ["nope"]}),
            "invalid_id",
        ),
        (
            Method::POST,
            "/api/notifications/read".into(),
            json!({"ids": vec![NOBODY; 501]}),
            "invalid_request",
        ),
        (Method::POST, "/api/jobs".into(), json!({}), "invalid_json"),
        (
            Method::POST,
            "/api/jobs".into(),
            json!({"kind": "mine_bitcoin"}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/jobs".into(),
            json!({"kind": "demo", "steps": "5", "step_ms": 10}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/jobs".into(),
            json!({"kind": "demo", "steps": 5, "step_ms": -10}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/jobs".into(),
            json!({"kind": "demo", "steps": 0, "step_ms": 10}),
            "invalid_steps",
        ),
        (
            Method::POST,
            "/api/jobs".into(),
            json!({"kind": "demo", "steps": 1e30, "step_ms": 10}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/jobs".into(),
            json!({"kind": "demo", "steps": 5, "step_ms": 1}),
            "invalid_step_ms",
        ),
        (
            Method::POST,
            "/api/jobs".into(),
            json!({"kind": "export_room"}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/jobs".into(),
            json!({"kind": "export_room", "room_id": "x"}),
            "invalid_id",
        ),
        (
            Method::PUT,
            "/api/me/transports".into(),
            json!({}),
            "invalid_transports",
        ),
        (
            Method::PUT,
            "/api/me/transports".into(),
            json!({"chat": 5}),
            "invalid_transport",
        ),
        (
            Method::PUT,
            "/api/me/transports".into(),
            json!({"chat": "carrier_pigeon"}),
            "invalid_transport",
        ),
        (
            Method::PUT,
            "/api/me/transports".into(),
            json!({"chat": null}),
            "invalid_transport",
        ),
        (
            Method::PUT,
            "/api/me/transports".into(),
            json!({"control": "sse"}),
            "invalid_feed",
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{}/transports", me.id),
            json!({}),
            "invalid_transports",
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{}/transports", me.id),
            json!({"jobs": true}),
            "invalid_transport",
        ),
        (
            Method::PUT,
            "/api/admin/transports".into(),
            json!({"websocket": "off"}),
            "invalid_transport",
        ),
        (
            Method::PUT,
            "/api/admin/transports".into(),
            json!({"telegraph": true}),
            "invalid_transport",
        ),
        (
            Method::PUT,
            "/api/admin/transports".into(),
            json!({"websocket": false, "sse": false, "long_poll": false, "short_poll": false}),
            "invalid_transports",
        ),
        (
            Method::POST,
            "/api/live/stats".into(),
            json!({}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/live/stats".into(),
            json!({"reports": [{"transport": "sse", "feed": "nope"}]}),
            "invalid_json",
        ),
        (
            Method::POST,
            "/api/live/stats".into(),
            json!({"reports": [{"transport": "sse", "feed": "chat", "latency_ms": [-1.0]}]}),
            "invalid_stats",
        ),
    ];
    for (method, path, body, code) in cases {
        let got = json_req(&admin, method.clone(), &path, body.clone()).await;
        assert_error(&format!("{method} {path} {body}"), got, invalid, code);
    }
    // None of the refused changes happened: the settings and switches are the defaults.
    let (_, settings) = admin.get("/api/admin/settings").await;
    assert_eq!(settings, json!({"short_poll_ms": 2000, "long_poll_s": 25}));
    let (_, switches) = admin.get("/api/admin/transports").await;
    assert_eq!(
        switches,
        json!({"websocket": true, "sse": true, "long_poll": true, "short_poll": true})
    );
}

#[tokio::test]
async fn a_refused_settings_change_changes_nothing() {
    let app = TestApp::spawn().await;
    let (admin, _, _) = admin_with_room(&app).await;
    // Keys are checked in order ("long_poll_s" < "short_poll_ms" < "zzz"); the valid ones
    // before the bad one must not be written.
    let got = admin
        .put(
            "/api/admin/settings",
            json!({"long_poll_s": 5, "short_poll_ms": 500, "zzz": 1}),
        )
        .await;
    assert_error(
        "a bad key after good ones",
        got,
        StatusCode::BAD_REQUEST,
        "invalid_setting",
    );
    let got = admin
        .put(
            "/api/admin/settings",
            json!({"long_poll_s": 5, "short_poll_ms": 5}),
        )
        .await;
    assert_error(
        "a bad value after a good one",
        got,
        StatusCode::BAD_REQUEST,
        "invalid_setting",
    );
    let (_, settings) = admin.get("/api/admin/settings").await;
    assert_eq!(settings, json!({"short_poll_ms": 2000, "long_poll_s": 25}));
    let (_, log) = admin.get("/api/admin/audit").await;
    assert_eq!(log["entries"], json!([]), "nothing audited");
}

#[tokio::test]
async fn over_long_strings_are_refused_with_their_codes() {
    let app = TestApp::spawn().await;
    let (admin, _, room) = admin_with_room(&app).await;
    let long = |n: usize| "a".repeat(n);
    let cases: Vec<(Method, String, Value, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/api/auth/signup".into(),
            json!({"username": long(33), "password": "long enough"}),
            StatusCode::BAD_REQUEST,
            "invalid_username",
        ),
        (
            Method::POST,
            "/api/auth/signup".into(),
            json!({"username": "newbie", "password": long(257)}),
            StatusCode::BAD_REQUEST,
            "invalid_password",
        ),
        (
            Method::POST,
            "/api/auth/signup".into(),
            json!({"username": "ab", "password": "long enough"}),
            StatusCode::BAD_REQUEST,
            "invalid_username",
        ),
        (
            Method::POST,
            "/api/auth/login".into(),
            json!({"username": long(10_000), "password": long(10_000)}),
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
        ),
        (
            Method::POST,
            "/api/rooms".into(),
            json!({"name": long(81)}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            Method::POST,
            "/api/rooms".into(),
            json!({"name": "a\u{0}b"}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            Method::POST,
            "/api/rooms".into(),
            json!({"name": "   "}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/invite"),
            json!({"username": long(1000)}),
            StatusCode::BAD_REQUEST,
            "invalid_username",
        ),
        (
            Method::POST,
            "/api/dms".into(),
            json!({"username": long(1000)}),
            StatusCode::BAD_REQUEST,
            "invalid_username",
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/messages"),
            json!({"body": long(4001), "client_id": "c1"}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/messages"),
            json!({"body": "hi", "client_id": long(65)}),
            StatusCode::BAD_REQUEST,
            "invalid_client_id",
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/messages"),
            json!({"body": "hi", "client_id": "a\nb"}),
            StatusCode::BAD_REQUEST,
            "invalid_client_id",
        ),
        (
            Method::POST,
            "/api/admin/announcements".into(),
            json!({"title": long(121)}),
            StatusCode::BAD_REQUEST,
            "invalid_title",
        ),
        (
            Method::POST,
            "/api/admin/announcements".into(),
            json!({"title": "t", "body": long(2001)}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            Method::POST,
            "/api/presence".into(),
            json!({"status": long(10_000)}),
            StatusCode::BAD_REQUEST,
            "invalid_status",
        ),
        (
            Method::PUT,
            "/api/me/transports".into(),
            Value::Object([(long(10_000), json!("sse"))].into_iter().collect()),
            StatusCode::BAD_REQUEST,
            "invalid_feed",
        ),
        (
            Method::POST,
            "/api/live/stats".into(),
            json!({"reports": vec![json!({"transport": "sse", "feed": "chat"}); 17]}),
            StatusCode::BAD_REQUEST,
            "invalid_stats",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let what = format!(
            "{method} {path} {}",
            &body.to_string()[..body.to_string().len().min(80)]
        );
        let got = json_req(&admin, method, &path, body).await;
        assert_error(&what, got, status, code);
    }
    let (_, page) = admin.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(page["messages"], json!([]), "no refused message was stored");
}

#[tokio::test]
async fn malformed_and_unknown_ids_in_paths_and_bodies() {
    let app = TestApp::spawn().await;
    let (admin, _, room) = admin_with_room(&app).await;
    let other = app.client();
    other.signup("other").await;
    let long = "9".repeat(5000);
    // Malformed: not a UUID, not UTF-8 once decoded, absurdly long, SQL-ish.
    for bad in ["nope", "%FF%FE", long.as_str(), "1'%20OR%20'1'='1", "%00"] {
        let routes: Vec<(Method, String, Option<Value>)> = vec![
            (Method::POST, format!("/api/rooms/{bad}/join"), None),
            (Method::POST, format!("/api/rooms/{bad}/leave"), None),
            (
                Method::POST,
                format!("/api/rooms/{bad}/invite"),
                Some(json!({"username": "other"})),
            ),
            (Method::GET, format!("/api/rooms/{bad}/messages"), None),
            (
                Method::POST,
                format!("/api/rooms/{bad}/messages"),
                Some(json!({"body": "b", "client_id": "c"})),
            ),
            (
                Method::POST,
                format!("/api/rooms/{bad}/read"),
                Some(json!({"message_id": NOBODY})),
            ),
            (Method::POST, format!("/api/rooms/{bad}/typing"), None),
            (
                Method::PATCH,
                format!("/api/rooms/{room}/messages/{bad}"),
                Some(json!({"body": "b"})),
            ),
            (
                Method::PATCH,
                format!("/api/rooms/{bad}/messages/{NOBODY}"),
                Some(json!({"body": "b"})),
            ),
            (
                Method::DELETE,
                format!("/api/rooms/{room}/messages/{bad}"),
                None,
            ),
            (
                Method::DELETE,
                format!("/api/rooms/{bad}/messages/{NOBODY}"),
                None,
            ),
            (
                Method::PUT,
                format!("/api/rooms/{room}/messages/{bad}/reactions/%F0%9F%91%8D"),
                None,
            ),
            (
                Method::DELETE,
                format!("/api/rooms/{bad}/messages/{NOBODY}/reactions/%F0%9F%91%8D"),
                None,
            ),
            (
                Method::GET,
                format!("/api/rooms/{room}/messages/{bad}/thread"),
                None,
            ),
            (
                Method::GET,
                format!("/api/rooms/{bad}/messages/{NOBODY}/thread"),
                None,
            ),
            (
                Method::POST,
                format!("/api/rooms/{room}/messages"),
                Some(json!({"body": "b", "client_id": "c", "reply_to": bad})),
            ),
            (
                Method::PUT,
                format!("/api/admin/users/{bad}"),
                Some(json!({"is_admin": true})),
            ),
            (
                Method::PUT,
                format!("/api/admin/users/{bad}/transports"),
                Some(json!({"chat": "sse"})),
            ),
            (Method::GET, format!("/api/jobs/{bad}"), None),
            (Method::POST, format!("/api/jobs/{bad}/cancel"), None),
            (Method::GET, format!("/api/jobs/{bad}/result"), None),
        ];
        for (method, path, body) in routes {
            let what = format!("{method} {}", &path[..path.len().min(60)]);
            let got = match body {
                Some(b) => json_req(&admin, method, &path, b).await,
                None => raw(&admin, method, &path, None, Vec::new()).await,
            };
            assert_error(&what, got, StatusCode::BAD_REQUEST, "invalid_id");
        }
    }
    // Well-formed ids that name nothing (or nothing of mine): 404.
    let not_found: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, format!("/api/rooms/{NOBODY}/join"), None),
        (Method::POST, format!("/api/rooms/{NOBODY}/leave"), None),
        (
            Method::POST,
            format!("/api/rooms/{NOBODY}/invite"),
            Some(json!({"username": "other"})),
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/invite"),
            Some(json!({"username": "ghost"})),
        ),
        (
            Method::POST,
            "/api/dms".into(),
            Some(json!({"username": "ghost"})),
        ),
        (Method::GET, format!("/api/rooms/{NOBODY}/messages"), None),
        (
            Method::GET,
            format!("/api/rooms/{room}/messages?before={NOBODY}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/rooms/{NOBODY}/messages"),
            Some(json!({"body": "b", "client_id": "c"})),
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/read"),
            Some(json!({"message_id": NOBODY})),
        ),
        (Method::POST, format!("/api/rooms/{NOBODY}/typing"), None),
        (
            Method::PATCH,
            format!("/api/rooms/{room}/messages/{NOBODY}"),
            Some(json!({"body": "b"})),
        ),
        (
            Method::PATCH,
            format!("/api/rooms/{NOBODY}/messages/{NOBODY}"),
            Some(json!({"body": "b"})),
        ),
        (
            Method::DELETE,
            format!("/api/rooms/{room}/messages/{NOBODY}"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/rooms/{room}/messages/{NOBODY}/reactions/%F0%9F%91%8D"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/rooms/{room}/messages/{NOBODY}/reactions/%F0%9F%91%8D"),
            None,
        ),
        (
            Method::GET,
            format!("/api/rooms/{room}/messages/{NOBODY}/thread"),
            None,
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/messages"),
            Some(json!({"body": "b", "client_id": "c2", "reply_to": NOBODY})),
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{NOBODY}"),
            Some(json!({"is_admin": true})),
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{NOBODY}/transports"),
            Some(json!({"chat": "sse"})),
        ),
        (Method::GET, format!("/api/jobs/{NOBODY}"), None),
        (Method::POST, format!("/api/jobs/{NOBODY}/cancel"), None),
        (Method::GET, format!("/api/jobs/{NOBODY}/result"), None),
        (
            Method::POST,
            "/api/jobs".into(),
            Some(json!({"kind": "export_room", "room_id": NOBODY})),
        ),
        (
            Method::GET,
            format!("/api/notifications?before={NOBODY}"),
            None,
        ),
        (
            Method::POST,
            "/api/notifications/read".into(),
            Some(json!({"ids": [NOBODY]})),
        ),
    ];
    for (method, path, body) in not_found {
        let what = format!("{method} {path}");
        let got = match body {
            Some(b) => json_req(&admin, method, &path, b).await,
            None => raw(&admin, method, &path, None, Vec::new()).await,
        };
        assert_error(&what, got, StatusCode::NOT_FOUND, "not_found");
    }
    // Another user's job is as unknown as a missing one.
    let (status, job) = admin
        .post(
            "/api/jobs",
            json!({"kind": "demo", "steps": 1, "step_ms": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().expect("job id");
    for path in [format!("/api/jobs/{id}"), format!("/api/jobs/{id}/result")] {
        assert_error(
            &path,
            other.get(&path).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
}

#[tokio::test]
async fn bad_queries_on_rest_routes() {
    let app = TestApp::spawn().await;
    let (admin, _, room) = admin_with_room(&app).await;
    let cases: Vec<(String, &str)> = vec![
        (
            format!("/api/rooms/{room}/messages?limit=0"),
            "invalid_limit",
        ),
        (
            format!("/api/rooms/{room}/messages?limit=101"),
            "invalid_limit",
        ),
        (
            format!("/api/rooms/{room}/messages?limit=abc"),
            "invalid_query",
        ),
        (
            format!("/api/rooms/{room}/messages?limit=-1"),
            "invalid_query",
        ),
        (
            format!("/api/rooms/{room}/messages?limit=99999999999999999999"),
            "invalid_query",
        ),
        (
            format!("/api/rooms/{room}/messages?before=nope"),
            "invalid_id",
        ),
        (
            format!("/api/rooms/{room}/messages?before=%FF"),
            "invalid_id",
        ),
        (
            format!("/api/rooms/{room}/messages?limit=1&limit=2"),
            "invalid_query",
        ),
        (
            "/api/notifications?unread_only=maybe".into(),
            "invalid_query",
        ),
        ("/api/notifications?limit=1000".into(), "invalid_limit"),
        ("/api/notifications?before=x".into(), "invalid_id"),
        ("/api/admin/audit?limit=0".into(), "invalid_limit"),
        ("/api/admin/audit?limit=x".into(), "invalid_query"),
    ];
    for (path, code) in cases {
        assert_error(&path, admin.get(&path).await, StatusCode::BAD_REQUEST, code);
    }
}

#[tokio::test]
async fn bad_live_parameters_are_400_before_anything_opens() {
    let app = TestApp::spawn().await;
    let (alice, _, _) = admin_with_room(&app).await;
    let cases: Vec<(&str, &str)> = vec![
        ("cursor=-1", "invalid_cursor"),
        ("cursor=abc", "invalid_cursor"),
        ("cursor=1e3", "invalid_cursor"),
        ("cursor=1.5", "invalid_cursor"),
        ("cursor=99999999999999999999", "invalid_cursor"),
        ("cursor=%FF", "invalid_cursor"),
        ("feeds=bogus", "invalid_feeds"),
        ("feeds=chat,,jobs", "invalid_feeds"),
        ("feeds=CHAT", "invalid_feeds"),
        ("cursor=1&cursor=2", "invalid_query"),
        ("feeds=chat&feeds=jobs", "invalid_query"),
    ];
    let wait_cases: Vec<(&str, &str)> = vec![
        ("wait=31", "invalid_wait"),
        ("wait=-1", "invalid_wait"),
        ("wait=1.5", "invalid_wait"),
        ("wait=abc", "invalid_wait"),
        ("wait=99999999999999999999", "invalid_wait"),
        ("wait=0&wait=1", "invalid_query"),
        ("eph=abc", "invalid_query"),
        ("eph=-1", "invalid_query"),
    ];
    for (q, code) in cases.iter().chain(&wait_cases) {
        let path = format!("/api/live/poll?{q}");
        assert_error(&path, alice.get(&path).await, StatusCode::BAD_REQUEST, code);
    }
    for (q, code) in &cases {
        let path = format!("/api/live/sse?{q}");
        assert_error(&path, alice.get(&path).await, StatusCode::BAD_REQUEST, code);
        let err = alice
            .try_ws(&format!("?{q}"), None)
            .await
            .err()
            .expect("refused before the upgrade");
        match err {
            tokio_tungstenite::tungstenite::Error::Http(r) => {
                assert_eq!(r.status(), StatusCode::BAD_REQUEST, "ws ?{q}");
                // The client library may not keep the body; when it does, it is the JSON error.
                if let Some(bytes) = r.body().as_deref().filter(|b| !b.is_empty()) {
                    let body: Value = serde_json::from_slice(bytes).expect("a JSON body");
                    assert_error(
                        &format!("ws ?{q}"),
                        (r.status(), body),
                        StatusCode::BAD_REQUEST,
                        code,
                    );
                }
            }
            other => panic!("ws ?{q}: {other:?}"),
        }
        // The same route without the upgrade headers checks its query first: the JSON error.
        let path = format!("/api/live/ws?{q}");
        assert_error(&path, alice.get(&path).await, StatusCode::BAD_REQUEST, code);
    }
    // SSE takes the cursor from Last-Event-ID too, with the same rules.
    for (id, code) in [("abc", "invalid_cursor"), ("-5", "invalid_cursor")] {
        let r = alice
            .http
            .get(alice.url("/api/live/sse"))
            .header("last-event-id", id)
            .send()
            .await
            .expect("request");
        let status = r.status();
        let body: Value = r.json().await.expect("a JSON body");
        assert_error(
            &format!("Last-Event-ID {id}"),
            (status, body),
            StatusCode::BAD_REQUEST,
            code,
        );
    }
    // Unknown parameters are ignored (the transport is the route, not a parameter).
    let (status, body) = alice
        .get("/api/live/poll?wait=0&transport=carrier_pigeon&after=x")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["cursor"].is_i64(), "{body}");
    // A cursor far beyond the head is honoured with a resync, not an error.
    let (status, body) = alice
        .get("/api/live/poll?wait=0&cursor=9223372036854775807")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"][0]["type"], "resync", "{body}");
}

#[tokio::test]
async fn unknown_routes_methods_and_sessions_get_json_errors() {
    let app = TestApp::spawn().await;
    let anon = app.client();
    // Without a session, every signed-in route says 401 in JSON.
    let routes: Vec<(Method, String)> = vec![
        (Method::GET, "/api/me".into()),
        (Method::GET, "/api/rooms".into()),
        (Method::POST, "/api/rooms".into()),
        (Method::POST, format!("/api/rooms/{NOBODY}/join")),
        (Method::POST, format!("/api/rooms/{NOBODY}/leave")),
        (Method::POST, format!("/api/rooms/{NOBODY}/invite")),
        (Method::GET, format!("/api/rooms/{NOBODY}/messages")),
        (Method::POST, format!("/api/rooms/{NOBODY}/messages")),
        (Method::POST, format!("/api/rooms/{NOBODY}/read")),
        (Method::POST, format!("/api/rooms/{NOBODY}/typing")),
        (Method::POST, "/api/dms".into()),
        (Method::POST, "/api/race/room".into()),
        (Method::GET, "/api/admin/users".into()),
        (Method::PUT, format!("/api/admin/users/{NOBODY}")),
        (Method::POST, "/api/admin/announcements".into()),
        (Method::GET, "/api/admin/metrics".into()),
        (Method::GET, "/api/admin/metrics/live".into()),
        (Method::GET, "/api/admin/audit".into()),
        (Method::GET, "/api/admin/settings".into()),
        (Method::PUT, "/api/admin/settings".into()),
        (Method::GET, "/api/presence".into()),
        (Method::POST, "/api/presence".into()),
        (Method::GET, "/api/notifications".into()),
        (Method::POST, "/api/notifications/read".into()),
        (Method::GET, "/api/jobs".into()),
        (Method::POST, "/api/jobs".into()),
        (Method::GET, format!("/api/jobs/{NOBODY}")),
        (Method::POST, format!("/api/jobs/{NOBODY}/cancel")),
        (Method::GET, format!("/api/jobs/{NOBODY}/result")),
        (Method::GET, "/api/me/transports".into()),
        (Method::PUT, "/api/me/transports".into()),
        (Method::PUT, format!("/api/admin/users/{NOBODY}/transports")),
        (Method::GET, "/api/admin/transports".into()),
        (Method::PUT, "/api/admin/transports".into()),
        (Method::GET, "/api/live/ws".into()),
        (Method::GET, "/api/live/sse".into()),
        (Method::GET, "/api/live/poll".into()),
        (Method::POST, "/api/live/stats".into()),
    ];
    for (method, path) in &routes {
        let got = json_req(&anon, method.clone(), path, json!({})).await;
        assert_error(
            &format!("{method} {path}"),
            got,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    // A forged or garbled session cookie is no session: 401, not a 500.
    for cookie in [
        "switchboard_session=garbage",
        "switchboard_session=",
        "switchboard_session=%FF%FE",
        "switchboard_session=AAAAAAAAAAAAAAAAAAAAAA",
        "switchboard_session=\"x\"",
    ] {
        let r = reqwest::Client::new()
            .get(app.url("/api/me"))
            .header("cookie", cookie)
            .send()
            .await
            .expect("request");
        let status = r.status();
        let body: Value = r.json().await.expect("a JSON body");
        assert_error(
            &format!("cookie {cookie}"),
            (status, body),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    let (status, body) = anon.get("/api/time").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Unknown routes and methods.
    for path in ["/api/nope", "/api/rooms/x/y/z", "/api/%FF", "/api/rooms/"] {
        assert_error(
            path,
            anon.get(path).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    // An empty id segment still reaches its route: a 400 for the id, not a 404 or a panic.
    let alice = app.client();
    alice.signup("alice").await;
    let got = alice.post_empty("/api/rooms//join").await;
    assert_error(
        "POST /api/rooms//join",
        got,
        StatusCode::BAD_REQUEST,
        "invalid_id",
    );
    for (method, path) in [
        (Method::DELETE, "/api/rooms"),
        (Method::DELETE, "/api/me"),
        (Method::GET, "/api/auth/login"),
        (Method::POST, "/api/time"),
        (Method::PUT, "/api/live/poll"),
    ] {
        let got = raw(&anon, method.clone(), path, None, Vec::new()).await;
        assert_error(
            &format!("{method} {path}"),
            got,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        );
    }
}

#[tokio::test]
async fn malformed_websocket_frames_get_error_events_and_the_socket_stays_up() {
    let app = TestApp::spawn().await;
    let (alice, _, room) = admin_with_room(&app).await;
    let mut ws = alice.ws("?feeds=chat").await;
    ws.hello().await;
    let long = "x".repeat(5000);
    let frames: Vec<(String, &str)> = vec![
        ("not json".into(), "invalid_frame"),
        ("".into(), "invalid_frame"),
        ("{".into(), "invalid_frame"),
        ("[]".into(), "invalid_frame"),
        ("null".into(), "invalid_frame"),
        ("{}".into(), "invalid_frame"),
        (json!({"type": 5}).to_string(), "invalid_frame"),
        (json!({"type": "launch"}).to_string(), "invalid_frame"),
        (
            json!({"type": "send", "room_id": 1, "body": "b", "client_id": "c"}).to_string(),
            "invalid_frame",
        ),
        (
            json!({"type": "send", "room_id": room, "body": "b"}).to_string(),
            "invalid_frame",
        ),
        (
            json!({"type": "send", "room_id": room, "body": "b", "client_id": "c", "x": 1})
                .to_string(),
            "invalid_frame",
        ),
        (json!({"type": "typing"}).to_string(), "invalid_frame"),
        (
            json!({"type": "typing", "room_id": "nope"}).to_string(),
            "invalid_id",
        ),
        (
            json!({"type": "typing", "room_id": NOBODY}).to_string(),
            "not_found",
        ),
        (
            json!({"type": "presence", "status": "asleep"}).to_string(),
            "invalid_status",
        ),
        (
            json!({"type": "send", "room_id": "nope", "body": "b", "client_id": "c1"}).to_string(),
            "invalid_id",
        ),
        (
            json!({"type": "send", "room_id": NOBODY, "body": "b", "client_id": "c2"}).to_string(),
            "not_found",
        ),
        (
            json!({"type": "send", "room_id": room, "body": long, "client_id": "c3"}).to_string(),
            "too_large",
        ),
        (
            json!({"type": "send", "room_id": room, "body": "b", "client_id": "x".repeat(65)})
                .to_string(),
            "invalid_client_id",
        ),
        (
            json!({"type": "send", "room_id": room, "body": "  ", "client_id": "c4"}).to_string(),
            "invalid_body",
        ),
        (
            format!("{}{}", "[".repeat(30_000), "]".repeat(30_000)),
            "invalid_frame",
        ),
    ];
    for (text, code) in frames {
        ws.send_text(text.clone()).await;
        let err = ws.next_of("error").await;
        assert_eq!(
            err.data["code"],
            code,
            "{}: {:?}",
            &text[..text.len().min(80)],
            err
        );
        assert!(err.data["message"].is_string(), "{err:?}");
        assert!(
            err.data["status"]
                .as_u64()
                .is_some_and(|s| (400..500).contains(&s)),
            "{err:?}"
        );
    }
    // After all that the connection still works.
    ws.send_json(json!({"type": "send", "room_id": room, "body": "still here", "client_id": "ok"}))
        .await;
    let ack = ws.next_of("ack").await;
    assert_eq!(ack.data["message"]["body"], "still here");
    let (_, page) = alice.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(
        page["messages"].as_array().map(Vec::len),
        Some(1),
        "only the good send stored"
    );
}

/// Sends one raw frame (bypassing the client library's checks) and returns the close code.
async fn close_code_after(alice: &Client, frame: WsFrame) -> Option<u16> {
    let mut ws = alice.ws("?feeds=chat").await;
    ws.hello().await;
    ws.stream
        .send(WsMessage::Frame(frame))
        .await
        .expect("raw frame sent");
    loop {
        let msg = tokio::time::timeout(crate::common::WAIT, ws.stream.next())
            .await
            .expect("an answer in time");
        match msg {
            Some(Ok(WsMessage::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    }
}

#[tokio::test]
async fn websocket_protocol_violations_close_with_a_clear_code() {
    let app = TestApp::spawn().await;
    let (alice, _, _) = admin_with_room(&app).await;
    let text = |payload: &[u8]| WsFrame::message(payload.to_vec(), OpCode::Data(Data::Text), true);
    // Invalid UTF-8 in a text frame: 1007.
    assert_eq!(
        close_code_after(&alice, text(b"{\"type\":\"\xff\"}")).await,
        Some(1007)
    );
    // A binary frame: 1002 (the protocol is JSON text).
    let binary = WsFrame::message(b"{}".to_vec(), OpCode::Data(Data::Binary), true);
    assert_eq!(close_code_after(&alice, binary).await, Some(1002));
    // A reserved bit without an extension that defines it: 1002.
    let mut rsv = text(b"{}");
    rsv.header_mut().rsv1 = true;
    assert_eq!(close_code_after(&alice, rsv).await, Some(1002));
    // A reserved opcode: 1002.
    let reserved = WsFrame::message(b"{}".to_vec(), OpCode::Data(Data::Reserved(3)), true);
    assert_eq!(close_code_after(&alice, reserved).await, Some(1002));
    // A message over the 64 KiB limit: 1009; and over the library's 1 MiB limit too.
    assert_eq!(
        close_code_after(&alice, text(&vec![b'x'; 65 * 1024])).await,
        Some(1009)
    );
    assert_eq!(
        close_code_after(&alice, text(&vec![b'x'; 2 * 1024 * 1024])).await,
        Some(1009)
    );
}

/// Text is treated alike on SQLite and PostgreSQL (whose text cannot hold NUL): control
/// characters other than newline and tab, bodies of zero-width characters only, and
/// text-direction controls in names are 400 with the route's code on every way in, never a 500.
#[tokio::test]
async fn control_characters_and_invisible_text_are_400_on_every_way_in() {
    let app = TestApp::spawn().await;
    let (root, _, room) = admin_with_room(&app).await;
    let bob = app.client();
    bob.signup("bob").await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;
    let (_, dm) = root.post("/api/dms", json!({"username": "bob"})).await;
    let dm = dm["id"].as_str().unwrap().to_string();
    let bodies = [
        ("NUL", "a\u{0}b"),
        ("NUL in a mention", "hey @bob \u{0}"),
        ("bell", "ding\u{7}"),
        ("carriage return", "one\rtwo"),
        ("escape", "\u{1b}[31mred"),
        ("C1 control", "a\u{85}b"),
        ("zero-width only", "\u{200B}\u{200C}\u{FEFF}"),
    ];
    for (what, body) in bodies {
        for target in [&room, &dm] {
            let (status, err) = root.send(target, body, &format!("c-{what}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {err}");
            assert_eq!(err["error"]["code"], "invalid_body", "{what}");
        }
        let (status, err) = root
            .post(
                "/api/admin/announcements",
                json!({"title": "Notice", "body": body}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "announcement {what}: {err}"
        );
    }
    let mut ws = root.ws("?feeds=chat").await;
    ws.hello().await;
    ws.send_json(json!({"type": "send", "room_id": room, "body": "a\u{0}b", "client_id": "w1"}))
        .await;
    let err = ws.next_of("error").await;
    assert_eq!(err.data["code"], "invalid_body", "{err:?}");
    for (what, title) in [
        ("NUL", "a\u{0}"),
        ("newline", "a\nb"),
        ("override", "x\u{202E}y"),
    ] {
        let (status, err) = root
            .post(
                "/api/admin/announcements",
                json!({"title": title, "body": "b"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "title {what}: {err}");
        assert_eq!(err["error"]["code"], "invalid_title");
    }
    for (what, name) in [
        ("NUL", "lob\u{0}by"),
        ("right-to-left override", "evil\u{202E}gnp.exe"),
        ("isolate", "\u{2067}room"),
        ("zero-width only", "\u{200B}\u{2060}"),
    ] {
        let (status, err) = root
            .post("/api/rooms", json!({"name": name, "private": false}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "room name {what}: {err}");
        assert_eq!(err["error"]["code"], "invalid_name");
    }
    // Nothing of it was stored; newline, tab and text in any script still are.
    let (_, page) = root.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(0));
    let (status, _) = root.send(&room, "line\n\tindented שלום 👋", "good").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = root
        .post("/api/rooms", json!({"name": "שלום עולם", "private": false}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}
