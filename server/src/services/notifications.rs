//! Notifications: who hears about what (mentions, DMs, invites, jobs, announcements — never
//! your own actions), reading and marking them. Each is stored, then delivered on the
//! `notifications` feed over whichever transport its user has.

use super::parse_id;
use crate::clock::{new_id, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{NewNotification, ReadSelection};
use protocol::{
    mentions, Job, MessageId, NotificationId, NotificationList, Room, RoomId, User, UserId,
};

/// Longest excerpt of a message shown in a notification.
const EXCERPT_CHARS: usize = 140;
pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_ANNOUNCEMENT_CHARS: usize = 2000;

fn excerpt(body: &str) -> String {
    let mut out: String = body.chars().take(EXCERPT_CHARS).collect();
    if body.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

fn room_title(room: &Room) -> String {
    match &room.dm_with {
        Some(_) => "a direct message".into(),
        None => format!("#{}", room.name),
    }
}

/// Notifications caused by a message: its DM partner (kind `dm`), or the members it mentions
/// (kind `mention`). One per person, never the author.
pub async fn for_message(
    state: &AppState,
    author: &User,
    room: &Room,
    message_id: &MessageId,
    body: &str,
    now: i64,
) -> ApiResult<Vec<NewNotification>> {
    let link = format!("/rooms/{}#m-{message_id}", room.id);
    if let Some(other) = &room.dm_with {
        return Ok(vec![NewNotification {
            id: new_id().into(),
            user_id: other.id.clone(),
            kind: "dm".into(),
            title: format!("{} sent you a message", author.username),
            body: excerpt(body),
            link,
            now,
        }]);
    }
    let names = mentions(body);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mentioned = state.store.members_named(&room.id, &names).await?;
    Ok(mentioned
        .into_iter()
        .filter(|u| u.id != author.id)
        .map(|u| NewNotification {
            id: new_id().into(),
            user_id: u.id,
            kind: "mention".into(),
            title: format!("{} mentioned you in {}", author.username, room_title(room)),
            body: excerpt(body),
            link: link.clone(),
            now,
        })
        .collect())
}

/// Notifications caused by an edit: the members the new body mentions and the old one did not
/// (those were told already). Never the author; none in a DM (the other person was told).
pub async fn for_edit(
    state: &AppState,
    author: &User,
    room: &Room,
    message_id: &str,
    old_body: &str,
    new_body: &str,
    now: i64,
) -> ApiResult<Vec<NewNotification>> {
    if room.dm_with.is_some() {
        return Ok(Vec::new());
    }
    let before = mentions(old_body);
    let names: Vec<String> = mentions(new_body)
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let link = format!("/rooms/{}#m-{message_id}", room.id);
    let mentioned = state.store.members_named(&room.id, &names).await?;
    Ok(mentioned
        .into_iter()
        .filter(|u| u.id != author.id)
        .map(|u| NewNotification {
            id: new_id().into(),
            user_id: u.id,
            kind: "mention".into(),
            title: format!("{} mentioned you in {}", author.username, room_title(room)),
            body: excerpt(new_body),
            link: link.clone(),
            now,
        })
        .collect())
}

pub fn for_invite(by: &User, to: &User, room: &Room, now: i64) -> NewNotification {
    NewNotification {
        id: new_id().into(),
        user_id: to.id.clone(),
        kind: "invite".into(),
        title: format!("{} invited you to {}", by.username, room_title(room)),
        body: "Open the room to join it.".into(),
        link: format!("/rooms/{}", room.id),
        now,
    }
}

/// A finished or failed job tells its owner.
pub fn for_job(user_id: &UserId, job: &Job, now: i64) -> Option<NewNotification> {
    let what = match (job.kind.as_str(), &job.room_name) {
        ("export_room", Some(room)) => format!("export of #{room}"),
        (kind, _) => format!("{} job", job_label(kind)),
    };
    let (kind, title) = match job.state.as_str() {
        "done" => ("job_finished", format!("Your {what} finished")),
        "failed" => ("job_failed", format!("Your {what} failed")),
        _ => return None,
    };
    Some(NewNotification {
        id: new_id().into(),
        user_id: user_id.clone(),
        kind: kind.into(),
        title,
        body: job.message.clone(),
        link: format!("/jobs#{}", job.id),
        now,
    })
}

fn job_label(kind: &str) -> &str {
    match kind {
        "export_room" => "room export",
        "demo" => "demo",
        other => other,
    }
}

/// An admin's announcement: a notification for every user but its author.
pub async fn announce(state: &AppState, admin: &User, title: &str, body: &str) -> ApiResult<usize> {
    let title = title.trim();
    let body = body.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::bad(
            "invalid_title",
            "A title is 1 to 120 characters.",
        ));
    }
    if body.chars().count() > MAX_ANNOUNCEMENT_CHARS {
        return Err(ApiError::TooLarge(
            "Announcements are at most 2000 characters.".into(),
        ));
    }
    protocol::check_name(title).map_err(|e| ApiError::bad("invalid_title", e.message("Titles")))?;
    // An empty body is allowed (the title says it all); what there is must be text.
    if !body.is_empty() {
        protocol::check_text(body)
            .map_err(|e| ApiError::bad("invalid_body", e.message("Announcements")))?;
    }
    let now = now_ms();
    let items: Vec<NewNotification> = state
        .store
        .all_user_ids()
        .await?
        .into_iter()
        .filter(|id| *id != admin.id)
        .map(|user_id| NewNotification {
            id: new_id().into(),
            user_id: user_id.into(),
            kind: "announcement".into(),
            title: title.to_string(),
            body: body.to_string(),
            link: "/".into(),
            now,
        })
        .collect();
    let count = items.len();
    let store = state.store.clone();
    state
        .hub
        .commit::<_, ApiError, _>(async move { Ok(((), store.notify(items).await?)) })
        .await?;
    let detail = serde_json::json!({ "title": title, "recipients": count });
    state
        .store
        .audit(admin, "announcement", &detail, now)
        .await?;
    tracing::info!(admin = %admin.username, count, "announcement sent");
    Ok(count)
}

pub async fn list(
    state: &AppState,
    me: &User,
    unread_only: bool,
    before: Option<&NotificationId>,
    limit: Option<u32>,
) -> ApiResult<NotificationList> {
    let limit = super::page_limit(limit)?;
    let before: Option<NotificationId> = before.map(|b| parse_id(b, "notification")).transpose()?;
    let (notifications, unread) = state
        .store
        .notifications(&me.id, unread_only, before.as_deref(), limit)
        .await?
        .ok_or(ApiError::NotFound("notification"))?;
    Ok(NotificationList {
        notifications,
        unread,
    })
}

/// Kinds that stand for unread messages of a room: reading the room reads them, and reading
/// them (all at once) reads their rooms. One truth for unread: the room's read position.
const ROOM_KINDS: [&str; 2] = ["mention", "dm"];
/// At most this many unread notifications are matched to rooms at once (newest first).
const ROOM_NOTES_SCAN: u32 = 500;

/// The room a message's notification points at: its link is `/rooms/{id}` or `/rooms/{id}#m-…`
/// (as [`for_message`] writes it).
pub fn room_of(link: &str) -> Option<&str> {
    let rest = link.strip_prefix("/rooms/")?;
    let id = rest.split(['#', '/', '?']).next()?;
    (!id.is_empty()).then_some(id)
}

/// My unread mention and DM notifications, as (notification id, room id).
async fn unread_room_notes(
    state: &AppState,
    me: &User,
) -> ApiResult<Vec<(NotificationId, RoomId)>> {
    let (notes, _) = state
        .store
        .notifications(&me.id, true, None, ROOM_NOTES_SCAN)
        .await?
        .unwrap_or_default();
    Ok(notes
        .into_iter()
        .filter(|n| ROOM_KINDS.contains(&n.kind.as_str()))
        .filter_map(|n| Some((n.id.clone(), RoomId::from(room_of(&n.link)?))))
        .collect())
}

/// I read `room_id`: its mention and DM notifications are read too (their `read` event tells
/// my other tabs). Nothing is written when there are none.
pub async fn read_room(state: &AppState, me: &User, room_id: &RoomId) -> ApiResult<()> {
    let ids: Vec<NotificationId> = unread_room_notes(state, me)
        .await?
        .into_iter()
        .filter(|(_, room)| room == room_id)
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    mark_read(state, me, Some(ids), false).await
}

/// Marks some (or all) of my notifications read. An id that is not mine: 404, nothing changes.
/// All of them read also reads the rooms their mentions and DMs are in, so the room badges
/// agree with the bell.
pub async fn mark_read(
    state: &AppState,
    me: &User,
    ids: Option<Vec<NotificationId>>,
    all: bool,
) -> ApiResult<()> {
    let rooms: std::collections::BTreeSet<RoomId> = if all {
        unread_room_notes(state, me)
            .await?
            .into_iter()
            .map(|(_, room)| room)
            .collect()
    } else {
        Default::default()
    };
    for room in rooms {
        // Up to the room's newest message; a room I left is not mine to mark (no change).
        if let Some(last) = state.store.messages(&room, None, 1).await?.pop() {
            state.store.mark_read(&room, &me.id, last.seq).await?;
        }
    }
    let which = match (ids, all) {
        (_, true) => ReadSelection::All,
        (Some(ids), false) if !ids.is_empty() && ids.len() <= 500 => ReadSelection::Ids(
            ids.iter()
                .map(|i| parse_id(i, "notification"))
                .collect::<ApiResult<_>>()?,
        ),
        _ => {
            return Err(ApiError::bad(
                "invalid_request",
                "Send {\"ids\": [1 to 500 ids]} or {\"all\": true}.",
            ))
        }
    };
    let (store, user_id) = (state.store.clone(), me.id.clone());
    state
        .hub
        .commit::<_, ApiError, _>(async move {
            match store
                .mark_notifications_read(&user_id, which, now_ms())
                .await?
            {
                Some(events) => Ok((true, events)),
                None => Ok((false, Vec::new())),
            }
        })
        .await?
        .then_some(())
        .ok_or(ApiError::NotFound("notification"))
}

#[cfg(test)]
mod tests {
    use super::room_of;

    #[test]
    fn a_notification_link_names_its_room() {
        assert_eq!(room_of("/rooms/r1#m-m1"), Some("r1"));
        assert_eq!(room_of("/rooms/r1"), Some("r1"));
        assert_eq!(room_of("/rooms/"), None);
        assert_eq!(room_of("/jobs#j1"), None);
        assert_eq!(room_of("/"), None);
    }
}
