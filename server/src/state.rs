//! The one cheap-to-clone application state handed to every handler, and its composition from
//! the configuration ([`compose`]). It composes infrastructure (the store, the hub and its
//! writer, sessions, presence, meters, limits, the job runner, the cluster) and names no
//! service.

use crate::config::Config;
use crate::hub::Hub;
use crate::ratelimit::RateLimiter;
use crate::sessions::SessionBackend;
use crate::store::{Db, Store};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use protocol::{Switches, Transport};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower_sessions::Expiry;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    /// Connection caps (global and per user) and their counters.
    pub limits: crate::limits::Limits,
    /// The group-commit writer every chat message goes through.
    pub writer: crate::hub::writer::Writer,
    /// Sign-in, sign-up and send limits (keys prefixed by what they count).
    pub limiter: RateLimiter,
    /// Per-user quotas over an hour (rooms, jobs and announcements created).
    pub quotas: RateLimiter,
    /// Sign-in records, timeouts, "sign out everywhere" and ending signed-out connections.
    pub sessions: Arc<crate::sessions::Sessions>,
    pub leptos: LeptosOptions,
    /// Cancelled when the server begins to shut down; long-lived connections watch it.
    pub shutdown: CancellationToken,
    /// Which transports are switched on; live connections watch it and close when theirs goes.
    pub switches: watch::Sender<Switches>,
    pub jobs: crate::job_runner::JobRunner,
    pub presence: Arc<crate::presence::Presence>,
    pub meters: Arc<crate::metrics::Meters>,
    /// Recently loaded users, for the per-request sign-in check.
    pub users: UserCache,
    /// What never changes about a room (name, privacy, a DM's two people), for sends.
    pub rooms: RoomCache,
    /// This server's place in a cluster (set when started with a Redis URL).
    pub cluster: std::sync::OnceLock<crate::cluster::Cluster>,
}

/// Window of the rate limits (sign-in, sign-up, sends: counts are per this window).
const LIMIT_WINDOW: Duration = Duration::from_secs(60);
/// The window of the per-user quotas on creating rooms, jobs and announcements.
const QUOTA_WINDOW: Duration = Duration::from_secs(3600);

/// The application state and what the composition root still needs of its parts.
pub struct Composed {
    pub state: AppState,
    pub db: Db,
    pub session_store: SessionBackend,
    /// The sessions' idle expiry, for the session layer.
    pub idle: Expiry,
}

/// Opens the database and composes the application state from `config` (serving on `addr`,
/// shutting down with `token`): everything but the background tasks and the routes. The unit
/// tests compose the same state, on a temporary database, without serving it.
pub async fn compose(
    config: Config,
    addr: std::net::SocketAddr,
    token: CancellationToken,
) -> anyhow::Result<Composed> {
    let db = Db::connect(
        &config.database_url,
        config.db_pool,
        config.synchronous,
        Duration::from_millis(config.db_lock_timeout_ms.max(1)),
    )
    .await?;
    let export_dir = data_dir(&config, &db)?.join("exports");
    let session_store = SessionBackend::open(&db).await?;

    let store: Arc<dyn Store> = db.store();
    let hub = Hub::new(store.head().await?, store.log_floor().await?);
    let (switches, _) = tokio::sync::watch::channel(store.switches().await?);
    let leptos = LeptosOptions::builder()
        .output_name("switchboard")
        .site_root(config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let writer = crate::hub::writer::Writer::spawn(Arc::clone(&store), Arc::clone(&hub));
    let idle = Expiry::OnInactivity(tower_sessions::cookie::time::Duration::seconds(
        config.session_idle_secs.min(i64::MAX as u64) as i64,
    ));
    let sessions = crate::sessions::Sessions::new(
        db.clone(),
        Duration::from_secs(config.session_max_secs),
        session_store.clone(),
        idle,
    )
    .await?;
    let state = AppState::new(Inner {
        writer,
        limits: crate::limits::Limits::new(
            config.max_connections,
            config.max_connections_per_user,
            config.max_anonymous_connections,
        ),
        limiter: RateLimiter::new(LIMIT_WINDOW),
        quotas: RateLimiter::new(QUOTA_WINDOW),
        sessions: Arc::new(sessions),
        config,
        store,
        hub,
        leptos,
        shutdown: token,
        switches,
        jobs: crate::job_runner::JobRunner::new(export_dir),
        presence: Arc::default(),
        meters: Arc::default(),
        users: UserCache::default(),
        rooms: RoomCache::default(),
        cluster: std::sync::OnceLock::new(),
    });
    Ok(Composed {
        state,
        db,
        session_store,
        idle,
    })
}

/// Where the server writes files: `--data-dir`, else beside the SQLite file, else `./data`.
fn data_dir(config: &Config, db: &Db) -> anyhow::Result<std::path::PathBuf> {
    Ok(match (&config.data_dir, db) {
        (Some(dir), _) => dir.clone(),
        (None, Db::Sqlite(_)) => crate::store::sqlite::data_dir(&config.database_url)?,
        (None, Db::Postgres(_)) => std::path::PathBuf::from("data"),
    })
}

/// How long a loaded user is trusted before it is read again. Changes made through this server
/// (an admin flag) drop the entry at once; one made elsewhere (the `promote-admin` command on
/// the same database) shows within this time.
pub const USER_CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(5);
/// Users kept at most; beyond it the cache starts again empty.
const USER_CACHE_MAX: usize = 100_000;

/// Users by id, each for [`USER_CACHE_FOR`]: every request checks who is signed in, and a poll
/// is a request.
#[derive(Default)]
pub struct UserCache {
    map: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, protocol::User)>>,
}

impl UserCache {
    pub fn get(&self, id: &str) -> Option<protocol::User> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .filter(|(at, _)| at.elapsed() < USER_CACHE_FOR)
            .map(|(_, u)| u.clone())
    }

    pub fn put(&self, user: &protocol::User) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= USER_CACHE_MAX {
            map.clear();
        }
        map.insert(
            user.id.to_string(),
            (std::time::Instant::now(), user.clone()),
        );
    }

    pub fn forget(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }
}

/// Rooms kept at most; beyond it the cache starts again empty.
const ROOM_CACHE_MAX: usize = 100_000;
/// How long a room's facts are trusted from memory. A rename on this server forgets them at
/// once; one made on another server of a cluster shows here within this time (in the room
/// name a mention notification gives). One store read per room per this time is the cost.
const ROOM_CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// A room's fixed facts: its name and privacy, and for a DM its two people. Membership is not
/// here (the hub's per-user rooms hold it), nor the unread count.
#[derive(Default)]
pub struct RoomCache {
    map: std::sync::Mutex<std::collections::HashMap<String, Arc<RoomFacts>>>,
}

pub struct RoomFacts {
    at: std::time::Instant,
    name: String,
    private: bool,
    dm: Option<[protocol::Author; 2]>,
}

impl RoomCache {
    /// The room as member `user_id` sees it (unread left at 0).
    pub fn get(&self, room_id: &str, user_id: &str) -> Option<protocol::Room> {
        let facts = {
            let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.get(room_id).cloned()?
        };
        if facts.at.elapsed() > ROOM_CACHE_FOR {
            return None;
        }
        let dm_with = match &facts.dm {
            Some([a, b]) if a.id == user_id => Some(b.clone()),
            Some([a, b]) if b.id == user_id => Some(a.clone()),
            Some(_) => return None,
            None => None,
        };
        Some(protocol::Room {
            id: room_id.into(),
            name: facts.name.clone(),
            private: facts.private,
            is_member: true,
            unread: 0,
            dm_with,
            // The facts a send needs; a room listed to a person comes from the store.
            topic: String::new(),
            member_count: 0,
            last_read: None,
            created_by: None,
        })
    }

    /// Forgets a room whose name changed.
    pub fn forget(&self, room_id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(room_id);
    }

    /// Remembers `room` as `me` saw it.
    pub fn put(&self, room: &protocol::Room, me: &protocol::User) {
        let facts = RoomFacts {
            at: std::time::Instant::now(),
            name: room.name.clone(),
            private: room.private,
            dm: room
                .dm_with
                .as_ref()
                .map(|other| [me.author(), other.clone()]),
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= ROOM_CACHE_MAX {
            map.clear();
        }
        map.insert(room.id.to_string(), Arc::new(facts));
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn transport_enabled(&self, t: Transport) -> bool {
        self.switches.borrow().enabled(t)
    }

    /// 503 `transport_disabled` unless `t` is switched on.
    pub fn require_transport(&self, t: Transport) -> crate::error::ApiResult<()> {
        if self.transport_enabled(t) {
            Ok(())
        } else {
            Err(crate::error::ApiError::Unavailable(
                "transport_disabled",
                format!("{} is switched off; use another transport.", t.label()),
            ))
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
