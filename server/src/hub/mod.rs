//! The hub: the one place events enter the live path. A change is committed to the log first (and
//! so gets its id), then published to every subscriber in id order. Ephemeral events (typing,
//! presence) skip the log and carry no id.
//!
//! This folder is the event path, above the store and below everything else: the write side
//! ([`writer`], the group commit), the [`Hub`] that orders and fans out, the event and its
//! encodings made once ([`event`]), the read side ([`subscription`]: subscribe, replay, dedupe),
//! the log as safety net ([`gaps`]) and the port to the other servers of a cluster
//! ([`backplane`]). Nothing here imports anything above it.

pub mod backplane;
pub mod event;
pub mod gaps;
pub mod subscription;
pub mod writer;

pub use backplane::Backplane;
pub use event::{encode, encode_data, Audience, LiveEvent, RoomSet};

use crate::store::StoredEvent;
use protocol::{kind, Feed, MembershipChange};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::{broadcast, Mutex};

/// Events buffered per subscriber before it counts as lagging. A lagging subscriber loses
/// nothing: it re-reads the log from its last id. Larger values absorb longer bursts per
/// connection at the cost of memory held for the slowest receiver.
pub const HUB_CAPACITY: usize = 4096;
/// Recent ephemeral events (typing, presence) kept for polls, which are not connected when they
/// happen: at most this many, and none older than [`RECENT_EPHEMERAL_FOR`].
pub const RECENT_EPHEMERALS: usize = 512;
pub const RECENT_EPHEMERAL_FOR: std::time::Duration = std::time::Duration::from_secs(15);

pub struct Hub {
    tx: broadcast::Sender<Arc<LiveEvent>>,
    /// Held from the start of a commit until its events are published, so publication order is
    /// id order (SQLite serialises writers anyway, so this costs no write concurrency).
    order: Mutex<()>,
    head: AtomicI64,
    /// The oldest cursor the log can serve (see `Store::log_floor`); older ones get resync.
    floor: AtomicI64,
    eph_seq: std::sync::atomic::AtomicU64,
    recent: std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, Arc<LiveEvent>)>>,
    /// Each user's rooms, for opening subscriptions without a query (a poll opens one per
    /// request). Filled from the store on a miss; a user's entry goes before any event that
    /// changes their membership is published.
    rooms: std::sync::Mutex<std::collections::HashMap<String, Arc<RoomSet>>>,
    /// Bumped by every membership change: a store read that raced one is not cached.
    rooms_gen: std::sync::atomic::AtomicU64,
    /// Committed events that arrived ahead of an id not seen yet (from another server of a
    /// cluster, or a publication lost with the backplane): they wait here, and go out in id
    /// order once the ids before them are in. Ids are gapless, so the next one is head + 1.
    pending: std::sync::Mutex<std::collections::BTreeMap<i64, (StoredEvent, Option<i64>)>>,
    /// Woken when events wait behind a missing id: the gap filler reads it from the log.
    gap: tokio::sync::Notify,
    /// Where committed and ephemeral events also go when this server is one of a cluster.
    backplane: std::sync::OnceLock<Arc<dyn Backplane>>,
    /// Woken by every published change of the transport switches (whichever server made it).
    switches_changed: tokio::sync::Notify,
    /// (user, room) of every join published since the presence announcer last looked: the
    /// room's members and the joiner learn each other's presence.
    joins: std::sync::Mutex<Vec<(String, String)>>,
    joins_noticed: tokio::sync::Notify,
}

/// Joins waiting for the presence announcer at most.
const MAX_PENDING_JOINS: usize = 10_000;

/// Users whose rooms are cached at most; beyond it the cache starts again empty.
const ROOM_CACHE_USERS: usize = 100_000;

impl Hub {
    pub fn new(head: i64, floor: i64) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(HUB_CAPACITY);
        Arc::new(Hub {
            tx,
            order: Mutex::new(()),
            head: AtomicI64::new(head),
            floor: AtomicI64::new(floor),
            eph_seq: std::sync::atomic::AtomicU64::new(0),
            recent: std::sync::Mutex::new(std::collections::VecDeque::new()),
            rooms: std::sync::Mutex::new(std::collections::HashMap::new()),
            rooms_gen: std::sync::atomic::AtomicU64::new(0),
            pending: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            gap: tokio::sync::Notify::new(),
            backplane: std::sync::OnceLock::new(),
            switches_changed: tokio::sync::Notify::new(),
            joins: std::sync::Mutex::new(Vec::new()),
            joins_noticed: tokio::sync::Notify::new(),
        })
    }

    /// Completes when joins were published since [`Hub::take_joins`] was last called.
    pub async fn joins_noticed(&self) {
        self.joins_noticed.notified().await
    }

    /// The (user, room) joins published since the last call.
    pub fn take_joins(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.joins.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Completes after a change of the transport switches was published.
    pub async fn switches_changed(&self) {
        self.switches_changed.notified().await
    }

    /// Joins a cluster: from now on every committed event and every ephemeral one published
    /// here also goes to `backplane`, once.
    pub fn set_backplane(&self, backplane: Arc<dyn Backplane>) {
        let _ = self.backplane.set(backplane);
    }

    /// `user_id`'s rooms, from the cache or (once) from `load`.
    pub async fn rooms_of<F, Fut, E>(&self, user_id: &str, load: F) -> Result<Arc<RoomSet>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<String>, E>>,
    {
        let cached = {
            let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
            rooms.get(user_id).cloned()
        };
        if let Some(set) = cached {
            return Ok(set);
        }
        let generation = self.rooms_gen.load(Ordering::Acquire);
        let set: Arc<RoomSet> = Arc::new(load().await?.into_iter().collect());
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if self.rooms_gen.load(Ordering::Acquire) == generation {
            if rooms.len() >= ROOM_CACHE_USERS {
                rooms.clear();
            }
            rooms.insert(user_id.to_string(), Arc::clone(&set));
        }
        Ok(set)
    }

    /// Forgets `user_id`'s cached rooms (their membership changed).
    fn forget_rooms(&self, user_id: &str) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        self.rooms_gen.fetch_add(1, Ordering::AcqRel);
        rooms.remove(user_id);
    }

    /// The newest ephemeral's sequence number (0 before any).
    pub fn eph_seq(&self) -> u64 {
        self.eph_seq.load(Ordering::Acquire)
    }

    /// Recent ephemerals with a sequence number in (`after`, `through`], oldest first.
    pub fn recent_ephemerals(&self, after: u64, through: u64) -> Vec<Arc<LiveEvent>> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .iter()
            .filter(|(_, e)| e.eph_seq > after && e.eph_seq <= through)
            .map(|(_, e)| Arc::clone(e))
            .collect()
    }

    pub fn floor(&self) -> i64 {
        self.floor.load(Ordering::Acquire)
    }

    /// Raises the floor after the log was pruned.
    pub fn raise_floor(&self, floor: i64) {
        self.floor.fetch_max(floor, Ordering::AcqRel);
    }

    /// Subscribes to everything published from now on, and returns the head at that moment:
    /// every event with a larger id will arrive on the receiver (or be found in the log).
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<LiveEvent>>, i64) {
        let rx = self.tx.subscribe();
        (rx, self.head.load(Ordering::Acquire))
    }

    pub fn head(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    pub fn subscriber_count(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Runs `work` (a store change returning its committed events) and publishes the events.
    /// The work runs in its own task, so a caller that goes away (a closed request) cannot
    /// leave a committed event unpublished.
    pub async fn commit<T, E, F>(self: &Arc<Self>, work: F) -> Result<T, E>
    where
        F: Future<Output = Result<(T, Vec<StoredEvent>), E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static + From<anyhow::Error>,
    {
        let hub = Arc::clone(self);
        let task = tokio::spawn(async move {
            let _order = hub.order.lock().await;
            let (value, events) = work.await?;
            hub.publish_committed(&events);
            Ok(value)
        });
        match task.await {
            Ok(result) => result,
            Err(join) => Err(E::from(anyhow::anyhow!("commit task failed: {join}"))),
        }
    }

    /// Takes the commit order lock for a writer that commits and publishes by itself (the
    /// group-commit writer): hold it from before the transaction until its events are published.
    pub async fn order_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.order.lock().await
    }

    /// Publishes events this server committed (the caller holds [`Hub::order_lock`]): to the
    /// backplane when in a cluster, and to this server's subscribers in id order.
    pub fn publish_committed(&self, events: &[StoredEvent]) {
        if events.is_empty() {
            return;
        }
        if let Some(backplane) = self.backplane.get() {
            backplane.committed(events);
        }
        self.accept(events.iter().cloned().map(|e| (e, None)));
    }

    /// Takes committed events from anywhere (this server, the backplane, the log), each with
    /// its commit time in Unix µs when known: ids already published are dropped (so an event
    /// that comes twice goes out once), the rest wait until every smaller id is in, then go out
    /// in id order. Returns how many went out.
    pub fn accept(&self, events: impl IntoIterator<Item = (StoredEvent, Option<i64>)>) -> usize {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.head.load(Ordering::Acquire);
        for (ev, at) in events {
            if ev.id > head {
                pending.insert(ev.id, (ev, at));
            }
        }
        self.drain(&mut pending)
    }

    /// Publishes the pending events that follow the head without a gap.
    fn drain(
        &self,
        pending: &mut std::collections::BTreeMap<i64, (StoredEvent, Option<i64>)>,
    ) -> usize {
        let mut sent = 0;
        while let Some(entry) = pending.first_entry() {
            let next = self.head.load(Ordering::Acquire) + 1;
            if *entry.key() > next {
                break;
            }
            let (ev, at) = entry.remove();
            if ev.id == next {
                self.publish_stored(&ev, at);
                sent += 1;
            }
        }
        if !pending.is_empty() {
            self.gap.notify_one();
        }
        sent
    }

    /// The ids the log says exist through `through` have all been read (`events`): ids in
    /// between that are not among them never committed or were pruned, so nothing waits for
    /// them any more. Returns how many events went out.
    pub fn fill(&self, events: Vec<StoredEvent>, through: i64) -> usize {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for ev in events {
            if ev.id > self.head.load(Ordering::Acquire) {
                pending.insert(ev.id, (ev, None));
            }
        }
        let mut sent = self.drain(&mut pending);
        // Holes: skip over ids the log does not have, up to the next one it has.
        while self.head.load(Ordering::Acquire) < through {
            let next_known = pending.keys().next().copied().unwrap_or(through + 1);
            let skip_to = (next_known - 1).min(through);
            if skip_to <= self.head.load(Ordering::Acquire) {
                break;
            }
            tracing::debug!(
                from = self.head(),
                to = skip_to,
                "no events in the log for these ids"
            );
            self.head.fetch_max(skip_to, Ordering::AcqRel);
            sent += self.drain(&mut pending);
        }
        sent
    }

    /// Events waiting behind a missing id.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Asks the gap filler to compare the hub with the log now.
    pub fn wake_gap_filler(&self) {
        self.gap.notify_one();
    }

    /// Completes when events wait behind a missing id (or soon after one was found waiting).
    pub async fn gap_noticed(&self) {
        self.gap.notified().await
    }

    fn publish_stored(&self, ev: &StoredEvent, committed_at_us: Option<i64>) {
        // No receivers is fine: the event is in the log for whoever connects later.
        let mut live = LiveEvent::from_stored(ev);
        // Before anyone can see this event's id as the head, so no subscription opened from
        // here on starts from the rooms before it.
        if let (Some(change), Some(user)) = (&live.membership, &live.user_id) {
            self.forget_rooms(user);
            if let (MembershipChange::Joined, Some(room)) = (change, &live.room_id) {
                let mut joins = self.joins.lock().unwrap_or_else(|p| p.into_inner());
                // Bounded: past it, the oldest are forgotten (their presence shows on the
                // next change or the next GET /api/presence).
                if joins.len() >= MAX_PENDING_JOINS {
                    joins.remove(0);
                }
                joins.push((user.clone(), room.clone()));
                self.joins_noticed.notify_one();
            }
        }
        self.head.fetch_max(ev.id, Ordering::AcqRel);
        if ev.feed == Feed::Control
            && ev.kind == kind::TRANSPORT
            && ev.data.contains("\"switches\"")
        {
            self.switches_changed.notify_one();
        }
        let now = std::time::Instant::now();
        // From another server: its age counts from the commit there (same clock on one
        // machine; across machines as good as their clock sync).
        live.published = Some(match committed_at_us {
            Some(at) => {
                let age = (crate::clock::now_us() - at).max(0) as u64;
                now.checked_sub(std::time::Duration::from_micros(age))
                    .unwrap_or(now)
            }
            None => now,
        });
        let _ = self.tx.send(Arc::new(live));
    }

    pub fn publish_ephemeral(&self, ev: LiveEvent) {
        if let Some(backplane) = self.backplane.get() {
            backplane.ephemeral(&ev);
        }
        self.publish_ephemeral_here(ev);
    }

    /// Publishes an ephemeral event to this server's subscribers only (one that came from
    /// another server of the cluster).
    pub fn publish_ephemeral_here(&self, mut ev: LiveEvent) {
        debug_assert!(ev.id.is_none());
        let ev = {
            // Numbered and remembered under the lock, so the ring is in sequence order.
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            ev.eph_seq = self.eph_seq.fetch_add(1, Ordering::AcqRel) + 1;
            ev.published = Some(std::time::Instant::now());
            let ev = Arc::new(ev);
            let now = std::time::Instant::now();
            recent.push_back((now, Arc::clone(&ev)));
            while recent.len() > RECENT_EPHEMERALS
                || recent
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > RECENT_EPHEMERAL_FOR)
            {
                recent.pop_front();
            }
            ev
        };
        let _ = self.tx.send(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::event::stored;
    use super::*;

    #[tokio::test]
    async fn commits_publish_in_order_and_move_the_head() {
        let hub = Hub::new(0, 0);
        let (mut rx, head) = hub.subscribe();
        assert_eq!(head, 0);
        for id in 1..=3 {
            let v: Result<i64, anyhow::Error> =
                hub.commit(async move { Ok((id, vec![stored(id)])) }).await;
            assert_eq!(v.unwrap(), id);
        }
        for id in 1..=3 {
            assert_eq!(rx.recv().await.unwrap().id, Some(id));
        }
        assert_eq!(hub.head(), 3);
    }

    fn ids(rx: &mut broadcast::Receiver<Arc<LiveEvent>>) -> Vec<i64> {
        let mut out = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            out.extend(ev.id);
        }
        out
    }

    #[test]
    fn events_from_anywhere_go_out_in_id_order_once() {
        let hub = Hub::new(0, 0);
        let (mut rx, _) = hub.subscribe();
        // 3 and 2 arrive before 1 (another server's commits crossing the backplane).
        assert_eq!(hub.accept([(stored(3), None), (stored(2), None)]), 0);
        assert_eq!(hub.pending(), 2);
        assert_eq!(hub.head(), 0, "nothing past a missing id");
        assert_eq!(hub.accept([(stored(1), Some(0))]), 3);
        assert_eq!(ids(&mut rx), vec![1, 2, 3]);
        // The same events again (from the log, or twice over the backplane): dropped.
        assert_eq!(hub.accept([(stored(2), None), (stored(3), None)]), 0);
        assert!(ids(&mut rx).is_empty());
        assert_eq!((hub.head(), hub.pending()), (3, 0));
    }

    #[test]
    fn filling_from_the_log_skips_ids_it_does_not_have() {
        let hub = Hub::new(0, 0);
        let (mut rx, _) = hub.subscribe();
        hub.accept([(stored(6), None)]);
        // The log has 1, 2 and 5 through 6 (3 and 4 were pruned): they go out, the holes are
        // passed over, 6 follows.
        assert_eq!(hub.fill(vec![stored(1), stored(2), stored(5)], 6), 4);
        assert_eq!(ids(&mut rx), vec![1, 2, 5, 6]);
        assert_eq!((hub.head(), hub.pending()), (6, 0));
        // Nothing in the log through 8: the head moves on, nothing is published.
        assert_eq!(hub.fill(Vec::new(), 8), 0);
        assert_eq!(hub.head(), 8);
    }

    #[tokio::test]
    async fn a_failed_commit_publishes_nothing() {
        let hub = Hub::new(0, 0);
        let (mut rx, _) = hub.subscribe();
        let r: Result<(), anyhow::Error> = hub
            .commit(async { Err::<((), Vec<StoredEvent>), _>(anyhow::anyhow!("no")) })
            .await;
        assert!(r.is_err());
        assert!(rx.try_recv().is_err());
    }
}
