//! The live transports: views over the one event log. Each takes a cursor in and sends events
//! after it out, through a [`Subscription`] that replays from the log and then follows the hub.

pub mod echo;
pub mod params;
pub mod poll;
pub mod sse;
pub mod subscription;
pub mod ws;

pub use subscription::Subscription;

use crate::hub::encode;
use crate::services::now_ms;
use protocol::{kind, Feed, Transport};
use std::time::Duration;

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
