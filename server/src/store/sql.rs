//! The one SQL implementation of [`Store`], for SQLite and PostgreSQL alike (the shape of
//! ntfy's message cache: one common store, a table of the query texts that differ).
//!
//! Every statement here is written once, with `$n` placeholders, which both databases take (sqlx
//! binds SQLite's `$n` by number). Where the SQL itself differs, the text comes from the
//! backend's [`Queries`]; what the databases do differently sits behind the small [`Dialect`]
//! trait, implemented in `sqlite.rs` and `postgres.rs`:
//!
//! - running a statement with its arguments ([`Arg`]: values and lists, bound natively);
//! - event ids: gapless, in commit order (a counter row on PostgreSQL, SQLite's single writer);
//! - the multi-row inserts of events, messages and notifications;
//! - the locks that make "first user is admin" and "one public room per name" hold;
//! - the group commit of a batch of messages (SQLite runs it on a connection of its own).
//!
//! Why not sqlx's `Any` driver: it copies every row into its own value type, has no array
//! parameters (PostgreSQL's batch inserts bind one array per column), and reads SQLite's
//! booleans as integers. Why not sqlx code generic over `sqlx::Database`: every function would
//! carry a dozen higher-ranked bounds (executor, arguments, each bound and decoded type). Here
//! the generic code needs only `D: Dialect`; each dialect binds and runs statements with its
//! own concrete types.
//!
//! Event-producing writes do all their other writes first and append their events last: on
//! PostgreSQL the reservation of ids holds the log's head until commit (see `postgres.rs`).

use super::events::{self, NewEvent};
use super::{
    EventRow, FinishedUpload, JobRecord, NewMessage, NewNotification, ReadSelection, RoomAccess,
    RoomChange, SendOutcome, Store, StoreError, StoreResult, StoredEvent, UploadRecord, UserRecord,
};
use async_trait::async_trait;
use protocol::{
    default_transport, Author, Feed, FeedOverrides, FeedSet, FeedTransports, JobId, Member,
    MembershipChange, Message, MessageId, Notification, NotificationId, Reaction, ReplyRef, Room,
    RoomId, Switches, Transport, User, UserId, CHOOSABLE_FEEDS,
};
use sqlx::{Database, FromRow, Pool, Transaction};
use std::future::Future;
use std::str::FromStr;

/// A statement's argument, bound by each dialect with its own types.
#[derive(Debug, Clone)]
pub enum Arg<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bool(bool),
    /// A list of strings: a JSON array on SQLite (read with `json_each`), an array on
    /// PostgreSQL (read with `ANY` or `UNNEST`).
    TextList(Vec<&'a str>),
    /// Bytes (an upload's chunk or thumbnail): a BLOB on SQLite, BYTEA on PostgreSQL.
    Bytes(Option<&'a [u8]>),
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(b: &'a [u8]) -> Self {
        Arg::Bytes(Some(b))
    }
}
impl<'a> From<Option<&'a [u8]>> for Arg<'a> {
    fn from(b: Option<&'a [u8]>) -> Self {
        Arg::Bytes(b)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Text(Some(s))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Text(Some(s))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Arg::Text(s)
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(s: &'a Option<String>) -> Self {
        Arg::Text(s.as_deref())
    }
}
impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Int(Some(n))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(n: Option<i64>) -> Self {
        Arg::Int(n)
    }
}
impl From<u32> for Arg<'_> {
    fn from(n: u32) -> Self {
        Arg::Int(Some(i64::from(n)))
    }
}
impl From<bool> for Arg<'_> {
    fn from(b: bool) -> Self {
        Arg::Bool(b)
    }
}
impl<'a> From<&'a [String]> for Arg<'a> {
    fn from(list: &'a [String]) -> Self {
        Arg::TextList(list.iter().map(String::as_str).collect())
    }
}

impl<'a> From<&'a [NotificationId]> for Arg<'a> {
    fn from(list: &'a [NotificationId]) -> Self {
        Arg::TextList(list.iter().map(NotificationId::as_str).collect())
    }
}

/// Typed ids bind as their text.
macro_rules! id_args {
    ($($id:ty),*) => {$(
        impl<'a> From<&'a $id> for Arg<'a> {
            fn from(id: &'a $id) -> Self {
                Arg::Text(Some(id.as_str()))
            }
        }
    )*};
}
id_args!(UserId, RoomId, MessageId, NotificationId, JobId);

/// The arguments of one statement, in `$n` order.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$(Arg::from($a)),*] };
}

/// Where a statement runs: on a pooled connection, or inside a transaction.
pub enum Exec<'a, D: Database> {
    Pool(&'a Pool<D>),
    Conn(&'a mut D::Connection),
}

impl<D: Database> Exec<'_, D> {
    /// The same place, for one more statement.
    fn reborrow(&mut self) -> Exec<'_, D> {
        match self {
            Exec::Pool(p) => Exec::Pool(p),
            Exec::Conn(c) => Exec::Conn(&mut **c),
        }
    }
}

/// Decodes a row as `T` (a supertrait of [`Dialect`] per row shape the store reads, so the
/// generic code needs no bounds of its own).
pub trait Decodes<T>: Database {
    fn decode(row: &Self::Row) -> sqlx::Result<T>;
}

impl<D: Database, T> Decodes<T> for D
where
    T: for<'r> FromRow<'r, D::Row>,
{
    fn decode(row: &D::Row) -> sqlx::Result<T> {
        T::from_row(row)
    }
}

/// The query texts that differ between the databases; the others are written once below.
pub struct Queries {
    /// Rooms as one user sees them (`$1` is the user id).
    pub room_select: &'static str,
    /// The name of a public room called `$1` in any case, other than room `$2`, if there is one.
    pub room_name_taken: &'static str,
    /// The members of room `$1` among the usernames in list `$2`.
    pub members_named: &'static str,
    /// How many of the notification ids in list `$2` belong to user `$1`.
    pub count_own_notifications: &'static str,
    /// Marks user `$1`'s notifications with the ids in list `$2` read.
    pub mark_notifications_read: &'static str,
    /// Events in (`$1`, `$5`] of the feeds in list `$3` that user `$2` may see, at most `$4`.
    pub events_after: &'static str,
    /// The highest event id ever committed, even if pruned since (one row, one column).
    pub head: &'static str,
    /// The reactions to the messages with the ids in list `$1`: (message id, emoji, user id,
    /// username, display name), by message, then in the order they were made.
    pub reactions_of: &'static str,
    /// The uploads carried by the messages with the ids in list `$1`, by message, in order.
    pub uploads_of: &'static str,
    /// The ids among list `$2` of complete uploads of user `$1` that no message carries.
    pub free_uploads: &'static str,
    /// Full-text search: (message id, room id, snippet) of the messages matching `$1` (the
    /// dialect's match text from [`Dialect::search_match`]) with event id < `$2`, not deleted,
    /// in the rooms of member `$3`, in room `$4` (if set), written by `$5` (if set), newest
    /// first, at most `$6`.
    pub search: &'static str,
}

/// What the two databases do differently; everything else is [`SqlStore`].
pub trait Dialect:
    Database
    + Sync
    + Decodes<UserRow>
    + Decodes<RoomRow>
    + Decodes<MessageRow>
    + Decodes<JobRow>
    + Decodes<NotificationRow>
    + Decodes<UploadRow>
    + Decodes<(Vec<u8>,)>
    + Decodes<(Option<Vec<u8>>, Option<String>)>
    + Decodes<MemberRow>
    + Decodes<EventRow>
    + Decodes<(i64,)>
    + Decodes<(Option<i64>,)>
    + Decodes<(bool,)>
    + Decodes<(String,)>
    + Decodes<(String, bool)>
    + Decodes<(String, String, String)>
    + Decodes<(bool, i64)>
    + Decodes<(i64, i64)>
    + Decodes<(String, String, String, String, Option<String>)>
    + Decodes<(String, Option<String>, Option<String>)>
    + Decodes<(i64, String, String, String, String, i64)>
{
    /// What the store keeps beside its pool (SQLite: the group-commit writer's connection).
    type State: Default + Clone + Send + Sync + 'static;
    /// The statement that begins a write transaction.
    const BEGIN_WRITE: &'static str;
    const QUERIES: &'static Queries;

    /// The database's query text for the parsed terms of a search (every term must match).
    /// The terms hold only letters and digits, and each is quoted all the same.
    fn search_match(terms: &[protocol::Term]) -> String;

    /// Runs a statement; the number of rows it changed.
    fn execute<'a>(
        ex: Exec<'a, Self>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> impl Future<Output = sqlx::Result<u64>> + Send + 'a;
    fn fetch_all<'a>(
        ex: Exec<'a, Self>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> impl Future<Output = sqlx::Result<Vec<Self::Row>>> + Send + 'a;
    fn fetch_optional<'a>(
        ex: Exec<'a, Self>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> impl Future<Output = sqlx::Result<Option<Self::Row>>> + Send + 'a;

    /// Reserves the next `n` event ids for the transaction on `conn` and returns the first.
    /// The events must be inserted (with [`Dialect::insert_events`]) before the next
    /// reservation, and every other write of the transaction should come before it.
    fn reserve_event_ids(
        conn: &mut Self::Connection,
        n: i64,
    ) -> impl Future<Output = StoreResult<i64>> + Send + '_;
    /// Inserts events whose ids were reserved, in one statement.
    fn insert_events<'a>(
        conn: &'a mut Self::Connection,
        events: &'a [StoredEvent],
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a;
    fn insert_messages<'a>(
        conn: &'a mut Self::Connection,
        msgs: &'a [&'a Message],
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a;
    /// Inserts notification rows (not their events), in one statement.
    fn insert_notification_rows<'a>(
        conn: &'a mut Self::Connection,
        items: &'a [&'a NewNotification],
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a;

    /// Takes sign-ups one at a time (across servers too), so exactly one first user is admin.
    fn lock_signups(conn: &mut Self::Connection) -> impl Future<Output = StoreResult<()>> + Send;
    /// Makes two creations of a public room called `name` take turns.
    fn lock_room_name<'a>(
        conn: &'a mut Self::Connection,
        name: &'a str,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a;

    /// Stores a batch of messages in one transaction (group commit), falling back to
    /// [`SqlStore::send_one_by_one`] when the batch fails.
    fn send_batch<'a>(
        store: &'a SqlStore<Self>,
        msgs: &'a [NewMessage],
    ) -> impl Future<Output = StoreResult<Vec<StoreResult<SendOutcome>>>> + Send + 'a;
}

/// The store over one database.
pub struct SqlStore<D: Dialect> {
    pub(crate) pool: Pool<D>,
    pub(crate) state: D::State,
}

impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            state: self.state.clone(),
        }
    }
}

async fn execute<D: Dialect>(ex: Exec<'_, D>, sql: &str, args: Vec<Arg<'_>>) -> StoreResult<u64> {
    Ok(D::execute(ex, sql, args).await?)
}

async fn fetch_all<D: Dialect + Decodes<T>, T>(
    ex: Exec<'_, D>,
    sql: &str,
    args: Vec<Arg<'_>>,
) -> StoreResult<Vec<T>> {
    let rows = D::fetch_all(ex, sql, args).await?;
    Ok(rows
        .iter()
        .map(<D as Decodes<T>>::decode)
        .collect::<sqlx::Result<_>>()?)
}

async fn fetch_optional<D: Dialect + Decodes<T>, T>(
    ex: Exec<'_, D>,
    sql: &str,
    args: Vec<Arg<'_>>,
) -> StoreResult<Option<T>> {
    match D::fetch_optional(ex, sql, args).await? {
        Some(row) => Ok(Some(<D as Decodes<T>>::decode(&row)?)),
        None => Ok(None),
    }
}

async fn fetch_one<D: Dialect + Decodes<T>, T>(
    ex: Exec<'_, D>,
    sql: &str,
    args: Vec<Arg<'_>>,
) -> StoreResult<T> {
    fetch_optional(ex, sql, args)
        .await?
        .ok_or(StoreError::Db(sqlx::Error::RowNotFound))
}

/// The transaction's connection, as a place to run statements.
fn tx<'a, D: Dialect>(tx: &'a mut Transaction<'static, D>) -> Exec<'a, D> {
    Exec::Conn(&mut **tx)
}

#[derive(FromRow)]
pub struct UserRow {
    id: String,
    username: String,
    is_admin: bool,
    password_hash: String,
    display_name: Option<String>,
}

impl UserRow {
    fn user(&self) -> User {
        User {
            id: self.id.as_str().into(),
            username: self.username.clone(),
            is_admin: self.is_admin,
            display_name: self.display_name.clone(),
        }
    }
}

#[derive(FromRow)]
pub struct RoomRow {
    id: String,
    name: String,
    private: bool,
    is_member: bool,
    unread: i64,
    invited: bool,
    dm_user_id: Option<String>,
    dm_username: Option<String>,
    dm_display_name: Option<String>,
    topic: String,
    created_by: String,
    member_count: i64,
    last_read: Option<String>,
}

impl RoomRow {
    fn room(self) -> Room {
        let dm_with = match (self.dm_user_id, self.dm_username) {
            (Some(id), Some(username)) => Some(Author {
                id: id.into(),
                username,
                display_name: self.dm_display_name,
            }),
            _ => None,
        };
        Room {
            id: self.id.into(),
            name: self.name,
            private: self.private,
            is_member: self.is_member,
            unread: self.unread.max(0),
            dm_with,
            topic: self.topic,
            member_count: self.member_count,
            last_read: self.last_read,
            created_by: Some(self.created_by),
        }
    }

    fn access(self) -> RoomAccess {
        let invited = self.invited;
        RoomAccess {
            room: self.room(),
            invited,
        }
    }
}

#[derive(FromRow)]
pub struct MessageRow {
    id: String,
    room_id: String,
    seq: i64,
    author_id: String,
    author_name: String,
    author_display_name: Option<String>,
    body: String,
    client_id: String,
    created_at: i64,
    event_id: i64,
    edited_at: Option<i64>,
    deleted: bool,
    reply_count: i64,
    reply_to: Option<String>,
    reply_author_id: Option<String>,
    reply_author_name: Option<String>,
    reply_author_display_name: Option<String>,
    reply_body: Option<String>,
    reply_deleted: Option<bool>,
}

impl MessageRow {
    /// The message without its reactions (see [`with_reactions`]).
    pub fn message(self) -> Message {
        let reply_to = match (self.reply_to, self.reply_author_id, self.reply_author_name) {
            (Some(id), Some(author_id), Some(username)) => Some(ReplyRef {
                id: id.into(),
                author: Author {
                    id: author_id.into(),
                    username,
                    display_name: self.reply_author_display_name,
                },
                excerpt: events::excerpt(self.reply_body.as_deref().unwrap_or("")),
                deleted: self.reply_deleted.unwrap_or(false),
            }),
            _ => None,
        };
        Message {
            id: self.id.into(),
            room_id: self.room_id.into(),
            author: Author {
                id: self.author_id.into(),
                username: self.author_name,
                display_name: self.author_display_name,
            },
            body: self.body,
            client_id: self.client_id,
            created_at: self.created_at,
            seq: self.seq,
            event_id: self.event_id,
            edited_at: self.edited_at,
            deleted: self.deleted,
            reply_to,
            reply_count: self.reply_count,
            reactions: Vec::new(),
            attachments: Vec::new(),
        }
    }
}

/// A message with what a reader sees of the message it answers (its author and the start of
/// its body as they now are).
pub const MESSAGE_SELECT: &str = "
    SELECT m.id, m.room_id, m.seq, m.author_id, u.username AS author_name,
           u.display_name AS author_display_name, m.body, m.client_id,
           m.created_at, m.event_id, m.edited_at, m.deleted, m.reply_count, m.reply_to,
           p.author_id AS reply_author_id, pu.username AS reply_author_name,
           pu.display_name AS reply_author_display_name,
           p.body AS reply_body, p.deleted AS reply_deleted
    FROM messages m JOIN users u ON u.id = m.author_id
    LEFT JOIN messages p ON p.id = m.reply_to
    LEFT JOIN users pu ON pu.id = p.author_id";

/// Fills in the reactions of `msgs` (one query for all of them): one entry per emoji in the
/// order it was first used, with everyone who reacted with it in the order they did.
async fn with_reactions<D: Dialect>(
    ex: Exec<'_, D>,
    mut msgs: Vec<Message>,
) -> StoreResult<Vec<Message>> {
    let ids: Vec<&str> = msgs
        .iter()
        .filter(|m| !m.deleted)
        .map(|m| m.id.as_str())
        .collect();
    if ids.is_empty() {
        return Ok(msgs);
    }
    // What the (not deleted) messages carry: a tombstone shows no files.
    let mut ex = ex;
    let uploads: Vec<UploadRow> = fetch_all(
        ex.reborrow(),
        D::QUERIES.uploads_of,
        vec![Arg::TextList(ids.clone())],
    )
    .await?;
    let mut files: std::collections::HashMap<String, Vec<protocol::Upload>> = Default::default();
    for row in uploads {
        let record = row.record();
        if let Some(message_id) = record.message_id {
            files.entry(message_id).or_default().push(record.upload);
        }
    }
    let rows: Vec<(String, String, String, String, Option<String>)> =
        fetch_all(ex, D::QUERIES.reactions_of, vec![Arg::TextList(ids)]).await?;
    let mut by_message: std::collections::HashMap<String, Vec<Reaction>> = Default::default();
    for (message_id, emoji, user_id, username, display_name) in rows {
        let list = by_message.entry(message_id).or_default();
        // Who reacted, with the name the chips' tooltips show.
        let who = Author {
            id: user_id.into(),
            username,
            display_name,
        };
        match list.iter_mut().find(|r| r.emoji == emoji) {
            Some(r) => {
                r.count += 1;
                r.users.push(who);
            }
            None => list.push(Reaction {
                emoji,
                count: 1,
                mine: false,
                users: vec![who],
            }),
        }
    }
    for m in &mut msgs {
        if let Some(list) = by_message.remove(m.id.as_str()) {
            m.reactions = list;
        }
        if let Some(list) = files.remove(m.id.as_str()) {
            m.attachments = list;
        }
    }
    Ok(msgs)
}

/// An upload's row (without its thumbnail and bytes).
#[derive(FromRow)]
pub struct UploadRow {
    id: String,
    owner_id: String,
    name: String,
    size: i64,
    content_type: String,
    width: Option<i64>,
    height: Option<i64>,
    message_id: Option<String>,
    created_at: i64,
}

impl UploadRow {
    fn record(self) -> UploadRecord {
        UploadRecord {
            upload: protocol::Upload {
                url: format!("/api/uploads/{}", self.id),
                id: self.id,
                name: self.name,
                size: self.size,
                content_type: self.content_type,
                width: self.width,
                height: self.height,
            },
            owner_id: self.owner_id,
            message_id: self.message_id,
            created_at: self.created_at,
        }
    }
}

/// One message of a room with its reactions, inside `t`.
async fn message_in_tx<D: Dialect>(
    t: &mut Transaction<'static, D>,
    room_id: &str,
    message_id: &str,
) -> StoreResult<Option<Message>> {
    let row: Option<MessageRow> = fetch_optional(
        tx(t),
        &format!("{MESSAGE_SELECT} WHERE m.room_id = $1 AND m.id = $2"),
        args![room_id, message_id],
    )
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(with_reactions(tx(t), vec![row.message()]).await?.pop())
}

/// Whether a message of the room is deleted; `None` when the room has no such message.
async fn is_deleted<D: Dialect>(
    t: &mut Transaction<'static, D>,
    room_id: &str,
    message_id: &str,
) -> StoreResult<Option<bool>> {
    let row: Option<(bool,)> = fetch_optional(
        tx(t),
        "SELECT deleted FROM messages WHERE id = $1 AND room_id = $2",
        args![message_id, room_id],
    )
    .await?;
    Ok(row.map(|(d,)| d))
}

fn deleted_refusal() -> StoreError {
    StoreError::Refused("message_deleted", "This message was deleted.".into())
}

#[derive(FromRow)]
pub struct JobRow {
    id: String,
    user_id: String,
    kind: String,
    params: String,
    state: String,
    done: i64,
    total: i64,
    message: String,
    result_path: Option<String>,
    cancel: bool,
    created_at: i64,
    started_at: Option<i64>,
    updated_at: i64,
    version: i64,
}

impl From<JobRow> for JobRecord {
    fn from(r: JobRow) -> Self {
        JobRecord {
            id: r.id.into(),
            user_id: r.user_id.into(),
            kind: r.kind,
            params: r.params,
            state: r.state,
            done: r.done,
            total: r.total,
            message: r.message,
            result_path: r.result_path,
            cancel: r.cancel,
            created_at: r.created_at,
            started_at: r.started_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

const JOB_COLUMNS: &str = "id, user_id, kind, params, state, done, total, message, result_path,
    cancel, created_at, started_at, updated_at, version";

#[derive(FromRow)]
pub struct NotificationRow {
    id: String,
    kind: String,
    title: String,
    body: String,
    link: String,
    created_at: i64,
    read: bool,
}

impl NotificationRow {
    fn notification(self) -> Notification {
        Notification {
            id: self.id.into(),
            kind: self.kind,
            title: self.title,
            body: self.body,
            link: self.link,
            created_at: self.created_at,
            read: self.read,
        }
    }
}

#[derive(FromRow)]
pub struct MemberRow {
    id: String,
    username: String,
    display_name: Option<String>,
    joined_at: i64,
}

impl MemberRow {
    fn member(self) -> Member {
        Member {
            user: Author {
                id: self.id.into(),
                username: self.username,
                display_name: self.display_name,
            },
            joined_at: self.joined_at,
        }
    }
}

const EVENT_COLUMNS: &str = "id, feed, kind, room_id, user_id, data, ts";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Appends events built by [`events`] inside the caller's transaction (as its last writes),
/// giving them the next ids.
pub async fn append_events<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    new: Vec<NewEvent>,
) -> StoreResult<Vec<StoredEvent>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let first = D::reserve_event_ids(&mut **tx, new.len() as i64).await?;
    let stored: Vec<StoredEvent> = new
        .into_iter()
        .zip(first..)
        .map(|(e, id)| e.with_id(id))
        .collect();
    D::insert_events(&mut **tx, &stored).await?;
    Ok(stored)
}

/// Appends one event to the log inside the caller's transaction (as its last write).
pub async fn append_event<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    feed: Feed,
    kind: &str,
    room_id: Option<&str>,
    user_id: Option<&str>,
    data: String,
    ts: i64,
) -> StoreResult<StoredEvent> {
    let new = NewEvent {
        feed,
        kind: kind.to_string(),
        room_id: room_id.map(str::to_string),
        user_id: user_id.map(str::to_string),
        data,
        ts,
    };
    let mut stored = append_events(tx, vec![new]).await?;
    stored
        .pop()
        .ok_or_else(|| StoreError::Other(anyhow::anyhow!("no event appended")))
}

/// Stores notifications and their events inside the caller's transaction (as its last writes).
async fn insert_notifications<D: Dialect>(
    tx: &mut Transaction<'static, D>,
    items: &[NewNotification],
) -> StoreResult<Vec<StoredEvent>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let refs: Vec<&NewNotification> = items.iter().collect();
    D::insert_notification_rows(&mut **tx, &refs).await?;
    let new = items.iter().map(events::notification).collect();
    append_events(tx, new).await
}

/// Stores one message (or finds the earlier one with its client id) inside `tx`.
async fn send_in_tx<D: Dialect>(
    t: &mut Transaction<'static, D>,
    msg: &NewMessage,
) -> StoreResult<SendOutcome> {
    let existing: Option<MessageRow> = fetch_optional(
        tx(t),
        &format!("{MESSAGE_SELECT} WHERE m.author_id = $1 AND m.client_id = $2"),
        args![&msg.author.id, &msg.client_id],
    )
    .await?;
    if let Some(row) = existing {
        // The first send as it is now, files and all.
        let first = with_reactions(tx(t), vec![row.message()]).await?.pop();
        return Ok(SendOutcome::Existing(first.ok_or_else(|| {
            StoreError::Other(anyhow::anyhow!("a message vanished"))
        })?));
    }
    let (seq,): (i64,) = fetch_one(
        tx(t),
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
        args![&msg.room_id],
    )
    .await?;
    // What I wrote, I have read.
    execute(
        tx(t),
        "UPDATE members SET read_seq = $1 WHERE room_id = $2 AND user_id = $3 AND read_seq < $1",
        args![seq, &msg.room_id, &msg.author.id],
    )
    .await?;
    // A reply counts on its root, checked here as well as by the service: the root may have
    // been deleted meanwhile (by another server of a cluster, too).
    let root = match &msg.reply_to {
        None => None,
        Some(root_id) => {
            let bumped = execute(
                tx(t),
                "UPDATE messages SET reply_count = reply_count + 1
                 WHERE id = $1 AND room_id = $2 AND NOT deleted",
                args![root_id, &msg.room_id],
            )
            .await?;
            if bumped == 0 {
                return Err(StoreError::Refused(
                    "invalid_reply_to",
                    "The message you answer is not in this room any more.".into(),
                ));
            }
            message_in_tx(t, &msg.room_id, root_id).await?
        }
    };
    // The files, tied to this message here: one another message took meanwhile (or that went
    // with the orphans) refuses the send.
    for (position, upload_id) in msg.attachments.iter().enumerate() {
        let tied = execute(
            tx(t),
            "UPDATE uploads SET message_id = $1, position = $2
             WHERE id = $3 AND owner_id = $4 AND complete AND message_id IS NULL",
            args![&msg.id, position as i64, upload_id, &msg.author.id],
        )
        .await?;
        if tied == 0 {
            return Err(StoreError::Invalid(
                "invalid_attachments",
                "A file you attach is gone or already sent with another message.".into(),
            ));
        }
    }
    let notes: Vec<&NewNotification> = msg.notify.iter().collect();
    D::insert_notification_rows(&mut **t, &notes).await?;
    // The event ids, last (the message's payload names its own event id): the message, its
    // root's new reply count, then the notifications.
    let extra = i64::from(root.is_some());
    let first = D::reserve_event_ids(&mut **t, 1 + extra + msg.notify.len() as i64).await?;
    let mut message = events::message(msg, seq, first);
    message.reply_to = root.as_ref().map(events::reply_ref);
    if !msg.attachments.is_empty() {
        let ids: Vec<&str> = vec![msg.id.as_str()];
        let rows: Vec<UploadRow> =
            fetch_all(tx(t), D::QUERIES.uploads_of, vec![Arg::TextList(ids)]).await?;
        message.attachments = rows.into_iter().map(|r| r.record().upload).collect();
    }
    let (message, event) = events::message_event(message)?;
    let mut stored = vec![event];
    if let Some(root) = &root {
        stored.push(events::message_updated(root, msg.now).with_id(first + 1));
    }
    for (n, id) in msg.notify.iter().zip(first + 1 + extra..) {
        stored.push(events::notification(n).with_id(id));
    }
    D::insert_events(&mut **t, &stored).await?;
    D::insert_messages(&mut **t, &[&message]).await?;
    Ok(SendOutcome::Created(message, stored))
}

async fn room_in_tx<D: Dialect>(
    t: &mut Transaction<'static, D>,
    room_id: &str,
    user_id: &str,
) -> StoreResult<Option<RoomAccess>> {
    let row: Option<RoomRow> = fetch_optional(
        tx(t),
        &format!("{} WHERE r.id = $2", D::QUERIES.room_select),
        args![user_id, room_id],
    )
    .await?;
    Ok(row.map(RoomRow::access))
}

/// The `membership` event of a change of `user_id`'s membership, with the room as they now see
/// it (appended by the caller).
async fn membership<D: Dialect>(
    t: &mut Transaction<'static, D>,
    room_id: &str,
    user_id: &str,
    change: MembershipChange,
    now: i64,
) -> StoreResult<NewEvent> {
    let room = room_in_tx(t, room_id, user_id)
        .await?
        .ok_or_else(|| StoreError::Other(anyhow::anyhow!("room {room_id} vanished")))?;
    Ok(events::membership(room.room, user_id, change, now))
}

/// A join or leave of `user`: their own `membership` event, and for a room other than a DM the
/// same change told to the room's members ("bob joined"), after it (appended by the caller).
async fn membership_told<D: Dialect>(
    t: &mut Transaction<'static, D>,
    room_id: &str,
    user: &User,
    change: MembershipChange,
    now: i64,
) -> StoreResult<Vec<NewEvent>> {
    let room = room_in_tx(t, room_id, &user.id)
        .await?
        .ok_or_else(|| StoreError::Other(anyhow::anyhow!("room {room_id} vanished")))?
        .room;
    let mut new = Vec::with_capacity(2);
    if room.dm_with.is_none() {
        new.push(events::membership(room.clone(), &user.id, change, now));
        new.push(events::member_change(room, user.author(), change, now));
    } else {
        new.push(events::membership(room, &user.id, change, now));
    }
    Ok(new)
}

async fn add_member<D: Dialect>(
    t: &mut Transaction<'static, D>,
    room_id: &str,
    user_id: &str,
    now: i64,
) -> StoreResult<bool> {
    // A new member starts with everything already in the room read.
    let done = execute(
        tx(t),
        "INSERT INTO members (room_id, user_id, joined_at, read_seq)
         SELECT $1, $2, $3, last_seq FROM rooms WHERE id = $1
         ON CONFLICT (room_id, user_id) DO NOTHING",
        args![room_id, user_id, now],
    )
    .await?;
    Ok(done > 0)
}

impl<D: Dialect> SqlStore<D> {
    pub fn new(pool: Pool<D>) -> Self {
        SqlStore {
            pool,
            state: D::State::default(),
        }
    }

    fn pool(&self) -> Exec<'_, D> {
        Exec::Pool(&self.pool)
    }

    pub(crate) async fn write(&self) -> StoreResult<Transaction<'static, D>> {
        Ok(self.pool.begin_with(D::BEGIN_WRITE).await?)
    }

    /// One by one, after a batch failed: each message in its own savepoint, so one that fails
    /// is undone alone (its event ids too) and a repeat of an earlier send finds it, and the
    /// others still commit in one transaction.
    pub(crate) async fn send_one_by_one(
        &self,
        msgs: &[NewMessage],
    ) -> StoreResult<Vec<StoreResult<SendOutcome>>> {
        let mut t = self.write().await?;
        let mut out = Vec::with_capacity(msgs.len());
        for msg in msgs {
            execute(tx(&mut t), "SAVEPOINT send", args![]).await?;
            let outcome = send_in_tx(&mut t, msg).await;
            if outcome.is_err() {
                execute(tx(&mut t), "ROLLBACK TO SAVEPOINT send", args![]).await?;
            }
            execute(tx(&mut t), "RELEASE SAVEPOINT send", args![]).await?;
            out.push(outcome);
        }
        t.commit().await?;
        Ok(out)
    }

    /// Sets one column (`chosen` or `forced`, never user input) of a user's feed preference.
    async fn set_pref(
        &self,
        user_id: &str,
        feed: Feed,
        column: &'static str,
        t: Option<Transport>,
    ) -> StoreResult<()> {
        execute(
            self.pool(),
            &format!(
                "INSERT INTO transport_prefs (user_id, feed, {column}) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, feed) DO UPDATE SET {column} = $3"
            ),
            args![user_id, feed.as_str(), t.map(Transport::as_str)],
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D> {
    async fn create_user(
        &self,
        id: &str,
        username: &str,
        hash: &str,
        now: i64,
    ) -> StoreResult<User> {
        let mut t = self.write().await?;
        D::lock_signups(&mut t).await?;
        let (any,): (bool,) =
            fetch_one(tx(&mut t), "SELECT EXISTS (SELECT 1 FROM users)", args![]).await?;
        let is_admin = !any;
        let res = D::execute(
            tx(&mut t),
            "INSERT INTO users (id, username, password_hash, is_admin, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            args![id, username, hash, is_admin, now],
        )
        .await;
        match res {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict),
            other => {
                other?;
            }
        }
        t.commit().await?;
        Ok(User {
            id: id.into(),
            username: username.to_string(),
            is_admin,
            display_name: None,
        })
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> = fetch_optional(
            self.pool(),
            "SELECT id, username, is_admin, password_hash, display_name FROM users WHERE username = $1",
            args![username],
        )
        .await?;
        Ok(row.map(|r| UserRecord {
            user: r.user(),
            password_hash: r.password_hash,
        }))
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = fetch_optional(
            self.pool(),
            "SELECT id, username, is_admin, password_hash, display_name FROM users WHERE id = $1",
            args![id],
        )
        .await?;
        Ok(row.map(|r| r.user()))
    }

    async fn set_admin(&self, user_id: &str, is_admin: bool) -> StoreResult<bool> {
        let done = execute(
            self.pool(),
            "UPDATE users SET is_admin = $1 WHERE id = $2",
            args![is_admin, user_id],
        )
        .await?;
        Ok(done > 0)
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = fetch_all(
            self.pool(),
            "SELECT id, username, is_admin, password_hash, display_name FROM users ORDER BY username",
            args![],
        )
        .await?;
        Ok(rows.iter().map(UserRow::user).collect())
    }

    async fn create_room(
        &self,
        id: &str,
        creator: &User,
        name: &str,
        private: bool,
        now: i64,
    ) -> StoreResult<(Room, Vec<StoredEvent>)> {
        let mut t = self.write().await?;
        // One public room per name, whatever the case.
        if !private {
            D::lock_room_name(&mut t, name).await?;
            let taken: Option<(String,)> =
                fetch_optional(tx(&mut t), D::QUERIES.room_name_taken, args![name, id]).await?;
            if let Some((taken,)) = taken {
                return Err(StoreError::RoomNameTaken(taken));
            }
        }
        execute(
            tx(&mut t),
            "INSERT INTO rooms (id, name, private, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            args![id, name, private, &creator.id, now],
        )
        .await?;
        add_member(&mut t, id, &creator.id, now).await?;
        let joined = membership(&mut t, id, &creator.id, MembershipChange::Joined, now).await?;
        let room = room_in_tx(&mut t, id, &creator.id)
            .await?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("room vanished")))?
            .room;
        let mut new = vec![joined];
        if !private {
            new.push(events::room_created(&room, now));
        }
        let events = append_events(&mut t, new).await?;
        t.commit().await?;
        Ok((room, events))
    }

    async fn own_solo_room(&self, user_id: &str, name: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = fetch_optional(
            self.pool(),
            "SELECT r.id FROM rooms r
             JOIN members m ON m.room_id = r.id AND m.user_id = $1
             WHERE r.created_by = $1 AND r.name = $2 AND r.private AND r.dm_key IS NULL
               AND NOT EXISTS (SELECT 1 FROM members o WHERE o.room_id = r.id AND o.user_id <> $1)
               AND NOT EXISTS (SELECT 1 FROM invites i WHERE i.room_id = r.id)
             ORDER BY r.created_at LIMIT 1",
            args![user_id, name],
        )
        .await?;
        Ok(row.map(|(id,)| id))
    }

    async fn rooms_for(&self, user_id: &str) -> StoreResult<Vec<Room>> {
        let rows: Vec<RoomRow> = fetch_all(
            self.pool(),
            &format!(
                "{} WHERE m.user_id IS NOT NULL OR NOT r.private OR i.user_id IS NOT NULL
                 ORDER BY r.dm_key IS NOT NULL, lower(r.name), r.created_at",
                D::QUERIES.room_select
            ),
            args![user_id],
        )
        .await?;
        Ok(rows.into_iter().map(RoomRow::room).collect())
    }

    async fn room_for(&self, room_id: &str, user_id: &str) -> StoreResult<Option<RoomAccess>> {
        let row: Option<RoomRow> = fetch_optional(
            self.pool(),
            &format!("{} WHERE r.id = $2", D::QUERIES.room_select),
            args![user_id, room_id],
        )
        .await?;
        Ok(row.map(RoomRow::access))
    }

    async fn room_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = fetch_all(
            self.pool(),
            "SELECT room_id FROM members WHERE user_id = $1",
            args![user_id],
        )
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn join(&self, room_id: &str, user: &User, now: i64) -> StoreResult<Vec<StoredEvent>> {
        let mut t = self.write().await?;
        let added = add_member(&mut t, room_id, &user.id, now).await?;
        execute(
            tx(&mut t),
            "DELETE FROM invites WHERE room_id = $1 AND user_id = $2",
            args![room_id, &user.id],
        )
        .await?;
        let mut new = Vec::new();
        if added {
            new = membership_told(&mut t, room_id, user, MembershipChange::Joined, now).await?;
        }
        let events = append_events(&mut t, new).await?;
        t.commit().await?;
        Ok(events)
    }

    async fn leave(&self, room_id: &str, user: &User, now: i64) -> StoreResult<Vec<StoredEvent>> {
        let mut t = self.write().await?;
        let done = execute(
            tx(&mut t),
            "DELETE FROM members WHERE room_id = $1 AND user_id = $2",
            args![room_id, &user.id],
        )
        .await?;
        let mut new = Vec::new();
        if done > 0 {
            new = membership_told(&mut t, room_id, user, MembershipChange::Left, now).await?;
        }
        let events = append_events(&mut t, new).await?;
        t.commit().await?;
        Ok(events)
    }

    async fn invite(
        &self,
        room_id: &str,
        user: &User,
        by: &User,
        now: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        let mut t = self.write().await?;
        let (member,): (bool,) = fetch_one(
            tx(&mut t),
            "SELECT EXISTS (SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2)",
            args![room_id, &user.id],
        )
        .await?;
        let mut new = Vec::new();
        if !member {
            let done = execute(
                tx(&mut t),
                "INSERT INTO invites (room_id, user_id, invited_by, created_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (room_id, user_id) DO NOTHING",
                args![room_id, &user.id, &by.id, now],
            )
            .await?;
            if done > 0 {
                new.push(
                    membership(&mut t, room_id, &user.id, MembershipChange::Invited, now).await?,
                );
            }
        }
        let events = append_events(&mut t, new).await?;
        t.commit().await?;
        Ok(events)
    }

    async fn dm(
        &self,
        new_id: &str,
        me: &User,
        other: &User,
        now: i64,
    ) -> StoreResult<(Room, bool, Vec<StoredEvent>)> {
        let (a, b) = if me.id <= other.id {
            (&me.id, &other.id)
        } else {
            (&other.id, &me.id)
        };
        let key = format!("{a}:{b}");
        let name = format!("{} & {}", me.username, other.username);
        let mut t = self.write().await?;
        // Two servers may create the same pair's DM at once: the second insert waits for the
        // first and then does nothing, and both use the one room.
        let inserted: Option<(String,)> = fetch_optional(
            tx(&mut t),
            "INSERT INTO rooms (id, name, private, dm_key, created_by, created_at)
             VALUES ($1, $2, TRUE, $3, $4, $5)
             ON CONFLICT (dm_key) DO NOTHING RETURNING id",
            args![new_id, &name, &key, &me.id, now],
        )
        .await?;
        let (room_id, created) = match inserted {
            Some((id,)) => (id, true),
            None => {
                let (id,): (String,) = fetch_one(
                    tx(&mut t),
                    "SELECT id FROM rooms WHERE dm_key = $1",
                    args![&key],
                )
                .await?;
                (id, false)
            }
        };
        // Either side may have left the DM; asking for it again brings both back. Both
        // memberships are written before the first event takes the log's head.
        let mut added = Vec::new();
        for user in [me, other] {
            if add_member(&mut t, &room_id, &user.id, now).await? {
                added.push(user);
            }
        }
        let mut new = Vec::new();
        for user in added {
            new.push(membership(&mut t, &room_id, &user.id, MembershipChange::Joined, now).await?);
        }
        let events = append_events(&mut t, new).await?;
        let room = room_in_tx(&mut t, &room_id, &me.id)
            .await?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("room vanished")))?
            .room;
        t.commit().await?;
        Ok((room, created, events))
    }

    async fn send_message(&self, msg: NewMessage) -> StoreResult<SendOutcome> {
        let mut t = self.write().await?;
        let outcome = send_in_tx(&mut t, &msg).await?;
        t.commit().await?;
        Ok(outcome)
    }

    async fn send_messages(
        &self,
        msgs: &[NewMessage],
    ) -> StoreResult<Vec<StoreResult<SendOutcome>>> {
        // A reply also moves its root's count and appends the root's `message_updated`, which
        // the batch fast paths do not do: a batch holding one goes message by message (replies
        // are a small share of sends, and the batch still commits once).
        // So do files: each is tied to its message, checked, in the send's transaction.
        if msgs
            .iter()
            .any(|m| m.reply_to.is_some() || !m.attachments.is_empty())
        {
            return self.send_one_by_one(msgs).await;
        }
        D::send_batch(self, msgs).await
    }

    async fn messages(
        &self,
        room_id: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let rows: Vec<MessageRow> = fetch_all(
            self.pool(),
            &format!(
                "{MESSAGE_SELECT} WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
            ),
            args![room_id, before_seq.unwrap_or(i64::MAX), limit],
        )
        .await?;
        let mut out: Vec<Message> = rows.into_iter().map(MessageRow::message).collect();
        out.reverse();
        with_reactions(self.pool(), out).await
    }

    async fn message(&self, room_id: &str, message_id: &str) -> StoreResult<Option<Message>> {
        let row: Option<MessageRow> = fetch_optional(
            self.pool(),
            &format!("{MESSAGE_SELECT} WHERE m.room_id = $1 AND m.id = $2"),
            args![room_id, message_id],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(with_reactions(self.pool(), vec![row.message()])
            .await?
            .pop())
    }

    async fn replies(&self, room_id: &str, root_id: &str, limit: u32) -> StoreResult<Vec<Message>> {
        let rows: Vec<MessageRow> = fetch_all(
            self.pool(),
            &format!(
                "{MESSAGE_SELECT} WHERE m.room_id = $1 AND m.reply_to = $2 ORDER BY m.seq LIMIT $3"
            ),
            args![room_id, root_id, limit],
        )
        .await?;
        let out = rows.into_iter().map(MessageRow::message).collect();
        with_reactions(self.pool(), out).await
    }

    async fn search(&self, s: super::Search<'_>) -> StoreResult<Vec<(Message, String)>> {
        let before = match s.before {
            None => i64::MAX,
            Some(id) => {
                let row: Option<(i64,)> = fetch_optional(
                    self.pool(),
                    "SELECT event_id FROM messages WHERE id = $1",
                    args![id],
                )
                .await?;
                match row {
                    Some((event_id,)) => event_id,
                    None => return Err(StoreError::NotFound("message")),
                }
            }
        };
        let text = D::search_match(s.terms);
        let hits: Vec<(String, String, String)> = fetch_all(
            self.pool(),
            D::QUERIES.search,
            args![
                text.as_str(),
                before,
                s.user_id,
                s.room_id,
                s.author_id,
                i64::from(s.limit)
            ],
        )
        .await?;
        let mut out = Vec::with_capacity(hits.len());
        // At most a page (50) of lookups by primary key, each a few microseconds.
        for (id, room_id, snippet) in hits {
            if let Some(message) = self.message(&room_id, &id).await? {
                out.push((message, snippet));
            }
        }
        Ok(out)
    }

    async fn edit_message(
        &self,
        room_id: &str,
        message_id: &str,
        body: &str,
        now: i64,
        notify: Vec<NewNotification>,
    ) -> StoreResult<(Message, Vec<StoredEvent>)> {
        let mut t = self.write().await?;
        // Checked in the transaction, not only by the service: a message deleted meanwhile
        // (on any server) stays deleted.
        let done = execute(
            tx(&mut t),
            "UPDATE messages SET body = $1, edited_at = $2
             WHERE id = $3 AND room_id = $4 AND NOT deleted",
            args![body, now, message_id, room_id],
        )
        .await?;
        if done == 0 {
            return Err(match is_deleted(&mut t, room_id, message_id).await? {
                None => StoreError::NotFound("message"),
                Some(_) => deleted_refusal(),
            });
        }
        let message = message_in_tx(&mut t, room_id, message_id)
            .await?
            .ok_or(StoreError::NotFound("message"))?;
        let refs: Vec<&NewNotification> = notify.iter().collect();
        D::insert_notification_rows(&mut *t, &refs).await?;
        let mut new = vec![events::message_updated(&message, now)];
        new.extend(notify.iter().map(events::notification));
        let events = append_events(&mut t, new).await?;
        t.commit().await?;
        Ok((message, events))
    }

    async fn delete_message(
        &self,
        room_id: &str,
        message_id: &str,
        now: i64,
    ) -> StoreResult<(Message, Vec<StoredEvent>)> {
        let mut t = self.write().await?;
        let done = execute(
            tx(&mut t),
            "UPDATE messages SET body = '', deleted = TRUE
             WHERE id = $1 AND room_id = $2 AND NOT deleted",
            args![message_id, room_id],
        )
        .await?;
        if done > 0 {
            execute(
                tx(&mut t),
                "DELETE FROM reactions WHERE message_id = $1",
                args![message_id],
            )
            .await?;
        }
        let message = message_in_tx(&mut t, room_id, message_id)
            .await?
            .ok_or(StoreError::NotFound("message"))?;
        // A tombstone already: deleting is idempotent, and nothing changed to tell anyone.
        let events = if done > 0 {
            append_events(&mut t, vec![events::message_updated(&message, now)]).await?
        } else {
            Vec::new()
        };
        t.commit().await?;
        Ok((message, events))
    }

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
    ) -> StoreResult<Vec<StoredEvent>> {
        let mut t = self.write().await?;
        // A no-op update that locks the message's row to commit, so two reactions to one
        // message take turns (the cap on different emoji holds across servers too).
        let row: Option<(bool,)> = fetch_optional(
            tx(&mut t),
            "UPDATE messages SET reply_count = reply_count WHERE id = $1 AND room_id = $2
             RETURNING deleted",
            args![message_id, room_id],
        )
        .await?;
        match row {
            None => return Err(StoreError::NotFound("message")),
            Some((true,)) => return Err(deleted_refusal()),
            Some((false,)) => {}
        }
        let changed = if add {
            let (used, distinct): (bool, i64) = fetch_one(
                tx(&mut t),
                "SELECT EXISTS (SELECT 1 FROM reactions WHERE message_id = $1 AND emoji = $2),
                        (SELECT COUNT(DISTINCT emoji) FROM reactions WHERE message_id = $1)",
                args![message_id, emoji],
            )
            .await?;
            if !used && distinct >= max_emoji {
                return Err(StoreError::Refused(
                    "too_many_reactions",
                    format!(
                        "A message can have at most {max_emoji} different reactions; add one of those."
                    ),
                ));
            }
            execute(
                tx(&mut t),
                "INSERT INTO reactions (message_id, user_id, emoji, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (message_id, user_id, emoji) DO NOTHING",
                args![message_id, &user.id, emoji, now],
            )
            .await?
        } else {
            execute(
                tx(&mut t),
                "DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
                args![message_id, &user.id, emoji],
            )
            .await?
        };
        if changed == 0 {
            return Ok(Vec::new());
        }
        let (count,): (i64,) = fetch_one(
            tx(&mut t),
            "SELECT COUNT(*) FROM reactions WHERE message_id = $1 AND emoji = $2",
            args![message_id, emoji],
        )
        .await?;
        let new = events::reaction(room_id, message_id, emoji, user, add, count, now);
        let events = append_events(&mut t, vec![new]).await?;
        t.commit().await?;
        Ok(events)
    }

    async fn message_position(
        &self,
        room_id: &str,
        message_id: &str,
    ) -> StoreResult<Option<(i64, i64)>> {
        fetch_optional(
            self.pool(),
            "SELECT seq, event_id FROM messages WHERE room_id = $1 AND id = $2",
            args![room_id, message_id],
        )
        .await
    }

    async fn mark_read(&self, room_id: &str, user_id: &str, seq: i64) -> StoreResult<()> {
        execute(
            self.pool(),
            "UPDATE members SET read_seq = $1 WHERE room_id = $2 AND user_id = $3 AND read_seq < $1",
            args![seq, room_id, user_id],
        )
        .await?;
        Ok(())
    }

    async fn members_named(&self, room_id: &str, usernames: &[String]) -> StoreResult<Vec<User>> {
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<UserRow> = fetch_all(
            self.pool(),
            D::QUERIES.members_named,
            args![room_id, usernames],
        )
        .await?;
        Ok(rows.iter().map(UserRow::user).collect())
    }

    async fn room_members(&self, room_id: &str) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = fetch_all(
            self.pool(),
            "SELECT u.id, u.username, u.is_admin, u.password_hash, u.display_name FROM users u
             JOIN members m ON m.user_id = u.id WHERE m.room_id = $1 ORDER BY u.username",
            args![room_id],
        )
        .await?;
        Ok(rows.iter().map(UserRow::user).collect())
    }

    async fn members(&self, room_id: &str) -> StoreResult<Vec<Member>> {
        let rows: Vec<MemberRow> = fetch_all(
            self.pool(),
            "SELECT u.id, u.username, u.display_name, m.joined_at FROM users u
             JOIN members m ON m.user_id = u.id WHERE m.room_id = $1
             ORDER BY m.joined_at, u.username",
            args![room_id],
        )
        .await?;
        Ok(rows.into_iter().map(MemberRow::member).collect())
    }

    async fn update_room(
        &self,
        room_id: &str,
        user_id: &str,
        change: &RoomChange,
        now: i64,
    ) -> StoreResult<(Room, Vec<StoredEvent>)> {
        let mut t = self.write().await?;
        let current = room_in_tx(&mut t, room_id, user_id)
            .await?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("room {room_id} vanished")))?
            .room;
        let name = change.name.as_deref().unwrap_or(&current.name);
        let topic = change.topic.as_deref().unwrap_or(&current.topic);
        if name == current.name && topic == current.topic {
            // Nothing changes: no event either.
            return Ok((current, Vec::new()));
        }
        // One public room per name, whatever the case; renaming a room to itself in another
        // case is fine.
        if !current.private && name != current.name {
            D::lock_room_name(&mut t, name).await?;
            let taken: Option<(String,)> =
                fetch_optional(tx(&mut t), D::QUERIES.room_name_taken, args![name, room_id])
                    .await?;
            if let Some((taken,)) = taken {
                return Err(StoreError::RoomNameTaken(taken));
            }
        }
        execute(
            tx(&mut t),
            "UPDATE rooms SET name = $1, topic = $2 WHERE id = $3",
            args![name, topic, room_id],
        )
        .await?;
        let room = room_in_tx(&mut t, room_id, user_id)
            .await?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("room {room_id} vanished")))?
            .room;
        let events = append_events(&mut t, vec![events::room_updated(&room, now)]).await?;
        t.commit().await?;
        Ok((room, events))
    }

    async fn set_display_name(
        &self,
        user_id: &str,
        display_name: &str,
        now: i64,
    ) -> StoreResult<Option<(User, Vec<StoredEvent>)>> {
        let mut t = self.write().await?;
        let before: Option<UserRow> = fetch_optional(
            tx(&mut t),
            "SELECT id, username, is_admin, password_hash, display_name FROM users WHERE id = $1",
            args![user_id],
        )
        .await?;
        let Some(before) = before else {
            return Ok(None);
        };
        if before.display_name.as_deref() == Some(display_name) {
            return Ok(Some((before.user(), Vec::new())));
        }
        execute(
            tx(&mut t),
            "UPDATE users SET display_name = $1 WHERE id = $2",
            args![display_name, user_id],
        )
        .await?;
        let user = User {
            display_name: Some(display_name.to_string()),
            ..before.user()
        };
        let events = append_events(&mut t, vec![events::user_updated(&user, now)]).await?;
        t.commit().await?;
        Ok(Some((user, events)))
    }

    async fn set_password_hash(&self, user_id: &str, hash: &str) -> StoreResult<bool> {
        let done = execute(
            self.pool(),
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            args![hash, user_id],
        )
        .await?;
        Ok(done > 0)
    }

    async fn password_hash(&self, user_id: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = fetch_optional(
            self.pool(),
            "SELECT password_hash FROM users WHERE id = $1",
            args![user_id],
        )
        .await?;
        Ok(row.map(|(h,)| h))
    }

    async fn notify(&self, items: Vec<NewNotification>) -> StoreResult<Vec<StoredEvent>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut t = self.write().await?;
        let events = insert_notifications(&mut t, &items).await?;
        t.commit().await?;
        Ok(events)
    }

    async fn notifications(
        &self,
        user_id: &str,
        unread_only: bool,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Option<(Vec<Notification>, i64)>> {
        let before_n = match before {
            None => i64::MAX,
            Some(id) => {
                let row: Option<(i64,)> = fetch_optional(
                    self.pool(),
                    "SELECT n FROM notifications WHERE id = $1 AND user_id = $2",
                    args![id, user_id],
                )
                .await?;
                match row {
                    Some((n,)) => n,
                    None => return Ok(None),
                }
            }
        };
        let rows: Vec<NotificationRow> = fetch_all(
            self.pool(),
            "SELECT id, kind, title, body, link, created_at, read FROM notifications
             WHERE user_id = $1 AND n < $2 AND (NOT $3 OR NOT read)
             ORDER BY n DESC LIMIT $4",
            args![user_id, before_n, unread_only, limit],
        )
        .await?;
        let (unread,): (i64,) = fetch_one(
            self.pool(),
            "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND NOT read",
            args![user_id],
        )
        .await?;
        Ok(Some((
            rows.into_iter()
                .map(NotificationRow::notification)
                .collect(),
            unread,
        )))
    }

    async fn mark_notifications_read(
        &self,
        user_id: &str,
        which: ReadSelection,
        now: i64,
    ) -> StoreResult<Option<Vec<StoredEvent>>> {
        let mut t = self.write().await?;
        match &which {
            ReadSelection::All => {
                execute(
                    tx(&mut t),
                    "UPDATE notifications SET read = TRUE WHERE user_id = $1 AND NOT read",
                    args![user_id],
                )
                .await?;
            }
            ReadSelection::Ids(ids) => {
                let (mine,): (i64,) = fetch_one(
                    tx(&mut t),
                    D::QUERIES.count_own_notifications,
                    args![user_id, ids.as_slice()],
                )
                .await?;
                let distinct: std::collections::HashSet<&NotificationId> = ids.iter().collect();
                if mine as usize != distinct.len() {
                    return Ok(None);
                }
                execute(
                    tx(&mut t),
                    D::QUERIES.mark_notifications_read,
                    args![user_id, ids.as_slice()],
                )
                .await?;
            }
        }
        let events = append_events(&mut t, vec![events::read(user_id, &which, now)]).await?;
        t.commit().await?;
        Ok(Some(events))
    }

    async fn all_user_ids(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = fetch_all(self.pool(), "SELECT id FROM users", args![]).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn audit(
        &self,
        actor: &User,
        action: &str,
        detail: &serde_json::Value,
        at: i64,
    ) -> StoreResult<()> {
        let detail = detail.to_string();
        execute(
            self.pool(),
            "INSERT INTO audit_log (actor_id, actor_name, action, detail, at)
             VALUES ($1, $2, $3, $4, $5)",
            args![&actor.id, &actor.username, action, &detail, at],
        )
        .await?;
        Ok(())
    }

    async fn audit_log(&self, limit: u32) -> StoreResult<Vec<serde_json::Value>> {
        let rows: Vec<(i64, String, String, String, String, i64)> = fetch_all(
            self.pool(),
            "SELECT id, actor_id, actor_name, action, detail, at FROM audit_log
             ORDER BY id DESC LIMIT $1",
            args![limit],
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, actor_id, actor_name, action, detail, at)| {
                serde_json::json!({
                    "id": id,
                    "actor": {"id": actor_id, "username": actor_name},
                    "action": action,
                    "detail": serde_json::from_str::<serde_json::Value>(&detail).unwrap_or(serde_json::Value::Null),
                    "at": at,
                })
            })
            .collect())
    }

    async fn insert_job(&self, job: &JobRecord) -> StoreResult<()> {
        execute(
            self.pool(),
            "INSERT INTO jobs (id, user_id, kind, params, state, done, total, message, created_at,
                               updated_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            args![
                &job.id,
                &job.user_id,
                &job.kind,
                &job.params,
                &job.state,
                job.done,
                job.total,
                &job.message,
                job.created_at,
                job.updated_at,
                job.version,
            ],
        )
        .await?;
        Ok(())
    }

    async fn job(&self, id: &str) -> StoreResult<Option<JobRecord>> {
        let row: Option<JobRow> = fetch_optional(
            self.pool(),
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
            args![id],
        )
        .await?;
        Ok(row.map(JobRecord::from))
    }

    async fn jobs_of(&self, user_id: &str, limit: u32) -> StoreResult<Vec<JobRecord>> {
        let rows: Vec<JobRow> = fetch_all(
            self.pool(),
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE user_id = $1
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            ),
            args![user_id, limit],
        )
        .await?;
        Ok(rows.into_iter().map(JobRecord::from).collect())
    }

    async fn jobs_in_state(&self, state: &str) -> StoreResult<Vec<JobRecord>> {
        let rows: Vec<JobRow> = fetch_all(
            self.pool(),
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = $1 ORDER BY created_at"),
            args![state],
        )
        .await?;
        Ok(rows.into_iter().map(JobRecord::from).collect())
    }

    async fn save_job(
        &self,
        job: &JobRecord,
        snapshot: &(dyn for<'a> Fn(&'a JobRecord) -> String + Send + Sync),
    ) -> StoreResult<(JobRecord, StoredEvent)> {
        let mut t = self.write().await?;
        let row: JobRow = fetch_one(
            tx(&mut t),
            &format!(
                "UPDATE jobs SET state = $1, done = $2, total = $3, message = $4, result_path = $5,
                     started_at = $6, updated_at = $7, version = version + 1
                 WHERE id = $8
                 RETURNING {JOB_COLUMNS}"
            ),
            args![
                &job.state,
                job.done,
                job.total,
                &job.message,
                &job.result_path,
                job.started_at,
                job.updated_at,
                &job.id,
            ],
        )
        .await?;
        let saved: JobRecord = row.into();
        let new = events::job(&saved.user_id, snapshot(&saved), saved.updated_at);
        let mut events = append_events(&mut t, vec![new]).await?;
        t.commit().await?;
        let ev = events
            .pop()
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("no event appended")))?;
        Ok((saved, ev))
    }

    async fn request_cancel(&self, id: &str) -> StoreResult<Option<JobRecord>> {
        execute(
            self.pool(),
            "UPDATE jobs SET cancel = TRUE WHERE id = $1",
            args![id],
        )
        .await?;
        self.job(id).await
    }

    async fn messages_after(
        &self,
        room_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let rows: Vec<MessageRow> = fetch_all(
            self.pool(),
            &format!(
                "{MESSAGE_SELECT} WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3"
            ),
            args![room_id, after_seq, limit],
        )
        .await?;
        let out = rows.into_iter().map(MessageRow::message).collect();
        with_reactions(self.pool(), out).await
    }

    async fn message_count(&self, room_id: &str) -> StoreResult<i64> {
        let (n,): (i64,) = fetch_one(
            self.pool(),
            "SELECT COUNT(*) FROM messages WHERE room_id = $1",
            args![room_id],
        )
        .await?;
        Ok(n)
    }

    async fn create_upload(
        &self,
        id: &str,
        owner_id: &str,
        name: &str,
        content_type: &str,
        job_id: Option<&str>,
        now: i64,
    ) -> StoreResult<()> {
        execute(
            self.pool(),
            "INSERT INTO uploads (id, owner_id, name, content_type, job_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            args![id, owner_id, name, content_type, job_id, now],
        )
        .await?;
        Ok(())
    }

    async fn put_upload_chunk(&self, upload_id: &str, n: i64, bytes: &[u8]) -> StoreResult<()> {
        execute(
            self.pool(),
            "INSERT INTO upload_chunks (upload_id, n, bytes) VALUES ($1, $2, $3)",
            args![upload_id, n, bytes],
        )
        .await?;
        Ok(())
    }

    async fn finish_upload(&self, upload_id: &str, done: &FinishedUpload) -> StoreResult<()> {
        let (thumb, thumb_type) = match &done.thumbnail {
            Some((bytes, ty)) => (Some(bytes.as_slice()), Some(ty.as_str())),
            None => (None, None),
        };
        execute(
            self.pool(),
            "UPDATE uploads SET size = $1, content_type = $2, width = $3, height = $4,
                    thumbnail = $5, thumbnail_type = $6, complete = $7
             WHERE id = $8",
            args![
                done.size,
                &done.content_type,
                done.width,
                done.height,
                thumb,
                thumb_type,
                true,
                upload_id
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_upload(&self, upload_id: &str) -> StoreResult<()> {
        let mut t = self.write().await?;
        execute(
            tx(&mut t),
            "DELETE FROM upload_chunks WHERE upload_id = $1",
            args![upload_id],
        )
        .await?;
        execute(
            tx(&mut t),
            "DELETE FROM uploads WHERE id = $1",
            args![upload_id],
        )
        .await?;
        t.commit().await?;
        Ok(())
    }

    async fn upload_for(
        &self,
        upload_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<UploadRecord>> {
        let row: Option<UploadRow> = fetch_optional(
            self.pool(),
            "SELECT u.id, u.owner_id, u.name, u.size, u.content_type, u.width, u.height,
                    u.message_id, u.created_at
             FROM uploads u
             WHERE u.id = $1 AND u.complete
               AND (u.owner_id = $2 OR EXISTS (
                    SELECT 1 FROM messages m
                    JOIN members mb ON mb.room_id = m.room_id AND mb.user_id = $2
                    WHERE m.id = u.message_id AND NOT m.deleted))",
            args![upload_id, user_id],
        )
        .await?;
        Ok(row.map(UploadRow::record))
    }

    async fn free_uploads(&self, owner_id: &str, ids: &[String]) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> =
            fetch_all(self.pool(), D::QUERIES.free_uploads, args![owner_id, ids]).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn upload_chunk(&self, upload_id: &str, n: i64) -> StoreResult<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = fetch_optional(
            self.pool(),
            "SELECT bytes FROM upload_chunks WHERE upload_id = $1 AND n = $2",
            args![upload_id, n],
        )
        .await?;
        Ok(row.map(|(b,)| b))
    }

    async fn upload_thumbnail(&self, upload_id: &str) -> StoreResult<Option<(Vec<u8>, String)>> {
        let row: Option<(Option<Vec<u8>>, Option<String>)> = fetch_optional(
            self.pool(),
            "SELECT thumbnail, thumbnail_type FROM uploads WHERE id = $1",
            args![upload_id],
        )
        .await?;
        Ok(match row {
            Some((Some(bytes), Some(ty))) => Some((bytes, ty)),
            _ => None,
        })
    }

    async fn uploaded_bytes_since(&self, owner_id: &str, since: i64) -> StoreResult<i64> {
        let (n,): (Option<i64>,) = fetch_one(
            self.pool(),
            "SELECT CAST(SUM(size) AS BIGINT) FROM uploads
             WHERE owner_id = $1 AND created_at >= $2 AND complete",
            args![owner_id, since],
        )
        .await?;
        Ok(n.unwrap_or(0))
    }

    async fn delete_orphan_uploads(&self, before: i64) -> StoreResult<u64> {
        let mut t = self.write().await?;
        execute(
            tx(&mut t),
            "DELETE FROM upload_chunks WHERE upload_id IN (
                 SELECT id FROM uploads
                 WHERE message_id IS NULL AND job_id IS NULL AND created_at < $1)",
            args![before],
        )
        .await?;
        let n = execute(
            tx(&mut t),
            "DELETE FROM uploads WHERE message_id IS NULL AND job_id IS NULL AND created_at < $1",
            args![before],
        )
        .await?;
        t.commit().await?;
        Ok(n)
    }

    async fn events_after(
        &self,
        user_id: &str,
        feeds: FeedSet,
        cursor: i64,
        through: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        let feed_list = Arg::TextList(feeds.iter().map(Feed::as_str).collect());
        let rows: Vec<EventRow> = fetch_all(
            self.pool(),
            D::QUERIES.events_after,
            vec![
                Arg::from(cursor),
                Arg::from(user_id),
                feed_list,
                Arg::from(limit),
                Arg::from(through),
            ],
        )
        .await?;
        rows.into_iter().map(EventRow::event).collect()
    }

    async fn events_between(
        &self,
        after: i64,
        through: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        let rows: Vec<EventRow> = fetch_all(
            self.pool(),
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3"
            ),
            args![after, through, limit],
        )
        .await?;
        rows.into_iter().map(EventRow::event).collect()
    }

    async fn membership_events(
        &self,
        room_id: &str,
        after: i64,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        let rows: Vec<EventRow> = fetch_all(
            self.pool(),
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE room_id = $1 AND id > $2 AND id < $3 \
                 AND kind = 'membership' AND user_id IS NULL ORDER BY id LIMIT $4"
            ),
            args![room_id, after, before.unwrap_or(i64::MAX), limit],
        )
        .await?;
        rows.into_iter().map(EventRow::event).collect()
    }

    async fn analyze(&self) -> StoreResult<()> {
        execute(self.pool(), "ANALYZE", args![]).await?;
        Ok(())
    }

    async fn head(&self) -> StoreResult<i64> {
        let row: Option<(i64,)> = fetch_optional(self.pool(), D::QUERIES.head, args![]).await?;
        Ok(row.map_or(0, |(head,)| head))
    }

    async fn log_floor(&self) -> StoreResult<i64> {
        let (min,): (Option<i64>,) =
            fetch_one(self.pool(), "SELECT MIN(id) FROM events", args![]).await?;
        match min {
            Some(min) => Ok(min - 1),
            None => self.head().await,
        }
    }

    async fn prune_point(&self, before_ts: i64) -> StoreResult<Option<i64>> {
        let (id,): (Option<i64>,) = fetch_one(
            self.pool(),
            "SELECT MAX(id) FROM events WHERE ts < $1",
            args![before_ts],
        )
        .await?;
        Ok(id)
    }

    async fn delete_events_through(&self, through: i64) -> StoreResult<u64> {
        execute(
            self.pool(),
            "DELETE FROM events WHERE id <= $1",
            args![through],
        )
        .await
    }

    async fn append(
        &self,
        feed: Feed,
        kind: &str,
        room_id: Option<&str>,
        user_id: Option<&str>,
        data: String,
        ts: i64,
    ) -> StoreResult<StoredEvent> {
        let mut t = self.write().await?;
        let ev = append_event(&mut t, feed, kind, room_id, user_id, data, ts).await?;
        t.commit().await?;
        Ok(ev)
    }

    async fn transport_prefs(&self, user_id: &str) -> StoreResult<(FeedTransports, FeedOverrides)> {
        let rows: Vec<(String, Option<String>, Option<String>)> = fetch_all(
            self.pool(),
            "SELECT feed, chosen, forced FROM transport_prefs WHERE user_id = $1",
            args![user_id],
        )
        .await?;
        let mut chosen = FeedTransports::defaults();
        let mut forced = FeedOverrides::default();
        for (feed, c, f) in rows {
            let Ok(feed) = Feed::from_str(&feed) else {
                continue;
            };
            if !CHOOSABLE_FEEDS.contains(&feed) {
                continue;
            }
            chosen.set(
                feed,
                c.and_then(|t| t.parse().ok())
                    .unwrap_or(default_transport(feed)),
            );
            forced.set(feed, f.and_then(|t| t.parse().ok()));
        }
        Ok((chosen, forced))
    }

    async fn set_transport_choice(
        &self,
        user_id: &str,
        feed: Feed,
        t: Option<Transport>,
    ) -> StoreResult<()> {
        self.set_pref(user_id, feed, "chosen", t).await
    }

    async fn set_transport_override(
        &self,
        user_id: &str,
        feed: Feed,
        t: Option<Transport>,
    ) -> StoreResult<()> {
        self.set_pref(user_id, feed, "forced", t).await
    }

    async fn switches(&self) -> StoreResult<Switches> {
        let rows: Vec<(String, bool)> = fetch_all(
            self.pool(),
            "SELECT transport, enabled FROM transport_switches",
            args![],
        )
        .await?;
        let mut switches = Switches::default();
        for (t, on) in rows {
            if let Ok(t) = t.parse::<Transport>() {
                switches.set(t, on);
            }
        }
        Ok(switches)
    }

    async fn set_switches(&self, switches: Switches) -> StoreResult<()> {
        let mut t = self.write().await?;
        for transport in Transport::ALL {
            execute(
                tx(&mut t),
                "INSERT INTO transport_switches (transport, enabled) VALUES ($1, $2)
                 ON CONFLICT (transport) DO UPDATE SET enabled = $2",
                args![transport.as_str(), switches.enabled(transport)],
            )
            .await?;
        }
        t.commit().await?;
        Ok(())
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = fetch_optional(
            self.pool(),
            "SELECT value FROM settings WHERE key = $1",
            args![key],
        )
        .await?;
        Ok(row.map(|(v,)| v))
    }

    async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        execute(
            self.pool(),
            "INSERT INTO settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = $2",
            args![key, value],
        )
        .await?;
        Ok(())
    }
}
