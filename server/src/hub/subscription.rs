//! A subscription: what one connection (or one poll) sees of the log. Subscribe to the hub
//! first, then replay from the cursor, then drop anything at or below the last id delivered: no
//! gap between history and live, no duplicate. A subscriber that falls behind the hub's buffer
//! re-reads the log from its last id, so lagging never loses an event.

use super::event::{encode_data, LiveEvent, RoomSet};
use super::Hub;
use crate::store::{Store, StoreResult};
use protocol::{EventData, Feed, FeedSet, MembershipChange, Resync};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

/// Events read from the log per query while replaying or catching up. Bounds the memory a
/// replay holds at once; larger pages mean fewer queries for a far-behind client.
pub const REPLAY_PAGE: u32 = 500;

pub struct Subscription {
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    rx: broadcast::Receiver<Arc<LiveEvent>>,
    user_id: String,
    feeds: FeedSet,
    /// Shared with the hub's cache until a membership change here copies it.
    rooms: Arc<RoomSet>,
    last_id: i64,
    /// Where the next read of the log starts: the last id loaded into the backlog. Ahead of
    /// `last_id` while loaded events wait to go out.
    read_pos: i64,
    /// Every event up to here has been looked at (delivered, or not visible to this user), so a
    /// poll can hand this out as its cursor and the next poll need not scan those ids again.
    horizon: i64,
    /// The head when this subscription started; the horizon once the replay has caught up.
    head_at_open: i64,
    /// True while the log may hold visible events after `last_id` that the receiver will not
    /// bring (at the start with a cursor, and after lagging).
    catching_up: bool,
    backlog: VecDeque<Arc<LiveEvent>>,
    /// Set when the cursor cannot be honoured: the first event out is a `resync`.
    resync: bool,
    /// The user's live-connection slot, held as long as this subscription.
    slot: Option<crate::limits::UserSlot>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("the hub has closed")]
    Closed,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Subscription {
    /// Opens a subscription for `user_id` on `feeds`. With a cursor, every visible event after it
    /// comes first; without one, only events committed from now on.
    /// Keeps `slot` (the user's live-connection slot) until this subscription ends.
    pub fn hold(&mut self, slot: crate::limits::UserSlot) {
        self.slot = Some(slot);
    }

    pub async fn open(
        hub: &Arc<Hub>,
        store: Arc<dyn Store>,
        user_id: &str,
        feeds: FeedSet,
        cursor: Option<i64>,
    ) -> StoreResult<Subscription> {
        let (rx, head) = hub.subscribe();
        let rooms = hub.rooms_of(user_id, || store.room_ids_of(user_id)).await?;
        // A cursor beyond the head cannot come from this log (a reset database, or a client of
        // another deployment); one below the floor asks for events already pruned. Either way:
        // start from the head and tell the client to reload, never a silent gap.
        let resync = cursor.is_some_and(|c| c > head || c < hub.floor());
        let last_id = match cursor {
            Some(c) if !resync => c,
            _ => head,
        };
        let catching_up = cursor.is_some() && !resync && last_id < head;
        Ok(Subscription {
            hub: Arc::clone(hub),
            store,
            rx,
            user_id: user_id.to_string(),
            feeds,
            rooms,
            last_id,
            read_pos: last_id,
            horizon: if catching_up { last_id } else { head },
            head_at_open: head,
            catching_up,
            backlog: VecDeque::new(),
            slot: None,
            resync,
        })
    }

    /// The cursor to resume from: the last event delivered, or further when everything up to
    /// a later id has been looked at and nothing is waiting to go out.
    pub fn cursor(&self) -> i64 {
        if self.catching_up || !self.backlog.is_empty() {
            self.last_id
        } else {
            self.last_id.max(self.horizon)
        }
    }

    /// Like `next`, but never waits for the hub: reads the log if a replay is due, then returns
    /// what is ready (for short polls).
    pub async fn next_ready(&mut self) -> Result<Option<Arc<LiveEvent>>, SubscriptionError> {
        loop {
            if let Some(ev) = self.take_ready()? {
                return Ok(Some(ev));
            }
            if self.catching_up {
                self.fill_from_log().await?;
                continue;
            }
            return Ok(None);
        }
    }

    pub fn feeds(&self) -> FeedSet {
        self.feeds
    }

    /// Takes a pending `resync` notice, if the cursor could not be honoured.
    pub fn take_resync(&mut self) -> bool {
        std::mem::take(&mut self.resync)
    }

    /// The next event this subscriber may see. Cancel-safe: state changes only after an await
    /// completes, so it can sit in a `select!`.
    pub async fn next(&mut self) -> Result<Arc<LiveEvent>, SubscriptionError> {
        loop {
            if let Some(ev) = self.take_ready()? {
                return Ok(ev);
            }
            if self.catching_up {
                self.fill_from_log().await?;
                continue;
            }
            match self.rx.recv().await {
                Ok(ev) => {
                    if let Some(ev) = self.admit(ev) {
                        return Ok(ev);
                    }
                }
                Err(RecvError::Lagged(_)) => self.catching_up = true,
                Err(RecvError::Closed) => return Err(SubscriptionError::Closed),
            }
        }
    }

    /// An event that is ready without waiting (for batching several events into one write).
    /// Returns None when the next event would need a wait or a log read.
    pub fn try_next(&mut self) -> Result<Option<Arc<LiveEvent>>, SubscriptionError> {
        self.take_ready()
    }

    fn take_ready(&mut self) -> Result<Option<Arc<LiveEvent>>, SubscriptionError> {
        if let Some(ev) = self.backlog.pop_front() {
            if let Some(id) = ev.id {
                self.last_id = self.last_id.max(id);
            }
            return Ok(Some(ev));
        }
        if self.catching_up {
            return Ok(None);
        }
        loop {
            match self.rx.try_recv() {
                Ok(ev) => {
                    if let Some(ev) = self.admit(ev) {
                        return Ok(Some(ev));
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.catching_up = true;
                    return Ok(None);
                }
                Err(broadcast::error::TryRecvError::Empty) => return Ok(None),
                Err(broadcast::error::TryRecvError::Closed) => {
                    return Err(SubscriptionError::Closed)
                }
            }
        }
    }

    async fn fill_from_log(&mut self) -> Result<(), SubscriptionError> {
        if self.read_pos < self.hub.floor() {
            // Pruned under a long replay: say so instead of skipping.
            self.catching_up = false;
            self.last_id = self.hub.head();
            self.read_pos = self.last_id;
            self.horizon = self.last_id;
            self.backlog.push_back(Arc::new(LiveEvent {
                id: None,
                feed: Feed::Control,
                room_id: None,
                user_id: None,
                membership: None,
                shared_with: None,
                eph_seq: 0,
                published: None,
                ts: crate::clock::now_ms(),
                json: encode_data(
                    None,
                    Feed::Control,
                    &EventData::Resync(Resync {
                        cursor: self.last_id,
                    }),
                    crate::clock::now_ms(),
                )
                .into(),
                sse: Default::default(),
            }));
            return Ok(());
        }
        let page = self
            .store
            // Only up to the hub's head: a commit not yet published stays out of the replay and
            // arrives from the hub, so no client holds an id the hub has not announced.
            .events_after(
                &self.user_id,
                self.feeds,
                self.read_pos,
                self.hub.head(),
                REPLAY_PAGE,
            )
            .await?;
        if (page.len() as u32) < REPLAY_PAGE {
            self.catching_up = false;
            // The log held nothing more for us when read, and it already had everything up to
            // the head we saw at the start.
            self.horizon = self.horizon.max(self.head_at_open);
        }
        for stored in &page {
            let ev = Arc::new(LiveEvent::from_stored(stored));
            self.track_membership(&ev);
            self.read_pos = stored.id;
            self.backlog.push_back(ev);
        }
        Ok(())
    }

    /// Decides whether a hub event goes to this subscriber, keeping the cursor and the room set.
    fn admit(&mut self, ev: Arc<LiveEvent>) -> Option<Arc<LiveEvent>> {
        if let Some(id) = ev.id {
            // At or below what was delivered or already loaded from the log: a duplicate.
            if id <= self.last_id.max(self.read_pos) {
                return None;
            }
            self.horizon = self.horizon.max(id);
        }
        self.track_membership(&ev);
        if !self.may_see(&ev) {
            return None;
        }
        if let Some(id) = ev.id {
            self.last_id = id;
        }
        Some(ev)
    }

    /// Whether this subscriber may see `ev` (by audience and feed), without taking it.
    pub fn may_see(&self, ev: &LiveEvent) -> bool {
        let visible = match (&ev.user_id, &ev.room_id, &ev.shared_with) {
            (Some(user), _, _) => *user == self.user_id,
            (None, Some(room), _) => self.rooms.contains(room),
            (None, None, Some(audience)) => audience.admits(&self.user_id, &self.rooms),
            (None, None, None) => true,
        };
        visible && self.feeds.contains(ev.feed)
    }

    fn track_membership(&mut self, ev: &LiveEvent) {
        let (Some(change), Some(room), Some(user)) = (&ev.membership, &ev.room_id, &ev.user_id)
        else {
            return;
        };
        if *user != self.user_id {
            return;
        }
        match change {
            MembershipChange::Joined => {
                if !self.rooms.contains(room) {
                    Arc::make_mut(&mut self.rooms).insert(room.clone());
                }
            }
            MembershipChange::Left => {
                if self.rooms.contains(room) {
                    Arc::make_mut(&mut self.rooms).remove(room);
                }
            }
            MembershipChange::Invited => {}
        }
    }

    /// True if this subscription carries `feed`.
    pub fn wants(&self, feed: Feed) -> bool {
        self.feeds.contains(feed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::new_id;
    use crate::hub::HUB_CAPACITY;
    use crate::services::chat;
    use crate::testing::World;
    use protocol::{Room, User};

    /// `n` new messages from `me` in `room`, sent at once (the writer commits them in
    /// batches).
    async fn send(world: &World, me: &User, room: &Room, n: usize) {
        let sends = (0..n).map(|i| {
            let (state, me, room) = (&world.state, me, &room.id);
            async move {
                let (_, new) = chat::send(state, me, room, &format!("m{i}"), &new_id())
                    .await
                    .expect("sent");
                assert!(new);
            }
        });
        futures_util::future::join_all(sends).await;
    }

    async fn open(world: &World, me: &User, cursor: Option<i64>) -> Subscription {
        let feeds = FeedSet::parse(Some("chat")).expect("feeds");
        let hub = &world.state.hub;
        Subscription::open(hub, world.state.store.clone(), &me.id, feeds, cursor)
            .await
            .expect("subscribed")
    }

    /// The ids of the next `n` events, as they come.
    async fn next_ids(sub: &mut Subscription, n: usize) -> Vec<i64> {
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            let ev = sub.next().await.expect("an event");
            ids.push(ev.id.expect("a stored event"));
        }
        ids
    }

    #[tokio::test]
    async fn a_subscriber_that_overflows_the_hub_rereads_the_log_without_gap_or_duplicate() {
        let world = World::new(|_| {}).await;
        let ann = world.user("ann").await;
        let room = chat::create_room(&world.state, &ann, "r", false)
            .await
            .expect("a room");
        let mut sub = open(&world, &ann, None).await;
        let from = sub.cursor();
        // Everything is published before the subscriber reads a thing: its receiver holds at
        // most HUB_CAPACITY of them, so it lags and has to read the rest from the log.
        let n = HUB_CAPACITY + 700;
        send(&world, &ann, &room, n).await;
        assert_eq!(world.state.hub.head(), from + n as i64);
        let ids = next_ids(&mut sub, n).await;
        // Every message in the room is ann's to see: the ids run on without a hole.
        let expected: Vec<i64> = (from + 1..=from + n as i64).collect();
        assert_eq!(ids, expected);
        assert!(sub.try_next().expect("open").is_none(), "nothing twice");
        assert_eq!(sub.cursor(), world.state.hub.head());
        // And it is live again afterwards.
        send(&world, &ann, &room, 3).await;
        assert_eq!(
            next_ids(&mut sub, 3).await,
            (from + n as i64 + 1..=from + n as i64 + 3).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_cursor_replays_the_log_then_follows_the_hub_without_gap_or_duplicate() {
        let world = World::new(|_| {}).await;
        let ann = world.user("ann").await;
        let room = chat::create_room(&world.state, &ann, "r", false)
            .await
            .expect("a room");
        let from = world.state.hub.head();
        send(&world, &ann, &room, 30).await;
        let mut sub = open(&world, &ann, Some(from)).await;
        assert!(!sub.take_resync());
        assert_eq!(sub.cursor(), from, "nothing delivered yet");
        // More arrive while the replay is read: the hub brings them, the log the older ones.
        let (ids, ()) = tokio::join!(next_ids(&mut sub, 60), send(&world, &ann, &room, 30));
        assert_eq!(ids, (from + 1..=from + 60).collect::<Vec<_>>());
        assert!(sub.try_next().expect("open").is_none());
    }

    #[tokio::test]
    async fn events_of_rooms_one_is_not_in_stay_out() {
        let world = World::new(|_| {}).await;
        let (ann, bob) = (world.user("ann").await, world.user("bob").await);
        let anns = chat::create_room(&world.state, &ann, "a", false)
            .await
            .expect("a room");
        let bobs = chat::create_room(&world.state, &bob, "b", false)
            .await
            .expect("a room");
        let mut sub = open(&world, &ann, None).await;
        send(&world, &ann, &anns, 1).await;
        let hers = world.state.hub.head();
        send(&world, &bob, &bobs, 5).await;
        let ev = sub.next().await.expect("an event");
        assert_eq!(ev.room_id.as_deref(), Some(anns.id.as_str()));
        assert_eq!(ev.id, Some(hers));
        assert!(sub.try_next().expect("open").is_none(), "bob's stay out");
        // What ann was not shown still moves her cursor: a poll need not look at it again.
        assert_eq!(sub.cursor(), world.state.hub.head());
    }

    #[tokio::test]
    async fn a_cursor_the_log_cannot_honour_gets_a_resync_from_the_head() {
        let world = World::new(|_| {}).await;
        let ann = world.user("ann").await;
        let room = chat::create_room(&world.state, &ann, "r", false)
            .await
            .expect("a room");
        send(&world, &ann, &room, 3).await;
        let head = world.state.hub.head();
        let mut sub = open(&world, &ann, Some(head + 100)).await;
        assert!(sub.take_resync());
        assert!(!sub.take_resync(), "told once");
        assert_eq!(sub.cursor(), head);
        // Below the floor (the log was pruned past it): the same.
        world.state.hub.raise_floor(head);
        let mut sub = open(&world, &ann, Some(head - 2)).await;
        assert!(sub.take_resync());
        assert_eq!(sub.cursor(), head);
        assert!(sub.try_next().expect("open").is_none());
    }
}
