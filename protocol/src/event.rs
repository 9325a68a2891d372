//! The live wire: the event envelope every transport carries, the kinds of event, what a
//! WebSocket client may send, acknowledgements, errors, poll answers and close codes.

use crate::feed::{Feed, ParseError, Transport};
use crate::ids::{MessageId, NotificationId, RoomId};
use crate::model::{Author, Job, MembershipChange, Message, Notification, Room};
use crate::settings::{Switches, TransportSettings};
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Event types. Stored ones move the cursor; ephemeral ones carry `id: null`.
pub mod kind {
    /// A chat message (data = Message).
    pub const MESSAGE: &str = "message";
    /// A message changed: edited, deleted (a tombstone) or its reply count moved (data = the
    /// Message as it now is; its reactions' `mine` is always false).
    pub const MESSAGE_UPDATED: &str = "message_updated";
    /// Someone added or removed a reaction (data = {"room_id","message_id","emoji","user",
    /// "added","count"}; `count` is the emoji's count after the change).
    pub const REACTION: &str = "reaction";
    /// A membership changed (data = {"change": "joined" | "left" | "invited", "room": Room,
    /// "user"?: Author}): without `user`, mine (to me); with `user`, that person joined or left
    /// a room I am in (to the room's members).
    pub const MEMBERSHIP: &str = "membership";
    /// A room's name or topic changed (chat feed, to its members; data = Room).
    pub const ROOM_UPDATED: &str = "room_updated";
    /// Someone changed their display name (chat feed, to every signed-in user; data = Author).
    pub const USER_UPDATED: &str = "user_updated";
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

/// One live event with its payload typed: what the server writes and what the browser reads.
/// On the wire it is the same object as [`Event`] (`id`, `feed`, `type`, `data`, `ts`, in that
/// order); `type` and `data` come from [`EventData`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypedEvent {
    pub id: Option<i64>,
    pub feed: Feed,
    #[serde(flatten)]
    pub data: EventData,
    pub ts: i64,
}

impl TypedEvent {
    /// Reads one event from its JSON text (a WebSocket frame, an SSE `data:` line).
    pub fn parse(text: &str) -> Result<TypedEvent, ParseError> {
        serde_json::from_str(text).map_err(|e| ParseError(format!("unreadable event: {e}")))
    }
}

/// Read by hand, not derived: `type` picks the payload's type and `data` is parsed once,
/// straight into it (a derived reader of a flattened enum buffers the whole event first, and
/// cannot skip a kind it does not know).
impl<'de> Deserialize<'de> for TypedEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TypedEvent, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            id: Option<i64>,
            feed: Feed,
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            data: Option<Box<RawValue>>,
            ts: i64,
        }
        let w = Wire::deserialize(d)?;
        let raw = w.data.as_deref().map_or("null", RawValue::get);
        let data = EventData::from_raw(&w.kind, raw).map_err(D::Error::custom)?;
        Ok(TypedEvent {
            id: w.id,
            feed: w.feed,
            data,
            ts: w.ts,
        })
    }
}

impl TryFrom<Event> for TypedEvent {
    type Error = ParseError;

    /// Types a generic envelope's payload (an unknown `type` gives [`EventData::Unknown`]).
    fn try_from(ev: Event) -> Result<TypedEvent, ParseError> {
        let data = EventData::from_parts(&ev.kind, ev.data)?;
        Ok(TypedEvent {
            id: ev.id,
            feed: ev.feed,
            data,
            ts: ev.ts,
        })
    }
}

/// Every kind of live event with its payload (`type` names the variant, `data` holds it). The
/// server builds events from these types only; the browser matches on the variants.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum EventData {
    /// A chat message (chat feed, stored).
    Message(Message),
    /// A message was edited or deleted, or its reply count moved (chat feed, stored, to the
    /// room's members): the message as it now is, with `mine` false on every reaction.
    MessageUpdated(Message),
    /// A reaction was added or removed (chat feed, stored, to the room's members).
    Reaction(ReactionEvent),
    /// A membership of a room changed (chat feed, stored): mine (to me), or, with `user` set,
    /// someone's join or leave (to the room's members).
    Membership(Membership),
    /// A room's name or topic changed (chat feed, stored, to its members). The fields that
    /// depend on the reader (`is_member`, `unread`, `last_read`, `dm_with`) are not the
    /// reader's: keep your own and take the rest.
    RoomUpdated(Room),
    /// Someone changed their display name (chat feed, stored, to everyone signed in).
    UserUpdated(Author),
    /// A public room was created (chat feed, stored, to every signed-in user), as a non-member
    /// sees it: `is_member` false, `unread` 0.
    RoomCreated(Room),
    /// Someone in one of my rooms is typing (chat feed, ephemeral).
    Typing(Typing),
    /// Someone who shares a room with me went online, idle or offline (ephemeral).
    Presence(Presence),
    /// A notification for me (notifications feed, stored).
    Notification(Notification),
    /// Some of my notifications were marked read, maybe in another tab (stored).
    Read(NotificationsRead),
    /// A job's new snapshot (jobs feed, stored, to its owner).
    Job(Job),
    /// The opening event of every live connection (control, ephemeral).
    Hello(Hello),
    /// The cursor could not be honoured: reload state over REST, then go on from `cursor`.
    Resync(Resync),
    /// My transport settings, or everyone's switches or poll timings, changed (control, stored).
    Transport(TransportChange),
    /// WebSocket: a `send` frame was committed (ephemeral, to the sending socket).
    Ack(Ack),
    /// WebSocket: a client frame was refused (ephemeral, to the sending socket).
    Error(FrameError),
    /// SSE and polls: the server ends this connection, with the WebSocket close code and reason
    /// it would have used (ephemeral).
    Disconnect(Disconnect),
    /// A kind this client does not know (a newer server): skipped, never an error. Never sent.
    #[serde(skip_serializing)]
    Unknown,
}

impl EventData {
    /// The event's `type` on the wire (one of [`kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            EventData::Message(_) => kind::MESSAGE,
            EventData::MessageUpdated(_) => kind::MESSAGE_UPDATED,
            EventData::Reaction(_) => kind::REACTION,
            EventData::Membership(_) => kind::MEMBERSHIP,
            EventData::RoomCreated(_) => kind::ROOM_CREATED,
            EventData::RoomUpdated(_) => kind::ROOM_UPDATED,
            EventData::UserUpdated(_) => kind::USER_UPDATED,
            EventData::Typing(_) => kind::TYPING,
            EventData::Presence(_) => kind::PRESENCE,
            EventData::Notification(_) => kind::NOTIFICATION,
            EventData::Read(_) => kind::READ,
            EventData::Job(_) => kind::JOB,
            EventData::Hello(_) => kind::HELLO,
            EventData::Resync(_) => kind::RESYNC,
            EventData::Transport(_) => kind::TRANSPORT,
            EventData::Ack(_) => kind::ACK,
            EventData::Error(_) => kind::ERROR,
            EventData::Disconnect(_) => kind::DISCONNECT,
            EventData::Unknown => "unknown",
        }
    }

    /// The event's `data` as JSON text, as it is stored and sent. The wire keeps the spelling it
    /// always had: resources (a message, a room, a notification, a job, my settings) in their
    /// fields' order, the small payloads with their keys sorted at every level (they were built
    /// as JSON values, whose maps sort their keys). The contract tests hold both.
    pub fn data_json(&self) -> String {
        fn fields<T: Serialize>(v: &T) -> String {
            // Our types hold strings, numbers and booleans: writing them cannot fail.
            serde_json::to_string(v).unwrap_or_else(|_| "null".into())
        }
        fn sorted<T: Serialize>(v: &T) -> String {
            serde_json::to_value(v).map_or_else(|_| "null".into(), |v| v.to_string())
        }
        match self {
            EventData::Message(m) => fields(m),
            EventData::MessageUpdated(m) => fields(m),
            EventData::Reaction(r) => fields(r),
            EventData::RoomCreated(r) => fields(r),
            EventData::RoomUpdated(r) => fields(r),
            EventData::UserUpdated(a) => fields(a),
            EventData::Notification(n) => fields(n),
            EventData::Job(j) => fields(j),
            EventData::Transport(TransportChange::Settings(s)) => fields(s),
            EventData::Transport(t) => sorted(t),
            EventData::Membership(m) => sorted(m),
            EventData::Typing(t) => sorted(t),
            EventData::Presence(p) => sorted(p),
            EventData::Read(r) => sorted(r),
            EventData::Hello(h) => sorted(h),
            EventData::Resync(r) => sorted(r),
            EventData::Ack(a) => sorted(a),
            EventData::Error(e) => sorted(e),
            EventData::Disconnect(d) => sorted(d),
            EventData::Unknown => "null".into(),
        }
    }

    /// Types a payload given its `type` (an unknown type gives [`EventData::Unknown`]).
    pub fn from_parts(kind: &str, data: serde_json::Value) -> Result<EventData, ParseError> {
        EventData::from_raw(kind, &data.to_string())
    }

    /// Types a payload from its JSON text given its `type` (an unknown type gives
    /// [`EventData::Unknown`]; a known type with a payload that does not fit is an error).
    pub fn from_raw(kind: &str, data: &str) -> Result<EventData, ParseError> {
        fn read<T: DeserializeOwned>(kind: &str, data: &str) -> Result<T, ParseError> {
            serde_json::from_str(data)
                .map_err(|e| ParseError(format!("unreadable {kind} event: {e}")))
        }
        Ok(match kind {
            kind::MESSAGE => EventData::Message(read(kind, data)?),
            kind::MESSAGE_UPDATED => EventData::MessageUpdated(read(kind, data)?),
            kind::REACTION => EventData::Reaction(read(kind, data)?),
            kind::MEMBERSHIP => EventData::Membership(read(kind, data)?),
            kind::ROOM_CREATED => EventData::RoomCreated(read(kind, data)?),
            kind::ROOM_UPDATED => EventData::RoomUpdated(read(kind, data)?),
            kind::USER_UPDATED => EventData::UserUpdated(read(kind, data)?),
            kind::TYPING => EventData::Typing(read(kind, data)?),
            kind::PRESENCE => EventData::Presence(read(kind, data)?),
            kind::NOTIFICATION => EventData::Notification(read(kind, data)?),
            kind::READ => EventData::Read(read(kind, data)?),
            kind::JOB => EventData::Job(read(kind, data)?),
            kind::HELLO => EventData::Hello(read(kind, data)?),
            kind::RESYNC => EventData::Resync(read(kind, data)?),
            kind::TRANSPORT => EventData::Transport(read(kind, data)?),
            kind::ACK => EventData::Ack(read(kind, data)?),
            kind::ERROR => EventData::Error(read(kind, data)?),
            kind::DISCONNECT => EventData::Disconnect(read(kind, data)?),
            _ => EventData::Unknown,
        })
    }
}

/// `reaction`: who added (or removed) which emoji on which message, and the emoji's count on
/// that message after the change. Clients keep `mine` from it: `user` is who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionEvent {
    pub room_id: RoomId,
    pub message_id: MessageId,
    pub emoji: String,
    pub user: Author,
    pub added: bool,
    pub count: i64,
}

/// `membership`: what changed, and the room as its subject now sees it. Addressed to the
/// subject, `user` is absent (the payload is as it always was); told to the room's members,
/// `user` names who joined or left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub change: MembershipChange,
    pub room: Room,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Author>,
}

/// Someone's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Idle,
    Offline,
}

impl PresenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Idle => "idle",
            PresenceStatus::Offline => "offline",
        }
    }
}

/// `presence`: who, and how they are now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub user: Author,
    pub status: PresenceStatus,
}

/// `typing`: who is typing where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    pub room_id: RoomId,
    pub user: Author,
}

/// `read`: which of my notifications were marked read: all of them, or these ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NotificationsRead {
    All { all: bool },
    Ids { ids: Vec<NotificationId> },
}

/// `hello`: the connection's id, where its stream starts, how often the server beats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub conn_id: String,
    pub cursor: i64,
    pub heartbeat_ms: u64,
    pub transport: Transport,
}

/// `resync`: the cursor to go on from once state is reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {
    pub cursor: i64,
}

/// `transport`: my settings now, or a change for everyone (fetch my settings again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TransportChange {
    /// My own settings changed (my choice, or an administrator's override for me).
    Settings(TransportSettings),
    /// An administrator switched transports on or off for everyone.
    Switches { switches: Switches },
    /// An administrator changed the poll timings for everyone.
    Poll { poll: PollTimings },
}

/// The poll timings an administrator sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollTimings {
    pub long_poll_s: u32,
    pub short_poll_ms: u32,
}

/// `error`: why a client frame was refused (`client_id` null when the frame had none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameError {
    pub client_id: Option<String>,
    pub code: String,
    pub message: String,
    pub status: u16,
}

/// `disconnect`: the close code and reason (see [`close`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    pub code: u16,
    pub reason: String,
}

/// Frames a WebSocket client may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Send {
        room_id: RoomId,
        body: String,
        client_id: String,
        /// The message this one answers, in the same room (as over HTTP).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<MessageId>,
        /// Upload ids of mine to carry (as over HTTP).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<String>,
    },
    Typing {
        room_id: RoomId,
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

/// A poll answer: the events after the cursor, and the cursor to send next. `E` is the event as
/// the reader wants it: the generic [`Event`] envelope, or a [`TypedEvent`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PollAnswer<E = Event> {
    pub events: Vec<E>,
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

    fn room() -> Room {
        Room {
            id: "r1".into(),
            name: "lobby".into(),
            private: false,
            is_member: true,
            unread: 2,
            dm_with: None,
            topic: String::new(),
            member_count: 1,
            last_read: None,
            created_by: Some("u1".into()),
        }
    }

    fn author() -> Author {
        Author {
            id: "u1".into(),
            username: "ada".into(),
            display_name: None,
        }
    }

    /// The payloads keep the exact spelling the server wrote before they were typed: the old
    /// builders are repeated here (JSON values, whose maps sort their keys) and compared byte
    /// for byte.
    #[test]
    fn typed_payloads_are_spelled_as_before() {
        let m = Membership {
            change: MembershipChange::Joined,
            room: room(),
            user: None,
        };
        let old = serde_json::json!({ "room": room(), "change": "joined" }).to_string();
        assert_eq!(EventData::Membership(m).data_json(), old);

        let p = Presence {
            user: author(),
            status: PresenceStatus::Idle,
        };
        let old = serde_json::json!({ "user": {"id": "u1", "username": "ada"}, "status": "idle" });
        assert_eq!(EventData::Presence(p).data_json(), old.to_string());

        let t = Typing {
            room_id: "r1".into(),
            user: author(),
        };
        let old = serde_json::json!({ "room_id": "r1", "user": {"id": "u1", "username": "ada"} });
        assert_eq!(EventData::Typing(t).data_json(), old.to_string());

        let all = NotificationsRead::All { all: true };
        assert_eq!(EventData::Read(all).data_json(), r#"{"all":true}"#);
        let ids = NotificationsRead::Ids {
            ids: vec!["a".into(), "b".into()],
        };
        assert_eq!(EventData::Read(ids).data_json(), r#"{"ids":["a","b"]}"#);

        let h = Hello {
            conn_id: "c".into(),
            cursor: 7,
            heartbeat_ms: 15000,
            transport: Transport::Sse,
        };
        let old = serde_json::json!({
            "conn_id": "c", "cursor": 7, "heartbeat_ms": 15000u64, "transport": "sse",
        });
        assert_eq!(EventData::Hello(h).data_json(), old.to_string());
        assert_eq!(
            EventData::Resync(Resync { cursor: 3 }).data_json(),
            r#"{"cursor":3}"#
        );

        let message = Message {
            id: "m".into(),
            room_id: "r1".into(),
            author: author(),
            body: "hi".into(),
            client_id: "k".into(),
            created_at: 1,
            seq: 1,
            event_id: 9,
            edited_at: None,
            deleted: false,
            reply_to: None,
            reply_count: 0,
            reactions: Vec::new(),
            attachments: Vec::new(),
        };
        assert_eq!(
            EventData::Message(message.clone()).data_json(),
            serde_json::to_string(&message).unwrap(),
            "a message in its fields' order"
        );
        let ack = Ack {
            client_id: "k".into(),
            message: message.clone(),
        };
        let old = serde_json::json!({ "client_id": "k", "message": message });
        assert_eq!(EventData::Ack(ack).data_json(), old.to_string());

        let e = FrameError {
            client_id: None,
            code: "forbidden".into(),
            message: "No.".into(),
            status: 403,
        };
        let old = serde_json::json!({
            "client_id": Option::<&str>::None, "code": "forbidden", "message": "No.", "status": 403u16,
        });
        assert_eq!(EventData::Error(e).data_json(), old.to_string());
        let d = Disconnect {
            code: 4001,
            reason: "signed out".into(),
        };
        let old = serde_json::json!({ "code": 4001u16, "reason": "signed out" });
        assert_eq!(EventData::Disconnect(d).data_json(), old.to_string());

        let poll = TransportChange::Poll {
            poll: PollTimings {
                long_poll_s: 25,
                short_poll_ms: 2000,
            },
        };
        let old = serde_json::json!({ "poll": { "short_poll_ms": 2000, "long_poll_s": 25 } });
        assert_eq!(EventData::Transport(poll).data_json(), old.to_string());
        let switches = TransportChange::Switches {
            switches: Switches::default(),
        };
        let old = serde_json::json!({ "switches": Switches::default() });
        assert_eq!(EventData::Transport(switches).data_json(), old.to_string());
    }

    /// What a transport sends (envelope written around the stored `data` text) reads back as
    /// the typed event, for every kind; and the typed event writes the same envelope.
    #[test]
    fn typed_events_read_what_the_wire_carries() {
        let datas = [
            EventData::Membership(Membership {
                change: MembershipChange::Left,
                room: room(),
                user: None,
            }),
            EventData::Membership(Membership {
                change: MembershipChange::Joined,
                room: room(),
                user: Some(Author {
                    display_name: Some("Ada L.".into()),
                    ..author()
                }),
            }),
            EventData::RoomCreated(room()),
            EventData::RoomUpdated(Room {
                topic: "plans".into(),
                ..room()
            }),
            EventData::UserUpdated(Author {
                display_name: Some("Ada L.".into()),
                ..author()
            }),
            EventData::Reaction(ReactionEvent {
                room_id: "r1".into(),
                message_id: "m1".into(),
                emoji: "👍".into(),
                user: author(),
                added: true,
                count: 2,
            }),
            EventData::Presence(Presence {
                user: author(),
                status: PresenceStatus::Online,
            }),
            EventData::Read(NotificationsRead::All { all: true }),
            EventData::Read(NotificationsRead::Ids { ids: vec![] }),
            EventData::Resync(Resync { cursor: 0 }),
            EventData::Typing(Typing {
                room_id: "r1".into(),
                user: author(),
            }),
            EventData::Hello(Hello {
                conn_id: "c".into(),
                cursor: 1,
                heartbeat_ms: 25000,
                transport: Transport::LongPoll,
            }),
            EventData::Error(FrameError {
                client_id: Some("k".into()),
                code: "too_long".into(),
                message: "Too long.".into(),
                status: 400,
            }),
            EventData::Transport(TransportChange::Switches {
                switches: Switches::default(),
            }),
            EventData::Disconnect(Disconnect {
                code: 1001,
                reason: "bye".into(),
            }),
        ];
        for data in datas {
            let wire = format!(
                r#"{{"id":5,"feed":"chat","type":"{}","data":{},"ts":9}}"#,
                data.kind(),
                data.data_json()
            );
            let typed = TypedEvent::parse(&wire).unwrap();
            assert_eq!(typed.data, data, "{wire}");
            let generic: Event = serde_json::from_str(&wire).unwrap();
            assert_eq!(TypedEvent::try_from(generic).unwrap(), typed);
            let again = serde_json::to_value(&typed).unwrap();
            assert_eq!(
                again,
                serde_json::from_str::<serde_json::Value>(&wire).unwrap()
            );
        }
    }

    #[test]
    fn an_unknown_kind_is_skipped_and_a_bad_payload_is_an_error() {
        let ev = TypedEvent::parse(
            r#"{"id":null,"feed":"control","type":"weather","data":{"x":1},"ts":1}"#,
        )
        .unwrap();
        assert_eq!(ev.data, EventData::Unknown);
        assert!(TypedEvent::parse(
            r#"{"id":1,"feed":"chat","type":"resync","data":{"cursor":"x"},"ts":1}"#
        )
        .is_err());
        let answer: PollAnswer<TypedEvent> = serde_json::from_str(
            r#"{"events":[{"id":3,"feed":"chat","type":"resync","data":{"cursor":3},"ts":1}],"cursor":3}"#,
        )
        .unwrap();
        assert_eq!(
            answer.events[0].data,
            EventData::Resync(Resync { cursor: 3 })
        );
    }

    #[test]
    fn client_frames_round_trip_and_reject_unknown_types() {
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"send","room_id":"r","body":"b","client_id":"c"}"#)
                .unwrap();
        assert!(matches!(f, ClientFrame::Send { reply_to: None, .. }));
        let f: ClientFrame = serde_json::from_str(
            r#"{"type":"send","room_id":"r","body":"b","client_id":"c","reply_to":"m"}"#,
        )
        .unwrap();
        assert!(matches!(f, ClientFrame::Send { reply_to: Some(m), .. } if m.as_str() == "m"));
        let f: ClientFrame = serde_json::from_str(
            r#"{"type":"send","room_id":"r","body":"","client_id":"c","attachments":["u1","u2"]}"#,
        )
        .unwrap();
        assert!(matches!(f, ClientFrame::Send { attachments, .. } if attachments == ["u1", "u2"]));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"nope"}"#).is_err());
    }
}
