//! The authorization matrix: every route that takes an id, asked by someone who does not own or
//! belong to it, is refused, and refused exactly as if the id did not exist (same status, same
//! error body) wherever existence itself is private; anonymous callers get 401 everywhere; every
//! admin route refuses non-admins (403) and anonymous callers (401). Nothing changes.

use crate::common::{Client, TestApp};
use crate::notifications::wait_job;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SECRET: &str = "the launch codes are 0000";
const SECRET_ROOM: &str = "war-room";

async fn call(
    c: &Client,
    method: &Method,
    path: &str,
    body: &Option<Value>,
) -> (StatusCode, Value) {
    let mut req = c.http.request(method.clone(), c.url(path));
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// One row: a request about someone else's thing, and the same request about a thing that does
/// not exist (None: its existence is public, so only the expected status is checked).
struct Row {
    what: &'static str,
    method: Method,
    theirs: String,
    /// The same request about a thing that does not exist: its path, and its body (the id may
    /// travel in the body).
    missing: Option<(String, Option<Value>)>,
    body: Option<Value>,
    /// For rows whose existence is public: the refusal the outsider gets.
    expect: Option<StatusCode>,
}

fn hidden(
    what: &'static str,
    method: Method,
    theirs: String,
    missing: String,
    body: Option<Value>,
) -> Row {
    Row {
        what,
        method,
        theirs,
        missing: Some((missing, body.clone())),
        body,
        expect: None,
    }
}

/// A row whose id travels in the body: `missing_body` names a thing that does not exist.
fn hidden_in_body(
    what: &'static str,
    method: Method,
    path: String,
    body: Value,
    missing_body: Value,
) -> Row {
    Row {
        what,
        method,
        theirs: path.clone(),
        missing: Some((path, Some(missing_body))),
        body: Some(body),
        expect: None,
    }
}

#[tokio::test]
async fn outsiders_learn_nothing_and_change_nothing() {
    let app = TestApp::spawn().await;
    let root = app.client();
    root.signup("root").await; // the first account: an admin
    let alice = app.client();
    let alice_user = alice.signup("alice").await;
    let mallory = app.client();
    mallory.signup("mallory").await;
    let anon = app.client();

    // Alice's things: a private room with a message, a public room, a DM with root, an export
    // job with its file, and a notification.
    let private = alice.create_room(SECRET_ROOM, true).await;
    let (status, msg) = alice.send(&private, SECRET, "s1").await;
    assert_eq!(status, StatusCode::CREATED);
    let message = msg["id"].as_str().expect("message id").to_string();
    let public = alice.create_room("lobby", false).await;
    let (status, dm) = alice.post("/api/dms", json!({"username": "root"})).await;
    assert_eq!(status, StatusCode::CREATED, "{dm}");
    let dm = dm["id"].as_str().expect("dm id").to_string();
    let (status, job) = alice
        .post(
            "/api/jobs",
            json!({"kind": "export_room", "room_id": private}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = job["id"].as_str().expect("job id").to_string();
    assert_eq!(wait_job(&alice, &job).await["state"], "done");
    root.post(
        &format!("/api/rooms/{dm}/messages"),
        json!({"body": "hi @alice", "client_id": "r1"}),
    )
    .await;
    let (_, notes) = alice.get("/api/notifications").await;
    let note = notes["notifications"][0]["id"]
        .as_str()
        .expect("alice has a notification")
        .to_string();
    // Mallory's own room, to aim foreign message ids at.
    let mine = mallory.create_room("mallorys", false).await;
    let nobody = "00000000-0000-4000-8000-000000000000";

    let post = Method::POST;
    let get = Method::GET;
    let rows = vec![
        hidden(
            "private history",
            get.clone(),
            format!("/api/rooms/{private}/messages"),
            format!("/api/rooms/{nobody}/messages"),
            None,
        ),
        hidden(
            "private send",
            post.clone(),
            format!("/api/rooms/{private}/messages"),
            format!("/api/rooms/{nobody}/messages"),
            Some(json!({"body": "hi", "client_id": "m1"})),
        ),
        hidden(
            "private join",
            post.clone(),
            format!("/api/rooms/{private}/join"),
            format!("/api/rooms/{nobody}/join"),
            None,
        ),
        hidden(
            "private leave",
            post.clone(),
            format!("/api/rooms/{private}/leave"),
            format!("/api/rooms/{nobody}/leave"),
            None,
        ),
        hidden(
            "private invite",
            post.clone(),
            format!("/api/rooms/{private}/invite"),
            format!("/api/rooms/{nobody}/invite"),
            Some(json!({"username": "mallory"})),
        ),
        hidden(
            "private read mark",
            post.clone(),
            format!("/api/rooms/{private}/read"),
            format!("/api/rooms/{nobody}/read"),
            Some(json!({"message_id": message})),
        ),
        hidden(
            "private typing",
            post.clone(),
            format!("/api/rooms/{private}/typing"),
            format!("/api/rooms/{nobody}/typing"),
            None,
        ),
        hidden(
            "dm history",
            get.clone(),
            format!("/api/rooms/{dm}/messages"),
            format!("/api/rooms/{nobody}/messages"),
            None,
        ),
        hidden(
            "dm join",
            post.clone(),
            format!("/api/rooms/{dm}/join"),
            format!("/api/rooms/{nobody}/join"),
            None,
        ),
        hidden(
            "dm send",
            post.clone(),
            format!("/api/rooms/{dm}/messages"),
            format!("/api/rooms/{nobody}/messages"),
            Some(json!({"body": "hi", "client_id": "m2"})),
        ),
        hidden(
            "foreign message as history cursor",
            get.clone(),
            format!("/api/rooms/{public}/messages?before={message}"),
            format!("/api/rooms/{public}/messages?before={nobody}"),
            None,
        ),
        hidden_in_body(
            "foreign message as read mark",
            post.clone(),
            format!("/api/rooms/{mine}/read"),
            json!({"message_id": message}),
            json!({"message_id": nobody}),
        ),
        hidden_in_body(
            "export of a private room",
            post.clone(),
            "/api/jobs".into(),
            json!({"kind": "export_room", "room_id": private}),
            json!({"kind": "export_room", "room_id": nobody}),
        ),
        hidden(
            "job status",
            get.clone(),
            format!("/api/jobs/{job}"),
            format!("/api/jobs/{nobody}"),
            None,
        ),
        hidden(
            "job cancel",
            post.clone(),
            format!("/api/jobs/{job}/cancel"),
            format!("/api/jobs/{nobody}/cancel"),
            None,
        ),
        hidden(
            "job result",
            get.clone(),
            format!("/api/jobs/{job}/result"),
            format!("/api/jobs/{nobody}/result"),
            None,
        ),
        hidden_in_body(
            "notification read",
            post.clone(),
            "/api/notifications/read".into(),
            json!({"ids": [note]}),
            json!({"ids": [nobody]}),
        ),
        hidden(
            "notification cursor",
            get.clone(),
            format!("/api/notifications?before={note}"),
            format!("/api/notifications?before={nobody}"),
            None,
        ),
        // A public room's existence is public: a non-member is told to join first.
        Row {
            what: "public send without joining",
            method: post.clone(),
            theirs: format!("/api/rooms/{public}/messages"),
            missing: None,
            body: Some(json!({"body": "hi", "client_id": "m3"})),
            expect: Some(StatusCode::FORBIDDEN),
        },
        Row {
            what: "public invite without joining",
            method: post.clone(),
            theirs: format!("/api/rooms/{public}/invite"),
            missing: None,
            body: Some(json!({"username": "mallory"})),
            expect: Some(StatusCode::FORBIDDEN),
        },
        Row {
            what: "public read mark without joining",
            method: post.clone(),
            theirs: format!("/api/rooms/{public}/read"),
            missing: None,
            body: Some(json!({"message_id": message})),
            expect: Some(StatusCode::FORBIDDEN),
        },
    ];
    for row in &rows {
        let (status, theirs) = call(&mallory, &row.method, &row.theirs, &row.body).await;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
            "{}: outsider got {status} {theirs}",
            row.what
        );
        let text = theirs.to_string();
        assert!(
            !text.contains(SECRET) && !text.contains(SECRET_ROOM),
            "{}: leaked {text}",
            row.what
        );
        if let Some((missing, missing_req)) = &row.missing {
            assert!(
                *missing != row.theirs || *missing_req != row.body,
                "{}: the row compares a request with itself",
                row.what
            );
            let (missing_status, missing_body) =
                call(&mallory, &row.method, missing, missing_req).await;
            assert_eq!(
                (status, &theirs),
                (missing_status, &missing_body),
                "{}: \"not yours\" must read exactly like \"does not exist\"",
                row.what
            );
        }
        if let Some(expect) = row.expect {
            assert_eq!(status, expect, "{}: {theirs}", row.what);
        }
        let (status, body) = call(&anon, &row.method, &row.theirs, &row.body).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} anonymous: {body}",
            row.what
        );
        assert_eq!(body["error"]["code"], "unauthorized", "{}", row.what);
    }

    // Admin routes: non-admins 403, anonymous 401, the admin gets through.
    let alice_id = &alice_user.id;
    let admin_rows: Vec<(Method, String, Option<Value>)> = vec![
        (get.clone(), "/api/admin/users".into(), None),
        (
            Method::PUT,
            format!("/api/admin/users/{alice_id}"),
            Some(json!({"is_admin": true})),
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{alice_id}/transports"),
            Some(json!({"chat": "sse"})),
        ),
        (get.clone(), "/api/admin/transports".into(), None),
        (
            Method::PUT,
            "/api/admin/transports".into(),
            Some(json!({"websocket": false})),
        ),
        (
            post.clone(),
            "/api/admin/announcements".into(),
            Some(json!({"title": "owned", "body": "x"})),
        ),
        (get.clone(), "/api/admin/metrics".into(), None),
        (get.clone(), "/api/admin/metrics/live".into(), None),
        (get.clone(), "/api/admin/audit".into(), None),
        (get.clone(), "/api/admin/settings".into(), None),
        (
            Method::PUT,
            "/api/admin/settings".into(),
            Some(json!({"short_poll_ms": 100})),
        ),
        (get.clone(), "/metrics".into(), None),
    ];
    for (method, path, body) in &admin_rows {
        let (status, err) = call(&mallory, method, path, body).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {path} as a user: {err}"
        );
        assert_eq!(err["error"]["code"], "forbidden", "{method} {path}");
        let (status, err) = call(&anon, method, path, body).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} anonymous: {err}"
        );
    }
    for (method, path, _) in admin_rows
        .iter()
        .filter(|(m, p, _)| *m == Method::GET && !p.ends_with("/live"))
    {
        let (status, body) = call(&root, method, path, &None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{method} {path} as the admin: {body}"
        );
    }

    // Nothing changed: the room holds only Alice's message, the job is done, nobody was
    // promoted, the switches are on, no announcement went out.
    let (_, history) = alice.get(&format!("/api/rooms/{private}/messages")).await;
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(1));
    let (_, j) = alice.get(&format!("/api/jobs/{job}")).await;
    assert_eq!(j["state"], "done");
    let (_, me) = alice.get("/api/me").await;
    assert_eq!(me["is_admin"], false);
    let (_, switches) = root.get("/api/admin/transports").await;
    assert_eq!(switches["websocket"], true);
    let (_, notes) = alice.get("/api/notifications").await;
    assert!(notes["notifications"]
        .as_array()
        .expect("list")
        .iter()
        .all(|n| n["kind"] != "announcement"));
    let (_, rooms) = mallory.get("/api/rooms").await;
    assert!(
        !rooms.to_string().contains(SECRET_ROOM),
        "the room list hides it: {rooms}"
    );
    // And the live log shows Mallory none of it, from the very beginning.
    let (status, poll) = mallory
        .get("/api/live/poll?feeds=chat,notifications,jobs&cursor=0&wait=0")
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = poll.to_string();
    assert!(
        !text.contains(SECRET) && !text.contains(SECRET_ROOM) && !text.contains(&job),
        "{text}"
    );
}
