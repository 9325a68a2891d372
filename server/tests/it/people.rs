//! Rooms, members and people (issue 21): one room's page, rename and topic with their
//! `room_updated` event, the member list, "bob joined" / "bob left" told to the members,
//! display names wherever an author is, and a password change that signs out every other
//! session of mine (and its live connections) while this one goes on.

use crate::common::{Client, Frame, Live, TestApp, PASSWORD, TRANSPORTS};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Alice (who made "general", public), Bob (a member too) and Carol (in no room).
async fn three(app: &TestApp) -> (Client, Client, Client, String) {
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let carol = app.client();
    carol.signup("carol").await;
    let room = alice.create_room("general", false).await;
    let (status, _) = bob.post_empty(&format!("/api/rooms/{room}/join")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    (alice, bob, carol, room)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn one_room_is_shown_to_who_may_see_it_with_its_new_fields() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol, room) = three(&app).await;
    let me = alice.get("/api/me").await.1;
    assert_eq!(me["display_name"], Value::Null, "null when unset: {me}");

    let (status, r) = alice.get(&format!("/api/rooms/{room}")).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["name"], "general");
    assert_eq!(r["topic"], "");
    assert_eq!(r["member_count"], 2);
    assert_eq!(r["last_read"], Value::Null, "nothing read yet: {r}");
    assert_eq!(r["created_by"], me["id"]);
    assert_eq!(r["is_member"], true);

    // What I wrote, I have read: my read position is my message.
    let (_, m) = alice.send(&room, "hello", "a1").await;
    let r = alice.get(&format!("/api/rooms/{room}")).await.1;
    assert_eq!(r["last_read"], m["id"], "{r}");
    let r = bob.get(&format!("/api/rooms/{room}")).await.1;
    assert_eq!(r["last_read"], Value::Null, "Bob has read nothing: {r}");
    assert_eq!(r["unread"], 1);
    let (status, _) = bob
        .post(
            &format!("/api/rooms/{room}/read"),
            json!({"message_id": m["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r = bob.get(&format!("/api/rooms/{room}")).await.1;
    assert_eq!(r["last_read"], m["id"], "{r}");
    // The list carries the same fields.
    let (_, list) = bob.get("/api/rooms").await;
    assert_eq!(list["rooms"][0]["last_read"], m["id"], "{list}");
    assert_eq!(list["rooms"][0]["member_count"], 2, "{list}");

    // A public room is visible to anyone signed in, as a non-member sees it.
    let (status, r) = carol.get(&format!("/api/rooms/{room}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["is_member"], false);
    assert_eq!(r["last_read"], Value::Null);

    // A private room: members and invitees only; others 404 as if it did not exist.
    let secret = alice.create_room("secret", true).await;
    let (status, body) = carol.get(&format!("/api/rooms/{secret}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(code(&body), "not_found");
    alice
        .post(
            &format!("/api/rooms/{secret}/invite"),
            json!({"username": "carol"}),
        )
        .await;
    let (status, r) = carol.get(&format!("/api/rooms/{secret}")).await;
    assert_eq!(status, StatusCode::OK, "an invitee sees it: {r}");
    assert_eq!(r["is_member"], false);

    // Unknown, malformed, and nobody signed in.
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        alice.get(&format!("/api/rooms/{unknown}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = alice.get("/api/rooms/not-an-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "invalid_id");
    let (status, body) = app.client().get(&format!("/api/rooms/{room}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "unauthorized");
}

#[tokio::test]
async fn members_rename_and_set_the_topic_under_the_rules_of_names() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol, room) = three(&app).await;
    let path = format!("/api/rooms/{room}");

    // Any member, not only the creator.
    let (status, r) = bob
        .patch(
            &path,
            json!({"name": " plans ", "topic": " Friday's launch "}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["name"], "plans", "trimmed");
    assert_eq!(r["topic"], "Friday's launch");
    assert_eq!(r["is_member"], true, "as the editor sees it");
    let (_, r) = alice.get(&path).await;
    assert_eq!(
        (r["name"].as_str(), r["topic"].as_str()),
        (Some("plans"), Some("Friday's launch"))
    );
    // One field at a time; an empty topic clears it; the same name in another case is fine.
    let (status, r) = alice.patch(&path, json!({"topic": ""})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (r["name"].as_str(), r["topic"].as_str()),
        (Some("plans"), Some(""))
    );
    let (status, r) = alice.patch(&path, json!({"name": "Plans"})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["name"], "Plans");

    // Another public room's name, in any case: 409, naming it.
    alice.create_room("random", false).await;
    let (status, body) = alice.patch(&path, json!({"name": "RANDOM"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(code(&body), "room_name_taken");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("random"));

    // Bad input: a clear 400 each, nothing changed.
    for (body, want) in [
        (json!({}), "empty_update"),
        (json!({"name": "  "}), "invalid_name"),
        (json!({"name": "x".repeat(81)}), "invalid_name"),
        (json!({"name": "evil\u{202E}txt"}), "invalid_name"),
        (json!({"topic": "é".repeat(251)}), "invalid_topic"),
        (json!({"topic": "two\nlines"}), "invalid_topic"),
        (json!({"name": 5}), "invalid_json"),
        (json!({"colour": "red"}), "invalid_json"),
    ] {
        let (status, answer) = alice.patch(&path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(code(&answer), want, "{body}: {answer}");
    }
    let (status, r) = alice.patch(&path, json!({"topic": "é".repeat(250)})).await;
    assert_eq!(status, StatusCode::OK, "250 characters is the limit: {r}");

    // Who may: members only. A visible non-member 403, an invisible room 404, nobody 401.
    let (status, body) = carol.patch(&path, json!({"topic": "mine now"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let secret = alice.create_room("secret", true).await;
    let (status, _) = carol
        .patch(&format!("/api/rooms/{secret}"), json!({"topic": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    alice
        .post(
            &format!("/api/rooms/{secret}/invite"),
            json!({"username": "carol"}),
        )
        .await;
    let (status, _) = carol
        .patch(&format!("/api/rooms/{secret}"), json!({"topic": "x"}))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an invitee is not a member yet"
    );
    let (status, _) = app.client().patch(&path, json!({"topic": "x"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = bob.post_empty(&format!("/api/rooms/{room}/leave")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = bob.patch(&path, json!({"topic": "back?"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a former member");

    // A DM keeps its name; its topic may change.
    let (_, dm) = alice.post("/api/dms", json!({"username": "carol"})).await;
    let dm_path = format!("/api/rooms/{}", dm["id"].as_str().unwrap());
    let (status, body) = alice.patch(&dm_path, json!({"name": "us"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_room");
    let (status, r) = carol.patch(&dm_path, json!({"topic": "lunch"})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["dm_with"]["username"], "alice", "as Carol sees it: {r}");
}

#[tokio::test]
async fn the_member_list_shows_who_is_in_with_when_they_joined() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol, room) = three(&app).await;
    let (status, list) = alice.get(&format!("/api/rooms/{room}/members")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let members = list["members"].as_array().unwrap();
    let names: Vec<&str> = members
        .iter()
        .map(|m| m["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"], "earliest first: {list}");
    assert!(members.iter().all(|m| m["joined_at"].as_i64().unwrap() > 0));
    assert!(members[0]["joined_at"].as_i64() <= members[1]["joined_at"].as_i64());

    // Anyone for a public room; a private one: members only (an invitee 403, others 404).
    assert_eq!(
        carol.get(&format!("/api/rooms/{room}/members")).await.0,
        StatusCode::OK
    );
    let secret = alice.create_room("secret", true).await;
    let path = format!("/api/rooms/{secret}/members");
    assert_eq!(carol.get(&path).await.0, StatusCode::NOT_FOUND);
    alice
        .post(
            &format!("/api/rooms/{secret}/invite"),
            json!({"username": "carol"}),
        )
        .await;
    assert_eq!(carol.get(&path).await.0, StatusCode::FORBIDDEN);
    carol.post_empty(&format!("/api/rooms/{secret}/join")).await;
    let (status, list) = carol.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["members"].as_array().unwrap().len(), 2);
    assert_eq!(app.client().get(&path).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        bob.get("/api/rooms/nope/members").await.0,
        StatusCode::BAD_REQUEST
    );
    // Leaving takes you off the list.
    bob.post_empty(&format!("/api/rooms/{room}/leave")).await;
    let (_, list) = alice.get(&format!("/api/rooms/{room}/members")).await;
    assert_eq!(list["members"].as_array().unwrap().len(), 1);
}

/// The next stored event of `kind` on `live`.
async fn next_kind(live: &mut Live, kind: &str) -> Value {
    loop {
        let ev = live.next_stored().await.expect("an event");
        if ev.kind == kind {
            return ev.data;
        }
    }
}

#[tokio::test]
async fn joins_and_leaves_are_told_to_the_members_on_every_transport() {
    for transport in TRANSPORTS {
        let app = TestApp::spawn().await;
        let (alice, bob, carol, room) = three(&app).await;
        let mut alices = Live::open(&alice, transport, "chat", None).await;
        let mut carols = Live::open(&carol, transport, "chat", None).await;

        let (status, _) = carol.post_empty(&format!("/api/rooms/{room}/join")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        // Carol's own event first, as it always was (no `user`), then the room's.
        let own = next_kind(&mut carols, "membership").await;
        assert_eq!(own["change"], "joined", "{transport}: {own}");
        assert!(
            own.get("user").is_none(),
            "{transport}: mine has no user: {own}"
        );
        assert_eq!(own["room"]["is_member"], true);
        let told = next_kind(&mut carols, "membership").await;
        assert_eq!(told["user"]["username"], "carol", "{transport}: {told}");
        let seen = next_kind(&mut alices, "membership").await;
        assert_eq!(seen["change"], "joined", "{transport}: {seen}");
        assert_eq!(seen["user"]["username"], "carol");
        assert_eq!(seen["room"]["id"], room.as_str());
        assert_eq!(seen["room"]["member_count"], 3);

        carol.post_empty(&format!("/api/rooms/{room}/leave")).await;
        let seen = next_kind(&mut alices, "membership").await;
        assert_eq!(seen["change"], "left", "{transport}: {seen}");
        assert_eq!(seen["user"]["username"], "carol");
        assert_eq!(seen["room"]["member_count"], 2);
        let own = next_kind(&mut carols, "membership").await;
        assert_eq!(own["change"], "left");
        assert!(own.get("user").is_none(), "{own}");
        // Carol, gone, is not told what happens in the room: her next event is Bob's
        // message in a room of her own, not Bob's leave.
        bob.post_empty(&format!("/api/rooms/{room}/leave")).await;
        let left = next_kind(&mut alices, "membership").await;
        assert_eq!(left["user"]["username"], "bob");
        let hers = carol
            .create_room(&format!("carols-{transport}"), true)
            .await;
        carol.send(&hers, "only me", "c1").await;
        loop {
            let ev = carols.next_stored().await.expect("an event");
            assert_ne!(ev.kind, "room_updated");
            if ev.kind == "membership" {
                assert_eq!(ev.data["room"]["id"], hers.as_str(), "{:?}", ev.data);
            }
            if ev.kind == "message" {
                break;
            }
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn room_updated_reaches_every_member_on_every_transport_and_resumes() {
    for transport in TRANSPORTS {
        let app = TestApp::spawn().await;
        let (alice, bob, carol, room) = three(&app).await;
        let (_, start) = bob.get("/api/live/poll?wait=0").await;
        let from = start["cursor"].as_i64().unwrap();
        let mut bobs = Live::open(&bob, transport, "chat", Some(from)).await;
        let mut carols = Live::open(&carol, transport, "chat", None).await;

        let (status, _) = alice
            .patch(&format!("/api/rooms/{room}"), json!({"topic": "launch"}))
            .await;
        assert_eq!(status, StatusCode::OK);
        let ev = loop {
            let ev = bobs.next_stored().await.expect("an event");
            if ev.kind == "room_updated" {
                break ev;
            }
        };
        assert_eq!(ev.data["id"], room.as_str(), "{transport}");
        assert_eq!(ev.data["topic"], "launch");
        assert_eq!(ev.data["name"], "general");
        assert_eq!(ev.data["member_count"], 2);
        // The same bytes for every member: nothing of one reader's in it.
        assert_eq!(ev.data["unread"], 0);
        assert_eq!(ev.data["last_read"], Value::Null);
        // An unchanged PATCH is no change and no event.
        let (status, _) = alice
            .patch(&format!("/api/rooms/{room}"), json!({"topic": "launch"}))
            .await;
        assert_eq!(status, StatusCode::OK);
        drop(bobs);

        // While Bob is away: a rename. He resumes from his cursor and gets both, once, in order.
        alice
            .patch(
                &format!("/api/rooms/{room}"),
                json!({"name": "launch-room"}),
            )
            .await;
        let mut bobs = Live::open(&bob, transport, "chat", Some(from)).await;
        let mut got = Vec::new();
        while got.len() < 2 {
            let ev = bobs.next_stored().await.expect("an event");
            if ev.kind == "room_updated" {
                got.push((
                    ev.id.unwrap(),
                    ev.data["name"].as_str().unwrap().to_string(),
                ));
            }
        }
        assert!(got[0].0 < got[1].0, "{transport}: in order");
        assert_eq!(got[0].1, "general");
        assert_eq!(got[1].1, "launch-room");

        // Carol is no member: the room's updates are not hers. Her next event is her own room's.
        let mine = carol.create_room(&format!("c-{transport}"), true).await;
        let ev = carols.next_stored().await.expect("an event");
        assert_eq!(ev.kind, "membership", "{transport}: {ev:?}");
        assert_eq!(ev.data["room"]["id"], mine.as_str());
        app.stop().await;
    }
}

#[tokio::test]
async fn a_display_name_shows_wherever_its_person_does() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol, room) = three(&app).await;
    let mut bobs = Live::open(&bob, "websocket", "chat", None).await;
    let mut carols = Live::open(&carol, "sse", "chat", None).await;
    // Alice's own socket, open from before the change: what she sends over it carries the new
    // name too (the connection does not keep who she was when it opened).
    let mut alices = alice.ws("?feeds=chat").await;
    alices.hello().await;

    let (status, me) = alice
        .patch("/api/me", json!({"display_name": "  Ada Lovelace "}))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["display_name"], "Ada Lovelace", "trimmed");
    assert_eq!(me["username"], "alice");
    assert_eq!(alice.get("/api/me").await.1["display_name"], "Ada Lovelace");

    // Everyone signed in hears of it, in a room with her or not.
    for live in [&mut bobs, &mut carols] {
        let data = next_kind(live, "user_updated").await;
        assert_eq!(data["username"], "alice");
        assert_eq!(data["display_name"], "Ada Lovelace");
    }

    // Her messages carry it, new and old.
    let (_, m) = alice.send(&room, "hello", "a1").await;
    assert_eq!(m["author"]["display_name"], "Ada Lovelace", "{m}");
    let live = next_kind(&mut bobs, "message").await;
    assert_eq!(live["author"]["display_name"], "Ada Lovelace");
    let (_, history) = bob.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(
        history["messages"][0]["author"]["display_name"],
        "Ada Lovelace"
    );
    alices
        .send_json(
            json!({"type": "send", "room_id": room, "body": "over the socket", "client_id": "a2"}),
        )
        .await;
    let ack = alices.next_of("ack").await;
    assert_eq!(
        ack.data["message"]["author"]["display_name"], "Ada Lovelace",
        "{:?}",
        ack.data
    );
    alices
        .send_json(json!({"type": "typing", "room_id": room}))
        .await;
    let typing = loop {
        let ev = bobs.next().await.expect("an event");
        if ev.kind == "typing" {
            break ev;
        }
    };
    assert_eq!(
        typing.data["user"]["display_name"], "Ada Lovelace",
        "{:?}",
        typing.data
    );
    // A person without one: no display_name in their messages (bytes as before).
    let (_, m) = bob.send(&room, "hi", "b1").await;
    assert!(m["author"].get("display_name").is_none(), "{m}");
    // The member list and a DM's partner carry it.
    let (_, list) = bob.get(&format!("/api/rooms/{room}/members")).await;
    assert_eq!(list["members"][0]["user"]["display_name"], "Ada Lovelace");
    let (_, dm) = bob.post("/api/dms", json!({"username": "alice"})).await;
    assert_eq!(dm["dm_with"]["display_name"], "Ada Lovelace", "{dm}");
    // So do the people a reaction lists (the "who reacted" of history), and only when set.
    let hi = m["id"].as_str().unwrap();
    for who in [&alice, &bob] {
        let (status, _) = who
            .put_empty(&format!(
                "/api/rooms/{room}/messages/{hi}/reactions/%F0%9F%8E%89"
            ))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (_, history) = bob.get(&format!("/api/rooms/{room}/messages")).await;
    let hi_now = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == hi)
        .unwrap()
        .clone();
    let users = &hi_now["reactions"][0]["users"];
    assert_eq!(users[0]["display_name"], "Ada Lovelace", "{hi_now}");
    assert!(users[1].get("display_name").is_none(), "{hi_now}");

    // Bad names: a clear 400, nothing changed.
    for body in [
        json!({"display_name": ""}),
        json!({"display_name": "   "}),
        json!({"display_name": "\u{200B}"}),
        json!({"display_name": "a".repeat(65)}),
        json!({"display_name": "two\nlines"}),
        json!({"display_name": "evil\u{202E}gnp"}),
    ] {
        let (status, answer) = alice.patch("/api/me", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(code(&answer), "invalid_display_name", "{answer}");
    }
    for body in [
        json!({}),
        json!({"display_name": 1}),
        json!({"username": "x"}),
    ] {
        let (status, answer) = alice.patch("/api/me", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
    assert_eq!(alice.get("/api/me").await.1["display_name"], "Ada Lovelace");
    let (status, me) = alice
        .patch("/api/me", json!({"display_name": "a".repeat(64)}))
        .await;
    assert_eq!(status, StatusCode::OK, "64 is the limit: {me}");
    let (status, _) = app
        .client()
        .patch("/api/me", json!({"display_name": "x"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_change_signs_out_every_other_session_and_keeps_this_one() {
    let app = TestApp::spawn().await;
    let laptop = app.client();
    laptop.signup("alice").await;
    let phone = laptop.stranger();
    phone.login("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = laptop.create_room("general", false).await;

    // Both have live connections open; so does Bob.
    let mut phone_ws = phone.ws("?feeds=chat").await;
    phone_ws.hello().await;
    let mut phone_sse = Live::open(&phone, "sse", "chat", None).await;
    let mut laptop_ws = Live::open(&laptop, "websocket", "chat", None).await;
    let mut bobs = Live::open(&bob, "websocket", "chat", None).await;

    // The rules first: each refusal says why, and changes nothing.
    let path = "/api/me/password";
    let (status, body) = laptop
        .post(
            path,
            json!({"current_password": "not it at all", "new_password": "a-new-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(code(&body), "wrong_password");
    let (status, body) = laptop
        .post(
            path,
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_password");
    let (status, body) = laptop
        .post(
            path,
            json!({"current_password": "", "new_password": "a-new-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "password_required");
    let (status, _) = laptop.post(path, json!({"new_password": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .client()
        .post(
            path,
            json!({"current_password": PASSWORD, "new_password": "a-new-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        phone.get("/api/me").await.0,
        StatusCode::OK,
        "nothing changed yet"
    );

    let (status, body) = laptop
        .post(
            path,
            json!({"current_password": PASSWORD, "new_password": "a-new-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The phone's connections end at once, as signed out.
    loop {
        match phone_ws.next_frame().await {
            Frame::Closed(code) => {
                assert_eq!(code, Some(protocol::close::UNAUTHORIZED));
                break;
            }
            Frame::Event(_) => continue,
        }
    }
    let goodbye = loop {
        let ev = phone_sse.next().await.expect("a disconnect before the end");
        if ev.kind == "disconnect" {
            break ev;
        }
    };
    assert_eq!(goodbye.data["code"], protocol::close::UNAUTHORIZED);
    assert_eq!(phone.get("/api/me").await.0, StatusCode::UNAUTHORIZED);

    // The laptop stays signed in, and its own socket goes on.
    assert_eq!(laptop.get("/api/me").await.0, StatusCode::OK);
    let (status, _) = laptop.send(&room, "still here", "l1").await;
    assert_eq!(status, StatusCode::CREATED);
    let data = next_kind(&mut laptop_ws, "message").await;
    assert_eq!(data["body"], "still here");
    // Bob was never touched.
    let created = bob.create_room("bobs", false).await;
    let data = next_kind(&mut bobs, "membership").await;
    assert_eq!(data["room"]["id"], created.as_str());

    // The old password no longer signs in; the new one does.
    let (status, _) = app
        .client()
        .post(
            "/api/auth/login",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = phone
        .post(
            "/api/auth/login",
            json!({"username": "alice", "password": "a-new-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(phone.get("/api/me").await.0, StatusCode::OK);
    assert_eq!(laptop.get("/api/me").await.0, StatusCode::OK);
}

/// The history route's pages carry who joined and left in the stretch of the log each covers,
/// so the lines come back after a reload, each once, in order, across pages.
#[tokio::test]
async fn pages_of_history_carry_the_joins_and_leaves_between_their_messages() {
    let app = TestApp::spawn().await;
    let (alice, _bob, carol, room) = three(&app).await;
    for i in 0..3 {
        alice.send(&room, &format!("a{i}"), &format!("a{i}")).await;
    }
    carol.post_empty(&format!("/api/rooms/{room}/join")).await;
    alice.send(&room, "b0", "b0").await;
    carol.post_empty(&format!("/api/rooms/{room}/leave")).await;

    let page = |q: String| {
        let alice = &alice;
        let room = room.clone();
        async move {
            let (status, body) = alice.get(&format!("/api/rooms/{room}/messages?{q}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    let lines = |body: &Value| -> Vec<String> {
        body["member_changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["user"]["username"].as_str().unwrap(),
                    c["change"].as_str().unwrap()
                )
            })
            .collect()
    };
    let event_id = |body: &Value, body_text: &str| -> i64 {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["body"] == body_text)
            .unwrap()["event_id"]
            .as_i64()
            .unwrap()
    };

    // All of it at once: three lines, each between the messages it happened between.
    let all = page("limit=100".into()).await;
    assert_eq!(
        lines(&all),
        ["bob joined", "carol joined", "carol left"],
        "{all}"
    );
    let ids: Vec<i64> = all["member_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["event_id"].as_i64().unwrap())
        .collect();
    assert!(ids[0] < event_id(&all, "a0"));
    assert!(event_id(&all, "a2") < ids[1] && ids[1] < event_id(&all, "b0"));
    assert!(ids[2] > event_id(&all, "b0"));
    assert!(all["member_changes"][0]["ts"].as_i64().unwrap() > 0);

    // Page by page, as a browser scrolls up: each line once, on the page whose stretch holds it.
    let newest = page("limit=2".into()).await;
    assert_eq!(lines(&newest), ["carol joined", "carol left"], "{newest}");
    let a2 = newest["messages"][0]["id"].as_str().unwrap().to_string();
    let middle = page(format!("limit=2&before={a2}")).await;
    assert!(lines(&middle).is_empty(), "{middle}");
    let a0 = middle["messages"][0]["id"].as_str().unwrap().to_string();
    let oldest = page(format!("limit=2&before={a0}")).await;
    assert_eq!(oldest["messages"].as_array().unwrap().len(), 0);
    assert_eq!(lines(&oldest), ["bob joined"], "{oldest}");
    // A page that is not full reaches back to the room's start.
    let short = page(format!("limit=3&before={a2}")).await;
    assert_eq!(lines(&short), ["bob joined"], "{short}");
    app.stop().await;
}
