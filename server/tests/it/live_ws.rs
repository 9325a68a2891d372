use crate::common::{Frame, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn two_clients_in_a_room_see_the_same_events() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("general", false).await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;

    let mut a = alice.ws("?feeds=chat").await;
    let mut b = bob.ws("?feeds=chat").await;
    a.hello().await;
    b.hello().await;

    a.send_json(json!({"type": "send", "room_id": room, "body": "hello bob", "client_id": "a-1"}))
        .await;
    let ack = a.next_of("ack").await;
    assert_eq!(ack.data["client_id"], "a-1");
    let acked_event_id = ack.data["message"]["event_id"].as_i64().unwrap();

    let at_bob = b.next_of("message").await;
    assert_eq!(at_bob.data["body"], "hello bob");
    assert_eq!(at_bob.data["author"]["username"], "alice");
    let at_alice = a.next_of("message").await;
    assert_eq!(at_alice.id, at_bob.id, "both see the same event id");
    assert_eq!(at_bob.id, Some(acked_event_id));

    // A send over HTTP reaches both sockets too.
    bob.send(&room, "hi alice", "b-1").await;
    assert_eq!(a.next_of("message").await.data["body"], "hi alice");
    assert_eq!(b.next_of("message").await.data["body"], "hi alice");

    // Typing is delivered to the others, with no id.
    a.send_json(json!({"type": "typing", "room_id": room}))
        .await;
    let typing = b.next_of("typing").await;
    assert_eq!(typing.id, None);
    assert_eq!(typing.data["user"]["username"], "alice");
}

#[tokio::test]
async fn reconnecting_with_a_cursor_replays_exactly_the_missed_messages() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("general", false).await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;

    let mut b = bob.ws("?feeds=chat").await;
    b.hello().await;
    alice.send(&room, "one", "c1").await;
    let one = b.next_of("message").await;
    let cursor = one.id.unwrap();
    b.close().await;

    for (i, body) in ["two", "three", "four"].iter().enumerate() {
        alice.send(&room, body, &format!("c{}", i + 2)).await;
    }
    let mut b = bob.ws(&format!("?feeds=chat&cursor={cursor}")).await;
    b.hello().await;
    let mut got = Vec::new();
    let mut last = cursor;
    for _ in 0..3 {
        let ev = b.next_of("message").await;
        assert!(ev.id.unwrap() > last, "in id order, no duplicate");
        last = ev.id.unwrap();
        got.push(ev.data["body"].as_str().unwrap().to_string());
    }
    assert_eq!(got, ["two", "three", "four"]);
    // Nothing more was replayed: the next event is the next live one.
    alice.send(&room, "five", "c5").await;
    assert_eq!(b.next_of("message").await.data["body"], "five");
}

#[tokio::test]
async fn a_cursor_only_replays_what_the_user_may_see() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let secret = alice.create_room("secret", true).await;
    let open = alice.create_room("open", false).await;
    bob.post_empty(&format!("/api/rooms/{open}/join")).await;
    alice.send(&secret, "private words", "s1").await;
    alice.send(&open, "public words", "p1").await;
    let mut b = bob.ws("?feeds=chat&cursor=0").await;
    b.hello().await;
    let msg = b.next_of("message").await;
    assert_eq!(msg.data["body"], "public words");
}

#[tokio::test]
async fn sending_over_the_socket_is_idempotent_and_checked() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("r", false).await;
    let mut a = alice.ws("?feeds=chat").await;
    a.hello().await;
    let frame = json!({"type": "send", "room_id": room, "body": "once", "client_id": "dup"});
    a.send_json(frame.clone()).await;
    let first = a.next_of("ack").await;
    a.send_json(frame).await;
    let second = a.next_of("ack").await;
    assert_eq!(first.data["message"]["id"], second.data["message"]["id"]);

    a.send_json(json!({"type": "send", "room_id": room, "body": " ", "client_id": "e1"}))
        .await;
    let err = a.next_of("error").await;
    assert_eq!(err.data["client_id"], "e1");
    assert_eq!(err.data["code"], "invalid_body");
    a.send_text("not json".into()).await;
    assert_eq!(a.next_of("error").await.data["code"], "invalid_frame");
    a.send_json(json!({"type": "launch_missiles"})).await;
    assert_eq!(a.next_of("error").await.data["code"], "invalid_frame");

    // A reply over the socket: the root's thread grows as over HTTP, and a reply to a message
    // of another room is refused by name.
    let root = first.data["message"]["id"].as_str().unwrap().to_string();
    a.send_json(json!({"type": "send", "room_id": room, "body": "answer", "client_id": "r1", "reply_to": root}))
        .await;
    let reply = a.next_of("ack").await;
    assert_eq!(reply.data["message"]["reply_to"]["id"], root.as_str());
    assert_eq!(reply.data["message"]["reply_to"]["excerpt"], "once");
    let (_, thread) = alice
        .get(&format!("/api/rooms/{room}/messages/{root}/thread"))
        .await;
    assert_eq!(thread["root"]["reply_count"], 1, "{thread}");
    let other = alice.create_room("other", false).await;
    a.send_json(json!({"type": "send", "room_id": other, "body": "lost", "client_id": "r2", "reply_to": root}))
        .await;
    let err = a.next_of("error").await;
    assert_eq!(err.data["client_id"], "r2");
    assert_eq!(err.data["status"], 404, "{err:?}");

    let (_, page) = alice.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn oversized_frames_close_with_1009() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let mut a = alice.ws("").await;
    a.hello().await;
    a.send_text("x".repeat(200 * 1024)).await;
    loop {
        match a.next_frame().await {
            Frame::Closed(code) => {
                assert_eq!(code, Some(1009));
                break;
            }
            Frame::Event(_) => continue,
        }
    }
}

#[tokio::test]
async fn the_socket_refuses_strangers_and_bad_queries() {
    let app = TestApp::spawn().await;
    let anon = app.client();
    let err = anon.try_ws("", None).await.err().expect("refused");
    assert!(
        matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == StatusCode::UNAUTHORIZED),
        "{err:?}"
    );

    let alice = app.client();
    alice.signup("alice").await;
    let err = alice
        .try_ws("", Some("http://evil.example"))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == StatusCode::FORBIDDEN),
        "{err:?}"
    );
    let same = format!("http://{}", app.addr);
    assert!(
        alice.try_ws("", Some(&same)).await.is_ok(),
        "same origin is fine"
    );

    for q in ["?cursor=-1", "?cursor=abc", "?feeds=bogus"] {
        let err = alice.try_ws(q, None).await.err().expect("refused");
        assert!(
            matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == StatusCode::BAD_REQUEST),
            "{q}: {err:?}"
        );
    }
    // Plain HTTP to the socket route is a clear 400, not a hang.
    let (status, body) = alice.get("/api/live/ws").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "websocket_required");
}

#[tokio::test]
async fn membership_changes_reach_the_open_socket() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let mut b = bob.ws("?feeds=chat").await;
    b.hello().await;
    let room = alice.create_room("later", false).await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;
    let joined = b.next_of("membership").await;
    assert_eq!(joined.data["change"], "joined");
    assert_eq!(joined.data["room"]["id"], room.as_str());
    // Joined after connecting: the socket now carries the room.
    alice.send(&room, "welcome", "w1").await;
    assert_eq!(b.next_of("message").await.data["body"], "welcome");
}
