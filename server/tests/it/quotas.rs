//! Per-user quotas (issue 19, item 8): creating rooms, jobs and announcements, jobs queued or
//! running at once, and browsers' `/api/live/stats` reports, whose figures are clamped to what
//! the server really delivered so one user cannot rewrite the admin console's numbers.

use crate::common::{Client, Live, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// Posts `body` to `path` and returns the status, the Retry-After header and the JSON body.
async fn post_full(
    c: &Client,
    path: &str,
    body: serde_json::Value,
) -> (StatusCode, Option<u64>, serde_json::Value) {
    let r = c.http.post(c.url(path)).json(&body).send().await.unwrap();
    let status = r.status();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, r.json().await.unwrap_or_default())
}

fn assert_rate_limited(
    what: &str,
    (status, retry, body): (StatusCode, Option<u64>, serde_json::Value),
) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{what}: {body}");
    assert!(
        retry.is_some_and(|s| s >= 1),
        "{what}: Retry-After {retry:?}"
    );
    assert_eq!(body["error"]["code"], "rate_limited", "{what}: {body}");
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
}

#[tokio::test]
async fn rooms_jobs_and_announcements_have_per_user_quotas() {
    let app = TestApp::spawn_configured(|c| {
        c.rooms_per_user_per_hour = 3;
        c.jobs_per_user_per_hour = 4;
        c.announcements_per_user_per_hour = 2;
    })
    .await;
    let alice = app.client();
    alice.signup("alice").await; // the first account: an admin
    let bob = app.client();
    bob.signup("bob").await;

    for i in 0..3 {
        let (status, _, body) =
            post_full(&bob, "/api/rooms", json!({"name": format!("bob {i}")})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_rate_limited(
        "a fourth room",
        post_full(&bob, "/api/rooms", json!({"name": "bob 3"})).await,
    );
    // Per user: Alice still may.
    let (status, _, body) = post_full(&alice, "/api/rooms", json!({"name": "alice 0"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let job = json!({"kind": "demo", "steps": 1, "step_ms": 10});
    for _ in 0..4 {
        let (status, _, body) = post_full(&bob, "/api/jobs", job.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    assert_rate_limited(
        "a fifth job",
        post_full(&bob, "/api/jobs", job.clone()).await,
    );

    let note = json!({"title": "Hello", "body": "everyone"});
    for _ in 0..2 {
        let (status, _, body) = post_full(&alice, "/api/admin/announcements", note.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    assert_rate_limited(
        "a third announcement",
        post_full(&alice, "/api/admin/announcements", note).await,
    );
}

#[tokio::test]
async fn jobs_queued_or_running_at_once_are_capped_per_user_even_when_submitted_together() {
    const CAP: usize = 2;
    let app = TestApp::spawn_configured(|c| c.jobs_active_per_user = CAP as u32).await;
    let bob = app.client();
    bob.signup("bob").await;
    // Long jobs, submitted all at once: only CAP are taken.
    let job = json!({"kind": "demo", "steps": 1000, "step_ms": 60000});
    let answers =
        futures_util::future::join_all((0..20).map(|_| post_full(&bob, "/api/jobs", job.clone())))
            .await;
    let accepted: Vec<&serde_json::Value> = answers
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::ACCEPTED)
        .map(|(_, _, b)| b)
        .collect();
    println!("{} of 20 simultaneous jobs accepted", accepted.len());
    assert_eq!(accepted.len(), CAP, "{answers:?}");
    for a in answers
        .iter()
        .filter(|(s, _, _)| *s != StatusCode::ACCEPTED)
    {
        assert_rate_limited("a job past the cap", a.clone());
    }
    // Cancelling one makes room for one more.
    let id = accepted[0]["id"].as_str().unwrap().to_string();
    let (status, body) = bob.post_empty(&format!("/api/jobs/{id}/cancel")).await;
    assert!(status.is_success(), "{status}: {body}");
    let deadline = tokio::time::Instant::now() + crate::common::WAIT;
    loop {
        let (status, _, body) = post_full(&bob, "/api/jobs", job.clone()).await;
        if status == StatusCode::ACCEPTED {
            break;
        }
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cancelled job never made room"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The admin's figures for (transport, feed).
async fn cell(admin: &Client, transport: &str, feed: &str) -> serde_json::Value {
    let (status, m) = admin.get("/api/admin/metrics").await;
    assert_eq!(status, StatusCode::OK);
    m["transports"][transport]["feeds"][feed].clone()
}

#[tokio::test]
async fn a_stats_report_cannot_claim_more_than_was_delivered_and_is_rate_limited() {
    let app = TestApp::spawn_configured(|c| c.stats_per_user_per_minute = 3).await;
    let alice = app.client();
    alice.signup("alice").await; // admin
    let bob = app.client();
    bob.signup("bob").await;
    let room = alice.create_room("stats", false).await;
    bob.post_empty(&format!("/api/rooms/{room}/join")).await;

    // Nothing was delivered over SSE yet: a report of the largest counts the validator takes
    // (10,000 gaps and duplicates, 500 samples) moves nothing.
    let lie = json!({"reports": [{"transport": "sse", "feed": "chat",
        "latency_ms": vec![1.0; 500], "gaps": 10_000, "duplicates": 10_000}]});
    let (status, _, body) = post_full(&bob, "/api/live/stats", lie.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let c = cell(&alice, "sse", "chat").await;
    assert_eq!(c["client_gaps"], 0, "{c}");
    assert_eq!(c["client_duplicates"], 0, "{c}");
    assert_eq!(c["client_latency_ms"]["count"], 0, "{c}");

    // Three messages delivered over SSE: a report may account for at most those.
    let mut live = Live::open(&bob, "sse", "chat", None).await;
    for i in 0..3 {
        alice.send(&room, &format!("m{i}"), &format!("m{i}")).await;
    }
    let mut messages = 0;
    while messages < 3 {
        if live.next().await.expect("event").kind == "message" {
            messages += 1;
        }
    }
    // The server counts when it writes; wait until it has counted what Bob read.
    let deadline = tokio::time::Instant::now() + crate::common::WAIT;
    let delivered = loop {
        let d = cell(&alice, "sse", "chat").await["delivered"]
            .as_u64()
            .unwrap();
        if d >= 3 {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "delivered {d}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let (status, _, body) = post_full(&bob, "/api/live/stats", lie.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let c = cell(&alice, "sse", "chat").await;
    println!("delivered {delivered}; after two inflated reports: {c}");
    // Other events (presence, typing) may reach Bob after `delivered` was read, so the bound is
    // what the server had delivered when it took the report: at most its count now, and far
    // below the 10,000 claimed.
    let delivered_now = c["delivered"].as_u64().unwrap();
    assert!(delivered_now >= delivered && delivered_now < 100, "{c}");
    let gaps = c["client_gaps"].as_u64().unwrap();
    assert!(
        gaps <= delivered_now,
        "gaps {gaps} > delivered {delivered_now}"
    );
    assert!(
        c["client_duplicates"].as_u64().unwrap() <= delivered_now,
        "{c}"
    );
    assert!(
        c["client_latency_ms"]["count"].as_u64().unwrap() <= delivered_now,
        "{c}"
    );

    // The third report of the minute passes; the fourth is refused.
    let (status, _, _) = post_full(&bob, "/api/live/stats", json!({"reports": []})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_rate_limited(
        "a fourth report",
        post_full(&bob, "/api/live/stats", json!({"reports": []})).await,
    );
}
