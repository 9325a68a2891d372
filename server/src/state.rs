//! The one cheap-to-clone application state handed to every handler.

use crate::config::Config;
use crate::hub::Hub;
use crate::ratelimit::RateLimiter;
use crate::store::Store;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use protocol::{Switches, Transport};
use std::ops::Deref;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    /// Connection caps (global and per user) and their counters.
    pub limits: crate::limits::Limits,
    /// The group-commit writer every chat message goes through.
    pub writer: crate::services::writer::Writer,
    /// Sign-in, sign-up and send limits (keys prefixed by what they count).
    pub limiter: RateLimiter,
    /// Per-user quotas over an hour (rooms, jobs and announcements created).
    pub quotas: RateLimiter,
    /// Sign-in records, timeouts, "sign out everywhere" and ending signed-out connections.
    pub sessions: crate::sessions::Sessions,
    pub leptos: LeptosOptions,
    /// Cancelled when the server begins to shut down; long-lived connections watch it.
    pub shutdown: CancellationToken,
    /// Which transports are switched on; live connections watch it and close when theirs goes.
    pub switches: watch::Sender<Switches>,
    pub jobs: crate::services::jobs::JobRunner,
    pub presence: crate::presence::Presence,
    pub meters: crate::metrics::Meters,
    /// Recently loaded users, for the per-request sign-in check.
    pub users: UserCache,
    /// What never changes about a room (name, privacy, a DM's two people), for sends.
    pub rooms: RoomCache,
    /// This server's place in a cluster (set when started with a Redis URL).
    pub cluster: std::sync::OnceLock<crate::cluster::Cluster>,
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
        map.insert(user.id.clone(), (std::time::Instant::now(), user.clone()));
    }

    pub fn forget(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }
}

/// Rooms kept at most; beyond it the cache starts again empty.
const ROOM_CACHE_MAX: usize = 100_000;

/// A room's fixed facts: its name and privacy, and for a DM its two people. Membership is not
/// here (the hub's per-user rooms hold it), nor the unread count.
#[derive(Default)]
pub struct RoomCache {
    map: std::sync::Mutex<std::collections::HashMap<String, Arc<RoomFacts>>>,
}

pub struct RoomFacts {
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
        let dm_with = match &facts.dm {
            Some([a, b]) if a.id == user_id => Some(b.clone()),
            Some([a, b]) if b.id == user_id => Some(a.clone()),
            Some(_) => return None,
            None => None,
        };
        Some(protocol::Room {
            id: room_id.to_string(),
            name: facts.name.clone(),
            private: facts.private,
            is_member: true,
            unread: 0,
            dm_with,
        })
    }

    /// Remembers `room` as `me` saw it.
    pub fn put(&self, room: &protocol::Room, me: &protocol::User) {
        let facts = RoomFacts {
            name: room.name.clone(),
            private: room.private,
            dm: room.dm_with.as_ref().map(|other| {
                [
                    protocol::Author {
                        id: me.id.clone(),
                        username: me.username.clone(),
                    },
                    other.clone(),
                ]
            }),
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= ROOM_CACHE_MAX {
            map.clear();
        }
        map.insert(room.id.clone(), Arc::new(facts));
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
