//! Meters per (transport, feed), cheap enough for the delivery path: atomics only, no lock per
//! event. Delivery latency (hub publication to socket write) goes into a histogram of fixed
//! buckets, kept both since start (for Prometheus) and in six 10-second slots (for the last
//! minute's p50/p95/p99/max).

use crate::hub::event::LiveEvent;
use protocol::{Feed, FeedSet, Transport};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Bucket upper bounds in microseconds: 0.1 ms to 10 s, dense where WebSocket and SSE land
/// (sub-millisecond to tens of ms) and wide enough for polling (up to its interval).
pub const BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];
const NB: usize = BUCKETS_US.len() + 1;
/// The latency window: `SLOTS` slots of `SLOT_SECS` seconds (one minute).
const SLOT_SECS: u64 = 10;
const SLOTS: usize = 6;

const FEEDS: [Feed; 4] = Feed::ALL;

fn bucket(us: u64) -> usize {
    BUCKETS_US
        .iter()
        .position(|b| us <= *b)
        .unwrap_or(BUCKETS_US.len())
}

#[derive(Default)]
struct Slot {
    epoch: AtomicU64,
    counts: [AtomicU64; NB],
    max_us: AtomicU64,
}

#[derive(Default)]
struct Histogram {
    slots: [Slot; SLOTS],
    total: [AtomicU64; NB],
    sum_us: AtomicU64,
}

impl Histogram {
    fn record(&self, us: u64, epoch: u64) {
        let b = bucket(us);
        self.total[b].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        let slot = &self.slots[(epoch as usize) % SLOTS];
        let seen = slot.epoch.load(Relaxed);
        if seen != epoch
            && slot
                .epoch
                .compare_exchange(seen, epoch, Relaxed, Relaxed)
                .is_ok()
        {
            // A new 10 s slot: forget what it held a minute ago. Racing recorders may lose a
            // count here; the window is a readout, the totals stay exact.
            for c in &slot.counts {
                c.store(0, Relaxed);
            }
            slot.max_us.store(0, Relaxed);
        }
        slot.counts[b].fetch_add(1, Relaxed);
        slot.max_us.fetch_max(us, Relaxed);
    }

    /// (count, p50, p95, p99, max) in ms over the last minute, of these histograms together
    /// (one per shard). Percentiles are bucket upper bounds (the max is exact).
    fn window<'a>(
        hists: impl Iterator<Item = &'a Histogram>,
        epoch: u64,
    ) -> (u64, f64, f64, f64, f64) {
        let mut counts = [0u64; NB];
        let mut max = 0;
        for h in hists {
            for slot in &h.slots {
                let e = slot.epoch.load(Relaxed);
                if e + (SLOTS as u64) > epoch && e <= epoch {
                    for (i, c) in slot.counts.iter().enumerate() {
                        counts[i] += c.load(Relaxed);
                    }
                    max = max.max(slot.max_us.load(Relaxed));
                }
            }
        }
        let n: u64 = counts.iter().sum();
        let pct = |q: f64| {
            if n == 0 {
                return 0.0;
            }
            let want = (q * n as f64).ceil() as u64;
            let mut acc = 0;
            for (i, c) in counts.iter().enumerate() {
                acc += c;
                if acc >= want {
                    let bound = BUCKETS_US.get(i).copied().unwrap_or(max);
                    return bound.min(max) as f64 / 1000.0;
                }
            }
            max as f64 / 1000.0
        };
        (n, pct(0.50), pct(0.95), pct(0.99), max as f64 / 1000.0)
    }
}

#[derive(Default)]
struct Cell {
    open: AtomicI64,
    requests: AtomicU64,
    empty: AtomicU64,
    delivered: AtomicU64,
    bytes: AtomicU64,
    reconnects: AtomicU64,
    /// Events sent that were committed before their connection (or poll loop) began: catch-up,
    /// not delivery, so they stay out of the latency histogram.
    replayed: AtomicU64,
    latency: Histogram,
    /// Commit-to-screen latency as browsers measured it (clock offset corrected) and reported.
    client_latency: Histogram,
    client_gaps: AtomicU64,
    client_duplicates: AtomicU64,
}

/// How old an event was when it went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Committed while its connection was open: µs from commit (hub publication) to write.
    Live(u64),
    /// Committed before the connection (or the poll loop) began: a catch-up from the log.
    Replayed,
    /// Not an event of the log or the hub (an ack, an error answer).
    None,
}

impl Age {
    /// `ev`'s age for the meters: live if committed at or after `live_since_ms` (when its
    /// connection or poll loop began), a catch-up from the log otherwise.
    pub fn of(ev: &LiveEvent, live_since_ms: i64) -> Age {
        if ev.ts >= live_since_ms {
            Age::Live(ev.age_us())
        } else {
            Age::Replayed
        }
    }
}

/// Every (transport, feed) cell once. Each thread counts into a shard of its own, so the two
/// cores never fight over a cache line on the delivery path (every delivery adds to several
/// counters and a histogram); readouts add the shards up.
#[repr(align(128))]
struct Shard {
    cells: Vec<Cell>,
}

/// Shards: at least the worker threads of a small machine. Threads beyond share them (still
/// correct, only contended again).
const SHARDS: usize = 8;

pub struct Meters {
    start: Instant,
    shards: Vec<Shard>,
    /// Per reporting user: each cell's delivered count at their last report, so a report's
    /// counts can be bounded by what was delivered since (see [`Meters::report_budget`]).
    reporters: std::sync::Mutex<std::collections::HashMap<String, [u64; 16]>>,
}

/// Most events a user's first report may account for (no earlier report to measure from).
pub const FIRST_REPORT_BUDGET: u64 = 1000;
/// Reporting users remembered at most; beyond it the memory starts again empty.
const REPORTERS_MAX: usize = 100_000;

impl Default for Meters {
    fn default() -> Self {
        Meters {
            start: Instant::now(),
            shards: (0..SHARDS)
                .map(|_| Shard {
                    cells: (0..16).map(|_| Cell::default()).collect(),
                })
                .collect(),
            reporters: Default::default(),
        }
    }
}

/// This thread's shard number, given out in turn as threads first count something.
fn shard_index() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

fn t_index(t: Transport) -> usize {
    Transport::ALL.iter().position(|x| *x == t).unwrap_or(0)
}

/// Bytes a header block takes on the wire (HTTP/1.1): `name: value\r\n` each, plus the blank
/// line. The status or request line is added by the caller.
pub fn header_bytes(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64)
        .sum::<u64>()
        + 2
}

/// Bytes of a server-to-client WebSocket frame header for a payload of `len` bytes.
pub fn ws_frame_overhead(len: usize) -> u64 {
    match len {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    }
}

impl Meters {
    /// This thread's cell for (t, f): where counting goes.
    fn cell(&self, t: Transport, f: Feed) -> &Cell {
        &self.shards[shard_index()].cells[t_index(t) * 4 + f as usize]
    }

    /// Every shard's cell for (t, f): what a readout adds up.
    fn cells(&self, t: Transport, f: Feed) -> impl Iterator<Item = &Cell> + Clone {
        let i = t_index(t) * 4 + f as usize;
        self.shards.iter().map(move |s| &s.cells[i])
    }

    /// The sum of one counter over the shards.
    fn sum(&self, t: Transport, f: Feed, get: impl Fn(&Cell) -> i64) -> i64 {
        self.cells(t, f).map(get).sum()
    }

    fn epoch(&self) -> u64 {
        self.start.elapsed().as_secs() / SLOT_SECS
    }

    /// A WebSocket or SSE connection opened (`reconnect`: after losing one).
    pub fn opened(&self, t: Transport, feeds: FeedSet, reconnect: bool) {
        for f in feeds.iter() {
            let c = self.cell(t, f);
            c.open.fetch_add(1, Relaxed);
            c.requests.fetch_add(1, Relaxed);
            if reconnect {
                c.reconnects.fetch_add(1, Relaxed);
            }
        }
    }

    /// A poll loop came back after a failed poll.
    pub fn reconnected(&self, t: Transport, feeds: FeedSet) {
        for f in feeds.iter() {
            self.cell(t, f).reconnects.fetch_add(1, Relaxed);
        }
    }

    pub fn closed(&self, t: Transport, feeds: FeedSet) {
        for f in feeds.iter() {
            self.cell(t, f).open.fetch_sub(1, Relaxed);
        }
    }

    /// A poll answered; `empty` when it carried no event.
    pub fn polled(&self, t: Transport, feeds: FeedSet, empty: bool) {
        for f in feeds.iter() {
            let c = self.cell(t, f);
            c.requests.fetch_add(1, Relaxed);
            if empty {
                c.empty.fetch_add(1, Relaxed);
            }
        }
    }

    /// Bytes that belong to no single event (headers, heartbeats, envelopes), shared out
    /// evenly across the connection's feeds.
    pub fn overhead(&self, t: Transport, feeds: FeedSet, bytes: u64) {
        let n = feeds.iter().count().max(1) as u64;
        for f in feeds.iter() {
            self.cell(t, f).bytes.fetch_add(bytes / n, Relaxed);
        }
    }

    /// An event written to a client: its bytes (framing included) and its age since commit
    /// (None for answers that are not events of the log or the hub, such as acks).
    pub fn delivered(&self, t: Transport, feed: Feed, bytes: u64, age: Age) {
        let c = self.cell(t, feed);
        c.delivered.fetch_add(1, Relaxed);
        c.bytes.fetch_add(bytes, Relaxed);
        match age {
            Age::Live(us) => c.latency.record(us, self.epoch()),
            Age::Replayed => {
                c.replayed.fetch_add(1, Relaxed);
            }
            Age::None => {}
        }
    }

    /// How many events `user`'s report for (t, f) may account for: no more than this server
    /// delivered on that transport and feed (to anyone) since their previous report, and at
    /// most [`FIRST_REPORT_BUDGET`] for a first report. One user's report can then never move
    /// the admin console's figures by more than what the server really sent.
    pub fn report_budget(&self, user: &str, t: Transport, f: Feed) -> u64 {
        let i = t_index(t) * 4 + f as usize;
        let now = self.sum(t, f, |c| c.delivered.load(Relaxed) as i64).max(0) as u64;
        let mut map = self.reporters.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= REPORTERS_MAX && !map.contains_key(user) {
            map.clear();
        }
        let seen = map.entry(user.to_string()).or_insert_with(|| {
            let mut first = [u64::MAX; 16];
            first[i] = now.saturating_sub(FIRST_REPORT_BUDGET);
            first
        });
        if seen[i] == u64::MAX {
            seen[i] = now.saturating_sub(FIRST_REPORT_BUDGET);
        }
        let budget = now.saturating_sub(seen[i]);
        seen[i] = now;
        budget
    }

    /// A browser's report for one (transport, feed): commit-to-screen latencies (ms) and the
    /// gaps and duplicates it noticed since its last report.
    pub fn client_report(
        &self,
        t: Transport,
        feed: Feed,
        latency_ms: &[f64],
        gaps: u64,
        duplicates: u64,
    ) {
        let c = self.cell(t, feed);
        let epoch = self.epoch();
        for ms in latency_ms {
            c.client_latency
                .record((ms.max(0.0) * 1000.0) as u64, epoch);
        }
        c.client_gaps.fetch_add(gaps, Relaxed);
        c.client_duplicates.fetch_add(duplicates, Relaxed);
    }

    /// The JSON snapshot of `GET /api/admin/metrics`.
    pub fn snapshot(&self) -> serde_json::Value {
        let epoch = self.epoch();
        let mut transports = serde_json::Map::new();
        for t in Transport::ALL {
            let mut feeds = serde_json::Map::new();
            let mut total = (0i64, 0u64, 0u64, 0u64, 0u64, 0u64);
            for f in FEEDS {
                let u = |get: fn(&Cell) -> &AtomicU64| {
                    self.sum(t, f, |c| get(c).load(Relaxed) as i64) as u64
                };
                let (open, requests, empty, delivered, bytes, reconnects) = (
                    self.sum(t, f, |c| c.open.load(Relaxed)),
                    u(|c| &c.requests),
                    u(|c| &c.empty),
                    u(|c| &c.delivered),
                    u(|c| &c.bytes),
                    u(|c| &c.reconnects),
                );
                total.0 += open;
                total.1 += requests;
                total.2 += empty;
                total.3 += delivered;
                total.4 += bytes;
                total.5 += reconnects;
                let (n, p50, p95, p99, max) =
                    Histogram::window(self.cells(t, f).map(|c| &c.latency), epoch);
                let (cn, c50, c95, c99, cmax) =
                    Histogram::window(self.cells(t, f).map(|c| &c.client_latency), epoch);
                feeds.insert(
                    f.as_str().into(),
                    serde_json::json!({
                        "open": open,
                        "requests": requests,
                        "empty": empty,
                        "delivered": delivered,
                        "bytes": bytes,
                        "bytes_per_event": if delivered > 0 { bytes as f64 / delivered as f64 } else { 0.0 },
                        "reconnects": reconnects,
                        "replayed": u(|c| &c.replayed),
                        "latency_ms": {"count": n, "p50": p50, "p95": p95, "p99": p99, "max": max},
                        "client_latency_ms": {"count": cn, "p50": c50, "p95": c95, "p99": c99, "max": cmax},
                        "client_gaps": u(|c| &c.client_gaps),
                        "client_duplicates": u(|c| &c.client_duplicates),
                    }),
                );
            }
            transports.insert(
                t.as_str().into(),
                serde_json::json!({
                    "open": total.0, "requests": total.1, "empty": total.2, "delivered": total.3,
                    "bytes": total.4, "reconnects": total.5, "feeds": feeds,
                }),
            );
        }
        serde_json::json!({
            "uptime_s": self.start.elapsed().as_secs(),
            "window_s": SLOT_SECS * SLOTS as u64,
            "transports": transports,
        })
    }

    /// Prometheus text exposition (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        type Reading = fn(&Cell) -> i64;
        let counters: [(&str, &str, Reading); 9] = [
            ("switchboard_open_connections", "gauge", |c| {
                c.open.load(Relaxed)
            }),
            ("switchboard_requests_total", "counter", |c| {
                c.requests.load(Relaxed) as i64
            }),
            ("switchboard_empty_responses_total", "counter", |c| {
                c.empty.load(Relaxed) as i64
            }),
            ("switchboard_events_delivered_total", "counter", |c| {
                c.delivered.load(Relaxed) as i64
            }),
            ("switchboard_bytes_sent_total", "counter", |c| {
                c.bytes.load(Relaxed) as i64
            }),
            ("switchboard_reconnects_total", "counter", |c| {
                c.reconnects.load(Relaxed) as i64
            }),
            ("switchboard_events_replayed_total", "counter", |c| {
                c.replayed.load(Relaxed) as i64
            }),
            ("switchboard_client_gaps_total", "counter", |c| {
                c.client_gaps.load(Relaxed) as i64
            }),
            ("switchboard_client_duplicates_total", "counter", |c| {
                c.client_duplicates.load(Relaxed) as i64
            }),
        ];
        for (name, kind, get) in counters {
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for t in Transport::ALL {
                for f in FEEDS {
                    let _ = writeln!(
                        out,
                        "{name}{{transport=\"{t}\",feed=\"{f}\"}} {}",
                        self.sum(t, f, get)
                    );
                }
            }
        }
        type Pick = fn(&Cell) -> &Histogram;
        let histograms: [(&str, Pick); 2] = [
            ("switchboard_delivery_latency_seconds", |c| &c.latency),
            ("switchboard_client_latency_seconds", |c| &c.client_latency),
        ];
        for (name, pick) in histograms {
            let _ = writeln!(out, "# TYPE {name} histogram");
            for t in Transport::ALL {
                for f in FEEDS {
                    let hists = self.cells(t, f).map(pick);
                    let bucket_total =
                        |i: usize| -> u64 { hists.clone().map(|h| h.total[i].load(Relaxed)).sum() };
                    let mut acc = 0;
                    for (i, bound) in BUCKETS_US.iter().enumerate() {
                        acc += bucket_total(i);
                        let le = *bound as f64 / 1e6;
                        let _ = writeln!(
                            out,
                            "{name}_bucket{{transport=\"{t}\",feed=\"{f}\",le=\"{le}\"}} {acc}"
                        );
                    }
                    acc += bucket_total(NB - 1);
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{transport=\"{t}\",feed=\"{f}\",le=\"+Inf\"}} {acc}"
                    );
                    let sum = hists.map(|h| h.sum_us.load(Relaxed)).sum::<u64>() as f64 / 1e6;
                    let _ = writeln!(out, "{name}_sum{{transport=\"{t}\",feed=\"{f}\"}} {sum}");
                    let _ = writeln!(out, "{name}_count{{transport=\"{t}\",feed=\"{f}\"}} {acc}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_window_percentiles() {
        assert_eq!(bucket(50), 0);
        assert_eq!(bucket(100), 0);
        assert_eq!(bucket(101), 1);
        assert_eq!(bucket(20_000_000), BUCKETS_US.len());
        let h = Histogram::default();
        for _ in 0..98 {
            h.record(300, 0);
        }
        h.record(40_000, 0);
        h.record(900_000, 0);
        let (n, p50, p95, p99, max) = Histogram::window(std::iter::once(&h), 0);
        assert_eq!(n, 100);
        assert_eq!(p50, 0.5);
        assert_eq!(p95, 0.5);
        assert_eq!(p99, 50.0);
        assert_eq!(max, 900.0);
        // A minute later the slot is forgotten.
        assert_eq!(
            Histogram::window(std::iter::once(&h), SLOTS as u64 + 1).0,
            0
        );
    }

    #[test]
    fn counts_from_many_threads_add_up_across_shards() {
        let m = std::sync::Arc::new(Meters::default());
        let threads: Vec<_> = (0..SHARDS + 3)
            .map(|i| {
                let m = std::sync::Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        m.delivered(Transport::Websocket, Feed::Chat, 10, Age::Live(300));
                    }
                    // Opened on one thread, closed on another: the gauge still adds up.
                    let feeds = FeedSet::parse(Some("chat")).unwrap();
                    if i % 2 == 0 {
                        m.opened(Transport::Websocket, feeds, false);
                    } else {
                        m.closed(Transport::Websocket, feeds);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = (SHARDS + 3) as u64;
        let s = m.snapshot();
        let chat = &s["transports"]["websocket"]["feeds"]["chat"];
        assert_eq!(chat["delivered"], 100 * n);
        assert_eq!(chat["bytes"], 1000 * n);
        assert_eq!(chat["latency_ms"]["count"], 100 * n);
        assert_eq!(chat["open"], (n as i64 + 1) / 2 - (n as i64) / 2);
        assert!(m.prometheus().contains(&format!(
            "switchboard_delivery_latency_seconds_count{{transport=\"websocket\",feed=\"chat\"}} {}",
            100 * n
        )));
    }

    #[test]
    fn counters_land_per_transport_and_feed() {
        let m = Meters::default();
        let feeds = FeedSet::parse(Some("chat")).unwrap();
        m.opened(Transport::Sse, feeds, true);
        m.delivered(Transport::Sse, Feed::Chat, 120, Age::Replayed);
        m.client_report(Transport::Sse, Feed::Chat, &[3.0, 4.5], 1, 0);
        m.polled(Transport::ShortPoll, feeds, true);
        let s = m.snapshot();
        assert_eq!(s["transports"]["sse"]["feeds"]["chat"]["open"], 1);
        assert_eq!(s["transports"]["sse"]["feeds"]["control"]["open"], 1);
        assert_eq!(s["transports"]["sse"]["feeds"]["chat"]["reconnects"], 1);
        assert_eq!(
            s["transports"]["sse"]["feeds"]["chat"]["bytes_per_event"],
            120.0
        );
        assert_eq!(s["transports"]["short_poll"]["feeds"]["chat"]["empty"], 1);
        assert_eq!(s["transports"]["sse"]["feeds"]["chat"]["replayed"], 1);
        assert_eq!(
            s["transports"]["sse"]["feeds"]["chat"]["latency_ms"]["count"],
            0
        );
        let client = &s["transports"]["sse"]["feeds"]["chat"]["client_latency_ms"];
        assert_eq!(client["count"], 2);
        assert_eq!(client["max"], 4.5);
        assert_eq!(s["transports"]["sse"]["feeds"]["chat"]["client_gaps"], 1);
        let text = m.prometheus();
        assert!(
            text.contains("switchboard_events_delivered_total{transport=\"sse\",feed=\"chat\"} 1")
        );
        assert!(text.contains("le=\"+Inf\""));
        assert!(text.contains(
            "switchboard_client_latency_seconds_count{transport=\"sse\",feed=\"chat\"} 2"
        ));
    }
}
