//! PostgreSQL's side of the one SQL store (`sql.rs`), for one or several servers sharing one
//! database: connecting and migrating, its query texts, gapless event ids, array-parameter batch
//! inserts, the advisory locks, and the group commit of a batch of messages.
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
//! SQLite's single writer, which is why the reservation comes as late as possible. `Store::head`
//! reads the row, which survives pruning of the log.

use super::events;
use super::sql::{Arg, Dialect, Exec, MessageRow, Queries, SqlStore, MESSAGE_SELECT};
use super::{NewMessage, NewNotification, SendOutcome, StoreError, StoreResult, StoredEvent};
use protocol::Message;
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};
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

/// The store on PostgreSQL.
pub type PgStore = SqlStore<Postgres>;

/// The query texts that differ from SQLite's: arrays where SQLite reads a JSON list, real
/// booleans, and the log's head in `event_head`.
static QUERIES: Queries = Queries {
    room_select: "
    SELECT r.id, r.name, r.private,
           m.user_id IS NOT NULL AS is_member,
           CASE WHEN m.user_id IS NULL THEN 0::BIGINT ELSE r.last_seq - m.read_seq END AS unread,
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
    room_name_taken: "SELECT name FROM rooms WHERE NOT private AND dm_key IS NULL
                      AND lower(name) = lower($1 COLLATE \"C\") AND id <> $2 LIMIT 1",
    members_named: "SELECT u.id, u.username, u.is_admin, u.password_hash, u.display_name FROM users u
                    JOIN members m ON m.user_id = u.id AND m.room_id = $1
                    WHERE u.username = ANY($2)",
    count_own_notifications:
        "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND id = ANY($2)",
    mark_notifications_read:
        "UPDATE notifications SET read = TRUE WHERE user_id = $1 AND id = ANY($2)",
    events_after: "SELECT id, feed, kind, room_id, user_id, data, ts FROM events
             WHERE id > $1 AND id <= $5
               AND feed = ANY($3)
               AND (user_id = $2
                    OR (user_id IS NULL AND room_id IS NULL)
                    OR (user_id IS NULL AND room_id IN (SELECT room_id FROM members WHERE user_id = $2)))
             ORDER BY id LIMIT $4",
    // Committed reservations only: an appender's raised head is invisible until it commits.
    head: "SELECT id FROM event_head",
    reactions_of: "SELECT r.message_id, r.emoji, u.id, u.username, u.display_name FROM reactions r
                   JOIN users u ON u.id = r.user_id
                   WHERE r.message_id = ANY($1)
                   ORDER BY r.message_id, r.n",
    uploads_of: "SELECT id, owner_id, name, size, content_type, width, height, message_id,
                 created_at FROM uploads
                 WHERE message_id = ANY($1)
                 ORDER BY message_id, position",
    free_uploads: "SELECT id FROM uploads
                   WHERE owner_id = $1 AND complete AND message_id IS NULL AND id = ANY($2)",
    // The page is chosen first (index on the tsvector or a walk down the event ids, as the
    // planner prefers), and ts_headline, which re-parses the body, runs only on it.
    search: "SELECT h.id, h.room_id,
                    ts_headline('simple', h.body, to_tsquery('simple', $1),
                                'StartSel=\"<<\", StopSel=\">>\", MinWords=12, MaxWords=24, \
                                 FragmentDelimiter=\" … \", MaxFragments=2') AS snippet
             FROM (SELECT m.id, m.room_id, m.body, m.event_id FROM messages m
                   WHERE m.search @@ to_tsquery('simple', $1) AND m.event_id < $2
                     AND NOT m.deleted
                     AND m.room_id IN (SELECT room_id FROM members WHERE user_id = $3)
                     AND ($4::TEXT IS NULL OR m.room_id = $4)
                     AND ($5::TEXT IS NULL OR m.author_id = $5)
                   ORDER BY m.event_id DESC LIMIT $6) h
             ORDER BY h.event_id DESC",
};

/// Binds a statement's arguments with PostgreSQL's types (lists as `TEXT[]`).
fn bind<'a>(
    mut q: Query<'a, Postgres, PgArguments>,
    args: Vec<Arg<'a>>,
) -> Query<'a, Postgres, PgArguments> {
    for arg in args {
        q = match arg {
            Arg::Text(s) => q.bind(s),
            Arg::Int(n) => q.bind(n),
            Arg::Bool(b) => q.bind(b),
            Arg::Bytes(b) => q.bind(b),
            Arg::TextList(list) => q.bind(list),
        };
    }
    q
}

impl Dialect for Postgres {
    type State = ();
    const BEGIN_WRITE: &'static str = "BEGIN";
    const QUERIES: &'static Queries = &QUERIES;

    /// tsquery: every word a quoted lexeme, `:*` for a prefix, a phrase as words joined by
    /// `<->` (next to each other, in order); terms joined by `&`.
    fn search_match(terms: &[protocol::Term]) -> String {
        use protocol::Term;
        // The parser keeps only letters and digits; quoting (with `'` and `\\` escaped)
        // makes any word a plain lexeme all the same.
        let lexeme = |w: &str, prefix: bool| {
            let w = w.replace('\\', "\\\\").replace('\'', "''");
            format!("'{w}'{}", if prefix { ":*" } else { "" })
        };
        terms
            .iter()
            .map(|t| match t {
                Term::Word { word, prefix } => lexeme(word, *prefix),
                Term::Phrase { words, prefix } => {
                    let last = words.len().saturating_sub(1);
                    let parts: Vec<String> = words
                        .iter()
                        .enumerate()
                        .map(|(i, w)| lexeme(w, *prefix && i == last))
                        .collect();
                    format!("({})", parts.join(" <-> "))
                }
            })
            .collect::<Vec<_>>()
            .join(" & ")
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
    ) -> sqlx::Result<Vec<PgRow>> {
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
    ) -> sqlx::Result<Option<PgRow>> {
        let q = bind(sqlx::query(sql), args);
        match ex {
            Exec::Pool(pool) => q.fetch_optional(pool).await,
            Exec::Conn(conn) => q.fetch_optional(conn).await,
        }
    }

    async fn reserve_event_ids(conn: &mut PgConnection, n: i64) -> StoreResult<i64> {
        reserve_event_ids(conn, n).await
    }

    async fn insert_events<'a>(
        conn: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> StoreResult<()> {
        insert_events(conn, events).await
    }

    async fn insert_messages<'a>(
        conn: &'a mut PgConnection,
        msgs: &'a [&'a Message],
    ) -> StoreResult<()> {
        insert_messages(conn, msgs).await
    }

    async fn insert_notification_rows<'a>(
        conn: &'a mut PgConnection,
        items: &'a [&'a NewNotification],
    ) -> StoreResult<()> {
        insert_notification_rows(conn, items).await
    }

    async fn lock_signups(conn: &mut PgConnection) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SIGNUP_LOCK)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn lock_room_name<'a>(conn: &'a mut PgConnection, name: &'a str) -> StoreResult<()> {
        // Two servers creating the same name at once take turns.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('room:' || lower($1)))")
            .bind(name)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn send_batch<'a>(
        store: &'a SqlStore<Self>,
        msgs: &'a [NewMessage],
    ) -> StoreResult<Vec<StoreResult<SendOutcome>>> {
        // Fast path: the whole batch in a handful of statements (array parameters, so a batch
        // of any size is one round trip per statement).
        let mut tx = store.write().await?;
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
        store.send_one_by_one(msgs).await
    }
}

/// Reserves the next `n` event ids for the caller's transaction and returns the first; the
/// caller inserts its events with ids `first .. first + n`. Call it after every other write of
/// the transaction: from here to commit the transaction holds `event_head`'s row lock, and every
/// other appender waits for it (see the module's documentation for why).
async fn reserve_event_ids(conn: &mut PgConnection, n: i64) -> StoreResult<i64> {
    let (head,): (i64,) = sqlx::query_as("UPDATE event_head SET id = id + $1 RETURNING id")
        .bind(n)
        .fetch_one(&mut *conn)
        .await?;
    Ok(head - n + 1)
}

/// Inserts events whose ids were reserved with [`reserve_event_ids`], in one statement.
async fn insert_events(conn: &mut PgConnection, events: &[StoredEvent]) -> StoreResult<()> {
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
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts notification rows (not their events) in one statement.
async fn insert_notification_rows(
    conn: &mut PgConnection,
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
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts messages in one statement.
async fn insert_messages(conn: &mut PgConnection, msgs: &[&Message]) -> StoreResult<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&Message) -> &str| msgs.iter().map(|m| f(m)).collect::<Vec<_>>();
    let int = |f: fn(&Message) -> i64| msgs.iter().map(|m| f(m)).collect::<Vec<_>>();
    let reply_to: Vec<Option<&str>> = msgs
        .iter()
        .map(|m| m.reply_to.as_ref().map(|r| r.id.as_str()))
        .collect();
    sqlx::query(
        "INSERT INTO messages (id, room_id, seq, author_id, body, client_id, created_at, event_id,
                               reply_to)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[],
                              $6::TEXT[], $7::BIGINT[], $8::BIGINT[], $9::TEXT[])",
    )
    .bind(text(|m| &m.id))
    .bind(text(|m| &m.room_id))
    .bind(int(|m| m.seq))
    .bind(text(|m| &m.author.id))
    .bind(text(|m| &m.body))
    .bind(text(|m| &m.client_id))
    .bind(int(|m| m.created_at))
    .bind(int(|m| m.event_id))
    .bind(reply_to)
    .execute(&mut *conn)
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
            existing.insert((m.author.id.to_string(), m.client_id.clone()), m);
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
        let seq = seqs.get(&i).copied().unwrap_or(0);
        let (message, event) = events::message_event(events::message(m, seq, next_id))?;
        let mut own = vec![event];
        next_id += 1;
        for n in &m.notify {
            own.push(events::notification(n).with_id(next_id));
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
        let key = (m.author.id.to_string(), m.client_id.clone());
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

/// These need the PostgreSQL server named by `SWITCHBOARD_TEST_POSTGRES` (a URL without a
/// database, e.g. `postgres://postgres@127.0.0.1:5432`) and run, each in a fresh database, with
/// `cargo test -p server -- --include-ignored` (as `scripts/test.sh` does when PostgreSQL is up).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::append_event;
    use crate::store::Store;
    use protocol::{Feed, User};
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
