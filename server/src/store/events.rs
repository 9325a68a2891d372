//! The events the store appends, written once for both backends: which feed, kind and audience
//! each change's event has, and its JSON payload (the wire `Message`, the room of a
//! `membership` change, a `notification`, a `read` selection, a `room_created` room). The
//! backends only give the events their ids and insert them; what the payloads say is decided
//! here, so the two databases cannot drift apart on the wire.

use super::{NewMessage, NewNotification, ReadSelection, StoreError, StoreResult, StoredEvent};
use protocol::{kind, Author, Feed, Message, Notification, Room};

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

fn json<T: serde::Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(e.into()))
}

/// A new message as stored and sent: its room's `seq` and its event's id (the payload names
/// the event it travels in, so the id is reserved before the payload is written).
pub fn message(m: &NewMessage, seq: i64, event_id: i64) -> Message {
    Message {
        id: m.id.clone(),
        room_id: m.room_id.clone(),
        author: Author {
            id: m.author.id.clone(),
            username: m.author.username.clone(),
        },
        body: m.body.clone(),
        client_id: m.client_id.clone(),
        created_at: m.now,
        seq,
        event_id,
    }
}

/// A message's event: to the members of its room, under the id the message names.
pub fn message_event(message: &Message) -> StoreResult<StoredEvent> {
    Ok(StoredEvent {
        id: message.event_id,
        feed: Feed::Chat,
        kind: kind::MESSAGE.to_string(),
        room_id: Some(message.room_id.clone()),
        user_id: None,
        data: json(message)?,
        ts: message.created_at,
    })
}

/// A notification's event: to its user only, carrying the notification as it is listed.
pub fn notification(n: &NewNotification) -> StoreResult<NewEvent> {
    let data = json(&Notification {
        id: n.id.clone(),
        kind: n.kind.clone(),
        title: n.title.clone(),
        body: n.body.clone(),
        link: n.link.clone(),
        created_at: n.now,
        read: false,
    })?;
    Ok(NewEvent {
        feed: Feed::Notifications,
        kind: kind::NOTIFICATION.to_string(),
        room_id: None,
        user_id: Some(n.user_id.clone()),
        data,
        ts: n.now,
    })
}

/// A change of `user_id`'s membership (`joined`, `left`, `invited`), addressed to that user and
/// carrying the room as they now see it (so their open clients can update their room list and
/// subscriptions).
pub fn membership(room: &Room, user_id: &str, change: &str, now: i64) -> NewEvent {
    let data = serde_json::json!({ "room": room, "change": change }).to_string();
    NewEvent {
        feed: Feed::Chat,
        kind: kind::MEMBERSHIP.to_string(),
        room_id: Some(room.id.clone()),
        user_id: Some(user_id.to_string()),
        data,
        ts: now,
    }
}

/// A public room's `room_created` event, to everyone (no room, no user): "Other rooms" grows
/// live everywhere. The payload is the room as someone who is not (yet) a member sees it, so
/// every signed-in user gets the same bytes; the creator's own clients already hold the room
/// as a member from its `membership` event.
pub fn room_created(room: &Room, now: i64) -> StoreResult<NewEvent> {
    let seen = Room {
        is_member: false,
        unread: 0,
        ..room.clone()
    };
    Ok(NewEvent {
        feed: Feed::Chat,
        kind: kind::ROOM_CREATED.to_string(),
        room_id: None,
        user_id: None,
        data: json(&seen)?,
        ts: now,
    })
}

/// Notifications marked read, to their user: their other tabs update the badge from this.
pub fn read(user_id: &str, which: &ReadSelection, now: i64) -> NewEvent {
    let data = match which {
        ReadSelection::All => serde_json::json!({ "all": true }),
        ReadSelection::Ids(ids) => serde_json::json!({ "ids": ids }),
    };
    NewEvent {
        feed: Feed::Notifications,
        kind: kind::READ.to_string(),
        room_id: None,
        user_id: Some(user_id.to_string()),
        data: data.to_string(),
        ts: now,
    }
}

/// A job's new state, to its owner; `data` is the service's snapshot of the stored record.
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
