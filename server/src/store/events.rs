//! The events the store appends, written once for both backends: which feed, kind and audience
//! each change's event has, and its payload, built as the contract's typed
//! [`EventData`](protocol::EventData) and stored as its `data_json()` under its `kind()` (the
//! wire `Message`, the room of a `membership` change, a `notification`, a `read` selection, a
//! `room_created` room). The backends only give the events their ids and insert them; what the
//! payloads say is decided here, so the two databases cannot drift apart on the wire.

use super::{NewMessage, NewNotification, ReadSelection, StoreError, StoreResult, StoredEvent};
use protocol::{
    kind, Author, EventData, Feed, Membership, MembershipChange, Message, Notification,
    NotificationsRead, ReactionEvent, ReplyRef, Room, User,
};

/// Longest start of a message a reply quotes, in characters.
pub const REPLY_EXCERPT_CHARS: usize = 120;

/// An event before the log gives it an id.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub feed: Feed,
    pub kind: String,
    pub room_id: Option<String>,
    pub user_id: Option<String>,
    pub data: String,
    pub ts: i64,
}

impl NewEvent {
    /// The event as stored under `id`.
    pub fn with_id(self, id: i64) -> StoredEvent {
        StoredEvent {
            id,
            feed: self.feed,
            kind: self.kind,
            room_id: self.room_id,
            user_id: self.user_id,
            data: self.data,
            ts: self.ts,
        }
    }
}

impl NewEvent {
    /// A stored event carrying `data`, of `data`'s kind.
    fn of(
        feed: Feed,
        data: &EventData,
        room_id: Option<&str>,
        user_id: Option<&str>,
        ts: i64,
    ) -> Self {
        NewEvent {
            feed,
            kind: data.kind().to_string(),
            room_id: room_id.map(str::to_string),
            user_id: user_id.map(str::to_string),
            data: data.data_json(),
            ts,
        }
    }
}

/// A new message as stored and sent: its room's `seq` and its event's id (the payload names
/// the event it travels in, so the id is reserved before the payload is written).
pub fn message(m: &NewMessage, seq: i64, event_id: i64) -> Message {
    Message {
        id: m.id.clone(),
        room_id: m.room_id.clone(),
        author: m.author.author(),
        body: m.body.clone(),
        client_id: m.client_id.clone(),
        created_at: m.now,
        seq,
        event_id,
        edited_at: None,
        deleted: false,
        reply_to: None,
        reply_count: 0,
        reactions: Vec::new(),
        attachments: Vec::new(),
    }
}

/// The start of a body as a reply quotes it: its first [`REPLY_EXCERPT_CHARS`] characters,
/// line breaks as spaces, "…" when cut.
pub fn excerpt(body: &str) -> String {
    let flat: String = body
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let mut out: String = flat.chars().take(REPLY_EXCERPT_CHARS).collect();
    if flat.chars().count() > REPLY_EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// What a reply shows of `root`.
pub fn reply_ref(root: &Message) -> ReplyRef {
    ReplyRef {
        id: root.id.clone(),
        author: root.author.clone(),
        excerpt: excerpt(&root.body),
        deleted: root.deleted,
    }
}

/// A message's new state after an edit, a deletion or a new reply, to its room's members: one
/// payload for every reader, so no reaction is `mine` and the lists of who reacted are cut.
pub fn message_updated(message: &Message, now: i64) -> NewEvent {
    let data = EventData::MessageUpdated(message.clone().seen_by(None));
    NewEvent::of(Feed::Chat, &data, Some(&message.room_id), None, now)
}

/// A reaction added or removed, to the room's members, with the emoji's count after it.
pub fn reaction(
    room_id: &str,
    message_id: &str,
    emoji: &str,
    user: &User,
    added: bool,
    count: i64,
    now: i64,
) -> NewEvent {
    let data = EventData::Reaction(ReactionEvent {
        room_id: room_id.into(),
        message_id: message_id.into(),
        emoji: emoji.to_string(),
        user: user.author(),
        added,
        count,
    });
    NewEvent::of(Feed::Chat, &data, Some(room_id), None, now)
}

/// A message's event: to the members of its room, under the id the message names. The
/// message comes back beside it (it is moved into the payload to be written, not copied).
pub fn message_event(message: Message) -> StoreResult<(Message, StoredEvent)> {
    let (id, ts, room_id) = (
        message.event_id,
        message.created_at,
        message.room_id.clone(),
    );
    let data = EventData::Message(message);
    let event = NewEvent::of(Feed::Chat, &data, Some(&room_id), None, ts).with_id(id);
    match data {
        EventData::Message(message) => Ok((message, event)),
        _ => Err(StoreError::Other(anyhow::anyhow!(
            "a message event without its message"
        ))),
    }
}

/// A notification's event: to its user only, carrying the notification as it is listed.
pub fn notification(n: &NewNotification) -> NewEvent {
    let data = EventData::Notification(Notification {
        id: n.id.clone(),
        kind: n.kind.clone(),
        title: n.title.clone(),
        body: n.body.clone(),
        link: n.link.clone(),
        created_at: n.now,
        read: false,
    });
    NewEvent::of(Feed::Notifications, &data, None, Some(&n.user_id), n.now)
}

/// A change of `user_id`'s membership (`joined`, `left`, `invited`), addressed to that user and
/// carrying the room as they now see it (so their open clients can update their room list and
/// subscriptions).
pub fn membership(room: Room, user_id: &str, change: MembershipChange, now: i64) -> NewEvent {
    let room_id = room.id.clone();
    let data = EventData::Membership(Membership {
        change,
        room,
        user: None,
    });
    NewEvent::of(Feed::Chat, &data, Some(&room_id), Some(user_id), now)
}

/// Someone's join or leave told to the room's members (so they can show "bob joined"): the
/// same payload as the subject's own event, with `user` naming the subject. Someone who left is
/// no longer a member and does not get it; someone who joined does (after their own event).
pub fn member_change(room: Room, user: Author, change: MembershipChange, now: i64) -> NewEvent {
    let room_id = room.id.clone();
    let data = EventData::Membership(Membership {
        change,
        room,
        user: Some(user),
    });
    NewEvent::of(Feed::Chat, &data, Some(&room_id), None, now)
}

/// A room's new name or topic, to its members. The payload is the same bytes for everyone, so
/// the fields that depend on the reader are neutral: a member's view (`is_member` true) with
/// nothing unread, no read position, and no DM partner; clients keep their own of those.
pub fn room_updated(room: &Room, now: i64) -> NewEvent {
    let seen = Room {
        is_member: true,
        unread: 0,
        last_read: None,
        dm_with: None,
        ..room.clone()
    };
    NewEvent::of(
        Feed::Chat,
        &EventData::RoomUpdated(seen),
        Some(&room.id),
        None,
        now,
    )
}

/// Someone's new display name, to everyone signed in: names show in every room, DM list,
/// member list and typing line, so every client updates the person wherever it shows them.
pub fn user_updated(user: &User, now: i64) -> NewEvent {
    NewEvent::of(
        Feed::Chat,
        &EventData::UserUpdated(user.author()),
        None,
        None,
        now,
    )
}

/// A public room's `room_created` event, to everyone (no room, no user): "Other rooms" grows
/// live everywhere. The payload is the room as someone who is not (yet) a member sees it, so
/// every signed-in user gets the same bytes; the creator's own clients already hold the room
/// as a member from its `membership` event.
pub fn room_created(room: &Room, now: i64) -> NewEvent {
    let seen = Room {
        is_member: false,
        unread: 0,
        last_read: None,
        ..room.clone()
    };
    NewEvent::of(Feed::Chat, &EventData::RoomCreated(seen), None, None, now)
}

/// Notifications marked read, to their user: their other tabs update the badge from this.
pub fn read(user_id: &str, which: &ReadSelection, now: i64) -> NewEvent {
    let read = match which {
        ReadSelection::All => NotificationsRead::All { all: true },
        ReadSelection::Ids(ids) => NotificationsRead::Ids { ids: ids.clone() },
    };
    NewEvent::of(
        Feed::Notifications,
        &EventData::Read(read),
        None,
        Some(user_id),
        now,
    )
}

/// A job's new state, to its owner; `data` is the service's snapshot of the stored record
/// (the jobs service writes it, from the record as stored).
pub fn job(user_id: &str, data: String, updated_at: i64) -> NewEvent {
    NewEvent {
        feed: Feed::Jobs,
        kind: kind::JOB.to_string(),
        room_id: None,
        user_id: Some(user_id.to_string()),
        data,
        ts: updated_at,
    }
}
