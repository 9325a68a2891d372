//! The resources of the API: people, rooms, messages, notifications, jobs, and their lists.

use crate::ids::{JobId, MessageId, NotificationId, RoomId, UserId};
use crate::settings::TransportSettings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub is_admin: bool,
    /// The name shown instead of the username, when set (null when unset).
    #[serde(default)]
    pub display_name: Option<String>,
}

impl User {
    /// This user as an author (of a message, a typing signal, a presence change).
    pub fn author(&self) -> Author {
        Author {
            id: self.id.clone(),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
        }
    }

    /// The name to show for this user: the display name where set, else the username.
    pub fn shown_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.username)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub id: UserId,
    pub username: String,
    /// The author's display name, when set. Left out of the JSON when unset, so the payloads
    /// that carried an author before (messages, typing, presence) keep their exact bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl Author {
    /// The name to show: the display name where set, else the username.
    pub fn shown_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.username)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: RoomId,
    pub name: String,
    pub private: bool,
    pub is_member: bool,
    pub unread: i64,
    /// For a direct-message room: the other person. Absent for ordinary rooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_with: Option<Author>,
    /// What the room is about, one line ("" when unset).
    #[serde(default)]
    pub topic: String,
    /// How many people are members.
    #[serde(default)]
    pub member_count: i64,
    /// My read position: the id of the last message I have read, or null (none read, or not a
    /// member).
    #[serde(default)]
    pub last_read: Option<String>,
    /// The id of the person who created the room (null only in payloads from older servers).
    #[serde(default)]
    pub created_by: Option<String>,
}

/// One member of a room, as `GET /api/rooms/{id}/members` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: Author,
    /// When they joined (Unix ms).
    pub joined_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberList {
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub room_id: RoomId,
    pub author: Author,
    pub body: String,
    pub client_id: String,
    pub created_at: i64,
    /// Position of the message in its room (1, 2, 3, …); gap-free per room.
    pub seq: i64,
    /// The global event id that published this message (the live cursor).
    #[serde(default)]
    pub event_id: i64,
    /// When the body was last edited (ms), `None` if never.
    #[serde(default)]
    pub edited_at: Option<i64>,
    /// A tombstone: the message was deleted (its body is "" and it has no reactions).
    #[serde(default)]
    pub deleted: bool,
    /// The message this one answers (in the same room).
    #[serde(default)]
    pub reply_to: Option<ReplyRef>,
    /// How many messages answer this one (its thread's length).
    #[serde(default)]
    pub reply_count: i64,
    /// Reactions, one entry per emoji, in the order they were first used.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    /// The files the message carries (none once it is deleted).
    #[serde(default)]
    pub attachments: Vec<Upload>,
}

/// A file someone uploaded (`POST /api/uploads`), as a message carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub id: String,
    /// The file's name as its uploader gave it.
    pub name: String,
    /// In bytes.
    pub size: i64,
    /// The stored type: for images, what their bytes are, whatever the upload claimed.
    pub content_type: String,
    /// Where to fetch it (`/api/uploads/{id}`).
    pub url: String,
    /// For images: the size in pixels (after EXIF orientation), and a thumbnail at
    /// `{url}/thumbnail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<i64>,
}

impl Upload {
    /// Whether browsers may show it inline (and it has a thumbnail): png, jpeg, gif, webp.
    pub fn is_image(&self) -> bool {
        is_inline_image(&self.content_type)
    }
}

/// The content types served inline: images a browser shows without running anything.
pub fn is_inline_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

impl Message {
    /// The message as `reader` sees it: `mine` set on each reaction `reader` is among, and
    /// each list of who reacted cut to [`REACTION_USERS_SHOWN`] (the count still tells all).
    /// `None` is the one payload of an event, read by everyone: `mine` stays false there.
    pub fn seen_by(mut self, reader: Option<&str>) -> Message {
        for r in &mut self.reactions {
            r.mine = reader.is_some_and(|me| r.users.iter().any(|u| u.id == me));
            r.users.truncate(REACTION_USERS_SHOWN);
        }
        self
    }
}

/// How many of the people who reacted with one emoji a message lists (for the hover).
pub const REACTION_USERS_SHOWN: usize = 10;

/// What a reply shows of the message it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyRef {
    pub id: MessageId,
    pub author: Author,
    /// The start of its body ("" once it is deleted).
    pub excerpt: String,
    /// Whether it was deleted since.
    #[serde(default)]
    pub deleted: bool,
}

/// One emoji on a message: how many reacted with it, whether I did, and who (the first
/// [`REACTION_USERS_SHOWN`], in the order they reacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    /// As the reader sees it: in REST answers, whether I reacted with it. In an event's
    /// payload (one for every reader) always false: compute it from `users` and from
    /// `reaction` events, which name who reacted.
    #[serde(default)]
    pub mine: bool,
    #[serde(default)]
    pub users: Vec<Author>,
}

/// `GET /api/rooms/{room}/messages/{id}/thread`: the root and its replies, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Thread {
    pub root: Message,
    pub replies: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: NotificationId,
    /// `mention`, `dm`, `invite`, `job_finished`, `job_failed`, `announcement`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// Where a click goes: `/rooms/{id}`, `/rooms/{id}#m-{message}`, `/jobs#{id}`.
    pub link: String,
    pub created_at: i64,
    pub read: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationList {
    pub notifications: Vec<Notification>,
    pub unread: i64,
}

/// A background job's snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    /// `export_room` or `demo`.
    pub kind: String,
    /// `queued`, `running`, `done`, `failed`, `cancelled`.
    pub state: String,
    /// 0.0–1.0.
    pub progress: f64,
    pub done: i64,
    pub total: i64,
    pub message: String,
    /// Estimated time left, once the job has run long enough to tell.
    pub eta_ms: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// For an export that is done: where to download it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_url: Option<String>,
    /// The job's room (exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<RoomId>,
    /// The room's name when the job started (exports), so the job can say what it exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_name: Option<String>,
}

impl Job {
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "done" | "failed" | "cancelled")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobList {
    pub jobs: Vec<Job>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomList {
    pub rooms: Vec<Room>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageList {
    pub messages: Vec<Message>,
    /// Who joined and left in the stretch of the room's log this page covers (from its first
    /// message, or the room's start when no older page exists, up to the next page or the
    /// newest event), oldest first: the "bob joined" lines between the messages.
    #[serde(default)]
    pub member_changes: Vec<MemberChange>,
}

/// How a person's membership of a room changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipChange {
    Joined,
    Left,
    Invited,
}

impl MembershipChange {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipChange::Joined => "joined",
            MembershipChange::Left => "left",
            MembershipChange::Invited => "invited",
        }
    }
}

/// A join or leave as a page of history carries it: the event that told it, when, who, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberChange {
    pub event_id: i64,
    pub ts: i64,
    pub user: Author,
    pub change: MembershipChange,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<User>,
}

/// A user as the admin list shows them: with their transport settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminUserView {
    #[serde(flatten)]
    pub user: User,
    pub transports: TransportSettings,
}
