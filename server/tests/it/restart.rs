use crate::common::{Frame, TestApp};
use std::sync::Arc;

#[tokio::test]
async fn messages_survive_a_restart_and_the_cursor_still_works() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("durable", false).await;
    let mut b = alice.ws("?feeds=chat").await;
    b.hello().await;
    alice.send(&room, "before restart", "r1").await;
    let seen = b.next_of("message").await.id.unwrap();
    drop(b);
    let dir = app.stop().await;

    let app = TestApp::spawn_with(Arc::clone(&dir), |_| {}).await;
    let alice = app.client();
    alice.login("alice").await;
    let (_, page) = alice.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(page["messages"][0]["body"], "before restart");
    alice.send(&room, "after restart", "r2").await;
    let mut b = alice.ws(&format!("?feeds=chat&cursor={seen}")).await;
    b.hello().await;
    let next = b.next_of("message").await;
    assert_eq!(next.data["body"], "after restart");
    assert!(next.id.unwrap() > seen);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_tells_sockets_to_reconnect() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let mut ws = alice.ws("?feeds=chat").await;
    ws.hello().await;
    let stopping = tokio::spawn(app.stop());
    loop {
        match ws.next_frame().await {
            Frame::Closed(code) => {
                assert_eq!(code, Some(protocol::close::GOING_AWAY));
                break;
            }
            Frame::Event(_) => continue,
        }
    }
    stopping.await.expect("stopped");
}

#[tokio::test]
async fn the_promote_admin_command_promotes_an_existing_user() {
    let app = TestApp::spawn().await;
    app.client().signup("first").await;
    let bob = app.client();
    bob.signup("bob").await;
    let dir = app.stop().await;
    let config = TestApp::config(&dir);
    let user = server::promote_admin(&config, "BOB")
        .await
        .expect("promoted");
    assert!(user.is_admin);
    assert!(server::promote_admin(&config, "nobody").await.is_err());

    let app = TestApp::spawn_with(dir, |_| {}).await;
    let bob = app.client();
    assert!(bob.login("bob").await.is_admin);
}
