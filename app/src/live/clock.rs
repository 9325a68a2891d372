//! The client's estimate of its clock offset to the server, NTP-style: a few `GET /api/time`
//! round trips, and the one with the smallest delay wins (its midpoint is the closest to when
//! the server read its clock). Offset = server time − that midpoint, so the server's "now" is
//! `local_now() + offset()`. Commit times in events are the server's, so commit-to-screen
//! latency = `server_now() - event.ts`, whatever the two clocks say.

use crate::api;
use leptos::prelude::*;
use protocol::ServerTime;
use std::cell::Cell;

/// Round trips per estimate.
const SAMPLES: usize = 5;
/// How often the estimate is refreshed (clocks drift; a laptop wakes from sleep).
pub const RESYNC_MS: u64 = 5 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockReading {
    /// Server minus local, ms.
    pub offset_ms: f64,
    /// The round trip the estimate came from: the offset is good to within half of it.
    pub rtt_ms: f64,
}

thread_local! {
    static OFFSET: Cell<f64> = const { Cell::new(0.0) };
}

/// Local wall time in ms with sub-millisecond resolution.
pub fn local_now() -> f64 {
    match window().performance() {
        Some(p) => p.time_origin() + p.now(),
        None => js_sys::Date::now(),
    }
}

pub fn offset() -> f64 {
    OFFSET.with(|o| o.get())
}

/// The server's clock, as well as this tab can tell.
pub fn server_now() -> f64 {
    local_now() + offset()
}

/// Measures the offset now; `None` if no round trip succeeded.
pub async fn sync() -> Option<ClockReading> {
    let mut best: Option<ClockReading> = None;
    for _ in 0..SAMPLES {
        let t0 = local_now();
        let Ok(answer) = api::get::<ServerTime>("/api/time").await else {
            continue;
        };
        let t1 = local_now();
        let rtt = t1 - t0;
        if best.is_none_or(|b| rtt < b.rtt_ms) {
            best = Some(ClockReading {
                offset_ms: answer.now_ms - (t0 + t1) / 2.0,
                rtt_ms: rtt,
            });
        }
    }
    if let Some(b) = best {
        OFFSET.with(|o| o.set(b.offset_ms));
    }
    best
}
