//! Full-text search (`GET /api/search`) and history around a message (`around=`): words,
//! prefixes, phrases, permissions, edits, deletes, hostile queries, paging. The same tests run
//! on PostgreSQL when `SWITCHBOARD_TEST_POSTGRES` is set.

use crate::common::{Client, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn sent(c: &Client, room: &str, body: &str) -> String {
    let (status, m) = c.send(room, body, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    m["id"].as_str().unwrap().to_string()
}

/// `q` percent-encoded for a query string.
fn enc(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn search_raw(c: &Client, query: &str) -> (StatusCode, Value) {
    c.get(&format!("/api/search?{query}")).await
}

/// The bodies found for `q` (with extra query parameters `more`), newest first.
async fn found(c: &Client, q: &str, more: &str) -> Vec<String> {
    let (status, v) = search_raw(c, &format!("q={}{more}", enc(q))).await;
    assert_eq!(status, StatusCode::OK, "{q}: {v}");
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["body"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn words_prefixes_phrases_newest_first_with_snippets() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("garden", false).await;
    sent(&alice, &room, "The tomatoes are ripe").await;
    sent(&alice, &room, "Planting TOMATOES again next spring").await;
    sent(&alice, &room, "red tomato sauce, ripe and red").await;
    sent(&alice, &room, "nothing to see here").await;

    // A word, any case, newest first.
    assert_eq!(
        found(&alice, "tomatoes", "").await,
        vec![
            "Planting TOMATOES again next spring",
            "The tomatoes are ripe"
        ]
    );
    // A prefix.
    assert_eq!(found(&alice, "tomat*", "").await.len(), 3);
    // Every word must match, in any order.
    assert_eq!(
        found(&alice, "ripe tomatoes", "").await,
        vec!["The tomatoes are ripe"]
    );
    // A phrase: next to each other, in order.
    assert_eq!(
        found(&alice, "\"tomatoes are ripe\"", "").await,
        vec!["The tomatoes are ripe"]
    );
    assert!(found(&alice, "\"ripe tomatoes\"", "").await.is_empty());
    // The snippet marks the matches; the message is the whole message.
    let (_, v) = search_raw(&alice, "q=sauce").await;
    let hit = &v["results"][0];
    assert!(
        hit["snippet"].as_str().unwrap().contains("<<sauce>>"),
        "{hit}"
    );
    assert_eq!(hit["message"]["room_id"], room.as_str());
    assert!(hit["message"]["author"]["username"] == "alice");
}

#[tokio::test]
async fn only_rooms_i_am_a_member_of_and_filters() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    let a = alice.signup("alice").await;
    let bob = app.client();
    let b = bob.signup("bob").await;
    let private = alice.create_room("secret", true).await;
    let public = alice.create_room("lobby", false).await;
    let bobs = bob.create_room("bobs", false).await;
    sent(&alice, &private, "the password is pineapple").await;
    sent(&alice, &public, "pineapple pizza in the lobby").await;
    sent(&bob, &bobs, "bob likes pineapple too").await;

    // Bob is in none of alice's rooms: not even the public one until he joins.
    assert_eq!(
        found(&bob, "pineapple", "").await,
        vec!["bob likes pineapple too"]
    );
    let (status, _) = bob.post_empty(&format!("/api/rooms/{public}/join")).await;
    assert!(status.is_success());
    assert_eq!(
        found(&bob, "pineapple", "").await,
        vec!["bob likes pineapple too", "pineapple pizza in the lobby"]
    );
    sent(&bob, &public, "more pineapple from bob").await;
    // Filters: one room; one person; both.
    assert_eq!(
        found(&bob, "pineapple", &format!("&room_id={public}")).await,
        vec!["more pineapple from bob", "pineapple pizza in the lobby"]
    );
    assert_eq!(
        found(&bob, "pineapple", &format!("&from={}", a.id)).await,
        vec!["pineapple pizza in the lobby"]
    );
    assert_eq!(
        found(
            &bob,
            "pineapple",
            &format!("&from={}&room_id={public}", b.id)
        )
        .await,
        vec!["more pineapple from bob"]
    );
    // A room bob cannot read gives nothing, not an error that says it exists.
    assert!(found(&bob, "pineapple", &format!("&room_id={private}"))
        .await
        .is_empty());
    // After leaving, the room's messages are not found any more.
    bob.post_empty(&format!("/api/rooms/{public}/leave")).await;
    assert_eq!(
        found(&bob, "pineapple", "").await,
        vec!["bob likes pineapple too"]
    );
    // Signed out: 401.
    let (status, _) = search_raw(&app.client(), "q=pineapple").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn edits_are_searched_as_edited_and_deletes_never() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("edits", false).await;
    let id = sent(&alice, &room, "meeting on monday").await;
    let gone = sent(&alice, &room, "monday lunch is cancelled").await;
    let (status, v) = alice
        .patch(
            &format!("/api/rooms/{room}/messages/{id}"),
            json!({"body": "meeting on friday"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        found(&alice, "monday", "").await,
        vec!["monday lunch is cancelled"]
    );
    let hits = found(&alice, "friday", "").await;
    assert_eq!(hits, vec!["meeting on friday"]);
    let (status, v) = alice
        .delete(&format!("/api/rooms/{room}/messages/{gone}"))
        .await;
    assert!(status.is_success(), "{v}");
    assert!(found(&alice, "monday", "").await.is_empty());
    assert!(found(&alice, "lunch", "").await.is_empty());
    assert_eq!(
        found(&alice, "meeting", "").await,
        vec!["meeting on friday"]
    );
}

#[tokio::test]
async fn hostile_queries_are_results_or_a_clear_400() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("hostile", false).await;
    sent(&alice, &room, "near and far, or not: body* \"quoted\" text").await;
    let long = "x".repeat(201);
    // (query string, expected status; for 400 the error code)
    let table: Vec<(String, StatusCode, &str)> = vec![
        ("q=".into(), StatusCode::BAD_REQUEST, "empty_query"),
        ("".into(), StatusCode::BAD_REQUEST, "empty_query"),
        (
            format!("q={}", enc("   ")),
            StatusCode::BAD_REQUEST,
            "empty_query",
        ),
        (
            format!("q={long}"),
            StatusCode::BAD_REQUEST,
            "query_too_long",
        ),
        (
            format!("q={}", enc("*")),
            StatusCode::BAD_REQUEST,
            "no_words",
        ),
        (
            format!("q={}", enc("\"")),
            StatusCode::BAD_REQUEST,
            "no_words",
        ),
        (
            format!("q={}", enc("!?.,;:()[]{}^$")),
            StatusCode::BAD_REQUEST,
            "no_words",
        ),
        (format!("q={}", enc("NEAR")), StatusCode::OK, ""),
        (format!("q={}", enc("NEAR(near far)")), StatusCode::OK, ""),
        (
            format!("q={}", enc("near AND far OR NOT body")),
            StatusCode::OK,
            "",
        ),
        (
            format!("q={}", enc("\"unbalanced quote")),
            StatusCode::OK,
            "",
        ),
        (format!("q={}", enc("body:text")), StatusCode::OK, ""),
        (format!("q={}", enc("* near")), StatusCode::OK, ""),
        (format!("q={}", enc("quo*ted")), StatusCode::OK, ""),
        (
            format!("q={}", enc("'; DROP TABLE messages; --")),
            StatusCode::OK,
            "",
        ),
        (
            format!("q={}", enc("a' & b | !c <-> d:*")),
            StatusCode::OK,
            "",
        ),
        (
            format!("q={}", enc("\\ \\\\ ''")),
            StatusCode::BAD_REQUEST,
            "no_words",
        ),
        (
            format!("q={}", enc("^near -far +body ~text")),
            StatusCode::OK,
            "",
        ),
        (
            format!("q={}", enc("ünïcödé 日本語 emoji 🎉")),
            StatusCode::OK,
            "",
        ),
        (
            "q=near&limit=0".into(),
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        ),
        (
            "q=near&limit=51".into(),
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        ),
        ("q=near&limit=-1".into(), StatusCode::BAD_REQUEST, ""),
        (
            "q=near&before=nope".into(),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "q=near&room_id=nope".into(),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "q=near&from=nope".into(),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            format!("q=near&before={}", uuid::Uuid::new_v4()),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (query, want, code) in table {
        let (status, v) = search_raw(&alice, &query).await;
        assert_eq!(status, want, "{query}: {v}");
        if status == StatusCode::OK {
            assert!(v["results"].is_array(), "{query}: {v}");
        } else {
            assert!(v["error"]["message"].is_string(), "{query}: {v}");
            if !code.is_empty() {
                assert_eq!(v["error"]["code"], code, "{query}: {v}");
            }
        }
    }
    // The typed operators were searched as words.
    assert_eq!(found(&alice, "NEAR far", "").await.len(), 1);
    assert_eq!(found(&alice, "\"quoted text", "").await.len(), 1);
    assert_eq!(found(&alice, "body:text", "").await.len(), 1);
}

#[tokio::test]
async fn paging_with_limit_and_before() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("paging", false).await;
    for i in 0..7 {
        sent(&alice, &room, &format!("ping number {i}")).await;
    }
    let mut seen = Vec::new();
    let mut before = String::new();
    loop {
        let (status, v) = search_raw(&alice, &format!("q=ping&limit=3{before}")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let page = v["results"].as_array().unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        for r in page {
            seen.push(r["message"]["body"].as_str().unwrap().to_string());
        }
        before = format!(
            "&before={}",
            page.last().unwrap()["message"]["id"].as_str().unwrap()
        );
    }
    let want: Vec<String> = (0..7).rev().map(|i| format!("ping number {i}")).collect();
    assert_eq!(seen, want);
    // The default page is 20 at most.
    for i in 0..20 {
        sent(&alice, &room, &format!("ping again {i}")).await;
    }
    assert_eq!(found(&alice, "ping", "").await.len(), 20);
}

#[tokio::test]
async fn history_around_a_message() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("around", false).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(sent(&alice, &room, &format!("line {i}")).await);
    }
    let bodies = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, v) = alice
        .get(&format!(
            "/api/rooms/{room}/messages?around={}&limit=6",
            ids[10]
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let want: Vec<String> = (7..13).map(|i| format!("line {i}")).collect();
    assert_eq!(bodies(&v), want);
    // Near the start and the end: what there is.
    let (_, v) = alice
        .get(&format!(
            "/api/rooms/{room}/messages?around={}&limit=6",
            ids[1]
        ))
        .await;
    let want: Vec<String> = (0..6).map(|i| format!("line {i}")).collect();
    assert_eq!(bodies(&v), want);
    let (_, v) = alice
        .get(&format!("/api/rooms/{room}/messages?around={}", ids[29]))
        .await;
    assert_eq!(bodies(&v).len(), 26);
    assert_eq!(bodies(&v).last().unwrap(), "line 29");
    // Bad input.
    let (status, _) = alice
        .get(&format!("/api/rooms/{room}/messages?around=nope"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = alice
        .get(&format!(
            "/api/rooms/{room}/messages?around={}",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = alice
        .get(&format!(
            "/api/rooms/{room}/messages?around={}&before={}",
            ids[3], ids[4]
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A private room's history around a message is not for strangers.
    let secret = alice.create_room("hidden", true).await;
    let sid = sent(&alice, &secret, "psst").await;
    let bob = app.client();
    bob.signup("bob").await;
    let (status, _) = bob
        .get(&format!("/api/rooms/{secret}/messages?around={sid}"))
        .await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND);
}

/// `switchboard seed` fills a database a server then serves: its people sign in with the seed's
/// password, belong to rooms with history, and find the seed's commonest word.
#[tokio::test]
async fn a_seeded_database_is_served_and_searched() {
    let dir = std::sync::Arc::new(tempfile::TempDir::new().expect("temp dir"));
    let config = TestApp::config(&dir);
    server::seed::seed(
        &config,
        server::seed::SeedOptions {
            messages: 1200,
            rooms: 6,
            users: 20,
        },
    )
    .await
    .expect("seed");
    let app = TestApp::spawn_with(dir, |_| {}).await;
    let c = app.client();
    let (status, body) = c
        .post(
            "/api/auth/login",
            json!({"username": "seed0", "password": "seed-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, rooms) = c.get("/api/rooms").await;
    let mine: Vec<&Value> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["is_member"] == true)
        .collect();
    assert!(!mine.is_empty(), "{rooms}");
    let (status, page) = c
        .get(&format!(
            "/api/rooms/{}/messages?limit=50",
            mine[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page["messages"].as_array().unwrap().is_empty(), "{page}");
    let (status, found) = c.get("/api/search?q=the").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert!(!found["results"].as_array().unwrap().is_empty(), "{found}");
    app.stop().await;
}
