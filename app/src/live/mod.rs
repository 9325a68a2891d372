//! The browser's live feeds: one small client per transport (`ws`, `sse`, `poll`) behind one
//! interface, and a manager that assigns feeds to transports, keeps the last event id per feed,
//! and switches without gap or duplicate: it opens the new connection from the last id seen,
//! closes the old one once the new one is open, and drops any event at or below the last id of
//! its feed.
//!
//! A tab holds at most one connection per transport (a WebSocket and an SSE stream at most),
//! each carrying every feed assigned to it plus `control`.

pub mod clock;
mod poll;
pub mod race;
mod sse;
mod ws;

use crate::api;
use leptos::prelude::*;
use protocol::{
    ClientFrame, ClientReport, ClientStats, EventData, Feed, Transport, TransportChange,
    TransportSettings, TypedEvent, CHOOSABLE_FEEDS,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// First reconnect delay bound; doubles per failed attempt, at most [`FAST_RETRY_MAX_MS`] for
/// the first [`FAST_ATTEMPTS`] attempts (a short outage, a restart, ends within about a second
/// of the server answering), then on up to [`BACKOFF_MAX_MS`]. Full jitter (a random delay up to
/// the bound) spreads a crowd of clients after a server restart.
pub const BACKOFF_BASE_MS: f64 = 500.0;
pub const BACKOFF_MAX_MS: f64 = 30_000.0;
/// Attempts kept close together: about 12 s of retrying at the fast bound's mean.
pub const FAST_ATTEMPTS: u32 = 16;
pub const FAST_RETRY_MAX_MS: f64 = 1_500.0;
/// How long the check "does the server answer at all?" may take.
pub const PROBE_TIMEOUT_MS: u32 = 3_000;
/// A transport that was refused, or opened and died sooner than this, is avoided for a while.
pub const EARLY_DEATH_MS: f64 = 5_000.0;
/// How long a transport that failed that way is avoided before it is tried again.
pub const FALLBACK_FOR_MS: f64 = 60_000.0;
/// A switch closes the old connection when the new one opens, or after this at the latest.
pub const SWITCH_GRACE_MS: u64 = 10_000;

/// A random delay for reconnect attempt `attempt` (1, 2, …): full jitter under the bound.
pub fn backoff_ms(attempt: u32) -> u32 {
    let attempt = attempt.max(1);
    let bound = if attempt <= FAST_ATTEMPTS {
        (BACKOFF_BASE_MS * 2f64.powi(attempt.min(16) as i32 - 1)).min(FAST_RETRY_MAX_MS)
    } else {
        (FAST_RETRY_MAX_MS * 2f64.powi((attempt - FAST_ATTEMPTS).min(16) as i32))
            .min(BACKOFF_MAX_MS)
    };
    (js_sys::Math::random() * bound).max(100.0) as u32
}

/// Whether the server answers plain HTTP now (`GET /healthz`, within [`PROBE_TIMEOUT_MS`]):
/// tells "the server is away" from "this transport fails here".
pub(crate) async fn server_answers() -> bool {
    use wasm_bindgen_futures::JsFuture;
    let abort = web_sys::AbortController::new().ok();
    let init = web_sys::RequestInit::new();
    init.set_method("GET");
    if let Some(a) = &abort {
        init.set_signal(Some(&a.signal()));
        let a = a.clone();
        set_timeout(
            move || a.abort(),
            std::time::Duration::from_millis(PROBE_TIMEOUT_MS as u64),
        );
    }
    let url = format!("/healthz?t={}", now() as u64);
    match JsFuture::from(window().fetch_with_str_and_init(&url, &init)).await {
        Ok(r) => r.dyn_into::<web_sys::Response>().is_ok_and(|r| r.ok()),
        Err(_) => false,
    }
}

/// Counts a failed attempt, reports it, and runs `again` after the backoff delay (the caller's
/// `again` checks that it is still wanted then).
pub(crate) fn schedule_retry(
    spec: &ConnSpec,
    attempt: &Cell<u32>,
    waiting: &Cell<bool>,
    again: impl FnOnce() + 'static,
) {
    let n = attempt.get() + 1;
    attempt.set(n);
    let delay = backoff_ms(n);
    waiting.set(true);
    spec.report(Report::Retrying {
        attempt: n,
        retry_in_ms: delay,
    });
    set_timeout(again, std::time::Duration::from_millis(delay as u64));
}

/// One connection's state, as the UI shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnState {
    Connecting,
    Connected,
    Reconnecting {
        attempt: u32,
        retry_in_ms: u32,
    },
    Offline,
    /// Closed for good (signed out, or a close code that says not to come back).
    Stopped(String),
}

/// Latency samples kept per feed for the inspector's sparkline.
pub const SPARK_SAMPLES: usize = 40;

/// What one feed's readout (the transport inspector) shows. `received`, `gaps` and the
/// duplicate counts cover the feed's whole life (switching must not lose or repeat anything);
/// the rest describes the current transport and starts again when the feed moves.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedStats {
    /// The transport carrying the feed now.
    pub transport: Transport,
    /// The one it should use (the server's effective choice): another `transport` means a
    /// fallback for now, after the preferred one failed here.
    pub preferred: Transport,
    pub state: ConnState,
    pub last_id: Option<i64>,
    pub received: u64,
    pub reconnects: u64,
    /// Holes the app noticed (a room's message seq jumped).
    pub gaps: u64,
    /// Events that reached the view twice (should never happen).
    pub dup_shown: u64,
    /// Events at or below the feed's last id, dropped before the view (the overlap while a
    /// switch has two connections open, or a resume that starts a little early).
    pub duplicates: u64,
    /// When the current transport took this feed over (local ms).
    pub since: f64,
    /// HTTP requests (a poll, a WebSocket or SSE connection attempt) on the current transport.
    pub requests: u64,
    /// Bytes the browser could see: payloads and SSE/WebSocket framing, HTTP headers of poll
    /// answers (not the WebSocket/SSE handshake or SSE heartbeats, which the browser hides).
    pub bytes: u64,
    /// Poll answers that carried no event.
    pub empty: u64,
    /// Events on the current transport.
    pub events: u64,
    /// Commit-to-screen latency (ms) of the last live events, oldest first.
    pub latencies: Vec<f64>,
}

impl FeedStats {
    fn new(transport: Transport) -> Self {
        FeedStats {
            transport,
            preferred: transport,
            state: ConnState::Connecting,
            last_id: None,
            received: 0,
            reconnects: 0,
            gaps: 0,
            dup_shown: 0,
            duplicates: 0,
            since: clock::local_now(),
            requests: 0,
            bytes: 0,
            empty: 0,
            events: 0,
            latencies: Vec::new(),
        }
    }

    /// Starts the per-transport figures again (the feed moved to `t`).
    fn moved_to(&mut self, t: Transport) {
        let keep = (
            self.preferred,
            self.last_id,
            self.received,
            self.gaps,
            self.dup_shown,
            self.duplicates,
        );
        *self = FeedStats::new(t);
        (
            self.preferred,
            self.last_id,
            self.received,
            self.gaps,
            self.dup_shown,
            self.duplicates,
        ) = keep;
    }

    fn latency(&mut self, ms: f64) {
        if self.latencies.len() >= SPARK_SAMPLES {
            self.latencies.remove(0);
        }
        self.latencies.push(ms);
    }

    /// Requests per minute since the current transport took over.
    pub fn requests_per_min(&self) -> f64 {
        // Over at least a minute, so a fresh connection's one request reads "1/min", not 60.
        let mins = ((clock::local_now() - self.since) / 60_000.0).max(1.0);
        self.requests as f64 / mins
    }

    pub fn bytes_per_event(&self) -> Option<f64> {
        (self.events > 0).then(|| self.bytes as f64 / self.events as f64)
    }

    /// Share of poll answers that were empty (None on streams).
    pub fn empty_ratio(&self) -> Option<f64> {
        (matches!(self.transport, Transport::LongPoll | Transport::ShortPoll) && self.requests > 0)
            .then(|| self.empty as f64 / self.requests as f64)
    }

    /// The median of the recent latencies.
    pub fn latency_p50(&self) -> Option<f64> {
        percentile(&self.latencies, 0.5)
    }

    /// Gaps plus duplicates shown: the integrity badge, which should always read zero.
    pub fn integrity_faults(&self) -> u64 {
        self.gaps + self.dup_shown
    }
}

/// The `q` quantile of `samples` (nearest rank), None when empty.
pub fn percentile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// The signals the UI reads.
#[derive(Clone, Copy)]
pub struct LiveUi {
    pub stats: RwSignal<HashMap<Feed, FeedStats>>,
    pub settings: RwSignal<Option<TransportSettings>>,
    /// The latest clock offset estimate.
    pub clock: RwSignal<Option<clock::ClockReading>>,
}

impl LiveUi {
    pub fn new() -> Self {
        LiveUi {
            stats: RwSignal::new(HashMap::new()),
            settings: RwSignal::new(None),
            clock: RwSignal::new(None),
        }
    }

    /// The state of the connection carrying `feed`.
    pub fn feed(&self, feed: Feed) -> Option<FeedStats> {
        self.stats.with(|s| s.get(&feed).cloned())
    }

    /// Counts a gap the app noticed on `feed` (e.g. a room's message seq jumped).
    pub fn gap(&self, feed: Feed) {
        self.stats.update(|s| {
            if let Some(f) = s.get_mut(&feed) {
                f.gaps += 1;
                pending(f.transport, feed, |r| r.gaps += 1);
            }
        });
    }

    /// Counts an event the app saw twice on `feed` (a message already on screen arrived again).
    pub fn duplicate_shown(&self, feed: Feed) {
        self.stats.update(|s| {
            if let Some(f) = s.get_mut(&feed) {
                f.dup_shown += 1;
                pending(f.transport, feed, |r| r.duplicates += 1);
            }
        });
    }
}

impl Default for LiveUi {
    fn default() -> Self {
        Self::new()
    }
}

/// What the manager hands the app, in order.
// Moved once per event, never stored: boxing the event would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A connection carrying these feeds is open (the first, or a new one after a break).
    Opened(Vec<Feed>),
    /// A live event, once: anything at or below its feed's last id was dropped before.
    Event(TypedEvent),
}

/// What a connection tells the manager.
// Moved once per event, never stored: boxing the event would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Report {
    /// Open (WebSocket/SSE hello, or a first poll answer), starting at this cursor.
    Open {
        cursor: Option<i64>,
    },
    /// An event and the bytes it took (payload and framing, as far as the browser sees).
    Event(TypedEvent, u64),
    /// Traffic that is no single event's: a request made, bytes of headers and envelopes, and
    /// whether a poll answer was empty.
    Wire {
        requests: u64,
        bytes: u64,
        empty: bool,
    },
    /// A poll answer's cursor: everything on this connection's feeds up to it was looked at.
    Cursor(i64),
    Retrying {
        attempt: u32,
        retry_in_ms: u32,
    },
    /// The server switched this transport off.
    Disabled,
    /// The session is gone.
    Unauthorized,
}

/// The interface every transport client offers.
pub(crate) trait Conn {
    /// Sends a client frame if this transport carries them and is open.
    fn send(&self, _frame: &ClientFrame) -> bool {
        false
    }
    /// Retry now if waiting out a backoff (back online, tab visible again).
    fn kick(&self);
    fn close(&self);
}

/// Who receives a connection's reports and gives its resume cursor: the tab's manager, or a
/// race lane.
pub(crate) trait Sink {
    fn report(self: Rc<Self>, conn_id: u32, r: Report);
    /// The cursor a (re)connection for `feeds` starts from.
    fn cursor_for(&self, feeds: &[Feed]) -> Option<i64>;
}

/// What a connection is given: who it is, what it carries, where to report.
#[derive(Clone)]
pub(crate) struct ConnSpec {
    pub id: u32,
    pub transport: Transport,
    pub feeds: Vec<Feed>,
    pub short_poll_ms: u32,
    pub long_poll_s: u32,
    pub sink: Weak<dyn Sink>,
}

thread_local! {
    static NEXT_CONN_ID: Cell<u32> = const { Cell::new(1) };
}

/// A connection id unique in this tab (manager and race lanes alike).
pub(crate) fn next_conn_id() -> u32 {
    NEXT_CONN_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}

/// Opens the client for `spec.transport`.
pub(crate) fn open_conn(spec: ConnSpec) -> Rc<dyn Conn> {
    match spec.transport {
        Transport::Websocket => ws::WsConn::open(spec),
        Transport::Sse => sse::SseConn::open(spec),
        Transport::LongPoll | Transport::ShortPoll => poll::PollConn::open(spec),
    }
}

impl ConnSpec {
    pub fn report(&self, r: Report) {
        if let Some(sink) = self.sink.upgrade() {
            sink.report(self.id, r);
        }
    }

    pub fn cursor(&self) -> Option<i64> {
        self.sink.upgrade().and_then(|s| s.cursor_for(&self.feeds))
    }

    pub fn feeds_param(&self) -> String {
        self.feeds
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

thread_local! {
    /// Measurements not yet sent to the server, per (transport, feed).
    static PENDING: RefCell<HashMap<(Transport, Feed), ClientReport>> = RefCell::new(HashMap::new());
    static REPORTING: Cell<bool> = const { Cell::new(false) };
}

/// How often a tab sends its measurements (`POST /api/live/stats`).
pub const REPORT_EVERY_MS: u64 = 10_000;

pub(crate) fn pending(t: Transport, feed: Feed, f: impl FnOnce(&mut ClientReport)) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let r = p.entry((t, feed)).or_insert_with(|| ClientReport {
            transport: t,
            feed,
            latency_ms: Vec::new(),
            gaps: 0,
            duplicates: 0,
        });
        if r.latency_ms.len() < protocol::MAX_STATS_SAMPLES {
            f(r);
        } else {
            // Full until the next report: keep counting faults, drop further samples.
            let n = r.latency_ms.len();
            f(r);
            r.latency_ms.truncate(n);
        }
    });
}

/// Sends what was measured since the last report, every [`REPORT_EVERY_MS`]; started once.
pub(crate) fn start_reporting() {
    if REPORTING.with(|r| r.replace(true)) {
        return;
    }
    let tick = || {
        let reports: Vec<ClientReport> =
            PENDING.with(|p| p.borrow_mut().drain().map(|(_, r)| r).collect());
        if reports.is_empty() {
            return;
        }
        leptos::task::spawn_local(async move {
            for chunk in reports.chunks(protocol::MAX_STATS_REPORTS) {
                let body = ClientStats {
                    reports: chunk.to_vec(),
                };
                let _ = api::post::<_, serde::de::IgnoredAny>("/api/live/stats", &body).await;
            }
        });
    };
    let _ = set_interval_with_handle(tick, std::time::Duration::from_millis(REPORT_EVERY_MS));
}

/// Keeps the clock offset fresh for latency figures: now, then every few minutes.
fn start_clock(ui: LiveUi) {
    leptos::task::spawn_local(async move {
        if let Some(r) = clock::sync().await {
            let _ = ui.clock.try_set(Some(r));
        }
    });
    thread_local! {
        static TICKING: Cell<bool> = const { Cell::new(false) };
    }
    if TICKING.with(|t| t.replace(true)) {
        return;
    }
    let _ = set_interval_with_handle(
        move || {
            leptos::task::spawn_local(async move {
                if let Some(r) = clock::sync().await {
                    let _ = ui.clock.try_set(Some(r));
                }
            });
        },
        std::time::Duration::from_millis(clock::RESYNC_MS),
    );
}

/// Commit-to-screen latency of `ev` for a connection created at `created_at` (local ms):
/// None for events committed before that (a catch-up from the log, not delivery).
pub(crate) fn live_latency(ev: &TypedEvent, created_at: f64) -> Option<f64> {
    let server_now = clock::server_now();
    let opened = created_at + clock::offset();
    // `ts` is whole milliseconds: the event was committed within [ts, ts + 1).
    ((ev.ts as f64) + 1.0 > opened).then(|| (server_now - ev.ts as f64).max(0.0))
}

struct Entry {
    spec: ConnSpec,
    conn: Rc<dyn Conn>,
    open: bool,
    opened_at: f64,
    /// When the connection was created (local ms): events committed after it are live.
    created_at: f64,
    /// Set when a newer assignment replaced this connection; it closes once those are open.
    retiring: bool,
    failures: u32,
}

struct Manager {
    feeds: Vec<Feed>,
    ui: LiveUi,
    on_event: Rc<dyn Fn(Delivery)>,
    last_id: RefCell<HashMap<Feed, i64>>,
    conns: RefCell<Vec<Entry>>,
    /// Transports avoided until the given time (ms) after failing early.
    avoid: RefCell<HashMap<Transport, f64>>,
    /// A check whether the server answers is under way (see [`server_answers`]).
    probing: Cell<bool>,
    /// Early WebSocket failures while the server answered plain HTTP; two mean the WebSocket
    /// itself fails here (a proxy that drops upgrades, say). A WebSocket that lived past
    /// [`EARLY_DEATH_MS`], or a server that does not answer, starts the count again.
    ws_strikes: Cell<u32>,
    stopped: Cell<bool>,
}

thread_local! {
    static MANAGER: RefCell<Option<Rc<Manager>>> = const { RefCell::new(None) };
}

fn now() -> f64 {
    clock::local_now()
}

/// Starts this tab's live feeds: `feeds` over the transports the server says, from `cursor`
/// (the page's render point) when given. `on_event` receives every event once, in order per feed.
pub fn start(
    feeds: &[Feed],
    cursor: Option<i64>,
    ui: LiveUi,
    on_event: impl Fn(Delivery) + 'static,
) {
    stop();
    let mut last = HashMap::new();
    if let Some(c) = cursor {
        for f in feeds.iter().chain(std::iter::once(&Feed::Control)) {
            last.insert(*f, c);
        }
    }
    let m = Rc::new(Manager {
        feeds: feeds.to_vec(),
        ui,
        on_event: Rc::new(on_event),
        last_id: RefCell::new(last),
        conns: RefCell::new(Vec::new()),
        avoid: RefCell::new(HashMap::new()),
        probing: Cell::new(false),
        ws_strikes: Cell::new(0),
        stopped: Cell::new(false),
    });
    MANAGER.with(|slot| *slot.borrow_mut() = Some(m.clone()));
    install_wakeups();
    start_clock(ui);
    start_reporting();
    leptos::task::spawn_local(refresh_settings());
}

/// Closes every connection (the chat screen went away).
pub fn stop() {
    let old = MANAGER.with(|m| m.borrow_mut().take());
    if let Some(m) = old {
        m.stopped.set(true);
        let conns: Vec<Rc<dyn Conn>> = m.conns.borrow_mut().drain(..).map(|e| e.conn).collect();
        for c in conns {
            c.close();
        }
    }
}

/// Sends a client frame over the connection that carries `feed`, if it takes frames and is open.
pub fn send(feed: Feed, frame: &ClientFrame) -> bool {
    let conn = MANAGER.with(|m| {
        let m = m.borrow();
        let m = m.as_ref()?;
        let conns = m.conns.borrow();
        conns
            .iter()
            .find(|e| e.open && !e.retiring && e.spec.feeds.contains(&feed))
            .map(|e| e.conn.clone())
    });
    conn.is_some_and(|c| c.send(frame))
}

/// Asks the server for my transport settings and applies them.
pub async fn refresh_settings() {
    match api::get::<TransportSettings>("/api/me/transports").await {
        Ok(settings) => apply_settings(settings),
        Err(e) if e.status == 401 => {
            let _ = window().location().set_href("/login");
        }
        Err(_) => {
            // Try again shortly; until then keep what runs (or start on the defaults).
            let has_settings = MANAGER.with(|m| {
                m.borrow()
                    .as_ref()
                    .is_some_and(|m| m.ui.settings.get_untracked().is_some())
            });
            if !has_settings {
                apply_settings(TransportSettings::new(
                    protocol::FeedTransports::defaults(),
                    Default::default(),
                    Default::default(),
                    protocol::default_short_poll_ms(),
                    protocol::default_long_poll_s(),
                ));
            }
            set_timeout(
                || leptos::task::spawn_local(refresh_settings()),
                std::time::Duration::from_millis(backoff_ms(3) as u64),
            );
        }
    }
}

/// Applies new settings: switches whatever feed now belongs to another transport.
pub fn apply_settings(settings: TransportSettings) {
    let manager = MANAGER.with(|m| m.borrow().clone());
    if let Some(m) = manager {
        let _ = m.ui.settings.try_set(Some(settings));
        m.reassign();
    }
}

fn install_wakeups() {
    thread_local! {
        static INSTALLED: Cell<bool> = const { Cell::new(false) };
    }
    if INSTALLED.with(|i| i.replace(true)) {
        return;
    }
    let kick = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        if document().hidden() {
            return;
        }
        let manager = MANAGER.with(|m| m.borrow().clone());
        if let Some(m) = manager {
            let conns: Vec<Rc<dyn Conn>> =
                m.conns.borrow().iter().map(|e| e.conn.clone()).collect();
            for c in conns {
                c.kick();
            }
        }
    });
    let _ = window().add_event_listener_with_callback("online", kick.as_ref().unchecked_ref());
    let _ = document()
        .add_event_listener_with_callback("visibilitychange", kick.as_ref().unchecked_ref());
    kick.forget();
}

impl Sink for Manager {
    fn report(self: Rc<Self>, conn_id: u32, r: Report) {
        self.handle(conn_id, r);
    }

    /// The smallest last id among `feeds` (and `control`), so nothing is missed; what arrives
    /// twice is dropped per feed.
    fn cursor_for(&self, feeds: &[Feed]) -> Option<i64> {
        let last = self.last_id.borrow();
        let mut cursor: Option<i64> = None;
        for f in feeds.iter().chain(std::iter::once(&Feed::Control)) {
            let id = *last.get(f)?;
            cursor = Some(cursor.map_or(id, |c: i64| c.min(id)));
        }
        cursor
    }
}

impl Manager {
    /// The transport `feed` should use now: the server's effective choice, unless it failed
    /// early a moment ago, then the next one on (never remembered past [`FALLBACK_FOR_MS`]).
    fn transport_for(&self, feed: Feed) -> Transport {
        let Some(settings) = self.ui.settings.get_untracked() else {
            return protocol::default_transport(feed);
        };
        let preferred = settings.effective.get(feed);
        let t = now();
        let avoid = self.avoid.borrow();
        let usable = |tr: Transport| {
            settings.enabled.enabled(tr) && avoid.get(&tr).is_none_or(|until| *until <= t)
        };
        let start = Transport::ALL
            .iter()
            .position(|x| *x == preferred)
            .unwrap_or(0);
        (0..4)
            .map(|i| Transport::ALL[(start + i) % 4])
            .find(|tr| usable(*tr))
            .unwrap_or(preferred)
    }

    /// Makes the connections match the assignment: keeps those that already do, opens new ones
    /// from the last ids, and retires the rest once the new ones are open.
    fn reassign(self: &Rc<Self>) {
        if self.stopped.get() {
            return;
        }
        let Some(settings) = self.ui.settings.get_untracked() else {
            return;
        };
        let mut wanted: Vec<(Transport, Vec<Feed>)> = Vec::new();
        for f in &self.feeds {
            let t = self.transport_for(*f);
            match wanted.iter_mut().find(|(tr, _)| *tr == t) {
                Some((_, fs)) => fs.push(*f),
                None => wanted.push((t, vec![*f])),
            }
        }
        let mut to_open = Vec::new();
        {
            let mut conns = self.conns.borrow_mut();
            for e in conns.iter_mut() {
                // A poll connection also restarts when an admin changed the poll timing.
                let timing_same = e.spec.short_poll_ms == settings.short_poll_ms
                    && e.spec.long_poll_s == settings.long_poll_s;
                let streaming = matches!(e.spec.transport, Transport::Websocket | Transport::Sse);
                let keep = !e.retiring
                    && (timing_same || streaming)
                    && wanted
                        .iter()
                        .any(|(t, fs)| *t == e.spec.transport && *fs == e.spec.feeds);
                if !keep {
                    e.retiring = true;
                }
            }
            for (t, fs) in &wanted {
                let exists = conns
                    .iter()
                    .any(|e| !e.retiring && e.spec.transport == *t && e.spec.feeds == *fs);
                if !exists {
                    let sink: Rc<dyn Sink> = self.clone();
                    to_open.push(ConnSpec {
                        id: next_conn_id(),
                        transport: *t,
                        feeds: fs.clone(),
                        short_poll_ms: settings.short_poll_ms,
                        long_poll_s: settings.long_poll_s,
                        sink: Rc::downgrade(&sink),
                    });
                }
            }
        }
        // Readouts: each feed shows the transport it is moving to, and the one it should use.
        let _ = self.ui.stats.try_update(|s| {
            for (t, fs) in &wanted {
                for f in fs {
                    let entry = s.entry(*f).or_insert_with(|| FeedStats::new(*t));
                    if entry.transport != *t {
                        entry.moved_to(*t);
                    }
                    entry.preferred = settings.effective.get(*f);
                }
            }
        });
        for spec in to_open {
            let conn = open_conn(spec.clone());
            self.conns.borrow_mut().push(Entry {
                spec,
                conn,
                open: false,
                opened_at: 0.0,
                created_at: now(),
                retiring: false,
                failures: 0,
            });
        }
        self.retire_if_ready();
        // A retiring connection goes after a grace period even if its successor never opens.
        let this = Rc::downgrade(self);
        set_timeout(
            move || {
                if let Some(m) = this.upgrade() {
                    m.retire_all();
                }
            },
            std::time::Duration::from_millis(SWITCH_GRACE_MS),
        );
    }

    /// Closes retiring connections once every current one is open.
    fn retire_if_ready(&self) {
        let ready = self
            .conns
            .borrow()
            .iter()
            .filter(|e| !e.retiring)
            .all(|e| e.open);
        if ready {
            self.retire_all();
        }
    }

    fn retire_all(&self) {
        let gone: Vec<Rc<dyn Conn>> = {
            let mut conns = self.conns.borrow_mut();
            let (old, keep): (Vec<Entry>, Vec<Entry>) = conns.drain(..).partition(|e| e.retiring);
            *conns = keep;
            old.into_iter().map(|e| e.conn).collect()
        };
        for c in gone {
            c.close();
        }
    }

    fn feeds_of(&self, conn_id: u32) -> Option<(Vec<Feed>, bool)> {
        self.conns
            .borrow()
            .iter()
            .find(|e| e.spec.id == conn_id)
            .map(|e| (e.spec.feeds.clone(), e.retiring))
    }

    fn set_state(&self, feeds: &[Feed], state: ConnState) {
        let _ = self.ui.stats.try_update(|s| {
            for f in feeds {
                if let Some(st) = s.get_mut(f) {
                    st.state = state.clone();
                }
            }
        });
    }

    fn handle(self: &Rc<Self>, conn_id: u32, r: Report) {
        if self.stopped.get() {
            return;
        }
        let Some((feeds, retiring)) = self.feeds_of(conn_id) else {
            return;
        };
        match r {
            Report::Open { cursor } => {
                let reconnect = {
                    let mut conns = self.conns.borrow_mut();
                    let e = conns.iter_mut().find(|e| e.spec.id == conn_id);
                    e.map(|e| {
                        let was = e.opened_at > 0.0;
                        e.open = true;
                        e.opened_at = now();
                        e.failures = 0;
                        was
                    })
                    .unwrap_or(false)
                };
                if let Some(c) = cursor {
                    let mut last = self.last_id.borrow_mut();
                    for f in feeds.iter().chain(std::iter::once(&Feed::Control)) {
                        last.entry(*f).or_insert(c);
                    }
                }
                if !retiring {
                    self.set_state(&feeds, ConnState::Connected);
                    if reconnect {
                        let _ = self.ui.stats.try_update(|s| {
                            for f in &feeds {
                                if let Some(st) = s.get_mut(f) {
                                    st.reconnects += 1;
                                }
                            }
                        });
                    }
                    (self.on_event)(Delivery::Opened(feeds.clone()));
                }
                self.retire_if_ready();
            }
            Report::Event(ev, bytes) => self.deliver(conn_id, ev, bytes),
            Report::Wire {
                requests,
                bytes,
                empty,
            } => {
                let share = bytes / feeds.len().max(1) as u64;
                let _ = self.ui.stats.try_update(|s| {
                    for f in &feeds {
                        if let Some(st) = s.get_mut(f) {
                            st.requests += requests;
                            st.bytes += share;
                            st.empty += empty as u64;
                        }
                    }
                });
            }
            Report::Cursor(c) => {
                let mut last = self.last_id.borrow_mut();
                for f in feeds.iter().chain(std::iter::once(&Feed::Control)) {
                    let e = last.entry(*f).or_insert(c);
                    *e = (*e).max(c);
                }
                drop(last);
                self.sync_last_ids(&feeds);
            }
            Report::Retrying {
                attempt,
                retry_in_ms,
            } => {
                let early = {
                    let mut conns = self.conns.borrow_mut();
                    conns.iter_mut().find(|e| e.spec.id == conn_id).map(|e| {
                        let early = !e.open || now() - e.opened_at < EARLY_DEATH_MS;
                        e.open = false;
                        e.failures += 1;
                        early
                    })
                };
                if !retiring {
                    let state = if window().navigator().on_line() {
                        ConnState::Reconnecting {
                            attempt,
                            retry_in_ms,
                        }
                    } else {
                        ConnState::Offline
                    };
                    self.set_state(&feeds, state);
                }
                let transport = self
                    .conns
                    .borrow()
                    .iter()
                    .find(|e| e.spec.id == conn_id)
                    .map(|e| e.spec.transport);
                // A WebSocket refused or dying at once: if the server answers plain HTTP, the
                // WebSocket fails here (a proxy that drops upgrades, say): use the next transport
                // for a while, then try again. If the server does not answer, it is away, not
                // the WebSocket: keep it, retrying quickly, so it is back the moment the server is.
                if early == Some(true) && transport == Some(Transport::Websocket) && !retiring {
                    self.probe_then_fall_back(conn_id);
                } else if early == Some(false) && transport == Some(Transport::Websocket) {
                    self.ws_strikes.set(0);
                }
                // A fallback losing the server too: its cause may have been the server going
                // away rather than the WebSocket. Clear it, so the preferred transport is what
                // comes back (and is checked again) as soon as the server answers.
                if transport.is_some_and(|t| t != Transport::Websocket)
                    && !retiring
                    && self
                        .avoid
                        .borrow_mut()
                        .remove(&Transport::Websocket)
                        .is_some()
                {
                    self.ws_strikes.set(0);
                    self.reassign();
                }
            }
            Report::Disabled => {
                // The server's settings now name the fallback; fetch them and switch. They are
                // the authority: no local avoidance, so switching back on takes effect at once.
                leptos::task::spawn_local(refresh_settings());
            }
            Report::Unauthorized => {
                self.set_state(&feeds, ConnState::Stopped("Signed out".into()));
                let _ = window().location().set_href("/login");
            }
        }
    }

    /// After an early WebSocket failure on `conn_id`: asks whether the server answers at all,
    /// and falls back only when it does and the WebSocket failed twice in a row that way.
    fn probe_then_fall_back(self: &Rc<Self>, conn_id: u32) {
        if self.probing.replace(true) {
            return;
        }
        let this = Rc::downgrade(self);
        leptos::task::spawn_local(async move {
            let answers = server_answers().await;
            let Some(m) = this.upgrade() else { return };
            m.probing.set(false);
            if m.stopped.get() {
                return;
            }
            if !answers {
                m.ws_strikes.set(0);
                return;
            }
            let conn = m
                .conns
                .borrow()
                .iter()
                .find(|e| e.spec.id == conn_id && !e.open && !e.retiring)
                .map(|e| e.conn.clone());
            let Some(conn) = conn else { return }; // open again, or gone
            let strikes = m.ws_strikes.get() + 1;
            m.ws_strikes.set(strikes);
            if strikes >= 2 {
                m.ws_strikes.set(0);
                m.fall_back(Transport::Websocket);
            } else {
                // The server answers: maybe it just came back. Try the WebSocket once more now.
                conn.kick();
            }
        });
    }

    fn fall_back(self: &Rc<Self>, t: Transport) {
        let all_avoided = {
            let mut avoid = self.avoid.borrow_mut();
            avoid.insert(t, now() + FALLBACK_FOR_MS);
            let n = now();
            Transport::ALL
                .iter()
                .all(|x| avoid.get(x).is_some_and(|u| *u > n))
        };
        if all_avoided {
            // Everything failed: the server is away, not one transport. Keep the preferred ones
            // and let their backoff run.
            self.avoid.borrow_mut().clear();
            return;
        }
        self.reassign();
        let this = Rc::downgrade(self);
        set_timeout(
            move || {
                if let Some(m) = this.upgrade() {
                    m.reassign();
                }
            },
            std::time::Duration::from_millis(FALLBACK_FOR_MS as u64 + 100),
        );
    }

    fn sync_last_ids(&self, feeds: &[Feed]) {
        let last = self.last_id.borrow().clone();
        let _ = self.ui.stats.try_update(|s| {
            for f in feeds {
                if let Some(st) = s.get_mut(f) {
                    st.last_id = last.get(f).copied();
                }
            }
        });
    }

    /// Passes an event on once: anything at or below its feed's last id was already delivered.
    fn deliver(self: &Rc<Self>, conn_id: u32, ev: TypedEvent, bytes: u64) {
        if matches!(ev.data, EventData::Hello(_)) {
            return;
        }
        let (transport, created_at) = self
            .conns
            .borrow()
            .iter()
            .find(|e| e.spec.id == conn_id)
            .map_or((None, 0.0), |e| (Some(e.spec.transport), e.created_at));
        let feed = ev.feed;
        if feed != Feed::Control {
            let _ = self.ui.stats.try_update(|s| {
                if let Some(st) = s.get_mut(&feed) {
                    if Some(st.transport) == transport {
                        st.bytes += bytes;
                        st.events += 1;
                    }
                }
            });
        }
        if let Some(id) = ev.id {
            let dup = {
                let mut last = self.last_id.borrow_mut();
                let prev = last.get(&ev.feed).copied();
                if prev.is_some_and(|p| id <= p) {
                    true
                } else {
                    last.insert(ev.feed, id);
                    false
                }
            };
            let feed = ev.feed;
            let _ = self.ui.stats.try_update(|s| {
                let targets: Vec<Feed> = if feed == Feed::Control {
                    CHOOSABLE_FEEDS.to_vec()
                } else {
                    vec![feed]
                };
                for f in targets {
                    if let Some(st) = s.get_mut(&f) {
                        if dup {
                            if feed != Feed::Control {
                                st.duplicates += 1;
                            }
                        } else {
                            if feed != Feed::Control {
                                st.received += 1;
                            }
                            st.last_id = Some(st.last_id.map_or(id, |l| l.max(id)));
                        }
                    }
                }
            });
            if dup {
                return;
            }
        }
        match &ev.data {
            EventData::Transport(TransportChange::Settings(settings)) => {
                apply_settings(settings.clone())
            }
            // A global switch: my effective transports may have moved.
            EventData::Transport(_) => leptos::task::spawn_local(refresh_settings()),
            EventData::Resync(r) => {
                let mut last = self.last_id.borrow_mut();
                for v in last.values_mut() {
                    *v = (*v).max(r.cursor);
                }
            }
            _ => {}
        }
        let latency = (feed != Feed::Control)
            .then(|| live_latency(&ev, created_at))
            .flatten();
        (self.on_event)(Delivery::Event(ev));
        // Measured once the view has the event.
        if let (Some(ms), Some(t)) = (latency, transport) {
            pending(t, feed, |r| r.latency_ms.push(ms));
            let _ = self.ui.stats.try_update(|s| {
                if let Some(st) = s.get_mut(&feed) {
                    if st.transport == t {
                        st.latency(ms);
                    }
                }
            });
        }
    }
}
