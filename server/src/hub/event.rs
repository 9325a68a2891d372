//! The event on the live path and its encodings: [`LiveEvent`] with who may see it, its wire
//! JSON made once ([`encode`]) and its SSE message made once ([`frame`]), shared by every
//! connection that carries it. No transport is named here; the transports read these bytes.

use crate::store::StoredEvent;
use protocol::{kind, EventData, Feed, MembershipChange};
use std::sync::Arc;

/// One event on the live path, encoded once for every transport.
#[derive(Debug)]
pub struct LiveEvent {
    pub id: Option<i64>,
    pub feed: Feed,
    /// Visible to this room's members (when `user_id` is not set).
    pub room_id: Option<String>,
    /// Visible to this user only.
    pub user_id: Option<String>,
    /// For a `membership` event addressed to its subject: what changed.
    pub membership: Option<MembershipChange>,
    /// Visible only to the people who share a room with its subject (and the subject), when
    /// neither `user_id` nor `room_id` is set: a presence change.
    pub shared_with: Option<Arc<Audience>>,
    /// Ephemeral events: their place in the hub's short memory of recent ephemerals (0 for
    /// stored events). Polls catch up on ephemerals with it.
    pub eph_seq: u64,
    /// When the hub published it (None for events read back from the log): the start of the
    /// delivery latency the meters measure.
    pub published: Option<std::time::Instant>,
    /// Commit time (Unix ms) of a stored event; creation time of an ephemeral one.
    pub ts: i64,
    /// The event as the wire carries it: `{"id","feed","type","data","ts"}`, serialised once;
    /// every WebSocket frame shares these bytes (a reference count, not a copy).
    pub json: axum::extract::ws::Utf8Bytes,
    /// The event as one SSE message (`id:`/`event:`/`data:`), made by the first SSE stream that
    /// sends it and shared by the rest.
    pub sse: std::sync::OnceLock<axum::body::Bytes>,
}

impl LiveEvent {
    /// This event as an SSE message, encoded once for every stream that carries it.
    pub fn sse_frame(&self) -> &axum::body::Bytes {
        self.sse
            .get_or_init(|| frame(self.id, self.feed.as_str(), &self.json).into())
    }

    /// Time since commit (or creation), in µs: exact for events that came live from the hub,
    /// from the stored commit time (ms) for events read back from the log.
    pub fn age_us(&self) -> u64 {
        match self.published {
            Some(at) => at.elapsed().as_micros() as u64,
            None => (crate::clock::now_ms() - self.ts).max(0) as u64 * 1000,
        }
    }

    pub fn from_stored(ev: &StoredEvent) -> LiveEvent {
        /// The part of a `membership` payload the hub reads.
        #[derive(serde::Deserialize)]
        struct Change {
            change: MembershipChange,
        }
        let membership = (ev.kind == kind::MEMBERSHIP)
            .then(|| serde_json::from_str::<Change>(&ev.data).ok())
            .flatten()
            .map(|c| c.change);
        LiveEvent {
            id: Some(ev.id),
            feed: ev.feed,
            room_id: ev.room_id.clone(),
            user_id: ev.user_id.clone(),
            membership,
            shared_with: None,
            eph_seq: 0,
            published: None,
            ts: ev.ts,
            json: encode(Some(ev.id), ev.feed, &ev.kind, &ev.data, ev.ts).into(),
            sse: Default::default(),
        }
    }

    /// An ephemeral event from another server, already encoded for the wire.
    pub fn ephemeral_encoded(
        feed: Feed,
        room_id: Option<String>,
        user_id: Option<String>,
        ts: i64,
        json: String,
    ) -> LiveEvent {
        LiveEvent {
            id: None,
            feed,
            room_id,
            user_id,
            membership: None,
            shared_with: None,
            eph_seq: 0,
            published: None,
            ts,
            json: json.into(),
            sse: Default::default(),
        }
    }

    /// An event that is delivered live but never stored or replayed.
    pub fn ephemeral(
        feed: Feed,
        data: &EventData,
        room_id: Option<String>,
        user_id: Option<String>,
        ts: i64,
    ) -> LiveEvent {
        let json = encode_data(None, feed, data, ts);
        LiveEvent::ephemeral_encoded(feed, room_id, user_id, ts, json)
    }
}

/// Encodes a typed event as wire JSON: its `type` and `data` as [`EventData`] spells them.
pub fn encode_data(id: Option<i64>, feed: Feed, data: &EventData, ts: i64) -> String {
    encode(id, feed, data.kind(), &data.data_json(), ts)
}

/// Encodes an event as wire JSON. `data` must already be JSON (it comes from our serialiser).
pub fn encode(id: Option<i64>, feed: Feed, kind: &str, data: &str, ts: i64) -> String {
    let id = id.map_or_else(|| "null".to_string(), |id| id.to_string());
    let kind = serde_json::Value::from(kind);
    let data = if data.is_empty() { "null" } else { data };
    format!(r#"{{"id":{id},"feed":"{feed}","type":{kind},"data":{data},"ts":{ts}}}"#)
}

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

/// A user's room ids.
pub type RoomSet = std::collections::HashSet<String>;

/// Who may see an event about one user (their presence): that user, and whoever is a member
/// of one of their rooms (a DM is a room of two).
#[derive(Debug)]
pub struct Audience {
    pub subject: String,
    pub rooms: Arc<RoomSet>,
}

impl Audience {
    /// Whether `user_id`, a member of `rooms`, is in this audience.
    pub fn admits(&self, user_id: &str, rooms: &RoomSet) -> bool {
        if user_id == self.subject {
            return true;
        }
        let (small, large) = if rooms.len() <= self.rooms.len() {
            (rooms, &*self.rooms)
        } else {
            (&*self.rooms, rooms)
        };
        small.iter().any(|r| large.contains(r))
    }
}

/// A stored chat event of room `r` under `id`, for the hub's unit tests.
#[cfg(test)]
pub(crate) fn stored(id: i64) -> StoredEvent {
    StoredEvent {
        id,
        feed: Feed::Chat,
        kind: "message".into(),
        room_id: Some("r".into()),
        user_id: None,
        data: r#"{"x":1}"#.into(),
        ts: 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_the_wire_event() {
        let ev = LiveEvent::from_stored(&stored(7));
        let parsed: protocol::Event = serde_json::from_str(&ev.json).unwrap();
        assert_eq!(parsed.id, Some(7));
        assert_eq!(parsed.kind, "message");
        assert_eq!(parsed.data, serde_json::json!({"x": 1}));
    }

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
