//! Request bodies of the HTTP API.

use crate::ids::{MessageId, NotificationId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRoom {
    pub name: String,
    #[serde(default)]
    pub private: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsernameBody {
    pub username: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendMessage {
    pub body: String,
    pub client_id: String,
    /// The id of the message this one answers (same room, not deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<MessageId>,
    /// Upload ids of mine, at most [`MAX_ATTACHMENTS`](crate::MAX_ATTACHMENTS), each not yet
    /// carried by another message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
}

/// `PATCH /api/rooms/{room}/messages/{id}`: the new body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadPosition {
    pub message_id: MessageId,
}

/// `GET /api/rooms/{id}/messages?before=&limit=`: a page of history, older than `before`;
/// or `?around=&limit=`: the message `around` with up to `limit / 2` messages before it and the
/// rest after it (oldest first either way).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistoryQuery {
    pub before: Option<MessageId>,
    pub around: Option<MessageId>,
    pub limit: Option<u32>,
}

/// `GET /api/notifications?unread_only=&before=&limit=`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NotificationQuery {
    pub unread_only: Option<bool>,
    pub before: Option<NotificationId>,
    pub limit: Option<u32>,
}

/// `POST /api/notifications/read`: these ids, or all of mine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    pub ids: Option<Vec<NotificationId>>,
    #[serde(default)]
    pub all: bool,
}

/// `POST /api/presence`: for clients without a WebSocket, `online` or `idle` (checked by the
/// server, which says what it accepts).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceUpdate {
    pub status: String,
}

/// `POST /api/admin/announcements`: a notification to everyone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announcement {
    pub title: String,
    #[serde(default)]
    pub body: String,
}

/// `PUT /api/admin/users/{id}`: make someone an administrator, or not.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUserUpdate {
    pub is_admin: bool,
}

/// `GET /api/admin/audit?limit=`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditQuery {
    pub limit: Option<u32>,
}

/// `PATCH /api/rooms/{id}`: a new name, a new topic, or both (a field left out stays as it is;
/// an empty topic clears it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// `PATCH /api/me`: my display name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub display_name: String,
}

/// `POST /api/me/password`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}
