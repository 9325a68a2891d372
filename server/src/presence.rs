//! Presence: who is online (a live connection open, or polling lately), idle (their client said
//! so: no input for a while, or the tab hidden) or offline. Changes go out as ephemeral
//! `presence` events on the chat feed, to everyone; never stored.

use crate::hub::{Hub, LiveEvent};
use protocol::{kind, Feed};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A user who only polls counts as online this long after their last poll. Above the short-poll
/// interval and the long-poll hold, so a steady poller never flickers.
pub const POLL_PRESENCE_TTL: Duration = Duration::from_secs(40);
/// How often pollers who stopped are swept to offline.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Online,
    Idle,
    Offline,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Idle => "idle",
            Status::Offline => "offline",
        }
    }
}

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

#[derive(Default)]
pub struct Presence {
    users: Mutex<HashMap<String, Entry>>,
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
            announce(hub, user_id, username, status);
        }
    }

    pub fn connected(&self, hub: &Hub, user_id: &str, username: &str) {
        self.change(hub, user_id, username, |e| e.conns += 1);
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

    /// Pollers who stopped polling go offline.
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
        for (id, name) in gone {
            announce(hub, &id, &name, Status::Offline);
        }
    }

    /// Everyone not offline, with their status.
    pub fn snapshot(&self) -> Vec<serde_json::Value> {
        let now = Instant::now();
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .iter()
            .filter_map(|(id, e)| {
                let s = e.status(now);
                (s != Status::Offline).then(|| {
                    serde_json::json!({ "user": {"id": id, "username": e.username}, "status": s.as_str() })
                })
            })
            .collect()
    }
}

fn announce(hub: &Hub, user_id: &str, username: &str, status: Status) {
    let data = serde_json::json!({ "user": {"id": user_id, "username": username}, "status": status.as_str() });
    hub.publish_ephemeral(LiveEvent::ephemeral(
        Feed::Chat,
        kind::PRESENCE,
        None,
        None,
        &data,
        crate::services::now_ms(),
    ));
}

/// Marks a connection for presence while it lives.
pub struct Online {
    state: crate::state::AppState,
    user_id: String,
    username: String,
}

impl Online {
    pub fn new(state: &crate::state::AppState, user: &protocol::User) -> Online {
        state
            .presence
            .connected(&state.hub, &user.id, &user.username);
        Online {
            state: state.clone(),
            user_id: user.id.clone(),
            username: user.username.clone(),
        }
    }
}

impl Drop for Online {
    fn drop(&mut self) {
        self.state
            .presence
            .disconnected(&self.state.hub, &self.user_id, &self.username);
    }
}
