//! Test helpers: boot the real server on 127.0.0.1:0 with a temporary SQLite file, and talk to it
//! with real HTTP and WebSocket clients.
//!
//! With `SWITCHBOARD_TEST_POSTGRES` set to a PostgreSQL server URL without a database (e.g.
//! `postgres://postgres@127.0.0.1:5432`), every server runs on PostgreSQL instead: each data
//! directory gets a fresh database `sbt_<random>` (created through the `test` database, its name
//! kept in the directory so a restart finds it again). Nothing drops them: `scripts/test.sh`
//! drops leftover `sbt_%` databases before and after its PostgreSQL run.
#![allow(dead_code)]

pub mod cluster;
pub mod process;

use futures_util::{SinkExt, StreamExt};
use protocol::{Event, User};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait for something the test expects to happen. A guard against hangs, not a timing
/// assertion: every wait ends as soon as its condition holds.
pub const WAIT: Duration = Duration::from_secs(15);

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub addr: SocketAddr,
    pub dir: Arc<TempDir>,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Arc::new(TempDir::new().expect("temp dir")), |_| {}).await
    }

    pub async fn spawn_configured(tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_with(Arc::new(TempDir::new().expect("temp dir")), tweak).await
    }

    /// Boots a server on the database in `dir` (a restart, when `dir` was used before).
    pub async fn spawn_with(dir: Arc<TempDir>, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = Self::config(&dir);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(server::run(listener, config, async {
            let _ = stopped.await;
        }));
        let app = TestApp {
            addr,
            dir,
            stop: Some(stop),
            handle,
        };
        app.wait_healthy().await;
        app
    }

    /// The test configuration of a server whose data lives in `dir`: its SQLite file, or its
    /// PostgreSQL database when the suite runs on PostgreSQL.
    pub fn config(dir: &TempDir) -> Config {
        let db = Self::db_path(dir);
        let mut config = Config::for_tests(&db);
        if postgres_base().is_some() {
            config.database_url = database_url(&db);
            config.data_dir = Some(dir.path().to_path_buf());
        }
        config
    }

    fn db_path(dir: &TempDir) -> PathBuf {
        dir.path().join("switchboard.db")
    }

    async fn wait_healthy(&self) {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = http.get(self.url("/healthz")).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "server did not become healthy"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The server's own origin, as a browser on its pages would send it.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client that behaves like the app's pages: a cookie jar, and the server's own `Origin`
    /// on every request (live routes refuse requests that do not say where they come from).
    pub fn client(&self) -> Client {
        self.client_with(same_origin(&self.origin()))
    }

    /// A client with these default headers instead (e.g. none, or a foreign `Origin`).
    pub fn client_with(&self, headers: reqwest::header::HeaderMap) -> Client {
        Client::new(Arc::new(Jar::default()), self.addr, headers)
    }

    /// Stops the server gracefully and waits for it; returns the data directory for a restart.
    pub async fn stop(mut self) -> Arc<TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.handle)
            .await
            .expect("server stops")
            .expect("server task")
            .expect("server ran cleanly");
        self.dir.clone()
    }
}

/// The environment variable that switches the suite to PostgreSQL (a server URL, no database).
pub const POSTGRES_ENV: &str = "SWITCHBOARD_TEST_POSTGRES";

/// The PostgreSQL server the suite runs on, if any (without a trailing slash).
pub fn postgres_base() -> Option<String> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .filter(|s| !s.is_empty())
}

/// The database URL for a server whose SQLite file would be `path`: that file, or (on
/// PostgreSQL) a database of its own, created on first use and found again from a file beside
/// `path` on a restart.
pub fn database_url(path: &std::path::Path) -> String {
    let Some(base) = postgres_base() else {
        return format!("sqlite://{}", path.display());
    };
    let marker = path.with_extension("pgdb");
    let name = match std::fs::read_to_string(&marker) {
        Ok(name) => name.trim().to_string(),
        Err(_) => {
            let name = format!("sbt_{}", uuid::Uuid::new_v4().simple());
            create_database(&base, &name);
            std::fs::write(&marker, &name).expect("remember the database name");
            name
        }
    };
    format!("{base}/{name}")
}

/// Creates database `name` on the server at `base`. On a thread of its own, so that both async
/// tests and plain functions (starting a server process) can call it.
fn create_database(base: &str, name: &str) {
    let admin = format!("{base}/test");
    let sql = format!("CREATE DATABASE \"{name}\"");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to PostgreSQL's `test` database");
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .expect("create a test database");
            let _ = conn.close().await;
        });
    })
    .join()
    .expect("creating the test database");
}

/// The headers a page of the server at `origin` sends on its requests: its `Origin` (live routes
/// refuse requests that do not say where they come from).
pub fn same_origin(origin: &str) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", origin.parse().expect("origin header value"));
    headers
}

pub struct Client {
    pub http: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: String,
}

impl Client {
    /// A client of the server at `addr` with this cookie jar and these default headers.
    pub fn new(jar: Arc<Jar>, addr: SocketAddr, headers: reqwest::header::HeaderMap) -> Client {
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Client {
            http,
            jar,
            base: format!("http://{addr}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        into_parts(self.get_response(path).await).await
    }

    /// A GET's whole response (headers included).
    pub async fn get_response(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request");
        into_parts(r).await
    }

    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .send()
            .await
            .expect("request");
        into_parts(r).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        into_parts(r).await
    }

    /// Uploads `bytes` as a file called `name` of type `content_type` (`POST /api/uploads`).
    pub async fn upload(
        &self,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/api/uploads"))
            .query(&[("name", name)])
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .expect("request");
        into_parts(r).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .put(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request");
        into_parts(r).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .patch(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request");
        into_parts(r).await
    }

    /// Another client of the same server, with cookies of its own (another browser).
    pub fn stranger(&self) -> Client {
        let addr = self
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("address");
        Client::new(Arc::new(Jar::default()), addr, same_origin(&self.base))
    }

    pub async fn put_empty(&self, path: &str) -> (StatusCode, Value) {
        let r = self.http.put(self.url(path)).send().await.expect("request");
        into_parts(r).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .delete(self.url(path))
            .send()
            .await
            .expect("request");
        into_parts(r).await
    }

    pub async fn signup(&self, username: &str) -> User {
        let (status, body) = self
            .post(
                "/api/auth/signup",
                json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "signup {username}: {body}");
        serde_json::from_value(body).expect("user")
    }

    pub async fn login(&self, username: &str) -> User {
        let (status, body) = self
            .post(
                "/api/auth/login",
                json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {username}: {body}");
        serde_json::from_value(body).expect("user")
    }

    pub async fn create_room(&self, name: &str, private: bool) -> String {
        let (status, body) = self
            .post("/api/rooms", json!({"name": name, "private": private}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "create room: {body}");
        body["id"].as_str().expect("room id").to_string()
    }

    pub async fn send(&self, room: &str, body: &str, client_id: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/rooms/{room}/messages"),
            json!({"body": body, "client_id": client_id}),
        )
        .await
    }

    pub fn session_cookie(&self) -> Option<String> {
        let url = self.base.parse().expect("url");
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().expect("ascii").to_string())
    }

    /// Opens a WebSocket to /api/live/ws with this client's session.
    pub async fn ws(&self, query: &str) -> Ws {
        self.try_ws(query, None).await.expect("websocket connects")
    }

    /// Opens a WebSocket with `origin` (None: the server's own, as a browser on its page sends).
    pub async fn try_ws(
        &self,
        query: &str,
        origin: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let own = self.base.clone();
        let origin = origin.unwrap_or(&own);
        self.try_ws_headers(query, &[("origin", origin)]).await
    }

    /// Opens a WebSocket with exactly these extra headers (besides the session cookie).
    pub async fn try_ws_headers(
        &self,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let url = format!(
            "{}/api/live/ws{}",
            self.base.replacen("http", "ws", 1),
            query
        );
        let mut req = url.into_client_request()?;
        if let Some(cookie) = self.session_cookie() {
            req.headers_mut()
                .insert("cookie", cookie.parse().expect("cookie header"));
        }
        for (name, value) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("header name"),
                value.parse().expect("header value"),
            );
        }
        let (stream, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(Ws { stream })
    }
}

async fn into_parts(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What came off the socket.
#[derive(Debug)]
pub enum Frame {
    Event(Event),
    Closed(Option<u16>),
}

impl Ws {
    pub async fn send_json(&mut self, value: Value) {
        self.stream
            .send(WsMessage::Text(value.to_string().into()))
            .await
            .expect("ws send");
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream
            .send(WsMessage::Text(text.into()))
            .await
            .expect("ws send");
    }

    /// The next event or close, skipping pings.
    pub async fn next_frame(&mut self) -> Frame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a frame in time");
            match msg {
                None => return Frame::Closed(None),
                Some(Err(_)) => return Frame::Closed(None),
                Some(Ok(WsMessage::Text(t))) => {
                    return Frame::Event(serde_json::from_str(t.as_str()).expect("event json"))
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    return Frame::Closed(frame.map(|f| u16::from(f.code)))
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn next_event(&mut self) -> Event {
        match self.next_frame().await {
            Frame::Event(e) => e,
            Frame::Closed(code) => panic!("socket closed ({code:?}) while waiting for an event"),
        }
    }

    /// The next event of `kind`, skipping others (hello, typing, membership…).
    pub async fn next_of(&mut self, kind: &str) -> Event {
        loop {
            let ev = self.next_event().await;
            if ev.kind == kind {
                return ev;
            }
        }
    }

    /// Reads the opening hello and returns its cursor.
    pub async fn hello(&mut self) -> i64 {
        let ev = self.next_event().await;
        assert_eq!(ev.kind, "hello", "first frame is hello: {ev:?}");
        ev.data["cursor"].as_i64().expect("cursor")
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// The four transports as a test client sees them: a cursor in, events out.
pub enum Live {
    Ws(Ws),
    Sse(Sse),
    Poll {
        client: Client,
        feeds: String,
        cursor: i64,
        eph: Option<u64>,
        wait: u64,
        queue: std::collections::VecDeque<Event>,
        /// Polls made with this transport's `wait`, and those answered empty.
        requests: u64,
        empty: u64,
    },
}

pub const TRANSPORTS: [&str; 4] = ["websocket", "sse", "long_poll", "short_poll"];

impl Live {
    /// Opens `transport` for `feeds` from `cursor` (None: from now).
    pub async fn open(client: &Client, transport: &str, feeds: &str, cursor: Option<i64>) -> Live {
        let cq = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        match transport {
            "websocket" => {
                let mut ws = client.ws(&format!("?feeds={feeds}{cq}")).await;
                ws.hello().await;
                Live::Ws(ws)
            }
            "sse" => {
                let mut sse = client.sse(&format!("?feeds={feeds}{cq}")).await;
                let hello = sse.next_event().await.expect("hello");
                assert_eq!(hello.kind, "hello");
                Live::Sse(sse)
            }
            "long_poll" | "short_poll" => {
                let wait = if transport == "long_poll" { 2 } else { 0 };
                // A first poll gives the starting cursor and the ephemerals' position.
                let (status, body) = client
                    .get(&format!("/api/live/poll?feeds={feeds}&wait=0"))
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                let cursor = cursor.unwrap_or_else(|| body["cursor"].as_i64().expect("cursor"));
                Live::Poll {
                    client: client.clone_session(),
                    feeds: feeds.to_string(),
                    cursor,
                    eph: body["eph"].as_u64(),
                    wait,
                    queue: Default::default(),
                    // The opening poll is a short poll: it counts as this transport's only then.
                    requests: u64::from(wait == 0),
                    empty: u64::from(
                        wait == 0 && body["events"].as_array().is_some_and(|e| e.is_empty()),
                    ),
                }
            }
            other => panic!("unknown transport {other}"),
        }
    }

    /// The next event, or None when the server ended the connection.
    pub async fn next(&mut self) -> Option<Event> {
        match self {
            Live::Ws(ws) => match ws.next_frame().await {
                Frame::Event(e) => Some(e),
                Frame::Closed(_) => None,
            },
            Live::Sse(sse) => sse.next_event().await,
            Live::Poll {
                client,
                feeds,
                cursor,
                eph,
                wait,
                queue,
                requests,
                empty,
            } => {
                let deadline = tokio::time::Instant::now() + WAIT;
                loop {
                    if let Some(ev) = queue.pop_front() {
                        return Some(ev);
                    }
                    assert!(tokio::time::Instant::now() < deadline, "no event in time");
                    let eph_q = eph.map(|e| format!("&eph={e}")).unwrap_or_default();
                    let (status, body) = client
                        .get(&format!(
                            "/api/live/poll?feeds={feeds}&cursor={cursor}&wait={wait}{eph_q}"
                        ))
                        .await;
                    *requests += 1;
                    if status != StatusCode::OK {
                        return None;
                    }
                    let answer: protocol::PollAnswer =
                        serde_json::from_value(body).expect("poll answer");
                    assert!(answer.cursor >= *cursor, "the cursor never goes back");
                    *cursor = answer.cursor;
                    *eph = answer.eph.or(*eph);
                    if answer.events.is_empty() {
                        *empty += 1;
                    }
                    if answer.events.is_empty() && *wait == 0 {
                        // Pacing for the short-poll loop; the wait above bounds it.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    queue.extend(answer.events);
                }
            }
        }
    }

    /// For polls: (requests made, empty answers); None for streaming transports.
    pub fn poll_counts(&self) -> (Option<u64>, Option<u64>) {
        match self {
            Live::Poll {
                requests, empty, ..
            } => (Some(*requests), Some(*empty)),
            _ => (None, None),
        }
    }

    /// The next stored event (skipping hello, typing, acks), or None when closed.
    pub async fn next_stored(&mut self) -> Option<Event> {
        loop {
            let ev = self.next().await?;
            if ev.kind == "disconnect" {
                return None;
            }
            if ev.id.is_some() {
                return Some(ev);
            }
        }
    }
}

/// A Server-Sent Events stream read off a real HTTP response.
pub struct Sse {
    pub response: reqwest::Response,
    buf: String,
    pub last_id: Option<i64>,
    pub retry: Option<u64>,
}

impl Client {
    pub fn clone_session(&self) -> Client {
        Client {
            http: self.http.clone(),
            jar: self.jar.clone(),
            base: self.base.clone(),
        }
    }

    pub async fn sse(&self, query: &str) -> Sse {
        let r = self
            .http
            .get(self.url(&format!("/api/live/sse{query}")))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("sse request");
        assert_eq!(r.status(), StatusCode::OK, "sse status");
        Sse {
            response: r,
            buf: String::new(),
            last_id: None,
            retry: None,
        }
    }
}

impl Sse {
    pub fn from_response(response: reqwest::Response) -> Sse {
        assert_eq!(response.status(), StatusCode::OK, "sse status");
        Sse {
            response,
            buf: String::new(),
            last_id: None,
            retry: None,
        }
    }

    /// The next event (comments skipped), or None when the stream ended.
    pub async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut data = Vec::new();
                let mut id = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("data: ") {
                        data.push(v.to_string());
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse::<i64>().expect("numeric id"));
                    } else if let Some(v) = line.strip_prefix("retry: ") {
                        self.retry = v.parse().ok();
                    }
                }
                if data.is_empty() {
                    continue;
                }
                let ev: Event = serde_json::from_str(&data.join("\n")).expect("event json");
                assert_eq!(id, ev.id, "the id: line matches the event id");
                if id.is_some() {
                    self.last_id = id;
                }
                return Some(ev);
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("sse data in time");
            match chunk {
                Ok(Some(bytes)) => self
                    .buf
                    .push_str(std::str::from_utf8(&bytes).expect("utf-8")),
                _ => return None,
            }
        }
    }

    /// The data of the next frame named `event` (other frames skipped), as JSON.
    pub async fn next_raw(&mut self, event: &str) -> Value {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = None;
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push(v.to_string());
                    } else if let Some(v) = line.strip_prefix("retry: ") {
                        self.retry = v.parse().ok();
                    }
                }
                if name.as_deref() == Some(event) {
                    return serde_json::from_str(&data.join("\n")).expect("json data");
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("sse data in time")
                .expect("sse stream")
                .expect("stream still open");
            self.buf
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }
}

/// A counter from the server's `/metrics` (Prometheus text), read by `admin`.
pub async fn metric(admin: &Client, name: &str) -> u64 {
    let (status, text) = admin.get("/metrics").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let prefix = format!("{name} ");
    text.as_str()
        .expect("metrics text")
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .expect("a count")
}
