//! The WebSocket transport: `GET /api/live/ws?feeds=…&cursor=N`. One pump loop per connection
//! selects over shutdown, the client's frames, the subscription and a heartbeat. Events go out
//! one JSON text frame each; several ready events are written together and flushed once. The
//! client may send chat messages (acknowledged after commit) and typing notices.
//!
//! Slow consumers: the hub buffer absorbs bursts and a subscriber that overflows it re-reads the
//! log (lossless); a write that cannot complete within [`WRITE_TIMEOUT`] means the client stopped
//! reading, and the connection is dropped; the client resumes by cursor.

use super::gate::StreamGate;
use super::session::{Carrier, Ending, LiveSession};
use super::WRITE_BATCH;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::extract::CurrentUser;
use crate::hub::encode_data;
use crate::metrics::Age;
use crate::services::{auth, chat};
use crate::sessions::{SessionConfirm, SessionWatch};
use crate::state::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use protocol::{close, Ack, ClientFrame, EventData, Feed, FrameError, Transport};
use std::time::Duration;
use tokio::time::{timeout, Instant};

/// Interval between server pings. Short enough to notice a dead peer within a minute and to keep
/// idle proxies from cutting the connection; long enough to cost nothing.
pub const HEARTBEAT: Duration = Duration::from_secs(20);
/// A peer silent for this long (no frame, no pong) is dead.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(50);
/// A write that takes longer means the client stopped reading; the connection is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest client message accepted; a bigger one closes the socket with 1009. A send frame with
/// a 4000-character body is at most ~17 KiB.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// What the WebSocket library itself buffers before giving up. Above [`MAX_CLIENT_FRAME`] so
/// that an oversized message arrives whole and gets a proper 1009 close from us (the library
/// drops the connection without a close frame when its own limit trips).
pub const LIBRARY_FRAME_LIMIT: usize = 1024 * 1024;
/// Socket read size. tungstenite allocates this per connection and fills it with zeros before
/// every read (so all of it is resident), 128 KiB by default. Client frames are small (a chat
/// send is a few hundred bytes), so 1 KiB takes one in a single read and keeps an idle
/// connection cheap; a larger frame just takes several reads (the buffer grows for it).
pub const READ_BUFFER: usize = 1024;
/// A client that has not answered a lag probe within this time is not keeping up (or not
/// reading at all) and is closed with `SLOW_CONSUMER`; it resumes by cursor. Kernel buffers hold
/// megabytes, so a blocked write alone would notice a stalled reader only after minutes.
pub const LAG_LIMIT: Duration = Duration::from_secs(3);
/// Lag probes go out at most this often per connection, and only while events flow.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Bytes of the server's `101 Switching Protocols` answer (status line, upgrade, connection and
/// accept headers).
const HANDSHAKE_RESPONSE_BYTES: u64 = 129;

// One argument per extractor; a struct around them would only hide what the handshake needs.
#[allow(clippy::too_many_arguments)]
pub async fn upgrade(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    signed_in: SessionWatch,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    conn: Option<axum::Extension<crate::limits::ConnSlot>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let q = super::params::stream_params(uri.query(), None)?;
    let handshake = crate::metrics::header_bytes(&headers)
        + uri.to_string().len() as u64
        + 16
        + HANDSHAKE_RESPONSE_BYTES;
    let ws = ws.map_err(|e| ApiError::bad("websocket_required", e.body_text()))?;
    // Checks the session before acting on a frame while the cluster's backplane is or was down.
    let confirm = signed_in.confirmer();
    // Opened before the upgrade: a refusal is a 503 or 429 the client sees (and moves on from),
    // and events committed while the handshake completes are kept.
    let session = LiveSession::open(
        &state,
        &me,
        signed_in,
        Transport::Websocket,
        q.feeds,
        q.cursor,
        Carrier::Stream {
            reconnect: q.reconnect,
            handshake_bytes: handshake,
            heartbeat: HEARTBEAT,
        },
    )
    .await?;
    Ok(configure(ws).on_upgrade(move |socket| {
        // The TCP connection's slot stays taken while the socket lives.
        let _conn = conn;
        // No span around the connection: entering one on every poll costs on every delivery;
        // the connection's log lines carry its id instead.
        async move {
            let _conn = _conn;
            run(socket, state, me, confirm, session).await
        }
    }))
}

/// The WebSocket settings of `/api/live/ws` (read buffer, frame and message limits); the
/// test-only echo endpoint uses the same, so conformance runs test what clients get.
pub fn configure(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(LIBRARY_FRAME_LIMIT)
        .max_frame_size(LIBRARY_FRAME_LIMIT)
}

/// How a connection ends.
pub enum End {
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The peer sent a close frame: our reply (queued by the library) still has to go out.
    PeerClosed,
    /// The peer is gone or not reading: just drop the socket.
    Drop,
}

/// How long a closing handshake may take once started: the peer's answer to our close frame,
/// or our answer to theirs going out. A peer that never answers is dropped after it.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Ends a connection the way `end` says, completing the closing handshake (RFC 6455 7.1):
/// after our close frame, read until the peer's close arrives (or it hangs up); after theirs,
/// read once more so the library flushes its queued reply. Either way within [`CLOSE_TIMEOUT`].
pub async fn finish<S>(mut socket: S, end: End)
where
    S: Sink<Message, Error = axum::Error> + Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    match end {
        End::Drop => return,
        End::Close(code, reason) => {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            if timeout(WRITE_TIMEOUT, socket.send(Message::Close(Some(frame))))
                .await
                .map_or(true, |r| r.is_err())
            {
                return;
            }
        }
        End::PeerClosed => {}
    }
    let drain = async { while let Some(Ok(_)) = socket.next().await {} };
    let _ = timeout(CLOSE_TIMEOUT, drain).await;
}

/// The connection's pump, until it ends. Generic over the socket (a [`Sink`] and [`Stream`] of
/// messages, as axum's `WebSocket` is), so that it runs without a network in the unit tests.
async fn run<S>(
    mut socket: S,
    state: AppState,
    me: protocol::User,
    session: SessionConfirm,
    mut live: LiveSession,
) where
    S: Sink<Message, Error = axum::Error> + Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let LiveSession {
        sub,
        ending,
        conn_id,
        live_since_ms,
        opening,
        ..
    } = &mut live;
    let live_since_ms = *live_since_ms;
    tracing::debug!(conn = %conn_id, user = %me.username, "connected");
    let mut dropped = Dropped::default();
    let opening_bytes: u64 = opening
        .iter()
        .map(|f| f.len() as u64 + crate::metrics::ws_frame_overhead(f.len()))
        .sum();
    state
        .meters
        .overhead(Transport::Websocket, sub.feeds(), opening_bytes);
    let opening = std::mem::take(opening);
    if write_all(&mut socket, opening.into_iter().map(Into::into).collect())
        .await
        .is_err()
    {
        return;
    }

    // The client's frames, read only when the socket woke the connection (not on every event).
    let mut reads = StreamGate::default();
    let mut last_heard = Instant::now();
    let mut next_beat = Instant::now() + HEARTBEAT;
    // The lag probe in flight: its payload and when it must be answered by. A probe is a ping
    // sent after events; its pong proves the client read everything written before it.
    let mut probe: Option<([u8; 8], Instant)> = None;
    let mut probes_sent: u64 = 0;
    let mut last_probe = Instant::now() - PROBE_EVERY;
    // One timer for the heartbeat and the probe's deadline, whichever is first.
    let timer = tokio::time::sleep_until(next_beat);
    tokio::pin!(timer);
    // Reused for every write; they grow to the largest batch seen (nothing while idle).
    let mut events = Vec::new();
    let mut batch = Vec::new();

    // Every source but the subscription sits behind a gate or is a timer made once, so a pass
    // for an event polls nothing else for real; the cheap ones come first so that a steady
    // flow of events cannot starve the client's frames (pongs, sends) or the timer.
    let end = loop {
        tokio::select! {
            biased;
            ending = &mut *ending => {
                let (code, reason) = ending.close(Transport::Websocket);
                break End::Close(code, reason);
            }
            incoming = std::future::poll_fn(|cx| reads.poll_next(&mut socket, cx)) => {
                let msg = match incoming {
                    None => break End::Drop,
                    Some(Err(e)) => break read_error(e),
                    Some(Ok(msg)) => msg,
                };
                last_heard = Instant::now();
                match msg {
                    Message::Text(text) if text.len() > MAX_CLIENT_FRAME => {
                        break End::Close(close::TOO_BIG, "frame too large");
                    }
                    Message::Binary(_) => {
                        break End::Close(close::PROTOCOL_ERROR, "binary frames are not supported");
                    }
                    Message::Text(text) => {
                        match session.holds().await {
                            Ok(true) => {}
                            Ok(false) => {
                                let (code, reason) = Ending::SignedOut.close(Transport::Websocket);
                                break End::Close(code, reason);
                            }
                            Err(e) => {
                                tracing::warn!(conn = %conn_id, error = %e, "re-checking the session failed");
                                break End::Close(close::INTERNAL, "server error; reconnect");
                            }
                        }
                        let reply = handle_frame(&state, &me, text.as_str(), &mut dropped).await;
                        if dropped.over(state.config.flood_close_after) {
                            tracing::info!(conn = %conn_id, user = %me.username, "presence/typing flood; closed");
                            break End::Close(close::POLICY, "too many presence or typing frames");
                        }
                        if let Some(reply) = reply {
                            let bytes = reply.len() as u64 + crate::metrics::ws_frame_overhead(reply.len());
                            state.meters.delivered(Transport::Websocket, Feed::Chat, bytes, Age::None);
                            if write_all(&mut socket, vec![reply.into()]).await.is_err() {
                                break End::Drop;
                            }
                        }
                    }
                    Message::Close(_) => break End::PeerClosed,
                    Message::Pong(payload) => {
                        if probe.is_some_and(|(p, _)| payload.as_ref() == p) {
                            probe = None;
                            timer.as_mut().reset(next_beat);
                        }
                    }
                    Message::Ping(_) => {}
                }
            }
            _ = &mut timer => {
                let now = Instant::now();
                if probe.is_some_and(|(_, due)| now >= due) {
                    tracing::info!(conn = %conn_id, "client not keeping up; closed (it resumes by cursor)");
                    break End::Close(close::SLOW_CONSUMER, "not keeping up; reconnect and resume");
                }
                if now >= next_beat {
                    if last_heard.elapsed() > PEER_TIMEOUT {
                        tracing::info!(conn = %conn_id, "peer silent; dropped");
                        break End::Drop;
                    }
                    if timeout(WRITE_TIMEOUT, socket.send(Message::Ping(Default::default()))).await.map_or(true, |r| r.is_err()) {
                        break End::Drop;
                    }
                    next_beat = now + HEARTBEAT;
                }
                timer.as_mut().reset(probe.map_or(next_beat, |(_, due)| due.min(next_beat)));
            }
            ev = sub.next() => {
                let first = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        tracing::warn!(conn = %conn_id, error = %e, "subscription failed");
                        break End::Close(close::INTERNAL, "server error; reconnect");
                    }
                };
                events.clear();
                events.push(first);
                while events.len() < WRITE_BATCH {
                    match sub.try_next() {
                        Ok(Some(ev)) => events.push(ev),
                        _ => break,
                    }
                }
                batch.extend(events.iter().map(|e| e.json.clone()));
                if write_batch(&mut socket, &mut batch).await.is_err() {
                    tracing::info!(conn = %conn_id, "client not reading; dropped (it resumes by cursor)");
                    break End::Drop;
                }
                for ev in &events {
                    let bytes = ev.json.len() as u64 + crate::metrics::ws_frame_overhead(ev.json.len());
                    state.meters.delivered(Transport::Websocket, ev.feed, bytes, Age::of(ev, live_since_ms));
                }
                if probe.is_none() && last_probe.elapsed() >= PROBE_EVERY {
                    probes_sent += 1;
                    let payload = probes_sent.to_be_bytes();
                    if timeout(WRITE_TIMEOUT, socket.send(Message::Ping(payload.to_vec().into()))).await.map_or(true, |r| r.is_err()) {
                        break End::Drop;
                    }
                    last_probe = Instant::now();
                    let due = last_probe + LAG_LIMIT;
                    probe = Some((payload, due));
                    timer.as_mut().reset(due.min(next_beat));
                }
            }
        }
    };
    finish(socket, end).await;
    tracing::debug!(conn = %conn_id, "disconnected");
}

/// What a failed read means for the connection: a peer that broke the protocol (bad framing,
/// invalid UTF-8, an oversized message) is told why with a close code; a vanished one is dropped.
pub fn read_error(e: axum::Error) -> End {
    match e.into_inner().downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => End::Close(close::TOO_BIG, "frame too large"),
        Some(tungstenite::Error::Utf8(_)) => {
            End::Close(close::INVALID_DATA, "text frames must be valid UTF-8")
        }
        Some(tungstenite::Error::Protocol(p)) if !is_hang_up(p) => {
            End::Close(close::PROTOCOL_ERROR, "WebSocket protocol error")
        }
        _ => End::Drop,
    }
}

/// Protocol "errors" that only mean the peer went away: nobody is left to tell.
fn is_hang_up(p: &tungstenite::error::ProtocolError) -> bool {
    use tungstenite::error::ProtocolError as P;
    matches!(
        p,
        P::ResetWithoutClosingHandshake | P::SendAfterClosing | P::ReceivedAfterClosing
    )
}

/// Writes the frames in `batch` (emptied) and flushes once, within the write timeout. Almost
/// always the socket takes the bytes at once; only a write that has to wait gets a timer (making
/// one per write would cost a runtime handle and a timer entry on every delivery).
async fn write_batch<S>(
    socket: &mut S,
    batch: &mut Vec<axum::extract::ws::Utf8Bytes>,
) -> Result<(), ()>
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    use std::pin::Pin;
    use std::task::Poll;
    let mut frames = batch.drain(..);
    // One pass without waiting: Ready(Ok(true)) written and flushed, Ready(Ok(false)) it has
    // to wait (nothing is lost: what was queued stays in the library's buffer).
    let at_once = std::future::poll_fn(|cx| {
        loop {
            match Pin::new(&mut *socket).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(Err(())),
                Poll::Pending => return Poll::Ready(Ok(false)),
            }
            let Some(f) = frames.next() else { break };
            if Pin::new(&mut *socket).start_send(Message::Text(f)).is_err() {
                return Poll::Ready(Err(()));
            }
        }
        match Pin::new(&mut *socket).poll_flush(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(true)),
            Poll::Ready(Err(_)) => Poll::Ready(Err(())),
            Poll::Pending => Poll::Ready(Ok(false)),
        }
    })
    .await?;
    if at_once {
        return Ok(());
    }
    let rest = async {
        for f in frames.by_ref() {
            socket.feed(Message::Text(f)).await?;
        }
        socket.flush().await
    };
    match timeout(WRITE_TIMEOUT, rest).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Writes frames and flushes once, within the write timeout.
async fn write_all<S>(socket: &mut S, frames: Vec<axum::extract::ws::Utf8Bytes>) -> Result<(), ()>
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    let write = async {
        for f in frames {
            socket.feed(Message::Text(f)).await?;
        }
        socket.flush().await
    };
    match timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Presence and typing frames one socket sent past its user's limits (dropped silently), in
/// the current minute: past `--flood-close-after` the socket is closed with 1008.
#[derive(Default)]
struct Dropped {
    since: Option<Instant>,
    count: u32,
}

impl Dropped {
    fn one(&mut self) {
        let now = Instant::now();
        if self
            .since
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
        {
            self.since = Some(now);
            self.count = 0;
        }
        self.count += 1;
    }

    fn over(&self, ceiling: u32) -> bool {
        ceiling > 0 && self.count > ceiling
    }
}

/// Handles one client frame; returns the frame to answer with, if any.
async fn handle_frame(
    state: &AppState,
    me: &protocol::User,
    text: &str,
    dropped: &mut Dropped,
) -> Option<String> {
    let frame = match ClientFrame::parse(text) {
        Ok(f) => f,
        Err(e) => {
            let err = ApiError::bad("invalid_frame", e.to_string());
            return Some(error_event(None, &err));
        }
    };
    match frame {
        ClientFrame::Send {
            room_id,
            body,
            client_id,
            reply_to,
            attachments,
        } => match chat::send_reply(
            state,
            &auth::refreshed(state, me).await,
            &room_id,
            &body,
            &client_id,
            reply_to.as_ref(),
            &attachments,
        )
        .await
        {
            Ok((message, _)) => {
                let ack = EventData::Ack(Ack { client_id, message });
                Some(encode_data(None, Feed::Chat, &ack, now_ms()))
            }
            Err(e) => Some(error_event(Some(&client_id), &e)),
        },
        ClientFrame::Typing { room_id } => {
            let me = auth::refreshed(state, me).await;
            unanswered_past_limit(chat::typing(state, &me, &room_id).await, dropped)
        }
        ClientFrame::Presence { status } => {
            unanswered_past_limit(chat::set_status(state, me, &status), dropped)
        }
    }
}

/// The answer to a typing or presence frame: none when it went through, an error event when it
/// was wrong, and none past its user's per-minute limit either: such a frame is dropped
/// without an answer (a well-behaved client never gets here; a flooding one learns nothing
/// from us but the close, eventually).
fn unanswered_past_limit(done: ApiResult<()>, dropped: &mut Dropped) -> Option<String> {
    match done {
        Ok(()) => None,
        Err(ApiError::RateLimited(_)) => {
            dropped.one();
            None
        }
        Err(e) => Some(error_event(None, &e)),
    }
}

fn error_event(client_id: Option<&str>, e: &ApiError) -> String {
    if let ApiError::Internal(inner) = e {
        tracing::error!(error = ?inner, "frame failed");
    }
    let error = EventData::Error(FrameError {
        client_id: client_id.map(str::to_string),
        code: e.code().to_string(),
        message: e.to_string(),
        status: e.status().as_u16(),
    });
    encode_data(None, Feed::Chat, &error, now_ms())
}

#[cfg(test)]
#[path = "ws_tests.rs"]
mod tests;
