//! Rate limits (sign-up, sign-in, message sends over HTTP and the WebSocket) answer 429 with
//! `Retry-After` and the JSON error (an error frame on the socket); size limits answer 413 over
//! HTTP and close the socket with 1009. Limits are configured small so nothing waits.

use crate::common::{Frame, TestApp, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Asserts a 429 with a sane `Retry-After` and the JSON error.
fn assert_limited(r: &reqwest::Response, what: &str) {
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{what}");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "{what}: Retry-After {retry}");
}

async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.expect("json body")
}

#[tokio::test]
async fn sign_ups_are_limited_per_ip() {
    let app = TestApp::spawn_configured(|c| c.signup_per_ip_per_minute = 2).await;
    app.client().signup("user1").await;
    app.client().signup("user2").await;
    let c = app.client();
    let r = c
        .http
        .post(c.url("/api/auth/signup"))
        .json(&json!({"username": "user3", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_limited(&r, "third sign-up");
    let body = json_of(r).await;
    assert_eq!(body["error"]["code"], "rate_limited");
    // Nothing was created: the name is still free for later.
    let (status, _) = c
        .post(
            "/api/auth/login",
            json!({"username": "user3", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "user3 does not exist");
}

#[tokio::test]
async fn sign_ins_are_limited_per_user_and_ip() {
    let app = TestApp::spawn_configured(|c| {
        c.login_per_user_per_minute = 2;
        c.login_per_ip_per_minute = 3;
    })
    .await;
    app.client().signup("alice").await;
    app.client().signup("bob").await;
    let c = app.client();
    let attempt = |name: &'static str, password: &'static str| {
        c.http
            .post(c.url("/api/auth/login"))
            .json(&json!({"username": name, "password": password}))
            .send()
    };
    assert_eq!(
        attempt("alice", "wrong password").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt("alice", "wrong again").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // Per user: two failures guard the name; from an address that failed, even the right
    // password is refused now, without checking it.
    let r = attempt("alice", PASSWORD).await.unwrap();
    assert_limited(&r, "alice's third");
    assert_eq!(json_of(r).await["error"]["code"], "rate_limited");
    // Per IP: the third attempt from here counted; one more for any user is refused.
    let r = attempt("bob", PASSWORD).await.unwrap();
    assert_limited(&r, "fourth from this IP");
}

#[tokio::test]
async fn sends_are_limited_per_user_over_http_and_the_socket_together() {
    let app = TestApp::spawn_configured(|c| c.sends_per_user_per_minute = 3).await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("general", false).await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;

    for i in 0..2 {
        let (status, body) = alice.send(&room, &format!("m{i}"), &format!("c{i}")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // The third over the socket: the HTTP sends counted toward it.
    let mut ws = alice.ws("?feeds=chat").await;
    ws.hello().await;
    ws.send_json(json!({"type": "send", "room_id": room, "body": "m2", "client_id": "c2"}))
        .await;
    let ack = ws.next_of("ack").await;
    assert_eq!(ack.data["client_id"], "c2");
    // The fourth over the socket: an error frame, and the socket stays open.
    ws.send_json(json!({"type": "send", "room_id": room, "body": "m3", "client_id": "c3"}))
        .await;
    let err = ws.next_of("error").await;
    assert_eq!(err.data["client_id"], "c3");
    assert_eq!(err.data["code"], "rate_limited");
    assert_eq!(err.data["status"], 429);
    // And over HTTP: 429 with Retry-After.
    let r = alice
        .http
        .post(alice.url(&format!("/api/rooms/{room}/messages")))
        .json(&json!({"body": "m4", "client_id": "c4"}))
        .send()
        .await
        .expect("request");
    assert_limited(&r, "fifth send");
    assert_eq!(json_of(r).await["error"]["code"], "rate_limited");
    // Refused sends were not stored; Bob's budget is his own.
    let (status, _) = bob.send(&room, "bob speaks", "b1").await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, history) = bob.get(&format!("/api/rooms/{room}/messages")).await;
    let bodies: Vec<&str> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["body"].as_str().expect("body"))
        .collect();
    assert_eq!(bodies, ["m0", "m1", "m2", "bob speaks"]);
    // The socket is still usable after the refusal (typing is not a send).
    ws.send_json(json!({"type": "typing", "room_id": room}))
        .await;
    ws.close().await;
}

#[tokio::test]
async fn oversized_http_bodies_get_413() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("general", false).await;
    let body = "x".repeat(server::http::MAX_API_BODY + 1);
    for path in [
        format!("/api/rooms/{room}/messages"),
        "/api/rooms".to_string(),
        "/api/auth/login".to_string(),
    ] {
        let (status, err) = alice
            .post(&path, json!({"body": body, "client_id": "big"}))
            .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(err["error"]["code"], "too_large", "{path}");
    }
    // A body within the byte limit but over the 4000-character rule is too large as well.
    let (status, err) = alice.send(&room, &"y".repeat(4001), "long").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    assert_eq!(err["error"]["code"], "too_large");
}

#[tokio::test]
async fn an_oversized_socket_message_closes_with_1009() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("general", false).await;
    let mut ws = alice.ws("?feeds=chat").await;
    ws.hello().await;
    // A send frame just over the limit: not silently dropped, but a clear 1009.
    let body = "z".repeat(server::live::ws::MAX_CLIENT_FRAME);
    ws.send_json(json!({"type": "send", "room_id": room, "body": body, "client_id": "z"}))
        .await;
    loop {
        match ws.next_frame().await {
            Frame::Closed(code) => {
                assert_eq!(code, Some(protocol::close::TOO_BIG));
                break;
            }
            Frame::Event(ev) => assert_ne!(ev.kind, "ack", "the oversized send was not taken"),
        }
    }
    let (_, history) = alice.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(history["messages"], json!([]));
}

/// A client whose connections come from `ip` (any 127.x address reaches the server on Linux).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn strangers_guessing_from_many_addresses_cannot_lock_the_owner_out() {
    let app = TestApp::spawn_configured(|c| {
        c.login_per_user_per_minute = 3;
        c.login_per_ip_per_minute = 5;
        c.login_slowdown_ms = 20;
    })
    .await;
    app.client().signup("olive").await;
    let login = |c: reqwest::Client, password: &'static str| {
        let url = app.url("/api/auth/login");
        async move {
            c.post(url)
                .json(&json!({"username": "olive", "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    // Ten wrong guesses from ten other addresses: the first three fail plainly, the rest are
    // checked too (each from an address with no failures yet) and fail.
    for i in 2..12 {
        let r = login(client_from(&format!("127.0.0.{i}")), "guess guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess from .{i}");
    }
    // A guesser's address that failed is refused while the name is guarded, right password or
    // not.
    let r = login(client_from("127.0.0.5"), PASSWORD).await;
    assert_limited(&r, "a failed address");
    // The owner, from an address of their own, gets in.
    let r = login(client_from("127.0.0.50"), PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK, "the owner is not locked out");
    // A fresh address with a wrong password is still only a failure (and that address is then
    // refused as well).
    let r = login(client_from("127.0.0.51"), "guess again").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = login(client_from("127.0.0.51"), PASSWORD).await;
    assert_limited(&r, "now a failed address");
}
