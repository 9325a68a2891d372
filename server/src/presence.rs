//! Presence: who is online (a live connection open, or polling lately), idle (their client said
//! so: no input for a while, or the tab hidden) or offline. Changes go out as ephemeral
//! `presence` events on the chat feed, never stored, only to the people who share a room (a DM
//! is a room) with the user, and coalesced: each user's status goes out at most once per
//! `--presence-coalesce-ms`, the latest one, so a client flipping idle/online in a loop costs
//! its watchers a few events, not one per flip.

use crate::hub::{Audience, Hub, LiveEvent, RoomSet};
use crate::store::Store;
use protocol::{Author, EventData, Feed};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A user who only polls counts as online this long after their last poll. Above the short-poll
/// interval and the long-poll hold, so a steady poller never flickers.
pub const POLL_PRESENCE_TTL: Duration = Duration::from_secs(40);
/// How often pollers who stopped are swept to offline.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// A user's presence, as the `presence` event spells it.
pub use protocol::PresenceStatus as Status;

struct Entry {
    username: String,
    conns: u32,
    last_poll: Option<Instant>,
    idle: bool,
    shown: Status,
}

impl Entry {
    fn status(&self, now: Instant) -> Status {
        let polling = self
            .last_poll
            .is_some_and(|t| now.duration_since(t) < POLL_PRESENCE_TTL);
        match (self.conns > 0 || polling, self.idle) {
            (false, _) => Status::Offline,
            (true, true) => Status::Idle,
            (true, false) => Status::Online,
        }
    }
}

/// Which of two views of a user wins: online anywhere is online.
fn rank(s: Status) -> u8 {
    match s {
        Status::Offline => 0,
        Status::Idle => 1,
        Status::Online => 2,
    }
}

/// A status as another server of the cluster tells it.
fn parse_status(s: &str) -> Option<Status> {
    match s {
        "online" => Some(Status::Online),
        "idle" => Some(Status::Idle),
        "offline" => Some(Status::Offline),
        _ => None,
    }
}

/// A cluster's other servers forget a server's users when they have not heard from it this long
/// (it died): every server repeats its whole list every [`SWEEP_EVERY`].
pub const REMOTE_PRESENCE_TTL: Duration = Duration::from_secs(16);

/// What another server of the cluster said of its users.
struct RemoteNode {
    heard: Instant,
    users: HashMap<String, (String, Status)>,
}

/// Presence on this server, and (in a cluster) what the other servers report: a user's status
/// is the best of them (online anywhere is online), and clients here hear of a change of that.
#[derive(Default)]
pub struct Presence {
    users: Mutex<HashMap<String, Entry>>,
    remote: Mutex<HashMap<String, RemoteNode>>,
    /// The status decided here (the best of every server's view), for everyone not offline.
    shown: Mutex<HashMap<String, (String, Status)>>,
    /// Users whose decided status changed since the announcer last ran (id -> username).
    dirty: Mutex<HashMap<String, String>>,
    /// Wakes the announcer ([`announce_changes`]).
    wake: tokio::sync::Notify,
    /// The other servers of a cluster, told of every change here (set when it joins one).
    relay: std::sync::OnceLock<crate::cluster::Relay>,
}

impl Presence {
    fn change(&self, hub: &Hub, user_id: &str, username: &str, f: impl FnOnce(&mut Entry)) {
        let now = Instant::now();
        let changed = {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            let e = users.entry(user_id.to_string()).or_insert_with(|| Entry {
                username: username.to_string(),
                conns: 0,
                last_poll: None,
                idle: false,
                shown: Status::Offline,
            });
            f(e);
            let status = e.status(now);
            let changed = (status != e.shown).then_some(status);
            e.shown = status;
            if status == Status::Offline && e.conns == 0 {
                users.remove(user_id);
            }
            changed
        };
        if let Some(status) = changed {
            if let Some(relay) = self.relay.get() {
                relay.presence(false, &[(user_id, username, status.as_str())]);
            }
            self.settle(hub, user_id, username);
        }
    }

    /// This server's own view of a user.
    fn local(&self, user_id: &str) -> Status {
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .get(user_id)
            .map_or(Status::Offline, |e| e.status(Instant::now()))
    }

    /// Announces the user's status here if the best of every server's view changed.
    fn settle(&self, hub: &Hub, user_id: &str, username: &str) {
        let mut best = self.local(user_id);
        {
            let remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
            for node in remote.values() {
                if let Some((_, s)) = node.users.get(user_id) {
                    if rank(*s) > rank(best) {
                        best = *s;
                    }
                }
            }
        }
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        let before = shown.get(user_id).map_or(Status::Offline, |(_, s)| *s);
        if before == best {
            return;
        }
        if best == Status::Offline {
            shown.remove(user_id);
        } else {
            shown.insert(user_id.to_string(), (username.to_string(), best));
        }
        // The announcer sends the latest decided status (coalescing changes in between).
        let _ = hub;
        self.dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user_id.to_string(), username.to_string());
        self.wake.notify_one();
    }

    /// Joins a cluster: changes here are told to the other servers.
    pub fn set_relay(&self, relay: crate::cluster::Relay) {
        let _ = self.relay.set(relay);
    }

    /// A live connection opened: its user is present and, having just connected, active (the
    /// client says so again, or idle, in its first presence frame).
    pub fn connected(&self, hub: &Hub, user_id: &str, username: &str) {
        self.change(hub, user_id, username, |e| {
            e.conns += 1;
            e.idle = false;
        });
    }

    pub fn disconnected(&self, hub: &Hub, user_id: &str, username: &str) {
        self.change(hub, user_id, username, |e| {
            e.conns = e.conns.saturating_sub(1)
        });
    }

    pub fn polled(&self, hub: &Hub, user_id: &str, username: &str) {
        self.change(hub, user_id, username, |e| {
            e.last_poll = Some(Instant::now())
        });
    }

    pub fn set_idle(&self, hub: &Hub, user_id: &str, username: &str, idle: bool) {
        self.change(hub, user_id, username, |e| e.idle = idle);
    }

    /// Pollers who stopped polling go offline; servers of the cluster not heard from lately are
    /// forgotten; this server's whole list goes to the others.
    pub fn sweep(&self, hub: &Hub) {
        let now = Instant::now();
        let gone: Vec<(String, String)> = {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<(String, String)> = users
                .iter()
                .filter(|(_, e)| e.status(now) == Status::Offline)
                .map(|(id, e)| (id.clone(), e.username.clone()))
                .collect();
            for (id, _) in &gone {
                users.remove(id);
            }
            gone
        };
        let mut settle = gone;
        if let Some(relay) = self.relay.get() {
            let mine: Vec<(String, String, Status)> = {
                let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
                users
                    .iter()
                    .map(|(id, e)| (id.clone(), e.username.clone(), e.status(now)))
                    .filter(|(_, _, s)| *s != Status::Offline)
                    .collect()
            };
            let list: Vec<(&str, &str, &str)> = mine
                .iter()
                .map(|(id, name, s)| (id.as_str(), name.as_str(), s.as_str()))
                .collect();
            relay.presence(true, &list);
            let mut remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
            remote.retain(|_, node| {
                let alive = now.duration_since(node.heard) < REMOTE_PRESENCE_TTL;
                if !alive {
                    settle.extend(node.users.drain().map(|(id, (name, _))| (id, name)));
                }
                alive
            });
        }
        for (id, name) in settle {
            self.settle(hub, &id, &name);
        }
    }

    /// What another server says of its users: its whole list (`full`) or changes.
    pub fn remote(&self, hub: &Hub, node: &str, full: bool, users: Vec<(String, String, String)>) {
        let mut settle: Vec<(String, String)> = Vec::new();
        {
            let mut remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
            let entry = remote
                .entry(node.to_string())
                .or_insert_with(|| RemoteNode {
                    heard: Instant::now(),
                    users: HashMap::new(),
                });
            entry.heard = Instant::now();
            if full {
                let listed: std::collections::HashSet<&str> =
                    users.iter().map(|(id, _, _)| id.as_str()).collect();
                let dropped: Vec<String> = entry
                    .users
                    .keys()
                    .filter(|id| !listed.contains(id.as_str()))
                    .cloned()
                    .collect();
                for id in dropped {
                    if let Some((name, _)) = entry.users.remove(&id) {
                        settle.push((id, name));
                    }
                }
            }
            for (id, name, status) in users {
                let Some(status) = parse_status(&status) else {
                    continue;
                };
                let before = entry.users.get(&id).map(|(_, s)| *s);
                if status == Status::Offline {
                    entry.users.remove(&id);
                } else {
                    entry.users.insert(id.clone(), (name.clone(), status));
                }
                if before != Some(status) {
                    settle.push((id, name));
                }
            }
        }
        for (id, name) in settle {
            self.settle(hub, &id, &name);
        }
    }

    /// Everyone not offline (anywhere in the cluster) who shares a room with `me` (and `me`),
    /// with their status.
    pub async fn snapshot_for(
        &self,
        hub: &Hub,
        store: &dyn Store,
        me: &str,
    ) -> crate::store::StoreResult<Vec<serde_json::Value>> {
        let shown: Vec<(String, String, Status)> = {
            let shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
            shown
                .iter()
                .map(|(id, (name, s))| (id.clone(), name.clone(), *s))
                .collect()
        };
        let mine = rooms_of(hub, store, me).await?;
        let mut out = Vec::new();
        for (id, name, s) in shown {
            let audience = Audience {
                subject: id.clone(),
                rooms: rooms_of(hub, store, &id).await?,
            };
            if audience.admits(me, &mine) {
                out.push(serde_json::json!({ "user": {"id": id, "username": name}, "status": s.as_str() }));
            }
        }
        Ok(out)
    }
}

async fn rooms_of(
    hub: &Hub,
    store: &dyn Store,
    user_id: &str,
) -> crate::store::StoreResult<Arc<RoomSet>> {
    hub.rooms_of(user_id, || store.room_ids_of(user_id)).await
}

/// The announcer: runs for the server's life. Woken by a decided change, it tells this
/// server's clients the latest status of each user that changed (unless it is what they were
/// last told), then rests `rest` (`--presence-coalesce-ms`) before the next round: changes
/// made meanwhile are gathered into that round, the latest status of each user winning.
pub async fn announce_changes(
    presence: Arc<Presence>,
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    rest: Duration,
) {
    let mut announced: HashMap<String, Status> = HashMap::new();
    loop {
        tokio::select! {
            _ = presence.wake.notified() => {}
            _ = hub.joins_noticed() => {}
        }
        for (user, room) in hub.take_joins() {
            joined(&presence, &hub, &*store, &user, &room, &mut announced).await;
        }
        let dirty = std::mem::take(&mut *presence.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        for (id, name) in dirty {
            let now = {
                let shown = presence.shown.lock().unwrap_or_else(|p| p.into_inner());
                shown.get(&id).map_or(Status::Offline, |(_, s)| *s)
            };
            let before = announced.get(&id).copied().unwrap_or(Status::Offline);
            if now == before {
                continue;
            }
            if now == Status::Offline {
                announced.remove(&id);
            } else {
                announced.insert(id.clone(), now);
            }
            let rooms = rooms_of(&hub, &*store, &id).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "presence: rooms not read; told to the user only");
                Arc::new(RoomSet::new())
            });
            announce(&hub, &id, &name, now, rooms);
        }
        if !rest.is_zero() {
            tokio::time::sleep(rest).await;
        }
    }
}

/// `user` joined `room`: the room's members hear of the joiner's presence (their audience grew)
/// and the joiner hears, addressed to them alone, of each member who is online or idle.
async fn joined(
    presence: &Presence,
    hub: &Hub,
    store: &dyn Store,
    user: &str,
    room: &str,
    announced: &mut HashMap<String, Status>,
) {
    let shown: HashMap<String, (String, Status)> = presence
        .shown
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Some((name, status)) = shown.get(user) {
        match rooms_of(hub, store, user).await {
            Ok(rooms) => {
                announced.insert(user.to_string(), *status);
                announce(hub, user, name, *status, rooms);
            }
            Err(e) => tracing::warn!(error = %e, "presence: rooms not read"),
        }
    }
    let members = match store.room_members(room).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "presence: members not read");
            return;
        }
    };
    for m in members {
        if m.id == user {
            continue;
        }
        if let Some((name, status)) = shown.get(m.id.as_str()) {
            let data = presence_event(&m.id, name, *status);
            hub.publish_ephemeral_here(LiveEvent::ephemeral(
                Feed::Chat,
                &data,
                None,
                Some(user.to_string()),
                crate::clock::now_ms(),
            ));
        }
    }
}

/// Tells this server's clients who share a room with the user (each server of a cluster tells
/// its own).
fn announce(hub: &Hub, user_id: &str, username: &str, status: Status, rooms: Arc<RoomSet>) {
    let data = presence_event(user_id, username, status);
    let mut ev = LiveEvent::ephemeral(Feed::Chat, &data, None, None, crate::clock::now_ms());
    ev.shared_with = Some(Arc::new(Audience {
        subject: user_id.to_string(),
        rooms,
    }));
    hub.publish_ephemeral_here(ev);
}

/// The `presence` event saying `user_id` is `status` now.
fn presence_event(user_id: &str, username: &str, status: Status) -> EventData {
    EventData::Presence(protocol::Presence {
        user: Author {
            id: user_id.into(),
            username: username.to_string(),
            display_name: None,
        },
        status,
    })
}
