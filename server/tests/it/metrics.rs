use crate::common::{Live, TestApp, TRANSPORTS};
use reqwest::StatusCode;

#[tokio::test]
async fn the_meters_count_exactly_what_each_transport_delivered() {
    for transport in TRANSPORTS {
        // A fresh server per transport: its meters start at zero.
        let app = TestApp::spawn().await;
        let alice = app.client();
        alice.signup("alice").await;
        let bob = app.client();
        bob.signup("bob").await;
        let room = alice.create_room("metered", false).await;
        bob.post_empty(&format!("/api/rooms/{room}/join")).await;
        // Bob is online before the measured connection opens (his own presence, announced a
        // moment after a change, would otherwise race the messages), and stays so throughout.
        // (On another transport: its deliveries are counted there.)
        let other = if transport == "websocket" {
            "sse"
        } else {
            "websocket"
        };
        let mut anchor = Live::open(&bob, other, "chat", None).await;
        loop {
            let ev = anchor.next().await.expect("bob's presence");
            if ev.kind == "presence" && ev.data["user"]["username"] == "bob" {
                break;
            }
        }
        let mut live = Live::open(&bob, transport, "chat", None).await;
        for i in 0..3 {
            let (status, _) = alice
                .send(
                    &room,
                    &format!("{transport} {i}"),
                    &format!("{transport}-{i}"),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        // Everything on the chat feed the client got (messages, and presence if any).
        let mut got = 0;
        let mut messages = 0;
        while messages < 3 {
            let ev = live.next().await.expect("event");
            if ev.feed == protocol::Feed::Chat {
                got += 1;
                if ev.kind == "message" {
                    messages += 1;
                }
            }
        }
        let (requests, empty) = live.poll_counts();
        drop(live);
        drop(anchor);
        // The server counts when it writes; the client may read a moment before. Wait for it.
        let deadline = tokio::time::Instant::now() + crate::common::WAIT;
        loop {
            let (status, m) = alice.get("/api/admin/metrics").await;
            assert_eq!(status, StatusCode::OK);
            let cell = &m["transports"][transport]["feeds"]["chat"];
            let delivered = cell["delivered"].as_u64().unwrap();
            if delivered == got {
                if let Some(requests) = requests {
                    assert_eq!(
                        cell["requests"].as_u64().unwrap(),
                        requests,
                        "{transport}: one per poll"
                    );
                    assert_eq!(
                        cell["empty"].as_u64().unwrap(),
                        empty.unwrap(),
                        "{transport}: empty answers"
                    );
                } else {
                    assert_eq!(
                        cell["requests"].as_u64().unwrap(),
                        1,
                        "{transport}: one connection"
                    );
                    assert_eq!(cell["empty"].as_u64().unwrap(), 0);
                }
                assert!(cell["bytes"].as_u64().unwrap() > 0);
                assert!(
                    cell["latency_ms"]["count"].as_u64().unwrap() >= 3,
                    "{transport}: live deliveries timed"
                );
                break;
            }
            assert!(
                delivered < got,
                "{transport}: counted {delivered}, client got {got}"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "{transport}: meters caught up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if transport != "short_poll" {
            continue;
        }
        check_prometheus_and_access(&alice, &bob).await;
    }
}

async fn check_prometheus_and_access(alice: &crate::common::Client, bob: &crate::common::Client) {
    // Prometheus text: every sample line is `name{labels} number`.
    let r = alice.http.get(alice.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        assert!(value.parse::<f64>().is_ok(), "a number: {line}");
        assert!(
            series.starts_with("switchboard_") && (!series.contains('{') || series.ends_with('}')),
            "{line}"
        );
    }
    assert!(text.contains("switchboard_write_batch_messages_total "));
    assert!(text.contains("switchboard_delivery_latency_seconds_bucket{transport=\"websocket\",feed=\"chat\",le=\"+Inf\"}"));

    // Admins only.
    assert_eq!(bob.get("/api/admin/metrics").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        bob.http
            .get(bob.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
}

/// Waits until the admin metrics satisfy `done`, and returns them.
async fn metrics_when(
    admin: &crate::common::Client,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + crate::common::WAIT;
    loop {
        let (status, m) = admin.get("/api/admin/metrics").await;
        assert_eq!(status, StatusCode::OK);
        if done(&m) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics never got there: {m}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn catch_ups_stay_out_of_latency_and_only_marked_reconnects_count() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("catch-up", false).await;
    let (_, first) = alice.get("/api/live/poll?feeds=chat&wait=0").await;
    let cursor = first["cursor"].as_i64().unwrap();
    for i in 0..3 {
        let (status, _) = alice.send(&room, &format!("m{i}"), &format!("c{i}")).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    // A first connection from an older cursor (a page's render point) catches up: not latency,
    // not a reconnect. The same from a client that lost its connection says `reconnect=1`.
    for query in [
        format!("?feeds=chat&cursor={cursor}"),
        format!("?feeds=chat&cursor={cursor}&reconnect=1"),
    ] {
        let mut ws = alice.ws(&query).await;
        ws.hello().await;
        for _ in 0..3 {
            ws.next_of("message").await;
        }
        ws.close().await;
    }
    let m = metrics_when(&alice, |m| {
        m["transports"]["websocket"]["feeds"]["chat"]["replayed"] == 6
    })
    .await;
    let chat = &m["transports"]["websocket"]["feeds"]["chat"];
    assert_eq!(chat["reconnects"], 1, "{chat}");
    // Whatever else went out live (presence, say) is timed; the six catch-ups are not.
    assert_eq!(
        chat["latency_ms"]["count"].as_u64().unwrap() + 6,
        chat["delivered"].as_u64().unwrap(),
        "{chat}"
    );

    // A poll loop's first request from an old cursor: a catch-up too. A poll carrying `eph`
    // continues a loop: what it brings counts as polling latency.
    let (_, a) = alice
        .get(&format!("/api/live/poll?feeds=chat&wait=0&cursor={cursor}"))
        .await;
    assert_eq!(a["events"].as_array().unwrap().len(), 3);
    let eph = a["eph"].as_u64().unwrap();
    let next = a["cursor"].as_i64().unwrap();
    alice.send(&room, "later", "c-later").await;
    let (_, b) = alice
        .get(&format!(
            "/api/live/poll?feeds=chat&wait=0&cursor={next}&eph={eph}&reconnect=1"
        ))
        .await;
    assert!(!b["events"].as_array().unwrap().is_empty());
    let m = metrics_when(&alice, |m| {
        m["transports"]["short_poll"]["feeds"]["chat"]["replayed"] == 3
            && m["transports"]["short_poll"]["feeds"]["chat"]["latency_ms"]["count"]
                .as_u64()
                .unwrap()
                >= 1
    })
    .await;
    assert_eq!(
        m["transports"]["short_poll"]["feeds"]["chat"]["reconnects"],
        1
    );
}

#[tokio::test]
async fn browsers_report_latency_and_faults_and_bad_reports_are_refused() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;

    // The clock for offset estimates: no session needed, never cached.
    let r = app
        .client()
        .http
        .get(app.url("/api/time"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t: protocol::ServerTime = r.json().await.unwrap();
    let local = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64;
    assert!(
        (t.now_ms - local).abs() < 60_000.0,
        "{} vs {local}",
        t.now_ms
    );

    // A report accounts for no more events than were delivered on its transport and feed:
    // Bob first gets three messages over SSE and over short polls.
    let room = alice.create_room("reported", false).await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;
    let mut sse = Live::open(&bob, "sse", "chat", None).await;
    let mut poll = Live::open(&bob, "short_poll", "chat", None).await;
    for i in 0..3 {
        alice.send(&room, &format!("r{i}"), &format!("r{i}")).await;
    }
    for live in [&mut sse, &mut poll] {
        let mut messages = 0;
        while messages < 3 {
            if live.next().await.expect("event").kind == "message" {
                messages += 1;
            }
        }
    }
    metrics_when(&alice, |m| {
        ["sse", "short_poll"].iter().all(|t| {
            m["transports"][t]["feeds"]["chat"]["delivered"]
                .as_u64()
                .unwrap_or(0)
                >= 3
        })
    })
    .await;
    let report = serde_json::json!({"reports": [
        {"transport": "sse", "feed": "chat", "latency_ms": [2.5, 3.5, 40.0]},
        {"transport": "short_poll", "feed": "chat", "latency_ms": [900.0], "gaps": 1, "duplicates": 2},
    ]});
    assert_eq!(
        app.client().post("/api/live/stats", report.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = bob.post("/api/live/stats", report).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let bad = [
        (
            serde_json::json!({"reports": [{"transport": "sse", "feed": "chat", "latency_ms": [-1.0]}]}),
            "invalid_stats",
        ),
        (
            serde_json::json!({"reports": [{"transport": "sse", "feed": "chat", "latency_ms": vec![1.0; 501]}]}),
            "invalid_stats",
        ),
        (
            serde_json::json!({"reports": vec![serde_json::json!({"transport": "sse", "feed": "chat"}); 17]}),
            "invalid_stats",
        ),
        (
            serde_json::json!({"reports": [{"transport": "carrier_pigeon", "feed": "chat"}]}),
            "invalid_json",
        ),
        (
            serde_json::json!({"reports": [{"transport": "sse", "feed": "chat", "extra": 1}]}),
            "invalid_json",
        ),
        (serde_json::json!({"reports": "none"}), "invalid_json"),
    ];
    for (body, code) in bad {
        let (status, answer) = bob.post("/api/live/stats", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }

    let m = metrics_when(&alice, |m| {
        m["transports"]["sse"]["feeds"]["chat"]["client_latency_ms"]["count"] == 3
    })
    .await;
    let sse = &m["transports"]["sse"]["feeds"]["chat"]["client_latency_ms"];
    // The refused reports (all for sse/chat) left no trace: still the three samples.
    assert_eq!(sse["max"], 40.0);
    let polls = &m["transports"]["short_poll"]["feeds"]["chat"];
    assert_eq!(polls["client_gaps"], 1);
    assert_eq!(polls["client_duplicates"], 2);
}

#[tokio::test]
async fn the_admin_console_gets_the_metrics_pushed_every_second() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let bob = app.client();
    bob.signup("bob").await;
    assert_eq!(
        bob.get("/api/admin/metrics/live").await.0,
        StatusCode::FORBIDDEN
    );
    let r = alice
        .http
        .get(alice.url("/api/admin/metrics/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut sse = crate::common::Sse::from_response(r);
    // Two snapshots in a row: a feed, not a one-off answer.
    for _ in 0..2 {
        let snapshot = sse.next_raw("metrics").await;
        assert!(snapshot["transports"]["websocket"]["feeds"]["chat"]["delivered"].is_u64());
    }
    assert_eq!(sse.retry, Some(2000));
}
