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
            series.starts_with("switchboard_") && series.ends_with('}'),
            "{line}"
        );
    }
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
