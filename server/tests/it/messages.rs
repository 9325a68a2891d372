use crate::common::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn bodies(v: &Value) -> Vec<String> {
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn history_pages_backwards_oldest_first() {
    let app = TestApp::spawn().await;
    let c = app.client();
    c.signup("alice").await;
    let room = c.create_room("busy", false).await;
    for i in 1..=120 {
        let (status, m) = c.send(&room, &format!("m{i}"), &format!("c{i}")).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(m["seq"], i);
    }
    let (_, page) = c.get(&format!("/api/rooms/{room}/messages")).await;
    let got = bodies(&page);
    assert_eq!(got.len(), 50, "default page");
    assert_eq!(got.first().unwrap(), "m71");
    assert_eq!(got.last().unwrap(), "m120");

    let first = page["messages"][0]["id"].as_str().unwrap();
    let (_, older) = c
        .get(&format!(
            "/api/rooms/{room}/messages?before={first}&limit=100"
        ))
        .await;
    let got = bodies(&older);
    assert_eq!(got.len(), 70);
    assert_eq!(got.first().unwrap(), "m1");
    assert_eq!(got.last().unwrap(), "m70");

    for bad in ["limit=0", "limit=101", "limit=abc", "before=nope"] {
        let (status, body) = c.get(&format!("/api/rooms/{room}/messages?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, _) = c
        .get(&format!(
            "/api/rooms/{room}/messages?before={}",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sends_are_idempotent_per_client_id() {
    let app = TestApp::spawn().await;
    let c = app.client();
    c.signup("alice").await;
    let room = c.create_room("r", false).await;
    let (s1, first) = c.send(&room, "once", "same-id").await;
    let (s2, second) = c.send(&room, "once", "same-id").await;
    assert_eq!(s1, StatusCode::CREATED);
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(first, second, "the retry returns the first message");
    let (_, page) = c.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(bodies(&page), vec!["once"]);
}

#[tokio::test]
async fn message_bodies_are_checked() {
    let app = TestApp::spawn().await;
    let c = app.client();
    c.signup("alice").await;
    let room = c.create_room("r", false).await;
    let (status, body) = c.send(&room, "   \n ", "c1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_body");
    let (status, body) = c.send(&room, &"x".repeat(4001), "c2").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "too_large");
    assert_eq!(
        c.send(&room, &"é".repeat(4000), "c3").await.0,
        StatusCode::CREATED
    );
    let (status, _) = c.send(&room, "hi", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = c
        .post(&format!("/api/rooms/{room}/messages"), json!({"body": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = c
        .post_raw(
            &format!("/api/rooms/{room}/messages"),
            "application/json",
            &format!(
                "{{\"body\":\"{}\",\"client_id\":\"big\"}}",
                "y".repeat(70_000)
            ),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, _) = c.send(&uuid::Uuid::new_v4().to_string(), "hi", "c4").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn read_positions_drive_unread_counts() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("r", false).await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;
    let mut last = Value::Null;
    for i in 0..3 {
        last = alice
            .send(&room, &format!("n{i}"), &format!("k{i}"))
            .await
            .1;
    }
    let unread = |v: &Value| v["rooms"][0]["unread"].as_i64().unwrap();
    assert_eq!(unread(&bob.get("/api/rooms").await.1), 3);
    assert_eq!(
        unread(&alice.get("/api/rooms").await.1),
        0,
        "my own messages are read"
    );
    let (_, page) = bob.get(&format!("/api/rooms/{room}/messages")).await;
    let second = page["messages"][1]["id"].as_str().unwrap();
    assert_eq!(
        bob.post(
            &format!("/api/rooms/{room}/read"),
            json!({"message_id": second})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(unread(&bob.get("/api/rooms").await.1), 1);
    bob.post(
        &format!("/api/rooms/{room}/read"),
        json!({"message_id": last["id"]}),
    )
    .await;
    assert_eq!(unread(&bob.get("/api/rooms").await.1), 0);
    let (status, _) = bob
        .post(
            &format!("/api/rooms/{room}/read"),
            json!({"message_id": "zzz"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Many concurrent senders go through the group-commit writer: each send is acknowledged once,
/// racing retries of one client id store one message, and the live feed carries exactly the
/// acknowledged messages in id order.
#[tokio::test]
async fn concurrent_sends_are_each_committed_once_in_order() {
    let app = TestApp::spawn().await;
    let c = app.client();
    c.signup("alice").await; // the first user: an admin, for the writer's counters
    let room = c.create_room("busy", false).await;
    let mut ws = c.ws("?feeds=chat").await;
    ws.hello().await;

    const DISTINCT: usize = 100;
    const RACED: usize = 10;
    let mut sends = Vec::new();
    for i in 0..DISTINCT {
        // The first RACED client ids are sent twice at once.
        let copies = if i < RACED { 2 } else { 1 };
        for _ in 0..copies {
            let (c, room) = (c.clone_session(), room.clone());
            sends.push(tokio::spawn(async move {
                let (status, body) = c.send(&room, &format!("m{i}"), &format!("cid-{i}")).await;
                (i, status, body)
            }));
        }
    }
    let mut acked: std::collections::BTreeMap<usize, Vec<(StatusCode, Value)>> = Default::default();
    for s in sends {
        let (i, status, body) = s.await.expect("send task");
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status} {body}"
        );
        acked.entry(i).or_default().push((status, body));
    }
    let mut event_ids = Vec::new();
    for (i, answers) in &acked {
        let created = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        assert_eq!(
            created, 1,
            "exactly one send of cid-{i} created it: {answers:?}"
        );
        let first = &answers[0].1;
        for (_, other) in answers {
            assert_eq!(
                other["id"], first["id"],
                "retries answer with the first message"
            );
        }
        event_ids.push(first["event_id"].as_i64().expect("event_id"));
    }
    event_ids.sort_unstable();

    let mut seen = Vec::new();
    while seen.len() < DISTINCT {
        let ev = ws.next_of("message").await;
        seen.push(ev.id.expect("stored event id"));
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "live order is id order: {seen:?}"
    );
    assert_eq!(
        seen, event_ids,
        "the feed carries exactly the acknowledged messages"
    );

    let (_, page) = c
        .get(&format!("/api/rooms/{room}/messages?limit=100"))
        .await;
    assert_eq!(
        bodies(&page).len(),
        DISTINCT,
        "history holds each message once"
    );

    let (status, metrics) = c.get("/api/admin/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        metrics["writer"]["messages"].as_u64(),
        Some((DISTINCT + RACED) as u64),
        "every send went through the writer: {}",
        metrics["writer"]
    );
}
