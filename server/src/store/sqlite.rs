//! The SQLite implementation of [`Store`]: one file, WAL, foreign keys, a busy timeout and a small
//! pool. Writes run in `BEGIN IMMEDIATE` transactions so two writers never deadlock on a lock
//! upgrade; the hub already serialises event-producing writes, so the log commits in id order.

use super::{
    events, EventRow, JobRecord, NewMessage, NewNotification, ReadSelection, RoomAccess,
    SendOutcome, Store, StoreError, StoreResult, StoredEvent, UserRecord,
};
use async_trait::async_trait;
use protocol::{
    default_transport, kind, Author, Feed, FeedOverrides, FeedSet, FeedTransports, Message,
    Notification, Room, Switches, Transport, User, CHOOSABLE_FEEDS,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{FromRow, Sqlite, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// How long a connection waits for a lock before failing with "database is locked". Writers are
/// short, so seconds of waiting already means something is wrong.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens (creating if missing) the database file and runs the embedded migrations.
pub async fn connect(
    url: &str,
    max_connections: u32,
    synchronous: crate::config::Synchronous,
    busy_timeout: Duration,
) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL in WAL mode: a commit survives a process crash; the last commits may be lost on
        // power loss. FULL syncs the WAL at every commit (see README, durability).
        .synchronous(match synchronous {
            crate::config::Synchronous::Normal => SqliteSynchronous::Normal,
            crate::config::Synchronous::Full => SqliteSynchronous::Full,
        })
        .foreign_keys(true)
        .busy_timeout(busy_timeout);
    if let Some(dir) = options.get_filename().parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections.max(2))
        // No ping before handing out a connection: it is a file in this process, not a peer
        // that may have gone away, and each ping is a round trip to the connection's thread.
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// The directory holding the database file (exports are written beside it).
pub fn data_dir(url: &str) -> anyhow::Result<std::path::PathBuf> {
    let options = SqliteConnectOptions::from_str(url)?;
    Ok(options
        .get_filename()
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default())
}

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The group-commit writer's own connection, opened on first use (see [`open_writer`]).
    writer: std::sync::Arc<std::sync::Mutex<Option<rusqlite::Connection>>>,
    /// The pool's `synchronous` level, read once: the writer's connection commits alike.
    synchronous: std::sync::Arc<tokio::sync::OnceCell<i64>>,
    /// Batches committed since the writer last asked for a checkpoint, and whether one runs.
    since_checkpoint: std::sync::Arc<std::sync::atomic::AtomicU32>,
    checkpointing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The writer's connection does not checkpoint on its own (that would sync the disk on the
/// thread running the batch); after this many batches it has one run on a pooled connection.
const CHECKPOINT_EVERY: u32 = 64;

impl SqliteStore {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteStore {
            pool,
            writer: Default::default(),
            synchronous: Default::default(),
            since_checkpoint: Default::default(),
            checkpointing: Default::default(),
        }
    }

    /// One attempt at a batch on the writer's connection (opened if missing), waiting at most
    /// `patience` for SQLite's write lock. A failed attempt leaves nothing begun.
    fn attempt(
        &self,
        msgs: &[NewMessage],
        synchronous: i64,
        patience: Duration,
    ) -> StoreResult<Result<Vec<SendOutcome>, BatchError>> {
        let mut slot = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let conn = match slot.take() {
            Some(conn) => conn,
            None => open_writer(&self.pool.connect_options(), synchronous)
                .map_err(|e| StoreError::Other(anyhow::anyhow!("writer connection: {e}")))?,
        };
        let result = conn
            .busy_timeout(patience)
            .map_err(BatchError::from)
            .and_then(|()| send_batch_on(&conn, msgs));
        // Undo what the batch began; a connection that cannot is closed (closing rolls back)
        // and the next attempt opens a fresh one.
        if result.is_err() && !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return Ok(result);
        }
        *slot = Some(conn);
        Ok(result)
    }

    /// Has a passive checkpoint run on a pooled connection every [`CHECKPOINT_EVERY`] batches
    /// (on that connection's thread; writers go on meanwhile).
    fn count_batch(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.since_checkpoint.fetch_add(1, Relaxed) + 1 < CHECKPOINT_EVERY
            || self.checkpointing.swap(true, Relaxed)
        {
            return;
        }
        self.since_checkpoint.store(0, Relaxed);
        let (pool, running) = (self.pool.clone(), self.checkpointing.clone());
        tokio::spawn(async move {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "checkpoint failed");
            }
            running.store(false, Relaxed);
        });
    }

    async fn write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Sets one column (`chosen` or `forced`, never user input) of a user's feed preference.
    async fn set_pref(
        &self,
        user_id: &str,
        feed: Feed,
        column: &'static str,
        t: Option<Transport>,
    ) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO transport_prefs (user_id, feed, {column}) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id, feed) DO UPDATE SET {column} = ?3"
        ))
        .bind(user_id)
        .bind(feed.as_str())
        .bind(t.map(Transport::as_str))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[derive(FromRow)]
struct UserRow {
    id: String,
    username: String,
    is_admin: bool,
    password_hash: String,
}

impl UserRow {
    fn user(&self) -> User {
        User {
            id: self.id.clone(),
            username: self.username.clone(),
            is_admin: self.is_admin,
        }
    }
}

#[derive(FromRow)]
struct RoomRow {
    id: String,
    name: String,
    private: bool,
    is_member: bool,
    unread: i64,
    invited: bool,
    dm_user_id: Option<String>,
    dm_username: Option<String>,
}

impl RoomRow {
    fn room(self) -> Room {
        let dm_with = match (self.dm_user_id, self.dm_username) {
            (Some(id), Some(username)) => Some(Author { id, username }),
            _ => None,
        };
        Room {
            id: self.id,
            name: self.name,
            private: self.private,
            is_member: self.is_member,
            unread: self.unread.max(0),
            dm_with,
        }
    }
}

/// Rooms as one user sees them. `?1` is the user id. For a DM, the other person comes from the
/// room's `dm_key` ("<id>:<id>", UUIDs of 36 characters).
const ROOM_SELECT: &str = "
    SELECT r.id, r.name, r.private,
           m.user_id IS NOT NULL AS is_member,
           CASE WHEN m.user_id IS NULL THEN 0 ELSE r.last_seq - m.read_seq END AS unread,
           i.user_id IS NOT NULL AS invited,
           o.id AS dm_user_id, o.username AS dm_username
    FROM rooms r
    LEFT JOIN members m ON m.room_id = r.id AND m.user_id = ?1
    LEFT JOIN invites i ON i.room_id = r.id AND i.user_id = ?1
    LEFT JOIN users o ON r.dm_key IS NOT NULL AND o.id =
        CASE WHEN substr(r.dm_key, 1, 36) = ?1 THEN substr(r.dm_key, 38) ELSE substr(r.dm_key, 1, 36) END";

#[derive(FromRow)]
struct MessageRow {
    id: String,
    room_id: String,
    seq: i64,
    author_id: String,
    author_name: String,
    body: String,
    client_id: String,
    created_at: i64,
    event_id: i64,
}

impl MessageRow {
    fn message(self) -> Message {
        Message {
            id: self.id,
            room_id: self.room_id,
            author: Author {
                id: self.author_id,
                username: self.author_name,
            },
            body: self.body,
            client_id: self.client_id,
            created_at: self.created_at,
            seq: self.seq,
            event_id: self.event_id,
        }
    }
}

const MESSAGE_SELECT: &str = "
    SELECT m.id, m.room_id, m.seq, m.author_id, u.username AS author_name, m.body, m.client_id,
           m.created_at, m.event_id
    FROM messages m JOIN users u ON u.id = m.author_id";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Appends one event to the log inside the caller's transaction.
async fn append_event(
    tx: &mut Transaction<'_, Sqlite>,
    feed: Feed,
    kind: &str,
    room_id: Option<&str>,
    user_id: Option<&str>,
    data: String,
    ts: i64,
) -> StoreResult<StoredEvent> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO events (feed, kind, room_id, user_id, data, ts) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(feed.as_str())
    .bind(kind)
    .bind(room_id)
    .bind(user_id)
    .bind(&data)
    .bind(ts)
    .fetch_one(&mut **tx)
    .await?;
    Ok(StoredEvent {
        id,
        feed,
        kind: kind.to_string(),
        room_id: room_id.map(str::to_string),
        user_id: user_id.map(str::to_string),
        data,
        ts,
    })
}

/// `rows` groups of `cols` placeholders for a multi-row VALUES list: `(?, ?), (?, ?)`.
fn placeholders(rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(", "));
    vec![row; rows].join(", ")
}

/// Why a batch did not commit. Nothing of it stays begun either way.
#[derive(Debug)]
enum BatchError {
    /// SQLite's write lock was taken (by a pooled connection) and the attempt was not to wait.
    Busy,
    /// Anything else: the batch goes one by one, where each message gets its own answer.
    Failed(String),
}

impl From<rusqlite::Error> for BatchError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) => BatchError::Busy,
            _ => BatchError::Failed(e.to_string()),
        }
    }
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Busy => f.write_str("database is locked"),
            BatchError::Failed(e) => f.write_str(e),
        }
    }
}

/// One multi-row insert: `head` followed by a row of `cols` placeholders per `cols` arguments.
fn insert_rows(
    conn: &rusqlite::Connection,
    head: &str,
    cols: usize,
    args: Vec<rusqlite::types::Value>,
) -> Result<(), BatchError> {
    let sql = format!("{head} {}", placeholders(args.len() / cols, cols));
    conn.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(args))?;
    Ok(())
}

/// Stores a batch of messages in one transaction on the writer's own connection, called on the
/// writer's thread without any round trip to another thread (see [`open_writer`]): `BEGIN
/// IMMEDIATE`, each room's seq update, the next event id, every insert, the authors' read
/// positions and `COMMIT`. Event ids are explicit: the transaction holds SQLite's write lock, so
/// nobody else appends meanwhile. Repeats of a client id within the batch take the first one's
/// message; a repeat of an earlier send fails the unique (author, client id) index, and so the
/// batch. On any error the transaction may still be open: the caller rolls back and goes one by
/// one (where the earlier send is looked up).
fn send_batch_on(
    conn: &rusqlite::Connection,
    msgs: &[NewMessage],
) -> Result<Vec<SendOutcome>, BatchError> {
    use std::collections::HashMap;
    // The first of each (author, client id) in the batch is new; rooms in first-seen order.
    let mut fresh: Vec<usize> = Vec::new();
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    let mut rooms: Vec<(&str, i64)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let key = (m.author.id.as_str(), m.client_id.as_str());
        if first_of.contains_key(&key) {
            continue;
        }
        first_of.insert(key, i);
        fresh.push(i);
        match rooms.iter_mut().find(|(r, _)| *r == m.room_id) {
            Some((_, n)) => *n += 1,
            None => rooms.push((m.room_id.as_str(), 1)),
        }
    }
    if fresh.is_empty() {
        return Ok(Vec::new());
    }
    // Seqs: each room moves forward by its count; its messages take the numbers in order. Event
    // ids follow everything ever handed out (AUTOINCREMENT never reuses an id).
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut last_seqs = Vec::with_capacity(rooms.len());
    {
        let mut bump = conn.prepare_cached(
            "UPDATE rooms SET last_seq = last_seq + ?1 WHERE id = ?2 RETURNING last_seq",
        )?;
        for (room, n) in &rooms {
            last_seqs.push(bump.query_row(rusqlite::params![n, room], |r| r.get::<_, i64>(0))?);
        }
    }
    // Ids follow everything ever handed out (AUTOINCREMENT never reuses an id).
    let mut next_id: i64 = conn
        .prepare_cached(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
                    COALESCE((SELECT MAX(id) FROM events), 0)) + 1",
        )?
        .query_row([], |r| r.get(0))?;
    let mut next_seq: HashMap<&str, i64> = rooms
        .iter()
        .zip(&last_seqs)
        .map(|((room, n), last)| (*room, last - n + 1))
        .collect();

    let mut created: HashMap<usize, (Message, Vec<StoredEvent>)> = HashMap::new();
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut notes: Vec<&NewNotification> = Vec::new();
    let mut read_to: HashMap<(&str, &str), i64> = HashMap::new();
    for &i in &fresh {
        let m = &msgs[i];
        let seq = next_seq.get_mut(m.room_id.as_str()).map_or(0, |s| {
            *s += 1;
            *s - 1
        });
        let message = events::message(m, seq, next_id);
        let mut own =
            vec![events::message_event(&message).map_err(|e| BatchError::Failed(e.to_string()))?];
        next_id += 1;
        for n in &m.notify {
            let ev = events::notification(n).map_err(|e| BatchError::Failed(e.to_string()))?;
            own.push(ev.with_id(next_id));
            next_id += 1;
            notes.push(n);
        }
        let pos = read_to
            .entry((m.room_id.as_str(), m.author.id.as_str()))
            .or_insert(seq);
        *pos = (*pos).max(seq);
        events.extend(own.iter().cloned());
        created.insert(i, (message, own));
    }

    // The inserts, each one multi-row statement (prepared once per batch shape), then COMMIT.
    use rusqlite::types::Value;
    let text = |s: &str| Value::Text(s.to_string());
    let opt = |s: &Option<String>| s.as_deref().map_or(Value::Null, text);
    let mut args: Vec<Value> = Vec::with_capacity(events.len() * 7);
    for e in &events {
        args.extend([
            Value::Integer(e.id),
            text(e.feed.as_str()),
            text(&e.kind),
            opt(&e.room_id),
            opt(&e.user_id),
            text(&e.data),
            Value::Integer(e.ts),
        ]);
    }
    insert_rows(
        conn,
        "INSERT INTO events (id, feed, kind, room_id, user_id, data, ts) VALUES",
        7,
        args,
    )?;
    let mut args: Vec<Value> = Vec::with_capacity(fresh.len() * 8);
    for &i in &fresh {
        let (m, _) = &created[&i];
        args.extend([
            text(&m.id),
            text(&m.room_id),
            Value::Integer(m.seq),
            text(&m.author.id),
            text(&m.body),
            text(&m.client_id),
            Value::Integer(m.created_at),
            Value::Integer(m.event_id),
        ]);
    }
    insert_rows(
        conn,
        "INSERT INTO messages (id, room_id, seq, author_id, body, client_id, created_at, event_id)
         VALUES",
        8,
        args,
    )?;
    if !notes.is_empty() {
        let mut args: Vec<Value> = Vec::with_capacity(notes.len() * 7);
        for n in &notes {
            args.extend([
                text(&n.id),
                text(&n.user_id),
                text(&n.kind),
                text(&n.title),
                text(&n.body),
                text(&n.link),
                Value::Integer(n.now),
            ]);
        }
        insert_rows(
            conn,
            "INSERT INTO notifications (id, user_id, kind, title, body, link, created_at) VALUES",
            7,
            args,
        )?;
    }
    // What I wrote, I have read.
    {
        let mut read = conn.prepare_cached(
            "UPDATE members SET read_seq = ?3 WHERE room_id = ?1 AND user_id = ?2 AND read_seq < ?3",
        )?;
        for ((room, user), seq) in &read_to {
            read.execute(rusqlite::params![room, user, seq])?;
        }
    }
    conn.execute_batch("COMMIT")?;

    // Outcomes in the batch's order; a repeat within the batch gets the first one's message.
    let mut out = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        match created.remove(&i) {
            Some((message, events)) => out.push(SendOutcome::Created(message, events)),
            None => {
                let first = first_of[&(m.author.id.as_str(), m.client_id.as_str())];
                let message = match &out[first] {
                    SendOutcome::Created(message, _) | SendOutcome::Existing(message) => {
                        message.clone()
                    }
                };
                out.push(SendOutcome::Existing(message));
            }
        }
    }
    Ok(out)
}

/// Opens the writer's connection: the pool's file (or shared in-memory database) through the
/// same SQLite library, with the pool's settings. WAL is the file's own mode, set by the pool.
///
/// Why a connection of its own, used without sqlx: every statement sqlx runs is a round trip to
/// that connection's thread, and under fan-out load each round trip waits for a CPU behind the
/// deliveries. A batch took two (down from nine), yet with the store replaced by nothing the
/// 4-poster SSE saturation doubled: those waits, not SQLite's work (well under a millisecond),
/// were the posting round trip. Here the writer runs the whole transaction where it is.
fn open_writer(
    options: &SqliteConnectOptions,
    synchronous: i64,
) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags as F;
    let name = options.get_filename();
    let mut flags = F::SQLITE_OPEN_READ_WRITE | F::SQLITE_OPEN_URI | F::SQLITE_OPEN_NO_MUTEX;
    if name.to_string_lossy().starts_with("file:sqlx-in-memory-") {
        flags |= F::SQLITE_OPEN_MEMORY | F::SQLITE_OPEN_SHARED_CACHE;
    }
    let conn = rusqlite::Connection::open_with_flags(name, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

/// Runs `f` here, on this thread. On a multi-threaded runtime the worker first hands its other
/// tasks to another thread, as `f` may wait: for the write lock, or for the disk (a WAL sync
/// under `synchronous=FULL`, a checkpoint).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// One by one, after the batch failed: each message in its own savepoint, so one that fails is
/// undone alone (and a repeat of an earlier send finds it) and the others still commit in one
/// transaction.
async fn send_one_by_one(
    conn: &mut sqlx::SqliteConnection,
    msgs: &[NewMessage],
) -> StoreResult<Vec<StoreResult<SendOutcome>>> {
    use sqlx::Connection;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut out = Vec::with_capacity(msgs.len());
    for msg in msgs {
        sqlx::query("SAVEPOINT send").execute(&mut *tx).await?;
        let outcome = send_in_tx(&mut tx, msg).await;
        if outcome.is_err() {
            sqlx::query("ROLLBACK TO send").execute(&mut *tx).await?;
        }
        sqlx::query("RELEASE send").execute(&mut *tx).await?;
        out.push(outcome);
    }
    tx.commit().await?;
    Ok(out)
}

/// Stores one message (or finds the earlier one with its client id) inside `tx`.
async fn send_in_tx(
    tx: &mut Transaction<'_, Sqlite>,
    msg: &NewMessage,
) -> StoreResult<SendOutcome> {
    let existing: Option<MessageRow> = sqlx::query_as(&format!(
        "{MESSAGE_SELECT} WHERE m.author_id = ? AND m.client_id = ?"
    ))
    .bind(&msg.author.id)
    .bind(&msg.client_id)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = existing {
        return Ok(SendOutcome::Existing(row.message()));
    }
    let (seq,): (i64,) =
        sqlx::query_as("UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq")
            .bind(&msg.room_id)
            .fetch_one(&mut **tx)
            .await?;
    // The event id is the message's place in the log; insert the event first to learn it,
    // then store the payload that names it.
    let mut ev = append_event(
        tx,
        Feed::Chat,
        kind::MESSAGE,
        Some(&msg.room_id),
        None,
        String::new(),
        msg.now,
    )
    .await?;
    let message = events::message(msg, seq, ev.id);
    ev.data = events::message_event(&message)?.data;
    sqlx::query("UPDATE events SET data = ? WHERE id = ?")
        .bind(&ev.data)
        .bind(ev.id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO messages (id, room_id, seq, author_id, body, client_id, created_at, event_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&message.id)
    .bind(&message.room_id)
    .bind(seq)
    .bind(&message.author.id)
    .bind(&message.body)
    .bind(&message.client_id)
    .bind(message.created_at)
    .bind(ev.id)
    .execute(&mut **tx)
    .await?;
    // What I wrote, I have read.
    sqlx::query(
        "UPDATE members SET read_seq = ? WHERE room_id = ? AND user_id = ? AND read_seq < ?",
    )
    .bind(seq)
    .bind(&message.room_id)
    .bind(&message.author.id)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    let mut events = vec![ev];
    events.extend(insert_notifications(tx, &msg.notify).await?);
    Ok(SendOutcome::Created(message, events))
}

async fn room_in_tx(
    tx: &mut Transaction<'_, Sqlite>,
    room_id: &str,
    user_id: &str,
) -> StoreResult<Option<RoomAccess>> {
    let row: Option<RoomRow> = sqlx::query_as(&format!("{ROOM_SELECT} WHERE r.id = ?2"))
        .bind(user_id)
        .bind(room_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| {
        let invited = r.invited;
        RoomAccess {
            room: r.room(),
            invited,
        }
    }))
}

/// Records a change of `user`'s membership as an event addressed to that user, carrying the room
/// as they now see it (so their open clients can update their room list and subscriptions).
async fn membership_event(
    tx: &mut Transaction<'_, Sqlite>,
    room_id: &str,
    user_id: &str,
    change: &str,
    now: i64,
) -> StoreResult<StoredEvent> {
    let room = room_in_tx(tx, room_id, user_id)
        .await?
        .ok_or_else(|| StoreError::Other(anyhow::anyhow!("room {room_id} vanished")))?;
    let ev = events::membership(&room.room, user_id, change, now);
    append_event(
        tx,
        ev.feed,
        &ev.kind,
        ev.room_id.as_deref(),
        ev.user_id.as_deref(),
        ev.data,
        ev.ts,
    )
    .await
}

async fn add_member(
    tx: &mut Transaction<'_, Sqlite>,
    room_id: &str,
    user_id: &str,
    now: i64,
) -> StoreResult<bool> {
    // A new member starts with everything already in the room read.
    let done = sqlx::query(
        "INSERT INTO members (room_id, user_id, joined_at, read_seq)
         SELECT ?1, ?2, ?3, last_seq FROM rooms WHERE id = ?1
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .bind(room_id)
    .bind(user_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

#[derive(FromRow)]
struct JobRow {
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
            id: r.id,
            user_id: r.user_id,
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

const JOB_SELECT: &str =
    "SELECT id, user_id, kind, params, state, done, total, message, result_path, cancel,
    created_at, started_at, updated_at, version FROM jobs";

#[derive(FromRow)]
struct NotificationRow {
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
            id: self.id,
            kind: self.kind,
            title: self.title,
            body: self.body,
            link: self.link,
            created_at: self.created_at,
            read: self.read,
        }
    }
}

/// Binds a notification's seven columns, in the order both notification inserts name them.
fn bind_notification<'q>(
    q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    n: &'q NewNotification,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    q.bind(&n.id)
        .bind(&n.user_id)
        .bind(&n.kind)
        .bind(&n.title)
        .bind(&n.body)
        .bind(&n.link)
        .bind(n.now)
}

/// Stores notifications and their events inside the caller's transaction.
async fn insert_notifications(
    tx: &mut Transaction<'_, Sqlite>,
    items: &[NewNotification],
) -> StoreResult<Vec<StoredEvent>> {
    let mut events = Vec::with_capacity(items.len());
    for n in items {
        bind_notification(
            sqlx::query(
                "INSERT INTO notifications (id, user_id, kind, title, body, link, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ),
            n,
        )
        .execute(&mut **tx)
        .await?;
        let ev = events::notification(n)?;
        events.push(
            append_event(
                tx,
                ev.feed,
                &ev.kind,
                ev.room_id.as_deref(),
                ev.user_id.as_deref(),
                ev.data,
                ev.ts,
            )
            .await?,
        );
    }
    Ok(events)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(
        &self,
        id: &str,
        username: &str,
        hash: &str,
        now: i64,
    ) -> StoreResult<User> {
        let mut tx = self.write().await?;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await?;
        let is_admin = count == 0;
        let res = sqlx::query(
            "INSERT INTO users (id, username, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(username)
        .bind(hash)
        .bind(is_admin)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict),
            other => {
                other?;
            }
        }
        tx.commit().await?;
        Ok(User {
            id: id.to_string(),
            username: username.to_string(),
            is_admin,
        })
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, username, is_admin, password_hash FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| UserRecord {
            user: r.user(),
            password_hash: r.password_hash,
        }))
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, username, is_admin, password_hash FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.user()))
    }

    async fn set_admin(&self, user_id: &str, is_admin: bool) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET is_admin = ? WHERE id = ?")
            .bind(is_admin)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT id, username, is_admin, password_hash FROM users ORDER BY username",
        )
        .fetch_all(&self.pool)
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
        let mut tx = self.write().await?;
        // One public room per name, whatever the case (the write lock is held: no race).
        if !private {
            let taken: Option<(String,)> = sqlx::query_as(
                "SELECT name FROM rooms WHERE private = 0 AND dm_key IS NULL AND lower(name) = lower(?) LIMIT 1",
            )
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((taken,)) = taken {
                return Err(StoreError::RoomNameTaken(taken));
            }
        }
        sqlx::query(
            "INSERT INTO rooms (id, name, private, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(name)
        .bind(private)
        .bind(&creator.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        add_member(&mut tx, id, &creator.id, now).await?;
        let ev = membership_event(&mut tx, id, &creator.id, "joined", now).await?;
        let room = room_in_tx(&mut tx, id, &creator.id)
            .await?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("room vanished")))?
            .room;
        let mut events = vec![ev];
        if !private {
            // To everyone (no room, no user): "Other rooms" grows live everywhere.
            let ev = events::room_created(&room, now)?;
            events.push(
                append_event(
                    &mut tx,
                    ev.feed,
                    &ev.kind,
                    ev.room_id.as_deref(),
                    ev.user_id.as_deref(),
                    ev.data,
                    ev.ts,
                )
                .await?,
            );
        }
        tx.commit().await?;
        Ok((room, events))
    }

    async fn own_solo_room(&self, user_id: &str, name: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT r.id FROM rooms r
             JOIN members m ON m.room_id = r.id AND m.user_id = ?1
             WHERE r.created_by = ?1 AND r.name = ?2 AND r.private = 1 AND r.dm_key IS NULL
               AND NOT EXISTS (SELECT 1 FROM members o WHERE o.room_id = r.id AND o.user_id <> ?1)
               AND NOT EXISTS (SELECT 1 FROM invites i WHERE i.room_id = r.id)
             ORDER BY r.created_at LIMIT 1",
        )
        .bind(user_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    async fn rooms_for(&self, user_id: &str) -> StoreResult<Vec<Room>> {
        let rows: Vec<RoomRow> = sqlx::query_as(&format!(
            "{ROOM_SELECT} WHERE m.user_id IS NOT NULL OR r.private = 0 OR i.user_id IS NOT NULL
             ORDER BY r.dm_key IS NOT NULL, lower(r.name), r.created_at"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(RoomRow::room).collect())
    }

    async fn room_for(&self, room_id: &str, user_id: &str) -> StoreResult<Option<RoomAccess>> {
        let row: Option<RoomRow> = sqlx::query_as(&format!("{ROOM_SELECT} WHERE r.id = ?2"))
            .bind(user_id)
            .bind(room_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| {
            let invited = r.invited;
            RoomAccess {
                room: r.room(),
                invited,
            }
        }))
    }

    async fn room_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT room_id FROM members WHERE user_id = ?")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn join(&self, room_id: &str, user: &User, now: i64) -> StoreResult<Vec<StoredEvent>> {
        let mut tx = self.write().await?;
        let added = add_member(&mut tx, room_id, &user.id, now).await?;
        sqlx::query("DELETE FROM invites WHERE room_id = ? AND user_id = ?")
            .bind(room_id)
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
        let mut events = Vec::new();
        if added {
            events.push(membership_event(&mut tx, room_id, &user.id, "joined", now).await?);
        }
        tx.commit().await?;
        Ok(events)
    }

    async fn leave(&self, room_id: &str, user: &User, now: i64) -> StoreResult<Vec<StoredEvent>> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM members WHERE room_id = ? AND user_id = ?")
            .bind(room_id)
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
        let mut events = Vec::new();
        if done.rows_affected() > 0 {
            events.push(membership_event(&mut tx, room_id, &user.id, "left", now).await?);
        }
        tx.commit().await?;
        Ok(events)
    }

    async fn invite(
        &self,
        room_id: &str,
        user: &User,
        by: &User,
        now: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        let mut tx = self.write().await?;
        let (member,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM members WHERE room_id = ? AND user_id = ?)",
        )
        .bind(room_id)
        .bind(&user.id)
        .fetch_one(&mut *tx)
        .await?;
        let mut events = Vec::new();
        if !member {
            let done = sqlx::query(
                "INSERT INTO invites (room_id, user_id, invited_by, created_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (room_id, user_id) DO NOTHING",
            )
            .bind(room_id)
            .bind(&user.id)
            .bind(&by.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                events.push(membership_event(&mut tx, room_id, &user.id, "invited", now).await?);
            }
        }
        tx.commit().await?;
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
        let mut tx = self.write().await?;
        let existing: Option<(String,)> = sqlx::query_as("SELECT id FROM rooms WHERE dm_key = ?")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
        let mut events = Vec::new();
        let (room_id, created) = match existing {
            Some((id,)) => (id, false),
            None => {
                sqlx::query(
                    "INSERT INTO rooms (id, name, private, dm_key, created_by, created_at) VALUES (?, ?, 1, ?, ?, ?)",
                )
                .bind(new_id)
                .bind(format!("{} & {}", me.username, other.username))
                .bind(&key)
                .bind(&me.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                (new_id.to_string(), true)
            }
        };
        // Either side may have left the DM; asking for it again brings both back.
        for user in [me, other] {
            if add_member(&mut tx, &room_id, &user.id, now).await? {
                events.push(membership_event(&mut tx, &room_id, &user.id, "joined", now).await?);
            }
        }
        let room = room_in_tx(&mut tx, &room_id, &me.id)
            .await?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("room vanished")))?
            .room;
        tx.commit().await?;
        Ok((room, created, events))
    }

    async fn send_message(&self, msg: NewMessage) -> StoreResult<SendOutcome> {
        let mut tx = self.write().await?;
        let outcome = send_in_tx(&mut tx, &msg).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn send_messages(
        &self,
        msgs: &[NewMessage],
    ) -> StoreResult<Vec<StoreResult<SendOutcome>>> {
        let synchronous = *self
            .synchronous
            .get_or_try_init(|| async {
                sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                    .fetch_one(&self.pool)
                    .await
            })
            .await?;
        // Right here on this worker when nothing can make it wait: in WAL mode below FULL a
        // commit does not sync, and the write lock is only tried. Otherwise (the lock is taken,
        // or every commit syncs) the worker hands its other tasks on first.
        let first = if synchronous < 2 {
            self.attempt(msgs, synchronous, Duration::ZERO)?
        } else {
            Err(BatchError::Busy)
        };
        let result = match first {
            Err(BatchError::Busy) => blocking(|| self.attempt(msgs, synchronous, BUSY_TIMEOUT))?,
            other => other,
        };
        match result {
            Ok(outcomes) => {
                self.count_batch();
                Ok(outcomes.into_iter().map(Ok).collect())
            }
            Err(e) => {
                tracing::debug!(error = %e, "batch insert failed; sending one by one");
                let mut conn = self.pool.acquire().await?;
                send_one_by_one(&mut conn, msgs).await
            }
        }
    }

    async fn messages(
        &self,
        room_id: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "{MESSAGE_SELECT} WHERE m.room_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?"
        ))
        .bind(room_id)
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Message> = rows.into_iter().map(MessageRow::message).collect();
        out.reverse();
        Ok(out)
    }

    async fn message_seq(&self, room_id: &str, message_id: &str) -> StoreResult<Option<i64>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM messages WHERE room_id = ? AND id = ?")
                .bind(room_id)
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(s,)| s))
    }

    async fn mark_read(&self, room_id: &str, user_id: &str, seq: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE members SET read_seq = ? WHERE room_id = ? AND user_id = ? AND read_seq < ?",
        )
        .bind(seq)
        .bind(room_id)
        .bind(user_id)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn members_named(&self, room_id: &str, usernames: &[String]) -> StoreResult<Vec<User>> {
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        let names = serde_json::to_string(usernames).map_err(|e| StoreError::Other(e.into()))?;
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.id, u.username, u.is_admin, u.password_hash FROM users u
             JOIN members m ON m.user_id = u.id AND m.room_id = ?1
             WHERE u.username IN (SELECT value FROM json_each(?2))",
        )
        .bind(room_id)
        .bind(names)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(UserRow::user).collect())
    }

    async fn room_members(&self, room_id: &str) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.id, u.username, u.is_admin, u.password_hash FROM users u
             JOIN members m ON m.user_id = u.id WHERE m.room_id = ? ORDER BY u.username",
        )
        .bind(room_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(UserRow::user).collect())
    }

    async fn notify(&self, items: Vec<NewNotification>) -> StoreResult<Vec<StoredEvent>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let events = insert_notifications(&mut tx, &items).await?;
        tx.commit().await?;
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
                let row: Option<(i64,)> =
                    sqlx::query_as("SELECT n FROM notifications WHERE id = ? AND user_id = ?")
                        .bind(id)
                        .bind(user_id)
                        .fetch_optional(&self.pool)
                        .await?;
                match row {
                    Some((n,)) => n,
                    None => return Ok(None),
                }
            }
        };
        let rows: Vec<NotificationRow> = sqlx::query_as(
            "SELECT id, kind, title, body, link, created_at, read FROM notifications
             WHERE user_id = ?1 AND n < ?2 AND (?3 = 0 OR read = 0)
             ORDER BY n DESC LIMIT ?4",
        )
        .bind(user_id)
        .bind(before_n)
        .bind(unread_only)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let (unread,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM notifications WHERE user_id = ? AND read = 0")
                .bind(user_id)
                .fetch_one(&self.pool)
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
        let mut tx = self.write().await?;
        match &which {
            ReadSelection::All => {
                sqlx::query("UPDATE notifications SET read = 1 WHERE user_id = ? AND read = 0")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            ReadSelection::Ids(ids) => {
                let list = serde_json::to_string(ids).map_err(|e| StoreError::Other(e.into()))?;
                let (mine,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM notifications WHERE user_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
                )
                .bind(user_id)
                .bind(&list)
                .fetch_one(&mut *tx)
                .await?;
                let distinct: std::collections::HashSet<&String> = ids.iter().collect();
                if mine as usize != distinct.len() {
                    return Ok(None);
                }
                sqlx::query("UPDATE notifications SET read = 1 WHERE user_id = ?1 AND id IN (SELECT value FROM json_each(?2))")
                    .bind(user_id)
                    .bind(&list)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let ev = events::read(user_id, &which, now);
        let ev = append_event(
            &mut tx,
            ev.feed,
            &ev.kind,
            ev.room_id.as_deref(),
            ev.user_id.as_deref(),
            ev.data,
            ev.ts,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(vec![ev]))
    }

    async fn all_user_ids(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM users")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn audit(
        &self,
        actor: &User,
        action: &str,
        detail: &serde_json::Value,
        at: i64,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO audit_log (actor_id, actor_name, action, detail, at) VALUES (?, ?, ?, ?, ?)")
            .bind(&actor.id)
            .bind(&actor.username)
            .bind(action)
            .bind(detail.to_string())
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn audit_log(&self, limit: u32) -> StoreResult<Vec<serde_json::Value>> {
        let rows: Vec<(i64, String, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, actor_id, actor_name, action, detail, at FROM audit_log ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
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
        sqlx::query(
            "INSERT INTO jobs (id, user_id, kind, params, state, done, total, message, created_at, updated_at, version)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&job.id)
        .bind(&job.user_id)
        .bind(&job.kind)
        .bind(&job.params)
        .bind(&job.state)
        .bind(job.done)
        .bind(job.total)
        .bind(&job.message)
        .bind(job.created_at)
        .bind(job.updated_at)
        .bind(job.version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn job(&self, id: &str) -> StoreResult<Option<JobRecord>> {
        let row: Option<JobRow> = sqlx::query_as(&format!("{JOB_SELECT} WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(JobRecord::from))
    }

    async fn jobs_of(&self, user_id: &str, limit: u32) -> StoreResult<Vec<JobRecord>> {
        let rows: Vec<JobRow> = sqlx::query_as(&format!(
            "{JOB_SELECT} WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?"
        ))
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(JobRecord::from).collect())
    }

    async fn jobs_in_state(&self, state: &str) -> StoreResult<Vec<JobRecord>> {
        let rows: Vec<JobRow> =
            sqlx::query_as(&format!("{JOB_SELECT} WHERE state = ? ORDER BY created_at"))
                .bind(state)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(JobRecord::from).collect())
    }

    async fn save_job(
        &self,
        job: &JobRecord,
        snapshot: &(dyn for<'a> Fn(&'a JobRecord) -> String + Send + Sync),
    ) -> StoreResult<(JobRecord, StoredEvent)> {
        let mut tx = self.write().await?;
        let row: JobRow = sqlx::query_as(
            "UPDATE jobs SET state = ?, done = ?, total = ?, message = ?, result_path = ?, started_at = ?,
                 updated_at = ?, version = version + 1
             WHERE id = ?
             RETURNING id, user_id, kind, params, state, done, total, message, result_path, cancel,
                 created_at, started_at, updated_at, version",
        )
        .bind(&job.state)
        .bind(job.done)
        .bind(job.total)
        .bind(&job.message)
        .bind(&job.result_path)
        .bind(job.started_at)
        .bind(job.updated_at)
        .bind(&job.id)
        .fetch_one(&mut *tx)
        .await?;
        let saved: JobRecord = row.into();
        let ev = events::job(&saved.user_id, snapshot(&saved), saved.updated_at);
        let ev = append_event(
            &mut tx,
            ev.feed,
            &ev.kind,
            ev.room_id.as_deref(),
            ev.user_id.as_deref(),
            ev.data,
            ev.ts,
        )
        .await?;
        tx.commit().await?;
        Ok((saved, ev))
    }

    async fn request_cancel(&self, id: &str) -> StoreResult<Option<JobRecord>> {
        sqlx::query("UPDATE jobs SET cancel = 1 WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.job(id).await
    }

    async fn messages_after(
        &self,
        room_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "{MESSAGE_SELECT} WHERE m.room_id = ? AND m.seq > ? ORDER BY m.seq LIMIT ?"
        ))
        .bind(room_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(MessageRow::message).collect())
    }

    async fn message_count(&self, room_id: &str) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages WHERE room_id = ?")
            .bind(room_id)
            .fetch_one(&self.pool)
            .await?;
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
        let feed_list = serde_json::to_string(&feeds.iter().map(Feed::as_str).collect::<Vec<_>>())
            .map_err(|e| StoreError::Other(e.into()))?;
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT id, feed, kind, room_id, user_id, data, ts FROM events
             WHERE id > ?1 AND id <= ?5
               AND feed IN (SELECT value FROM json_each(?3))
               AND (user_id = ?2
                    OR (user_id IS NULL AND room_id IS NULL)
                    OR (user_id IS NULL AND room_id IN (SELECT room_id FROM members WHERE user_id = ?2)))
             ORDER BY id LIMIT ?4",
        )
        .bind(cursor)
        .bind(user_id)
        .bind(feed_list)
        .bind(limit)
        .bind(through)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(EventRow::event).collect()
    }

    async fn events_between(
        &self,
        after: i64,
        through: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT id, feed, kind, room_id, user_id, data, ts FROM events
             WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(through)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(EventRow::event).collect()
    }

    async fn head(&self) -> StoreResult<i64> {
        // AUTOINCREMENT keeps the highest id ever used here, even when the log has been pruned.
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map_or(0, |(seq,)| seq))
    }

    async fn log_floor(&self) -> StoreResult<i64> {
        let (min,): (Option<i64>,) = sqlx::query_as("SELECT MIN(id) FROM events")
            .fetch_one(&self.pool)
            .await?;
        match min {
            Some(min) => Ok(min - 1),
            None => self.head().await,
        }
    }

    async fn prune_point(&self, before_ts: i64) -> StoreResult<Option<i64>> {
        let (id,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM events WHERE ts < ?")
            .bind(before_ts)
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    async fn delete_events_through(&self, through: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM events WHERE id <= ?")
            .bind(through)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
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
        let mut tx = self.write().await?;
        let ev = append_event(&mut tx, feed, kind, room_id, user_id, data, ts).await?;
        tx.commit().await?;
        Ok(ev)
    }

    async fn transport_prefs(&self, user_id: &str) -> StoreResult<(FeedTransports, FeedOverrides)> {
        let rows: Vec<(String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT feed, chosen, forced FROM transport_prefs WHERE user_id = ?")
                .bind(user_id)
                .fetch_all(&self.pool)
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
        let rows: Vec<(String, bool)> =
            sqlx::query_as("SELECT transport, enabled FROM transport_switches")
                .fetch_all(&self.pool)
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
        let mut tx = self.write().await?;
        for t in Transport::ALL {
            sqlx::query(
                "INSERT INTO transport_switches (transport, enabled) VALUES (?1, ?2)
                 ON CONFLICT (transport) DO UPDATE SET enabled = ?2",
            )
            .bind(t.as_str())
            .bind(switches.enabled(t))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(v,)| v))
    }

    async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Synchronous;

    fn message(room_id: &str, author: &User, client_id: &str) -> NewMessage {
        NewMessage {
            id: uuid::Uuid::new_v4().to_string(),
            room_id: room_id.to_string(),
            author: author.clone(),
            body: format!("body of {client_id}"),
            client_id: client_id.to_string(),
            now: 1,
            notify: Vec::new(),
        }
    }

    fn new_message(outcome: &StoreResult<SendOutcome>) -> Message {
        match outcome {
            Ok(SendOutcome::Created(m, _)) => m.clone(),
            other => panic!("not created: {other:?}"),
        }
    }

    /// A message that fails inside a group commit is undone alone: the others in its batch
    /// commit, in order, and a repeated client id in the same batch finds the first.
    #[tokio::test]
    async fn one_failed_message_does_not_sink_its_batch() {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::new(
            connect(&url, 2, Synchronous::Normal, BUSY_TIMEOUT)
                .await
                .unwrap(),
        );
        let alice = store.create_user("u1", "alice", "x", 1).await.unwrap();
        let (room, _) = store
            .create_room("r1", &alice, "r", false, 1)
            .await
            .unwrap();
        let batch = [
            message(&room.id, &alice, "a"),
            message("no-such-room", &alice, "b"),
            message(&room.id, &alice, "c"),
            message(&room.id, &alice, "a"),
        ];
        let out = store.send_messages(&batch).await.unwrap();
        let first = match &out[0] {
            Ok(SendOutcome::Created(m, events)) => {
                assert_eq!(events.len(), 1);
                m.clone()
            }
            other => panic!("first message not created: {other:?}"),
        };
        assert!(out[1].is_err(), "a message to a missing room fails");
        let third = new_message(&out[2]);
        match &out[3] {
            Ok(SendOutcome::Existing(m)) => assert_eq!(m.id, first.id),
            other => panic!("the repeated client id should find the first: {other:?}"),
        }
        assert!(third.event_id > first.event_id && third.seq == first.seq + 1);
        let stored = store.messages(&room.id, None, 10).await.unwrap();
        let ids: Vec<_> = stored.iter().map(|m| m.id.clone()).collect();
        assert_eq!(ids, vec![first.id, third.id]);
    }

    /// The fast path: two rooms and a repeated client id inside the batch; seqs per room and
    /// event ids follow the batch order. Then a batch with a repeat of an earlier send (it fails
    /// the unique index, rolls back and goes one by one), and a fast one again after it.
    #[tokio::test]
    async fn a_batch_numbers_rooms_and_events_in_order() {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::new(
            connect(&url, 2, Synchronous::Normal, BUSY_TIMEOUT)
                .await
                .unwrap(),
        );
        let alice = store.create_user("u1", "alice", "x", 1).await.unwrap();
        let (r1, _) = store
            .create_room("r1", &alice, "one", false, 1)
            .await
            .unwrap();
        let (r2, _) = store
            .create_room("r2", &alice, "two", false, 1)
            .await
            .unwrap();
        let first = store
            .send_messages(&[message(&r1.id, &alice, "old")])
            .await
            .unwrap();
        let old = new_message(&first[0]);
        let batch = [
            message(&r1.id, &alice, "a"),
            message(&r2.id, &alice, "b"),
            message(&r1.id, &alice, "c"),
            message(&r1.id, &alice, "a"),
        ];
        let out = store.send_messages(&batch).await.unwrap();
        let created: Vec<Message> = out[..3]
            .iter()
            .map(|o| match o {
                Ok(SendOutcome::Created(m, events)) => {
                    assert_eq!(events.len(), 1);
                    assert_eq!(events[0].id, m.event_id);
                    let data: Message = serde_json::from_str(&events[0].data).unwrap();
                    assert_eq!(&data, m, "the event carries the stored message");
                    m.clone()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            created
                .iter()
                .map(|m| (m.room_id.as_str(), m.seq))
                .collect::<Vec<_>>(),
            vec![
                (r1.id.as_str(), 2),
                (r2.id.as_str(), 1),
                (r1.id.as_str(), 3)
            ]
        );
        assert!(created
            .windows(2)
            .all(|w| w[0].event_id + 1 == w[1].event_id));
        assert!(created[0].event_id > old.event_id);
        match &out[3] {
            Ok(SendOutcome::Existing(m)) => assert_eq!(m.id, created[0].id),
            other => panic!("{other:?}"),
        }
        assert_eq!(out.len(), 4);
        // A repeat of an earlier batch's send: found, and the new message beside it is stored
        // once, right after the last event (the failed attempt left nothing behind).
        let out = store
            .send_messages(&[message(&r1.id, &alice, "old"), message(&r2.id, &alice, "d")])
            .await
            .unwrap();
        match &out[0] {
            Ok(SendOutcome::Existing(m)) => assert_eq!(m.id, old.id),
            other => panic!("{other:?}"),
        }
        let d = new_message(&out[1]);
        assert_eq!((d.seq, d.event_id), (2, created[2].event_id + 1));
        // And the next batch takes the fast path again on the writer's connection.
        let out = store
            .send_messages(&[message(&r1.id, &alice, "e")])
            .await
            .unwrap();
        let e = new_message(&out[0]);
        assert_eq!((e.seq, e.event_id), (4, d.event_id + 1));
        let stored = store.messages(&r1.id, None, 10).await.unwrap();
        assert_eq!(
            stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        let rooms = store.rooms_for(&alice.id).await.unwrap();
        assert!(
            rooms.iter().all(|r| r.unread == 0),
            "the author has read what they wrote"
        );
        assert_eq!(store.head().await.unwrap(), e.event_id);
    }

    /// The writer's own connection commits as the pool does (`synchronous=FULL` here), and a
    /// batch that finds SQLite's write lock taken by a pooled connection waits for it instead of
    /// failing (on a multi-threaded runtime, as the server runs).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_commits_like_the_pool_and_waits_for_the_lock() {
        use sqlx::Connection;
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::new(
            connect(&url, 3, Synchronous::Full, BUSY_TIMEOUT)
                .await
                .unwrap(),
        );
        let alice = store.create_user("u1", "alice", "x", 1).await.unwrap();
        let (room, _) = store
            .create_room("r1", &alice, "r", false, 1)
            .await
            .unwrap();
        let first = new_message(
            &store
                .send_messages(&[message(&room.id, &alice, "a")])
                .await
                .unwrap()[0],
        );
        let level: i64 = {
            let slot = store.writer.lock().unwrap();
            let conn = slot.as_ref().expect("the writer's connection is open");
            conn.pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap()
        };
        assert_eq!(level, 2, "FULL, as the pool");

        // A pooled connection holds the write lock while the batch starts.
        let mut holder = store.pool.acquire().await.unwrap();
        let mut tx = holder.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("UPDATE rooms SET name = 'renamed' WHERE id = ?")
            .bind(&room.id)
            .execute(&mut *tx)
            .await
            .unwrap();
        let sending = tokio::spawn({
            let (store, msg) = (store.clone(), message(&room.id, &alice, "b"));
            async move { store.send_messages(&[msg]).await }
        });
        tx.commit().await.unwrap();
        let out = sending.await.unwrap().unwrap();
        let second = new_message(&out[0]);
        assert_eq!(
            (second.seq, second.event_id),
            (first.seq + 1, first.event_id + 1)
        );
        let stored = store.messages(&room.id, None, 10).await.unwrap();
        assert_eq!(stored.len(), 2);
    }
}
