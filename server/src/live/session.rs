//! Opening a live session, the same for every transport: the transport's switch, the user's
//! connection slot, the subscription (subscribe → replay → dedupe), the meters, presence, what
//! ends the session, its id and its opening events. The WebSocket, SSE and poll handlers each
//! call [`LiveSession::open`] and keep only their pumps: one opener, three pumps (centrifuge's
//! `NewClient(ctx, node, transport)`). There is no push-style transport trait: the SSE body is
//! pulled by hyper (see `sse.rs`), so the session is shared and the loops are not.

use super::gate::Gate;
use crate::clock::{new_id, now_ms};
use crate::error::ApiResult;
use crate::hub::subscription::Subscription;
use crate::hub::{encode_data, Hub};
use crate::metrics::Meters;
use crate::presence::Presence;
use crate::sessions::SessionWatch;
use crate::state::AppState;
use protocol::{close, EventData, Feed, FeedSet, Hello, Resync, Transport, User};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why a live connection has to end, whatever it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The server is shutting down: reconnect (to it after the restart, or another one).
    Shutdown,
    /// The connection's session was signed out.
    SignedOut,
    /// Its transport was switched off for everyone: use another.
    SwitchedOff,
}

impl Ending {
    /// The close code and reason the client is told.
    pub fn close(self, transport: Transport) -> (u16, &'static str) {
        match self {
            Ending::Shutdown => (close::GOING_AWAY, "server shutting down; reconnect"),
            Ending::SignedOut => (close::UNAUTHORIZED, "signed out; sign in again"),
            Ending::SwitchedOff => (
                close::TRANSPORT_DISABLED,
                match transport {
                    Transport::Websocket => "WebSocket was switched off; use another transport",
                    Transport::Sse => "SSE was switched off; use another transport",
                    Transport::LongPoll => "long polling was switched off; use another transport",
                    Transport::ShortPoll => "short polling was switched off; use another transport",
                },
            ),
        }
    }
}

/// Completes when a live connection on `transport` has to end: the server shuts down, the
/// session is signed out, or `transport` is switched off. The switches are watched from this
/// call on, so a switch-off after it is never missed and one already in force ends the
/// connection on the first poll. Made once per connection (and polled behind a [`Gate`] in the
/// pumps), not once per event.
pub fn must_end(
    state: &AppState,
    mut signed_in: SessionWatch,
    transport: Transport,
) -> impl Future<Output = Ending> + Send + 'static {
    let shutdown = state.shutdown.clone();
    let mut switches = state.switches.subscribe();
    switches.mark_changed();
    async move {
        let switched_off = async {
            loop {
                // A closed channel (the server is going away) counts as switched off, as before.
                if switches.changed().await.is_err()
                    || !switches.borrow_and_update().enabled(transport)
                {
                    return;
                }
            }
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => Ending::Shutdown,
            _ = signed_in.revoked() => Ending::SignedOut,
            _ = switched_off => Ending::SwitchedOff,
        }
    }
}

/// [`must_end`] behind a gate, as a session holds it.
pub type EndingGate = Gate<dyn Future<Output = Ending> + Send>;

fn ending_gate(state: &AppState, signed_in: SessionWatch, transport: Transport) -> EndingGate {
    let ending: std::pin::Pin<Box<dyn Future<Output = Ending> + Send>> =
        Box::pin(must_end(state, signed_in, transport));
    Gate::pinned(ending)
}

/// The events a streaming connection opens with: `hello` (where it starts, how often it beats),
/// then `resync` if the cursor could not be honoured.
pub fn opening_events(
    sub: &mut Subscription,
    conn_id: &str,
    heartbeat: Duration,
    transport: Transport,
) -> Vec<String> {
    let hello = EventData::Hello(Hello {
        conn_id: conn_id.to_string(),
        cursor: sub.cursor(),
        heartbeat_ms: heartbeat.as_millis() as u64,
        transport,
    });
    let mut out = vec![encode_data(None, Feed::Control, &hello, now_ms())];
    out.extend(resync(sub));
    out
}

/// The `resync` control event, if the cursor could not be honoured (taking the notice).
fn resync(sub: &mut Subscription) -> Option<String> {
    sub.take_resync().then(|| {
        let resync = EventData::Resync(Resync {
            cursor: sub.cursor(),
        });
        encode_data(None, Feed::Control, &resync, now_ms())
    })
}

/// How a session is carried, which decides what its opening counts and says.
pub enum Carrier {
    /// A WebSocket or an SSE stream: counted open by the meters while it lives (with its
    /// handshake's bytes; `reconnect` after losing one), its user present while it lives, and
    /// told `hello` first (which names `heartbeat`).
    Stream {
        reconnect: bool,
        handshake_bytes: u64,
        heartbeat: Duration,
    },
    /// One poll: its user counts as present for a while after it; the meters count it when it
    /// is answered. Events committed from `live_since_ms` on count as live.
    Poll { live_since_ms: i64 },
}

/// One live session: what a pump sends from, and what it holds while it runs.
pub struct LiveSession {
    pub transport: Transport,
    pub sub: Subscription,
    /// A stream's id (its `hello` names it; log lines carry it). Empty for a poll.
    pub conn_id: String,
    /// Events committed from here on are live; earlier ones are a catch-up (for the meters).
    pub live_since_ms: i64,
    /// The control events that go out first: a stream's `hello`, and `resync` when the cursor
    /// could not be honoured.
    pub opening: Vec<String>,
    /// Completes when the session has to end (see [`must_end`]).
    pub ending: EndingGate,
    _metered: Option<Metered>,
    _online: Option<Online>,
}

impl LiveSession {
    /// Opens `me`'s session on `transport` for `feeds` from `cursor`: 503 `transport_disabled`
    /// when it is switched off, 429 when the user has no connection slot left. The subscription
    /// is taken here, before the caller answers (or upgrades), so events committed meanwhile
    /// are kept.
    pub async fn open(
        state: &AppState,
        me: &User,
        signed_in: SessionWatch,
        transport: Transport,
        feeds: FeedSet,
        cursor: Option<i64>,
        carrier: Carrier,
    ) -> ApiResult<LiveSession> {
        state.require_transport(transport)?;
        if let Carrier::Poll { .. } = carrier {
            state.presence.polled(&state.hub, &me.id, &me.username);
        }
        let slot = state.limits.user(&me.id)?;
        let mut sub =
            Subscription::open(&state.hub, state.store.clone(), &me.id, feeds, cursor).await?;
        sub.hold(slot);
        match carrier {
            Carrier::Poll { live_since_ms } => Ok(LiveSession {
                transport,
                conn_id: String::new(),
                live_since_ms,
                opening: resync(&mut sub).into_iter().collect(),
                sub,
                ending: ending_gate(state, signed_in, transport),
                _metered: None,
                _online: None,
            }),
            Carrier::Stream {
                reconnect,
                handshake_bytes,
                heartbeat,
            } => {
                let live_since_ms = now_ms();
                let conn_id = new_id();
                let metered = Metered::new(
                    Arc::clone(&state.meters),
                    transport,
                    feeds,
                    reconnect,
                    handshake_bytes,
                );
                let online = Online::new(Arc::clone(&state.presence), Arc::clone(&state.hub), me);
                // Made before the hello: a switch-off from then on is never missed (and one
                // made meanwhile is seen on the first pass).
                let ending = ending_gate(state, signed_in, transport);
                let opening = opening_events(&mut sub, &conn_id, heartbeat, transport);
                Ok(LiveSession {
                    transport,
                    sub,
                    conn_id,
                    live_since_ms,
                    opening,
                    ending,
                    _metered: Some(metered),
                    _online: Some(online),
                })
            }
        }
    }

    /// The feeds this session carries.
    pub fn feeds(&self) -> FeedSet {
        self.sub.feeds()
    }
}

/// Counts a live connection open while it lives, with its handshake bytes.
pub struct Metered {
    meters: Arc<Meters>,
    transport: Transport,
    feeds: FeedSet,
}

impl Metered {
    pub fn new(
        meters: Arc<Meters>,
        transport: Transport,
        feeds: FeedSet,
        reconnect: bool,
        bytes: u64,
    ) -> Self {
        meters.opened(transport, feeds, reconnect);
        meters.overhead(transport, feeds, bytes);
        Metered {
            meters,
            transport,
            feeds,
        }
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.meters.closed(self.transport, self.feeds);
    }
}

/// Marks a connection for presence while it lives.
pub struct Online {
    presence: Arc<Presence>,
    hub: Arc<Hub>,
    user_id: String,
    username: String,
}

impl Online {
    pub fn new(presence: Arc<Presence>, hub: Arc<Hub>, user: &User) -> Online {
        presence.connected(&hub, &user.id, &user.username);
        Online {
            presence,
            hub,
            user_id: user.id.to_string(),
            username: user.username.clone(),
        }
    }
}

impl Drop for Online {
    fn drop(&mut self) {
        self.presence
            .disconnected(&self.hub, &self.user_id, &self.username);
    }
}
