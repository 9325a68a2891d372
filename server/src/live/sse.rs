//! The SSE transport: `GET /api/live/sse?feeds=…&cursor=N` (or `Last-Event-ID: N`). Each stored
//! event goes out as `id:` (its id) / `event:` (its feed) / `data:` (the event JSON); ephemeral
//! events carry no `id:` so they never move the browser's Last-Event-ID. A `retry:` hint opens
//! the stream and a comment line goes out when nothing else has for [`HEARTBEAT`].
//!
//! Slow consumers: a pump task writes into a bounded queue ([`QUEUE_FRAMES`]) that the response
//! body drains. If the queue stays full for [`WRITE_TIMEOUT`] the client is not reading: the
//! stream ends and the client resumes by Last-Event-ID. Lagging behind the hub re-reads the log.

use super::ws::{WRITE_BATCH, WRITE_TIMEOUT};
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
use tokio::sync::mpsc;
use tracing::Instrument;

/// Comment lines keep proxies from timing the stream out and let the browser notice a dead
/// connection; 15 s is well inside the 25 s the contract allows and common proxy timeouts.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// The reconnect delay the browser's EventSource should use (ms).
pub const RETRY_MS: u32 = 2000;
/// Frames (each one or more events) queued for a connection before the pump waits.
pub const QUEUE_FRAMES: usize = 64;

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
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE_FRAMES);
    let conn_id = new_id();
    let span = tracing::info_span!("sse", conn = %conn_id, user = %me.username);
    let online = crate::presence::Online::new(&state, &me);
    tokio::spawn(
        async move {
            let _online = online;
            pump(state, signed_in, sub, tx, conn_id, opened).await
        }
        .instrument(span),
    );
    // The body drains the pump's queue and ends when the pump drops its sender.
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, std::convert::Infallible>(bytes), rx))
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
    format!("{len:x}").len() as u64 + 4
}

async fn pump(
    state: AppState,
    mut signed_in: crate::sessions::SessionWatch,
    mut sub: Subscription,
    tx: mpsc::Sender<Bytes>,
    conn_id: String,
    opened: super::ws::Opened,
) {
    let feeds = sub.feeds();
    let _metered = crate::metrics::Metered::new(
        &state,
        Transport::Sse,
        feeds,
        opened.reconnect,
        opened.handshake_bytes,
    );
    let mut switches = state.switches.subscribe();
    // Checked on the first turn of the loop, in case it went off while the stream opened.
    switches.mark_changed();
    let mut opening = format!("retry: {RETRY_MS}\n\n");
    for ev in super::opening_events(&mut sub, &conn_id, HEARTBEAT, Transport::Sse) {
        opening.push_str(&frame(None, "control", &ev));
    }
    state.meters.overhead(
        Transport::Sse,
        feeds,
        opening.len() as u64 + chunk_overhead(opening.len()),
    );
    if tx.send(opening.into()).await.is_err() {
        return;
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    let goodbye = loop {
        tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => break Some((close::GOING_AWAY, "server shutting down; reconnect")),
            _ = tx.closed() => break None,
            _ = signed_in.revoked() => break Some((close::UNAUTHORIZED, "signed out; sign in again")),
            changed = switches.changed() => {
                if changed.is_err() || !switches.borrow_and_update().enabled(Transport::Sse) {
                    break Some((close::TRANSPORT_DISABLED, "SSE was switched off; use another transport"));
                }
            }
            ev = sub.next() => {
                let first = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        tracing::warn!(error = %e, "subscription failed");
                        break Some((close::INTERNAL, "server error; reconnect"));
                    }
                };
                let mut events = vec![first];
                while events.len() < WRITE_BATCH {
                    match sub.try_next() {
                        Ok(Some(ev)) => events.push(ev),
                        _ => break,
                    }
                }
                let frames: Vec<String> = events.iter().map(|ev| frame(ev.id, ev.feed.as_str(), &ev.json)).collect();
                let out = frames.concat();
                let chunk = chunk_overhead(out.len());
                if tx.send_timeout(out.into(), WRITE_TIMEOUT).await.is_err() {
                    tracing::info!("client not reading; stream ended (it resumes by Last-Event-ID)");
                    break None;
                }
                // Counted when handed to the response body (the socket write follows at once
                // unless the client is behind, and then the queue fills and ends the stream).
                state.meters.overhead(Transport::Sse, feeds, chunk);
                for (ev, f) in events.iter().zip(&frames) {
                    state.meters.delivered(Transport::Sse, ev.feed, f.len() as u64, ev.age_since(opened.at_ms));
                }
                heartbeat.reset();
            }
            _ = heartbeat.tick() => {
                // A full queue already means the client is behind; skip the comment then.
                if tx.try_send(Bytes::from_static(b": heartbeat\n\n")).is_ok() {
                    state.meters.overhead(Transport::Sse, feeds, 13 + chunk_overhead(13));
                }
            }
        }
    };
    if let Some((code, reason)) = goodbye {
        let data = serde_json::json!({ "code": code, "reason": reason }).to_string();
        let ev = encode(None, Feed::Control, kind::DISCONNECT, &data, now_ms());
        let _ = tx.try_send(frame(None, "control", &ev).into());
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
