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

use super::session::{Carrier, LiveSession};
use super::WRITE_BATCH;
use crate::clock::now_ms;
use crate::error::ApiResult;
use crate::extract::CurrentUser;
use crate::hub::event::frame;
use crate::hub::{encode_data, LiveEvent};
use crate::metrics::{Age, Meters};
use crate::sessions::SessionWatch;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use protocol::{close, Disconnect, EventData, Feed, Transport};
use std::sync::Arc;
use std::time::Duration;

/// Comment lines keep proxies from timing the stream out and let the browser notice a dead
/// connection; 15 s is well inside the 25 s the contract allows and common proxy timeouts.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// The reconnect delay the browser's EventSource should use (ms).
pub const RETRY_MS: u32 = 2000;

pub async fn stream(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    signed_in: SessionWatch,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    // The query's cursor wins: a client switching transports passes it explicitly.
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let q = super::params::stream_params(uri.query(), last_event_id)?;
    // Request line and headers, plus the answer's status line and headers (~140 bytes).
    let handshake = crate::metrics::header_bytes(&headers) + 160;
    let session = LiveSession::open(
        &state,
        &me,
        signed_in,
        Transport::Sse,
        q.feeds,
        q.cursor,
        Carrier::Stream {
            // The browser's own EventSource retry sends Last-Event-ID; ours says `reconnect=1`.
            reconnect: q.reconnect || last_event_id.is_some(),
            handshake_bytes: handshake,
            heartbeat: HEARTBEAT,
        },
    )
    .await?;
    tracing::debug!(conn = %session.conn_id, user = %me.username, "sse stream opened");
    let pump = Pump::new(Arc::clone(&state.meters), session);
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

/// One SSE stream: its session (subscription, what ends it, its guards), its heartbeat, and
/// its meters.
struct Pump {
    meters: Arc<Meters>,
    session: LiveSession,
    feeds: protocol::FeedSet,
    beat: std::pin::Pin<Box<tokio::time::Sleep>>,
    sent_since_beat: bool,
    /// The `retry:` hint and the opening events, sent first.
    opening: Option<Bytes>,
    finished: bool,
}

impl Pump {
    fn new(meters: Arc<Meters>, mut session: LiveSession) -> Pump {
        let feeds = session.feeds();
        let mut opening = format!("retry: {RETRY_MS}\n\n");
        for ev in std::mem::take(&mut session.opening) {
            opening.push_str(&frame(None, "control", &ev));
        }
        meters.overhead(
            Transport::Sse,
            feeds,
            opening.len() as u64 + chunk_overhead(opening.len()),
        );
        Pump {
            meters,
            session,
            feeds,
            beat: Box::pin(tokio::time::sleep(BEAT_CHECK)),
            sent_since_beat: true,
            opening: Some(opening.into()),
            finished: false,
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
                ending = &mut self.session.ending => {
                    let (code, reason) = ending.close(Transport::Sse);
                    return Some(self.goodbye(code, reason));
                }
                _ = &mut self.beat => {
                    self.beat.as_mut().reset(tokio::time::Instant::now() + BEAT_CHECK);
                    if !std::mem::take(&mut self.sent_since_beat) {
                        self.sent_since_beat = true;
                        self.meters.overhead(Transport::Sse, self.feeds, 13 + chunk_overhead(13));
                        return Some(Bytes::from_static(b": heartbeat\n\n"));
                    }
                }
                ev = self.session.sub.next() => {
                    let first = match ev {
                        Ok(ev) => ev,
                        Err(e) => {
                            tracing::warn!(conn = %self.session.conn_id, error = %e, "subscription failed");
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
    fn batch(&mut self, first: Arc<LiveEvent>) -> Bytes {
        self.sent_since_beat = true;
        let (meters, since) = (&self.meters, self.session.live_since_ms);
        let counted = |ev: &LiveEvent| -> Bytes {
            let f = ev.sse_frame();
            meters.delivered(Transport::Sse, ev.feed, f.len() as u64, Age::of(ev, since));
            f.clone()
        };
        let head = counted(&first);
        let mut joined: Option<Vec<u8>> = None;
        for _ in 1..WRITE_BATCH {
            let Ok(Some(ev)) = self.session.sub.try_next() else {
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
        let disconnect = EventData::Disconnect(Disconnect {
            code,
            reason: reason.to_string(),
        });
        let ev = encode_data(None, Feed::Control, &disconnect, now_ms());
        frame(None, "control", &ev).into()
    }
}
