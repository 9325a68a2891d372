//! Sign-in sessions beyond what tower-sessions gives: who a session belongs to, when it was
//! signed in (the absolute timeout), which "generation" of the user's sessions it is (bumped by
//! "sign out everywhere"), and the revocation signal that ends a signed-out session's open live
//! connections.
//!
//! The cookie, the idle timeout and the session rows are tower-sessions' (see `lib.rs`), kept in
//! the same database as everything else ([`SessionBackend`]). The generation per user is stored
//! in its own small table, created here beside the session store's table (both belong to the
//! session layer, not to the app's `Store`).
//!
//! Revocation reaches live connections through one `watch` channel per user with open
//! connections: a sign-out marks the login (or raises the generation) and wakes that user's
//! connections, each of which checks whether it is the one revoked. Nothing is polled.
//!
//! Use renews the idle expiry, at most once per `RENEW_FRACTION` of the limit (the last
//! renewal is kept in the session record, so servers sharing the store share it): requests
//! through [`Sessions::check`], open live connections through [`SessionWatch::revoked`].
//!
//! In a cluster, sign-outs reach other servers over the backplane; one made while it was down
//! never does. So while a server's backplane is or was down since a connection last checked,
//! the connection re-reads its session from the database before acting on a client's frame
//! ([`SessionConfirm::holds`]), and every connection re-reads it when the backplane is back.

use crate::clock::{new_id, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::store::Db;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::Session;

/// The session key holding the signed-in user's id.
pub const USER_KEY: &str = "user_id";
/// The session key holding [`SignIn`].
pub const SIGN_IN_KEY: &str = "sign_in";
/// The session cookie's name.
pub const COOKIE: &str = "switchboard_session";
/// The session key holding when its idle expiry was last renewed (Unix ms).
const RENEWED_KEY: &str = "renewed_ms";
/// A session's idle expiry is renewed once this fraction of the idle limit has passed since the
/// last renewal: at most one store write per session per tenth of the limit, however busy.
const RENEW_FRACTION: u32 = 10;

/// How long a user's session generation is trusted from memory. A "sign out everywhere" on this
/// server updates it at once; one made on another server over the same database shows within
/// this time (the same bound as the user cache).
const GENERATION_CACHE_FOR: Duration = Duration::from_secs(5);
/// Cached generations kept at most; beyond it the cache starts again empty.
const GENERATION_CACHE_MAX: usize = 100_000;
/// Users with open connections before the watch table is first swept of users with none left.
/// The threshold doubles with the table, so sweeping stays linear overall.
const WATCH_SWEEP_AT: usize = 1024;

/// What a session records at sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignIn {
    /// One id per sign-in, so a sign-out can end exactly this sign-in's connections.
    pub login_id: String,
    /// The user's session generation at sign-in; older than the current one means signed out.
    pub generation: i64,
    /// Sign-in time (Unix ms), for the absolute timeout.
    pub at_ms: i64,
}

/// The session rows' store, in the server's database.
///
/// With SQLite (one server) an in-process cache sits in front of the table: sessions are read
/// on every request (a poll is one), and the cache saves that query; writes and deletes go to
/// both. With PostgreSQL several servers share the sessions, and a cache on one would keep
/// serving a session signed out on another, so every request reads the table.
#[derive(Debug, Clone)]
pub enum SessionBackend {
    Sqlite {
        cached: tower_sessions::CachingSessionStore<
            tower_sessions::MemoryStore,
            tower_sessions_sqlx_store::SqliteStore,
        >,
        /// The table behind the cache, for sweeping.
        table: tower_sessions_sqlx_store::SqliteStore,
        /// The cache in front of it, to drop an entry whose expiry was renewed in the table.
        cache: tower_sessions::MemoryStore,
    },
    Postgres(tower_sessions_sqlx_store::PostgresStore),
}

impl SessionBackend {
    /// The session store on `db`, its table created if missing.
    pub async fn open(db: &Db) -> anyhow::Result<SessionBackend> {
        Ok(match db {
            Db::Sqlite(pool) => {
                let store = tower_sessions_sqlx_store::SqliteStore::new(pool.clone());
                store.migrate().await?;
                let cache = tower_sessions::MemoryStore::default();
                SessionBackend::Sqlite {
                    cached: tower_sessions::CachingSessionStore::new(cache.clone(), store.clone()),
                    table: store,
                    cache,
                }
            }
            Db::Postgres(pool) => {
                let store = tower_sessions_sqlx_store::PostgresStore::new(pool.clone());
                store.migrate().await?;
                SessionBackend::Postgres(store)
            }
        })
    }

    /// The session's record as the table has it now (past any cache): what another server of
    /// a cluster may have deleted.
    async fn load_fresh(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SessionBackend::Sqlite { table, .. } => table.load(id).await,
            SessionBackend::Postgres(s) => s.load(id).await,
        }
    }

    /// Deletes expired sessions from the table every `period`, forever.
    pub async fn sweep_expired(self, period: Duration) -> session_store::Result<()> {
        match self {
            // The cache's own entries expire by themselves; the table needs sweeping.
            SessionBackend::Sqlite { table, .. } => table.continuously_delete_expired(period).await,
            SessionBackend::Postgres(table) => table.continuously_delete_expired(period).await,
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite { cached: s, .. } => s.create(record).await,
            SessionBackend::Postgres(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite { cached: s, .. } => s.save(record).await,
            SessionBackend::Postgres(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SessionBackend::Sqlite { cached: s, .. } => s.load(id).await,
            SessionBackend::Postgres(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite { cached: s, .. } => s.delete(id).await,
            SessionBackend::Postgres(s) => s.delete(id).await,
        }
    }
}

pub struct Sessions {
    db: Db,
    max_age: Duration,
    /// Renew a session's idle expiry once this long has passed since the last renewal.
    renew_every: Duration,
    /// Store writes made to renew idle expiries (for /metrics and the tests).
    renewals: std::sync::atomic::AtomicU64,
    /// The cluster backplane's state, watched by live connections: a sign-out made elsewhere
    /// while it was down never arrived, so they re-check their session against the database.
    backplane: watch::Sender<Backplane>,
    /// The store the session layer uses, for requests served without the layer (the live
    /// routes, see [`Sessions::request_session`]).
    backend: std::sync::Arc<SessionBackend>,
    idle: tower_sessions::Expiry,
    generations: Mutex<HashMap<String, (Instant, i64)>>,
    watches: Mutex<Watches>,
    /// The other servers of a cluster, told of every sign-out.
    relay: std::sync::OnceLock<crate::cluster::Relay>,
}

struct Watches {
    by_user: HashMap<String, UserWatch>,
    sweep_at: usize,
}

struct UserWatch {
    tx: watch::Sender<()>,
    /// Sign-ins of this user ended on this server while (or just before) connections watched.
    revoked: HashSet<String>,
}

impl Sessions {
    pub async fn new(
        db: Db,
        max_age: Duration,
        backend: SessionBackend,
        idle: tower_sessions::Expiry,
    ) -> anyhow::Result<Sessions> {
        match &db {
            Db::Sqlite(pool) => {
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS session_generations (
                        user_id TEXT PRIMARY KEY NOT NULL,
                        generation INTEGER NOT NULL
                    )",
                )
                .execute(pool)
                .await?;
            }
            Db::Postgres(pool) => {
                // Several servers may start at once: IF NOT EXISTS alone can still collide in
                // the catalog, so they take turns.
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('session_generations'))")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS session_generations (
                        user_id TEXT PRIMARY KEY NOT NULL,
                        generation BIGINT NOT NULL
                    )",
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
        }
        Ok(Sessions {
            db,
            max_age,
            renew_every: match idle {
                tower_sessions::Expiry::OnInactivity(d) => {
                    Duration::from_millis(d.whole_milliseconds().max(0) as u64) / RENEW_FRACTION
                }
                _ => Duration::from_secs(3600),
            }
            .max(Duration::from_millis(100)),
            renewals: std::sync::atomic::AtomicU64::new(0),
            backplane: watch::channel(Backplane { up: true, epoch: 0 }).0,
            backend: std::sync::Arc::new(backend),
            idle,
            generations: Mutex::new(HashMap::new()),
            watches: Mutex::new(Watches {
                by_user: HashMap::new(),
                sweep_at: WATCH_SWEEP_AT,
            }),
            relay: std::sync::OnceLock::new(),
        })
    }

    async fn generation(&self, user_id: &str) -> ApiResult<i64> {
        {
            let cache = self.generations.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, g)) = cache.get(user_id) {
                if at.elapsed() < GENERATION_CACHE_FOR {
                    return Ok(*g);
                }
            }
        }
        let g = self.read_generation(user_id).await?;
        self.remember(user_id, g);
        Ok(g)
    }

    /// The user's session generation as the database has it now (no cache).
    async fn read_generation(&self, user_id: &str) -> ApiResult<i64> {
        let g: Option<i64> = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_scalar("SELECT generation FROM session_generations WHERE user_id = ?")
                    .bind(user_id)
                    .fetch_optional(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar("SELECT generation FROM session_generations WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(g.unwrap_or(0))
    }

    fn remember(&self, user_id: &str, generation: i64) {
        let mut cache = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= GENERATION_CACHE_MAX {
            cache.clear();
        }
        cache.insert(user_id.to_string(), (Instant::now(), generation));
    }

    /// Signs `user_id` in on `session`: a new session id (so an id planted before sign-in is
    /// worthless after), the user, and a fresh [`SignIn`].
    pub async fn begin(&self, session: &Session, user_id: &str) -> ApiResult<()> {
        let generation = self.generation(user_id).await?;
        session.cycle_id().await?;
        session.insert(USER_KEY, user_id).await?;
        let sign_in = SignIn {
            login_id: new_id(),
            generation,
            at_ms: now_ms(),
        };
        session.insert(SIGN_IN_KEY, &sign_in).await?;
        Ok(())
    }

    /// The request's session: the session layer's, or on routes served without the layer (the
    /// live routes) one read from the cookie here, over the same store. Kept in the request's
    /// extensions, so a second extractor reuses the record loaded by the first.
    pub fn request_session(&self, parts: &mut Parts) -> Session {
        if let Some(session) = parts.extensions.get::<Session>() {
            return session.clone();
        }
        let id = parts
            .headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(tower_sessions::cookie::Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == COOKIE)
            .and_then(|c| c.value_trimmed().parse::<Id>().ok());
        let session = Session::new(id, std::sync::Arc::clone(&self.backend), Some(self.idle));
        parts.extensions.insert(session.clone());
        session
    }

    /// [`Sessions::check`] of the request's session, once per request: a second extractor gets
    /// the first one's answer.
    pub async fn check_request(&self, parts: &mut Parts) -> ApiResult<Option<(String, SignIn)>> {
        if let Some(Checked(done)) = parts.extensions.get::<Checked>() {
            return Ok(done.clone());
        }
        // Under the session layer a renewal is saved (and its cookie sent) by the layer.
        let layered = parts.extensions.get::<Session>().is_some();
        let session = self.request_session(parts);
        let checked = self.check(&session).await?;
        if !layered && checked.is_some() && session.is_modified() {
            session.save().await?;
            if let (Some(id), Some(slot)) = (session.id(), parts.extensions.get::<RenewedCookie>())
            {
                slot.set(id);
            }
        }
        parts.extensions.insert(Checked(checked.clone()));
        Ok(checked)
    }

    /// The signed-in user's id and sign-in, or None. A session past its absolute age, from an
    /// older generation, or from before sign-ins were recorded is destroyed here.
    pub async fn check(&self, session: &Session) -> ApiResult<Option<(String, SignIn)>> {
        let Some(user_id) = session.get::<String>(USER_KEY).await? else {
            return Ok(None);
        };
        let sign_in = session.get::<SignIn>(SIGN_IN_KEY).await?;
        let valid = match &sign_in {
            None => false,
            Some(s) => {
                let age_ms = now_ms().saturating_sub(s.at_ms);
                age_ms < self.max_age.as_millis().min(i64::MAX as u128) as i64
                    && s.generation >= self.generation(&user_id).await?
            }
        };
        match sign_in {
            Some(s) if valid => {
                self.renew_if_due(session, &s).await?;
                Ok(Some((user_id, s)))
            }
            _ => {
                session.flush().await?;
                Ok(None)
            }
        }
    }

    /// Renews the session's idle expiry if a [`RENEW_FRACTION`] of the limit has passed since
    /// the last renewal: the session is marked changed, so it is saved with a new expiry (and,
    /// under the session layer, its cookie sent again with a fresh `Max-Age`).
    async fn renew_if_due(&self, session: &Session, sign_in: &SignIn) -> ApiResult<()> {
        let last = session
            .get::<i64>(RENEWED_KEY)
            .await?
            .unwrap_or(sign_in.at_ms);
        let now = now_ms();
        if now.saturating_sub(last) >= self.renew_every.as_millis() as i64 {
            session.insert(RENEWED_KEY, now).await?;
            self.renewals
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// Re-reads a live connection's session from the database (no cache): the generation its
    /// sign-in holds at, if it still holds (not deleted by a sign-out, not timed out, not of an
    /// older generation). The generation is the stored one: a password change carries its own
    /// sign-in (same login id) to the new generation, and its connections go on. With `renew`,
    /// a due renewal of its idle expiry is written (see [`Sessions::write_expiry`]): an open
    /// connection is use.
    async fn reread(
        &self,
        id: Option<Id>,
        user_id: &str,
        sign_in: &SignIn,
        renew: bool,
    ) -> ApiResult<Option<i64>> {
        let Some(id) = id else { return Ok(None) };
        let Some(record) = self.backend.load_fresh(&id).await.map_err(store_error)? else {
            return Ok(None);
        };
        let same_user = record.data.get(USER_KEY).and_then(|v| v.as_str()) == Some(user_id);
        let stored = record
            .data
            .get(SIGN_IN_KEY)
            .and_then(|v| serde_json::from_value::<SignIn>(v.clone()).ok())
            .filter(|s| s.login_id == sign_in.login_id);
        let age_ms = now_ms().saturating_sub(sign_in.at_ms);
        let Some(stored) = stored else {
            return Ok(None);
        };
        if !same_user || age_ms >= self.max_age.as_millis().min(i64::MAX as u128) as i64 {
            return Ok(None);
        }
        let generation = self.read_generation(user_id).await?;
        self.remember(user_id, generation);
        if stored.generation < generation {
            return Ok(None);
        }
        if let (true, tower_sessions::Expiry::OnInactivity(idle)) = (renew, self.idle) {
            // The last renewal, whichever way it was made, set the expiry to then + idle.
            let now = tower_sessions::cookie::time::OffsetDateTime::now_utc();
            let since = now - (record.expiry_date - idle);
            if since.whole_milliseconds() >= self.renew_every.as_millis() as i128
                && !self.write_expiry(&id, now.saturating_add(idle)).await?
            {
                return Ok(None);
            }
        }
        Ok(Some(stored.generation))
    }

    /// Moves session `id`'s stored expiry to `expiry`, if the row is still there (an update,
    /// never an insert: a session deleted by a sign-out meanwhile stays deleted). False if gone.
    async fn write_expiry(
        &self,
        id: &Id,
        expiry: tower_sessions::cookie::time::OffsetDateTime,
    ) -> ApiResult<bool> {
        let key = id.to_string();
        let updated = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query("UPDATE tower_sessions SET expiry_date = ? WHERE id = ?")
                    .bind(expiry)
                    .bind(&key)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Db::Postgres(pool) => {
                sqlx::query("UPDATE tower_sessions.session SET expiry_date = $1 WHERE id = $2")
                    .bind(expiry)
                    .bind(&key)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
        };
        if let SessionBackend::Sqlite { cache, .. } = &*self.backend {
            // Read again from the table next time, with the new expiry.
            cache.delete(id).await.map_err(store_error)?;
        }
        if updated > 0 {
            self.renewals
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(updated > 0)
    }

    /// Store writes made so far to renew idle expiries.
    pub fn renewals(&self) -> u64 {
        self.renewals.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The cookie that renews the session `id` in the browser, as the session layer makes it.
    pub fn renewed_cookie(&self, id: Id, secure: bool) -> String {
        let mut cookie = tower_sessions::cookie::Cookie::build((COOKIE, id.to_string()))
            .http_only(true)
            .same_site(tower_sessions::cookie::SameSite::Lax)
            .secure(secure)
            .path("/");
        if let tower_sessions::Expiry::OnInactivity(d) = self.idle {
            cookie = cookie.max_age(d);
        }
        cookie.build().to_string()
    }

    /// The cluster backplane went down (`up` false) or came back: live connections re-check
    /// their sessions against the database (a sign-out told while it was down never arrived).
    pub fn backplane_changed(&self, up: bool) {
        self.backplane.send_modify(|b| {
            b.up = up;
            b.epoch += 1;
        });
        tracing::debug!(up, "sessions: backplane state");
    }

    /// Signs this session out: the session is destroyed and its open connections end.
    pub async fn end(&self, session: &Session) -> ApiResult<()> {
        let user_id = session.get::<String>(USER_KEY).await?;
        let sign_in = session.get::<SignIn>(SIGN_IN_KEY).await?;
        session.flush().await?;
        if let (Some(user_id), Some(sign_in)) = (user_id, sign_in) {
            if let Some(relay) = self.relay.get() {
                relay.signed_out(&user_id, &sign_in.login_id);
            }
            self.apply_signed_out(&user_id, &sign_in.login_id);
        }
        Ok(())
    }

    /// Joins a cluster: sign-outs here are told to the other servers.
    pub fn set_relay(&self, relay: crate::cluster::Relay) {
        let _ = self.relay.set(relay);
    }

    /// One sign-in ended (here or on another server): its connections here end.
    pub fn apply_signed_out(&self, user_id: &str, login_id: &str) {
        let mut w = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        let entry = w.entry(user_id);
        entry.revoked.insert(login_id.to_string());
        entry.tx.send_replace(());
    }

    /// Every sign-in of the user older than `generation` ended (on another server): their
    /// connections here end, and their next requests here are refused.
    pub fn apply_signed_out_everywhere(&self, user_id: &str, generation: i64) {
        self.remember(user_id, generation);
        let w = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = w.by_user.get(user_id) {
            entry.tx.send_replace(());
        }
    }

    /// Signs the user out of every session but this one (after a password change): the
    /// generation goes up, so every other session is refused at its next request and its open
    /// connections end, here and (over the backplane) on every server of a cluster. This
    /// session's sign-in is carried to the new generation (saved before anyone is told), so it
    /// stays signed in, and its own open connections, woken like the rest, find it carried
    /// when they re-read it and go on.
    pub async fn end_others(&self, session: &Session, user_id: &str) -> ApiResult<()> {
        let generation = self.bump_generation(user_id).await?;
        if let Some(mut sign_in) = session.get::<SignIn>(SIGN_IN_KEY).await? {
            sign_in.generation = generation;
            session.insert(SIGN_IN_KEY, &sign_in).await?;
            session.save().await?;
        }
        if let Some(relay) = self.relay.get() {
            relay.signed_out_everywhere(user_id, generation);
        }
        self.apply_signed_out_everywhere(user_id, generation);
        tracing::info!(user = %user_id, generation, "signed out of every other session");
        Ok(())
    }

    /// Raises the user's session generation; the new one.
    async fn bump_generation(&self, user_id: &str) -> ApiResult<i64> {
        // The same statement on both (`$1` is also SQLite syntax for the first parameter).
        const BUMP: &str = "INSERT INTO session_generations (user_id, generation) VALUES ($1, 1)
             ON CONFLICT (user_id) DO UPDATE SET generation = session_generations.generation + 1
             RETURNING generation";
        let generation: i64 = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_scalar(BUMP)
                    .bind(user_id)
                    .fetch_one(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar(BUMP)
                    .bind(user_id)
                    .fetch_one(pool)
                    .await?
            }
        };
        self.remember(user_id, generation);
        Ok(generation)
    }

    /// Signs the user out of every session (this one included) on every device: the generation
    /// goes up, so every older session is refused at its next request, and open connections on
    /// this server end now.
    pub async fn end_everywhere(&self, session: &Session, user_id: &str) -> ApiResult<()> {
        let generation = self.bump_generation(user_id).await?;
        session.flush().await?;
        if let Some(relay) = self.relay.get() {
            relay.signed_out_everywhere(user_id, generation);
        }
        self.apply_signed_out_everywhere(user_id, generation);
        tracing::info!(user = %user_id, generation, "signed out everywhere");
        Ok(())
    }

    /// Whether a sign-in at `generation` is known to be ended: signed out by its login id, or
    /// (`Stale`) older than the user's generation, which a re-read may find carried forward.
    fn revocation(&self, user_id: &str, login_id: &str, generation: i64) -> Revocation {
        let signed_out = {
            let w = self.watches.lock().unwrap_or_else(|p| p.into_inner());
            w.by_user
                .get(user_id)
                .is_some_and(|e| e.revoked.contains(login_id))
        };
        if signed_out {
            return Revocation::SignedOut;
        }
        let cache = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        if cache.get(user_id).is_some_and(|(_, g)| *g > generation) {
            Revocation::Stale
        } else {
            Revocation::Holds
        }
    }

    fn watch(&self, user_id: &str) -> watch::Receiver<()> {
        let mut w = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        if w.by_user.len() >= w.sweep_at {
            // Nobody left to wake: the entry (and its revoked sign-ins, whose sessions are
            // already gone from the store) can go.
            w.by_user.retain(|_, e| e.tx.receiver_count() > 0);
            w.sweep_at = (w.by_user.len() * 2).max(WATCH_SWEEP_AT);
        }
        w.entry(user_id).tx.subscribe()
    }
}

impl Watches {
    fn entry(&mut self, user_id: &str) -> &mut UserWatch {
        self.by_user
            .entry(user_id.to_string())
            .or_insert_with(|| UserWatch {
                tx: watch::channel(()).0,
                revoked: HashSet::new(),
            })
    }
}

/// What [`Sessions::revocation`] knows of a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revocation {
    Holds,
    SignedOut,
    /// Of an older generation than the user's: ended, unless its session was carried to the
    /// new one (a password change keeps the session it was made in).
    Stale,
}

/// The cluster backplane as the live connections see it. `epoch` moves on every change.
#[derive(Debug, Clone, Copy)]
struct Backplane {
    up: bool,
    epoch: u64,
}

/// Put in a live route's request by its guard: the session id whose expiry the request renewed,
/// so the response carries the renewed cookie (those routes run without the session layer).
#[derive(Clone, Default)]
pub struct RenewedCookie(std::sync::Arc<Mutex<Option<Id>>>);

impl RenewedCookie {
    fn set(&self, id: Id) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
    }

    /// The renewed session's id, if the request renewed one.
    pub fn take(&self) -> Option<Id> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A request's [`Sessions::check`] answer, kept for its other extractors.
#[derive(Clone)]
struct Checked(Option<(String, SignIn)>);

/// Held by a live connection: completes [`SessionWatch::revoked`] when its session is signed
/// out (here or by "sign out everywhere"). Made by [`Sessions::watch_request`] (the extractor
/// in `extract.rs`), which answers 401 when nobody is signed in.
///
/// It also keeps the session alive while the connection is open (an open connection is use: the
/// idle expiry is renewed as for requests), and, in a cluster, re-checks the session against the
/// database when the backplane comes back after being down (a sign-out made on another server
/// meanwhile was never told here). [`SessionWatch::confirmer`] does the same check before a
/// WebSocket acts on a client's frame while the backplane is or was down.
pub struct SessionWatch {
    confirm: SessionConfirm,
    rx: watch::Receiver<()>,
}

/// What a live connection needs to re-check its session; see [`SessionConfirm::holds`].
#[derive(Clone)]
pub struct SessionConfirm {
    sessions: Arc<Sessions>,
    user_id: String,
    sign_in: SignIn,
    /// The generation this sign-in is known to hold at: its own, or a newer one its session
    /// was carried to (a password change made in it), once a re-read found that.
    generation: std::sync::Arc<std::sync::atomic::AtomicI64>,
    session_id: Option<Id>,
    backplane: watch::Receiver<Backplane>,
    /// The backplane epoch at the last time the session was known to hold with the backplane
    /// up; `u64::MAX` for never.
    confirmed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SessionConfirm {
    /// Whether the session still holds. Free while the backplane has stayed up since the last
    /// confirmation (a sign-out anywhere would have arrived); otherwise (a cluster whose
    /// backplane is or was down) the session is read from the database.
    pub async fn holds(&self) -> ApiResult<bool> {
        use std::sync::atomic::Ordering;
        match self.revocation() {
            Revocation::SignedOut => return Ok(false),
            Revocation::Stale => return self.check_now(false).await,
            Revocation::Holds => {}
        }
        let b = *self.backplane.borrow();
        if b.up && self.confirmed.load(Ordering::Acquire) == b.epoch {
            return Ok(true);
        }
        let holds = self.check_now(false).await?;
        if holds && b.up {
            self.confirmed.store(b.epoch, Ordering::Release);
        }
        Ok(holds)
    }

    fn revocation(&self) -> Revocation {
        use std::sync::atomic::Ordering;
        self.sessions.revocation(
            &self.user_id,
            &self.sign_in.login_id,
            self.generation.load(Ordering::Acquire),
        )
    }

    async fn check_now(&self, renew: bool) -> ApiResult<bool> {
        use std::sync::atomic::Ordering;
        let held = self
            .sessions
            .reread(self.session_id, &self.user_id, &self.sign_in, renew)
            .await?;
        if let Some(generation) = held {
            self.generation.fetch_max(generation, Ordering::AcqRel);
        }
        Ok(held.is_some())
    }
}

impl SessionWatch {
    /// The connection's session check, for acting on what the client sends.
    pub fn confirmer(&self) -> SessionConfirm {
        self.confirm.clone()
    }

    /// Resolves once this connection's session has been signed out (or found gone when
    /// re-checked); pending forever otherwise. Renews the session's idle expiry meanwhile.
    pub async fn revoked(&mut self) {
        let every = self.confirm.sessions.renew_every;
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backplane = self.confirm.backplane.clone();
        let (mut signals, mut backplane_open) = (true, true);
        loop {
            tokio::select! {
                changed = self.rx.changed(), if signals => {
                    if changed.is_err() {
                        signals = false;
                    } else {
                        match self.confirm.revocation() {
                            Revocation::Holds => {}
                            Revocation::SignedOut => return,
                            // Ended, unless this session was carried to the new generation.
                            Revocation::Stale => {
                                if !matches!(self.confirm.check_now(false).await, Ok(true)) {
                                    return;
                                }
                            }
                        }
                    }
                }
                changed = backplane.changed(), if backplane_open => {
                    if changed.is_err() {
                        backplane_open = false;
                        continue;
                    }
                    let up = backplane.borrow_and_update().up;
                    // Back up: what was told while it was down is lost; the database knows.
                    if up && matches!(self.confirm.holds().await, Ok(false)) {
                        tracing::info!(user = %self.confirm.user_id, "session gone while the backplane was down; connection ended");
                        return;
                    }
                }
                _ = renew.tick() => {
                    match self.confirm.check_now(true).await {
                        Ok(false) => return,
                        Ok(true) => {}
                        Err(e) => tracing::warn!(error = %e, "renewing a live connection's session"),
                    }
                }
            }
        }
    }
}

impl Sessions {
    /// The request's session, watched for the live connection it opens: 401 when nobody is
    /// signed in.
    pub async fn watch_request(self: &Arc<Self>, parts: &mut Parts) -> ApiResult<SessionWatch> {
        // Read before the check: a backplane change during it makes the first send re-check.
        let backplane = self.backplane.subscribe();
        let epoch = {
            let b = *backplane.borrow();
            if b.up {
                b.epoch
            } else {
                u64::MAX
            }
        };
        let (user_id, sign_in) = self
            .check_request(parts)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let mut rx = self.watch(&user_id);
        // A sign-out between the check above and the subscription is caught on the first turn.
        rx.mark_changed();
        let session_id = self.request_session(parts).id();
        Ok(SessionWatch {
            confirm: SessionConfirm {
                sessions: Arc::clone(self),
                user_id,
                generation: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(
                    sign_in.generation,
                )),
                sign_in,
                session_id,
                backplane,
                confirmed: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(epoch)),
            },
            rx,
        })
    }
}

fn store_error(e: session_store::Error) -> ApiError {
    ApiError::Internal(e.into())
}
