//! The live wire: the event envelope every transport carries, the kinds of event, what a
//! WebSocket client may send, acknowledgements, errors, poll answers and close codes.

use crate::feed::{Feed, ParseError};
use crate::model::Message;
use serde::{Deserialize, Serialize};

/// Event types. Stored ones move the cursor; ephemeral ones carry `id: null`.
pub mod kind {
    /// A chat message (data = Message).
    pub const MESSAGE: &str = "message";
    /// My membership changed (data = {"room": Room, "joined": bool}).
    pub const MEMBERSHIP: &str = "membership";
    /// WebSocket: the opening frame (data = {"conn_id","cursor","heartbeat_ms"}). Ephemeral.
    pub const HELLO: &str = "hello";
    /// WebSocket: answer to a `send` frame after commit (data = {"client_id","message"}).
    pub const ACK: &str = "ack";
    /// WebSocket: a client frame was refused (data = {"client_id"?, "code", "message"}).
    pub const ERROR: &str = "error";
    /// The cursor is older than the log the server keeps: reload state over REST.
    pub const RESYNC: &str = "resync";
    /// A public room was created (chat feed, to every signed-in user; data = the Room as a
    /// non-member sees it: `is_member` false, `unread` 0).
    pub const ROOM_CREATED: &str = "room_created";
    /// Someone is typing (ephemeral).
    pub const TYPING: &str = "typing";
    /// A notification for me (notifications feed; data = Notification).
    pub const NOTIFICATION: &str = "notification";
    /// Some of my notifications were marked read (data = {"ids":[…]} or {"all":true}).
    pub const READ: &str = "read";
    /// A job's new snapshot (jobs feed; data = Job).
    pub const JOB: &str = "job";
    /// Someone's presence changed (ephemeral; data = {"user","status"}).
    pub const PRESENCE: &str = "presence";
    /// My transport settings (or the global switches) changed (control feed); data is my
    /// `TransportSettings`, or `{"switches": …}` for a global change (fetch yours again).
    pub const TRANSPORT: &str = "transport";
    /// SSE and polls: the server ends this connection (data = {"code","reason"}, the WebSocket
    /// close code and reason it would have used).
    pub const DISCONNECT: &str = "disconnect";
}

/// One live event, identical on every transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Option<i64>,
    pub feed: Feed,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: serde_json::Value,
    pub ts: i64,
}

/// Frames a WebSocket client may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Send {
        room_id: String,
        body: String,
        client_id: String,
    },
    Typing {
        room_id: String,
    },
    /// I am `online` again or `idle` (no input for a while, or the tab hidden).
    Presence {
        status: String,
    },
}

impl ClientFrame {
    /// Reads one text frame from a WebSocket client. Any input gives a frame or an error saying
    /// what is wrong, never a panic (fuzzed in `tests/frames.rs`).
    pub fn parse(text: &str) -> Result<ClientFrame, ParseError> {
        serde_json::from_str(text).map_err(|e| ParseError(format!("unreadable frame: {e}")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub client_id: String,
    pub message: Message,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A poll answer: the events after the cursor, and the cursor to send next.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PollAnswer {
    pub events: Vec<Event>,
    pub cursor: i64,
    /// Send back as `eph` to also get the ephemeral events (typing, presence) that happened
    /// between polls.
    #[serde(default)]
    pub eph: Option<u64>,
}

/// WebSocket close codes and what a client should do after each.
pub mod close {
    /// The client or server ended the session on purpose.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down or restarting: reconnect (with backoff) and resume by cursor.
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message was not valid UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// The client broke a policy (flooded presence or typing frames): reconnect, more slowly.
    pub const POLICY: u16 = 1008;
    /// A client frame was larger than the server accepts.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed; reconnect with backoff.
    pub const INTERNAL: u16 = 1011;
    /// The session is gone (signed out elsewhere): do not reconnect; sign in again.
    pub const UNAUTHORIZED: u16 = 4001;
    /// This transport was switched off by an administrator: move to the next enabled one.
    pub const TRANSPORT_DISABLED: u16 = 4003;
    /// The client did not keep up (or did not answer pings): reconnect and resume by cursor.
    pub const SLOW_CONSUMER: u16 = 4008;

    /// Whether a client should reconnect after the server closed with `code`.
    pub fn should_reconnect(code: u16) -> bool {
        !matches!(code, NORMAL | UNAUTHORIZED | TRANSPORT_DISABLED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_round_trip_and_reject_unknown_types() {
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"send","room_id":"r","body":"b","client_id":"c"}"#)
                .unwrap();
        assert!(matches!(f, ClientFrame::Send { .. }));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"nope"}"#).is_err());
    }
}
