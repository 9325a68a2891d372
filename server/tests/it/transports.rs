//! Every transport is a view over the one log: the same ids, in order, exactly once, across
//! client-side and server-side disconnects and transport switches.

use crate::common::{Client, Frame, Live, TestApp, TRANSPORTS};
use reqwest::StatusCode;
use serde_json::json;

/// Alice (an admin), Bob, and a room both are in.
async fn setup(app: &TestApp) -> (Client, Client, String) {
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("matrix", false).await;
    assert_eq!(
        bob.post_empty(&format!("/api/rooms/{room}/join")).await.0,
        StatusCode::NO_CONTENT
    );
    (alice, bob, room)
}

/// Sends `n` messages; returns their event ids.
async fn send_n(c: &Client, room: &str, tag: &str, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (status, m) = c
            .send(room, &format!("{tag} {i}"), &format!("{tag}-{i}"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{m}");
        ids.push(m["event_id"].as_i64().unwrap());
    }
    ids
}

/// Reads stored events until `n` messages came; returns the message ids. Asserts the ids of all
/// stored events keep increasing (no duplicate, in order) from `after`.
async fn read_messages(live: &mut Live, n: usize, after: &mut i64) -> Vec<i64> {
    let mut ids = Vec::new();
    while ids.len() < n {
        let ev = live
            .next_stored()
            .await
            .expect("an event before the connection ends");
        let id = ev.id.unwrap();
        assert!(id > *after, "ids increase: {id} after {after}");
        *after = id;
        if ev.kind == "message" {
            ids.push(id);
        }
    }
    ids
}

async fn set_switch(admin: &Client, transport: &str, on: bool) {
    let (status, body) = admin
        .put("/api/admin/transports", json!({ transport: on }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Makes `feed` produce events for Bob, and returns once they are committed.
async fn produce(feed: &str, alice: &Client, bob: &Client, room: &str, tag: &str) {
    match feed {
        "chat" => {
            send_n(alice, room, tag, 2).await;
            // A public room of Alice's: its `room_created` reaches Bob, who is not in it.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            alice
                .create_room(&format!("new-{tag}-{nanos}"), false)
                .await;
            // The room's topic changes (`room_updated` to its members), someone joins and
            // leaves (`membership` told to the members), Alice takes a new display name
            // (`user_updated` to everyone).
            let (status, body) = alice
                .patch(
                    &format!("/api/rooms/{room}"),
                    json!({"topic": format!("about {tag}")}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let passer = alice.stranger();
            passer.signup(&format!("passer-{tag}")).await;
            for step in ["join", "leave"] {
                let (status, body) = passer
                    .post_empty(&format!("/api/rooms/{room}/{step}"))
                    .await;
                assert_eq!(status, StatusCode::NO_CONTENT, "{step}: {body}");
            }
            let (status, body) = alice
                .patch("/api/me", json!({"display_name": format!("Alice {tag}")}))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            send_n(alice, room, &format!("{tag}-after"), 1).await;
        }
        "notifications" => {
            for i in 0..3 {
                let (status, _) = alice
                    .send(room, &format!("@bob {tag} {i}"), &format!("{tag}-n{i}"))
                    .await;
                assert_eq!(status, StatusCode::CREATED);
            }
        }
        "jobs" => {
            // Whichever poll is switched on (the test switches transports off on purpose).
            let poll = |cursor: Option<i64>| async move {
                let c = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
                // Where it stands now: at once. Waiting for the event: held until it comes.
                let waits = if cursor.is_some() { [5, 0] } else { [0, 1] };
                for wait in waits {
                    let (status, answer) = bob
                        .get(&format!("/api/live/poll?feeds=jobs&wait={wait}{c}"))
                        .await;
                    if status == StatusCode::OK {
                        return answer;
                    }
                }
                panic!("no poll transport is on");
            };
            let mut cursor = poll(None).await["cursor"].as_i64().unwrap();
            let (status, job) = bob
                .post(
                    "/api/jobs",
                    json!({"kind": "demo", "steps": 2, "step_ms": 10}),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{job}");
            let id = job["id"].as_str().unwrap();
            crate::notifications::wait_job(bob, id).await;
            // Done in the table is not yet published to live readers: wait for the event.
            loop {
                let answer = poll(Some(cursor)).await;
                cursor = answer["cursor"].as_i64().unwrap();
                let done = answer["events"].as_array().unwrap().iter().any(|e| {
                    e["type"] == "job" && e["data"]["id"] == id && e["data"]["state"] == "done"
                });
                if done {
                    break;
                }
            }
        }
        other => panic!("no producer for {other}"),
    }
}

/// What the log holds for Bob on `feed` after `from`: the ids every transport must deliver.
async fn oracle(bob: &Client, feed: &str, from: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut cursor = from;
    loop {
        let (status, body) = bob
            .get(&format!(
                "/api/live/poll?feeds={feed}&cursor={cursor}&wait=0"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer: protocol::PollAnswer = serde_json::from_value(body).unwrap();
        if answer.events.is_empty() {
            return ids;
        }
        ids.extend(
            answer
                .events
                .iter()
                .filter(|e| e.feed.as_str() == feed)
                .filter_map(|e| e.id),
        );
        cursor = answer.cursor;
    }
}

/// Reads until every id of `want` arrived on `feed`; asserts exactly those, in order.
async fn expect_ids(live: &mut Live, feed: &str, want: &[i64], last: &mut i64, ctx: &str) {
    let mut got = Vec::new();
    while got.len() < want.len() {
        let ev = live
            .next_stored()
            .await
            .unwrap_or_else(|| panic!("{ctx}: ended early, got {got:?} of {want:?}"));
        let id = ev.id.unwrap();
        assert!(id > *last, "{ctx}: ids increase ({id} after {last})");
        *last = id;
        if ev.feed.as_str() == feed {
            got.push(id);
        }
    }
    assert_eq!(got, want, "{ctx}: exactly the logged ids, in order");
}

#[tokio::test]
async fn every_feed_over_every_transport_exactly_once_across_disconnects() {
    for feed in ["chat", "notifications", "jobs"] {
        for transport in TRANSPORTS {
            let ctx = format!("{feed} over {transport}");
            let app = TestApp::spawn().await;
            let (alice, bob, room) = setup(&app).await;
            let (_, start) = bob.get("/api/live/poll?wait=0").await;
            let mut last = start["cursor"].as_i64().unwrap();

            // Live delivery.
            let mut live = Live::open(&bob, transport, feed, Some(last)).await;
            let from = last;
            produce(feed, &alice, &bob, &room, "live").await;
            let want = oracle(&bob, feed, from).await;
            assert!(!want.is_empty(), "{ctx}: the producer made events");
            if feed == "chat" {
                let (_, log) = bob
                    .get(&format!("/api/live/poll?feeds=chat&cursor={from}&wait=0"))
                    .await;
                let events = log["events"].as_array().unwrap();
                for kind in ["room_created", "room_updated", "user_updated"] {
                    assert!(
                        events.iter().any(|e| e["type"] == kind),
                        "{ctx}: a {kind} among the ids: {log}"
                    );
                }
                let told = |change: &str| {
                    events.iter().any(|e| {
                        e["type"] == "membership"
                            && e["data"]["change"] == change
                            && e["data"]["user"]["username"] == "passer-live"
                    })
                };
                assert!(
                    told("joined") && told("left"),
                    "{ctx}: the passer's join and leave told to Bob: {log}"
                );
            }
            expect_ids(&mut live, feed, &want, &mut last, &format!("{ctx}, live")).await;

            // Client-side close while events keep coming; resume by cursor.
            drop(live);
            let from = last;
            produce(feed, &alice, &bob, &room, "missed").await;
            let want = oracle(&bob, feed, from).await;
            let mut live = Live::open(&bob, transport, feed, Some(last)).await;
            expect_ids(
                &mut live,
                feed,
                &want,
                &mut last,
                &format!("{ctx}, after client close"),
            )
            .await;

            // Server-side close (the transport switched off), events while away, resume.
            set_switch(&alice, transport, false).await;
            while let Some(ev) = live.next_stored().await {
                assert!(ev.id.unwrap() > last);
                last = ev.id.unwrap();
                assert_eq!(ev.kind, "transport", "{ctx}: only the switch's own event");
            }
            let from = last;
            produce(feed, &alice, &bob, &room, "away").await;
            set_switch(&alice, transport, true).await;
            let want = oracle(&bob, feed, from).await;
            let mut live = Live::open(&bob, transport, feed, Some(last)).await;
            expect_ids(
                &mut live,
                feed,
                &want,
                &mut last,
                &format!("{ctx}, after server close"),
            )
            .await;
            app.stop().await;
        }
    }
}

#[tokio::test]
async fn the_control_feed_carries_my_transport_changes_on_every_transport() {
    let app = TestApp::spawn().await;
    let (_alice, bob, _room) = setup(&app).await;
    for transport in TRANSPORTS {
        let mut live = Live::open(&bob, transport, "notifications", None).await;
        let (status, settings) = bob
            .put("/api/me/transports", json!({"jobs": transport}))
            .await;
        assert_eq!(status, StatusCode::OK, "{settings}");
        let ev = live.next_stored().await.expect("control event");
        assert_eq!(ev.feed, protocol::Feed::Control);
        assert_eq!(ev.kind, "transport");
        assert_eq!(ev.data["effective"]["jobs"], transport);
    }
}

#[tokio::test]
async fn a_cursor_older_than_the_log_gets_resync_on_every_transport() {
    let app = TestApp::spawn_configured(|c| {
        c.event_retention_hours = 0;
        c.prune_every_ms = 20;
    })
    .await;
    let (alice, bob, room) = setup(&app).await;
    send_n(&alice, &room, "old", 3).await;
    // Wait until the pruner has run: a cursor of 0 then asks for pruned events.
    let deadline = tokio::time::Instant::now() + crate::common::WAIT;
    loop {
        let (_, body) = bob.get("/api/live/poll?feeds=chat&cursor=0&wait=0").await;
        if body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "resync")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "pruning happened");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for transport in TRANSPORTS {
        let mut live = Live::open(&bob, transport, "chat", Some(0)).await;
        let ev = live.next().await.expect("an event");
        assert_eq!(ev.kind, "resync", "{transport}");
        assert_eq!(ev.id, None);
    }
    // A cursor from the future (another database) is refused the same way.
    let mut live = Live::open(&bob, "websocket", "chat", Some(1_000_000)).await;
    assert_eq!(live.next().await.unwrap().kind, "resync");
}

#[tokio::test]
async fn switching_transports_mid_stream_loses_and_repeats_nothing() {
    let app = TestApp::spawn().await;
    let (alice, bob, room) = setup(&app).await;
    let mut live = Live::open(&bob, "websocket", "chat", None).await;
    let sender = {
        let alice = alice.clone_session();
        let room = room.clone();
        tokio::spawn(async move { send_n(&alice, &room, "flow", 200).await })
    };
    let mut last = 0;
    let mut got = Vec::new();
    for next in ["long_poll", "sse", "short_poll"] {
        got.extend(read_messages(&mut live, 50, &mut last).await);
        // Open the new transport from the last id, then drop the old one.
        let new = Live::open(&bob, next, "chat", Some(last)).await;
        drop(std::mem::replace(&mut live, new));
    }
    got.extend(read_messages(&mut live, 50, &mut last).await);
    let sent = sender.await.unwrap();
    assert_eq!(got, sent, "all 200 exactly once, in order");
}

#[tokio::test]
async fn disabling_websocket_closes_sockets_and_refuses_new_ones() {
    let app = TestApp::spawn().await;
    let (alice, bob, _room) = setup(&app).await;
    let mut ws = bob.ws("?feeds=chat").await;
    ws.hello().await;
    set_switch(&alice, "websocket", false).await;
    loop {
        match ws.next_frame().await {
            Frame::Closed(code) => {
                assert_eq!(code, Some(protocol::close::TRANSPORT_DISABLED));
                break;
            }
            Frame::Event(_) => {}
        }
    }
    let err = bob.try_ws("", None).await.err().expect("refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => {
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            let body: serde_json::Value =
                serde_json::from_slice(r.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "transport_disabled");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    let (_, mine) = bob.get("/api/me/transports").await;
    assert_eq!(mine["chat"], "websocket", "my choice stays");
    assert_eq!(
        mine["effective"]["chat"], "sse",
        "but I fall back to the next one on"
    );
    let (status, body) = alice
        .put(
            "/api/admin/transports",
            json!({"sse": false, "long_poll": false, "short_poll": false}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "one must stay on: {body}");
}

#[tokio::test]
async fn transport_settings_validate_and_admins_override() {
    let app = TestApp::spawn().await;
    let (alice, bob, _room) = setup(&app).await;
    let (status, mine) = bob.get("/api/me/transports").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["chat"], "websocket");
    assert_eq!(mine["notifications"], "sse");
    assert_eq!(mine["jobs"], "short_poll");
    assert_eq!(mine["effective"]["jobs"], "short_poll");

    let (status, mine) = bob.put("/api/me/transports", json!({"jobs": "sse"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["jobs"], "sse");
    assert_eq!(mine["chat"], "websocket", "untouched");
    for bad in [
        json!({}),
        json!({"control": "sse"}),
        json!({"chat": "carrier_pigeon"}),
        json!({"chat": null}),
        json!({"bogus": "sse"}),
        json!([1]),
    ] {
        let (status, body) = bob.put("/api/me/transports", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    let (_, users) = alice.get("/api/admin/users").await;
    let bob_id = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        users["users"][1]["transports"]["effective"]["chat"],
        "websocket"
    );
    let path = format!("/api/admin/users/{bob_id}/transports");
    let (status, body) = alice.put(&path, json!({"chat": "long_poll"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, mine) = bob.get("/api/me/transports").await;
    assert_eq!(mine["effective"]["chat"], "long_poll");
    assert_eq!(mine["overrides"]["chat"], "long_poll");
    assert_eq!(
        mine["chat"], "websocket",
        "the override wins but my choice stays"
    );
    alice.put(&path, json!({"chat": null})).await;
    let (_, mine) = bob.get("/api/me/transports").await;
    assert_eq!(mine["effective"]["chat"], "websocket", "cleared");
    assert_eq!(
        bob.put(&path, json!({"chat": "sse"})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bob.put("/api/admin/transports", json!({"sse": false}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        alice
            .put(
                &format!("/api/admin/users/{}/transports", uuid::Uuid::new_v4()),
                json!({"chat": "sse"})
            )
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn poll_and_sse_inputs_are_checked() {
    let app = TestApp::spawn().await;
    let (_alice, bob, _room) = setup(&app).await;
    for q in [
        "wait=31",
        "wait=-1",
        "wait=x",
        "cursor=-5",
        "cursor=abc",
        "feeds=nope",
    ] {
        let (status, body) = bob.get(&format!("/api/live/poll?{q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
    }
    let r = bob
        .http
        .get(bob.url("/api/live/sse?cursor=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let anon = app.client();
    assert_eq!(anon.get("/api/live/poll").await.0, StatusCode::UNAUTHORIZED);
    let r = anon
        .http
        .get(anon.url("/api/live/sse"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // SSE headers and Last-Event-ID resume.
    let sse = bob.sse("?feeds=chat").await;
    let h = sse.response.headers();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    let r = bob
        .http
        .get(bob.url("/api/live/sse?feeds=chat"))
        .header("last-event-id", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sse_resumes_from_last_event_id() {
    let app = TestApp::spawn().await;
    let (alice, bob, room) = setup(&app).await;
    let mut sse = bob.sse("?feeds=chat").await;
    sse.next_event().await.unwrap();
    assert_eq!(sse.retry, Some(2000), "a retry hint");
    let first = send_n(&alice, &room, "a", 1).await;
    let ev = loop {
        // Presence and other ephemerals may come first.
        let ev = sse.next_event().await.unwrap();
        if ev.id.is_some() {
            break ev;
        }
    };
    assert_eq!(ev.id, Some(first[0]));
    drop(sse);
    let more = send_n(&alice, &room, "b", 2).await;
    let r = bob
        .http
        .get(bob.url("/api/live/sse?feeds=chat"))
        .header("last-event-id", first[0].to_string())
        .send()
        .await
        .unwrap();
    let mut live = Live::Sse(crate::common::Sse::from_response(r));
    let mut last = first[0];
    assert_eq!(read_messages(&mut live, 2, &mut last).await, more);
}

#[tokio::test]
async fn typing_and_presence_reach_every_transport_and_are_never_stored() {
    let app = TestApp::spawn().await;
    let (alice, bob, room) = setup(&app).await;
    for transport in TRANSPORTS {
        // Short polls catch up on ephemerals between polls through `eph`.
        let mut live = Live::open(&bob, transport, "chat", None).await;
        let (status, _) = alice.post_empty(&format!("/api/rooms/{room}/typing")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        loop {
            let ev = live.next().await.expect("an event");
            if ev.kind == "typing" {
                assert_eq!(ev.id, None, "{transport}: ephemeral");
                assert_eq!(ev.data["user"]["username"], "alice");
                break;
            }
        }
    }
    // Presence (to the people who share a room with me): a socket makes me online; idle on
    // request; offline when it closes.
    let mut watcher = Live::open(&bob, "sse", "chat", None).await;
    let carol = app.client();
    carol.signup("carol").await;
    carol.post_empty(&format!("/api/rooms/{room}/join")).await;
    let ws = carol.ws("?feeds=chat").await;
    // A status may be said again (joining a room re-announces the joiner to it): watch changes.
    let mut last = String::new();
    assert_eq!(
        next_change(&mut watcher, "carol", &mut last).await,
        "online"
    );
    let (_, snap) = bob.get("/api/presence").await;
    assert!(snap["users"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["user"]["username"] == "carol"));
    assert_eq!(
        carol
            .post("/api/presence", json!({"status": "idle"}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(next_change(&mut watcher, "carol", &mut last).await, "idle");
    assert_eq!(
        carol
            .post("/api/presence", json!({"status": "asleep"}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    ws.close().await;
    assert_eq!(
        next_change(&mut watcher, "carol", &mut last).await,
        "offline"
    );
    // Nothing of it is in the log.
    let (_, replay) = bob.get("/api/live/poll?feeds=chat&cursor=0&wait=0").await;
    assert!(replay["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["type"] != "typing" && e["type"] != "presence"));
}

/// The next presence status announced for `who` that differs from `last` (updated).
async fn next_change(w: &mut Live, who: &str, last: &mut String) -> String {
    loop {
        let status = next_presence(w, who).await;
        if status != *last {
            *last = status.clone();
            return status;
        }
    }
}

/// The next presence status announced for `who`.
async fn next_presence(w: &mut Live, who: &str) -> String {
    loop {
        let ev = w.next().await.expect("presence");
        if ev.kind == "presence" && ev.data["user"]["username"] == who {
            return ev.data["status"].as_str().unwrap().to_string();
        }
    }
}

/// What a reader knows of one message, built from events alone: body, edited, deleted, reply
/// count and the count of each emoji.
#[derive(Debug, Clone, PartialEq, Default)]
struct Known {
    body: String,
    edited: bool,
    deleted: bool,
    reply_count: i64,
    reactions: std::collections::BTreeMap<String, i64>,
}

impl Known {
    fn of(m: &serde_json::Value) -> Known {
        Known {
            body: m["body"].as_str().unwrap().to_string(),
            edited: !m["edited_at"].is_null(),
            deleted: m["deleted"].as_bool().unwrap(),
            reply_count: m["reply_count"].as_i64().unwrap(),
            reactions: m["reactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["emoji"].as_str().unwrap().to_string(),
                        r["count"].as_i64().unwrap(),
                    )
                })
                .collect(),
        }
    }
}

/// One reader of the chat feed: its transport, its cursor, every stored id it saw, and the
/// state of each message as the events told it.
struct Reader {
    /// None while the reader is away.
    live: Option<Live>,
    last: i64,
    seen: Vec<i64>,
    state: std::collections::BTreeMap<String, Known>,
}

impl Reader {
    /// Reads until every id of `want` came (asserting exactly those, in order), applying each
    /// event to the reader's state.
    async fn read(&mut self, want: &[i64], ctx: &str) {
        let mut got = Vec::new();
        while got.len() < want.len() {
            let ev = self
                .live
                .as_mut()
                .expect("connected")
                .next_stored()
                .await
                .unwrap_or_else(|| panic!("{ctx}: ended early, got {got:?} of {want:?}"));
            let id = ev.id.unwrap();
            assert!(
                id > self.last,
                "{ctx}: ids increase ({id} after {})",
                self.last
            );
            self.last = id;
            if ev.feed.as_str() != "chat" {
                continue;
            }
            got.push(id);
            self.seen.push(id);
            match ev.kind.as_str() {
                "message" | "message_updated" => {
                    let m = Known::of(&ev.data);
                    self.state
                        .insert(ev.data["id"].as_str().unwrap().to_string(), m);
                }
                "reaction" => {
                    let m = self
                        .state
                        .entry(ev.data["message_id"].as_str().unwrap().to_string())
                        .or_default();
                    let emoji = ev.data["emoji"].as_str().unwrap().to_string();
                    match ev.data["count"].as_i64().unwrap() {
                        0 => m.reactions.remove(&emoji),
                        n => m.reactions.insert(emoji, n),
                    };
                }
                _ => {}
            }
        }
        assert_eq!(got, want, "{ctx}: exactly the logged ids, in order");
    }
}

/// Edits, deletions, reactions and replies made while readers are connected, while they are
/// away, and across transport switches: every reader, whichever transports it went through,
/// saw every event once and in order, and ends with the state history shows for every
/// message (body, edited, deleted, reply count, reactions).
#[tokio::test]
async fn message_life_over_every_transport_resumes_to_the_same_state() {
    let app = TestApp::spawn().await;
    let (alice, bob, room) = setup(&app).await;
    let msg = |id: &str| format!("/api/rooms/{room}/messages/{id}");
    let react = |id: &str, emoji: &str| {
        let e: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
        format!("/api/rooms/{room}/messages/{id}/reactions/{e}")
    };
    let (_, start) = bob.get("/api/live/poll?wait=0").await;
    let from = start["cursor"].as_i64().unwrap();
    // Readers start from the same cursor, one on each transport.
    let mut readers = Vec::new();
    for transport in TRANSPORTS {
        readers.push(Reader {
            live: Some(Live::open(&bob, transport, "chat", Some(from)).await),
            last: from,
            seen: Vec::new(),
            state: Default::default(),
        });
    }
    let mut ids = Vec::new();
    for i in 0..4 {
        let (status, m) = alice
            .send(&room, &format!("m{i}"), &format!("life-{i}"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{m}");
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    let ok = |got: (StatusCode, serde_json::Value)| {
        assert!(got.0.is_success(), "{}", got.1);
    };

    // Phase 1, everyone connected: an edit, reactions, a reply, a deletion.
    let mark = from;
    ok(alice
        .patch(&msg(&ids[0]), json!({"body": "m0 edited"}))
        .await);
    ok(bob.put_empty(&react(&ids[1], "👍")).await);
    ok(alice.put_empty(&react(&ids[1], "👍")).await);
    ok(bob.put_empty(&react(&ids[1], "🎉")).await);
    ok(bob
        .post(
            &format!("/api/rooms/{room}/messages"),
            json!({"body": "re m2", "client_id": "life-r1", "reply_to": ids[2]}),
        )
        .await);
    ok(alice.delete(&msg(&ids[3])).await);
    let want = oracle(&bob, "chat", mark).await;
    for (r, t) in readers.iter_mut().zip(TRANSPORTS) {
        r.read(&want, &format!("phase 1 on {t}")).await;
    }

    // Phase 2, everyone away: more changes, then each resumes on the next transport.
    let mark = readers[0].last;
    let lasts: Vec<i64> = readers.iter().map(|r| r.last).collect();
    for r in &mut readers {
        // Dropping the connection is the client going away.
        r.live = None;
    }
    ok(alice
        .patch(&msg(&ids[1]), json!({"body": "m1 edited"}))
        .await);
    ok(bob.delete(&react(&ids[1], "🎉")).await);
    ok(alice.put_empty(&react(&ids[0], "❤️")).await);
    ok(alice
        .post(
            &format!("/api/rooms/{room}/messages"),
            json!({"body": "re m2 again", "client_id": "life-r2", "reply_to": ids[2]}),
        )
        .await);
    ok(alice.delete(&msg(&ids[2])).await);
    let want = oracle(&bob, "chat", mark).await;
    for (i, r) in readers.iter_mut().enumerate() {
        let t = TRANSPORTS[(i + 1) % TRANSPORTS.len()];
        r.live = Some(Live::open(&bob, t, "chat", Some(lasts[i])).await);
        r.read(&want, &format!("phase 2, resumed on {t}")).await;
    }

    // Phase 3, changes keep coming while each reader switches transport mid-stream.
    let mark = readers[0].last;
    ok(alice
        .patch(&msg(&ids[0]), json!({"body": "m0 edited twice"}))
        .await);
    ok(bob.put_empty(&react(&ids[0], "❤️")).await);
    let want_a = oracle(&bob, "chat", mark).await;
    assert_eq!(want_a.len(), 2, "an edit and a reaction");
    for (i, r) in readers.iter_mut().enumerate() {
        let t = TRANSPORTS[(i + 2) % TRANSPORTS.len()];
        r.read(&want_a[..1], "phase 3, before the switch").await;
        // The new connection opens from the last id read before the old one goes.
        let new = Live::open(&bob, t, "chat", Some(r.last)).await;
        r.live = Some(new);
        r.read(&want_a[1..], &format!("phase 3, after switching to {t}"))
            .await;
    }
    ok(alice.delete(&react(&ids[0], "❤️")).await);
    ok(bob.put_empty(&react(&ids[1], "👍")).await); // already there: no event
    assert_eq!(
        bob.delete(&msg(&ids[1])).await.0,
        StatusCode::FORBIDDEN,
        "not his: no change, no event"
    );
    let mark = readers[0].last;
    let want_b = oracle(&bob, "chat", mark).await;
    assert_eq!(want_b.len(), 1, "only the removal made an event");
    for r in &mut readers {
        r.read(&want_b, "phase 3, last").await;
    }

    // Everyone saw the same events, and the same state as history holds.
    let (_, page) = bob.get(&format!("/api/rooms/{room}/messages")).await;
    let truth: std::collections::BTreeMap<String, Known> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_string(), Known::of(m)))
        .collect();
    assert_eq!(truth.len(), 6, "four messages and two replies");
    assert_eq!(truth[&ids[0]].body, "m0 edited twice");
    assert_eq!(truth[&ids[0]].reactions.get("❤️"), Some(&1));
    assert!(truth[&ids[1]].edited);
    assert_eq!(truth[&ids[1]].reactions, [("👍".to_string(), 2)].into());
    assert!(truth[&ids[2]].deleted && truth[&ids[2]].reactions.is_empty());
    assert_eq!(truth[&ids[2]].reply_count, 2);
    assert!(truth[&ids[3]].deleted);
    for (i, r) in readers.iter().enumerate() {
        assert_eq!(r.seen, readers[0].seen, "reader {i} saw the same events");
        assert_eq!(r.state, truth, "reader {i} ends with history's state");
    }
    let all = oracle(&bob, "chat", from).await;
    assert_eq!(
        readers[0].seen, all,
        "every event of the log, once, in order"
    );
}
