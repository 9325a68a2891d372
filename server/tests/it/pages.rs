use crate::common::TestApp;
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[tokio::test]
async fn pages_render_on_the_server_and_send_people_where_they_belong() {
    let app = TestApp::spawn().await;
    let c = app.client();
    let r = c.http.get(c.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");

    let r = c.http.get(c.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"action="/api/auth/login""#),
        "a real form: {html}"
    );
    assert!(html.contains(r#"autocomplete="current-password""#));
    assert!(html.contains("/pkg/switchboard.js"), "hydration script");

    c.signup("alice").await;
    let r = c.http.get(c.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in: to the app");
    let r = c.http.get(c.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("alice"), "the page knows who is signed in");
}

#[tokio::test]
async fn the_chat_screen_is_rendered_on_the_server_with_escaped_messages() {
    let app = TestApp::spawn().await;
    let c = app.client();
    c.signup("alice").await;
    let room = c.create_room("rendered-room", false).await;
    c.send(&room, "<b>bold?</b> & friends", "m1").await;
    let html = c
        .http
        .get(c.url(&format!("/rooms/{room}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("rendered-room"), "room list and title");
    assert!(
        html.contains("&lt;b&gt;bold?&lt;/b&gt; &amp; friends"),
        "escaped body: {html}"
    );
    assert!(!html.contains("<b>bold?</b>"));

    // Someone else's private room renders no messages for a stranger.
    let eve = app.client();
    eve.signup("eve").await;
    let secret = c.create_room("secret-room", true).await;
    c.send(&secret, "classified", "m2").await;
    let html = eve
        .http
        .get(eve.url(&format!("/rooms/{secret}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("classified"));
    assert!(!html.contains("secret-room"));
}

/// Pages rendered four at a time while other servers start in the same process: every page
/// arrives whole. (The page title was once read outside its render's reactive scope, which
/// panicked under concurrent renders and cut or hung the response; and making the route table
/// switches resource loading off process-wide, which hung renders when each server made its own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_render_whole_side_by_side_while_other_servers_start() {
    let app = TestApp::spawn().await;
    let c = app.client();
    c.signup("alice").await;
    let room = c.create_room("steady-room", false).await;
    c.send(&room, "still here", "m1").await;
    // Servers start one after another for as long as the pages are being asked for.
    let done = Arc::new(AtomicBool::new(false));
    let starting = tokio::spawn({
        let done = done.clone();
        async move {
            let mut started = 0;
            while !done.load(Ordering::Relaxed) {
                drop(TestApp::spawn().await);
                started += 1;
            }
            started
        }
    });
    let page = |c: &crate::common::Client| c.http.get(c.url(&format!("/rooms/{room}"))).send();
    for _ in 0..25 {
        let answers = futures_util::future::join_all((0..4).map(|_| page(&c))).await;
        for r in answers {
            let r = r.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let html = r.text().await.unwrap();
            assert!(html.contains("still here"), "{html}");
        }
    }
    done.store(true, Ordering::Relaxed);
    assert!(starting.await.unwrap() > 0);
}
