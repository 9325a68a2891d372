//! The SSE transport: `GET /api/live/sse?feeds=…&cursor=N` (or `Last-Event-ID: N`). Each stored
//! event goes out as `id:` (its id) / `event:` (its feed) / `data:` (the event JSON); ephemeral
//! events carry no `id:` so they never move the browser's Last-Event-ID. A `retry:` hint opens
//! the stream and a comment line goes out when nothing else has for [`HEARTBEAT`].
//!
//! The response body is the stream's pump: hyper asks it for a chunk when it can write one, so
//! an event costs one wake-up of the connection's task, and an event sent to many streams is
//! encoded as SSE once ([`crate::hub::LiveEvent::sse_frame`]).
//!
//! Slow consumers: a client that stops reading stops hyper asking for chunks; its subscription
//! falls behind the hub and re-reads the log when it is asked again (lossless). A peer that
//! never reads again is cut by the kernel after [`crate::serve::UNACKED_LIMIT`] of unacknowledged
//! data (TCP_USER_TIMEOUT), and resumes by Last-Event-ID.

use super::gate::Gate;
use super::ws::WRITE_BATCH;
use super::Subscription;
use crate::error::ApiResult;
use crate::http::extract::CurrentUser;
use crate::hub::encode;
use crate::services::{new_id, now_ms};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use protocol::{close, kind, Feed, Transport};
use std::time::Duration;

/// Comment lines keep proxies from timing the stream out and let the browser notice a dead
/// connection; 15 s is well inside the 25 s the contract allows and common proxy timeouts.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// The reconnect delay the browser's EventSource should use (ms).
pub const RETRY_MS: u32 = 2000;

/// One SSE message. The data is split on line breaks (CRLF, LF or CR, as the SSE parser
/// splits them), each part its own `data:` line, so no payload can ever start a line of its own
/// (`id:`, `event:`) or end the message early — JSON has none anyway. A reader gets the data
/// back with its line breaks as LF (property-tested against a WHATWG parser in tests/it/fuzz.rs).
pub fn frame(id: Option<i64>, event: &str, data: &str) -> String {
    // Event names are the feeds' (and "metrics"): fixed words, never client data.
    debug_assert!(!event.contains(['\n', '\r']), "event name {event:?}");
    let mut out = String::with_capacity(data.len() + 40);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&id.to_string());
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(event);
    out.push('\n');
    let mut rest = data;
    loop {
        let (line, next) = match rest.find(['\n', '\r']) {
            // CRLF is one line break, not two: splitting it in two would add an empty line.
            Some(i) if rest[i..].starts_with("\r\n") => (&rest[..i], Some(&rest[i + 2..])),
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    out.push('\n');
    out
}

pub async fn stream(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    signed_in: crate::sessions::SessionWatch,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    // The query's cursor wins: a client switching transports passes it explicitly.
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let q = super::params::stream_params(uri.query(), last_event_id)?;
    state.require_transport(Transport::Sse)?;
    let (feeds, cursor) = (q.feeds, q.cursor);
    let slot = state.limits.user(&me.id)?;
    let mut sub =
        Subscription::open(&state.hub, state.store.clone(), &me.id, feeds, cursor).await?;
    sub.hold(slot);
    // Request line and headers, plus the answer's status line and headers (~140 bytes).
    let handshake = crate::metrics::header_bytes(&headers) + 160;
    // The browser's own EventSource retry sends Last-Event-ID; ours says `reconnect=1`.
    let opened = super::ws::Opened {
        reconnect: q.reconnect || last_event_id.is_some(),
        at_ms: crate::services::now_ms(),
        handshake_bytes: handshake,
    };
    let conn_id = new_id();
    tracing::debug!(conn = %conn_id, user = %me.username, "sse stream opened");
    let pump = Pump::new(state, me, signed_in, sub, &conn_id, opened);
    // The response body is the pump itself: hyper asks it for the next chunk when it can write
    // one, so a delivery wakes one task (the connection's) and nothing is queued in between.
    // The stream (and with it the subscription and the meters' count) ends with the body.
    let body = Body::from_stream(futures_util::stream::unfold(pump, |mut pump| async move {
        let chunk = pump.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), pump))
    }));
    Ok(event_stream(body))
}

/// An SSE response around `body`: the event-stream type, no caching, and no proxy buffering.
pub fn event_stream(body: Body) -> Response {
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

/// Chunked transfer encoding around one write: the length in hex and two line breaks.
fn chunk_overhead(len: usize) -> u64 {
    let hex_digits = (usize::BITS - len.max(1).leading_zeros()).div_ceil(4);
    hex_digits as u64 + 4
}

/// What the heartbeat timer does: it fires every half [`HEARTBEAT`], and a comment goes out
/// only if nothing else did since the last firing, so the stream is never silent for longer
/// than [`HEARTBEAT`] and a busy stream never resets a timer per event.
const BEAT_CHECK: Duration = Duration::from_millis(HEARTBEAT.as_millis() as u64 / 2);

/// One SSE stream: its subscription, what ends it, its heartbeat, and its meters.
struct Pump {
    state: AppState,
    sub: Subscription,
    feeds: protocol::FeedSet,
    ending: Gate<std::pin::Pin<Box<dyn std::future::Future<Output = super::Ending> + Send>>>,
    beat: std::pin::Pin<Box<tokio::time::Sleep>>,
    sent_since_beat: bool,
    /// The `retry:` hint and the opening events, sent first.
    opening: Option<Bytes>,
    live_since_ms: i64,
    finished: bool,
    _metered: crate::metrics::Metered,
    _online: crate::presence::Online,
    conn_id: String,
}

impl Pump {
    fn new(
        state: AppState,
        me: protocol::User,
        signed_in: crate::sessions::SessionWatch,
        mut sub: Subscription,
        conn_id: &str,
        opened: super::ws::Opened,
    ) -> Pump {
        let feeds = sub.feeds();
        let metered = crate::metrics::Metered::new(
            &state,
            Transport::Sse,
            feeds,
            opened.reconnect,
            opened.handshake_bytes,
        );
        let online = crate::presence::Online::new(&state, &me);
        // Made before the hello: a switch-off from then on is never missed.
        let ending: std::pin::Pin<Box<dyn std::future::Future<Output = super::Ending> + Send>> =
            Box::pin(super::must_end(&state, signed_in, Transport::Sse));
        let mut opening = format!("retry: {RETRY_MS}\n\n");
        for ev in super::opening_events(&mut sub, conn_id, HEARTBEAT, Transport::Sse) {
            opening.push_str(&frame(None, "control", &ev));
        }
        state.meters.overhead(
            Transport::Sse,
            feeds,
            opening.len() as u64 + chunk_overhead(opening.len()),
        );
        Pump {
            sub,
            feeds,
            ending: Gate::new(ending),
            beat: Box::pin(tokio::time::sleep(BEAT_CHECK)),
            sent_since_beat: true,
            opening: Some(opening.into()),
            live_since_ms: opened.at_ms,
            finished: false,
            _metered: metered,
            _online: online,
            conn_id: conn_id.to_string(),
            state,
        }
    }

    /// The next chunk of the body; None ends the stream.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(opening) = self.opening.take() {
            return Some(opening);
        }
        if self.finished {
            return None;
        }
        loop {
            tokio::select! {
                biased;
                ending = &mut self.ending => {
                    let (code, reason) = ending.close(Transport::Sse);
                    return Some(self.goodbye(code, reason));
                }
                _ = &mut self.beat => {
                    self.beat.as_mut().reset(tokio::time::Instant::now() + BEAT_CHECK);
                    if !std::mem::take(&mut self.sent_since_beat) {
                        self.sent_since_beat = true;
                        self.state.meters.overhead(Transport::Sse, self.feeds, 13 + chunk_overhead(13));
                        return Some(Bytes::from_static(b": heartbeat\n\n"));
                    }
                }
                ev = self.sub.next() => {
                    let first = match ev {
                        Ok(ev) => ev,
                        Err(e) => {
                            tracing::warn!(conn = %self.conn_id, error = %e, "subscription failed");
                            return Some(self.goodbye(close::INTERNAL, "server error; reconnect"));
                        }
                    };
                    return Some(self.batch(first));
                }
            }
        }
    }

    /// `first` and the events ready after it, as one chunk. A single event is its shared
    /// encoding as it is (no copy); several are joined.
    fn batch(&mut self, first: std::sync::Arc<crate::hub::LiveEvent>) -> Bytes {
        self.sent_since_beat = true;
        let (meters, since) = (&self.state.meters, self.live_since_ms);
        let counted = |ev: &crate::hub::LiveEvent| -> Bytes {
            let f = ev.sse_frame();
            meters.delivered(Transport::Sse, ev.feed, f.len() as u64, ev.age_since(since));
            f.clone()
        };
        let head = counted(&first);
        let mut joined: Option<Vec<u8>> = None;
        for _ in 1..WRITE_BATCH {
            let Ok(Some(ev)) = self.sub.try_next() else {
                break;
            };
            joined
                .get_or_insert_with(|| head.to_vec())
                .extend_from_slice(&counted(&ev));
        }
        let chunk = joined.map_or(head, Bytes::from);
        // Counted when handed to hyper, which writes it at once unless the client is behind.
        meters.overhead(Transport::Sse, self.feeds, chunk_overhead(chunk.len()));
        chunk
    }

    /// The last chunk: a `disconnect` control event saying why the stream ends.
    fn goodbye(&mut self, code: u16, reason: &str) -> Bytes {
        self.finished = true;
        let data = serde_json::json!({ "code": code, "reason": reason }).to_string();
        let ev = encode(None, Feed::Control, kind::DISCONNECT, &data, now_ms());
        frame(None, "control", &ev).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_id_event_and_data() {
        assert_eq!(
            frame(Some(7), "chat", "{}"),
            "id: 7\nevent: chat\ndata: {}\n\n"
        );
        assert_eq!(frame(None, "control", "x"), "event: control\ndata: x\n\n");
    }

    #[test]
    fn line_breaks_in_data_cannot_start_fields() {
        let f = frame(Some(1), "chat", "a\nid: 99\r\nevent: evil");
        let fields: Vec<&str> = f.lines().filter(|l| !l.starts_with("data: ")).collect();
        assert_eq!(fields, vec!["id: 1", "event: chat", ""]);
        assert_eq!(
            frame(None, "chat", "a\r\nb\rc\n"),
            "event: chat\ndata: a\ndata: b\ndata: c\ndata: \n\n"
        );
    }
}
