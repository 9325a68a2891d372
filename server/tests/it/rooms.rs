use crate::common::{Live, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn public_rooms_are_listed_and_joinable() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("general", false).await;

    let (_, list) = bob.get("/api/rooms").await;
    let seen = &list["rooms"].as_array().unwrap()[0];
    assert_eq!(seen["id"], room.as_str());
    assert_eq!(seen["is_member"], false);
    // A public room can be read before joining, but not written.
    assert_eq!(
        bob.get(&format!("/api/rooms/{room}/messages")).await.0,
        StatusCode::OK
    );
    assert_eq!(bob.send(&room, "hi", "b1").await.0, StatusCode::FORBIDDEN);

    assert_eq!(
        bob.post_empty(&format!("/api/rooms/{room}/join")).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, list) = bob.get("/api/rooms").await;
    assert_eq!(list["rooms"][0]["is_member"], true);
    assert_eq!(bob.send(&room, "hi", "b1").await.0, StatusCode::CREATED);

    assert_eq!(
        bob.post_empty(&format!("/api/rooms/{room}/leave")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bob.send(&room, "again", "b2").await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn private_rooms_are_invisible_to_non_members_until_invited() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let eve = app.client();
    eve.signup("eve").await;
    let room = alice.create_room("secret", true).await;
    alice.send(&room, "the plan", "a1").await;

    let (_, list) = eve.get("/api/rooms").await;
    assert!(
        list["rooms"].as_array().unwrap().is_empty(),
        "not listed: {list}"
    );
    for (status, body) in [
        eve.get(&format!("/api/rooms/{room}/messages")).await,
        eve.send(&room, "let me in", "e1").await,
        eve.post_empty(&format!("/api/rooms/{room}/join")).await,
        eve.post(
            &format!("/api/rooms/{room}/invite"),
            json!({"username": "eve"}),
        )
        .await,
    ] {
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
            "non-member refused: {status} {body}"
        );
    }

    let (status, _) = alice
        .post(
            &format!("/api/rooms/{room}/invite"),
            json!({"username": "eve"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = eve.get("/api/rooms").await;
    assert_eq!(
        list["rooms"][0]["id"],
        room.as_str(),
        "an invite shows the room"
    );
    assert_eq!(list["rooms"][0]["is_member"], false);
    assert_eq!(
        eve.get(&format!("/api/rooms/{room}/messages")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        eve.post_empty(&format!("/api/rooms/{room}/join")).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, history) = eve.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["messages"][0]["body"], "the plan");

    let (status, _) = alice
        .post(
            &format!("/api/rooms/{room}/invite"),
            json!({"username": "nobody"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_dm_is_one_private_room_per_pair() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    let a = alice.signup("alice").await;
    let bob = app.client();
    let b = bob.signup("bob").await;
    let carol = app.client();
    carol.signup("carol").await;

    let (status, room) = alice.post("/api/dms", json!({"username": "bob"})).await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_eq!(room["private"], true);
    assert_eq!(room["dm_with"]["id"], b.id.as_str());
    let (status, again) = bob.post("/api/dms", json!({"username": "Alice"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], room["id"]);
    assert_eq!(again["dm_with"]["id"], a.id.as_str());

    let id = room["id"].as_str().unwrap();
    assert_eq!(bob.send(id, "hey", "b1").await.0, StatusCode::CREATED);
    assert!(matches!(
        carol.get(&format!("/api/rooms/{id}/messages")).await.0,
        StatusCode::NOT_FOUND | StatusCode::FORBIDDEN
    ));
    let (status, _) = alice
        .post(
            &format!("/api/rooms/{id}/invite"),
            json!({"username": "carol"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a DM stays two people");
    assert_eq!(
        alice.post("/api/dms", json!({"username": "alice"})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        alice.post("/api/dms", json!({"username": "ghost"})).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn room_input_is_checked() {
    let app = TestApp::spawn().await;
    let c = app.client();
    c.signup("alice").await;
    for name in ["", "   ", &"x".repeat(81)] {
        let (status, body) = c.post("/api/rooms", json!({"name": name})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "invalid_name");
    }
    let (status, body) = c
        .post("/api/rooms", json!({"name": "ok", "private": "yes"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_json");
    let (status, _) = c.post_empty("/api/rooms/not-a-uuid/join").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = c
        .post_empty(&format!("/api/rooms/{}/join", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = c.get("/api/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let r = c.http.delete(c.url("/api/rooms")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    // Not signed in: 401 everywhere.
    let anon = app.client();
    assert_eq!(anon.get("/api/rooms").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anon.post("/api/rooms", json!({"name": "x"})).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_poll_sees_a_room_from_the_moment_of_joining_and_not_after_leaving() {
    // Polls open a subscription per request from cached memberships: joining and leaving must
    // show at once.
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("cache", false).await;
    let (_, first) = bob.get("/api/live/poll?feeds=chat&wait=0").await;
    let mut cursor = first["cursor"].as_i64().unwrap();
    let messages = |v: &serde_json::Value| -> Vec<String> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "message")
            .map(|e| e["data"]["body"].as_str().unwrap().to_string())
            .collect()
    };
    alice.send(&room, "before", "c1").await;
    let (_, a) = bob
        .get(&format!("/api/live/poll?feeds=chat&wait=0&cursor={cursor}"))
        .await;
    assert!(messages(&a).is_empty(), "not a member yet: {a}");
    cursor = a["cursor"].as_i64().unwrap();

    bob.post_empty(&format!("/api/rooms/{room}/join")).await;
    alice.send(&room, "member now", "c2").await;
    let (_, b) = bob
        .get(&format!("/api/live/poll?feeds=chat&wait=0&cursor={cursor}"))
        .await;
    assert_eq!(messages(&b), vec!["member now"], "{b}");
    cursor = b["cursor"].as_i64().unwrap();

    bob.post_empty(&format!("/api/rooms/{room}/leave")).await;
    alice.send(&room, "gone", "c3").await;
    let (_, c) = bob
        .get(&format!("/api/live/poll?feeds=chat&wait=0&cursor={cursor}"))
        .await;
    assert!(messages(&c).is_empty(), "left: {c}");
}

#[tokio::test]
async fn a_new_public_room_reaches_everyone_live_on_every_transport() {
    use crate::common::TRANSPORTS;
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    for transport in TRANSPORTS {
        let (_, first) = bob.get("/api/live/poll?feeds=chat&wait=0").await;
        let before = first["cursor"].as_i64().expect("cursor");
        let mut live = Live::open(&bob, transport, "chat", Some(before)).await;
        // A private room is nobody else's business; the public one reaches bob, who is no
        // member of either.
        alice
            .create_room(&format!("secret-{transport}"), true)
            .await;
        let open = alice.create_room(&format!("open-{transport}"), false).await;
        let ev = live.next_stored().await.expect("an event");
        assert_eq!(ev.kind, "room_created", "{transport}: {ev:?}");
        assert_eq!(ev.data["id"], open.as_str(), "{transport}");
        assert_eq!(ev.data["name"], format!("open-{transport}"));
        assert_eq!(ev.data["is_member"], false);
        assert_eq!(ev.data["private"], false);
        // It is in the log: a client resuming from before it gets it too.
        let mut resumed = Live::open(&bob, transport, "chat", Some(before)).await;
        let again = resumed.next_stored().await.expect("replayed");
        assert_eq!((again.kind.as_str(), again.id), ("room_created", ev.id));
    }
    // The creator's own feed holds the membership (as a member) and the announcement.
    let (_, mine) = alice.get("/api/live/poll?feeds=chat&cursor=0&wait=0").await;
    let kinds: Vec<&str> = mine["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "room_created").count(), 4);
    assert_eq!(kinds.iter().filter(|k| **k == "membership").count(), 8);
}

#[tokio::test]
async fn a_second_public_room_with_the_same_name_is_refused_whatever_the_case() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let first = alice.create_room("Lobby", false).await;
    for name in ["Lobby", "lobby", "  LOBBY "] {
        let (status, err) = bob
            .post("/api/rooms", json!({"name": name, "private": false}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{name}: {err}");
        assert_eq!(err["error"]["code"], "room_name_taken");
        let message = err["error"]["message"].as_str().unwrap();
        assert_eq!(
            message,
            "There is already a public room called “Lobby”. Join it, or pick another name.",
            "a clear message naming the room there is"
        );
    }
    // Private rooms may share a name (nobody else sees them), and the public one is unchanged.
    let (status, _) = bob
        .post("/api/rooms", json!({"name": "lobby", "private": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = alice
        .post("/api/rooms", json!({"name": "Lobby 2", "private": false}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = bob.get("/api/rooms").await;
    let public: Vec<_> = list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["private"] == false)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(public.len(), 2);
    assert!(public.contains(&first));
}

#[tokio::test]
async fn the_race_room_is_the_users_own_and_nobody_else_receives_its_bursts() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let (status, room) = alice.post_empty("/api/race/room").await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_eq!(room["name"], "race-alice");
    assert_eq!(room["private"], true);
    assert_eq!(room["is_member"], true);
    let race = room["id"].as_str().unwrap().to_string();
    // Reused next time.
    let (status, again) = alice.post_empty("/api/race/room").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], race.as_str());

    // Bob listens to every chat event he may see; a public room he is in is the barrier.
    let open = alice.create_room("open", false).await;
    assert_eq!(
        bob.post_empty(&format!("/api/rooms/{open}/join")).await.0,
        StatusCode::NO_CONTENT
    );
    let mut live = Live::open(&bob, "websocket", "chat", None).await;
    for i in 1..=10 {
        let (status, m) = alice
            .send(&race, &format!("race {i}/10"), &format!("r{i}"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{m}");
    }
    alice.send(&open, "after the race", "b1").await;
    loop {
        let ev = live.next_stored().await.expect("bob's events");
        if ev.kind == "message" {
            assert_eq!(
                ev.data["body"], "after the race",
                "bob receives no race message: {:?}",
                ev.data
            );
            break;
        }
    }
    let (_, list) = bob.get("/api/rooms").await;
    assert!(
        list["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"] != race.as_str()),
        "not listed to others: {list}"
    );
    assert_eq!(
        bob.get(&format!("/api/rooms/{race}/messages")).await.0,
        StatusCode::NOT_FOUND
    );

    // Once someone else is in it, it is no longer a race room: a new one is made.
    alice
        .post(
            &format!("/api/rooms/{race}/invite"),
            json!({"username": "bob"}),
        )
        .await;
    let (status, fresh) = alice.post_empty("/api/race/room").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(fresh["id"], race.as_str());
}

#[tokio::test]
async fn inviting_or_messaging_nobody_names_who_was_looked_for() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("den", true).await;
    for (path, body) in [
        (
            format!("/api/rooms/{room}/invite"),
            json!({"username": "Zed"}),
        ),
        ("/api/dms".to_string(), json!({"username": "zed"})),
    ] {
        let (status, err) = alice.post(&path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {err}");
        assert_eq!(err["error"]["code"], "not_found");
        assert_eq!(err["error"]["message"], "Nobody is called zed.");
    }
}
