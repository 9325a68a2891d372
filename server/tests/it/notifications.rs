use crate::common::{Client, TestApp, WAIT};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn list(c: &Client) -> Value {
    let (status, body) = c.get("/api/notifications").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn kinds(v: &Value) -> Vec<String> {
    v["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until a job of `c` reaches a finished state; returns its snapshot.
pub async fn wait_job(c: &Client, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, job) = c.get(&format!("/api/jobs/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if matches!(job["state"].as_str(), Some("done" | "failed" | "cancelled")) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} did not finish: {job}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn each_cause_notifies_exactly_the_right_people_once() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let carol = app.client();
    carol.signup("carol").await;
    let room = alice.create_room("general", false).await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;

    // A mention: bob (a member) once, even named twice; carol is not a member; never the author.
    alice
        .send(&room, "hey @bob and @BOB, also @carol and @alice", "m1")
        .await;
    assert_eq!(kinds(&list(&bob).await), ["mention"]);
    assert!(
        kinds(&list(&carol).await).is_empty(),
        "not a member, not notified"
    );
    assert!(
        kinds(&list(&alice).await).is_empty(),
        "never for your own actions"
    );
    let n = &list(&bob).await["notifications"][0];
    assert!(n["link"]
        .as_str()
        .unwrap()
        .starts_with(&format!("/rooms/{room}")));
    assert_eq!(n["read"], false);

    // A DM: the other person, once (a mention in a DM does not add a second one).
    let (_, dm) = alice.post("/api/dms", json!({"username": "carol"})).await;
    alice
        .send(dm["id"].as_str().unwrap(), "psst @carol", "d1")
        .await;
    assert_eq!(kinds(&list(&carol).await), ["dm"]);

    // An invite to a private room.
    let secret = alice.create_room("secret", true).await;
    alice
        .post(
            &format!("/api/rooms/{secret}/invite"),
            json!({"username": "bob"}),
        )
        .await;
    alice
        .post(
            &format!("/api/rooms/{secret}/invite"),
            json!({"username": "bob"}),
        )
        .await;
    assert_eq!(
        kinds(&list(&bob).await),
        ["invite", "mention"],
        "newest first, invited once"
    );

    // A finished job tells its owner.
    let (status, job) = bob
        .post(
            "/api/jobs",
            json!({"kind": "demo", "steps": 2, "step_ms": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    wait_job(&bob, job["id"].as_str().unwrap()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while kinds(&list(&bob).await).first().map(String::as_str) != Some("job_finished") {
        assert!(tokio::time::Instant::now() < deadline, "job notification");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // An announcement: everyone but the admin who made it.
    let (status, body) = alice
        .post(
            "/api/admin/announcements",
            json!({"title": "Maintenance", "body": "Tonight"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["recipients"], 2);
    assert_eq!(kinds(&list(&bob).await)[0], "announcement");
    assert_eq!(kinds(&list(&carol).await), ["announcement", "dm"]);
    assert!(kinds(&list(&alice).await).is_empty());
    assert_eq!(
        bob.post("/api/admin/announcements", json!({"title": "x"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        alice
            .post("/api/admin/announcements", json!({"title": ""}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn marking_read_and_privacy() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("r", false).await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;
    for i in 0..3 {
        alice
            .send(&room, &format!("@bob ping {i}"), &format!("p{i}"))
            .await;
    }
    let all = list(&bob).await;
    assert_eq!(all["unread"], 3);
    let ids: Vec<String> = all["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().into())
        .collect();

    // Another user cannot mark (or page through) mine.
    assert_eq!(
        alice
            .post("/api/notifications/read", json!({"ids": [ids[0]]}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        alice
            .get(&format!("/api/notifications?before={}", ids[0]))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(list(&bob).await["unread"], 3, "nothing changed");

    assert_eq!(
        bob.post("/api/notifications/read", json!({"ids": [ids[0]]}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let now = list(&bob).await;
    assert_eq!(now["unread"], 2);
    assert_eq!(now["notifications"][0]["read"], true);
    let (_, unread) = bob.get("/api/notifications?unread_only=true").await;
    assert_eq!(unread["notifications"].as_array().unwrap().len(), 2);
    let (_, page) = bob
        .get(&format!("/api/notifications?before={}&limit=1", ids[0]))
        .await;
    assert_eq!(page["notifications"][0]["id"], ids[1].as_str());

    assert_eq!(
        bob.post("/api/notifications/read", json!({"all": true}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(list(&bob).await["unread"], 0);
    for bad in [
        json!({}),
        json!({"ids": []}),
        json!({"ids": ["nope"]}),
        json!({"all": "yes"}),
    ] {
        assert_eq!(
            bob.post("/api/notifications/read", bad.clone()).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        app.client().get("/api/notifications").await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// The unread count of `room` in `c`'s room list.
async fn room_unread(c: &Client, room: &str) -> i64 {
    let (_, rooms) = c.get("/api/rooms").await;
    rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .expect("listed")["unread"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn reading_a_room_reads_its_mentions_and_dms_and_mark_all_read_reads_their_rooms() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("general", false).await;
    let other = alice.create_room("other", false).await;
    for r in [&room, &other] {
        bob.post_empty(&format!("/api/rooms/{r}/join")).await;
    }
    let (_, dm) = alice.post("/api/dms", json!({"username": "bob"})).await;
    let dm = dm["id"].as_str().unwrap().to_string();

    // A mention in each room and a DM: three unread notifications, three room badges.
    let (_, m1) = alice.send(&room, "@bob look", "m1").await;
    alice.send(&other, "@bob and here", "m2").await;
    alice.send(&dm, "psst", "d1").await;
    assert_eq!(list(&bob).await["unread"], 3);

    // Opening the room (its read position) reads its mention, and only that; a `read` event
    // tells bob's other clients.
    let (_, first) = bob.get("/api/live/poll?feeds=notifications&wait=0").await;
    let cursor = first["cursor"].as_i64().unwrap();
    let (status, _) = bob
        .post(
            &format!("/api/rooms/{room}/read"),
            json!({"message_id": m1["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let after = list(&bob).await;
    assert_eq!(after["unread"], 2, "{after}");
    assert!(after["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["read"]
            == (n["link"]
                .as_str()
                .unwrap()
                .starts_with(&format!("/rooms/{room}")))));
    let (_, events) = bob
        .get(&format!(
            "/api/live/poll?feeds=notifications&cursor={cursor}&wait=0"
        ))
        .await;
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "read"),
        "{events}"
    );
    // Reading it again with nothing unread writes nothing.
    let (_, before) = bob.get("/api/live/poll?feeds=notifications&wait=0").await;
    bob.post(
        &format!("/api/rooms/{room}/read"),
        json!({"message_id": m1["id"]}),
    )
    .await;
    let (_, again) = bob.get("/api/live/poll?feeds=notifications&wait=0").await;
    assert_eq!(before["cursor"], again["cursor"]);

    // Mark all read: the bell and the badges of the rooms they were in agree.
    assert_eq!(room_unread(&bob, &other).await, 1);
    assert_eq!(room_unread(&bob, &dm).await, 1);
    let (status, _) = bob
        .post("/api/notifications/read", json!({"all": true}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(list(&bob).await["unread"], 0);
    assert_eq!(room_unread(&bob, &other).await, 0);
    assert_eq!(room_unread(&bob, &dm).await, 0);
}
