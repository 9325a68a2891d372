//! SQLite's side of the one SQL store (`sql.rs`): one file, WAL, foreign keys, a busy timeout
//! and a small pool; its query texts; event ids; multi-row inserts; and the group commit of a
//! batch of messages on a connection of its own. Writes run in `BEGIN IMMEDIATE` transactions so
//! two writers never deadlock on a lock upgrade, and that lock is what keeps event ids gapless:
//! only one transaction appends at a time, and the hub already serialises event-producing
//! writes, so the log commits in id order.

use super::events;
use super::sql::{Arg, Dialect, Exec, Queries, SqlStore};
use super::{NewMessage, NewNotification, SendOutcome, StoreError, StoreResult, StoredEvent};
use protocol::Message;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::Sqlite;
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

/// The store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

/// What the SQLite store keeps beside its pool: the group-commit writer.
#[derive(Clone, Default)]
pub struct Writer {
    /// The group-commit writer's own connection, opened on first use (see [`open_writer`]).
    pub(crate) writer: std::sync::Arc<std::sync::Mutex<Option<rusqlite::Connection>>>,
    /// The pool's `synchronous` level, read once: the writer's connection commits alike.
    synchronous: std::sync::Arc<tokio::sync::OnceCell<i64>>,
    /// Batches committed since the writer last asked for a checkpoint, and whether one runs.
    since_checkpoint: std::sync::Arc<std::sync::atomic::AtomicU32>,
    checkpointing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The writer's connection does not checkpoint on its own (that would sync the disk on the
/// thread running the batch); after this many batches it has one run on a pooled connection.
const CHECKPOINT_EVERY: u32 = 64;

impl SqlStore<Sqlite> {
    /// One attempt at a batch on the writer's connection (opened if missing), waiting at most
    /// `patience` for SQLite's write lock. A failed attempt leaves nothing begun.
    fn attempt(
        &self,
        msgs: &[NewMessage],
        synchronous: i64,
        patience: Duration,
    ) -> StoreResult<Result<Vec<SendOutcome>, BatchError>> {
        let mut slot = self.state.writer.lock().unwrap_or_else(|p| p.into_inner());
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
        if self.state.since_checkpoint.fetch_add(1, Relaxed) + 1 < CHECKPOINT_EVERY
            || self.state.checkpointing.swap(true, Relaxed)
        {
            return;
        }
        self.state.since_checkpoint.store(0, Relaxed);
        let (pool, running) = (self.pool.clone(), self.state.checkpointing.clone());
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
}

/// The query texts that differ from PostgreSQL's: JSON lists (`json_each`) where PostgreSQL
/// takes arrays, and the log's head from `AUTOINCREMENT`'s counter.
static QUERIES: Queries = Queries {
    room_select: "
    SELECT r.id, r.name, r.private,
           m.user_id IS NOT NULL AS is_member,
           CASE WHEN m.user_id IS NULL THEN 0 ELSE r.last_seq - m.read_seq END AS unread,
           i.user_id IS NOT NULL AS invited,
           o.id AS dm_user_id, o.username AS dm_username, o.display_name AS dm_display_name,
           r.topic, r.created_by,
           (SELECT COUNT(*) FROM members c WHERE c.room_id = r.id) AS member_count,
           (SELECT lm.id FROM messages lm WHERE lm.room_id = r.id AND lm.seq = m.read_seq) AS last_read
    FROM rooms r
    LEFT JOIN members m ON m.room_id = r.id AND m.user_id = $1
    LEFT JOIN invites i ON i.room_id = r.id AND i.user_id = $1
    LEFT JOIN users o ON r.dm_key IS NOT NULL AND o.id =
        CASE WHEN substr(r.dm_key, 1, 36) = $1 THEN substr(r.dm_key, 38) ELSE substr(r.dm_key, 1, 36) END",
    // One public room per name, whatever the case (the write lock is held: no race).
    room_name_taken: "SELECT name FROM rooms WHERE private = 0 AND dm_key IS NULL
                      AND lower(name) = lower($1) AND id <> $2 LIMIT 1",
    members_named: "SELECT u.id, u.username, u.is_admin, u.password_hash, u.display_name FROM users u
                    JOIN members m ON m.user_id = u.id AND m.room_id = $1
                    WHERE u.username IN (SELECT value FROM json_each($2))",
    count_own_notifications: "SELECT COUNT(*) FROM notifications
                              WHERE user_id = $1 AND id IN (SELECT value FROM json_each($2))",
    mark_notifications_read: "UPDATE notifications SET read = 1
                              WHERE user_id = $1 AND id IN (SELECT value FROM json_each($2))",
    events_after: "SELECT id, feed, kind, room_id, user_id, data, ts FROM events
             WHERE id > $1 AND id <= $5
               AND feed IN (SELECT value FROM json_each($3))
               AND (user_id = $2
                    OR (user_id IS NULL AND room_id IS NULL)
                    OR (user_id IS NULL AND room_id IN (SELECT room_id FROM members WHERE user_id = $2)))
             ORDER BY id LIMIT $4",
    // AUTOINCREMENT keeps the highest id ever used here, even when the log has been pruned.
    head: "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
    reactions_of: "SELECT r.message_id, r.emoji, u.id, u.username, u.display_name FROM reactions r
                   JOIN users u ON u.id = r.user_id
                   WHERE r.message_id IN (SELECT value FROM json_each($1))
                   ORDER BY r.message_id, r.rowid",
    uploads_of: "SELECT id, owner_id, name, size, content_type, width, height, message_id,
                 created_at FROM uploads
                 WHERE message_id IN (SELECT value FROM json_each($1))
                 ORDER BY message_id, position",
    free_uploads: "SELECT id FROM uploads
                   WHERE owner_id = $1 AND complete AND message_id IS NULL
                     AND id IN (SELECT value FROM json_each($2))",
    // Walks the index newest first (its rowid is the event id), so LIMIT stops the walk; the
    // snippet is made only for the rows returned.
    search: "SELECT m.id, m.room_id,
                    snippet(messages_fts, 0, '<<', '>>', '…', 24) AS snippet
             FROM messages_fts JOIN messages m ON m.event_id = messages_fts.rowid
             WHERE messages_fts MATCH $1 AND messages_fts.rowid < $2
               AND m.deleted = 0
               AND m.room_id IN (SELECT room_id FROM members WHERE user_id = $3)
               AND ($4 IS NULL OR m.room_id = $4)
               AND ($5 IS NULL OR m.author_id = $5)
             ORDER BY messages_fts.rowid DESC LIMIT $6",
};

/// Binds a statement's arguments with SQLite's types (lists as a JSON array).
fn bind<'a>(
    mut q: Query<'a, Sqlite, SqliteArguments<'a>>,
    args: Vec<Arg<'a>>,
) -> Query<'a, Sqlite, SqliteArguments<'a>> {
    for arg in args {
        q = match arg {
            Arg::Text(s) => q.bind(s),
            Arg::Int(n) => q.bind(n),
            Arg::Bool(b) => q.bind(b),
            Arg::Bytes(b) => q.bind(b),
            Arg::TextList(list) => q.bind(serde_json::Value::from(list).to_string()),
        };
    }
    q
}

/// One multi-row insert through sqlx: `head` followed by a row of `cols` placeholders per row.
async fn insert_values<'a>(
    conn: &'a mut SqliteConnection,
    head: &str,
    cols: usize,
    args: Vec<Arg<'a>>,
) -> StoreResult<()> {
    if args.is_empty() {
        return Ok(());
    }
    let sql = format!("{head} {}", placeholders(args.len() / cols, cols));
    bind(sqlx::query(&sql), args).execute(conn).await?;
    Ok(())
}

impl Dialect for Sqlite {
    type State = Writer;
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const QUERIES: &'static Queries = &QUERIES;

    /// FTS5: every term in double quotes (so no word is read as an operator or a column),
    /// `*` after a quoted prefix, a phrase as one quoted string; terms side by side are ANDed.
    fn search_match(terms: &[protocol::Term]) -> String {
        use protocol::Term;
        let quoted = |words: &[String], prefix: bool| {
            // The parser keeps only letters and digits, but a quote is doubled all the same.
            let inner = words.join(" ").replace('"', "\"\"");
            format!("\"{inner}\"{}", if prefix { "*" } else { "" })
        };
        terms
            .iter()
            .map(|t| match t {
                Term::Word { word, prefix } => quoted(std::slice::from_ref(word), *prefix),
                Term::Phrase { words, prefix } => quoted(words, *prefix),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    async fn execute<'a>(
        ex: Exec<'a, Self>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> sqlx::Result<u64> {
        let q = bind(sqlx::query(sql), args);
        let done = match ex {
            Exec::Pool(pool) => q.execute(pool).await?,
            Exec::Conn(conn) => q.execute(conn).await?,
        };
        Ok(done.rows_affected())
    }

    async fn fetch_all<'a>(
        ex: Exec<'a, Self>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> sqlx::Result<Vec<SqliteRow>> {
        let q = bind(sqlx::query(sql), args);
        match ex {
            Exec::Pool(pool) => q.fetch_all(pool).await,
            Exec::Conn(conn) => q.fetch_all(conn).await,
        }
    }

    async fn fetch_optional<'a>(
        ex: Exec<'a, Self>,
        sql: &'a str,
        args: Vec<Arg<'a>>,
    ) -> sqlx::Result<Option<SqliteRow>> {
        let q = bind(sqlx::query(sql), args);
        match ex {
            Exec::Pool(pool) => q.fetch_optional(pool).await,
            Exec::Conn(conn) => q.fetch_optional(conn).await,
        }
    }

    /// The transaction holds SQLite's write lock (`BEGIN IMMEDIATE`), so nobody else appends
    /// until it ends: the next ids follow everything ever handed out (AUTOINCREMENT never
    /// reuses an id, and an explicit id moves its counter on).
    async fn reserve_event_ids(conn: &mut SqliteConnection, _n: i64) -> StoreResult<i64> {
        let (next,): (i64,) = sqlx::query_as(NEXT_EVENT_ID).fetch_one(conn).await?;
        Ok(next)
    }

    async fn insert_events<'a>(
        conn: &'a mut SqliteConnection,
        events: &'a [StoredEvent],
    ) -> StoreResult<()> {
        let mut args = Vec::with_capacity(events.len() * 7);
        for e in events {
            args.extend([
                Arg::from(e.id),
                Arg::from(e.feed.as_str()),
                Arg::from(&e.kind),
                Arg::from(&e.room_id),
                Arg::from(&e.user_id),
                Arg::from(&e.data),
                Arg::from(e.ts),
            ]);
        }
        insert_values(
            conn,
            "INSERT INTO events (id, feed, kind, room_id, user_id, data, ts) VALUES",
            7,
            args,
        )
        .await
    }

    async fn insert_messages<'a>(
        conn: &'a mut SqliteConnection,
        msgs: &'a [&'a Message],
    ) -> StoreResult<()> {
        let mut args = Vec::with_capacity(msgs.len() * 9);
        for m in msgs {
            args.extend([
                Arg::from(&m.id),
                Arg::from(&m.room_id),
                Arg::from(m.seq),
                Arg::from(&m.author.id),
                Arg::from(&m.body),
                Arg::from(&m.client_id),
                Arg::from(m.created_at),
                Arg::from(m.event_id),
                Arg::Text(m.reply_to.as_ref().map(|r| r.id.as_str())),
            ]);
        }
        insert_values(
            conn,
            "INSERT INTO messages (id, room_id, seq, author_id, body, client_id, created_at, event_id,
                                   reply_to)
             VALUES",
            9,
            args,
        )
        .await
    }

    async fn insert_notification_rows<'a>(
        conn: &'a mut SqliteConnection,
        items: &'a [&'a NewNotification],
    ) -> StoreResult<()> {
        let mut args = Vec::with_capacity(items.len() * 7);
        for n in items {
            args.extend([
                Arg::from(&n.id),
                Arg::from(&n.user_id),
                Arg::from(&n.kind),
                Arg::from(&n.title),
                Arg::from(&n.body),
                Arg::from(&n.link),
                Arg::from(n.now),
            ]);
        }
        insert_values(
            conn,
            "INSERT INTO notifications (id, user_id, kind, title, body, link, created_at) VALUES",
            7,
            args,
        )
        .await
    }

    /// Nothing to take: `BEGIN IMMEDIATE` already holds the one write lock.
    async fn lock_signups(_conn: &mut SqliteConnection) -> StoreResult<()> {
        Ok(())
    }

    /// Nothing to take: `BEGIN IMMEDIATE` already holds the one write lock.
    async fn lock_room_name<'a>(
        _conn: &'a mut SqliteConnection,
        _name: &'a str,
    ) -> StoreResult<()> {
        Ok(())
    }

    async fn send_batch<'a>(
        store: &'a SqlStore<Self>,
        msgs: &'a [NewMessage],
    ) -> StoreResult<Vec<StoreResult<SendOutcome>>> {
        let synchronous = *store
            .state
            .synchronous
            .get_or_try_init(|| async {
                sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                    .fetch_one(&store.pool)
                    .await
            })
            .await?;
        // Right here on this worker when nothing can make it wait: in WAL mode below FULL a
        // commit does not sync, and the write lock is only tried. Otherwise (the lock is taken,
        // or every commit syncs) the worker hands its other tasks on first.
        let first = if synchronous < 2 {
            store.attempt(msgs, synchronous, Duration::ZERO)?
        } else {
            Err(BatchError::Busy)
        };
        let result = match first {
            Err(BatchError::Busy) => blocking(|| store.attempt(msgs, synchronous, BUSY_TIMEOUT))?,
            other => other,
        };
        match result {
            Ok(outcomes) => {
                store.count_batch();
                Ok(outcomes.into_iter().map(Ok).collect())
            }
            Err(e) => {
                // One by one, each message in its own savepoint (see `send_one_by_one`).
                tracing::debug!(error = %e, "batch insert failed; sending one by one");
                store.send_one_by_one(msgs).await
            }
        }
    }
}

/// The next event id: after everything ever handed out (`sqlite_sequence`) and everything in
/// the log. Read under the write lock.
const NEXT_EVENT_ID: &str =
    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
                COALESCE((SELECT MAX(id) FROM events), 0)) + 1";

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
    let mut next_id: i64 = conn
        .prepare_cached(NEXT_EVENT_ID)?
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
        let (message, event) = events::message_event(events::message(m, seq, next_id))
            .map_err(|e| BatchError::Failed(e.to_string()))?;
        let mut own = vec![event];
        next_id += 1;
        for n in &m.notify {
            let ev = events::notification(n);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Synchronous;
    use crate::store::Store;
    use protocol::User;

    fn message(room_id: &str, author: &User, client_id: &str) -> NewMessage {
        NewMessage {
            id: crate::clock::new_id().into(),
            room_id: room_id.into(),
            author: author.clone(),
            body: format!("body of {client_id}"),
            client_id: client_id.to_string(),
            now: 1,
            notify: Vec::new(),
            reply_to: None,
            attachments: Vec::new(),
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
            let slot = store.state.writer.lock().unwrap();
            let conn = slot.as_ref().expect("the writer's connection is open");
            conn.pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap()
        };
        assert_eq!(level, 2, "FULL, as the pool");

        // A pooled connection holds the write lock while the batch starts.
        let mut holder = store.pool.acquire().await.unwrap();
        let mut tx = holder.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("UPDATE rooms SET name = 'renamed' WHERE id = ?")
            .bind(room.id.as_str())
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
