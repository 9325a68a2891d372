//! Rooms, DMs and messages: membership rules, idempotent sends, history and read positions.
//! Every change goes through the hub, so it is in the log before anyone sees it.

use super::{notifications, parse_id};
use crate::clock::{new_id, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::hub::LiveEvent;
use crate::state::AppState;
use crate::store::{NewMessage, RoomAccess, RoomChange};
use protocol::{
    check_body, check_room_name, check_topic, normalize_username, BodyError, EventData, Feed,
    Member, MemberChange, Message, MessageId, MessageList, Room, RoomId, RoomUpdate, Typing, User,
    MAX_CLIENT_ID_LEN,
};

pub async fn list_rooms(state: &AppState, me: &User) -> ApiResult<Vec<Room>> {
    Ok(state.store.rooms_for(&me.id).await?)
}

pub async fn create_room(
    state: &AppState,
    me: &User,
    name: &str,
    private: bool,
) -> ApiResult<Room> {
    let name = check_room_name(name).map_err(|m| ApiError::bad("invalid_name", m))?;
    // A public name another public room has answers 409 `room_name_taken`, naming that room.
    let (store, me, name) = (state.store.clone(), me.clone(), name.to_string());
    let id = RoomId::from(new_id());
    state
        .hub
        .commit(async move {
            Ok(store
                .create_room(&id, &me, &name, private, now_ms())
                .await?)
        })
        .await
}

/// `me`'s own race room: private, named "race-<username>", created on first use and reused
/// while nobody else is in it. The race page sends its bursts here, never into a room other
/// people read. Returns the room and whether it was just created.
pub async fn race_room(state: &AppState, me: &User) -> ApiResult<(Room, bool)> {
    let name = format!("race-{}", me.username);
    if let Some(id) = state.store.own_solo_room(&me.id, &name).await? {
        if let Some(access) = state.store.room_for(&id, &me.id).await? {
            return Ok((access.room, false));
        }
    }
    Ok((create_room(state, me, &name, true).await?, true))
}

/// The room `me` sends to, if `me` is a member: from memory when the hub knows `me` is one and
/// the room was seen before (a send then reads nothing), else as [`member_room`] says.
async fn sendable_room(state: &AppState, me: &User, room_id: &RoomId) -> ApiResult<Room> {
    let store = state.store.clone();
    let mine = state
        .hub
        .rooms_of(&me.id, || async move { store.room_ids_of(&me.id).await })
        .await?;
    if mine.contains(room_id.as_str()) {
        if let Some(room) = state.rooms.get(room_id, &me.id) {
            return Ok(room);
        }
    }
    let room = member_room(state, me, room_id).await?;
    state.rooms.put(&room, me);
    Ok(room)
}

/// The room as `me` sees it, if `me` may see it at all (member, public, or invited). A private
/// room I cannot see is reported as not found, so its existence does not leak.
pub async fn visible_room(state: &AppState, me: &User, room_id: &RoomId) -> ApiResult<RoomAccess> {
    let room_id: RoomId = parse_id(room_id, "room")?;
    match state.store.room_for(&room_id, &me.id).await? {
        Some(access) if access.room.is_member || !access.room.private || access.invited => {
            Ok(access)
        }
        _ => Err(ApiError::NotFound("room")),
    }
}

/// The room, if `me` is a member. Visible non-members get 403; others 404.
pub async fn member_room(state: &AppState, me: &User, room_id: &RoomId) -> ApiResult<Room> {
    let access = visible_room(state, me, room_id).await?;
    if !access.room.is_member {
        return Err(ApiError::Forbidden("Join the room first.".into()));
    }
    Ok(access.room)
}

/// The room as `me` sees it: a member, anyone for a public room, an invitee; others 404.
pub async fn room(state: &AppState, me: &User, room_id: &RoomId) -> ApiResult<Room> {
    Ok(visible_room(state, me, room_id).await?.room)
}

/// Renames a room and/or sets its topic: members only (visible non-members 403, others 404).
/// The name follows the rules of a new room's (409 `room_name_taken` for another public room's
/// name); the topic is one line of at most `MAX_TOPIC_CHARS` (empty clears it); a DM keeps its
/// name. Every member gets `room_updated` from the same transaction.
pub async fn update_room(
    state: &AppState,
    me: &User,
    room_id: &RoomId,
    update: &RoomUpdate,
) -> ApiResult<Room> {
    if update.name.is_none() && update.topic.is_none() {
        return Err(ApiError::bad(
            "empty_update",
            "Send a new name, a new topic, or both.",
        ));
    }
    let room = member_room(state, me, room_id).await?;
    let name = match &update.name {
        Some(raw) => {
            let name = check_room_name(raw).map_err(|m| ApiError::bad("invalid_name", m))?;
            if room.dm_with.is_some() && name != room.name {
                return Err(ApiError::bad(
                    "invalid_room",
                    "Direct messages cannot be renamed.",
                ));
            }
            Some(name.to_string())
        }
        None => None,
    };
    let topic = match &update.topic {
        Some(raw) => Some(
            check_topic(raw)
                .map_err(|m| ApiError::bad("invalid_topic", m))?
                .to_string(),
        ),
        None => None,
    };
    let change = RoomChange { name, topic };
    let (store, me, id) = (state.store.clone(), me.clone(), room.id);
    let room = state
        .hub
        .commit(async move {
            Ok::<_, ApiError>(store.update_room(&id, &me.id, &change, now_ms()).await?)
        })
        .await?;
    // The name this server remembers for sends (mention notifications name the room).
    state.rooms.forget(&room.id);
    Ok(room)
}

/// The members of a room with when they joined: its members may list them, and anyone may for
/// a public room; an invitee or another visible non-member of a private room gets 403.
pub async fn members(state: &AppState, me: &User, room_id: &RoomId) -> ApiResult<Vec<Member>> {
    let access = visible_room(state, me, room_id).await?;
    if access.room.private && !access.room.is_member {
        return Err(ApiError::Forbidden("Join the room first.".into()));
    }
    Ok(state.store.members(&access.room.id).await?)
}

pub async fn join(state: &AppState, me: &User, room_id: &RoomId) -> ApiResult<()> {
    let access = visible_room(state, me, room_id).await?;
    if access.room.private && !access.room.is_member && !access.invited {
        return Err(ApiError::Forbidden(
            "This room is private; ask a member for an invite.".into(),
        ));
    }
    let (store, me, id) = (state.store.clone(), me.clone(), access.room.id);
    state
        .hub
        .commit(async move { Ok(((), store.join(&id, &me, now_ms()).await?)) })
        .await
}

pub async fn leave(state: &AppState, me: &User, room_id: &RoomId) -> ApiResult<()> {
    let access = visible_room(state, me, room_id).await?;
    let (store, me, id) = (state.store.clone(), me.clone(), access.room.id);
    state
        .hub
        .commit(async move { Ok(((), store.leave(&id, &me, now_ms()).await?)) })
        .await
}

pub async fn invite(
    state: &AppState,
    me: &User,
    room_id: &RoomId,
    username: &str,
) -> ApiResult<()> {
    let room = member_room(state, me, room_id).await?;
    if room.dm_with.is_some() {
        return Err(ApiError::bad(
            "invalid_room",
            "Direct messages are for two people.",
        ));
    }
    let target = find_user(state, username).await?;
    let note = notifications::for_invite(me, &target, &room, now_ms());
    let (store, me, id) = (state.store.clone(), me.clone(), room.id);
    state
        .hub
        .commit(async move {
            let mut events = store.invite(&id, &target, &me, now_ms()).await?;
            // Only a new invite notifies (inviting twice is a no-op).
            if !events.is_empty() {
                events.extend(store.notify(vec![note]).await?);
            }
            Ok(((), events))
        })
        .await
}

/// The DM room with `username`, and whether it was just created.
pub async fn dm(state: &AppState, me: &User, username: &str) -> ApiResult<(Room, bool)> {
    let other = find_user(state, username).await?;
    if other.id == me.id {
        return Err(ApiError::bad(
            "invalid_username",
            "You cannot message yourself.",
        ));
    }
    let (store, me, id) = (state.store.clone(), me.clone(), RoomId::from(new_id()));
    state
        .hub
        .commit(async move {
            let (room, created, events) = store.dm(&id, &me, &other, now_ms()).await?;
            Ok(((room, created), events))
        })
        .await
}

async fn find_user(state: &AppState, username: &str) -> ApiResult<User> {
    let name = normalize_username(username).map_err(|m| ApiError::bad("invalid_username", m))?;
    Ok(state
        .store
        .user_by_name(&name)
        .await?
        .ok_or_else(|| ApiError::NotFoundSaying(format!("Nobody is called {name}.")))?
        .user)
}

pub async fn history(
    state: &AppState,
    me: &User,
    room_id: &RoomId,
    before: Option<&MessageId>,
    limit: Option<u32>,
) -> ApiResult<MessageList> {
    let access = visible_room(state, me, room_id).await?;
    // Public rooms can be read before joining (to decide whether to join); private ones cannot.
    if access.room.private && !access.room.is_member {
        return Err(ApiError::Forbidden("Join the room first.".into()));
    }
    let limit = super::page_limit(limit)?;
    // The message the page comes before: its seq, and its event id (where the page's stretch
    // of the log ends).
    let before = match before {
        None => None,
        Some(id) => {
            let id: MessageId = parse_id(id, "message")?;
            Some(
                state
                    .store
                    .message_position(&access.room.id, &id)
                    .await?
                    .ok_or(ApiError::NotFound("message"))?,
            )
        }
    };
    let reader = Some(me.id.as_str());
    let messages: Vec<Message> = state
        .store
        .messages(&access.room.id, before.map(|(seq, _)| seq), limit)
        .await?
        .into_iter()
        .map(|m| m.seen_by(reader))
        .collect();
    // The page covers the log from its first message (from the room's start when no older page
    // exists) up to the message it was asked to come before (the newest event for the newest).
    let from = if messages.len() as u32 == limit {
        messages.first().map_or(0, |m| m.event_id)
    } else {
        0
    };
    let until = before.map(|(_, event_id)| event_id);
    let member_changes = member_changes(state, &access.room.id, from, until).await?;
    Ok(MessageList {
        messages,
        member_changes,
    })
}

/// Most joins and leaves one page of history carries: a room where people come and go by the
/// thousand shows the first of them.
const MEMBER_CHANGES_PER_PAGE: u32 = 500;

/// The joins and leaves of a room with event ids in (`after`, `before`).
async fn member_changes(
    state: &AppState,
    room_id: &RoomId,
    after: i64,
    before: Option<i64>,
) -> ApiResult<Vec<MemberChange>> {
    let events = state
        .store
        .membership_events(room_id.as_str(), after, before, MEMBER_CHANGES_PER_PAGE)
        .await?;
    Ok(events
        .into_iter()
        .filter_map(|e| {
            let Ok(EventData::Membership(m)) = EventData::from_raw(&e.kind, &e.data) else {
                return None;
            };
            Some(MemberChange {
                event_id: e.id,
                ts: e.ts,
                user: m.user?,
                change: m.change,
            })
        })
        .collect())
}

/// A page of history centred on one message (opening a search result): up to `limit / 2`
/// messages before it, then it and the ones after it (`limit` in all when there are that many
/// from it on), oldest first. Not with `before`.
pub async fn history_around(
    state: &AppState,
    me: &User,
    room_id: &RoomId,
    around: &MessageId,
    limit: Option<u32>,
) -> ApiResult<MessageList> {
    let access = visible_room(state, me, room_id).await?;
    if access.room.private && !access.room.is_member {
        return Err(ApiError::Forbidden("Join the room first.".into()));
    }
    let limit = super::page_limit(limit)?;
    let id: MessageId = parse_id(around, "message")?;
    let (seq, _) = state
        .store
        .message_position(&access.room.id, &id)
        .await?
        .ok_or(ApiError::NotFound("message"))?;
    let before = limit / 2;
    let mut page = if before > 0 {
        state
            .store
            .messages(&access.room.id, Some(seq), before)
            .await?
    } else {
        Vec::new()
    };
    page.extend(
        state
            .store
            // Fewer before it (near the start): more after, so the page is full if it can be.
            .messages_after(&access.room.id, seq - 1, limit - page.len() as u32)
            .await?,
    );
    let reader = Some(me.id.as_str());
    let messages: Vec<Message> = page.into_iter().map(|m| m.seen_by(reader)).collect();
    // The stretch of the log from the first message (the room's start when it is the first)
    // through the last.
    let from = match messages.first() {
        Some(m) if m.seq > 1 => m.event_id,
        _ => 0,
    };
    let until = messages.last().map(|m| m.event_id + 1);
    let member_changes = member_changes(state, &access.room.id, from, until).await?;
    Ok(MessageList {
        messages,
        member_changes,
    })
}

/// Sends a message; returns it and whether it is new (false: a retry of the same client id).
/// Over HTTP or the WebSocket alike: 429 `rate_limited` past `--sends-per-user-per-minute`.
pub async fn send(
    state: &AppState,
    me: &User,
    room_id: &RoomId,
    body: &str,
    client_id: &str,
) -> ApiResult<(Message, bool)> {
    send_reply(state, me, room_id, body, client_id, None, &[]).await
}

/// [`send`], answering the message `reply_to` of the same room when given (404 when the room
/// has no such message, 400 `invalid_reply_to` when it was deleted): its `reply_count` moves
/// and it gets a `message_updated` event, in the send's transaction. `attachments` are upload
/// ids of `me`'s (at most [`protocol::MAX_ATTACHMENTS`], none carried by another message: 400
/// `invalid_attachments`); with any, the body may be empty.
pub async fn send_reply(
    state: &AppState,
    me: &User,
    room_id: &RoomId,
    body: &str,
    client_id: &str,
    reply_to: Option<&MessageId>,
    attachments: &[String],
) -> ApiResult<(Message, bool)> {
    super::per_minute(
        state,
        "send",
        &me.id,
        state.config.sends_per_user_per_minute,
    )?;
    let body = match check_body(body) {
        Err(BodyError::Empty) if !attachments.is_empty() => Ok(""),
        checked => checked,
    };
    let body = body.map_err(|e| match e {
        BodyError::Empty => ApiError::bad("invalid_body", "A message cannot be empty."),
        BodyError::TooLong => ApiError::TooLarge("Messages are at most 4000 characters.".into()),
        BodyError::Control => ApiError::bad(
            "invalid_body",
            "Messages cannot contain control characters other than new lines and tabs.",
        ),
    })?;
    let client_id = client_id.trim();
    if client_id.is_empty()
        || client_id.len() > MAX_CLIENT_ID_LEN
        || client_id.chars().any(char::is_control)
    {
        return Err(ApiError::bad(
            "invalid_client_id",
            "client_id must be 1 to 64 printable characters.",
        ));
    }
    let attachments = super::uploads::check_attachments(state, me, attachments).await?;
    let room = sendable_room(state, me, room_id).await?;
    let reply_to = match reply_to {
        Some(root) => Some(reply_root(state, &room, root).await?),
        None => None,
    };
    let (id, now) = (MessageId::from(new_id()), now_ms());
    let notify = notifications::for_message(state, me, &room, &id, body, now).await?;
    let msg = NewMessage {
        id,
        room_id: room.id,
        author: me.clone(),
        body: body.to_string(),
        client_id: client_id.to_string(),
        now,
        notify,
        reply_to,
        attachments,
    };
    state.writer.send(msg).await
}

pub async fn mark_read(
    state: &AppState,
    me: &User,
    room_id: &RoomId,
    message_id: &MessageId,
) -> ApiResult<()> {
    let room = member_room(state, me, room_id).await?;
    let message_id: MessageId = parse_id(message_id, "message")?;
    let (seq, _) = state
        .store
        .message_position(&room.id, &message_id)
        .await?
        .ok_or(ApiError::NotFound("message"))?;
    state.store.mark_read(&room.id, &me.id, seq).await?;
    notifications::read_room(state, me, &room.id).await
}

/// Tells the room's members that `me` is typing: an ephemeral event, never stored. 429
/// `rate_limited` past `--typing-per-user-per-minute` (a WebSocket drops such a frame unanswered).
pub async fn typing(state: &AppState, me: &User, room_id: &RoomId) -> ApiResult<()> {
    super::per_minute(
        state,
        "typing",
        &me.id,
        state.config.typing_per_user_per_minute,
    )?;
    let room = member_room(state, me, room_id).await?;
    let typing = EventData::Typing(Typing {
        room_id: room.id.clone(),
        user: me.author(),
    });
    state.hub.publish_ephemeral(LiveEvent::ephemeral(
        Feed::Chat,
        &typing,
        Some(room.id.into_string()),
        None,
        now_ms(),
    ));
    Ok(())
}

/// `me` says they are `idle` or `online` again (their client noticed, or stopped noticing, no
/// input for a while or a hidden tab); offline is having no live connection, never said. 400
/// `invalid_status` for any other word, then 429 `rate_limited` past
/// `--presence-per-user-per-minute` (a WebSocket drops such a frame unanswered).
pub fn set_status(state: &AppState, me: &User, status: &str) -> ApiResult<()> {
    let idle = match status {
        "idle" => true,
        "online" => false,
        _ => return Err(ApiError::bad("invalid_status", "status is online or idle")),
    };
    super::per_minute(
        state,
        "presence",
        &me.id,
        state.config.presence_per_user_per_minute,
    )?;
    state
        .presence
        .set_idle(&state.hub, &me.id, &me.username, idle);
    Ok(())
}

/// The message `message_id` of `room`, as it now is (404 when the room has no such message).
pub async fn find_message(
    state: &AppState,
    room: &Room,
    message_id: &MessageId,
) -> ApiResult<Message> {
    let id: MessageId = parse_id(message_id, "message")?;
    state
        .store
        .message(&room.id, &id)
        .await?
        .ok_or(ApiError::NotFound("message"))
}

/// The message a new message answers, checked before the send: in the same room (404) and not
/// deleted (400 `invalid_reply_to`). The store checks again when it counts the reply.
async fn reply_root(state: &AppState, room: &Room, reply_to: &MessageId) -> ApiResult<MessageId> {
    let root = find_message(state, room, reply_to).await?;
    if root.deleted {
        return Err(ApiError::bad(
            "invalid_reply_to",
            "That message was deleted; it cannot be answered.",
        ));
    }
    Ok(root.id)
}
