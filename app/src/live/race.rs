//! Race lanes: one feed subscribed over all four transports at once, in one tab, each lane its
//! own connection (the same clients the manager uses, behind the same interface), so a person
//! can watch WebSocket and SSE arrive together, long polling a round trip later, and short
//! polling in steps. A lane never falls back: it is its transport, or it says it is off.

use super::{
    clock, live_latency, next_conn_id, open_conn, pending, percentile, Conn, ConnSpec, ConnState,
    Report, Sink,
};
use leptos::prelude::*;
use protocol::{EventData, Feed, Transport, TransportSettings, TypedEvent};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Arrivals kept per lane.
pub const KEEP: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub id: i64,
    /// Local time of arrival (ms).
    pub at: f64,
    /// Commit-to-screen latency (None for a catch-up event).
    pub latency_ms: Option<f64>,
    /// A short description (message text or job progress).
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LaneStats {
    pub transport: Transport,
    pub state: ConnState,
    pub arrivals: Vec<Arrival>,
    pub requests: u64,
    pub bytes: u64,
    pub empty: u64,
    pub reconnects: u64,
    pub duplicates: u64,
}

impl LaneStats {
    fn new(transport: Transport) -> Self {
        LaneStats {
            transport,
            state: ConnState::Connecting,
            arrivals: Vec::new(),
            requests: 0,
            bytes: 0,
            empty: 0,
            reconnects: 0,
            duplicates: 0,
        }
    }

    fn latencies(&self) -> Vec<f64> {
        self.arrivals.iter().filter_map(|a| a.latency_ms).collect()
    }

    pub fn latency(&self, q: f64) -> Option<f64> {
        percentile(&self.latencies(), q)
    }

    pub fn bytes_per_event(&self) -> Option<f64> {
        (!self.arrivals.is_empty()).then(|| self.bytes as f64 / self.arrivals.len() as f64)
    }
}

/// The lanes' signals, in `Transport::ALL` order.
#[derive(Clone, Copy)]
pub struct RaceUi {
    pub lanes: RwSignal<Vec<LaneStats>>,
}

impl RaceUi {
    pub fn new() -> Self {
        RaceUi {
            lanes: RwSignal::new(Transport::ALL.into_iter().map(LaneStats::new).collect()),
        }
    }

    fn update(&self, idx: usize, f: impl FnOnce(&mut LaneStats)) {
        let _ = self.lanes.try_update(|l| {
            if let Some(lane) = l.get_mut(idx) {
                f(lane)
            }
        });
    }
}

impl Default for RaceUi {
    fn default() -> Self {
        Self::new()
    }
}

struct Lane {
    idx: usize,
    transport: Transport,
    feed: Feed,
    ui: RaceUi,
    conn: RefCell<Option<Rc<dyn Conn>>>,
    last_id: Cell<Option<i64>>,
    created_at: f64,
    opened_before: Cell<bool>,
}

impl Sink for Lane {
    fn report(self: Rc<Self>, _conn_id: u32, r: Report) {
        match r {
            Report::Open { cursor } => {
                if self.last_id.get().is_none() {
                    self.last_id.set(cursor);
                }
                let again = self.opened_before.replace(true);
                self.ui.update(self.idx, |l| {
                    l.state = ConnState::Connected;
                    l.reconnects += again as u64;
                });
            }
            Report::Event(ev, bytes) => {
                if ev.feed != self.feed {
                    return;
                }
                self.ui.update(self.idx, |l| l.bytes += bytes);
                let Some(id) = ev.id else { return };
                if self.last_id.get().is_some_and(|last| id <= last) {
                    self.ui.update(self.idx, |l| l.duplicates += 1);
                    return;
                }
                self.last_id.set(Some(id));
                let latency = live_latency(&ev, self.created_at);
                if let Some(ms) = latency {
                    pending(self.transport, self.feed, |r| r.latency_ms.push(ms));
                }
                let arrival = Arrival {
                    id,
                    at: clock::local_now(),
                    latency_ms: latency,
                    label: label(&ev),
                };
                self.ui.update(self.idx, |l| {
                    if l.arrivals.len() >= KEEP {
                        l.arrivals.remove(0);
                    }
                    l.arrivals.push(arrival);
                });
            }
            Report::Wire {
                requests,
                bytes,
                empty,
            } => self.ui.update(self.idx, |l| {
                l.requests += requests;
                l.bytes += bytes;
                l.empty += empty as u64;
            }),
            Report::Cursor(c) => {
                if self.last_id.get().is_none_or(|l| l < c) {
                    self.last_id.set(Some(c));
                }
            }
            Report::Retrying {
                attempt,
                retry_in_ms,
            } => self.ui.update(self.idx, |l| {
                l.state = ConnState::Reconnecting {
                    attempt,
                    retry_in_ms,
                }
            }),
            Report::Disabled => {
                if let Some(c) = self.conn.borrow_mut().take() {
                    c.close();
                }
                self.ui.update(self.idx, |l| {
                    l.state = ConnState::Stopped("switched off by an administrator".into())
                });
            }
            Report::Unauthorized => {
                if let Some(c) = self.conn.borrow_mut().take() {
                    c.close();
                }
                self.ui.update(self.idx, |l| {
                    l.state = ConnState::Stopped("signed out".into())
                });
            }
        }
    }

    fn cursor_for(&self, _feeds: &[Feed]) -> Option<i64> {
        self.last_id.get()
    }
}

/// What a lane lists for an event.
fn label(ev: &TypedEvent) -> String {
    match &ev.data {
        EventData::Message(m) => m.body.chars().take(40).collect(),
        EventData::Job(j) => format!("{} {}/{}", j.state, j.done, j.total),
        other => other.kind().to_string(),
    }
}

/// Four lanes on `feed`; dropping it closes their connections.
pub struct Race {
    lanes: Vec<Rc<Lane>>,
}

impl Race {
    /// Opens a lane per transport on `feed`, from now on (no history), with the poll timing of
    /// `settings`.
    pub fn start(feed: Feed, settings: &TransportSettings, ui: RaceUi) -> Race {
        ui.lanes
            .set(Transport::ALL.into_iter().map(LaneStats::new).collect());
        let lanes: Vec<Rc<Lane>> = Transport::ALL
            .into_iter()
            .enumerate()
            .map(|(idx, transport)| {
                let lane = Rc::new(Lane {
                    idx,
                    transport,
                    feed,
                    ui,
                    conn: RefCell::new(None),
                    last_id: Cell::new(None),
                    created_at: clock::local_now(),
                    opened_before: Cell::new(false),
                });
                if !settings.enabled.enabled(transport) {
                    ui.update(idx, |l| {
                        l.state = ConnState::Stopped("switched off by an administrator".into())
                    });
                    return lane;
                }
                let sink: Rc<dyn Sink> = lane.clone();
                let conn = open_conn(ConnSpec {
                    id: next_conn_id(),
                    transport,
                    feeds: vec![feed],
                    short_poll_ms: settings.short_poll_ms,
                    long_poll_s: settings.long_poll_s,
                    sink: Rc::downgrade(&sink),
                });
                *lane.conn.borrow_mut() = Some(conn);
                lane
            })
            .collect();
        Race { lanes }
    }
}

impl Drop for Race {
    fn drop(&mut self) {
        for lane in &self.lanes {
            if let Some(c) = lane.conn.borrow_mut().take() {
                c.close();
            }
        }
    }
}
