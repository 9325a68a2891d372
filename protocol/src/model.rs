//! The resources of the API: people, rooms, messages, notifications, jobs, and their lists.

use crate::settings::TransportSettings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub id: String,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: String,
    pub name: String,
    pub private: bool,
    pub is_member: bool,
    pub unread: i64,
    /// For a direct-message room: the other person. Absent for ordinary rooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_with: Option<Author>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub room_id: String,
    pub author: Author,
    pub body: String,
    pub client_id: String,
    pub created_at: i64,
    /// Position of the message in its room (1, 2, 3, …); gap-free per room.
    pub seq: i64,
    /// The global event id that published this message (the live cursor).
    #[serde(default)]
    pub event_id: i64,
    /// When the body was last edited (ms), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// A tombstone: the message was deleted; its body is empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The message this one answers, with a short excerpt of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyRef>,
    /// How many messages answer this one (its thread).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reply_count: i64,
    /// Reactions, one entry per emoji, as the reader sees them (`mine`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionCount>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// What a reply points at: the original's id, author and the start of its body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyRef {
    pub id: String,
    pub author: Author,
    #[serde(default)]
    pub excerpt: String,
}

/// One emoji's reactions on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionCount {
    pub emoji: String,
    pub count: i64,
    /// Whether the reader is among those who reacted.
    #[serde(default)]
    pub mine: bool,
    /// Who reacted, when the server says (for the tooltip).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
}

/// `GET /api/rooms/{id}/messages/{id}/thread`: the root and its replies, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Thread {
    pub root: Message,
    pub replies: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
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
    pub id: String,
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
    pub room_id: Option<String>,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageList {
    pub messages: Vec<Message>,
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
