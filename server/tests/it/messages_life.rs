//! Messages over their whole life: edit, delete (tombstones), reactions, replies and threads,
//! each change an event on the live feed; and who may do each (the permission matrix).

use crate::common::{Client, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn msg_path(room: &str, id: &str) -> String {
    format!("/api/rooms/{room}/messages/{id}")
}

/// The reaction path, with the emoji percent-encoded as a browser's `encodeURIComponent` would.
fn reaction_path(room: &str, id: &str, emoji: &str) -> String {
    let encoded: String = emoji
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("/api/rooms/{room}/messages/{id}/reactions/{encoded}")
}

async fn sent(c: &Client, room: &str, body: &str, client_id: &str) -> Value {
    let (status, m) = c.send(room, body, client_id).await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    m
}

async fn reply(
    c: &Client,
    room: &str,
    to: &str,
    body: &str,
    client_id: &str,
) -> (StatusCode, Value) {
    c.post(
        &format!("/api/rooms/{room}/messages"),
        json!({"body": body, "client_id": client_id, "reply_to": to}),
    )
    .await
}

/// The message `id` as `c` reads it in the room's history.
async fn in_history(c: &Client, room: &str, id: &str) -> Value {
    let (status, page) = c.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} in history: {page}"))
}

fn reaction<'a>(m: &'a Value, emoji: &str) -> Option<&'a Value> {
    m["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["emoji"] == emoji)
}

async fn unread_notifications(c: &Client) -> i64 {
    let (_, list) = c.get("/api/notifications").await;
    list["unread"].as_i64().unwrap()
}

#[tokio::test]
async fn edit_delete_react_reply_and_thread_are_events_and_history() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("life", false).await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;
    let mut ws = bob.ws("?feeds=chat").await;
    ws.hello().await;

    let m = sent(&alice, &room, "first draft", "m1").await;
    let id = m["id"].as_str().unwrap();
    assert_eq!(m["edited_at"], Value::Null);
    assert_eq!(m["deleted"], false);
    assert_eq!(m["reply_count"], 0);
    assert_eq!(m["reactions"], json!([]));
    assert_eq!(ws.next_of("message").await.data["id"], id);

    // Edit: the author only; the answer and the event carry the new body and edited_at.
    let (status, edited) = alice
        .patch(&msg_path(&room, id), json!({"body": "second draft"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["body"], "second draft");
    assert!(edited["edited_at"].as_i64().is_some());
    assert_eq!(
        edited["seq"], m["seq"],
        "an edit keeps the place in history"
    );
    let ev = ws.next_of("message_updated").await;
    assert_eq!(ev.data["id"], id);
    assert_eq!(ev.data["body"], "second draft");
    assert_eq!(ev.data["edited_at"], edited["edited_at"]);

    // Reactions: idempotent, counted per emoji, `mine` per reader, who reacted listed.
    for c in [&bob, &bob, &alice] {
        let (status, body) = c.put_empty(&reaction_path(&room, id, "👍")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let ev = ws.next_of("reaction").await;
    assert_eq!(ev.data["emoji"], "👍");
    assert_eq!(ev.data["user"]["username"], "bob");
    assert_eq!(ev.data["added"], true);
    assert_eq!(ev.data["count"], 1);
    let ev = ws.next_of("reaction").await;
    assert_eq!(
        (
            ev.data["user"]["username"].as_str(),
            ev.data["count"].as_i64()
        ),
        (Some("alice"), Some(2)),
        "bob's second PUT made no event: {}",
        ev.data
    );
    bob.put_empty(&reaction_path(&room, id, "🎉")).await;
    assert_eq!(ws.next_of("reaction").await.data["emoji"], "🎉");
    let seen = in_history(&bob, &room, id).await;
    let thumbs = reaction(&seen, "👍").unwrap();
    assert_eq!(thumbs["count"], 2);
    assert_eq!(thumbs["mine"], true);
    assert_eq!(
        thumbs["users"],
        json!([{"id": seen["reactions"][0]["users"][0]["id"], "username": "bob"},
               {"id": m["author"]["id"], "username": "alice"}])
    );
    assert_eq!(reaction(&seen, "🎉").unwrap()["count"], 1);
    let (first, second) = (
        &seen["reactions"][0]["emoji"],
        &seen["reactions"][1]["emoji"],
    );
    assert_eq!(
        (first.as_str(), second.as_str()),
        (Some("👍"), Some("🎉")),
        "first used first"
    );
    let as_alice = in_history(&alice, &room, id).await;
    assert_eq!(reaction(&as_alice, "🎉").unwrap()["mine"], false);
    let (status, _) = bob.delete(&reaction_path(&room, id, "🎉")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let ev = ws.next_of("reaction").await;
    assert_eq!(
        (ev.data["added"].as_bool(), ev.data["count"].as_i64()),
        (Some(false), Some(0))
    );
    let (status, _) = bob.delete(&reaction_path(&room, id, "🎉")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "removing twice is fine");
    assert!(reaction(&in_history(&bob, &room, id).await, "🎉").is_none());

    // A reply: quotes its root; the root's reply count moves, as an event in the same commit.
    let (status, r1) = reply(&bob, &room, id, "an answer", "r1").await;
    assert_eq!(status, StatusCode::CREATED, "{r1}");
    assert_eq!(r1["reply_to"]["id"], id);
    assert_eq!(r1["reply_to"]["author"]["username"], "alice");
    assert_eq!(r1["reply_to"]["excerpt"], "second draft");
    let msg_ev = ws.next_of("message").await;
    assert_eq!(msg_ev.data["id"], r1["id"]);
    let root_ev = ws.next_of("message_updated").await;
    assert_eq!(
        root_ev.id.unwrap(),
        msg_ev.id.unwrap() + 1,
        "one commit, in order"
    );
    assert_eq!(root_ev.data["id"], id);
    assert_eq!(root_ev.data["reply_count"], 1);
    assert_eq!(root_ev.data["body"], "second draft");
    assert_eq!(
        root_ev.data["reactions"][0]["mine"], false,
        "an event's payload is the same for every reader"
    );
    let (status, again) = reply(&bob, &room, id, "an answer", "r1").await;
    assert_eq!(status, StatusCode::OK, "a retry: {again}");
    assert_eq!(again["id"], r1["id"]);
    let (_, r2) = reply(&alice, &room, id, "and another", "r2").await;
    assert_eq!(ws.next_of("message_updated").await.data["reply_count"], 2);
    sent(&alice, &room, "not in the thread", "m2").await;
    let (status, thread) = bob.get(&format!("{}/thread", msg_path(&room, id))).await;
    assert_eq!(status, StatusCode::OK, "{thread}");
    assert_eq!(thread["root"]["id"], id);
    assert_eq!(thread["root"]["reply_count"], 2);
    assert_eq!(
        thread["root"]["reactions"][0]["mine"], true,
        "as bob sees it"
    );
    let replies: Vec<&Value> = thread["replies"].as_array().unwrap().iter().collect();
    assert_eq!(
        replies.iter().map(|r| &r["id"]).collect::<Vec<_>>(),
        vec![&r1["id"], &r2["id"]],
        "oldest first, only the replies"
    );
    assert_eq!(in_history(&bob, &room, id).await["reply_count"], 2);

    // Delete: a tombstone in its place, reactions gone, replies keep pointing at it.
    let (status, body) = alice.delete(&msg_path(&room, id)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let ev = ws.next_of("message_updated").await;
    assert_eq!(ev.data["id"], id);
    assert_eq!(ev.data["deleted"], true);
    assert_eq!(ev.data["body"], "");
    assert_eq!(ev.data["reactions"], json!([]));
    let tomb = in_history(&bob, &room, id).await;
    assert_eq!(
        (tomb["deleted"].as_bool(), tomb["body"].as_str()),
        (Some(true), Some(""))
    );
    assert_eq!(tomb["seq"], m["seq"]);
    let r1_now = in_history(&bob, &room, r1["id"].as_str().unwrap()).await;
    assert_eq!(r1_now["reply_to"]["deleted"], true);
    assert_eq!(r1_now["reply_to"]["excerpt"], "");
    let (status, _) = alice.delete(&msg_path(&room, id)).await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "deleting a tombstone changes nothing"
    );
    // Nothing more was published for it: no stored event comes before the next change.
    sent(&alice, &room, "after", "m3").await;
    loop {
        let next = ws.next_event().await;
        if next.id.is_none() {
            continue;
        }
        assert_eq!(
            (next.kind.as_str(), &next.data["body"]),
            ("message", &json!("after"))
        );
        break;
    }
}

#[tokio::test]
async fn an_edit_notifies_only_the_newly_mentioned() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let carol = app.client();
    carol.signup("carol").await;
    let room = alice.create_room("mentions", false).await;
    for c in [&bob, &carol] {
        c.post_empty(&format!("/api/rooms/{room}/join")).await;
    }
    let m = sent(&alice, &room, "hello @bob", "m1").await;
    let id = m["id"].as_str().unwrap();
    assert_eq!(unread_notifications(&bob).await, 1);
    assert_eq!(unread_notifications(&carol).await, 0);
    let mut sse = carol.sse("?feeds=notifications").await;
    assert_eq!(sse.next_event().await.unwrap().kind, "hello");

    let (status, _) = alice
        .patch(
            &msg_path(&room, id),
            json!({"body": "hello @bob and @carol"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let note = sse.next_event().await.unwrap();
    assert_eq!(note.kind, "notification");
    assert_eq!(note.data["kind"], "mention");
    assert!(note.data["link"].as_str().unwrap().ends_with(id));
    assert_eq!(unread_notifications(&bob).await, 1, "bob was told already");
    assert_eq!(unread_notifications(&carol).await, 1);
    // Mentioning the same people again, or oneself, tells nobody.
    let (status, _) = alice
        .patch(
            &msg_path(&room, id),
            json!({"body": "hi @carol @bob @alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unread_notifications(&bob).await, 1);
    assert_eq!(unread_notifications(&carol).await, 1);
    assert_eq!(unread_notifications(&alice).await, 0);
}

#[tokio::test]
async fn reactions_list_at_most_ten_people_and_twenty_emoji() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("crowd", false).await;
    let m = sent(&alice, &room, "react to me", "m1").await;
    let id = m["id"].as_str().unwrap();
    let mut crowd = Vec::new();
    for i in 0..11 {
        let c = app.client();
        c.signup(&format!("fan{i:02}")).await;
        c.post_empty(&format!("/api/rooms/{room}/join")).await;
        let (status, _) = c.put_empty(&reaction_path(&room, id, "❤️")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        crowd.push(c);
    }
    let seen = in_history(&crowd[10], &room, id).await;
    let heart = reaction(&seen, "❤️").unwrap();
    assert_eq!(heart["count"], 11);
    assert_eq!(
        heart["users"].as_array().unwrap().len(),
        10,
        "the first ten"
    );
    assert_eq!(heart["users"][0]["username"], "fan00");
    assert_eq!(heart["mine"], true, "mine, though not among the ten listed");

    // Twenty different emoji at most; one already there can still be added.
    let emoji: Vec<String> = (0..19)
        .map(|i| char::from_u32(0x1F600 + i).unwrap().to_string())
        .collect();
    for e in &emoji {
        let (status, body) = alice.put_empty(&reaction_path(&room, id, e)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{e}: {body}");
    }
    let (status, body) = alice.put_empty(&reaction_path(&room, id, "🚀")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "too_many_reactions");
    assert!(body["error"]["message"].as_str().unwrap().contains("20"));
    let (status, _) = alice.put_empty(&reaction_path(&room, id, "❤️")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        in_history(&alice, &room, id).await["reactions"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
}

#[tokio::test]
async fn reactions_are_rate_limited_per_user() {
    let app = TestApp::spawn_configured(|c| c.reactions_per_user_per_minute = 3).await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("slow", false).await;
    let m = sent(&alice, &room, "x", "m1").await;
    let id = m["id"].as_str().unwrap();
    for e in ["👍", "👎", "👍"] {
        assert_eq!(
            alice.put_empty(&reaction_path(&room, id, e)).await.0,
            StatusCode::NO_CONTENT
        );
    }
    let (status, body) = alice.delete(&reaction_path(&room, id, "👍")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
}

/// Every new route against everyone who must not pass, and every bad input.
#[tokio::test]
async fn who_may_edit_delete_react_reply_and_read_threads() {
    let app = TestApp::spawn().await;
    let admin = app.client();
    admin.signup("root").await; // the first user: an administrator
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let stranger = app.client();
    stranger.signup("stranger").await;
    let former = app.client();
    former.signup("former").await;
    let nobody = app.client(); // signed out

    let room = alice.create_room("open", false).await;
    let private = alice.create_room("closed", true).await;
    for c in [&bob, &former] {
        c.post_empty(&format!("/api/rooms/{room}/join")).await;
    }
    let m = sent(&alice, &room, "alice's", "a1").await;
    let id = m["id"].as_str().unwrap().to_string();
    let bobs = sent(&bob, &room, "bob's", "b1").await;
    let bob_id = bobs["id"].as_str().unwrap().to_string();
    let secret = sent(&alice, &private, "secret", "p1").await;
    let secret_id = secret["id"].as_str().unwrap().to_string();
    former.put_empty(&reaction_path(&room, &id, "👋")).await;
    former.post_empty(&format!("/api/rooms/{room}/leave")).await;

    let edit = json!({"body": "changed"});
    let thumbs = |room: &str, id: &str| reaction_path(room, id, "👍");
    let check = |what: &str, got: (StatusCode, Value), want: StatusCode| {
        assert_eq!(got.0, want, "{what}: {}", got.1);
        if want.is_client_error() {
            assert!(
                got.1["error"]["code"].is_string(),
                "{what}: a JSON error: {}",
                got.1
            );
        }
    };

    // Not the author (a member, a visible non-member, a former member, an admin who is not a
    // member), and signed out.
    for (who, c, want) in [
        ("bob", &bob, StatusCode::FORBIDDEN),
        ("stranger", &stranger, StatusCode::FORBIDDEN),
        ("former", &former, StatusCode::FORBIDDEN),
        ("admin", &admin, StatusCode::FORBIDDEN),
        ("signed out", &nobody, StatusCode::UNAUTHORIZED),
    ] {
        check(
            &format!("{who} edits"),
            c.patch(&msg_path(&room, &id), edit.clone()).await,
            want,
        );
    }
    for (who, c, want) in [
        ("bob", &bob, StatusCode::FORBIDDEN),
        ("stranger", &stranger, StatusCode::FORBIDDEN),
        ("former", &former, StatusCode::FORBIDDEN),
        ("signed out", &nobody, StatusCode::UNAUTHORIZED),
    ] {
        check(
            &format!("{who} deletes"),
            c.delete(&msg_path(&room, &id)).await,
            want,
        );
    }
    for (who, c, want) in [
        ("stranger", &stranger, StatusCode::FORBIDDEN),
        ("former", &former, StatusCode::FORBIDDEN),
        ("admin", &admin, StatusCode::FORBIDDEN),
        ("signed out", &nobody, StatusCode::UNAUTHORIZED),
    ] {
        check(
            &format!("{who} reacts"),
            c.put_empty(&thumbs(&room, &id)).await,
            want,
        );
        check(
            &format!("{who} unreacts"),
            c.delete(&reaction_path(&room, &id, "👋")).await,
            want,
        );
        check(
            &format!("{who} replies"),
            reply(c, &room, &id, "hey", "x").await,
            want,
        );
    }
    // A private room is not there for those outside it, whatever they try.
    for (what, got) in [
        (
            "edit",
            stranger
                .patch(&msg_path(&private, &secret_id), edit.clone())
                .await,
        ),
        (
            "delete",
            stranger.delete(&msg_path(&private, &secret_id)).await,
        ),
        (
            "admin delete",
            admin.delete(&msg_path(&private, &secret_id)).await,
        ),
        (
            "react",
            stranger.put_empty(&thumbs(&private, &secret_id)).await,
        ),
        (
            "unreact",
            stranger.delete(&thumbs(&private, &secret_id)).await,
        ),
        (
            "thread",
            stranger
                .get(&format!("{}/thread", msg_path(&private, &secret_id)))
                .await,
        ),
        (
            "reply",
            reply(&stranger, &private, &secret_id, "hey", "y").await,
        ),
    ] {
        check(
            &format!("a stranger's {what} in a private room"),
            got,
            StatusCode::NOT_FOUND,
        );
    }
    // A message of another room is not found through this one.
    check(
        "edit through the wrong room",
        alice
            .patch(&msg_path(&room, &secret_id), edit.clone())
            .await,
        StatusCode::NOT_FOUND,
    );
    check(
        "react through the wrong room",
        alice.put_empty(&thumbs(&room, &secret_id)).await,
        StatusCode::NOT_FOUND,
    );
    check(
        "reply across rooms",
        reply(&alice, &room, &secret_id, "hey", "z").await,
        StatusCode::NOT_FOUND,
    );
    // Threads read like history: a public room's by anyone signed in.
    check(
        "a stranger reads a public thread",
        stranger
            .get(&format!("{}/thread", msg_path(&room, &id)))
            .await,
        StatusCode::OK,
    );
    check(
        "signed out reads a thread",
        nobody
            .get(&format!("{}/thread", msg_path(&room, &id)))
            .await,
        StatusCode::UNAUTHORIZED,
    );

    // Bad ids and bad input.
    let unknown = uuid::Uuid::new_v4().to_string();
    for (what, got, want, code) in [
        (
            "bad room id",
            alice.patch(&msg_path("nope", &id), edit.clone()).await,
            400,
            "invalid_id",
        ),
        (
            "bad message id",
            alice.patch(&msg_path(&room, "nope"), edit.clone()).await,
            400,
            "invalid_id",
        ),
        (
            "unknown message",
            alice.patch(&msg_path(&room, &unknown), edit.clone()).await,
            404,
            "not_found",
        ),
        (
            "unknown room",
            alice.patch(&msg_path(&unknown, &id), edit.clone()).await,
            404,
            "not_found",
        ),
        (
            "empty body",
            alice
                .patch(&msg_path(&room, &id), json!({"body": "  "}))
                .await,
            400,
            "invalid_body",
        ),
        (
            "too long",
            alice
                .patch(&msg_path(&room, &id), json!({"body": "x".repeat(4001)}))
                .await,
            400,
            "too_long",
        ),
        (
            "no body",
            alice.patch(&msg_path(&room, &id), json!({})).await,
            400,
            "invalid_json",
        ),
        (
            "unknown field",
            alice
                .patch(&msg_path(&room, &id), json!({"body": "x", "author": "bob"}))
                .await,
            400,
            "invalid_json",
        ),
        (
            "delete unknown",
            alice.delete(&msg_path(&room, &unknown)).await,
            404,
            "not_found",
        ),
        (
            "delete bad id",
            alice.delete(&msg_path(&room, "1")).await,
            400,
            "invalid_id",
        ),
        (
            "react unknown",
            alice.put_empty(&thumbs(&room, &unknown)).await,
            404,
            "not_found",
        ),
        (
            "react bad id",
            alice.put_empty(&thumbs(&room, "x")).await,
            400,
            "invalid_id",
        ),
        (
            "thread unknown",
            alice
                .get(&format!("{}/thread", msg_path(&room, &unknown)))
                .await,
            404,
            "not_found",
        ),
        (
            "reply to unknown",
            reply(&alice, &room, &unknown, "hey", "u1").await,
            404,
            "not_found",
        ),
        (
            "reply to a bad id",
            reply(&alice, &room, "nope", "hey", "u2").await,
            400,
            "invalid_id",
        ),
    ] {
        assert_eq!(got.0.as_u16(), want, "{what}: {}", got.1);
        let code_ok = got.1["error"]["code"] == code
            || (code == "invalid_json" && got.1["error"]["code"].as_str().is_some());
        assert!(code_ok, "{what}: code {code}: {}", got.1);
    }
    for bad in [
        "a",
        "ok",
        "👍👍",
        "%F0%9F%91%8D%20",
        "%20",
        "<b>",
        ":+1:",
        "1",
        "%E2%80%8D",
    ] {
        let path = format!("/api/rooms/{room}/messages/{id}/reactions/{bad}");
        let (status, body) = alice.put_empty(&path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_emoji", "{bad:?}: {body}");
    }
    // Half an emoji is not UTF-8 at all: refused before it is read.
    let path = format!("/api/rooms/{room}/messages/{id}/reactions/%F0%9F");
    assert_eq!(alice.put_empty(&path).await.0, StatusCode::BAD_REQUEST);
    let long = "👍🏽👍🏽"; // 16 bytes of two pictures: still one emoji each, but two of them
    assert_eq!(
        alice.put_empty(&reaction_path(&room, &id, long)).await.0,
        StatusCode::BAD_REQUEST
    );
    let family = format!("👩‍👩‍👧{}", '\u{FE0F}'); // one emoji, but 21 bytes
    assert_eq!(
        alice.put_empty(&reaction_path(&room, &id, &family)).await.0,
        StatusCode::BAD_REQUEST
    );

    // The author edits; an admin deletes someone else's message in a public room.
    check(
        "the author edits",
        alice.patch(&msg_path(&room, &id), edit.clone()).await,
        StatusCode::OK,
    );
    check(
        "an admin deletes",
        admin.delete(&msg_path(&room, &bob_id)).await,
        StatusCode::NO_CONTENT,
    );
    // A deleted message: no edit (409), no reaction (409), no reply (400); delete again is fine.
    let (status, body) = bob.patch(&msg_path(&room, &bob_id), edit.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "message_deleted");
    let (status, body) = alice.put_empty(&thumbs(&room, &bob_id)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "message_deleted");
    let (status, body) = reply(&alice, &room, &bob_id, "hey", "d1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_reply_to");
    check(
        "bob deletes his tombstone",
        bob.delete(&msg_path(&room, &bob_id)).await,
        StatusCode::NO_CONTENT,
    );
    // The former member's reaction stays (it was theirs when they made it).
    let seen = in_history(&alice, &room, &id).await;
    assert_eq!(reaction(&seen, "👋").unwrap()["count"], 1);
}
