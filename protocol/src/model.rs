//! The resources of the API: people, rooms, messages, notifications, jobs, and their lists.

use crate::ids::{JobId, MessageId, NotificationId, RoomId, UserId};
use crate::settings::TransportSettings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub id: UserId,
    pub username: String,
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
