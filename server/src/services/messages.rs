//! A message's life after it is sent: edits (author only), deletion to a tombstone (author or
//! an admin), reactions, and threads. Each change is one transaction with its event, published
//! through the hub like a send; the store re-checks in that transaction what a change depends
//! on (a message deleted meanwhile stays deleted).

use super::chat::{find_message as find, member_room, visible_room};
use super::{notifications, parse_id, per_minute};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use protocol::{
    check_body, check_emoji, BodyError, Message, MessageId, RoomId, Thread, User,
    MAX_REACTION_EMOJI, MAX_THREAD_REPLIES,
};

/// Replaces the body of one of my messages; returns it as I now see it. 400 for a body a send
/// would refuse (an edit over 4000 characters is `too_long`), 403 when it is not mine, 409
/// `message_deleted` for a tombstone. Newly mentioned members are notified; those the old body
/// already mentioned are not told again. An unchanged body changes nothing.
pub async fn edit(
    state: &AppState,
    me: &User,
    room_id: &RoomId,
    message_id: &MessageId,
    body: &str,
) -> ApiResult<Message> {
    per_minute(
        state,
        "edit",
        &me.id,
        state.config.edits_per_user_per_minute,
    )?;
    let body = check_body(body).map_err(|e| match e {
        BodyError::Empty => ApiError::bad("invalid_body", "A message cannot be empty."),
        BodyError::TooLong => ApiError::bad("too_long", "Messages are at most 4000 characters."),
        BodyError::Control => ApiError::bad(
            "invalid_body",
            "Messages cannot contain control characters other than new lines and tabs.",
        ),
    })?;
    let room = member_room(state, me, room_id).await?;
    let old = find(state, &room, message_id).await?;
    if old.author.id != me.id {
        return Err(ApiError::Forbidden(
            "Only its author can edit a message.".into(),
        ));
    }
    if old.deleted {
        return Err(ApiError::Conflict(
            "message_deleted",
            "This message was deleted.".into(),
        ));
    }
    if old.body == body {
        return Ok(old.seen_by(Some(me.id.as_str())));
    }
    let now = now_ms();
    let notify = notifications::for_edit(state, me, &room, &old.id, &old.body, body, now).await?;
    let (store, id, body) = (state.store.clone(), old.id, body.to_string());
    let message: Message = state
        .hub
        .commit(async move {
            Ok::<_, ApiError>(
                store
                    .edit_message(&room.id, &id, &body, now, notify)
                    .await?,
            )
        })
        .await?;
    Ok(message.seen_by(Some(me.id.as_str())))
}

/// Deletes a message: it stays in history as a tombstone (`deleted`, body "", no reactions).
/// Its author may, and an administrator (in any room they can see); others get 403. Deleting a
/// tombstone again changes nothing.
pub async fn delete(
    state: &AppState,
    me: &User,
    room_id: &RoomId,
    message_id: &MessageId,
) -> ApiResult<()> {
    per_minute(
        state,
        "edit",
        &me.id,
        state.config.edits_per_user_per_minute,
    )?;
    let room = if me.is_admin {
        let access = visible_room(state, me, room_id).await?;
        if access.room.private && !access.room.is_member {
            return Err(ApiError::NotFound("room"));
        }
        access.room
    } else {
        member_room(state, me, room_id).await?
    };
    let old = find(state, &room, message_id).await?;
    if old.author.id != me.id && !me.is_admin {
        return Err(ApiError::Forbidden(
            "Only its author or an administrator can delete a message.".into(),
        ));
    }
    if old.deleted {
        return Ok(());
    }
    let (store, id, now) = (state.store.clone(), old.id, now_ms());
    state
        .hub
        .commit(async move { Ok(((), store.delete_message(&room.id, &id, now).await?.1)) })
        .await
}

/// Adds (`add`) or removes my reaction `emoji` on a message of a room I am a member of.
/// Idempotent: adding twice or removing what is not there changes nothing. 400 `invalid_emoji`
/// unless it is one emoji (see [`check_emoji`]); 409 `too_many_reactions` for a new emoji on a
/// message that already has [`MAX_REACTION_EMOJI`] different ones; 409 `message_deleted`;
/// 429 past `--reactions-per-user-per-minute`.
pub async fn react(
    state: &AppState,
    me: &User,
    room_id: &RoomId,
    message_id: &MessageId,
    emoji: &str,
    add: bool,
) -> ApiResult<()> {
    let emoji = check_emoji(emoji).map_err(|rule| ApiError::bad("invalid_emoji", rule))?;
    per_minute(
        state,
        "react",
        &me.id,
        state.config.reactions_per_user_per_minute,
    )?;
    let room = member_room(state, me, room_id).await?;
    let id: MessageId = parse_id(message_id, "message")?;
    let (store, me, emoji, now) = (state.store.clone(), me.clone(), emoji.to_string(), now_ms());
    state
        .hub
        .commit(async move {
            let events = store
                .react(&room.id, &id, &me, &emoji, add, MAX_REACTION_EMOJI, now)
                .await?;
            Ok(((), events))
        })
        .await
}

/// A thread: its root and the replies to it, oldest first (at most [`MAX_THREAD_REPLIES`]).
/// Readable by whoever may read the room's history.
pub async fn thread(
    state: &AppState,
    me: &User,
    room_id: &RoomId,
    message_id: &MessageId,
) -> ApiResult<Thread> {
    let access = visible_room(state, me, room_id).await?;
    // As history: public rooms can be read before joining, private ones cannot.
    if access.room.private && !access.room.is_member {
        return Err(ApiError::Forbidden("Join the room first.".into()));
    }
    let root = find(state, &access.room, message_id).await?;
    let replies = state
        .store
        .replies(&access.room.id, &root.id, MAX_THREAD_REPLIES)
        .await?;
    let reader = Some(me.id.as_str());
    Ok(Thread {
        root: root.seen_by(reader),
        replies: replies.into_iter().map(|m| m.seen_by(reader)).collect(),
    })
}
