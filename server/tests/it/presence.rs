//! Presence and typing cannot be used to flood others (issue 19, item 2): both are rate-limited
//! per user, presence changes are coalesced, and presence goes only to people who share a room
//! (or a DM) with its subject, on every transport and in `GET /api/presence`.

use crate::common::{Client, Frame, Live, TestApp, TRANSPORTS};
use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::json;

/// Alice and Bob in one room; Carol on her own in another; Dave shares only a DM with Alice.
async fn people(app: &TestApp) -> (Client, Client, Client, Client) {
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let carol = app.client();
    carol.signup("carol").await;
    let dave = app.client();
    dave.signup("dave").await;
    let room = alice.create_room("shared", false).await;
    assert_eq!(
        bob.post_empty(&format!("/api/rooms/{room}/join")).await.0,
        StatusCode::NO_CONTENT
    );
    carol.create_room("carols own", false).await;
    let (status, body) = dave.post("/api/dms", json!({"username": "alice"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (alice, bob, carol, dave)
}

/// Reads `live` until a presence event about `who` with `status` comes; returns every presence
/// subject seen on the way (that one included).
async fn presence_until(live: &mut Live, who: &str, status: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let ev = live
            .next()
            .await
            .expect("an event before the connection ends");
        if ev.kind != "presence" {
            continue;
        }
        let name = ev.data["user"]["username"].as_str().unwrap().to_string();
        seen.push(name.clone());
        if name == who && ev.data["status"] == status {
            return seen;
        }
    }
}

/// The id of the room Alice and Bob share.
async fn shared_room(alice: &Client) -> String {
    let (_, rooms) = alice.get("/api/rooms").await;
    rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "shared")
        .expect("the shared room")["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn names(snapshot: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = snapshot["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["user"]["username"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn presence_goes_only_to_people_who_share_a_room_on_every_transport() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol, dave) = people(&app).await;
    let mut alice_idle = false;
    let mut carol_idle = false;
    // Alice is online through a socket of her own for the whole test.
    let _alice_ws = alice.ws("?feeds=chat").await;
    for transport in TRANSPORTS {
        let mut bob_live = Live::open(&bob, transport, "chat", None).await;
        let mut dave_live = Live::open(&dave, transport, "chat", None).await;
        let mut carol_live = Live::open(&carol, transport, "chat", None).await;
        // Alice changes; Bob (a room) and Dave (a DM) hear of it.
        alice_idle = !alice_idle;
        let status = if alice_idle { "idle" } else { "online" };
        assert_eq!(
            alice
                .post("/api/presence", json!({"status": status}))
                .await
                .0,
            StatusCode::NO_CONTENT
        );
        presence_until(&mut bob_live, "alice", status).await;
        presence_until(&mut dave_live, "alice", status).await;
        // Then Carol changes: she hears of herself, and of Alice never (Alice's change went
        // out before hers, so it would have come first).
        carol_idle = !carol_idle;
        let own = if carol_idle { "idle" } else { "online" };
        assert_eq!(
            carol.post("/api/presence", json!({"status": own})).await.0,
            StatusCode::NO_CONTENT
        );
        let seen = presence_until(&mut carol_live, "carol", own).await;
        println!("{transport}: carol saw presence of {seen:?}");
        assert!(
            seen.iter().all(|n| n == "carol"),
            "{transport}: carol shares no room with anyone, yet saw {seen:?}"
        );
    }
    // The list agrees: only people I share a room with, and myself.
    let (_, snap) = carol.get("/api/presence").await;
    assert_eq!(names(&snap), ["carol"], "{snap}");
    let (_, snap) = bob.get("/api/presence").await;
    assert!(names(&snap).contains(&"alice".to_string()), "{snap}");
    assert!(!names(&snap).contains(&"carol".to_string()), "{snap}");
    let (_, snap) = dave.get("/api/presence").await;
    assert!(names(&snap).contains(&"alice".to_string()), "{snap}");
    assert!(!names(&snap).contains(&"carol".to_string()), "{snap}");
}

#[tokio::test]
async fn a_presence_and_typing_flood_reaches_a_watcher_as_a_bounded_trickle() {
    const LIMIT: u32 = 20;
    const FRAMES: usize = 3000;
    let app = TestApp::spawn_configured(|c| {
        c.typing_per_user_per_minute = LIMIT;
        c.presence_per_user_per_minute = LIMIT;
        c.flood_close_after = 0;
    })
    .await;
    let (alice, bob, _, _) = people(&app).await;
    let room = shared_room(&alice).await;
    let mut watcher = bob.ws("?feeds=chat").await;
    watcher.hello().await;
    let mut flooder = alice.ws("?feeds=chat").await;
    flooder.hello().await;
    let mut watch = Live::Ws(watcher);
    presence_until(&mut watch, "alice", "online").await;
    for i in 0..FRAMES {
        let frame = match i % 3 {
            0 => json!({"type": "presence", "status": "idle"}),
            1 => json!({"type": "presence", "status": "online"}),
            _ => json!({"type": "typing", "room_id": room}),
        };
        flooder.send_json(frame).await;
    }
    // Frames of one socket are handled in order: when this message arrives, every frame of
    // the flood was handled.
    flooder
        .send_json(
            json!({"type": "send", "room_id": room, "body": "after the flood", "client_id": "end"}),
        )
        .await;
    let (mut presence, mut typing) = (0, 0);
    loop {
        let ev = watch.next().await.expect("an event");
        match ev.kind.as_str() {
            "presence" if ev.data["user"]["username"] == "alice" => presence += 1,
            "typing" if ev.data["user"]["username"] == "alice" => typing += 1,
            "message" if ev.data["body"] == "after the flood" => break,
            _ => {}
        }
    }
    println!(
        "{FRAMES} frames sent; the watcher got {presence} presence and {typing} typing events"
    );
    assert!(typing <= LIMIT as usize, "{typing} typing events");
    assert!(presence <= LIMIT as usize, "{presence} presence events");
    // The flooder is still connected (no ceiling set) and the server still answers it.
    flooder
        .send_json(
            json!({"type": "send", "room_id": room, "body": "still here", "client_id": "again"}),
        )
        .await;
    while flooder.next_of("ack").await.data["client_id"] != "again" {}
    // Over HTTP the limits answer 429 with Retry-After.
    let r = alice
        .http
        .post(alice.url("/api/presence"))
        .json(&json!({"status": "idle"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    let (status, body) = alice.post_empty(&format!("/api/rooms/{room}/typing")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn a_socket_that_keeps_flooding_past_the_ceiling_is_closed_with_1008() {
    let app = TestApp::spawn_configured(|c| {
        c.presence_per_user_per_minute = 5;
        c.flood_close_after = 50;
    })
    .await;
    let alice = app.client();
    alice.signup("alice").await;
    let mut ws = alice.ws("?feeds=chat").await;
    ws.hello().await;
    for _ in 0..200 {
        // The server may close mid-flood; later sends can fail, which is the point.
        if ws
            .stream
            .send(tokio_tungstenite::tungstenite::Message::Text(
                json!({"type": "presence", "status": "idle"})
                    .to_string()
                    .into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    loop {
        match ws.next_frame().await {
            Frame::Event(_) => continue,
            Frame::Closed(code) => {
                assert_eq!(code, Some(protocol::close::POLICY));
                break;
            }
        }
    }
}

#[tokio::test]
async fn presence_changes_are_coalesced_per_user() {
    const FRAMES: usize = 2000;
    // No rate limit here: only coalescing stands between the flips and the watcher.
    let app = TestApp::spawn_configured(|c| c.presence_coalesce_ms = 500).await;
    let (alice, bob, _, _) = people(&app).await;
    let mut watch = Live::open(&bob, "websocket", "chat", None).await;
    let mut flooder = alice.ws("?feeds=chat").await;
    flooder.hello().await;
    presence_until(&mut watch, "alice", "online").await;
    for i in 0..FRAMES {
        let status = if i % 2 == 0 { "idle" } else { "online" };
        flooder
            .send_json(json!({"type": "presence", "status": status}))
            .await;
    }
    // Then one last, different, state: idle. Every flip before it was handled when the
    // watcher hears of it.
    flooder
        .send_json(json!({"type": "presence", "status": "idle"}))
        .await;
    let mut seen = 0;
    let mut last = String::new();
    // The flood ends on "online" then "idle": wait for idle after everything was handled,
    // which a message sent behind the frames marks.
    let room = shared_room(&alice).await;
    flooder
        .send_json(json!({"type": "send", "room_id": room, "body": "done", "client_id": "done"}))
        .await;
    let mut marked = false;
    loop {
        let ev = watch.next().await.expect("an event");
        if ev.kind == "message" && ev.data["body"] == "done" {
            marked = true;
        }
        if ev.kind == "presence" && ev.data["user"]["username"] == "alice" {
            seen += 1;
            last = ev.data["status"].as_str().unwrap().to_string();
        }
        if marked && last == "idle" {
            break;
        }
    }
    println!("{FRAMES} flips; the watcher got {seen} presence events");
    assert!(seen <= 100, "{seen} presence events for {FRAMES} flips");
}

#[tokio::test]
async fn people_who_come_to_share_a_room_learn_each_others_presence() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("later", false).await;
    // Both online, sharing nothing yet.
    let mut alice_ws = Live::open(&alice, "websocket", "chat", None).await;
    let mut bob_ws = Live::open(&bob, "websocket", "chat", None).await;
    presence_until(&mut alice_ws, "alice", "online").await;
    presence_until(&mut bob_ws, "bob", "online").await;
    let (_, snap) = alice.get("/api/presence").await;
    assert_eq!(names(&snap), ["alice"], "{snap}");
    // Bob joins Alice's room: each hears of the other.
    assert_eq!(
        bob.post_empty(&format!("/api/rooms/{room}/join")).await.0,
        StatusCode::NO_CONTENT
    );
    presence_until(&mut alice_ws, "bob", "online").await;
    presence_until(&mut bob_ws, "alice", "online").await;
    let (_, snap) = alice.get("/api/presence").await;
    assert_eq!(names(&snap), ["alice", "bob"], "{snap}");
}
