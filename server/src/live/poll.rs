//! Polling: `GET /api/live/poll?feeds=…&cursor=N&wait=S`. `wait=0` is a short poll: what the log
//! holds after the cursor, at once. `wait=1..30` is a long poll: held until at least one event
//! exists or S seconds pass. Waiting happens on the hub's broadcast, never on a database
//! connection. The answer is `{"events":[…],"cursor":M}`; M is the cursor to send next.

use super::session::{Carrier, Ending, LiveSession};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::extract::CurrentUser;
use crate::hub::{encode_data, LiveEvent};
use crate::metrics::Age;
use crate::sessions::SessionWatch;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use protocol::{Disconnect, EventData, Feed, Transport};
use std::sync::Arc;
use std::time::Duration;

/// Most events in one answer; a client far behind gets the rest on its next poll at once.
pub const MAX_POLL_BATCH: usize = 200;

pub async fn poll(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    signed_in: SessionWatch,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let q = super::params::poll_params(uri.query())?;
    let request_bytes = crate::metrics::header_bytes(&headers) + uri.to_string().len() as u64 + 16;
    // Nothing of the request is kept past here: its headers share hyper's read buffer, which
    // a parked poll would otherwise keep alive beside the one hyper reads its next request into.
    drop((uri, headers));
    // A poll carrying `eph` continues a poll loop: everything it brings was committed since the
    // loop's previous answer, and its age is the delivery latency polling gives (the interval
    // shows up here). A loop's first poll may start from an old cursor (a page's render point):
    // what was committed before it arrived is a catch-up, not latency.
    let live_since_ms = if q.eph.is_some() { i64::MIN } else { now_ms() };
    let wait = q.wait;
    let transport = if wait == 0 {
        Transport::ShortPoll
    } else {
        Transport::LongPoll
    };
    let feeds = q.feeds;
    let mut session = LiveSession::open(
        &state,
        &me,
        signed_in,
        transport,
        feeds,
        q.cursor,
        Carrier::Poll { live_since_ms },
    )
    .await?;
    let LiveSession {
        sub,
        ending,
        opening: extra,
        ..
    } = &mut session;

    // Ephemerals (typing, presence) up to here come from the hub's recent memory; later ones
    // from the subscription. Those at or below this number are skipped there.
    let eph_now = state.hub.eph_seq();
    let mut eph_out = eph_now;
    let mut events: Vec<Arc<LiveEvent>> = Vec::new();
    if let Some(after) = q.eph {
        events.extend(
            state
                .hub
                .recent_ephemerals(after, eph_now)
                .into_iter()
                .filter(|e| sub.may_see(e)),
        );
    }
    let fresh = |ev: &LiveEvent| ev.id.is_some() || ev.eph_seq > eph_now;
    while events.len() < MAX_POLL_BATCH {
        match sub
            .next_ready()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
        {
            Some(ev) => events.push(ev),
            None => break,
        }
    }
    if events.is_empty() && extra.is_empty() && wait > 0 {
        let deadline = tokio::time::sleep(Duration::from_secs(wait));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                biased;
                ending = &mut *ending => match ending {
                    Ending::Shutdown => {
                        return Err(ApiError::Unavailable("shutting_down", "The server is restarting; poll again.".into()));
                    }
                    Ending::SignedOut => return Err(ApiError::Unauthorized),
                    Ending::SwitchedOff => {
                        let (code, reason) = ending.close(transport);
                        let disconnect = EventData::Disconnect(Disconnect { code, reason: reason.to_string() });
                        extra.push(encode_data(None, Feed::Control, &disconnect, now_ms()));
                        break;
                    }
                },
                ev = sub.next() => {
                    let ev = ev.map_err(|e| ApiError::Internal(e.into()))?;
                    if fresh(&ev) {
                        events.push(ev);
                        break;
                    }
                }
                _ = &mut deadline => break,
            }
        }
        while events.len() < MAX_POLL_BATCH {
            match sub.try_next() {
                Ok(Some(ev)) if fresh(&ev) => events.push(ev),
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
    eph_out = events.iter().map(|e| e.eph_seq).fold(eph_out, u64::max);
    // The events are already JSON: join them instead of parsing and printing again.
    let mut body =
        String::with_capacity(64 + events.iter().map(|e| e.json.len() + 1).sum::<usize>());
    body.push_str("{\"events\":[");
    for (i, json) in extra
        .iter()
        .map(String::as_str)
        .chain(events.iter().map(|e| &*e.json))
        .enumerate()
    {
        if i > 0 {
            body.push(',');
        }
        body.push_str(json);
    }
    body.push_str("],\"cursor\":");
    body.push_str(&sub.cursor().to_string());
    body.push_str(",\"eph\":");
    body.push_str(&eph_out.to_string());
    body.push('}');
    let body_len = body.len();
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Meters: every answer is a request; events carry their own bytes, the rest (request,
    // status line and headers, envelope) is shared across the poll's feeds.
    let event_bytes: u64 = events.iter().map(|e| e.json.len() as u64 + 1).sum();
    let response_bytes = crate::metrics::header_bytes(res.headers()) + 17 + 24 + body_len as u64;
    state
        .meters
        .polled(transport, feeds, events.is_empty() && extra.is_empty());
    if q.reconnect {
        state.meters.reconnected(transport, feeds);
    }
    state.meters.overhead(
        transport,
        feeds,
        request_bytes + response_bytes.saturating_sub(event_bytes),
    );
    for ev in &events {
        state.meters.delivered(
            transport,
            ev.feed,
            ev.json.len() as u64 + 1,
            Age::of(ev, live_since_ms),
        );
    }
    Ok(res)
}
