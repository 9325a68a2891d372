//! Connection caps: a global cap on open TCP connections (enforced where connections are
//! accepted, see `serve`), a cap on connections that have not shown a valid session yet (the
//! oldest of them make way, so strangers holding connections open can never crowd out signed-in
//! users), and a per-user cap on live connections (WebSocket, SSE, polls in flight), so one
//! account cannot hold the server's connection budget.

use crate::error::ApiError;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// An anonymous connection younger than this is never closed to make room: it has not had the
/// time to show its session (a burst of reconnecting clients would otherwise close each other
/// silently). A newcomer finding only young ones is refused with 503 `server_full` and
/// `Retry-After` instead. Short, so an attacker must open four times the anonymous cap every
/// second to keep them all young.
pub const EVICT_MIN_AGE: Duration = Duration::from_millis(250);

/// File descriptors kept back from connections for the database, the log, exports and the
/// listener itself.
pub const FD_RESERVE: usize = 64;

#[derive(Default)]
struct Inner {
    /// Open TCP connections, including upgraded WebSockets.
    open: AtomicUsize,
    /// Live connections per user id.
    per_user: Mutex<HashMap<String, u32>>,
    /// Connections with no valid session seen yet, oldest first (by connection number), each
    /// with when it opened and the token that closes it.
    anonymous: Mutex<BTreeMap<u64, (Instant, CancellationToken)>>,
    next_conn: AtomicU64,
    /// Anonymous connections closed to make room, since start.
    evicted: AtomicU64,
}

/// The counters; cheap to clone.
#[derive(Clone, Default)]
pub struct Limits {
    inner: Arc<Inner>,
    pub max_open: usize,
    pub max_per_user: u32,
    pub max_anonymous: usize,
}

impl Limits {
    /// `max_open` is also kept under the file-descriptor budget (`fd_budget`), and
    /// `max_anonymous` to half of the result.
    pub fn new(max_open: usize, max_per_user: u32, max_anonymous: usize) -> Limits {
        let max_open = fd_budget().map_or(max_open, |fds| max_open.min(fds));
        Limits {
            inner: Arc::default(),
            max_open,
            max_per_user,
            max_anonymous: max_anonymous.min(max_open / 2).max(1),
        }
    }

    /// Takes a connection slot, or None when the server is full. The new connection counts as
    /// anonymous until [`ConnSlot::signed_in`]; when there are too many of those, the oldest is
    /// told to close (its token is cancelled), if it is older than [`EVICT_MIN_AGE`] (else the
    /// newcomer is refused).
    pub fn connection(&self) -> Option<ConnSlot> {
        self.connection_at(Instant::now())
    }

    fn connection_at(&self, now: Instant) -> Option<ConnSlot> {
        let prev = self.inner.open.fetch_add(1, Ordering::AcqRel);
        let id = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let close = CancellationToken::new();
        let slot = ConnSlot {
            guard: Arc::new(SlotGuard {
                inner: Arc::clone(&self.inner),
                id,
                anonymous: AtomicBool::new(prev < self.max_open),
            }),
            close: close.clone(),
        };
        if prev >= self.max_open {
            return None;
        }
        let mut anon = self
            .inner
            .anonymous
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while anon.len() >= self.max_anonymous {
            let Some(entry) = anon.first_entry() else {
                break;
            };
            if now.saturating_duration_since(entry.get().0) < EVICT_MIN_AGE {
                // Only fresh ones: refuse the newcomer (the slot is given back on drop).
                slot.guard.anonymous.store(false, Ordering::Release);
                return None;
            }
            entry.remove().1.cancel();
            self.inner.evicted.fetch_add(1, Ordering::Relaxed);
        }
        anon.insert(id, (now, close));
        Some(slot)
    }

    /// Connections open now that have not shown a valid session.
    pub fn anonymous(&self) -> usize {
        self.inner
            .anonymous
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Anonymous connections closed to make room, since start.
    pub fn evicted(&self) -> u64 {
        self.inner.evicted.load(Ordering::Relaxed)
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

struct SlotGuard {
    inner: Arc<Inner>,
    id: u64,
    /// Still among the anonymous connections.
    anonymous: AtomicBool,
}

impl SlotGuard {
    fn leave_anonymous(&self) {
        if self.anonymous.swap(false, Ordering::AcqRel) {
            self.inner
                .anonymous
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.id);
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.leave_anonymous();
        self.inner.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One open TCP connection. Each request on it carries a clone, so an upgraded WebSocket keeps
/// its slot after the HTTP connection hands the socket over.
#[derive(Clone)]
pub struct ConnSlot {
    guard: Arc<SlotGuard>,
    close: CancellationToken,
}

impl ConnSlot {
    /// A request on this connection carried a valid session: it no longer counts (or can be
    /// closed) as anonymous. Cheap after the first call.
    pub fn signed_in(&self) {
        if self.guard.anonymous.load(Ordering::Acquire) {
            self.guard.leave_anonymous();
        }
    }

    /// Resolves when the connection must close to make room for a newer anonymous one.
    pub fn evicted(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.close.clone().cancelled_owned()
    }
}

/// Connections this process can hold: its open-file limit (raised to the hard limit first)
/// less [`FD_RESERVE`]. None where the platform does not say.
pub fn fd_budget() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit with a valid resource and a pointer to a local struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return None;
            }
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim = raised;
                }
            }
        }
        if lim.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        Some((lim.rlim_cur as usize).saturating_sub(FD_RESERVE))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
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
    fn the_oldest_anonymous_connection_makes_room_and_signed_in_ones_never_do() {
        let limits = Limits::new(100, 10, 2);
        let t0 = Instant::now();
        let later = t0 + EVICT_MIN_AGE * 2;
        let a = limits.connection_at(t0).expect("a");
        let b = limits.connection_at(t0).expect("b");
        b.signed_in();
        let c = limits.connection_at(later).expect("c");
        assert!(
            limits.connection_at(t0 + EVICT_MIN_AGE / 2).is_none(),
            "a is too young to close: the newcomer is refused"
        );
        let d = limits
            .connection_at(later)
            .expect("d: over the anonymous cap, a makes way");
        assert!(a.close.is_cancelled(), "the oldest anonymous one is closed");
        assert!(!b.close.is_cancelled(), "signed in: never closed for room");
        assert!(!c.close.is_cancelled() && !d.close.is_cancelled());
        assert_eq!((limits.anonymous(), limits.evicted()), (2, 1));
        drop(a);
        assert_eq!(
            limits.anonymous(),
            2,
            "a had already left the anonymous set"
        );
        drop(c);
        assert_eq!(limits.anonymous(), 1);
        assert_eq!(limits.open(), 2);
        drop((b, d));
        assert_eq!((limits.open(), limits.anonymous()), (0, 0));
    }

    #[test]
    fn the_anonymous_cap_is_half_the_connections_at_most() {
        let limits = Limits::new(10, 1, 1000);
        assert_eq!(limits.max_anonymous, 5);
        assert!(fd_budget().is_none_or(|n| limits.max_open <= n));
    }

    #[test]
    fn slots_count_and_release() {
        let limits = Limits::new(2, 1, 2);
        let a = limits.connection().expect("first");
        a.signed_in();
        let b = limits.connection().expect("second");
        b.signed_in();
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
