//! The PostgreSQL implementation of [`Store`]: the same behaviour as `sqlite.rs`, for several
//! servers sharing one database. Each change and the events it produces commit in one
//! transaction, as there.
//!
//! # Event ids
//!
//! Event ids must rise in the order anyone can observe the commits, on every server, and have
//! no gaps: a server's hub buffers an event that arrives ahead of its predecessor and fills a
//! gap from the database, so a missing id would mean waiting for an event that never comes, and
//! an id committed after a higher one would be skipped by a reader that already moved past it.
//!
//! A sequence (`BIGSERIAL`) gives neither: `nextval()` hands values out when called, the
//! transactions holding them commit in any order, and a rollback throws its value away. So ids
//! come from the one-row table `event_head` instead. A transaction that appends events does all
//! its other writes first, then `UPDATE event_head SET id = id + n RETURNING id` (see
//! [`reserve_event_ids`]) and inserts its events with the ids `head - n + 1 ..= head`. The
//! update holds the row's lock until commit or rollback, so:
//! - the next appender waits at its update until this one has committed (its ids are then
//!   visible) or rolled back (its ids are handed out again): commits happen in id order;
//! - a rollback (or `ROLLBACK TO SAVEPOINT`) undoes the increment: no gap.
//!
//! The price is that appenders serialise from their reservation to their commit, the same as
//! SQLite's single writer, which is why the reservation comes as late as possible. [`Store::head`]
//! reads the row, which survives pruning of the log.

use super::{
    events, EventRow, JobRecord, NewMessage, NewNotification, ReadSelection, RoomAccess,
    SendOutcome, Store, StoreError, StoreResult, StoredEvent, UserRecord,
};
use async_trait::async_trait;
use protocol::{
    default_transport, Author, Feed, FeedOverrides, FeedSet, FeedTransports, Message, Notification,
    Room, Switches, Transport, User, CHOOSABLE_FEEDS,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{FromRow, Postgres, Transaction};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

/// How long a request waits for a pooled connection before failing: a pool that stays empty
/// this long means the database is down or overloaded, and the client should hear so.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// The advisory lock key that serialises sign-ups (the first user becomes the administrator).
const SIGNUP_LOCK: i64 = 0x5357_4254_5553_4552;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations_pg");

/// Connects to the database at `url` and runs the embedded migrations (serialised across
/// servers by sqlx's advisory lock).
pub async fn connect(
    url: &str,
    max_connections: u32,
    lock_timeout: std::time::Duration,
) -> anyhow::Result<PgPool> {
    let options = sqlx::postgres::PgConnectOptions::from_str(url)?
        .options([("lock_timeout", format!("{}ms", lock_timeout.as_millis()))]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(2))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub fn new(pool: PgPool) -> Self {
        PgStore { pool }
    }

    async fn write(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
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
            "INSERT INTO transport_prefs (user_id, feed, {column}) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, feed) DO UPDATE SET {column} = $3"
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

    fn access(self) -> RoomAccess {
        let invited = self.invited;
        RoomAccess {
            room: self.room(),
            invited,
        }
    }
}

/// Rooms as one user sees them. `$1` is the user id. For a DM, the other person comes from the
/// room's `dm_key` ("<id>:<id>", UUIDs of 36 characters).
const ROOM_SELECT: &str = "
    SELECT r.id, r.name, r.private,
           m.user_id IS NOT NULL AS is_member,
           CASE WHEN m.user_id IS NULL THEN 0::BIGINT ELSE r.last_seq - m.read_seq END AS unread,
           i.user_id IS NOT NULL AS invited,
           o.id AS dm_user_id, o.username AS dm_username
    FROM rooms r
    LEFT JOIN members m ON m.room_id = r.id AND m.user_id = $1
    LEFT JOIN invites i ON i.room_id = r.id AND i.user_id = $1
    LEFT JOIN users o ON r.dm_key IS NOT NULL AND o.id =
        CASE WHEN substr(r.dm_key, 1, 36) = $1 THEN substr(r.dm_key, 38) ELSE substr(r.dm_key, 1, 36) END";

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

/// A page size as PostgreSQL's LIMIT takes it (sqlx binds no unsigned integers here).
fn limit(n: u32) -> i64 {
    i64::from(n)
}

/// Reserves the next `n` event ids for the caller's transaction and returns the first; the
/// caller inserts its events with ids `first .. first + n`. Call it after every other write of
/// the transaction: from here to commit the transaction holds `event_head`'s row lock, and every
/// other appender waits for it (see the module's documentation for why).
async fn reserve_event_ids(tx: &mut Transaction<'static, Postgres>, n: i64) -> StoreResult<i64> {
    let (head,): (i64,) = sqlx::query_as("UPDATE event_head SET id = id + $1 RETURNING id")
        .bind(n)
        .fetch_one(&mut **tx)
        .await?;
    Ok(head - n + 1)
}

/// Inserts events whose ids were reserved with [`reserve_event_ids`], in one statement.
async fn insert_events(
    tx: &mut Transaction<'static, Postgres>,
    events: &[StoredEvent],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut feeds = Vec::with_capacity(events.len());
    let mut kinds = Vec::with_capacity(events.len());
    let mut rooms = Vec::with_capacity(events.len());
    let mut users = Vec::with_capacity(events.len());
    let mut data = Vec::with_capacity(events.len());
    let mut ts = Vec::with_capacity(events.len());
    for e in events {
        ids.push(e.id);
        feeds.push(e.feed.as_str());
        kinds.push(e.kind.as_str());
        rooms.push(e.room_id.as_deref());
        users.push(e.user_id.as_deref());
        data.push(e.data.as_str());
        ts.push(e.ts);
    }
    sqlx::query(
        "INSERT INTO events (id, feed, kind, room_id, user_id, data, ts)
         SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                              $6::TEXT[], $7::BIGINT[])",
    )
    .bind(ids)
    .bind(feeds)
    .bind(kinds)
    .bind(rooms)
    .bind(users)
    .bind(data)
    .bind(ts)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends one event to the log inside the caller's transaction (as its last write).
async fn append_event(
    tx: &mut Transaction<'static, Postgres>,
    feed: Feed,
    kind: &str,
    room_id: Option<&str>,
    user_id: Option<&str>,
    data: String,
    ts: i64,
) -> StoreResult<StoredEvent> {
    let id = reserve_event_ids(tx, 1).await?;
    let ev = StoredEvent {
        id,
        feed,
        kind: kind.to_string(),
        room_id: room_id.map(str::to_string),
        user_id: user_id.map(str::to_string),
        data,
        ts,
    };
    insert_events(tx, std::slice::from_ref(&ev)).await?;
    Ok(ev)
}

/// A notification's event, with its reserved id.
fn notification_event(id: i64, n: &NewNotification) -> StoreResult<StoredEvent> {
    Ok(events::notification(n)?.with_id(id))
}

/// Inserts notification rows (not their events) in one statement.
async fn insert_notification_rows(
    tx: &mut Transaction<'static, Postgres>,
    items: &[&NewNotification],
) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&NewNotification) -> &str| items.iter().map(|n| f(n)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO notifications (id, user_id, kind, title, body, link, created_at)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                              $6::TEXT[], $7::BIGINT[])",
    )
    .bind(col(|n| &n.id))
    .bind(col(|n| &n.user_id))
    .bind(col(|n| &n.kind))
    .bind(col(|n| &n.title))
    .bind(col(|n| &n.body))
    .bind(col(|n| &n.link))
    .bind(items.iter().map(|n| n.now).collect::<Vec<i64>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores notifications and their events inside the caller's transaction (as its last writes).
async fn insert_notifications(
    tx: &mut Transaction<'static, Postgres>,
    items: &[NewNotification],
) -> StoreResult<Vec<StoredEvent>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let refs: Vec<&NewNotification> = items.iter().collect();
    insert_notification_rows(tx, &refs).await?;
    let first = reserve_event_ids(tx, items.len() as i64).await?;
    let events = items
        .iter()
        .zip(first..)
        .map(|(n, id)| notification_event(id, n))
        .collect::<StoreResult<Vec<_>>>()?;
    insert_events(tx, &events).await?;
    Ok(events)
}

/// Inserts messages in one statement.
async fn insert_messages(
    tx: &mut Transaction<'static, Postgres>,
    msgs: &[&Message],
) -> StoreResult<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&Message) -> &str| msgs.iter().map(|m| f(m)).collect::<Vec<_>>();
    let int = |f: fn(&Message) -> i64| msgs.iter().map(|m| f(m)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO messages (id, room_id, seq, author_id, body, client_id, created_at, event_id)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[],
                              $6::TEXT[], $7::BIGINT[], $8::BIGINT[])",
    )
    .bind(text(|m| &m.id))
    .bind(text(|m| &m.room_id))
    .bind(int(|m| m.seq))
    .bind(text(|m| &m.author.id))
    .bind(text(|m| &m.body))
    .bind(text(|m| &m.client_id))
    .bind(int(|m| m.created_at))
    .bind(int(|m| m.event_id))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores a batch of messages with a few statements: the earlier sends of repeated client ids
/// in one query, each room's seqs in one update (rooms in a fixed order, so two batches never
/// wait on each other in a cycle), the authors' read positions in one update, then the event
/// ids reserved in one step and the events, messages and notifications inserted with one
/// statement each. Any error fails the whole batch (the caller then goes one by one).
async fn send_batch_in_tx(
    tx: &mut Transaction<'static, Postgres>,
    msgs: &[NewMessage],
) -> StoreResult<Vec<SendOutcome>> {
    // Earlier sends with the same (author, client id).
    let mut existing: HashMap<(String, String), Message> = HashMap::new();
    if !msgs.is_empty() {
        let sql = format!(
            "{MESSAGE_SELECT} WHERE (m.author_id, m.client_id) IN
                 (SELECT a, c FROM UNNEST($1::TEXT[], $2::TEXT[]) AS t(a, c))"
        );
        let rows: Vec<MessageRow> = sqlx::query_as(&sql)
            .bind(
                msgs.iter()
                    .map(|m| m.author.id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                msgs.iter()
                    .map(|m| m.client_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let m = row.message();
            existing.insert((m.author.id.clone(), m.client_id.clone()), m);
        }
    }
    let existing_keys: HashSet<(&str, &str)> = existing
        .keys()
        .map(|(a, c)| (a.as_str(), c.as_str()))
        .collect();
    // Which messages are new (the first of a repeated client id in the batch), per room.
    let mut fresh: Vec<usize> = Vec::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut per_room: BTreeMap<&str, i64> = BTreeMap::new();
    let mut event_count: i64 = 0;
    for (i, m) in msgs.iter().enumerate() {
        let key = (m.author.id.as_str(), m.client_id.as_str());
        if existing_keys.contains(&key) || !seen.insert(key) {
            continue;
        }
        fresh.push(i);
        *per_room.entry(m.room_id.as_str()).or_default() += 1;
        event_count += 1 + m.notify.len() as i64;
    }
    // Seqs: each room moves forward by its count; its messages take the numbers in order.
    let mut next_seq: HashMap<&str, i64> = HashMap::new();
    for (room, n) in &per_room {
        let (last,): (i64,) = sqlx::query_as(
            "UPDATE rooms SET last_seq = last_seq + $1 WHERE id = $2 RETURNING last_seq",
        )
        .bind(n)
        .bind(room)
        .fetch_one(&mut **tx)
        .await?;
        next_seq.insert(room, last - n + 1);
    }
    let mut seqs: HashMap<usize, i64> = HashMap::new();
    let mut read_to: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for &i in &fresh {
        let m = &msgs[i];
        let seq = next_seq.get_mut(m.room_id.as_str()).map_or(0, |s| {
            *s += 1;
            *s - 1
        });
        seqs.insert(i, seq);
        let pos = read_to
            .entry((m.room_id.as_str(), m.author.id.as_str()))
            .or_insert(seq);
        *pos = (*pos).max(seq);
    }
    if !read_to.is_empty() {
        // What I wrote, I have read.
        sqlx::query(
            "UPDATE members SET read_seq = v.seq
             FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[]) AS v(room_id, user_id, seq)
             WHERE members.room_id = v.room_id AND members.user_id = v.user_id
               AND members.read_seq < v.seq",
        )
        .bind(read_to.keys().map(|(r, _)| *r).collect::<Vec<_>>())
        .bind(read_to.keys().map(|(_, u)| *u).collect::<Vec<_>>())
        .bind(read_to.values().copied().collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }

    // The event ids, last: from here to commit this transaction holds the log's head.
    let mut next_id = if event_count > 0 {
        reserve_event_ids(tx, event_count).await?
    } else {
        0
    };
    let mut created: HashMap<usize, (Message, Vec<StoredEvent>)> = HashMap::new();
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut notes: Vec<&NewNotification> = Vec::new();
    for &i in &fresh {
        let m = &msgs[i];
        let message = events::message(m, seqs.get(&i).copied().unwrap_or(0), next_id);
        let mut own = vec![events::message_event(&message)?];
        next_id += 1;
        for n in &m.notify {
            own.push(notification_event(next_id, n)?);
            next_id += 1;
            notes.push(n);
        }
        events.extend(own.iter().cloned());
        created.insert(i, (message, own));
    }
    insert_events(tx, &events).await?;
    let stored: Vec<&Message> = fresh.iter().map(|i| &created[i].0).collect();
    insert_messages(tx, &stored).await?;
    insert_notification_rows(tx, &notes).await?;

    // Outcomes in the batch's order; a repeat finds the earlier send (stored, or in this batch).
    let mut out = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        if let Some((message, events)) = created.remove(&i) {
            out.push(SendOutcome::Created(message, events));
            continue;
        }
        let key = (m.author.id.clone(), m.client_id.clone());
        let earlier = match existing.get(&key) {
            Some(found) => found.clone(),
            None => fresh
                .iter()
                .filter(|&&j| j < i)
                .find_map(|&j| {
                    let o = &msgs[j];
                    (o.author.id == m.author.id && o.client_id == m.client_id).then_some(j)
                })
                .map(|j| match &out[j] {
                    SendOutcome::Created(message, _) | SendOutcome::Existing(message) => {
                        message.clone()
                    }
                })
                .ok_or_else(|| StoreError::Other(anyhow::anyhow!("repeat without a first")))?,
        };
        out.push(SendOutcome::Existing(earlier));
    }
    Ok(out)
}

/// Stores one message (or finds the earlier one with its client id) inside `tx`.
async fn send_in_tx(
    tx: &mut Transaction<'static, Postgres>,
    msg: &NewMessage,
) -> StoreResult<SendOutcome> {
    let existing: Option<MessageRow> = sqlx::query_as(&format!(
        "{MESSAGE_SELECT} WHERE m.author_id = $1 AND m.client_id = $2"
    ))
    .bind(&msg.author.id)
    .bind(&msg.client_id)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = existing {
        return Ok(SendOutcome::Existing(row.message()));
    }
    let (seq,): (i64,) =
        sqlx::query_as("UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq")
            .bind(&msg.room_id)
            .fetch_one(&mut **tx)
            .await?;
    // What I wrote, I have read.
    sqlx::query(
        "UPDATE members SET read_seq = $1 WHERE room_id = $2 AND user_id = $3 AND read_seq < $1",
    )
    .bind(seq)
    .bind(&msg.room_id)
    .bind(&msg.author.id)
    .execute(&mut **tx)
    .await?;
    // The event ids, last (the message's payload names its own event id).
    let first = reserve_event_ids(tx, 1 + msg.notify.len() as i64).await?;
    let message = events::message(msg, seq, first);
    let mut events = vec![events::message_event(&message)?];
    for (n, id) in msg.notify.iter().zip(first + 1..) {
        events.push(notification_event(id, n)?);
    }
    insert_events(tx, &events).await?;
    insert_messages(tx, &[&message]).await?;
    let notes: Vec<&NewNotification> = msg.notify.iter().collect();
    insert_notification_rows(tx, &notes).await?;
    Ok(SendOutcome::Created(message, events))
}

async fn room_in_tx(
    tx: &mut Transaction<'static, Postgres>,
    room_id: &str,
    user_id: &str,
) -> StoreResult<Option<RoomAccess>> {
    let row: Option<RoomRow> = sqlx::query_as(&format!("{ROOM_SELECT} WHERE r.id = $2"))
        .bind(user_id)
        .bind(room_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(RoomRow::access))
}

/// Records a change of `user`'s membership as an event addressed to that user, carrying the room
/// as they now see it (so their open clients can update their room list and subscriptions).
async fn membership_event(
    tx: &mut Transaction<'static, Postgres>,
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
    tx: &mut Transaction<'static, Postgres>,
    room_id: &str,
    user_id: &str,
    now: i64,
) -> StoreResult<bool> {
    // A new member starts with everything already in the room read.
    let done = sqlx::query(
        "INSERT INTO members (room_id, user_id, joined_at, read_seq)
         SELECT $1, $2, $3, last_seq FROM rooms WHERE id = $1
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

const JOB_COLUMNS: &str = "id, user_id, kind, params, state, done, total, message, result_path,
    cancel, created_at, started_at, updated_at, version";

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

#[async_trait]
impl Store for PgStore {
    async fn create_user(
        &self,
        id: &str,
        username: &str,
        hash: &str,
        now: i64,
    ) -> StoreResult<User> {
        let mut tx = self.write().await?;
        // Sign-ups one at a time (across servers too), so exactly one first user is admin.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SIGNUP_LOCK)
            .execute(&mut *tx)
            .await?;
        let (any,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM users)")
            .fetch_one(&mut *tx)
            .await?;
        let is_admin = !any;
        let res = sqlx::query(
            "INSERT INTO users (id, username, password_hash, is_admin, created_at)
             VALUES ($1, $2, $3, $4, $5)",
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
            "SELECT id, username, is_admin, password_hash FROM users WHERE username = $1",
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
            sqlx::query_as("SELECT id, username, is_admin, password_hash FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.user()))
    }

    async fn set_admin(&self, user_id: &str, is_admin: bool) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET is_admin = $1 WHERE id = $2")
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
        // One public room per name, whatever the case. The advisory lock on the name makes two
        // servers creating the same name at once take turns.
        if !private {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('room:' || lower($1)))")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let taken: Option<(String,)> = sqlx::query_as(
                "SELECT name FROM rooms WHERE NOT private AND dm_key IS NULL AND lower(name) = lower($1 COLLATE \"C\") LIMIT 1",
            )
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((taken,)) = taken {
                return Err(StoreError::RoomNameTaken(taken));
            }
        }
        sqlx::query(
            "INSERT INTO rooms (id, name, private, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5)",
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
             JOIN members m ON m.room_id = r.id AND m.user_id = $1
             WHERE r.created_by = $1 AND r.name = $2 AND r.private AND r.dm_key IS NULL
               AND NOT EXISTS (SELECT 1 FROM members o WHERE o.room_id = r.id AND o.user_id <> $1)
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
            "{ROOM_SELECT} WHERE m.user_id IS NOT NULL OR NOT r.private OR i.user_id IS NOT NULL
             ORDER BY r.dm_key IS NOT NULL, lower(r.name), r.created_at"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(RoomRow::room).collect())
    }

    async fn room_for(&self, room_id: &str, user_id: &str) -> StoreResult<Option<RoomAccess>> {
        let row: Option<RoomRow> = sqlx::query_as(&format!("{ROOM_SELECT} WHERE r.id = $2"))
            .bind(user_id)
            .bind(room_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(RoomRow::access))
    }

    async fn room_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT room_id FROM members WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn join(&self, room_id: &str, user: &User, now: i64) -> StoreResult<Vec<StoredEvent>> {
        let mut tx = self.write().await?;
        let added = add_member(&mut tx, room_id, &user.id, now).await?;
        sqlx::query("DELETE FROM invites WHERE room_id = $1 AND user_id = $2")
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
        let done = sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
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
            "SELECT EXISTS (SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2)",
        )
        .bind(room_id)
        .bind(&user.id)
        .fetch_one(&mut *tx)
        .await?;
        let mut events = Vec::new();
        if !member {
            let done = sqlx::query(
                "INSERT INTO invites (room_id, user_id, invited_by, created_at)
                 VALUES ($1, $2, $3, $4)
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
        // Two servers may create the same pair's DM at once: the second insert waits for the
        // first and then does nothing, and both use the one room.
        let inserted: Option<(String,)> = sqlx::query_as(
            "INSERT INTO rooms (id, name, private, dm_key, created_by, created_at)
             VALUES ($1, $2, TRUE, $3, $4, $5)
             ON CONFLICT (dm_key) DO NOTHING RETURNING id",
        )
        .bind(new_id)
        .bind(format!("{} & {}", me.username, other.username))
        .bind(&key)
        .bind(&me.id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let (room_id, created) = match inserted {
            Some((id,)) => (id, true),
            None => {
                let (id,): (String,) = sqlx::query_as("SELECT id FROM rooms WHERE dm_key = $1")
                    .bind(&key)
                    .fetch_one(&mut *tx)
                    .await?;
                (id, false)
            }
        };
        // Either side may have left the DM; asking for it again brings both back. Both
        // memberships are written before the first event takes the log's head.
        let mut added = Vec::new();
        for user in [me, other] {
            if add_member(&mut tx, &room_id, &user.id, now).await? {
                added.push(user);
            }
        }
        let mut events = Vec::new();
        for user in added {
            events.push(membership_event(&mut tx, &room_id, &user.id, "joined", now).await?);
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
        // Fast path: the whole batch in a handful of statements (array parameters, so a batch
        // of any size is one round trip per statement).
        let mut tx = self.write().await?;
        match send_batch_in_tx(&mut tx, msgs).await {
            Ok(outcomes) => {
                tx.commit().await?;
                return Ok(outcomes.into_iter().map(Ok).collect());
            }
            Err(e) => {
                tracing::debug!(error = %e, "batch insert failed; sending one by one");
                tx.rollback().await?;
            }
        }
        // Slow path, after a failure: each message in its own savepoint, so one that fails is
        // undone alone (its event ids too) and the others still commit in one transaction.
        let mut tx = self.write().await?;
        let mut out = Vec::with_capacity(msgs.len());
        for msg in msgs {
            sqlx::query("SAVEPOINT send").execute(&mut *tx).await?;
            let outcome = send_in_tx(&mut tx, msg).await;
            if outcome.is_err() {
                sqlx::query("ROLLBACK TO SAVEPOINT send")
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("RELEASE SAVEPOINT send")
                .execute(&mut *tx)
                .await?;
            out.push(outcome);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn messages(
        &self,
        room_id: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "{MESSAGE_SELECT} WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
        ))
        .bind(room_id)
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(self::limit(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Message> = rows.into_iter().map(MessageRow::message).collect();
        out.reverse();
        Ok(out)
    }

    async fn message_seq(&self, room_id: &str, message_id: &str) -> StoreResult<Option<i64>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM messages WHERE room_id = $1 AND id = $2")
                .bind(room_id)
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(s,)| s))
    }

    async fn mark_read(&self, room_id: &str, user_id: &str, seq: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE members SET read_seq = $1 WHERE room_id = $2 AND user_id = $3 AND read_seq < $1",
        )
        .bind(seq)
        .bind(room_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn members_named(&self, room_id: &str, usernames: &[String]) -> StoreResult<Vec<User>> {
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.id, u.username, u.is_admin, u.password_hash FROM users u
             JOIN members m ON m.user_id = u.id AND m.room_id = $1
             WHERE u.username = ANY($2)",
        )
        .bind(room_id)
        .bind(usernames)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(UserRow::user).collect())
    }

    async fn room_members(&self, room_id: &str) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.id, u.username, u.is_admin, u.password_hash FROM users u
             JOIN members m ON m.user_id = u.id WHERE m.room_id = $1 ORDER BY u.username",
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
                    sqlx::query_as("SELECT n FROM notifications WHERE id = $1 AND user_id = $2")
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
             WHERE user_id = $1 AND n < $2 AND (NOT $3 OR NOT read)
             ORDER BY n DESC LIMIT $4",
        )
        .bind(user_id)
        .bind(before_n)
        .bind(unread_only)
        .bind(self::limit(limit))
        .fetch_all(&self.pool)
        .await?;
        let (unread,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND NOT read")
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
                sqlx::query("UPDATE notifications SET read = TRUE WHERE user_id = $1 AND NOT read")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            ReadSelection::Ids(ids) => {
                let (mine,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND id = ANY($2)",
                )
                .bind(user_id)
                .bind(ids)
                .fetch_one(&mut *tx)
                .await?;
                let distinct: HashSet<&String> = ids.iter().collect();
                if mine as usize != distinct.len() {
                    return Ok(None);
                }
                sqlx::query(
                    "UPDATE notifications SET read = TRUE WHERE user_id = $1 AND id = ANY($2)",
                )
                .bind(user_id)
                .bind(ids)
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
        sqlx::query(
            "INSERT INTO audit_log (actor_id, actor_name, action, detail, at)
             VALUES ($1, $2, $3, $4, $5)",
        )
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
            "SELECT id, actor_id, actor_name, action, detail, at FROM audit_log
             ORDER BY id DESC LIMIT $1",
        )
        .bind(self::limit(limit))
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
            "INSERT INTO jobs (id, user_id, kind, params, state, done, total, message, created_at,
                               updated_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        let row: Option<JobRow> =
            sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(JobRecord::from))
    }

    async fn jobs_of(&self, user_id: &str, limit: u32) -> StoreResult<Vec<JobRecord>> {
        let rows: Vec<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE user_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(user_id)
        .bind(self::limit(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(JobRecord::from).collect())
    }

    async fn jobs_in_state(&self, state: &str) -> StoreResult<Vec<JobRecord>> {
        let rows: Vec<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state = $1 ORDER BY created_at"
        ))
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
        let row: JobRow = sqlx::query_as(&format!(
            "UPDATE jobs SET state = $1, done = $2, total = $3, message = $4, result_path = $5,
                 started_at = $6, updated_at = $7, version = version + 1
             WHERE id = $8
             RETURNING {JOB_COLUMNS}"
        ))
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
        sqlx::query("UPDATE jobs SET cancel = TRUE WHERE id = $1")
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
            "{MESSAGE_SELECT} WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3"
        ))
        .bind(room_id)
        .bind(after_seq)
        .bind(self::limit(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(MessageRow::message).collect())
    }

    async fn message_count(&self, room_id: &str) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages WHERE room_id = $1")
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
        let feed_list: Vec<&str> = feeds.iter().map(Feed::as_str).collect();
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT id, feed, kind, room_id, user_id, data, ts FROM events
             WHERE id > $1 AND id <= $5
               AND feed = ANY($3)
               AND (user_id = $2
                    OR (user_id IS NULL AND room_id IS NULL)
                    OR (user_id IS NULL AND room_id IN (SELECT room_id FROM members WHERE user_id = $2)))
             ORDER BY id LIMIT $4",
        )
        .bind(cursor)
        .bind(user_id)
        .bind(feed_list)
        .bind(self::limit(limit))
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
             WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3",
        )
        .bind(after)
        .bind(through)
        .bind(self::limit(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(EventRow::event).collect()
    }

    async fn head(&self) -> StoreResult<i64> {
        // Committed reservations only: an appender's raised head is invisible until it commits.
        let (head,): (i64,) = sqlx::query_as("SELECT id FROM event_head")
            .fetch_one(&self.pool)
            .await?;
        Ok(head)
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
        let (id,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM events WHERE ts < $1")
            .bind(before_ts)
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    async fn delete_events_through(&self, through: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM events WHERE id <= $1")
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
            sqlx::query_as("SELECT feed, chosen, forced FROM transport_prefs WHERE user_id = $1")
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
                "INSERT INTO transport_switches (transport, enabled) VALUES ($1, $2)
                 ON CONFLICT (transport) DO UPDATE SET enabled = $2",
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
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(v,)| v))
    }

    async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = $2",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// These need the PostgreSQL server named by `SWITCHBOARD_TEST_POSTGRES` (a URL without a
/// database, e.g. `postgres://postgres@127.0.0.1:5432`) and run, each in a fresh database, with
/// `cargo test -p server -- --include-ignored` (as `scripts/test.sh` does when PostgreSQL is up).
#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    /// A store on a fresh database, and the database's name (for dropping it).
    async fn fresh() -> (PgStore, String, String) {
        let base = std::env::var("SWITCHBOARD_TEST_POSTGRES")
            .ok()
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .expect("SWITCHBOARD_TEST_POSTGRES names the PostgreSQL server for this test");
        let name = format!("sbt_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&format!("{base}/test"))
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap();
        let pool = connect(&format!("{base}/{name}"), 8, Duration::from_secs(5))
            .await
            .unwrap();
        (PgStore::new(pool), base, name)
    }

    async fn drop_db(store: PgStore, base: &str, name: &str) {
        store.pool.close().await;
        let mut admin = sqlx::PgConnection::connect(&format!("{base}/test"))
            .await
            .unwrap();
        sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
    }

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

    /// A message that fails inside a group commit is undone alone (its event id too): the
    /// others in its batch commit, in order, and a repeated client id finds the first.
    #[tokio::test]
    #[ignore = "needs PostgreSQL (SWITCHBOARD_TEST_POSTGRES)"]
    async fn one_failed_message_does_not_sink_its_batch() {
        let (store, base, name) = fresh().await;
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
        let third = match &out[2] {
            Ok(SendOutcome::Created(m, _)) => m.clone(),
            other => panic!("third message not created: {other:?}"),
        };
        match &out[3] {
            Ok(SendOutcome::Existing(m)) => assert_eq!(m.id, first.id),
            other => panic!("the repeated client id should find the first: {other:?}"),
        }
        assert_eq!(third.event_id, first.event_id + 1, "no gap where b failed");
        assert_eq!(third.seq, first.seq + 1);
        let stored = store.messages(&room.id, None, 10).await.unwrap();
        let ids: Vec<_> = stored.iter().map(|m| m.id.clone()).collect();
        assert_eq!(ids, vec![first.id, third.id]);
        assert_eq!(store.head().await.unwrap(), third.event_id);
        drop_db(store, &base, &name).await;
    }

    /// The fast path: two rooms, a repeated client id inside the batch and one from an earlier
    /// batch; seqs per room and event ids follow the batch order.
    #[tokio::test]
    #[ignore = "needs PostgreSQL (SWITCHBOARD_TEST_POSTGRES)"]
    async fn a_batch_numbers_rooms_and_events_in_order() {
        let (store, base, name) = fresh().await;
        let alice = store.create_user("u1", "alice", "x", 1).await.unwrap();
        let bob = store.create_user("u2", "bob", "x", 1).await.unwrap();
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
        let old = match &first[0] {
            Ok(SendOutcome::Created(m, _)) => m.clone(),
            other => panic!("{other:?}"),
        };
        let mut mention = message(&r2.id, &alice, "b");
        mention.notify.push(NewNotification {
            id: "n1".into(),
            user_id: bob.id.clone(),
            kind: "mention".into(),
            title: "t".into(),
            body: "b".into(),
            link: "/".into(),
            now: 1,
        });
        let batch = [
            message(&r1.id, &alice, "a"),
            mention,
            message(&r1.id, &alice, "c"),
            message(&r1.id, &alice, "a"),
            message(&r1.id, &alice, "old"),
        ];
        let out = store.send_messages(&batch).await.unwrap();
        let mut all_events = Vec::new();
        let created: Vec<Message> = out[..3]
            .iter()
            .map(|o| match o {
                Ok(SendOutcome::Created(m, events)) => {
                    assert_eq!(events[0].id, m.event_id);
                    let data: Message = serde_json::from_str(&events[0].data).unwrap();
                    assert_eq!(&data, m, "the event carries the stored message");
                    all_events.extend(events.iter().map(|e| e.id));
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
        assert!(all_events.windows(2).all(|w| w[0] + 1 == w[1]));
        assert_eq!(all_events.len(), 4, "three messages and a notification");
        assert_eq!(all_events[0], old.event_id + 1);
        match &out[3] {
            Ok(SendOutcome::Existing(m)) => assert_eq!(m.id, created[0].id),
            other => panic!("{other:?}"),
        }
        match &out[4] {
            Ok(SendOutcome::Existing(m)) => assert_eq!(m.id, old.id),
            other => panic!("{other:?}"),
        }
        let stored = store.messages(&r1.id, None, 10).await.unwrap();
        assert_eq!(
            stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let rooms = store.rooms_for(&alice.id).await.unwrap();
        assert!(
            rooms.iter().all(|r| r.unread == 0),
            "the author has read what they wrote"
        );
        let (notes, unread) = store
            .notifications(&bob.id, false, None, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((notes.len(), unread), (1, 1));
        assert_eq!(store.head().await.unwrap(), *all_events.last().unwrap());
        drop_db(store, &base, &name).await;
    }

    /// Many appenders at once, some rolling back: the committed ids are exactly 1..=head, and
    /// every id a reader can see has all lower ids visible with it.
    #[tokio::test]
    #[ignore = "needs PostgreSQL (SWITCHBOARD_TEST_POSTGRES)"]
    async fn concurrent_appends_commit_in_id_order_without_gaps() {
        let (store, base, name) = fresh().await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (pool, stop) = (store.pool.clone(), stop.clone());
            tokio::spawn(async move {
                // Whatever a reader sees is a prefix of the log: no id without its predecessor.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (count, max): (i64, Option<i64>) =
                        sqlx::query_as("SELECT COUNT(*), MAX(id) FROM events")
                            .fetch_one(&pool)
                            .await
                            .unwrap();
                    assert_eq!(count, max.unwrap_or(0), "a visible gap");
                }
            })
        };
        let mut tasks = Vec::new();
        for t in 0..6 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..40 {
                    let mut tx = store.write().await.unwrap();
                    append_event(&mut tx, Feed::Chat, "x", None, None, "{}".into(), 1)
                        .await
                        .unwrap();
                    if (t + i) % 5 == 0 {
                        tx.rollback().await.unwrap();
                    } else {
                        tx.commit().await.unwrap();
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.await.unwrap();
        let all = store.events_between(0, i64::MAX, 10_000).await.unwrap();
        let ids: Vec<i64> = all.iter().map(|e| e.id).collect();
        assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>());
        assert_eq!(store.head().await.unwrap(), ids.len() as i64);
        assert_eq!(
            ids.len(),
            6 * 40 - 6 * 8,
            "the rolled-back appends left nothing"
        );
        drop_db(store, &base, &name).await;
    }
}
