//! The test-only WebSocket echo behind `--ws-echo` (for the Autobahn suite): absent by default,
//! and when on, guarded like /api/live/ws (session, Origin) and closing like it.

use crate::common::{Client, TestApp, WAIT};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

async fn connect(
    c: &Client,
    origin: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let mut req = format!("{}/api/live/echo", c.base.replacen("http", "ws", 1))
        .into_client_request()
        .expect("request");
    if let Some(cookie) = c.session_cookie() {
        req.headers_mut()
            .insert("cookie", cookie.parse().expect("cookie"));
    }
    if let Some(origin) = origin {
        req.headers_mut()
            .insert("origin", origin.parse().expect("origin"));
    }
    tokio_tungstenite::connect_async(req).await.map(|(s, _)| s)
}

fn refused_with(err: tokio_tungstenite::tungstenite::Error, status: StatusCode) -> bool {
    matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == status)
}

#[tokio::test]
async fn the_echo_is_off_unless_asked_for() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let (status, body) = alice.get("/api/live/echo").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn the_echo_echoes_behind_the_same_guards_as_the_socket() {
    let app = TestApp::spawn_configured(|c| c.ws_echo = true).await;
    let same = format!("http://{}", app.addr);
    let anon = app.client();
    let err = connect(&anon, Some(&same))
        .await
        .expect_err("no session: refused");
    assert!(refused_with(err, StatusCode::UNAUTHORIZED));
    let err = connect(&anon, None)
        .await
        .expect_err("no origin signal: refused");
    assert!(refused_with(err, StatusCode::FORBIDDEN));
    let alice = app.client();
    alice.signup("alice").await;
    let err = connect(&alice, Some("http://evil.example"))
        .await
        .expect_err("another origin: refused");
    assert!(refused_with(err, StatusCode::FORBIDDEN));

    let mut ws = connect(&alice, Some(&same)).await.expect("connects");
    for msg in [
        Message::Text("héllo".into()),
        Message::Binary(vec![0u8, 255, 1].into()),
    ] {
        ws.send(msg.clone()).await.expect("send");
        let back = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer in time")
            .expect("open")
            .expect("a message");
        assert_eq!(back, msg);
    }
    // Over the 64 KiB limit: 1009, like /api/live/ws.
    ws.send(Message::Text("x".repeat(65 * 1024).into()))
        .await
        .expect("send");
    let close = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("an answer in time")
        .expect("open")
        .expect("a close frame");
    match close {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1009),
        other => panic!("expected a close frame, got {other:?}"),
    }
}
