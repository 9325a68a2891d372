//! Storage: the one seam between the services and a database. The services see only the
//! [`Store`] trait; `sql.rs` implements it once for both databases, with what differs behind
//! its `Dialect` trait in `sqlite.rs` (one server, one file) and `postgres.rs` (one or several
//! servers on a shared database); `events.rs` builds the events every change appends. [`Db`]
//! picks the database by the URL's scheme. Rules
//! (who may do what) live in the services; the store keeps each change and the events it
//! produces in one transaction.

pub mod events;
pub mod postgres;
pub mod sql;
pub mod sqlite;

use async_trait::async_trait;
use protocol::{
    Feed, FeedOverrides, FeedSet, FeedTransports, JobId, Member, Message, MessageId, Notification,
    NotificationId, Room, RoomId, Switches, Transport, User, UserId,
};

/// A committed event as the log holds it. `data` is the event's JSON payload, serialised once.
/// (Serialisable: the cluster's backplane carries it as it is.)
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredEvent {
    pub id: i64,
    pub feed: Feed,
    pub kind: String,
    /// Visible to the members of this room (when `user_id` is not set).
    pub room_id: Option<String>,
    /// Visible to this user only.
    pub user_id: Option<String>,
    pub data: String,
    pub ts: i64,
}

/// An event row as both databases return it.
#[derive(Debug, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub feed: String,
    pub kind: String,
    pub room_id: Option<String>,
    pub user_id: Option<String>,
    pub data: String,
    pub ts: i64,
}

impl EventRow {
    pub fn event(self) -> StoreResult<StoredEvent> {
        let feed = <Feed as std::str::FromStr>::from_str(&self.feed)
            .map_err(|e| StoreError::Other(e.into()))?;
        Ok(StoredEvent {
            id: self.id,
            feed,
            kind: self.kind,
            room_id: self.room_id,
            user_id: self.user_id,
            data: self.data,
            ts: self.ts,
        })
    }
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

/// A change of a room's name or topic (checked by the service); `None` keeps what it is.
#[derive(Debug, Clone, Default)]
pub struct RoomChange {
    pub name: Option<String>,
    pub topic: Option<String>,
}

/// What a user may see of one room.
#[derive(Debug, Clone)]
pub struct RoomAccess {
    pub room: Room,
    pub invited: bool,
}

/// A full-text search as the store runs it (the service has parsed and checked the query).
#[derive(Debug, Clone, Copy)]
pub struct Search<'a> {
    /// Whose rooms are searched (only rooms this person is a member of).
    pub user_id: &'a str,
    pub terms: &'a [protocol::Term],
    pub room_id: Option<&'a str>,
    pub author_id: Option<&'a str>,
    /// Only messages older than this one (paging).
    pub before: Option<&'a str>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub room_id: RoomId,
    pub author: User,
    pub body: String,
    pub client_id: String,
    pub now: i64,
    /// Notifications the message causes (mentions, DMs), stored in its transaction.
    pub notify: Vec<NewNotification>,
    /// The message this one answers (same room): its reply count moves in the same
    /// transaction, with a `message_updated` event for it.
    pub reply_to: Option<MessageId>,
    /// Uploads of the author's the message carries, in order: each is tied to this message in
    /// the send's transaction (refused when another message carries it meanwhile).
    pub attachments: Vec<String>,
}

/// A file as stored: what a message shows of it, and who may fetch it.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadRecord {
    pub upload: protocol::Upload,
    pub owner_id: String,
    /// The message that carries it, if any.
    pub message_id: Option<String>,
    pub created_at: i64,
}

/// What the store keeps of an upload once all its bytes are in.
#[derive(Debug, Clone)]
pub struct FinishedUpload {
    pub size: i64,
    pub content_type: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// The thumbnail's bytes and content type (images only).
    pub thumbnail: Option<(Vec<u8>, String)>,
}

#[derive(Debug, Clone)]
pub struct NewNotification {
    pub id: NotificationId,
    pub user_id: UserId,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: String,
    pub now: i64,
}

/// A background job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: JobId,
    pub user_id: UserId,
    pub kind: String,
    pub params: String,
    pub state: String,
    pub done: i64,
    pub total: i64,
    pub message: String,
    pub result_path: Option<String>,
    pub cancel: bool,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub updated_at: i64,
    pub version: i64,
}

/// Which notifications to mark read.
#[derive(Debug, Clone)]
pub enum ReadSelection {
    All,
    Ids(Vec<NotificationId>),
}

#[derive(Debug)]
pub enum SendOutcome {
    Created(Message, Vec<StoredEvent>),
    /// The same author already sent this client id: the first message, unchanged.
    Existing(Message),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    /// A public room of that name exists (its name as it was given).
    #[error("a public room is called {0}")]
    RoomNameTaken(String),
    /// What a change was about does not exist (any more), e.g. `"message"`.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change is refused as things now stand (a stable code and a message to show), e.g.
    /// editing a message deleted meanwhile; checked inside the change's transaction.
    #[error("{1}")]
    Refused(&'static str, String),
    /// Like `Refused`, but the request itself is wrong as things stand (a 400).
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<StoreError> for crate::error::ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => {
                crate::error::ApiError::Conflict("conflict", "already exists".into())
            }
            StoreError::RoomNameTaken(name) => crate::error::ApiError::Conflict(
                "room_name_taken",
                format!("There is already a public room called “{name}”. Join it, or pick another name."),
            ),
            StoreError::NotFound(what) => crate::error::ApiError::NotFound(what),
            StoreError::Refused(code, message) => crate::error::ApiError::Conflict(code, message),
            StoreError::Invalid(code, message) => crate::error::ApiError::BadRequest(code, message),
            StoreError::Db(e) => e.into(),
            StoreError::Other(e) => e.into(),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The database behind a server, chosen by the scheme of its URL: `sqlite:` or `postgres://`
/// (also `postgresql://`). Besides the [`Store`], the session layer keeps its tables here.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Which backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of `url`, or an error naming only the scheme (a URL may hold a password).
    pub fn of(url: &str) -> anyhow::Result<Backend> {
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => anyhow::bail!(
                "unsupported database URL scheme {scheme:?}: use sqlite://path/to/file.db or \
                 postgres://user@host/database"
            ),
        }
    }
}

impl Db {
    /// Opens the database at `url` (a SQLite file is created if missing) and runs its
    /// migrations. `synchronous` applies to SQLite only.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        synchronous: crate::config::Synchronous,
        lock_timeout: std::time::Duration,
    ) -> anyhow::Result<Db> {
        Ok(match Backend::of(url)? {
            Backend::Sqlite => {
                Db::Sqlite(sqlite::connect(url, max_connections, synchronous, lock_timeout).await?)
            }
            Backend::Postgres => {
                Db::Postgres(postgres::connect(url, max_connections, lock_timeout).await?)
            }
        })
    }

    pub fn store(&self) -> std::sync::Arc<dyn Store> {
        match self {
            Db::Sqlite(pool) => std::sync::Arc::new(sqlite::SqliteStore::new(pool.clone())),
            Db::Postgres(pool) => std::sync::Arc::new(postgres::PgStore::new(pool.clone())),
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Users.
    /// Creates a user; the first user ever created is an admin. `Conflict` on a taken name.
    async fn create_user(
        &self,
        id: &str,
        username: &str,
        hash: &str,
        now: i64,
    ) -> StoreResult<User>;
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    /// Returns false when no such user exists.
    async fn set_admin(&self, user_id: &str, is_admin: bool) -> StoreResult<bool>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;

    // Rooms and membership. Each change returns the events it committed.
    async fn create_room(
        &self,
        id: &str,
        creator: &User,
        name: &str,
        private: bool,
        now: i64,
    ) -> StoreResult<(Room, Vec<StoredEvent>)>;
    /// The oldest private room named `name` that `user_id` created and still has to themselves
    /// (no other member, no invite): where the race page sends its bursts.
    async fn own_solo_room(&self, user_id: &str, name: &str) -> StoreResult<Option<String>>;
    /// Rooms I belong to, public rooms, and private rooms I am invited to.
    async fn rooms_for(&self, user_id: &str) -> StoreResult<Vec<Room>>;
    async fn room_for(&self, room_id: &str, user_id: &str) -> StoreResult<Option<RoomAccess>>;
    async fn room_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// Adds the member (no-op if already one) and clears any invite.
    async fn join(&self, room_id: &str, user: &User, now: i64) -> StoreResult<Vec<StoredEvent>>;
    async fn leave(&self, room_id: &str, user: &User, now: i64) -> StoreResult<Vec<StoredEvent>>;
    async fn invite(
        &self,
        room_id: &str,
        user: &User,
        by: &User,
        now: i64,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// The one DM room of two users, created (with both as members) when missing.
    async fn dm(
        &self,
        new_id: &str,
        me: &User,
        other: &User,
        now: i64,
    ) -> StoreResult<(Room, bool, Vec<StoredEvent>)>;

    // Messages.
    async fn send_message(&self, msg: NewMessage) -> StoreResult<SendOutcome>;
    /// Sends several messages in one transaction (group commit): the outer error means nothing
    /// was committed; otherwise each message has its own outcome, and the successful ones are
    /// all committed when this returns.
    async fn send_messages(
        &self,
        msgs: &[NewMessage],
    ) -> StoreResult<Vec<StoreResult<SendOutcome>>>;
    /// A page of history, oldest first: messages with seq < `before_seq` (or the newest).
    async fn messages(
        &self,
        room_id: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// Where a message sits: its seq in its room and the id of the event that published it.
    async fn message_position(
        &self,
        room_id: &str,
        message_id: &str,
    ) -> StoreResult<Option<(i64, i64)>>;
    /// One message of a room as it now is, with its reactions (every person who reacted is
    /// listed: the service cuts the lists and sets `mine` for its reader).
    async fn message(&self, room_id: &str, message_id: &str) -> StoreResult<Option<Message>>;
    /// The replies to `root_id` in its room, oldest first, at most `limit`.
    async fn replies(&self, room_id: &str, root_id: &str, limit: u32) -> StoreResult<Vec<Message>>;
    /// Full-text search over the bodies of the messages `s.user_id` can read, newest first,
    /// each with a snippet marking the matches. `NotFound` if `s.before` names no message.
    async fn search(&self, s: Search<'_>) -> StoreResult<Vec<(Message, String)>>;
    /// Replaces a message's body and sets `edited_at`, with its `message_updated` event and
    /// the notifications of the edit, in one transaction. `NotFound` when it is not in the
    /// room; `Refused("message_deleted")` when it was deleted.
    async fn edit_message(
        &self,
        room_id: &str,
        message_id: &str,
        body: &str,
        now: i64,
        notify: Vec<NewNotification>,
    ) -> StoreResult<(Message, Vec<StoredEvent>)>;
    /// Makes a message a tombstone (body "", `deleted`, no reactions) with its
    /// `message_updated` event. Already deleted: no change, no event. `NotFound` when it is
    /// not in the room.
    async fn delete_message(
        &self,
        room_id: &str,
        message_id: &str,
        now: i64,
    ) -> StoreResult<(Message, Vec<StoredEvent>)>;
    /// Adds (or removes) `user`'s reaction `emoji`, with its `reaction` event; no change (and
    /// no event) when it is already so. Refused when the message was deleted, or when adding
    /// a new emoji to a message that already has `max_emoji` different ones.
    #[allow(clippy::too_many_arguments)]
    async fn react(
        &self,
        room_id: &str,
        message_id: &str,
        user: &User,
        emoji: &str,
        add: bool,
        max_emoji: i64,
        now: i64,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// Moves my read position forward (never back).
    async fn mark_read(&self, room_id: &str, user_id: &str, seq: i64) -> StoreResult<()>;

    /// The members of a room among `usernames`.
    async fn members_named(&self, room_id: &str, usernames: &[String]) -> StoreResult<Vec<User>>;
    async fn room_members(&self, room_id: &str) -> StoreResult<Vec<User>>;
    /// The members of a room with when they joined, earliest first.
    async fn members(&self, room_id: &str) -> StoreResult<Vec<Member>>;
    /// Renames a room and/or sets its topic, and appends its `room_updated` event (to its
    /// members) in the same transaction; the room comes back as `user_id` sees it. Nothing
    /// changes (and no event) when both are as they were. `RoomNameTaken` when another public
    /// room has the new name in any case.
    async fn update_room(
        &self,
        room_id: &str,
        user_id: &str,
        change: &RoomChange,
        now: i64,
    ) -> StoreResult<(Room, Vec<StoredEvent>)>;

    // People.
    /// Sets my display name and appends its `user_updated` event (to everyone); None when no
    /// such user. No event when the name is unchanged.
    async fn set_display_name(
        &self,
        user_id: &str,
        display_name: &str,
        now: i64,
    ) -> StoreResult<Option<(User, Vec<StoredEvent>)>>;
    async fn password_hash(&self, user_id: &str) -> StoreResult<Option<String>>;
    /// Returns false when no such user exists.
    async fn set_password_hash(&self, user_id: &str, hash: &str) -> StoreResult<bool>;

    // Notifications.
    /// Stores notifications; returns their events (one per notification, to its user).
    async fn notify(&self, items: Vec<NewNotification>) -> StoreResult<Vec<StoredEvent>>;
    /// My notifications newest first, and my unread count. None when `before` is not mine.
    async fn notifications(
        &self,
        user_id: &str,
        unread_only: bool,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Option<(Vec<Notification>, i64)>>;
    /// Marks mine read. None when an id is not one of mine (nothing changes then).
    async fn mark_notifications_read(
        &self,
        user_id: &str,
        which: ReadSelection,
        now: i64,
    ) -> StoreResult<Option<Vec<StoredEvent>>>;
    async fn all_user_ids(&self) -> StoreResult<Vec<String>>;

    // Audit.
    async fn audit(
        &self,
        actor: &User,
        action: &str,
        detail: &serde_json::Value,
        at: i64,
    ) -> StoreResult<()>;
    /// The newest entries first: (id, actor name, action, detail, at).
    async fn audit_log(&self, limit: u32) -> StoreResult<Vec<serde_json::Value>>;

    // Jobs.
    async fn insert_job(&self, job: &JobRecord) -> StoreResult<()>;
    async fn job(&self, id: &str) -> StoreResult<Option<JobRecord>>;
    /// My jobs, newest first (at most `limit`).
    async fn jobs_of(&self, user_id: &str, limit: u32) -> StoreResult<Vec<JobRecord>>;
    async fn jobs_in_state(&self, state: &str) -> StoreResult<Vec<JobRecord>>;
    /// Writes a job's mutable fields, bumps its version, and appends its `job` event (data from
    /// `snapshot` of the stored record) in the same transaction: nobody can read the new state
    /// before its event is in the log. The record comes back as stored.
    async fn save_job(
        &self,
        job: &JobRecord,
        snapshot: &(dyn for<'a> Fn(&'a JobRecord) -> String + Send + Sync),
    ) -> StoreResult<(JobRecord, StoredEvent)>;
    /// Asks a job to stop; returns the record as it is now.
    async fn request_cancel(&self, id: &str) -> StoreResult<Option<JobRecord>>;
    /// Messages of a room after `after_seq`, oldest first (for exports, page by page).
    async fn messages_after(
        &self,
        room_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    async fn message_count(&self, room_id: &str) -> StoreResult<i64>;

    // Uploads. An upload is a row written first (not yet complete), its chunks, then the
    // finish that makes it complete: a half-received one is never served, and goes with the
    // orphans (or at once, when it was refused).
    async fn create_upload(
        &self,
        id: &str,
        owner_id: &str,
        name: &str,
        content_type: &str,
        job_id: Option<&str>,
        now: i64,
    ) -> StoreResult<()>;
    /// Stores chunk `n` (0, 1, 2, …) of an upload.
    async fn put_upload_chunk(&self, upload_id: &str, n: i64, bytes: &[u8]) -> StoreResult<()>;
    async fn finish_upload(&self, upload_id: &str, done: &FinishedUpload) -> StoreResult<()>;
    /// Removes an upload and its bytes.
    async fn delete_upload(&self, upload_id: &str) -> StoreResult<()>;
    /// A complete upload, if `user_id` may fetch it: its uploader, or a member of the room of
    /// the (not deleted) message that carries it.
    async fn upload_for(&self, upload_id: &str, user_id: &str)
        -> StoreResult<Option<UploadRecord>>;
    /// Complete uploads of `owner_id`'s among `ids` that no message carries yet.
    async fn free_uploads(&self, owner_id: &str, ids: &[String]) -> StoreResult<Vec<String>>;
    /// Chunk `n` of an upload's bytes; None past the last.
    async fn upload_chunk(&self, upload_id: &str, n: i64) -> StoreResult<Option<Vec<u8>>>;
    /// An upload's thumbnail and its content type, if it has one.
    async fn upload_thumbnail(&self, upload_id: &str) -> StoreResult<Option<(Vec<u8>, String)>>;
    /// The bytes of the complete uploads `owner_id` made since `since` (ms).
    async fn uploaded_bytes_since(&self, owner_id: &str, since: i64) -> StoreResult<i64>;
    /// Removes the uploads no message carries (and no job made) that were made before `before`
    /// (ms), with their bytes; how many.
    async fn delete_orphan_uploads(&self, before: i64) -> StoreResult<u64>;

    // The event log.
    /// Events in (`cursor`, `through`] that `user_id` may see on `feeds`, in id order, at most
    /// `limit`. `through` is the hub's head: a commit not yet published stays out of a replay.
    async fn events_after(
        &self,
        user_id: &str,
        feeds: FeedSet,
        cursor: i64,
        through: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// Every event in (`after`, `through`], in id order, at most `limit`, whoever may see it: a
    /// server of a cluster fills a gap in what the backplane brought it from here.
    async fn events_between(
        &self,
        after: i64,
        through: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// A room's joins and leaves (`membership` events naming a person) with ids in (`after`,
    /// `before`) (`before` None: up to the newest), in id order, at most `limit`: the "bob
    /// joined" lines of a page of history.
    async fn membership_events(
        &self,
        room_id: &str,
        after: i64,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// Gathers the query planner's statistics (after a bulk load: PostgreSQL would otherwise
    /// take a rare word for a common one until autovacuum gets to the table).
    async fn analyze(&self) -> StoreResult<()>;
    /// The highest event id ever committed (0 for a new log), even if pruned since.
    async fn head(&self) -> StoreResult<i64>;
    /// The oldest cursor the log can still serve completely: every event after it is kept.
    async fn log_floor(&self) -> StoreResult<i64>;
    /// The id of the newest event older than `before_ts` (ms): pruning through it keeps the
    /// retention. None when nothing is that old.
    async fn prune_point(&self, before_ts: i64) -> StoreResult<Option<i64>>;
    /// Deletes events with id ≤ `through`; returns how many. Messages stay in their own table;
    /// only resuming from a cursor that old goes (such a cursor gets `resync`).
    async fn delete_events_through(&self, through: i64) -> StoreResult<u64>;
    /// Appends one event on its own (control events).
    async fn append(
        &self,
        feed: Feed,
        kind: &str,
        room_id: Option<&str>,
        user_id: Option<&str>,
        data: String,
        ts: i64,
    ) -> StoreResult<StoredEvent>;

    // Transport settings.
    /// My choices (defaults where I made none) and an admin's overrides.
    async fn transport_prefs(&self, user_id: &str) -> StoreResult<(FeedTransports, FeedOverrides)>;
    async fn set_transport_choice(
        &self,
        user_id: &str,
        feed: Feed,
        t: Option<Transport>,
    ) -> StoreResult<()>;
    async fn set_transport_override(
        &self,
        user_id: &str,
        feed: Feed,
        t: Option<Transport>,
    ) -> StoreResult<()>;
    async fn switches(&self) -> StoreResult<Switches>;
    async fn set_switches(&self, switches: Switches) -> StoreResult<()>;
    async fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::Backend;

    #[test]
    fn the_url_scheme_picks_the_backend() {
        assert_eq!(Backend::of("sqlite://data/x.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert_eq!(
            Backend::of("PostgreSQL://u:p@h:5432/db").unwrap(),
            Backend::Postgres
        );
        let err = Backend::of("mysql://root:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"mysql\"") && !err.contains("secret"),
            "{err}"
        );
        assert!(Backend::of("data/x.db").is_err());
    }
}
