//! Scale-out: several servers on one shared database, with a Redis pub/sub backplane between
//! them. Each server commits its own changes to the shared log (which gives every event its id)
//! and publishes them once on the backplane; every server hands what arrives to its hub, which
//! publishes events to its own connections in id order (see [`Hub::accept`]). Ephemeral events
//! (typing, presence) and sign-outs travel the same channel.
//!
//! The backplane is only the fast path. Event ids are gapless, so a server notices an id it has
//! not seen (a later one arrived first) and reads it from the log after a short grace; it also
//! reads the log's head now and then (often while Redis is down), so a publication lost with
//! Redis, or with a server that died between its commit and its publish, arrives anyway. Nothing
//! acknowledged depends on Redis.

use crate::hub::gaps::{gap_filler, GapStats};
use crate::hub::{Backplane, Hub, LiveEvent};
use crate::store::{Store, StoredEvent};
use futures_util::StreamExt;
use protocol::Feed;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Messages waiting for the publisher at most; beyond it they are dropped (and counted): a
/// dropped event is read from the log by the other servers, a dropped ephemeral is gone.
const QUEUE: usize = 8192;
/// Sign-outs kept for a later publish while Redis is unreachable, at most.
const SIGN_OUTS_KEPT: usize = 4096;
/// Reconnect backoff to Redis.
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// One message on the backplane channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Wire {
    /// Events one server committed in one transaction, with the commit time (Unix µs).
    Events {
        node: String,
        at_us: i64,
        events: Vec<StoredEvent>,
    },
    /// An ephemeral event (typing, presence), already encoded for the wire.
    Ephemeral {
        node: String,
        feed: String,
        room_id: Option<String>,
        user_id: Option<String>,
        ts: i64,
        json: String,
    },
    /// One sign-in ended: its live connections end wherever they are.
    SignOut {
        node: String,
        user_id: String,
        login_id: String,
    },
    /// Every sign-in of the user older than `generation` ended.
    SignOutEverywhere {
        node: String,
        user_id: String,
        generation: i64,
    },
    /// A user's record changed (admin flag): cached copies go.
    User { node: String, user_id: String },
    /// A server is alive, and holds these jobs (queued or running on it). Repeated every
    /// [`Cluster::heartbeat`].
    Node { node: String, jobs: Vec<String> },
    /// Cancel this job, wherever it runs.
    CancelJob { node: String, job_id: String },
    /// Presence on one server: its whole list (`full`, repeated now and then) or changes,
    /// as (user id, username, status).
    Presence {
        node: String,
        full: bool,
        users: Vec<(String, String, String)>,
    },
}

/// The backplane's counters, for the admin console and /metrics.
#[derive(Default)]
pub struct Counters {
    /// Subscribed to the channel now; the gap filler reads the log more often while not.
    pub connected: Arc<AtomicBool>,
    pub published: AtomicU64,
    pub publish_failed: AtomicU64,
    pub dropped: AtomicU64,
    pub received: AtomicU64,
    pub received_events: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub reconnects: AtomicU64,
    /// The gap filler's: gaps found and events read from the log to fill them.
    pub fill: Arc<GapStats>,
}

/// The sending side, held by the hub (as its [`Backplane`]), the sessions and the presence:
/// cheap to clone, never blocks.
#[derive(Clone)]
pub struct Relay {
    node: Arc<str>,
    tx: mpsc::Sender<String>,
    counters: Arc<Counters>,
}

impl Relay {
    pub fn node(&self) -> &str {
        &self.node
    }

    fn send(&self, wire: &Wire) {
        let Ok(text) = serde_json::to_string(wire) else {
            return;
        };
        if self.tx.try_send(text).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn signed_out(&self, user_id: &str, login_id: &str) {
        self.send(&Wire::SignOut {
            node: self.node.to_string(),
            user_id: user_id.to_string(),
            login_id: login_id.to_string(),
        });
    }

    pub fn signed_out_everywhere(&self, user_id: &str, generation: i64) {
        self.send(&Wire::SignOutEverywhere {
            node: self.node.to_string(),
            user_id: user_id.to_string(),
            generation,
        });
    }

    pub fn presence(&self, full: bool, users: &[(&str, &str, &str)]) {
        self.send(&Wire::Presence {
            node: self.node.to_string(),
            full,
            users: users
                .iter()
                .map(|(i, n, s)| (i.to_string(), n.to_string(), s.to_string()))
                .collect(),
        });
    }

    pub fn cancel_job(&self, job_id: &str) {
        self.send(&Wire::CancelJob {
            node: self.node.to_string(),
            job_id: job_id.to_string(),
        });
    }

    pub fn user_changed(&self, user_id: &str) {
        self.send(&Wire::User {
            node: self.node.to_string(),
            user_id: user_id.to_string(),
        });
    }
}

impl Backplane for Relay {
    /// Events this server just committed (one transaction's or one batch's).
    fn committed(&self, events: &[StoredEvent]) {
        self.send(&Wire::Events {
            node: self.node.to_string(),
            at_us: crate::clock::now_us(),
            events: events.to_vec(),
        });
    }

    fn ephemeral(&self, ev: &LiveEvent) {
        self.send(&Wire::Ephemeral {
            node: self.node.to_string(),
            feed: ev.feed.as_str().to_string(),
            room_id: ev.room_id.clone(),
            user_id: ev.user_id.clone(),
            ts: ev.ts,
            json: ev.json.as_str().to_string(),
        });
    }
}

/// What a message from another server does here.
pub trait Apply: Send + Sync + 'static {
    fn signed_out(&self, user_id: &str, login_id: &str);
    fn signed_out_everywhere(&self, user_id: &str, generation: i64);
    fn user_changed(&self, user_id: &str);
    fn presence(&self, node: &str, full: bool, users: Vec<(String, String, String)>);
    fn cancel_job(&self, job_id: &str);
    /// The subscription to the backplane came up (`true`) or was lost: what other servers told
    /// while it was down (sign-outs) never arrives.
    fn backplane(&self, up: bool);
    /// The jobs this server holds (queued or running here), for its heartbeat.
    fn held_jobs(&self) -> Vec<String>;
}

/// The other servers as their heartbeats tell: when each was last heard, and its jobs.
#[derive(Default)]
pub struct Nodes {
    nodes: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Vec<String>)>>,
    /// Since when the subscription has been up without a break (None while down).
    up_since: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Nodes {
    fn heard(&self, node: String, jobs: Vec<String>) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes.insert(node, (std::time::Instant::now(), jobs));
    }

    fn set_up(&self, up: bool) {
        let mut since = self.up_since.lock().unwrap_or_else(|p| p.into_inner());
        *since = up.then(std::time::Instant::now);
    }
}

/// This server's place in a cluster.
pub struct Cluster {
    pub node: Arc<str>,
    /// Where this server tells the others (sign-outs, presence, job cancels; the hub's events
    /// go through it too, as the hub's [`Backplane`]).
    pub relay: Relay,
    pub channel: String,
    pub counters: Arc<Counters>,
    pub nodes: Arc<Nodes>,
    /// A server not heard from for this long counts as gone (its jobs are orphans).
    pub node_ttl: Duration,
}

impl Cluster {
    /// Joins the cluster on `redis_url`: plugs the relay into the hub as its backplane and
    /// starts the publisher, the subscriber and the gap filler. They stop when `stop` is cancelled.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        redis_url: &str,
        channel: String,
        node: String,
        node_ttl: Duration,
        hub: Arc<Hub>,
        store: Arc<dyn Store>,
        apply: Arc<dyn Apply>,
        stop: CancellationToken,
    ) -> anyhow::Result<Cluster> {
        let client = redis::Client::open(redis_url)?;
        let node: Arc<str> = node.into();
        let counters = Arc::new(Counters::default());
        let nodes = Arc::new(Nodes::default());
        let (tx, rx) = mpsc::channel(QUEUE);
        let relay = Relay {
            node: Arc::clone(&node),
            tx,
            counters: Arc::clone(&counters),
        };
        hub.set_backplane(Arc::new(relay.clone()));
        tokio::spawn(heartbeat(
            relay.clone(),
            Arc::clone(&apply),
            node_ttl / 3,
            stop.clone(),
        ));
        tokio::spawn(publisher(
            client.clone(),
            channel.clone(),
            rx,
            Arc::clone(&counters),
            stop.clone(),
        ));
        tokio::spawn(subscriber(
            client,
            channel.clone(),
            Inbox {
                me: Arc::clone(&node),
                hub: Arc::clone(&hub),
                apply,
                counters: Arc::clone(&counters),
                nodes: Arc::clone(&nodes),
            },
            stop.clone(),
        ));
        tokio::spawn(gap_filler(
            hub,
            store,
            Arc::clone(&counters.fill),
            Some(Arc::clone(&counters.connected)),
            stop,
        ));
        Ok(Cluster {
            node,
            relay,
            channel,
            counters,
            nodes,
            node_ttl,
        })
    }

    /// Whether a job is held by a server alive now (this one excluded). None when this server
    /// cannot tell: its backplane has not been up for a whole [`Cluster::node_ttl`], so a
    /// silent server may only be unheard.
    pub fn job_held_elsewhere(&self, job_id: &str) -> Option<bool> {
        let up_since = *self
            .nodes
            .up_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if up_since.is_none_or(|t| t.elapsed() < self.node_ttl) {
            return None;
        }
        let nodes = self.nodes.nodes.lock().unwrap_or_else(|p| p.into_inner());
        Some(nodes.values().any(|(heard, jobs)| {
            heard.elapsed() < self.node_ttl && jobs.iter().any(|j| j == job_id)
        }))
    }

    /// The servers heard from within the TTL (this one excluded).
    pub fn live_nodes(&self) -> Vec<String> {
        let nodes = self.nodes.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let mut live: Vec<String> = nodes
            .iter()
            .filter(|(_, (heard, _))| heard.elapsed() < self.node_ttl)
            .map(|(n, _)| n.clone())
            .collect();
        live.sort();
        live
    }

    pub fn snapshot(&self) -> serde_json::Value {
        let c = &self.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "node": &*self.node,
            "channel": self.channel,
            "connected": c.connected.load(Ordering::Relaxed),
            "published": n(&c.published),
            "publish_failed": n(&c.publish_failed),
            "dropped": n(&c.dropped),
            "received": n(&c.received),
            "received_events": n(&c.received_events),
            "bytes_out": n(&c.bytes_out),
            "bytes_in": n(&c.bytes_in),
            "reconnects": n(&c.reconnects),
            "gaps": n(&c.fill.gaps),
            "filled_from_log": n(&c.fill.filled_from_log),
            "other_nodes": self.live_nodes(),
        })
    }
}

fn backoff(d: Duration) -> Duration {
    (d * 2).min(RECONNECT_MAX)
}

/// Publishes queued messages, several per round trip when they queue up. While Redis is
/// unreachable, messages are dropped (counted): the log is the way round. Sign-outs are kept and
/// published once Redis is back: another server whose subscription never broke (so it has no
/// reason to re-check its connections) would otherwise never hear of them.
async fn publisher(
    client: redis::Client,
    channel: String,
    mut rx: mpsc::Receiver<String>,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut retry_at = tokio::time::Instant::now();
    let mut wait = RECONNECT_MIN;
    let mut batch = Vec::new();
    let mut kept: Vec<String> = Vec::new();
    let keep = |kept: &mut Vec<String>, batch: &mut Vec<String>| {
        for msg in batch.drain(..) {
            if msg.starts_with(r#"{"t":"sign_out"#) && kept.len() < SIGN_OUTS_KEPT {
                kept.push(msg);
            }
        }
    };
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, 256) => n,
            _ = stop.cancelled() => return,
        };
        if n == 0 {
            return;
        }
        if conn.is_none() && tokio::time::Instant::now() >= retry_at {
            match client.get_multiplexed_async_connection().await {
                Ok(c) => {
                    conn = Some(c);
                    wait = RECONNECT_MIN;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "backplane: cannot connect to publish");
                    retry_at = tokio::time::Instant::now() + wait;
                    wait = backoff(wait);
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            counters
                .publish_failed
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            keep(&mut kept, &mut batch);
            continue;
        };
        if !kept.is_empty() {
            batch.splice(0..0, kept.drain(..));
        }
        let mut pipe = redis::pipe();
        let mut bytes = 0;
        for msg in &batch {
            bytes += msg.len() as u64;
            pipe.cmd("PUBLISH").arg(&channel).arg(msg).ignore();
        }
        match pipe.query_async::<()>(c).await {
            Ok(()) => {
                counters
                    .published
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                counters.bytes_out.fetch_add(bytes, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(error = %e, "backplane: publish failed");
                counters
                    .publish_failed
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                keep(&mut kept, &mut batch);
                conn = None;
                retry_at = tokio::time::Instant::now() + wait;
                wait = backoff(wait);
            }
        }
        batch.clear();
    }
}

/// Listens on the channel, reconnecting with backoff; hands events to the hub.
/// A connection subscribed to `channel`.
async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// Where what arrives on the backplane goes.
struct Inbox {
    me: Arc<str>,
    hub: Arc<Hub>,
    apply: Arc<dyn Apply>,
    counters: Arc<Counters>,
    nodes: Arc<Nodes>,
}

async fn subscriber(client: redis::Client, channel: String, inbox: Inbox, stop: CancellationToken) {
    let Inbox {
        hub,
        counters,
        nodes,
        ..
    } = &inbox;
    let mut wait = RECONNECT_MIN;
    let mut first = true;
    loop {
        let pubsub = tokio::select! {
            r = subscribe(&client, &channel) => r,
            _ = stop.cancelled() => return,
        };
        let mut pubsub = match pubsub {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "backplane: cannot subscribe");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => return,
                }
                wait = backoff(wait);
                continue;
            }
        };
        if !first {
            counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        wait = RECONNECT_MIN;
        counters.connected.store(true, Ordering::Relaxed);
        nodes.set_up(true);
        inbox.apply.backplane(true);
        tracing::info!(%channel, "backplane: subscribed");
        // Whatever was published while we were away is in the log: read it now.
        hub.wake_gap_filler();
        let mut messages = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                m = messages.next() => m,
                _ = stop.cancelled() => return,
            };
            let Some(msg) = msg else { break };
            let payload: &[u8] = msg.get_payload_bytes();
            counters.received.fetch_add(1, Ordering::Relaxed);
            counters
                .bytes_in
                .fetch_add(payload.len() as u64, Ordering::Relaxed);
            match serde_json::from_slice::<Wire>(payload) {
                Ok(wire) => handle(wire, &inbox),
                Err(e) => tracing::warn!(error = %e, "backplane: unreadable message"),
            }
        }
        counters.connected.store(false, Ordering::Relaxed);
        nodes.set_up(false);
        inbox.apply.backplane(false);
        tracing::warn!("backplane: connection lost; reading the log until it is back");
        hub.wake_gap_filler();
    }
}

fn handle(wire: Wire, inbox: &Inbox) {
    let Inbox {
        me,
        hub,
        apply,
        counters,
        nodes,
    } = inbox;
    let me: &str = me;
    match wire {
        // Our own events were published here at commit; the hub would drop them anyway.
        Wire::Events { node, .. }
        | Wire::Ephemeral { node, .. }
        | Wire::SignOut { node, .. }
        | Wire::SignOutEverywhere { node, .. }
        | Wire::User { node, .. }
        | Wire::Presence { node, .. }
        | Wire::Node { node, .. }
        | Wire::CancelJob { node, .. }
            if node == me => {}
        Wire::Node { node, jobs } => nodes.heard(node, jobs),
        Wire::CancelJob { job_id, .. } => apply.cancel_job(&job_id),
        Wire::Events { at_us, events, .. } => {
            counters
                .received_events
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            hub.accept(events.into_iter().map(|e| (e, Some(at_us))));
        }
        Wire::Ephemeral {
            feed,
            room_id,
            user_id,
            ts,
            json,
            ..
        } => {
            let Ok(feed) = Feed::from_str(&feed) else {
                return;
            };
            hub.publish_ephemeral_here(LiveEvent::ephemeral_encoded(
                feed, room_id, user_id, ts, json,
            ));
        }
        Wire::SignOut {
            user_id, login_id, ..
        } => apply.signed_out(&user_id, &login_id),
        Wire::SignOutEverywhere {
            user_id,
            generation,
            ..
        } => apply.signed_out_everywhere(&user_id, generation),
        Wire::User { user_id, .. } => apply.user_changed(&user_id),
        Wire::Presence {
            node, full, users, ..
        } => apply.presence(&node, full, users),
    }
}

/// Tells the other servers every `every` that this one is alive and which jobs it holds.
async fn heartbeat(relay: Relay, apply: Arc<dyn Apply>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        relay.send(&Wire::Node {
            node: relay.node.to_string(),
            jobs: apply.held_jobs(),
        });
    }
}

/// The node name a server goes by when none is given: host name and process id.
pub fn default_node() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::Wire;

    /// The publisher keeps sign-outs by their encoding's start: the tag comes first.
    #[test]
    fn sign_outs_are_recognised_by_their_encoding() {
        let one = Wire::SignOut {
            node: "a".into(),
            user_id: "u".into(),
            login_id: "l".into(),
        };
        let all = Wire::SignOutEverywhere {
            node: "a".into(),
            user_id: "u".into(),
            generation: 2,
        };
        let other = Wire::User {
            node: "a".into(),
            user_id: "u".into(),
        };
        for (wire, kept) in [(one, true), (all, true), (other, false)] {
            let text = serde_json::to_string(&wire).expect("json");
            assert_eq!(text.starts_with(r#"{"t":"sign_out"#), kept, "{text}");
        }
    }
}
