use crate::common::{Live, TestApp};
use crate::notifications::wait_job;
use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn a_demo_job_reports_increasing_progress_live_and_ends_done() {
    let app = TestApp::spawn().await;
    let bob = app.client();
    bob.signup("bob").await;
    let mut live = Live::open(&bob, "websocket", "jobs", None).await;
    let (status, job) = bob
        .post(
            "/api/jobs",
            json!({"kind": "demo", "steps": 5, "step_ms": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(job["state"], "queued");
    assert_eq!(job["total"], 5);
    let mut last_progress = -1.0;
    let mut last_done = -1;
    loop {
        let ev = live.next_stored().await.expect("job events");
        assert_eq!(ev.kind, "job");
        let p = ev.data["progress"].as_f64().unwrap();
        let done = ev.data["done"].as_i64().unwrap();
        assert!(
            p >= last_progress && done >= last_done,
            "monotonic: {p} after {last_progress}"
        );
        (last_progress, last_done) = (p, done);
        if ev.data["state"] == "done" {
            assert_eq!(p, 1.0);
            assert_eq!(done, 5);
            break;
        }
    }
    let (_, jobs) = bob.get("/api/jobs").await;
    assert_eq!(jobs["jobs"][0]["state"], "done");
}

#[tokio::test]
async fn jobs_cancel_etag_and_privacy() {
    let app = TestApp::spawn().await;
    let bob = app.client();
    bob.signup("bob").await;
    let eve = app.client();
    eve.signup("eve").await;
    let (_, job) = bob
        .post(
            "/api/jobs",
            json!({"kind": "demo", "steps": 200, "step_ms": 50}),
        )
        .await;
    let id = job["id"].as_str().unwrap().to_string();

    // ETag / 304.
    let r = bob
        .http
        .get(bob.url(&format!("/api/jobs/{id}")))
        .send()
        .await
        .unwrap();
    let tag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = bob
        .http
        .get(bob.url(&format!("/api/jobs/{id}")))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == StatusCode::NOT_MODIFIED || r.headers()["etag"] != tag.as_str(),
        "304 unless it moved on"
    );
    if r.status() == StatusCode::NOT_MODIFIED {
        assert!(r.bytes().await.unwrap().is_empty(), "no body");
    }
    let r = bob
        .http
        .get(bob.url(&format!("/api/jobs/{id}")))
        .header("if-none-match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Someone else's job does not exist for them.
    for path in [format!("/api/jobs/{id}"), format!("/api/jobs/{id}/result")] {
        assert_eq!(eve.get(&path).await.0, StatusCode::NOT_FOUND);
    }
    // Not even with its current ETag (a 304 would tell them it exists).
    let current = bob
        .http
        .get(bob.url(&format!("/api/jobs/{id}")))
        .send()
        .await
        .unwrap()
        .headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();
    let r = eve
        .http
        .get(eve.url(&format!("/api/jobs/{id}")))
        .header("if-none-match", &current)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        eve.post_empty(&format!("/api/jobs/{id}/cancel")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, eves) = eve.get("/api/jobs").await;
    assert!(eves["jobs"].as_array().unwrap().is_empty());

    // Cancel while running.
    let (status, _) = bob.post_empty(&format!("/api/jobs/{id}/cancel")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let end = wait_job(&bob, &id).await;
    assert_eq!(end["state"], "cancelled");
    // A tag from before the change no longer matches: the new state comes back.
    let r = bob
        .http
        .get(bob.url(&format!("/api/jobs/{id}")))
        .header("if-none-match", &current)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["state"], "cancelled");
    assert_eq!(
        bob.post_empty(&format!("/api/jobs/{id}/cancel")).await.0,
        StatusCode::CONFLICT
    );

    // Bad requests.
    for bad in [
        json!({"kind": "demo", "steps": 0, "step_ms": 10}),
        json!({"kind": "demo", "steps": 5, "step_ms": 1}),
        json!({"kind": "mine_bitcoin"}),
        json!({"kind": "export_room", "room_id": "nope"}),
    ] {
        assert_eq!(
            bob.post("/api/jobs", bad.clone()).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        bob.get("/api/jobs/not-an-id").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn queued_jobs_can_be_cancelled_before_they_start() {
    let app = TestApp::spawn().await;
    let bob = app.client();
    bob.signup("bob").await;
    // Two long jobs take both slots; the third waits in the queue.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, job) = bob
            .post(
                "/api/jobs",
                json!({"kind": "demo", "steps": 100, "step_ms": 100}),
            )
            .await;
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    let (_, third) = bob.get(&format!("/api/jobs/{}", ids[2])).await;
    assert_eq!(third["state"], "queued");
    bob.post_empty(&format!("/api/jobs/{}/cancel", ids[2]))
        .await;
    assert_eq!(wait_job(&bob, &ids[2]).await["state"], "cancelled");
    for id in &ids[..2] {
        bob.post_empty(&format!("/api/jobs/{id}/cancel")).await;
        assert_eq!(wait_job(&bob, id).await["state"], "cancelled");
    }
}

#[tokio::test]
async fn exporting_a_ten_thousand_message_room_keeps_every_message_in_order() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("big", false).await;
    // Pipelined over one socket: the server acknowledges each after commit.
    let mut ws = alice.ws("?feeds=control").await;
    ws.hello().await;
    const N: usize = 10_000;
    for i in 0..N {
        let frame = json!({"type": "send", "room_id": room, "body": format!("message {i}"), "client_id": format!("c{i}")});
        ws.stream
            .feed(tokio_tungstenite::tungstenite::Message::Text(
                frame.to_string().into(),
            ))
            .await
            .unwrap();
    }
    ws.stream.flush().await.unwrap();
    let mut acks = 0;
    while acks < N {
        let ev = ws.next_event().await;
        assert_ne!(ev.kind, "error", "{ev:?}");
        if ev.kind == "ack" {
            acks += 1;
        }
    }
    // A non-member cannot export.
    let eve = app.client();
    eve.signup("eve").await;
    assert_eq!(
        eve.post("/api/jobs", json!({"kind": "export_room", "room_id": room}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let (status, job) = alice
        .post("/api/jobs", json!({"kind": "export_room", "room_id": room}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["total"], N);
    let id = job["id"].as_str().unwrap();
    let end = wait_job(&alice, id).await;
    assert_eq!(end["state"], "done", "{end}");
    assert_eq!(end["done"], N);
    let url = end["result_url"].as_str().unwrap();
    assert_eq!(eve.get(url).await.0, StatusCode::NOT_FOUND);
    let r = alice.http.get(alice.url(url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let export: serde_json::Value = r.json().await.unwrap();
    let messages = export["messages"].as_array().unwrap();
    assert_eq!(messages.len(), N);
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m["body"], format!("message {i}"));
        assert_eq!(m["seq"], i as i64 + 1);
    }
}

#[tokio::test]
async fn a_restart_fails_running_jobs_with_a_clear_reason() {
    let app = TestApp::spawn().await;
    let bob = app.client();
    bob.signup("bob").await;
    let (_, job) = bob
        .post(
            "/api/jobs",
            json!({"kind": "demo", "steps": 100, "step_ms": 100}),
        )
        .await;
    let id = job["id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + crate::common::WAIT;
    loop {
        let (_, j) = bob.get(&format!("/api/jobs/{id}")).await;
        if j["state"] == "running" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let dir = app.stop().await;
    let app = TestApp::spawn_with(Arc::clone(&dir), |_| {}).await;
    let bob = app.client();
    bob.login("bob").await;
    let (_, j) = bob.get(&format!("/api/jobs/{id}")).await;
    assert_eq!(j["state"], "failed");
    assert_eq!(j["message"], server::services::jobs::RESTART_REASON);
    let (_, notes) = bob.get("/api/notifications").await;
    assert_eq!(notes["notifications"][0]["kind"], "job_failed");
}

#[tokio::test]
async fn an_export_names_its_room_and_carries_iso_8601_times() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("lobby", false).await;
    let (_, sent) = alice.send(&room, "hello", "c1").await;
    let (status, job) = alice
        .post("/api/jobs", json!({"kind": "export_room", "room_id": room}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["room_name"], "lobby");
    let end = wait_job(&alice, job["id"].as_str().unwrap()).await;
    assert_eq!(end["state"], "done", "{end}");
    assert_eq!(end["message"], "Exported 1 message from #lobby");
    // The owner's notification says which room's export finished (it is written just after the
    // job's last state, so it is waited for).
    let deadline = tokio::time::Instant::now() + crate::common::WAIT;
    loop {
        let (_, notes) = alice.get("/api/notifications").await;
        let titles: Vec<String> = notes["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_string())
            .collect();
        if titles.iter().any(|t| t == "Your export of #lobby finished") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification naming the room: {titles:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let url = end["result_url"].as_str().unwrap();
    let export: serde_json::Value = alice
        .http
        .get(alice.url(url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let iso = &time::format_description::well_known::Iso8601::DEFAULT;
    let parse = |v: &serde_json::Value| {
        let text = v.as_str().unwrap_or_else(|| panic!("a string time: {v}"));
        assert!(text.ends_with('Z'), "UTC: {text}");
        time::OffsetDateTime::parse(text, iso)
            .unwrap_or_else(|e| panic!("ISO 8601 {text}: {e}"))
            .unix_timestamp_nanos()
            / 1_000_000
    };
    let m = &export["messages"][0];
    assert_eq!(m["body"], "hello");
    assert_eq!(
        parse(&m["created_at"]),
        sent["created_at"].as_i64().unwrap() as i128
    );
    let exported_at = parse(&export["exported_at"]);
    assert!(exported_at >= sent["created_at"].as_i64().unwrap() as i128);
    assert_eq!(export["room"]["name"], "lobby");
    println!("export: {export}");
}
