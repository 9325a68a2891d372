//! Connection caps: a global cap on open TCP connections (enforced where connections are
//! accepted, see `serve`) and a per-user cap on live connections (WebSocket, SSE, polls in
//! flight), so one account cannot hold the server's connection budget.

use crate::error::ApiError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Inner {
    /// Open TCP connections, including upgraded WebSockets.
    open: AtomicUsize,
    /// Live connections per user id.
    per_user: Mutex<HashMap<String, u32>>,
}

/// The counters; cheap to clone.
#[derive(Clone, Default)]
pub struct Limits {
    inner: Arc<Inner>,
    pub max_open: usize,
    pub max_per_user: u32,
}

impl Limits {
    pub fn new(max_open: usize, max_per_user: u32) -> Limits {
        Limits {
            inner: Arc::default(),
            max_open,
            max_per_user,
        }
    }

    /// Takes a connection slot, or None when the server is full.
    pub fn connection(&self) -> Option<ConnSlot> {
        let prev = self.inner.open.fetch_add(1, Ordering::AcqRel);
        let slot = ConnSlot {
            _guard: Arc::new(SlotGuard(Arc::clone(&self.inner))),
        };
        (prev < self.max_open).then_some(slot)
    }

    /// Open TCP connections now.
    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }

    /// Takes one of `user_id`'s live-connection slots: 429 `too_many_connections` beyond the cap.
    pub fn user(&self, user_id: &str) -> Result<UserSlot, ApiError> {
        let mut map = self
            .inner
            .per_user
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = map.entry(user_id.to_string()).or_insert(0);
        if *n >= self.max_per_user {
            if *n == 0 {
                map.remove(user_id);
            }
            return Err(ApiError::TooManyConnections(self.max_per_user));
        }
        *n += 1;
        Ok(UserSlot {
            inner: Arc::clone(&self.inner),
            user_id: user_id.to_string(),
        })
    }

    /// Users holding at least one live connection (for the leak checks).
    pub fn users_connected(&self) -> usize {
        self.inner
            .per_user
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

struct SlotGuard(Arc<Inner>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One open TCP connection. Each request on it carries a clone, so an upgraded WebSocket keeps
/// its slot after the HTTP connection hands the socket over.
#[derive(Clone)]
pub struct ConnSlot {
    _guard: Arc<SlotGuard>,
}

/// One live connection of a user; released on drop.
pub struct UserSlot {
    inner: Arc<Inner>,
    user_id: String,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut map = self
            .inner
            .per_user
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_and_release() {
        let limits = Limits::new(2, 1);
        let a = limits.connection().expect("first");
        let b = limits.connection().expect("second");
        assert!(limits.connection().is_none(), "third over the cap");
        assert_eq!(limits.open(), 2, "a refused slot is given back at once");
        drop(a);
        let _c = limits.connection().expect("room again");
        drop(b);

        let u = limits.user("u1").expect("first live connection");
        assert!(matches!(
            limits.user("u1"),
            Err(ApiError::TooManyConnections(1))
        ));
        assert!(limits.user("u2").is_ok(), "caps are per user");
        drop(u);
        assert!(limits.user("u1").is_ok());
        assert_eq!(
            limits.users_connected(),
            0,
            "released slots leave nothing behind"
        );
    }
}
