//! Sessions: cookie attributes, a new id at sign-in (fixation), destroyed at sign-out, the
//! absolute timeout, and "sign out everywhere" ending every session and its live connections.

use crate::common::{Client, Frame, Live, Sse, TestApp, PASSWORD, WAIT};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;

/// A client carrying exactly this cookie header (an attacker replaying a stolen or planted id).
fn with_cookie(app: &TestApp, cookie: &str) -> Client {
    let c = app.client();
    let url = c.base.parse().expect("url");
    reqwest::cookie::CookieStore::set_cookies(
        &*c.jar,
        &mut [reqwest::header::HeaderValue::from_str(cookie).expect("cookie")].iter(),
        &url,
    );
    c
}

async fn set_cookie_of_login(app: &TestApp, name: &str) -> String {
    let r = app
        .client()
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK);
    r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string()
}

#[tokio::test]
async fn the_cookie_is_http_only_lax_and_secure_when_configured() {
    let app = TestApp::spawn_configured(|c| c.session_idle_secs = 3600).await;
    app.client().signup("alice").await;
    let cookie = set_cookie_of_login(&app, "alice").await;
    assert!(cookie.starts_with("switchboard_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(cookie.contains("Max-Age=3600"), "idle timeout: {cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP by default: {cookie}"
    );

    let app = TestApp::spawn_configured(|c| c.secure_cookies = true).await;
    app.client().signup("alice").await;
    let cookie = set_cookie_of_login(&app, "alice").await;
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn a_session_id_planted_before_sign_in_is_worthless_after() {
    let app = TestApp::spawn().await;
    let mallory = app.client();
    mallory.signup("mallory").await;
    app.client().signup("alice").await;
    // Mallory plants her session cookie in Alice's browser; Alice signs in with it.
    let planted = mallory.session_cookie().expect("cookie");
    let victim = with_cookie(&app, &planted);
    assert_eq!(victim.session_cookie().as_deref(), Some(planted.as_str()));
    victim.login("alice").await;
    let after = victim.session_cookie().expect("cookie after sign-in");
    assert_ne!(after, planted, "a new session id at sign-in");
    let (_, me) = victim.get("/api/me").await;
    assert_eq!(me["username"], "alice");
    // The planted id does not lead to Alice's session (it leads nowhere at all).
    let (status, body) = mallory.get("/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn a_signed_out_cookie_is_refused() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let cookie = alice.session_cookie().expect("cookie");
    let (status, _) = alice.post_empty("/api/auth/logout").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Replaying the old cookie (a copy kept by an attacker) gets nothing.
    let replay = with_cookie(&app, &cookie);
    let (status, body) = replay.get("/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = replay.get("/api/rooms").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn signing_out_closes_that_sessions_connections_only() {
    let app = TestApp::spawn().await;
    let laptop = app.client();
    laptop.signup("alice").await;
    let phone = app.client();
    phone.login("alice").await;
    let room = laptop.create_room("general", false).await;
    let mut on_laptop = laptop.ws("?feeds=chat").await;
    on_laptop.hello().await;
    let mut on_phone = phone.ws("?feeds=chat").await;
    on_phone.hello().await;

    let (status, _) = laptop.post_empty("/api/auth/logout").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    loop {
        match on_laptop.next_frame().await {
            Frame::Closed(code) => {
                assert_eq!(code, Some(protocol::close::UNAUTHORIZED));
                break;
            }
            Frame::Event(_) => continue,
        }
    }
    // The phone's session and socket carry on.
    let (status, _) = phone.send(&room, "still here", "p1").await;
    assert_eq!(status, StatusCode::CREATED);
    let ev = on_phone.next_of("message").await;
    assert_eq!(ev.data["body"], "still here");
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_and_its_connections() {
    let app = TestApp::spawn().await;
    let laptop = app.client();
    laptop.signup("alice").await;
    let phone = app.client();
    phone.login("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    let phone_cookie = phone.session_cookie().expect("cookie");

    // The phone has a socket, an event stream and a long poll open.
    let mut ws = phone.ws("?feeds=chat").await;
    ws.hello().await;
    let mut sse: Sse = phone.sse("?feeds=notifications").await;
    assert_eq!(sse.next_event().await.expect("hello").kind, "hello");
    let (_, first) = phone.get("/api/live/poll?feeds=jobs&wait=0").await;
    let cursor = first["cursor"].as_i64().expect("cursor");
    let poller = phone.clone_session();
    let long_poll = tokio::spawn(async move {
        poller
            .get(&format!(
                "/api/live/poll?feeds=jobs&cursor={cursor}&wait=30"
            ))
            .await
    });
    let mut bobs = Live::open(&bob, "websocket", "chat", None).await;

    let (status, body) = laptop.post_empty("/api/auth/logout-everywhere").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    loop {
        match ws.next_frame().await {
            Frame::Closed(code) => {
                assert_eq!(
                    code,
                    Some(protocol::close::UNAUTHORIZED),
                    "socket closed as signed out"
                );
                break;
            }
            Frame::Event(_) => continue,
        }
    }
    let goodbye = loop {
        let ev = sse.next_event().await.expect("a disconnect before the end");
        if ev.kind == "disconnect" {
            break ev;
        }
    };
    assert_eq!(goodbye.data["code"], protocol::close::UNAUTHORIZED);
    assert!(sse.next_event().await.is_none(), "the stream ends");
    let (status, body) = tokio::time::timeout(WAIT, long_poll)
        .await
        .expect("the long poll is answered at once")
        .expect("poll task");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Both of Alice's cookies are dead, including a copy of the phone's.
    for c in [&laptop, &phone, &with_cookie(&app, &phone_cookie)] {
        let (status, _) = c.get("/api/me").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // A new sign-in works, and Bob was never touched.
    phone.login("alice").await;
    let (status, _) = phone.get("/api/me").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = bob.get("/api/me").await;
    assert_eq!(status, StatusCode::OK);
    let room = bob.create_room("bobs", false).await;
    bob.send(&room, "bob's socket is open", "b1").await;
    loop {
        let ev = bobs
            .next_stored()
            .await
            .expect("bob's socket still delivers");
        if ev.kind == "message" {
            assert_eq!(ev.data["body"], "bob's socket is open");
            break;
        }
    }
}

#[tokio::test]
async fn sign_out_everywhere_needs_a_session() {
    let app = TestApp::spawn().await;
    let (status, body) = app.client().post_empty("/api/auth/logout-everywhere").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_age_however_busy() {
    // Five seconds of age allowed; the client keeps the session busy (so the idle timeout never
    // trips) until the server refuses it.
    let app = TestApp::spawn_configured(|c| c.session_max_secs = 5).await;
    let alice = app.client();
    alice.signup("alice").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut served = 0;
    loop {
        let (status, _) = alice.get("/api/me").await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        served += 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session never ended"
        );
        // Pacing only; the loop ends on the condition.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(served > 0, "the session worked before it aged out");
    // Signing in again starts a new session.
    alice.login("alice").await;
    let (status, _) = alice.get("/api/me").await;
    assert_eq!(status, StatusCode::OK);
}

/// The idle limit the renewal tests run with, in seconds.
const IDLE: u64 = 3;

/// The session row's expiry (Unix seconds) as the store's table has it, or None once it is gone.
async fn stored_expiry(app: &TestApp, cookie: &str) -> Option<i64> {
    let id = cookie
        .split(';')
        .find_map(|c| c.trim().strip_prefix("switchboard_session="))
        .expect("a session cookie")
        .to_string();
    let url = TestApp::config(&app.dir).database_url;
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.expect("database");
        let e: Option<i64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM expiry_date)::BIGINT FROM tower_sessions.session WHERE id = $1",
        )
        .bind(&id)
        .fetch_optional(&pool)
        .await
        .expect("read the session row");
        pool.close().await;
        e
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("database");
        let e: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(strftime('%s', expiry_date) AS INTEGER) FROM tower_sessions WHERE id = ?",
        )
        .bind(&id)
        .fetch_optional(&pool)
        .await
        .expect("read the session row");
        pool.close().await;
        e
    }
}

/// Store writes the server made to renew idle expiries (its /metrics, read by an admin signed
/// in afresh: an idle session of theirs would have timed out, and a fresh one renews nothing).
async fn renewals(admin: &Client) -> u64 {
    admin.login("root").await;
    crate::common::metric(admin, "switchboard_session_renewals_total").await
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Uses `who`'s session through `path` every 100 ms until three idle limits have passed: every
/// answer must be 200 (the cookie jar drops the cookie when its Max-Age runs out, so a cookie
/// never renewed fails here too). Returns (requests, answers that renewed the cookie, ms spent).
async fn use_steadily(who: &Client, path: &str) -> (u64, u64, u128) {
    let start = std::time::Instant::now();
    let (mut requests, mut renewed) = (0u64, 0u64);
    while start.elapsed() < std::time::Duration::from_secs(3 * IDLE) {
        let r = who.get_response(path).await;
        requests += 1;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{path} after {:?} of steady use",
            start.elapsed()
        );
        let cookies: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        if let Some(c) = cookies
            .iter()
            .find(|c| c.starts_with("switchboard_session="))
        {
            assert!(c.contains(&format!("Max-Age={IDLE}")), "{c}");
            assert!(c.contains("HttpOnly"), "{c}");
            renewed += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (requests, renewed, start.elapsed().as_millis())
}

/// The most renewals `ms` of use may cost one session: one per tenth of the idle limit, plus
/// one at either end.
fn renewal_bound(ms: u128) -> u64 {
    (ms / (IDLE as u128 * 100)) as u64 + 2
}

#[tokio::test]
async fn steady_use_renews_the_idle_timeout_over_rest_and_polls_with_bounded_writes() {
    let app = TestApp::spawn_configured(|c| c.session_idle_secs = IDLE).await;
    let admin = app.client();
    admin.signup("root").await;

    for (name, path) in [
        ("alice", "/api/me"),
        ("bob", "/api/live/poll?feeds=chat&wait=0"),
    ] {
        let who = app.client();
        who.signup(name).await;
        let cookie = who.session_cookie().expect("cookie");
        let first = stored_expiry(&app, &cookie).await.expect("a session row");
        let before = renewals(&admin).await;
        let (requests, renewed, ms) = use_steadily(&who, path).await;
        let after = renewals(&admin).await;
        let last = stored_expiry(&app, &cookie)
            .await
            .expect("still a session row");
        let writes = after - before;
        println!(
            "{name} over {path}: {requests} requests in {ms} ms, {renewed} renewed cookies, \
             {writes} renewal writes, expiry {first} -> {last}"
        );
        assert!(last > first, "the stored expiry moved: {first} -> {last}");
        assert!(renewed >= 1, "the browser got a renewed cookie");
        assert!(
            writes <= renewal_bound(ms) + 2,
            "at most one write per tenth of the idle limit: {writes} in {ms} ms"
        );
        assert!(writes < requests, "not a write per request");
    }
}

#[tokio::test]
async fn an_open_websocket_keeps_its_session_alive_and_an_unused_session_dies_at_the_limit() {
    let app = TestApp::spawn_configured(|c| c.session_idle_secs = IDLE).await;
    let admin = app.client();
    admin.signup("root").await;
    let carol = app.client();
    carol.signup("carol").await;
    let dave = app.client();
    dave.signup("dave").await;
    let carols = carol.session_cookie().expect("cookie");
    let daves = dave.session_cookie().expect("cookie");
    let first = stored_expiry(&app, &carols).await.expect("a session row");

    // Carol only holds a WebSocket open (reading what comes: the server's pings); Dave does
    // nothing at all.
    let mut ws = carol.ws("?feeds=chat").await;
    ws.hello().await;
    let before = renewals(&admin).await;
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(3 * IDLE) {
        match tokio::time::timeout(std::time::Duration::from_millis(200), ws.stream.next()).await {
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(other) => panic!("the socket ended: {other:?}"),
        }
    }
    let ms = start.elapsed().as_millis();
    let writes = renewals(&admin).await - before;
    let last = stored_expiry(&app, &carols).await;
    println!("carol's socket: {writes} renewal writes in {ms} ms, expiry {first} -> {last:?}");
    assert!(
        last.is_some_and(|l| l > first),
        "the open socket renewed the session: {first} -> {last:?}"
    );
    assert!(
        writes <= renewal_bound(ms) + 2,
        "at most one write per tenth of the idle limit: {writes} in {ms} ms"
    );
    // The session is good for a new request (the cookie as the socket's page holds it).
    let (status, me) = with_cookie(&app, &carols).get("/api/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "carol");

    // Dave's unused session ended at its limit: wait until its stored expiry has passed.
    let deadline = std::time::Instant::now() + WAIT;
    let expiry = stored_expiry(&app, &daves).await.unwrap_or(0);
    while now_secs() <= expiry {
        assert!(std::time::Instant::now() < deadline, "dave's expiry passes");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, body) = with_cookie(&app, &daves).get("/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}
