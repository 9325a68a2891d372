//! Faults and overload: SIGKILL mid-stream, SIGTERM, a reader that stops, churn, connection caps
//! and slow headers. The process tests run the real binary.

use crate::common::process::ServerProcess;
use crate::common::{Client, Frame, TestApp, WAIT};
use reqwest::cookie::Jar;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Polls `f` until it returns Some, or panics after [`WAIT`] with `what`.
async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A number in 0..n that differs from run to run (where to kill the server).
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() % n
}

/// The base URL every sender uses: swapped when the server restarts on a new port.
type Base = Arc<Mutex<String>>;

async fn send_until_acked(
    http: &reqwest::Client,
    base: &Base,
    room: &str,
    body: &str,
    cid: &str,
) -> Value {
    loop {
        let url = format!("{}/api/rooms/{room}/messages", base.lock().unwrap());
        let sent = http
            .post(url)
            .json(&json!({"body": body, "client_id": cid}))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if let Ok(r) = sent {
            if r.status() == StatusCode::CREATED || r.status() == StatusCode::OK {
                return r.json().await.expect("message json");
            }
        }
        // The server is down or restarting: try again (same client id: never twice stored).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Several clients send steadily; the server is SIGKILLed at a random moment and restarted on the
/// same file, three times. Every acknowledged message is there exactly once, the log replays
/// each message once in order, and the database checks out (see `check_database`).
#[tokio::test]
async fn sigkill_loses_no_acknowledged_message() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let db = dir.path().join("crash.db");
    let mut server = ServerProcess::start(&db, &[]);
    let base: Base = Arc::new(Mutex::new(format!("http://{}", server.addr)));

    const SENDERS: usize = 4;
    const PER_SENDER: usize = 60;
    let owner_jar = Arc::new(Jar::default());
    let owner = server.client(&owner_jar);
    owner.signup("owner").await;
    let room = owner.create_room("crash", false).await;
    let mut jars = Vec::new();
    for i in 0..SENDERS {
        let jar = Arc::new(Jar::default());
        let c = server.client(&jar);
        c.signup(&format!("sender{i}")).await;
        let (status, body) = c.post_empty(&format!("/api/rooms/{room}/join")).await;
        assert!(status.is_success(), "join: {status} {body}");
        jars.push(jar);
    }

    let acked: Arc<Mutex<BTreeMap<String, Value>>> = Arc::default();
    let mut senders = Vec::new();
    for (i, jar) in jars.iter().enumerate() {
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .expect("client");
        let (base, room, acked) = (base.clone(), room.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for n in 0..PER_SENDER {
                let cid = format!("s{i}-{n}");
                let msg = send_until_acked(&http, &base, &room, &format!("m {cid}"), &cid).await;
                let mut acked = acked.lock().unwrap();
                if let Some(earlier) = acked.get(&cid) {
                    assert_eq!(earlier["id"], msg["id"], "a retry answers with the first");
                }
                acked.insert(cid, msg);
            }
        }));
    }

    for cycle in 1..=3u64 {
        // Somewhere in this cycle's share of the messages, at a different point each run.
        let share = (SENDERS * PER_SENDER) as u64 / 4;
        let at = share * (cycle - 1) + share / 2 + random_below(share / 2);
        until("enough acknowledged messages", || {
            let n = acked.lock().unwrap().len() as u64;
            async move { (n >= at).then_some(()) }
        })
        .await;
        server.kill();
        server = ServerProcess::start(&db, &[]);
        *base.lock().unwrap() = format!("http://{}", server.addr);
    }
    for s in senders {
        s.await.expect("sender finished");
    }

    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), SENDERS * PER_SENDER);
    let reader = server.client(&owner_jar);
    // History, oldest first, page by page.
    let mut history: Vec<Value> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let q = before.map(|b| format!("&before={b}")).unwrap_or_default();
        let (status, page) = reader
            .get(&format!("/api/rooms/{room}/messages?limit=100{q}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let msgs = page["messages"].as_array().expect("messages").clone();
        if msgs.is_empty() {
            break;
        }
        before = msgs[0]["id"].as_str().map(str::to_string);
        let mut all = msgs;
        all.extend(history);
        history = all;
    }
    let ids: Vec<&str> = history.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no message stored twice");
    for (cid, msg) in &acked {
        assert!(
            unique.contains(msg["id"].as_str().unwrap()),
            "acknowledged message {cid} survived"
        );
    }
    assert_eq!(
        ids.len(),
        acked.len(),
        "nothing stored that was not acknowledged"
    );
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "seqs have no holes"
    );

    // The log replays every message once, in id order.
    let mut ws = reader.ws("?feeds=chat&cursor=0").await;
    ws.hello().await;
    let mut replayed = Vec::new();
    while replayed.len() < acked.len() {
        let ev = ws.next_of("message").await;
        replayed.push((
            ev.id.expect("id"),
            ev.data["id"].as_str().unwrap().to_string(),
        ));
    }
    assert!(replayed.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    let replayed_ids: Vec<&str> = replayed.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(replayed_ids, ids, "the log and the history agree");
    ws.close().await;

    drop(server);
    check_database(&db).await;
}

/// SQLite: its integrity check passes. PostgreSQL (whose own consistency after a crash of a
/// client is not in question): the event log the crashes left is gapless up to its head.
async fn check_database(db: &std::path::Path) {
    let url = crate::common::database_url(db);
    if crate::common::postgres_base().is_none() {
        let pool = sqlx::SqlitePool::connect(&url)
            .await
            .expect("open the file");
        let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .expect("integrity_check");
        assert_eq!(check, "ok");
        return;
    }
    println!("PostgreSQL: no PRAGMA integrity_check; checking the event log has no gap instead");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let (count, min, max): (i64, Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), MIN(id), MAX(id) FROM events")
            .fetch_one(&pool)
            .await
            .expect("count events");
    let (head,): (i64,) = sqlx::query_as("SELECT id FROM event_head")
        .fetch_one(&pool)
        .await
        .expect("read the head");
    assert_eq!(max, Some(head), "the head is the last event");
    assert_eq!(
        Some(count),
        max.zip(min).map(|(max, min)| max - min + 1),
        "no gap"
    );
    pool.close().await;
}

/// SIGTERM: WebSockets get a close that says reconnect, SSE streams end, a parked long poll
/// gets 503 with Retry-After, new connections are refused, and the process exits cleanly.
#[tokio::test]
async fn sigterm_drains_every_transport() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let mut server = ServerProcess::start(&dir.path().join("term.db"), &[]);
    let jar = Arc::new(Jar::default());
    let c = server.client(&jar);
    c.signup("admin").await;

    let mut ws = c.ws("?feeds=chat").await;
    ws.hello().await;
    let mut sse = c.sse("?feeds=notifications").await;
    assert_eq!(sse.next_event().await.expect("hello").kind, "hello");
    let (_, first) = c.get("/api/live/poll?feeds=jobs&wait=0").await;
    let cursor = first["cursor"].as_i64().expect("cursor");
    let poller = c.clone_session();
    let parked = tokio::spawn(async move {
        poller
            .http
            .get(poller.url(&format!(
                "/api/live/poll?feeds=jobs&wait=25&cursor={cursor}"
            )))
            .send()
            .await
            .expect("long poll answered")
    });
    until("three live subscriptions", || {
        let c = c.clone_session();
        async move {
            let (_, m) = c.get("/api/admin/metrics").await;
            (m["runtime"]["subscribers"].as_u64() == Some(3)).then_some(())
        }
    })
    .await;

    let addr = server.addr;
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        drop(server);
        status
    });

    let mut close = None;
    while close.is_none() {
        if let Frame::Closed(code) = ws.next_frame().await {
            close = Some(code);
        }
    }
    assert_eq!(close.unwrap(), Some(protocol::close::GOING_AWAY));
    while sse.next_event().await.is_some() {}
    let poll = parked.await.expect("poll task");
    assert_eq!(poll.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        poll.headers().contains_key("retry-after"),
        "Retry-After set"
    );
    let body: Value = poll.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "shutting_down");

    let status = status.await.expect("terminate");
    assert!(status.success(), "clean exit: {status}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown"
    );
}

/// A WebSocket reader that stops reading while messages flow is closed (4008), the others keep
/// receiving everything, and the stalled client resumes by cursor with no gap.
#[tokio::test]
async fn a_reader_that_stops_is_closed_and_resumes_without_gap() {
    let app = TestApp::spawn().await;
    let alice = app.client();
    alice.signup("alice").await;
    let room = alice.create_room("flow", false).await;
    let mut stalled = alice.ws("?feeds=chat").await;
    let start = stalled.hello().await;
    let mut steady = alice.ws("?feeds=chat").await;
    steady.hello().await;

    // Publish at ~100 messages/s until the stalled socket is gone, then a few more.
    let publisher = alice.clone_session();
    let (room2, stop) = (
        room.clone(),
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let stop2 = stop.clone();
    let sending = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut ids = Vec::new();
        let mut n = 0;
        while !stop2.load(std::sync::atomic::Ordering::Acquire) {
            tick.tick().await;
            let (status, msg) = publisher
                .send(&room2, &format!("m{n}"), &format!("c{n}"))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{msg}");
            ids.push(msg["event_id"].as_i64().unwrap());
            n += 1;
        }
        ids
    });

    // The steady reader keeps up; meanwhile the server notices the stalled one.
    let began = Instant::now();
    let watcher = alice.clone_session();
    let mut steady_seen = Vec::new();
    loop {
        let ev = steady.next_of("message").await;
        steady_seen.push(ev.id.unwrap());
        if steady_seen.len() % 20 == 0 {
            let (_, m) = watcher.get("/api/admin/metrics").await;
            if m["runtime"]["subscribers"].as_u64() == Some(1) {
                break;
            }
        }
    }
    println!("stalled reader closed after {:?}", began.elapsed());
    stop.store(true, std::sync::atomic::Ordering::Release);
    let published = sending.await.expect("publisher");

    // The stalled socket holds what was written before the close, then the close itself.
    let mut got = Vec::new();
    let code = loop {
        match stalled.next_frame().await {
            Frame::Event(ev) if ev.kind == "message" => got.push(ev.id.unwrap()),
            Frame::Event(_) => {}
            Frame::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(protocol::close::SLOW_CONSUMER));
    let last = got.last().copied().unwrap_or(start);
    let mut resumed = alice
        .ws(&format!("?feeds=chat&cursor={last}&reconnect=1"))
        .await;
    resumed.hello().await;
    while got.len() < published.len() {
        got.push(resumed.next_of("message").await.id.unwrap());
    }
    assert_eq!(got, published, "nothing lost, nothing twice, in order");
    while steady_seen.len() < published.len() {
        steady_seen.push(steady.next_of("message").await.id.unwrap());
    }
    assert_eq!(steady_seen, published, "the steady reader missed nothing");
}

/// Opening and closing connections on every transport, many times, leaves the connection
/// counters, the hub's subscribers and the runtime's tasks where they started.
#[tokio::test]
async fn churn_on_every_transport_leaves_nothing_behind() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let server = ServerProcess::start(&dir.path().join("churn.db"), &[]);
    let jar = Arc::new(Jar::default());
    let admin = server.client(&jar);
    admin.signup("admin").await;

    let cycle = |jar: Arc<Jar>| {
        let server_addr = server.addr;
        async move {
            // A fresh client each time: its connections close when it is dropped.
            let c = Client {
                http: reqwest::Client::builder()
                    .default_headers(crate::common::same_origin(&format!("http://{server_addr}")))
                    .cookie_provider(jar.clone())
                    .pool_max_idle_per_host(0)
                    .build()
                    .unwrap(),
                jar,
                base: format!("http://{server_addr}"),
            };
            let mut ws = c.ws("?feeds=chat,notifications").await;
            ws.hello().await;
            ws.close().await;
            let mut sse = c.sse("?feeds=chat").await;
            assert_eq!(sse.next_event().await.expect("hello").kind, "hello");
            drop(sse);
            let (status, _) = c.get("/api/live/poll?feeds=jobs&wait=0").await;
            assert_eq!(status, StatusCode::OK);
            // A long poll abandoned while parked.
            let parked = c
                .http
                .get(c.url("/api/live/poll?feeds=jobs&wait=20&cursor=0"))
                .timeout(Duration::from_millis(300))
                .send()
                .await;
            assert!(parked.is_err() || parked.unwrap().status() == StatusCode::OK);
        }
    };
    let runtime = |admin: Client| async move {
        let (_, m) = admin.get("/api/admin/metrics").await;
        m["runtime"].clone()
    };

    cycle(jar.clone()).await; // warm-up: lazily started tasks exist from here on
    let settled = |want_tasks: Option<u64>| {
        let admin = admin.clone_session();
        async move {
            let r = runtime(admin).await;
            let quiet = r["users_connected"] == 0 && r["subscribers"] == 0;
            // The admin's own request holds one connection.
            let conns_ok = r["connections"].as_u64().is_some_and(|n| n <= 1);
            let tasks = r["tasks"].as_u64().unwrap();
            let tasks_ok = want_tasks.is_none_or(|w| tasks <= w);
            (quiet && conns_ok && tasks_ok).then_some(tasks)
        }
    };
    let baseline = until("a quiet server", || settled(None)).await;
    for _ in 0..30 {
        cycle(jar.clone()).await;
    }
    let after = until("the counters back at their baseline", || {
        settled(Some(baseline))
    })
    .await;
    println!("tasks: baseline {baseline}, after churn {after}");
}

/// Per-user and global connection caps refuse the excess at once with a clear error; a client
/// that sends its headers too slowly is cut off.
#[tokio::test]
async fn caps_and_slow_headers_are_refused() {
    const CAP: usize = 6;
    let app = TestApp::spawn_configured(|c| {
        c.max_connections_per_user = 2;
        c.max_connections = CAP;
        c.header_timeout_secs = 2;
    })
    .await;
    let alice = app.client();
    alice.signup("alice").await;

    let a = alice.ws("?feeds=chat").await;
    let b = alice.ws("?feeds=chat").await;
    let refused = alice
        .http
        .get(alice.url("/api/live/sse?feeds=chat"))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections");
    a.close().await;
    // The slot comes back when the socket ends.
    until("a free slot after closing one", || {
        let alice = alice.clone_session();
        async move {
            let (status, _) = alice.get("/api/live/poll?feeds=chat&wait=0").await;
            (status == StatusCode::OK).then_some(())
        }
    })
    .await;
    b.close().await;

    // Slow headers: half a request, then silence. The server hangs up without serving it.
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let answer = read_to_end(&mut slow).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "closed without serving the request: {answer:?}"
    );

    // Global cap: signed-in users hold four connections (they are never closed to make room),
    // then more idle connections than the rest of the cap are opened at once. Those over it are
    // told 503 `server_full` straight away; the others are closed by the header timeout.
    let bob = app.client();
    bob.signup("bob").await;
    let held = [
        alice.ws("?feeds=chat").await,
        alice.ws("?feeds=chat").await,
        bob.ws("?feeds=chat").await,
        bob.ws("?feeds=chat").await,
    ];
    let mut conns = Vec::new();
    for _ in 0..CAP + 2 - held.len() {
        conns.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    let mut answers = Vec::new();
    for mut c in conns {
        answers.push(read_to_end(&mut c).await);
    }
    let full = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 503"))
        .count();
    assert!(
        full >= 2,
        "at least the two over the cap refused: {answers:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|a| a.starts_with("HTTP/1.1 503"))
            .all(|a| a.contains("server_full") && a.to_lowercase().contains("retry-after")),
        "{answers:?}"
    );
    for ws in held {
        ws.close().await;
    }
}

/// Everything a connection receives until the server closes it.
async fn read_to_end(s: &mut tokio::net::TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .expect("the server closes the connection");
    String::from_utf8_lossy(&out).to_string()
}

/// A request head followed by a stalled or trickling body: answered 408 `body_timeout` (JSON,
/// `Connection: close`) within the body deadline or below the minimum rate, signed in or not.
#[tokio::test]
async fn slow_bodies_are_cut_off_with_408() {
    let app = TestApp::spawn_configured(|c| {
        c.body_timeout_secs = 3;
        c.body_min_bytes_per_sec = 200;
    })
    .await;
    app.client().signup("alice").await;
    let head = |len: &str| {
        format!(
            "POST /api/auth/login HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n{len}\r\n"
        )
    };
    // Stalled: part of the body, then nothing.
    let mut stalled = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stalled
        .write_all(format!("{}{{\"username\":", head("content-length: 80\r\n")).as_bytes())
        .await
        .unwrap();
    let answer = read_to_end(&mut stalled).await;
    assert_408(&answer, "stalled");
    // Chunked and stalled.
    let mut chunked = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    chunked
        .write_all(format!("{}5\r\n{{\"use\r\n", head("transfer-encoding: chunked\r\n")).as_bytes())
        .await
        .unwrap();
    let answer = read_to_end(&mut chunked).await;
    assert_408(&answer, "chunked");
    // Trickling: a byte every 100 ms (10 B/s, under the 200 B/s floor) never gets to finish.
    let mut trickle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let body = br#"{"username":"alice","password":"correct horse battery"}"#;
    trickle
        .write_all(head(&format!("content-length: {}\r\n", body.len())).as_bytes())
        .await
        .unwrap();
    let mut sent = 0;
    let answer = loop {
        let mut buf = [0u8; 4096];
        tokio::select! {
            r = trickle.read(&mut buf) => {
                let n = r.unwrap_or(0);
                let mut out = String::from_utf8_lossy(&buf[..n]).to_string();
                out.push_str(&read_to_end(&mut trickle).await);
                break out;
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                assert!(sent < body.len(), "the whole body went out: it was never cut off");
                let _ = trickle.write_all(&body[sent..sent + 1]).await;
                sent += 1;
            }
        }
    };
    assert_408(&answer, "trickle");
    // A body sent at once is unaffected.
    let c = app.client();
    c.login("alice").await;
}

fn assert_408(answer: &str, what: &str) {
    assert!(answer.starts_with("HTTP/1.1 408"), "{what}: {answer:?}");
    let lower = answer.to_lowercase();
    assert!(lower.contains("connection: close"), "{what}: {answer:?}");
    assert!(lower.contains("application/json"), "{what}: {answer:?}");
    assert!(
        answer.contains(r#""code":"body_timeout""#),
        "{what}: {answer:?}"
    );
}

/// Connections without a session (an attacker's stalled ones) cannot crowd out signed-in users:
/// past their own cap the oldest of them is closed to make room (once it had the time to show a
/// session), a signed-in user's new connection is served, and their open ones are never touched.
#[tokio::test]
async fn strangers_holding_connections_cannot_lock_out_signed_in_users() {
    const ANON: usize = 8;
    let app = TestApp::spawn_configured(|c| {
        c.max_connections = 40;
        c.max_anonymous_connections = ANON;
        c.header_timeout_secs = 30;
    })
    .await;
    let alice = app.client();
    alice.signup("alice").await;
    // Her client's connection shows its session (the sign-up itself came without one).
    assert_eq!(alice.get("/api/me").await.0, StatusCode::OK);
    // A live connection of alice's is signed in: it is never closed for room.
    let mut ws = alice.ws("?feeds=chat").await;
    ws.hello().await;
    // An attacker fills the anonymous connections with half a request head each...
    let half_head = |mut s: tokio::net::TcpStream| async move {
        let _ = s.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\n").await;
        s
    };
    let mut first = Vec::new();
    for _ in 0..ANON {
        first.push(half_head(tokio::net::TcpStream::connect(app.addr).await.unwrap()).await);
    }
    // ...and holds them past the age at which they may be closed to make room.
    tokio::time::sleep(server::limits::EVICT_MIN_AGE * 2).await;
    // Alice gets in on a new connection (the oldest stranger makes way), and again.
    let (status, me) = alice.get("/api/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let room = alice.create_room("still-here", false).await;
    // More strangers push the older ones out; fresh ones past the cap are refused at once.
    let mut second = Vec::new();
    for _ in 0..ANON * 2 {
        second.push(half_head(tokio::net::TcpStream::connect(app.addr).await.unwrap()).await);
    }
    for s in first.iter_mut() {
        let answer = read_to_end(s).await;
        assert!(
            answer.is_empty(),
            "an old stranger is closed without an answer: {answer:?}"
        );
    }
    let mut refused = 0;
    for s in second.iter_mut().skip(ANON) {
        let answer = read_to_end(s).await;
        if answer.starts_with("HTTP/1.1 503") {
            assert!(answer.contains("server_full"), "{answer:?}");
            refused += 1;
        }
    }
    assert!(refused > 0, "fresh strangers past the cap are refused");
    // Alice's socket, open all along, still works.
    ws.send_json(
        serde_json::json!({"type": "send", "room_id": room, "body": "hi", "client_id": "c1"}),
    )
    .await;
    assert_eq!(ws.next_of("ack").await.data["message"]["body"], "hi");
}
