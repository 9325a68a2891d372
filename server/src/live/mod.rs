//! The live transports: views over the one event log. Each takes a cursor in and sends events
//! after it out, through a [`Subscription`] that replays from the log and then follows the hub.

pub mod echo;
pub mod gate;
pub mod params;
pub mod poll;
pub mod sse;
pub mod subscription;
pub mod ws;

pub use subscription::Subscription;

use crate::hub::encode;
use crate::services::now_ms;
use crate::state::AppState;
use protocol::{close, kind, Feed, Transport};
use std::future::Future;
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
/// connection on the first poll. Made once per connection (and polled behind a
/// [`gate::Gate`] in the streaming loops), not once per event.
pub fn must_end(
    state: &AppState,
    mut signed_in: crate::sessions::SessionWatch,
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

/// The events a streaming connection opens with: `hello` (where it starts, how often it beats),
/// then `resync` if the cursor could not be honoured.
pub fn opening_events(
    sub: &mut Subscription,
    conn_id: &str,
    heartbeat: Duration,
    transport: Transport,
) -> Vec<String> {
    let hello = serde_json::json!({
        "conn_id": conn_id,
        "cursor": sub.cursor(),
        "heartbeat_ms": heartbeat.as_millis() as u64,
        "transport": transport.as_str(),
    });
    let mut out = vec![encode(
        None,
        Feed::Control,
        kind::HELLO,
        &hello.to_string(),
        now_ms(),
    )];
    if sub.take_resync() {
        let data = serde_json::json!({ "cursor": sub.cursor() });
        out.push(encode(
            None,
            Feed::Control,
            kind::RESYNC,
            &data.to_string(),
            now_ms(),
        ));
    }
    out
}
