//! Several server processes on one PostgreSQL database with a Redis backplane: what a user on
//! one server receives of what another server commits, over every transport; a server killed
//! mid-stream; Redis stopped mid-stream.

use crate::common::cluster::{skip, Database, Redis};
use crate::common::process::ServerProcess;
use crate::common::{Client, Live, TRANSPORTS, WAIT};
use protocol::Event;
use reqwest::cookie::Jar;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Cluster {
    db: Database,
    redis: Redis,
    channel: String,
    /// Where the servers keep files (job exports).
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new(test: &str) -> Option<Cluster> {
        let db = match Database::create() {
            Ok(db) => db,
            Err(reason) => {
                skip(test, &reason);
                return None;
            }
        };
        let redis = match Redis::start() {
            Ok(r) => r,
            Err(reason) => {
                skip(test, &reason);
                return None;
            }
        };
        Some(Cluster {
            db,
            redis,
            channel: format!("sbt-{}", uuid::Uuid::new_v4().simple()),
            dir: tempfile::TempDir::new().expect("temp dir"),
        })
    }

    fn server(&self, node: &str) -> ServerProcess {
        self.server_with(node, &[])
    }

    fn server_with(&self, node: &str, extra: &[&str]) -> ServerProcess {
        let url = self.redis.url();
        let dir = self.dir.path().display().to_string();
        ServerProcess::start_url(
            &self.db.url,
            &[
                "--data-dir",
                &dir,
                "--redis-url",
                &url,
                "--cluster-channel",
                &self.channel,
                "--node",
                node,
            ]
            .into_iter()
            .chain(extra.iter().copied())
            .collect::<Vec<_>>(),
        )
    }
}

/// A message event's body, or None for any other event.
fn body(ev: &Event) -> Option<String> {
    (ev.kind == "message").then(|| ev.data["body"].as_str().unwrap_or_default().to_string())
}

/// Waits until the server's backplane reports `connected` as wanted (read by an admin).
async fn backplane_connected(admin: &Client, want: bool) {
    metric_until(admin, |m| m["cluster"]["connected"] == json!(want)).await;
}

/// Alice (admin) signed up on A, Bob on B, both members of one room made on A. Returns
/// (alice on A, bob on B, room).
async fn two_users(a: &ServerProcess, b: &ServerProcess) -> (Client, Client, String) {
    let alice = a.client(&Arc::new(Jar::default()));
    alice.signup("alice").await;
    let bob = b.client(&Arc::new(Jar::default()));
    bob.signup("bob").await;
    let room = alice.create_room("across", false).await;
    let (status, body) = bob.post_empty(&format!("/api/rooms/{room}/join")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    (alice, bob, room)
}

/// Sends `bodies` in order as `who`, each acknowledged (201) before the next; counts acks.
async fn send_all(who: Client, room: String, bodies: Vec<String>, acked: Arc<AtomicUsize>) {
    for b in bodies {
        // A send that fails (a server just killed) is retried with the same client id: the
        // server answers a repeat with the first message, so nothing is stored twice.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r = who
                .http
                .post(who.url(&format!("/api/rooms/{room}/messages")))
                .json(&json!({ "body": b, "client_id": b }))
                .send()
                .await;
            match r {
                Ok(r) if r.status() == StatusCode::CREATED || r.status() == StatusCode::OK => break,
                other => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "send {b} acknowledged in time: {other:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        acked.fetch_add(1, Ordering::SeqCst);
    }
}

/// One reader on one transport that fails over: on `servers[0]` first; when its connection
/// ends (or a poll fails) it goes on on the next server from the last id it saw.
struct Reader {
    transport: &'static str,
    jar: Arc<Jar>,
    servers: Vec<SocketAddr>,
    at: usize,
    cursor: i64,
    /// Stored events seen, in arrival order.
    events: Vec<Event>,
    reconnects: usize,
    /// The open stream (WebSocket, SSE), kept between reads.
    live: Option<Live>,
}

impl Reader {
    fn client(&self) -> Client {
        let addr = self.servers[self.at];
        Client::new(
            self.jar.clone(),
            addr,
            crate::common::same_origin(&format!("http://{addr}")),
        )
    }

    /// Reads until `want` message events have arrived (or the wait runs out).
    async fn read_messages(&mut self, want: usize) {
        let deadline = tokio::time::Instant::now() + WAIT * 4;
        while self.messages().len() < want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: {} of {want} messages in time",
                self.transport,
                self.messages().len()
            );
            match self.transport {
                "long_poll" | "short_poll" => self.poll_once().await,
                _ => self.stream_until_end(want).await,
            }
        }
    }

    fn take(&mut self, ev: Event) {
        if let Some(id) = ev.id {
            assert!(
                id > self.cursor,
                "{}: id {id} after cursor {} (in order, once)",
                self.transport,
                self.cursor
            );
            self.cursor = id;
            self.events.push(ev);
        }
    }

    fn fail_over(&mut self) {
        self.live = None;
        self.at = (self.at + 1).min(self.servers.len() - 1);
        self.reconnects += 1;
    }

    async fn stream_until_end(&mut self, want: usize) {
        if self.live.is_none() {
            self.live = self.open().await;
            if self.live.is_none() {
                return self.fail_over();
            }
        }
        while self.messages().len() < want {
            let Some(live) = self.live.as_mut() else {
                return;
            };
            match live.next().await {
                Some(ev) => self.take(ev),
                None => return self.fail_over(),
            }
        }
    }

    async fn open(&self) -> Option<Live> {
        let client = self.client();
        let query = format!("?feeds=chat&cursor={}", self.cursor);
        Some(match self.transport {
            "websocket" => Live::Ws(client.try_ws(&query, None).await.ok()?),
            _ => {
                let r = client
                    .http
                    .get(client.url(&format!("/api/live/sse{query}")))
                    .header("accept", "text/event-stream")
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::OK => {
                        Live::Sse(crate::common::Sse::from_response(r))
                    }
                    _ => return None,
                }
            }
        })
    }

    async fn poll_once(&mut self) {
        let client = self.client();
        let wait = if self.transport == "long_poll" { 2 } else { 0 };
        let r = client
            .http
            .get(client.url(&format!(
                "/api/live/poll?feeds=chat&cursor={}&wait={wait}",
                self.cursor
            )))
            .send()
            .await;
        let body: Value = match r {
            Ok(r) if r.status() == StatusCode::OK => r.json().await.unwrap_or(Value::Null),
            _ => return self.fail_over(),
        };
        let answer: protocol::PollAnswer = match serde_json::from_value(body) {
            Ok(a) => a,
            Err(_) => return self.fail_over(),
        };
        let empty = answer.events.is_empty();
        for ev in answer.events {
            self.take(ev);
        }
        assert!(answer.cursor >= self.cursor, "the cursor never goes back");
        self.cursor = answer.cursor;
        if empty && wait == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn messages(&self) -> Vec<String> {
        self.events.iter().filter_map(body).collect()
    }
}

async fn readers(jar: &Arc<Jar>, servers: &[SocketAddr], cursor: i64) -> Vec<Reader> {
    TRANSPORTS
        .iter()
        .map(|t| Reader {
            transport: t,
            jar: jar.clone(),
            servers: servers.to_vec(),
            at: 0,
            cursor,
            events: Vec::new(),
            reconnects: 0,
            live: None,
        })
        .collect()
}

/// Every message of `sent` exactly once, and each sender's in the order sent.
fn assert_all_once_in_order(transport: &str, got: &[String], senders: &[&[String]]) {
    let total: usize = senders.iter().map(|s| s.len()).sum();
    assert_eq!(
        got.len(),
        total,
        "{transport}: every message, once: {got:?}"
    );
    for sent in senders {
        let mine: Vec<&String> = got.iter().filter(|b| sent.contains(b)).collect();
        let expected: Vec<&String> = sent.iter().collect();
        assert_eq!(mine, expected, "{transport}: in the order sent");
    }
}

fn bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_on_one_server_receives_in_order_once_what_another_server_commits() {
    let Some(cluster) = Cluster::new("cluster::a_user_on_one_server_receives…") else {
        return;
    };
    let a = cluster.server("a");
    let b = cluster.server("b");
    let (alice, bob, room) = two_users(&a, &b).await;
    let (_, poll) = alice.get("/api/live/poll?feeds=chat&wait=0").await;
    let start = poll["cursor"].as_i64().expect("cursor");

    // Readers on A over every transport; senders on both servers at once, so ids from the two
    // servers interleave and cross Redis in any order.
    let mut readers = readers(&alice.jar, &[a.addr], start).await;
    let from_b = bodies("b", 40);
    let from_a = bodies("a", 40);
    let acked = Arc::new(AtomicUsize::new(0));
    let sends = [
        tokio::spawn(send_all(
            bob.clone_session(),
            room.clone(),
            from_b.clone(),
            acked.clone(),
        )),
        tokio::spawn(send_all(
            alice.clone_session(),
            room.clone(),
            from_a.clone(),
            acked.clone(),
        )),
    ];
    // A reader on B as well: the same order on both servers.
    let mut on_b = Reader {
        transport: "websocket",
        jar: bob.jar.clone(),
        servers: vec![b.addr],
        at: 0,
        cursor: start,
        events: Vec::new(),
        reconnects: 0,
        live: None,
    };
    let total = from_a.len() + from_b.len();
    let mut tasks = Vec::new();
    for mut r in readers.drain(..) {
        tasks.push(tokio::spawn(async move {
            r.read_messages(total).await;
            r
        }));
    }
    on_b.read_messages(total).await;
    for s in sends {
        s.await.expect("sender");
    }
    // Message ids: membership events are addressed to their user (bob's join is his alone), so
    // alice on A and bob on B see different ones; the messages they must both see alike.
    let message_ids = |events: &[Event]| -> Vec<i64> {
        events
            .iter()
            .filter(|e| e.kind == "message")
            .filter_map(|e| e.id)
            .collect()
    };
    let ids_on_b = message_ids(&on_b.events);
    for t in tasks {
        let r = t.await.expect("reader");
        assert_all_once_in_order(r.transport, &r.messages(), &[&from_a, &from_b]);
        assert_eq!(r.reconnects, 0, "{}: no reconnect needed", r.transport);
        let ids = message_ids(&r.events);
        assert_eq!(
            ids, ids_on_b,
            "{}: the same events in the same order on A as on B",
            r.transport
        );
    }
    assert_all_once_in_order("websocket on B", &on_b.messages(), &[&from_a, &from_b]);
    let (_, m) = alice.get("/api/admin/metrics").await;
    assert_eq!(m["cluster"]["node"], "a", "{m}");
    assert!(
        m["cluster"]["received_events"].as_u64().unwrap_or(0) >= from_b.len() as u64,
        "B's messages came to A over the backplane: {}",
        m["cluster"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_server_resume_on_another_without_gap_or_duplicate() {
    let Some(cluster) = Cluster::new("cluster::clients_of_a_killed_server_resume…") else {
        return;
    };
    let mut a = cluster.server("a");
    let b = cluster.server("b");
    let (alice, bob, room) = two_users(&a, &b).await;
    let (_, poll) = alice.get("/api/live/poll?feeds=chat&wait=0").await;
    let start = poll["cursor"].as_i64().expect("cursor");
    let readers = readers(&alice.jar, &[a.addr, b.addr], start).await;
    let sent = bodies("m", 60);
    let acked = Arc::new(AtomicUsize::new(0));
    let sender = tokio::spawn(send_all(
        bob.clone_session(),
        room.clone(),
        sent.clone(),
        acked.clone(),
    ));
    // Every reader has some of the stream from A; then A dies mid-stream.
    let mut readers_back = Vec::new();
    for mut r in readers {
        r.read_messages(10).await;
        readers_back.push(r);
    }
    a.kill();
    let mut tasks = Vec::new();
    for mut r in readers_back {
        let n = sent.len();
        tasks.push(tokio::spawn(async move {
            r.read_messages(n).await;
            r
        }));
    }
    sender.await.expect("sender");
    for t in tasks {
        let r = t.await.expect("reader");
        assert_all_once_in_order(r.transport, &r.messages(), &[&sent]);
        assert!(r.reconnects >= 1, "{}: moved to B", r.transport);
        assert_eq!(r.at, 1, "{}: reading from B at the end", r.transport);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_stream_loses_no_acknowledged_message() {
    let Some(mut cluster) = Cluster::new("cluster::redis_stopped_mid_stream…") else {
        return;
    };
    let a = cluster.server("a");
    let b = cluster.server("b");
    let (alice, bob, room) = two_users(&a, &b).await;
    backplane_connected(&alice, true).await;
    let (_, poll) = alice.get("/api/live/poll?feeds=chat&wait=0").await;
    let start = poll["cursor"].as_i64().expect("cursor");
    let readers = readers(&alice.jar, &[a.addr], start).await;

    let before = bodies("before", 10);
    let during = bodies("during", 10);
    let after = bodies("after", 10);
    let acked = Arc::new(AtomicUsize::new(0));
    send_all(
        bob.clone_session(),
        room.clone(),
        before.clone(),
        acked.clone(),
    )
    .await;

    // Redis goes away; A notices. Messages acknowledged now can only reach A through the log.
    cluster.redis.kill();
    backplane_connected(&alice, false).await;
    send_all(
        bob.clone_session(),
        room.clone(),
        during.clone(),
        acked.clone(),
    )
    .await;
    let mut tasks = Vec::new();
    for mut r in readers {
        let n = before.len() + during.len();
        tasks.push(tokio::spawn(async move {
            r.read_messages(n).await;
            r
        }));
    }
    let mut readers = Vec::new();
    for t in tasks {
        readers.push(t.await.expect("reader"));
    }

    // Redis is back; the backplane reconnects and carries the rest.
    cluster.redis.restart().expect("redis restarts");
    backplane_connected(&alice, true).await;
    send_all(
        bob.clone_session(),
        room.clone(),
        after.clone(),
        acked.clone(),
    )
    .await;
    let all: Vec<String> = [before.clone(), during.clone(), after.clone()].concat();
    for mut r in readers {
        r.read_messages(all.len()).await;
        assert_all_once_in_order(r.transport, &r.messages(), &[&all]);
    }
    assert_eq!(acked.load(Ordering::SeqCst), all.len());
    let (_, m) = alice.get("/api/admin/metrics").await;
    let c = &m["cluster"];
    assert!(
        c["filled_from_log"].as_u64().unwrap_or(0) >= during.len() as u64,
        "what was sent while Redis was down came from the log: {c}"
    );
    assert!(c["reconnects"].as_u64().unwrap_or(0) >= 1, "{c}");
    drop(b);
}

/// The next event of `kind` on `ws` about `username` (others skipped).
async fn next_about(ws: &mut crate::common::Ws, kind: &str, username: &str) -> Event {
    loop {
        let ev = ws.next_of(kind).await;
        if ev.data["user"]["username"] == username {
            return ev;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_presence_switches_and_sign_outs_travel_between_servers() {
    let Some(cluster) = Cluster::new("cluster::typing_presence_switches_and_sign_outs…") else {
        return;
    };
    let a = cluster.server("a");
    let b = cluster.server("b");
    let (alice, bob, room) = two_users(&a, &b).await;
    backplane_connected(&alice, true).await;
    let mut on_a = alice.ws("?feeds=chat").await;
    on_a.hello().await;

    // Typing on B reaches A.
    let (status, body) = bob.post_empty(&format!("/api/rooms/{room}/typing")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    next_about(&mut on_a, "typing", "bob").await;

    // Bob comes online on B and goes offline there: A's clients hear both, and A's presence
    // list has him while he is on.
    let mut bob_ws = bob.ws("?feeds=chat").await;
    bob_ws.hello().await;
    let ev = next_about(&mut on_a, "presence", "bob").await;
    assert_eq!(ev.data["status"], "online");
    let (_, list) = alice.get("/api/presence").await;
    assert!(
        list["users"]
            .as_array()
            .is_some_and(|u| u.iter().any(|e| e["user"]["username"] == "bob")),
        "A lists bob as online: {list}"
    );
    bob_ws.close().await;
    let ev = next_about(&mut on_a, "presence", "bob").await;
    assert_eq!(ev.data["status"], "offline");

    // An admin (alice, through B: the session is shared) switches WebSockets off: A closes its
    // WebSockets and refuses new ones.
    let alice_on_b = b.client(&alice.jar);
    let (status, body) = alice_on_b
        .put("/api/admin/transports", json!({ "websocket": false }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    loop {
        match on_a.next_frame().await {
            crate::common::Frame::Closed(code) => {
                assert_eq!(code, Some(protocol::close::TRANSPORT_DISABLED));
                break;
            }
            crate::common::Frame::Event(_) => {}
        }
    }
    assert!(
        alice.try_ws("?feeds=chat", None).await.is_err(),
        "A refuses WebSockets now"
    );
    let (status, body) = alice_on_b
        .put("/api/admin/transports", json!({ "websocket": true }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Signing out everywhere on B ends alice's connections on A at once, and A refuses the
    // session.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut on_a = loop {
        // A turns WebSockets back on when the change reaches it.
        if let Ok(mut ws) = alice.try_ws("?feeds=chat", None).await {
            ws.hello().await;
            break ws;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "A allows WebSockets again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (status, body) = alice_on_b.post_empty("/api/auth/logout-everywhere").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    loop {
        match on_a.next_frame().await {
            crate::common::Frame::Closed(code) => {
                assert_eq!(code, Some(protocol::close::UNAUTHORIZED));
                break;
            }
            crate::common::Frame::Event(_) => {}
        }
    }
    let (status, _) = alice.get("/api/me").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "A refuses the signed-out session"
    );
}

/// Polls `who` for the job until `done` says so; returns the job.
async fn job_until(who: &Client, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, job) = who.get(&format!("/api/jobs/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if done(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job condition in time: {job}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metric_until(admin: &Client, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, m) = admin.get("/api/admin/metrics").await;
        assert_eq!(status, StatusCode::OK, "{m}");
        if done(&m) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics condition in time: {}",
            m["cluster"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_stay_with_their_server_cancel_from_anywhere_and_fail_when_it_dies() {
    let Some(cluster) = Cluster::new("cluster::jobs_stay_with_their_server…") else {
        return;
    };
    let ttl = ["--node-ttl-secs", "2"];
    let mut a = cluster.server_with("a", &ttl);
    let mut b = cluster.server_with("b", &ttl);
    let (alice, _bob, _room) = two_users(&a, &b).await;
    let long = json!({"kind": "demo", "steps": 1000, "step_ms": 50});
    let (status, job) = alice.post("/api/jobs", long.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let first = job["id"].as_str().expect("id").to_string();
    job_until(&alice, &first, |j| j["state"] == "running").await;

    // B restarts: the job running on A is A's, not a leftover of B's.
    b.kill();
    let b2 = cluster.server_with("b2", &ttl);
    let alice_on_b = b2.client(&alice.jar);
    let (_, job) = alice_on_b.get(&format!("/api/jobs/{first}")).await;
    assert_eq!(
        job["state"], "running",
        "a restart elsewhere leaves it running: {job}"
    );

    // Cancelled through B: A, which runs it, stops it.
    let (status, body) = alice_on_b
        .post_empty(&format!("/api/jobs/{first}/cancel"))
        .await;
    assert!(status.is_success(), "{status} {body}");
    metric_until(&alice, |m| m["runtime"]["jobs_held"] == 0).await;
    let job = job_until(&alice, &first, |j| j["state"] == "cancelled").await;
    assert!(
        job["done"].as_i64() < job["total"].as_i64(),
        "stopped early: {job}"
    );

    // A dies with a job running: B fails it once A is gone for the TTL.
    let (status, job) = alice.post("/api/jobs", long).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let second = job["id"].as_str().expect("id").to_string();
    job_until(&alice, &second, |j| j["state"] == "running").await;
    a.kill();
    let job = job_until(&alice_on_b, &second, |j| j["state"] == "failed").await;
    assert!(
        job["message"]
            .as_str()
            .is_some_and(|m| m.contains("stopped")),
        "failed as an orphan: {job}"
    );
}

/// The next close of `ws`, skipping events; its code.
async fn closed(ws: &mut crate::common::Ws) -> Option<u16> {
    loop {
        if let crate::common::Frame::Closed(code) = ws.next_frame().await {
            return code;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_made_while_redis_is_down_stops_the_session_writing_on_the_other_server() {
    let Some(mut cluster) = Cluster::new("cluster::a_sign_out_made_while_redis_is_down…") else {
        return;
    };
    let a = cluster.server("a");
    let b = cluster.server("b");
    let (alice, bob, room) = two_users(&a, &b).await;
    let alice_on_b = b.client(&alice.jar);
    backplane_connected(&alice, true).await;
    backplane_connected(&alice_on_b, true).await;
    // Bob's session has two WebSockets open on B; one will send, one only listens.
    let mut sender = bob.ws("?feeds=chat").await;
    sender.hello().await;
    let mut listener = bob.ws("?feeds=chat").await;
    listener.hello().await;
    let send = |body: &str, client_id: &str| json!({"type": "send", "room_id": room, "body": body, "client_id": client_id});
    sender.send_json(send("before the outage", "c1")).await;
    sender.next_of("ack").await;

    // Redis goes away; both servers notice. Bob signs out through A: B is not told.
    cluster.redis.kill();
    backplane_connected(&alice, false).await;
    backplane_connected(&alice_on_b, false).await;
    let bob_on_a = a.client(&bob.jar);
    let (status, body) = bob_on_a.post_empty("/api/auth/logout").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // A send on B while the backplane is down is checked against the database first: refused,
    // and the socket closed with the reason.
    sender
        .send_json(send("after the sign-out, Redis down", "c2"))
        .await;
    assert_eq!(
        closed(&mut sender).await,
        Some(protocol::close::UNAUTHORIZED),
        "B ends the signed-out session's socket instead of acting on its send"
    );

    // When the backplane is back, B re-checks its connections: the one that only listened ends.
    cluster.redis.restart().expect("redis restarts");
    backplane_connected(&alice_on_b, true).await;
    assert_eq!(
        closed(&mut listener).await,
        Some(protocol::close::UNAUTHORIZED),
        "B ends the signed-out session's other socket when the backplane reconnects"
    );

    // Nothing sent after the sign-out was stored; the session is refused over HTTP on both.
    let (status, page) = alice.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let bodies: Vec<&str> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(bodies, vec!["before the outage"], "{page}");
    let (status, _) = bob.get("/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "B refuses the session");
}

/// Renewal writes a server made (its `/metrics`, read by an admin).
async fn renewal_writes(admin: &Client) -> u64 {
    crate::common::metric(admin, "switchboard_session_renewals_total").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_used_on_both_servers_in_turn_outlives_the_idle_limit_with_shared_renewals() {
    let Some(cluster) = Cluster::new("cluster::a_session_used_on_both_servers_in_turn…") else {
        return;
    };
    const IDLE: u64 = 3;
    let idle = IDLE.to_string();
    let a = cluster.server_with("a", &["--session-idle-secs", &idle]);
    let b = cluster.server_with("b", &["--session-idle-secs", &idle]);
    let jar = Arc::new(Jar::default());
    let on = [a.client(&jar), b.client(&jar)];
    on[0].signup("carol").await;
    let before = renewal_writes(&on[0]).await + renewal_writes(&on[1]).await;
    // One request every 100 ms, A and B in turn, for three idle limits: the session and its
    // cookie (the jar drops it when its Max-Age runs out) live on.
    let start = std::time::Instant::now();
    let mut requests = 0u64;
    while start.elapsed() < Duration::from_secs(3 * IDLE) {
        let (status, me) = on[(requests % 2) as usize].get("/api/me").await;
        assert_eq!(status, StatusCode::OK, "after {:?}: {me}", start.elapsed());
        requests += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ms = start.elapsed().as_millis();
    let writes = renewal_writes(&on[0]).await + renewal_writes(&on[1]).await - before;
    println!("{requests} requests over A and B in {ms} ms: {writes} renewal writes");
    // The last renewal is in the shared record: one write per tenth of the limit across both
    // servers (plus one at either end), not one per server.
    assert!(
        writes <= (ms / (IDLE as u128 * 100)) as u64 + 2,
        "{writes} writes in {ms} ms"
    );
    assert!(writes < requests, "not a write per request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_on_one_server_signs_out_the_other_sessions_on_every_server() {
    let Some(cluster) = Cluster::new("cluster::a_password_change_on_one_server…") else {
        return;
    };
    let a = cluster.server("a");
    let b = cluster.server("b");
    let (laptop_on_a, _bob, room) = two_users(&a, &b).await;
    backplane_connected(&laptop_on_a, true).await;
    // Alice's phone signs in on B; both her sessions have a socket open on A.
    let phone_jar = Arc::new(Jar::default());
    let phone_on_b = b.client(&phone_jar);
    phone_on_b.login("alice").await;
    let phone_on_a = a.client(&phone_jar);
    let mut phone_ws = phone_on_a.ws("?feeds=chat").await;
    phone_ws.hello().await;
    let mut laptop_ws = laptop_on_a.ws("?feeds=chat").await;
    laptop_ws.hello().await;

    // The laptop changes the password through B.
    let laptop_on_b = b.client(&laptop_on_a.jar);
    let (status, body) = laptop_on_b
        .post(
            "/api/me/password",
            json!({"current_password": crate::common::PASSWORD, "new_password": "a-new-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // A ends the phone's socket at once and refuses the phone on both servers.
    loop {
        match phone_ws.next_frame().await {
            crate::common::Frame::Closed(code) => {
                assert_eq!(code, Some(protocol::close::UNAUTHORIZED));
                break;
            }
            crate::common::Frame::Event(_) => {}
        }
    }
    assert_eq!(phone_on_a.get("/api/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(phone_on_b.get("/api/me").await.0, StatusCode::UNAUTHORIZED);
    // The laptop's session goes on everywhere, its socket on A too.
    assert_eq!(laptop_on_a.get("/api/me").await.0, StatusCode::OK);
    let (status, _) = laptop_on_b.send(&room, "still signed in", "l1").await;
    assert_eq!(status, StatusCode::CREATED);
    let ev = laptop_ws.next_of("message").await;
    assert_eq!(ev.data["body"], "still signed in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_on_one_server_is_served_by_another() {
    let Some(cluster) = Cluster::new("cluster::a_file_uploaded_on_one_server…") else {
        return;
    };
    let a = cluster.server("a");
    let b = cluster.server("b");
    let (alice, bob, room) = two_users(&a, &b).await;
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(640, 480, image::Rgb([1, 2, 3]))
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("png");
    let png = png.into_inner();
    // Larger than one stored chunk, so the bytes come back in several.
    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let (status, pic) = alice.upload("pic.png", "image/png", png.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{pic}");
    let (status, file) = alice
        .upload("data.bin", "application/octet-stream", big.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let (status, m) = alice
        .post(
            &format!("/api/rooms/{room}/messages"),
            json!({"body": "files", "client_id": "f1", "attachments": [pic["id"], file["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{m}");

    let r = bob.get_response(file["url"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), big);
    let r = bob.get_response(pic["url"].as_str().unwrap()).await;
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), png);
    let r = bob
        .get_response(&format!("{}/thumbnail", pic["url"].as_str().unwrap()))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let thumb = image::load_from_memory(&r.bytes().await.expect("bytes")).expect("thumbnail");
    assert_eq!((thumb.width(), thumb.height()), (320, 240));
}
