//! The origin policy (cross-site WebSocket hijacking, CSRF): live connections and writes from a
//! foreign, `null` or unstated origin are refused with 403 and the JSON error; the server's own
//! origin, a configured one, and `Sec-Fetch-Site: same-origin` pass.

use crate::common::{TestApp, PASSWORD};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Error as WsError;

const EVIL: &str = "http://evil.example";
const PARTNER: &str = "https://partner.example";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().expect("header value"));
    }
    h
}

/// The status and parsed JSON body of a refused WebSocket handshake, or the close of an open
/// one as 101.
async fn ws_status(
    client: &crate::common::Client,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    match client.try_ws_headers("?feeds=chat", headers).await {
        Ok(ws) => {
            ws.close().await;
            (StatusCode::SWITCHING_PROTOCOLS, Value::Null)
        }
        Err(WsError::Http(r)) => {
            let body = r
                .body()
                .as_ref()
                .map(|b| serde_json::from_slice(b).expect("json error body"))
                .unwrap_or(Value::Null);
            (r.status(), body)
        }
        Err(e) => panic!("handshake failed oddly: {e:?}"),
    }
}

fn assert_forbidden(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
    assert_eq!(body["error"]["code"], "forbidden", "{what}: {body}");
}

#[tokio::test]
async fn websocket_upgrades_need_this_sites_origin() {
    let app = TestApp::spawn_configured(|c| c.allowed_origins = vec![PARTNER.into()]).await;
    let alice = app.client();
    alice.signup("alice").await;
    let own = app.origin();

    for (what, hdrs) in [
        ("foreign origin", vec![("origin", EVIL)]),
        ("null origin", vec![("origin", "null")]),
        ("no origin, no fetch metadata", vec![]),
        ("another host", vec![("origin", "http://chat.example")]),
        (
            "cross-site fetch metadata",
            vec![("sec-fetch-site", "cross-site")],
        ),
        // A page on another port of the same host is another origin.
        ("other port", vec![("origin", "http://127.0.0.1:1")]),
    ] {
        let (status, body) = ws_status(&alice, &hdrs).await;
        assert_forbidden(status, &body, what);
    }
    for (what, hdrs) in [
        ("own origin", vec![("origin", own.as_str())]),
        ("configured origin", vec![("origin", PARTNER)]),
        // A configured origin is cross-site by nature: its fetch metadata says so.
        (
            "configured origin, cross-site metadata",
            vec![("origin", PARTNER), ("sec-fetch-site", "cross-site")],
        ),
    ] {
        let (status, _) = ws_status(&alice, &hdrs).await;
        assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS, "{what}");
    }
    // The origin check comes before the session: a stranger learns nothing more.
    let anon = app.client();
    let (status, body) = ws_status(&anon, &[("origin", EVIL)]).await;
    assert_forbidden(status, &body, "anonymous, foreign origin");
    let (status, _) = ws_status(&anon, &[("origin", own.as_str())]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn event_streams_and_polls_need_an_origin_signal() {
    let app = TestApp::spawn_configured(|c| c.allowed_origins = vec![PARTNER.into()]).await;
    let alice = app.client();
    alice.signup("alice").await;
    let cookie = alice.session_cookie().expect("cookie");
    let own = app.origin();
    let http = reqwest::Client::new();
    let get = |path: &str, extra: &[(&'static str, &str)]| {
        let mut req = http
            .get(app.url(path))
            .header("cookie", cookie.clone())
            .header("accept", "text/event-stream");
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send()
    };
    for path in [
        "/api/live/sse?feeds=chat",
        "/api/live/poll?feeds=chat&wait=0",
    ] {
        for (what, extra) in [
            ("foreign origin", vec![("origin", EVIL)]),
            ("null origin", vec![("origin", "null")]),
            ("neither origin nor fetch metadata", vec![]),
            ("cross-site", vec![("sec-fetch-site", "cross-site")]),
            ("same-site", vec![("sec-fetch-site", "same-site")]),
        ] {
            let r = get(path, &extra).await.expect("request");
            let status = r.status();
            let body: Value = r.json().await.expect("json error");
            assert_forbidden(status, &body, &format!("{path}, {what}"));
        }
        for (what, extra) in [
            // What Chromium sends for a same-origin EventSource or fetch GET: no Origin.
            (
                "same-origin fetch metadata",
                vec![("sec-fetch-site", "same-origin")],
            ),
            ("own origin", vec![("origin", own.as_str())]),
            ("configured origin", vec![("origin", PARTNER)]),
        ] {
            let r = get(path, &extra).await.expect("request");
            assert_eq!(r.status(), StatusCode::OK, "{path}, {what}");
        }
    }
    // The admin console's metrics stream is an event stream too.
    let r = get("/api/admin/metrics/live", &[("origin", EVIL)])
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = get(
        "/api/admin/metrics/live",
        &[("sec-fetch-site", "same-origin")],
    )
    .await
    .expect("request");
    assert_eq!(r.status(), StatusCode::OK, "alice is the first user: admin");
}

#[tokio::test]
async fn writes_from_other_origins_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("general", false).await;
    let cookie = alice.session_cookie().expect("cookie");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    // A hostile page posting with the user's cookie: JSON, a form, and a page route outside
    // /api (where a Leptos server function would live). None of them gets through.
    let attempts: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "message send",
            http.post(app.url(&format!("/api/rooms/{room}/messages")))
                .json(&json!({"body": "pwned", "client_id": "x1"})),
        ),
        ("logout", http.post(app.url("/api/auth/logout"))),
        (
            "login form (login CSRF)",
            http.post(app.url("/api/auth/login"))
                .form(&[("username", "alice"), ("password", PASSWORD)]),
        ),
        (
            "admin write",
            http.put(app.url("/api/admin/transports"))
                .json(&json!({"websocket": false})),
        ),
        ("page route", http.post(app.url("/login"))),
        (
            "server function path",
            http.post(app.url("/api/some_server_fn")),
        ),
    ];
    for (what, req) in attempts {
        for (k, v) in [
            ("origin", EVIL),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            let r = req
                .try_clone()
                .expect("clonable")
                .header("cookie", cookie.clone())
                .header(k, v)
                .send()
                .await
                .expect("request");
            let status = r.status();
            let body: Value = r.json().await.expect("json error");
            assert_forbidden(status, &body, &format!("{what} with {k}: {v}"));
        }
    }
    let (status, body) = alice.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["messages"], json!([]), "no write got through");

    // Same-origin pages (Origin, or only fetch metadata) and non-browser clients (neither
    // header: curl, scripts) may write.
    let same = app.client_with(headers(&[("sec-fetch-site", "same-origin")]));
    same.signup("bob").await;
    let plain = app.client_with(HeaderMap::new());
    plain.signup("carol").await;
    let (status, _) = plain.post_empty(&format!("/api/rooms/{room}/join")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = plain.send(&room, "from a script", "c1").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A request as a DNS-rebinding page sends it: raw, with its own `Host`, the session cookie if
/// given. Returns the status line's code and the body.
async fn with_host(app: &TestApp, host: &str, target: &str, cookie: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let cookie = cookie
        .map(|c| format!("cookie: {c}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nhost: {host}\r\n{cookie}connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[tokio::test]
async fn only_this_servers_host_names_are_answered() {
    let app = TestApp::spawn_configured(|c| {
        c.allowed_hosts = vec!["chat.example.com".into()];
        c.allowed_origins = vec![PARTNER.into()];
    })
    .await;
    let alice = app.client();
    alice.signup("alice").await;
    let cookie = alice.session_cookie().expect("signed in");
    let port = app.addr.port();
    // A rebinding attacker's name, with the victim's cookie: refused everywhere, before anything
    // is read or opened.
    for target in [
        "/api/me",
        "/",
        "/login",
        "/api/live/poll?feeds=chat&wait=0",
        "/api/live/sse?feeds=chat",
        "/pkg/switchboard.css",
    ] {
        let (code, body) =
            with_host(&app, &format!("evil.example:{port}"), target, Some(&cookie)).await;
        assert_eq!(code, 400, "{target}: {body}");
        let err: Value = serde_json::from_str(&body).expect("JSON error");
        assert_eq!(err["error"]["code"], "invalid_host", "{target}");
    }
    let (code, _) = with_host(&app, "evil.example", "/api/me", None).await;
    assert_eq!(code, 400);
    // Its own address, localhost, the configured name (any port) and the partner's host pass.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "chat.example.com".into(),
        "Chat.Example.com:8443".into(),
        "partner.example".into(),
    ] {
        let (code, body) = with_host(&app, &host, "/api/me", Some(&cookie)).await;
        assert_eq!(code, 200, "{host}: {body}");
    }
    // A health check may use any name.
    let (code, _) = with_host(&app, "switchboard-1:3000", "/healthz", None).await;
    assert_eq!(code, 200);
}
