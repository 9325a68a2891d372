//! The bare floor: the smallest axum server that speaks the part of Switchboard's API the load
//! generator uses, with nothing behind it but a counter, a ring of recent events and a tokio
//! broadcast channel. No database, no sessions, no permissions, no meters: what Switchboard
//! costs on top of this is its features. It serializes each event once and shares the bytes,
//! and reads WebSockets with a 4 KiB buffer, as Switchboard does.

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, Notify};

#[derive(Parser)]
#[command(
    name = "floor",
    about = "A bare axum broadcast server: the benchmark floor"
)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:3001")]
    addr: SocketAddr,
    /// Accepted and ignored (the load generator passes it to any server it starts).
    #[arg(long)]
    database_url: Option<String>,
    /// Accepted and ignored.
    #[arg(long)]
    log: Option<String>,
    /// Accepted and ignored (Switchboard's rate limits, switched off by the load generator).
    #[arg(long)]
    signup_per_ip_per_minute: Option<String>,
    /// Accepted and ignored.
    #[arg(long)]
    sends_per_user_per_minute: Option<String>,
}

/// Events kept for polls.
const RING: usize = 10_000;

struct Floor {
    /// `FLOOR_EVENTS=message`: events shaped and sized like Switchboard's message events (the
    /// stored message with its ids, author, seq and times), to compare transports on equal
    /// bytes. By default an event carries only what was posted.
    message_events: bool,
    tx: broadcast::Sender<(i64, Arc<str>)>,
    next_id: AtomicI64,
    ring: Mutex<VecDeque<(i64, Arc<str>)>>,
    posted: Notify,
}

type S = Arc<Floor>;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Floor {
    fn head(&self) -> i64 {
        self.next_id.load(Relaxed)
    }

    fn publish(&self, room: &str, body: &Value) -> i64 {
        // One lock orders ids, the ring and the broadcast alike.
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let ts = now_ms();
        let event: Arc<str> = if self.message_events {
            // Switchboard's message event: its field order (the event id first), uuid-length
            // ids, the author, the room's seq, the event id and times.
            let uuid = |n: i64| format!("00000000-0000-4000-8000-{n:012x}");
            let data = json!({
                "id": uuid(id), "room_id": room,
                "author": {"id": uuid(0), "username": "floor-publisher"},
                "body": body["body"], "client_id": body["client_id"],
                "created_at": ts, "seq": id, "event_id": id,
            });
            format!(r#"{{"id":{id},"feed":"chat","type":"message","data":{data},"ts":{ts}}}"#)
                .into()
        } else {
            json!({
                "id": id, "feed": "chat", "type": "message",
                "data": {"room_id": room, "body": body["body"], "client_id": body["client_id"]},
                "ts": ts,
            })
            .to_string()
            .into()
        };
        if ring.len() >= RING {
            ring.pop_front();
        }
        ring.push_back((id, event.clone()));
        let _ = self.tx.send((id, event));
        drop(ring);
        self.posted.notify_waiters();
        id
    }

    fn after(&self, cursor: i64) -> Vec<Arc<str>> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter()
            .filter(|(id, _)| *id > cursor)
            .take(200)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

fn hello(head: i64) -> String {
    json!({"id": null, "feed": "control", "type": "hello", "data": {"cursor": head}, "ts": now_ms()})
        .to_string()
}

async fn signup(Json(body): Json<Value>) -> Response {
    let name = body["username"].as_str().unwrap_or("user").to_string();
    let mut res = (
        StatusCode::CREATED,
        Json(json!({"id": name, "username": name, "is_admin": false})),
    )
        .into_response();
    let cookie = format!("switchboard_session={name}; Path=/; HttpOnly");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

async fn create_room(Json(body): Json<Value>) -> impl IntoResponse {
    (StatusCode::CREATED, Json(json!({"id": body["name"]})))
}

async fn join() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn send(
    State(s): State<S>,
    Path(room): Path<String>,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    let id = s.publish(&room, &body);
    (StatusCode::CREATED, Json(json!({"id": id})))
}

async fn ws(State(s): State<S>, up: WebSocketUpgrade) -> Response {
    up.read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| pump(s, socket))
}

async fn pump(s: S, mut socket: WebSocket) {
    let mut rx = s.tx.subscribe();
    if socket
        .send(Message::Text(hello(s.head()).into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok((_, e)) => if socket.send(Message::Text(e.to_string().into())).await.is_err() { return },
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(v) = serde_json::from_str::<Value>(t.as_str()) {
                        if v["type"] == "send" {
                            s.publish(v["room_id"].as_str().unwrap_or_default(), &v);
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

async fn sse(State(s): State<S>) -> Response {
    let rx = s.tx.subscribe();
    let first = format!(
        "retry: 3000\n\nevent: control\ndata: {}\n\n",
        hello(s.head())
    );
    let stream = futures_util::stream::unfold((rx, Some(first)), |(mut rx, first)| async move {
        if let Some(f) = first {
            return Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(f)),
                (rx, None),
            ));
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
                Ok(Ok((id, e))) => {
                    let frame = format!("id: {id}\nevent: chat\ndata: {e}\n\n");
                    return Some((Ok(Bytes::from(frame)), (rx, None)));
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(_)) => return None,
                Err(_) => return Some((Ok(Bytes::from_static(b": hb\n\n")), (rx, None))),
            }
        }
    });
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

async fn poll(State(s): State<S>, Query(q): Query<HashMap<String, String>>) -> Response {
    let cursor: i64 = q
        .get("cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| s.head());
    let wait: u64 = q
        .get("wait")
        .and_then(|w| w.parse().ok())
        .unwrap_or(0)
        .min(30);
    let mut events = s.after(cursor);
    if events.is_empty() && wait > 0 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
        loop {
            let posted = s.posted.notified();
            events = s.after(cursor);
            if !events.is_empty() {
                break;
            }
            if tokio::time::timeout_at(deadline, posted).await.is_err() {
                break;
            }
        }
    }
    let next = if events.is_empty() {
        cursor.max(0)
    } else {
        cursor.max(last_id(&events))
    };
    let body = format!(
        "{{\"events\":[{}],\"cursor\":{next}}}",
        events
            .iter()
            .map(|e| e.as_ref())
            .collect::<Vec<_>>()
            .join(",")
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn last_id(events: &[Arc<str>]) -> i64 {
    events
        .last()
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .and_then(|v| v["id"].as_i64())
        .unwrap_or(0)
}

async fn submit_job() -> impl IntoResponse {
    (
        StatusCode::CREATED,
        Json(json!({"id": "job", "state": "done"})),
    )
}

async fn job(headers: HeaderMap) -> Response {
    const TAG: &str = "\"job-v1\"";
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == TAG) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [(header::ETAG, TAG)],
        Json(json!({"id": "job", "state": "done"})),
    )
        .into_response()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (tx, _) = broadcast::channel(4096);
    let state: S = Arc::new(Floor {
        message_events: std::env::var("FLOOR_EVENTS").is_ok_and(|v| v == "message"),
        tx,
        next_id: AtomicI64::new(0),
        ring: Mutex::new(VecDeque::new()),
        posted: Notify::new(),
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/auth/signup", post(signup))
        .route("/api/rooms", post(create_room))
        .route("/api/rooms/{id}/join", post(join))
        .route("/api/rooms/{id}/messages", post(send))
        .route("/api/live/ws", get(ws))
        .route("/api/live/sse", get(sse))
        .route("/api/live/poll", get(poll))
        .route("/api/jobs", post(submit_job))
        .route("/api/jobs/{id}", get(job))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(cli.addr).await?;
    eprintln!("floor listening on {}", cli.addr);
    axum::serve(listener, app).await?;
    Ok(())
}
