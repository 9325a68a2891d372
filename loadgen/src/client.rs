//! The public API as a load generator uses it: sign up, rooms, messages, and a live subscription
//! over any of the four transports that yields raw event JSON.

use crate::http::Http;
use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

pub const PASSWORD: &str = "loadgen password 1";

/// A signed-in user: a session cookie.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub cookie: String,
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

pub async fn signup(addr: SocketAddr, name: &str) -> Result<User> {
    session(addr, "/api/auth/signup", name, PASSWORD).await
}

/// Signs in as an existing person (a seeded one, say).
pub async fn login(addr: SocketAddr, name: &str, password: &str) -> Result<User> {
    session(addr, "/api/auth/login", name, password).await
}

/// Signs up or in at `path`; the session cookie comes back in the user.
async fn session(addr: SocketAddr, path: &str, name: &str, password: &str) -> Result<User> {
    let mut h = Http::connect(addr).await?;
    let body = serde_json::json!({ "username": name, "password": password }).to_string();
    let r = h
        .request("POST", path, None, &[], Some(body.as_bytes()))
        .await?;
    if r.status != 201 && r.status != 200 {
        bail!(
            "{path} {name}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    let cookie = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ");
    if cookie.is_empty() {
        bail!("{path} {name}: no session cookie");
    }
    Ok(User {
        name: name.to_string(),
        cookie,
    })
}

/// `n` users named `{prefix}{i}`, signed up `concurrency` at a time.
pub async fn signup_many(addr: SocketAddr, prefix: &str, n: usize) -> Result<Vec<User>> {
    let mut out = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(8) {
        let tasks: Vec<_> = batch
            .iter()
            .map(|i| {
                let name = format!("{prefix}{i}");
                tokio::spawn(async move { signup(addr, &name).await })
            })
            .collect();
        for t in tasks {
            out.push(t.await??);
        }
    }
    Ok(out)
}

pub async fn create_room(addr: SocketAddr, user: &User, name: &str) -> Result<String> {
    let mut h = Http::connect(addr).await?;
    let body = serde_json::json!({ "name": name }).to_string();
    let r = h
        .request(
            "POST",
            "/api/rooms",
            Some(&user.cookie),
            &[],
            Some(body.as_bytes()),
        )
        .await?;
    if r.status != 201 && r.status != 200 {
        bail!(
            "create room: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    r.json()["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("room without id"))
}

pub async fn join(addr: SocketAddr, user: &User, room: &str) -> Result<()> {
    let mut h = Http::connect(addr).await?;
    let r = h
        .request(
            "POST",
            &format!("/api/rooms/{room}/join"),
            Some(&user.cookie),
            &[],
            None,
        )
        .await?;
    if !(200..300).contains(&r.status) {
        bail!("join: {} {}", r.status, String::from_utf8_lossy(&r.body));
    }
    Ok(())
}

/// Posts a message whose body carries its send time (`lg <µs>`); returns the ack status.
pub async fn post_message(h: &mut Http, user: &User, room: &str, seq: u64) -> Result<u16> {
    let body = serde_json::json!({
        "body": format!("lg {}", now_us()),
        "client_id": format!("{}-{seq}", user.name),
    })
    .to_string();
    let r = h
        .request(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&user.cookie),
            &[],
            Some(body.as_bytes()),
        )
        .await?;
    Ok(r.status)
}

/// What a load-generator client takes from an event without parsing all of it: its id, the
/// commit time, and the send time a load-generator message carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    pub id: i64,
    pub ts_ms: i64,
    pub sent_us: Option<u64>,
}

fn number_after(text: &str, key: &str) -> Option<i64> {
    // Runs once per event per subscriber: no allocation, and memchr's vectorized search.
    let at = memchr::memmem::find(text.as_bytes(), key.as_bytes())? + key.len();
    number_at(&text.as_bytes()[at..])
}

/// The integer at the start of `rest` (after any spaces).
fn number_at(rest: &[u8]) -> Option<i64> {
    let start = rest.iter().take_while(|b| **b == b' ').count();
    let rest = &rest[start..];
    let (negative, rest) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        _ => (false, rest),
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let value = rest[..digits]
        .iter()
        .fold(0i64, |v, b| v * 10 + i64::from(b - b'0'));
    Some(if negative { -value } else { value })
}

/// The objects of a poll answer's `events` array, as slices of `text`, and the text after the
/// array (where `cursor` and `eph` are). None if `text` is not shaped like a poll answer.
fn poll_events(text: &str) -> Option<(Vec<&str>, &str)> {
    let open = text.find("\"events\":[")? + "\"events\":[".len();
    let bytes = text.as_bytes();
    let mut events = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut begin) = (0usize, false, false, 0usize);
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                if depth == 0 {
                    begin = i;
                }
                depth += 1;
            }
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    events.push(&text[begin..=i]);
                }
            }
            b']' => return Some((events, &text[i + 1..])),
            _ => {}
        }
    }
    None
}

/// Searchers built once: `scan` runs for every event every subscriber reads, and the load
/// generator shares the machine with the server it measures (profiled: building a searcher per
/// call and a byte-by-byte window search were two fifths of the generator's CPU in SSE
/// saturation).
struct Needles {
    message: memchr::memmem::Finder<'static>,
    id: memchr::memmem::Finder<'static>,
    body: memchr::memmem::Finder<'static>,
    /// The envelope's `ts` is its last key: searched from the end.
    ts: memchr::memmem::FinderRev<'static>,
}

fn needles() -> &'static Needles {
    static N: std::sync::OnceLock<Needles> = std::sync::OnceLock::new();
    N.get_or_init(|| Needles {
        message: memchr::memmem::Finder::new(b"\"type\":\"message\""),
        id: memchr::memmem::Finder::new(b"\"id\":"),
        body: memchr::memmem::Finder::new(b"\"body\":\"lg "),
        ts: memchr::memmem::FinderRev::new(b"\"ts\":"),
    })
}

/// Scans one event's JSON for a stored message: None for anything else (hello, presence, …).
pub fn scan(event: &str) -> Option<Seen> {
    let n = needles();
    let bytes = event.as_bytes();
    n.message.find(bytes)?;
    let after = |at: usize, len: usize| number_at(&bytes[at + len..]);
    let id = after(n.id.find(bytes)?, n.id.needle().len())?;
    let ts_ms = after(n.ts.rfind(bytes)?, n.ts.needle().len())?;
    let sent_us = n
        .body
        .find(bytes)
        .and_then(|at| after(at, n.body.needle().len()))
        .map(|v| v as u64);
    Some(Seen { id, ts_ms, sent_us })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Websocket,
    Sse,
    LongPoll,
    ShortPoll,
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "websocket" | "ws" => Ok(Transport::Websocket),
            "sse" => Ok(Transport::Sse),
            "long_poll" | "long" => Ok(Transport::LongPoll),
            "short_poll" | "short" => Ok(Transport::ShortPoll),
            other => Err(format!("unknown transport {other}")),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Websocket => "websocket",
            Transport::Sse => "sse",
            Transport::LongPoll => "long_poll",
            Transport::ShortPoll => "short_poll",
        })
    }
}

pub type WsStream = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens `/api/live/ws?{query}` as `user` and reads up to the hello; returns the socket and the
/// hello's JSON.
pub async fn ws_open(addr: SocketAddr, user: &User, query: &str) -> Result<(WsStream, String)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut req = format!("ws://{addr}/api/live/ws?{query}").into_client_request()?;
    req.headers_mut().insert("cookie", user.cookie.parse()?);
    // Live routes refuse a handshake that does not say where it comes from.
    req.headers_mut()
        .insert("origin", format!("http://{addr}").parse()?);
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(req, tcp, Some(config))
        .await
        .context("websocket handshake")?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"type\":\"hello\"") => {
                return Ok((ws, t.to_string()))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("websocket closed before hello"),
        }
    }
}

/// One live subscription. `next_batch` gives the raw JSON of the next events.
pub enum Live {
    Ws(Box<WsStream>),
    Sse {
        http: Box<Http>,
        buf: Vec<u8>,
    },
    Poll {
        http: Box<Http>,
        cookie: String,
        feeds: String,
        cursor: i64,
        eph: Option<u64>,
        wait: u32,
        short_poll_ms: u64,
    },
}

impl Live {
    /// Opens `transport` on `feeds` and waits until it is live (hello, or a first poll answer).
    pub async fn open(
        addr: SocketAddr,
        user: &User,
        transport: Transport,
        feeds: &str,
    ) -> Result<Live> {
        match transport {
            Transport::Websocket => {
                let (ws, _hello) = ws_open(addr, user, &format!("feeds={feeds}")).await?;
                Ok(Live::Ws(Box::new(ws)))
            }
            Transport::Sse => {
                let mut http = Http::connect(addr).await?;
                http.send(
                    "GET",
                    &format!("/api/live/sse?feeds={feeds}"),
                    Some(&user.cookie),
                    &[("accept", "text/event-stream")],
                    None,
                )
                .await?;
                let (status, _) = http.head().await?;
                if status != 200 {
                    bail!("sse: status {status}");
                }
                let mut live = Live::Sse {
                    http: Box::new(http),
                    buf: Vec::new(),
                };
                // The hello first.
                loop {
                    let batch = live.next_batch().await?;
                    if batch.iter().any(|e| e.contains("\"type\":\"hello\"")) {
                        break;
                    }
                }
                Ok(live)
            }
            Transport::LongPoll | Transport::ShortPoll => {
                let mut http = Http::connect(addr).await?;
                let r = http
                    .request(
                        "GET",
                        &format!("/api/live/poll?feeds={feeds}&wait=0"),
                        Some(&user.cookie),
                        &[],
                        None,
                    )
                    .await?;
                if r.status != 200 {
                    bail!("poll: status {}", r.status);
                }
                let cursor = r.json()["cursor"]
                    .as_i64()
                    .ok_or_else(|| anyhow!("no cursor"))?;
                let long = transport == Transport::LongPoll;
                Ok(Live::Poll {
                    http: Box::new(http),
                    cookie: user.cookie.clone(),
                    feeds: feeds.to_string(),
                    cursor,
                    eph: r.json()["eph"].as_u64(),
                    wait: if long { 25 } else { 0 },
                    short_poll_ms: 2000,
                })
            }
        }
    }

    /// Sets the short-poll interval (default 2 s, the server's default).
    pub fn short_poll_ms(mut self, ms: u64) -> Live {
        if let Live::Poll { short_poll_ms, .. } = &mut self {
            *short_poll_ms = ms;
        }
        self
    }

    /// The next events' JSON (possibly none, for an empty poll answer).
    pub async fn next_batch(&mut self) -> Result<Vec<String>> {
        match self {
            Live::Ws(ws) => loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => return Ok(vec![t.to_string()]),
                    Some(Ok(Message::Ping(p))) => ws.send(Message::Pong(p)).await?,
                    Some(Ok(Message::Close(_))) | None => bail!("websocket closed"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.into()),
                }
            },
            Live::Sse { http, buf } => loop {
                let mut out = Vec::new();
                let mut used = 0;
                while let Some(end) = memchr::memmem::find(&buf[used..], b"\n\n") {
                    let block = &buf[used..used + end];
                    used += end + 2;
                    let mut data: Option<String> = None;
                    for line in block.split(|b| *b == b'\n') {
                        if let Some(d) = line.strip_prefix(b"data: ") {
                            // Valid UTF-8 is checked, not copied through the lossy decoder.
                            let d = match std::str::from_utf8(d) {
                                Ok(d) => std::borrow::Cow::Borrowed(d),
                                Err(_) => String::from_utf8_lossy(d),
                            };
                            match &mut data {
                                Some(all) => {
                                    all.push('\n');
                                    all.push_str(&d);
                                }
                                None => data = Some(d.into_owned()),
                            }
                        }
                    }
                    out.extend(data);
                }
                buf.drain(..used);
                if !out.is_empty() {
                    return Ok(out);
                }
                if !http.chunk_into(buf).await? {
                    bail!("sse stream ended");
                }
            },
            Live::Poll {
                http,
                cookie,
                feeds,
                cursor,
                eph,
                wait,
                short_poll_ms,
            } => {
                let mut path = format!("/api/live/poll?feeds={feeds}&cursor={cursor}&wait={wait}");
                if let Some(e) = eph {
                    path.push_str(&format!("&eph={e}"));
                }
                let r = http.request("GET", &path, Some(cookie), &[], None).await?;
                if r.status != 200 {
                    bail!("poll: status {}", r.status);
                }
                // The answer is read without building a JSON tree: the events are cut out of
                // the array as the server wrote them (as a WebSocket or SSE client gets them),
                // and the numbers after it are read in place. Every poll answer goes through
                // here; a full parse cost the generator CPU the server it measures could use.
                let text = std::str::from_utf8(&r.body).context("poll: answer is not UTF-8")?;
                let (events, rest) = poll_events(text).context("poll: malformed answer")?;
                *cursor = number_after(rest, "\"cursor\":").unwrap_or(*cursor);
                if let Some(e) = number_after(rest, "\"eph\":") {
                    *eph = Some(e as u64);
                }
                let events: Vec<String> = events.into_iter().map(str::to_string).collect();
                if *wait == 0 && events.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(*short_poll_ms)).await;
                }
                Ok(events)
            }
        }
    }

    /// Sends a chat message over the WebSocket (`send` frame).
    pub async fn ws_send(&mut self, room: &str, client_id: &str) -> Result<()> {
        let Live::Ws(ws) = self else {
            bail!("not a websocket");
        };
        let frame = serde_json::json!({
            "type": "send", "room_id": room,
            "body": format!("lg {}", now_us()), "client_id": client_id,
        })
        .to_string();
        ws.send(Message::Text(frame.into())).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_answers_are_cut_into_their_events() {
        let text = r#"{"events":[{"id":7,"type":"message","ts":5,"data":{"body":"a } ] \" [ {","n":[1,{"x":2}]}},{"id":8,"type":"typing","data":{}}],"cursor":8,"eph":3}"#;
        let (events, rest) = poll_events(text).expect("a poll answer");
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0],
            r#"{"id":7,"type":"message","ts":5,"data":{"body":"a } ] \" [ {","n":[1,{"x":2}]}}"#
        );
        assert_eq!(events[1], r#"{"id":8,"type":"typing","data":{}}"#);
        assert_eq!(number_after(rest, "\"cursor\":"), Some(8));
        assert_eq!(number_after(rest, "\"eph\":"), Some(3));
        let seen = scan(events[0]).expect("a message");
        assert_eq!((seen.id, seen.ts_ms), (7, 5));
    }

    #[test]
    fn empty_and_malformed_answers() {
        let (events, rest) = poll_events(r#"{"events":[],"cursor":12,"eph":0}"#).unwrap();
        assert!(events.is_empty());
        assert_eq!(number_after(rest, "\"cursor\":"), Some(12));
        assert!(poll_events(r#"{"error":{"code":"x"}}"#).is_none());
        assert!(poll_events(r#"{"events":[{"id":1"#).is_none());
    }

    #[test]
    fn a_message_event_is_read_where_its_keys_are() {
        // Switchboard's shape: the envelope id first, nested ids, `ts` last.
        let ev = r#"{"id":41,"feed":"chat","type":"message","data":{"id":"m-1","room_id":"r","author":{"id":"u","username":"x"},"body":"lg 1700000000123456 p","client_id":"c","created_at":9,"seq":3,"event_id":41},"ts":1700000000123}"#;
        let seen = scan(ev).expect("a message");
        assert_eq!(
            (seen.id, seen.ts_ms, seen.sent_us),
            (41, 1700000000123, Some(1700000000123456))
        );
        // Not a message, or not from the load generator.
        assert!(scan(r#"{"id":null,"feed":"control","type":"hello","ts":1}"#).is_none());
        let other = r#"{"id":2,"type":"message","data":{"body":"hi"},"ts":3}"#;
        assert_eq!(scan(other).map(|s| s.sent_us), Some(None));
    }
}
