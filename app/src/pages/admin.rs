//! The admin console: every user's transports (with overrides), the global switches, poll
//! timing, announcements, the audit log, and the live comparison of the transports (the
//! server's meters, pushed every second over an SSE feed, as a table and SVG charts in the
//! transports' colours).

use crate::api;
use crate::components::transports::GlobalSwitches;
use crate::pages::home::Home;
use crate::state::chat::Chat;
use leptos::prelude::*;
use protocol::{AdminUserView, Feed, Transport, UserId, CHOOSABLE_FEEDS};
use serde_json::Value;

/// `GET /api/admin/users`.
#[derive(serde::Deserialize)]
struct AdminUsers {
    users: Vec<AdminUserView>,
}

/// How often the comparison refreshes when its live feed cannot be opened (it polls instead).
const REFRESH_MS: u64 = 1_000;
/// Snapshots kept for the rate chart (one a second).
const HISTORY: usize = 61;

/// One snapshot's running totals per transport, for rates between snapshots.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    at: f64,
    requests: [f64; 4],
    delivered: [f64; 4],
}

impl Point {
    fn of(m: &Value) -> Point {
        let get = |key: &str| {
            let mut out = [0.0; 4];
            for (i, t) in Transport::ALL.iter().enumerate() {
                out[i] = m["transports"][t.as_str()][key].as_f64().unwrap_or(0.0);
            }
            out
        };
        Point {
            at: js_sys::Date::now(),
            requests: get("requests"),
            delivered: get("delivered"),
        }
    }
}

/// The admin route (`/admin`): the console for admins; for anyone else the home page, as the top
/// bar offers them no console.
#[component]
pub fn AdminRoute() -> impl IntoView {
    let chat = expect_context::<Chat>();
    if chat.me.with_value(|m| m.is_admin) {
        view! { <AdminPage /> }.into_any()
    } else {
        view! { <Home /> }.into_any()
    }
}

#[component]
pub fn AdminPage() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let users = RwSignal::new(Vec::<AdminUserView>::new());
    let audit = RwSignal::new(Vec::<Value>::new());
    let metrics = RwSignal::new(Value::Null);
    let reload = move || {
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<AdminUsers>("/api/admin/users").await {
                users.set(list.users);
            }
            if let Ok(v) = api::get::<Value>("/api/admin/audit?limit=20").await {
                audit.set(v["entries"].as_array().cloned().unwrap_or_default());
            }
        });
    };
    let history = RwSignal::new(Vec::<Point>::new());
    let feed_state = RwSignal::new("connecting");
    let take = move |v: Value| {
        let p = Point::of(&v);
        let _ = history.try_update(|h| {
            if h.len() >= HISTORY {
                h.remove(0);
            }
            h.push(p);
        });
        let _ = metrics.try_set(v);
    };
    let fetch_metrics = move || {
        leptos::task::spawn_local(async move {
            if let Ok(v) = api::get::<Value>("/api/admin/metrics").await {
                take(v);
            }
        });
    };
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            reload();
            let live = open_metrics_feed(take, feed_state, fetch_metrics);
            on_cleanup(move || drop(live));
        }
    });
    let set_override = move |user_id: UserId, feed: Feed, value: String| {
        let v = if value.is_empty() {
            Value::Null
        } else {
            Value::String(value)
        };
        let body = serde_json::json!({ feed.as_str(): v });
        leptos::task::spawn_local(async move {
            match api::put::<_, Value>(&format!("/api/admin/users/{user_id}/transports"), &body)
                .await
            {
                Ok(_) => reload(),
                Err(e) => chat.notify(e.message),
            }
        });
    };
    let title = RwSignal::new(String::new());
    let text = RwSignal::new(String::new());
    let announce = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body =
            serde_json::json!({ "title": title.get_untracked(), "body": text.get_untracked() });
        leptos::task::spawn_local(async move {
            match api::post::<_, Value>("/api/admin/announcements", &body).await {
                Ok(v) => {
                    chat.notify_ok(format!(
                        "Announced to {}.",
                        protocol::count(v["recipients"].as_i64().unwrap_or(0), "person", "people")
                    ));
                    title.set(String::new());
                    text.set(String::new());
                    reload();
                }
                Err(e) => chat.notify(e.message),
            }
        });
    };
    view! {
        <section class="admin-page" aria-labelledby="admin-title" data-testid="admin-page">
            <header class="room-head">
                <h1 id="admin-title">"Admin console"</h1>
            </header>
            <div class="jobs-body">
                <h2>
                    "Live comparison (last minute) "
                    <span class="muted small" data-testid="metrics-feed-state">{move || match feed_state.get() {
                        "live" => "· pushed every second over SSE",
                        "polling" => "· live feed unavailable, polling every second",
                        _ => "· connecting…",
                    }}</span>
                </h2>
                <MetricsTable metrics />
                <div class="charts">
                    <RateChart history />
                    <LatencyChart metrics />
                    <CostChart metrics />
                </div>
                <ServerHealth metrics />
                <h2>"Transports for everyone"</h2>
                <GlobalSwitches />
                <PollSettings />
                <h2>"Users"</h2>
                <table class="grid" data-testid="admin-users">
                    <thead>
                        <tr>
                            <th scope="col">"User"</th>
                            {CHOOSABLE_FEEDS.into_iter().map(|f| view! { <th scope="col">{f.as_str()}</th> }).collect_view()}
                        </tr>
                    </thead>
                    <tbody>
                        {move || users.get().into_iter().map(|u| {
                            let (id, name) = (u.user.id.clone(), u.user.username.clone());
                            view! {
                                <tr data-testid="admin-user" data-username=name.clone()>
                                    <th scope="row">{name.clone()}</th>
                                    {CHOOSABLE_FEEDS.into_iter().map(|f| {
                                        let effective = u.transports.effective.get(f);
                                        let forced = u.transports.overrides.get(f).map_or("", Transport::as_str);
                                        let id = id.clone();
                                        view! {
                                            <td>
                                                <span class=format!("t-{}", effective.as_str())>{effective.label()}</span>
                                                <select
                                                    aria-label=format!("Override {} for {}", f.as_str(), name)
                                                    on:change=move |ev| set_override(id.clone(), f, event_target_value(&ev))
                                                    data-testid=format!("override-{}", f.as_str())
                                                >
                                                    <option value="" selected=forced.is_empty()>"no override"</option>
                                                    {Transport::ALL.into_iter().map(|t| view! {
                                                        <option value=t.as_str() selected=forced == t.as_str()>{format!("force {}", t.label())}</option>
                                                    }).collect_view()}
                                                </select>
                                            </td>
                                        }
                                    }).collect_view()}
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                <h2>"Announcement"</h2>
                <form class="side-form" on:submit=announce>
                    <input type="text" placeholder="Title" aria-label="Announcement title" maxlength="120"
                        prop:value=move || title.get() on:input=move |ev| title.set(event_target_value(&ev)) />
                    <textarea rows="2" placeholder="Text" aria-label="Announcement text"
                        prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
                    <button type="submit" class="primary">"Send to everyone"</button>
                </form>
                <h2>"Audit log"</h2>
                <ul class="audit" data-testid="audit-log">
                    {move || audit.get().into_iter().map(|e| {
                        let at = e["at"].as_i64().unwrap_or(0);
                        let off = crate::time::browser_offset_minutes();
                        view! {
                            <li data-testid="audit-entry">
                                <time datetime=crate::time::iso(at)>
                                    {format!("{} {}", crate::time::day_label(at, crate::time::now_ms(), off), crate::time::clock(at, off))}
                                </time>
                                " " {e["summary"].as_str().unwrap_or_default().to_string()}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </div>
        </section>
    }
}

/// Keeps the console's live feed open (an EventSource on `/api/admin/metrics/live`) and hands
/// each snapshot to `take`; if the feed cannot be opened, polls every second instead. Dropping
/// the returned guard closes whichever runs.
fn open_metrics_feed(
    take: impl Fn(Value) + Copy + 'static,
    state: RwSignal<&'static str>,
    poll: impl Fn() + Copy + 'static,
) -> send_wrapper::SendWrapper<MetricsFeed> {
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    let mut feed = MetricsFeed::default();
    let Ok(source) = web_sys::EventSource::new("/api/admin/metrics/live") else {
        state.set("polling");
        feed.interval =
            set_interval_with_handle(poll, std::time::Duration::from_millis(REFRESH_MS)).ok();
        return send_wrapper::SendWrapper::new(feed);
    };
    let on_metrics =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            if let Some(v) = ev
                .data()
                .as_string()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            {
                let _ = state.try_set("live");
                take(v);
            }
        });
    let _ = source.add_event_listener_with_callback("metrics", on_metrics.as_ref().unchecked_ref());
    let polling = std::rc::Rc::new(std::cell::Cell::new(None::<IntervalHandle>));
    let p = polling.clone();
    let src = source.clone();
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        // The browser retries by itself unless the server refused the stream outright.
        if src.ready_state() == web_sys::EventSource::CLOSED {
            let _ = state.try_set("polling");
            if p.get().is_none() {
                p.set(
                    set_interval_with_handle(poll, std::time::Duration::from_millis(REFRESH_MS))
                        .ok(),
                );
            }
        }
    });
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    feed.source = Some(source);
    feed.callbacks = vec![on_metrics.into_js_value(), on_error.into_js_value()];
    feed.polling = Some(polling);
    send_wrapper::SendWrapper::new(feed)
}

#[derive(Default)]
struct MetricsFeed {
    source: Option<web_sys::EventSource>,
    callbacks: Vec<wasm_bindgen::JsValue>,
    interval: Option<IntervalHandle>,
    polling: Option<std::rc::Rc<std::cell::Cell<Option<IntervalHandle>>>>,
}

impl Drop for MetricsFeed {
    fn drop(&mut self) {
        if let Some(s) = self.source.take() {
            s.set_onerror(None);
            s.close();
        }
        self.callbacks.clear();
        if let Some(i) = self.interval.take() {
            i.clear();
        }
        if let Some(p) = self.polling.take().and_then(|p| p.take()) {
            p.clear();
        }
    }
}

const CHART_W: f64 = 320.0;

fn t_class(t: Transport) -> String {
    format!("s-{}", t.as_str())
}

/// Requests per second per transport over the last minute: short polling keeps asking when
/// nothing happens, the streams ask once.
#[component]
fn RateChart(history: RwSignal<Vec<Point>>) -> impl IntoView {
    const H: f64 = 140.0;
    const LEFT: f64 = 34.0;
    let lines = move || {
        history.with(|h| {
            let rates: Vec<(f64, [f64; 4])> = h
                .windows(2)
                .map(|w| {
                    let dt = ((w[1].at - w[0].at) / 1000.0).max(0.001);
                    let mut r = [0.0; 4];
                    for (i, v) in r.iter_mut().enumerate() {
                        *v = ((w[1].requests[i] - w[0].requests[i]) / dt).max(0.0);
                    }
                    (w[1].at, r)
                })
                .collect();
            let max = rates
                .iter()
                .flat_map(|(_, r)| r.iter().copied())
                .fold(1.0f64, f64::max)
                .ceil();
            let end = rates.last().map_or(0.0, |(t, _)| *t);
            let x = move |t: f64| LEFT + (1.0 - (end - t) / 60_000.0) * (CHART_W - LEFT - 4.0);
            let y = move |v: f64| H - 16.0 - v / max * (H - 26.0);
            let paths = Transport::ALL
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    let pts = rates
                        .iter()
                        .map(|(at, r)| format!("{:.1},{:.1}", x(*at), y(r[i])))
                        .collect::<Vec<_>>()
                        .join(" ");
                    view! { <polyline class=t_class(t) points=pts><title>{format!("{} requests/s", t.label())}</title></polyline> }
                })
                .collect_view();
            view! {
                <line class="axis" x1=LEFT x2=CHART_W - 4.0 y1=H - 16.0 y2=H - 16.0 />
                <text class="axis" x=LEFT - 4.0 y=y(max) + 4.0 text-anchor="end">{format!("{max:.0}")}</text>
                <text class="axis" x=LEFT - 4.0 y=H - 12.0 text-anchor="end">"0"</text>
                <text class="axis" x=LEFT y=H - 2.0>"−60 s"</text>
                <text class="axis" x=CHART_W - 4.0 y=H - 2.0 text-anchor="end">"now"</text>
                {paths}
            }
        })
    };
    view! {
        <figure class="chart" data-testid="chart-rates">
            <figcaption>"Requests per second"</figcaption>
            <svg viewBox=format!("0 0 {CHART_W} {H}") role="img" aria-label="Requests per second per transport over the last minute">
                {lines}
            </svg>
            <Legend />
        </figure>
    }
}

/// Latency per transport on a log scale: the server's commit-to-write p50 and p99, and the
/// browsers' commit-to-screen p50 as they reported it.
#[component]
fn LatencyChart(metrics: RwSignal<Value>) -> impl IntoView {
    const H: f64 = 150.0;
    const LEFT: f64 = 78.0;
    // 0.1 ms to 10 s.
    let x = |ms: f64| {
        LEFT + ((ms.max(0.1).log10() + 1.0) / 5.0).clamp(0.0, 1.0) * (CHART_W - LEFT - 100.0)
    };
    let bars = move || {
        metrics.with(|m| {
            Transport::ALL
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    let worst = |field: &str, key: &str| {
                        Feed::ALL
                            .iter()
                            .filter_map(|f| m["transports"][t.as_str()]["feeds"][f.as_str()][field][key].as_f64())
                            .fold(0.0, f64::max)
                    };
                    let (p50, p99, c50) = (worst("latency_ms", "p50"), worst("latency_ms", "p99"), worst("client_latency_ms", "p50"));
                    let y = 8.0 + i as f64 * 32.0;
                    view! {
                        <g class=t_class(t)>
                            <text x="0" y=y + 12.0>{t.label()}</text>
                            <rect class="p99" x=LEFT y=y width=(x(p99) - LEFT).max(0.0) height="9"><title>{format!("server p99 {p99:.1} ms")}</title></rect>
                            <rect x=LEFT y=y width=(x(p50) - LEFT).max(0.0) height="9"><title>{format!("server p50 {p50:.1} ms")}</title></rect>
                            <rect class="client" x=LEFT y=y + 11.0 width=(x(c50) - LEFT).max(0.0) height="7"><title>{format!("browser p50 {c50:.1} ms")}</title></rect>
                            <text class="value" x=CHART_W - 6.0 y=y + 12.0 text-anchor="end">{if p50 > 0.0 { format!("{p50:.1} / {p99:.1} ms") } else { "–".into() }}</text>
                        </g>
                    }
                })
                .collect_view()
        })
    };
    let ticks = [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
        .into_iter()
        .map(|ms| {
            let label = if ms < 1.0 {
                "0.1".to_string()
            } else if ms >= 1000.0 {
                format!("{}s", ms / 1000.0)
            } else {
                format!("{ms}")
            };
            view! {
                <line class="grid-line" x1=x(ms) x2=x(ms) y1="4" y2=H - 14.0 />
                <text class="axis" x=x(ms) y=H - 2.0 text-anchor="middle">{label}</text>
            }
        })
        .collect_view();
    view! {
        <figure class="chart" data-testid="chart-latency">
            <figcaption>"Latency, ms (log scale): server p50 / p99, browser p50 below"</figcaption>
            <svg viewBox=format!("0 0 {CHART_W} {H}") role="img" aria-label="Delivery latency per transport">
                {ticks}
                {bars}
            </svg>
        </figure>
    }
}

/// What each delivered event costs: requests per event and bytes per event.
#[component]
fn CostChart(metrics: RwSignal<Value>) -> impl IntoView {
    const H: f64 = 150.0;
    const LEFT: f64 = 78.0;
    let bars = move || {
        metrics.with(|m| {
            let rows: Vec<(Transport, f64, f64, f64)> = Transport::ALL
                .into_iter()
                .map(|t| {
                    let v = &m["transports"][t.as_str()];
                    let d = v["delivered"].as_f64().unwrap_or(0.0);
                    let req = v["requests"].as_f64().unwrap_or(0.0);
                    let empty = v["empty"].as_f64().unwrap_or(0.0);
                    let bytes = v["bytes"].as_f64().unwrap_or(0.0);
                    let per = |x: f64| if d > 0.0 { x / d } else { 0.0 };
                    (t, per(req), per(bytes), if req > 0.0 { empty / req } else { 0.0 })
                })
                .collect();
            let max_bytes = rows.iter().map(|r| r.2).fold(1.0, f64::max);
            let w = CHART_W - LEFT - 104.0;
            rows.into_iter()
                .enumerate()
                .map(|(i, (t, req, bytes, empty))| {
                    let y = 8.0 + i as f64 * 32.0;
                    view! {
                        <g class=t_class(t)>
                            <text x="0" y=y + 12.0>{t.label()}</text>
                            <rect x=LEFT y=y width=(bytes / max_bytes * w).max(0.0) height="9"><title>{format!("{bytes:.0} bytes per event")}</title></rect>
                            <rect class="client" x=LEFT y=y + 11.0 width=(empty * w).max(0.0) height="7"><title>{format!("{:.0}% of answers empty", empty * 100.0)}</title></rect>
                            <text class="value" x=CHART_W - 6.0 y=y + 12.0 text-anchor="end">{format!("{bytes:.0} B · {req:.2} req")}</text>
                        </g>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <figure class="chart" data-testid="chart-cost">
            <figcaption>"Per event: bytes, requests; share of empty answers below"</figcaption>
            <svg viewBox=format!("0 0 {CHART_W} {H}") role="img" aria-label="Bytes and requests per event per transport">
                {bars}
            </svg>
        </figure>
    }
}

/// What a leak or a write backlog would show: open connections, live users, hub subscribers,
/// runtime tasks, and how the group-commit writer is batching.
#[component]
fn ServerHealth(metrics: RwSignal<Value>) -> impl IntoView {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    view! {
        <p class="muted small server-health" data-testid="server-health">
            {move || {
                let m = metrics.get();
                let (r, w) = (&m["runtime"], &m["writer"]);
                if r.is_null() {
                    return "Server: waiting for the first snapshot…".to_string();
                }
                let (batches, messages) = (n(&w["batches"]), n(&w["messages"]));
                let avg = if batches == 0 { 0.0 } else { messages as f64 / batches as f64 };
                format!(
                    "Server: {} · {} with a live connection · {} · {} · chat writes: {} in {} ({:.1} messages per commit, largest {})",
                    plural(n(&r["connections"]), "open connection"),
                    plural(n(&r["users_connected"]), "user"),
                    plural(n(&r["subscribers"]), "hub subscription"),
                    plural(n(&r["tasks"]), "runtime task"),
                    plural(messages, "message"),
                    plural(batches, "transaction"),
                    avg,
                    n(&w["largest_batch"]),
                )
            }}
        </p>
        <p class="muted small cluster-health" data-testid="cluster-health">
            {move || {
                let m = metrics.get();
                let (c, r) = (&m["cluster"], &m["runtime"]);
                if r.is_null() {
                    return String::new();
                }
                if !c.is_object() {
                    return "Cluster: a single server (no backplane)".to_string();
                }
                format!(
                    "Cluster: this is node {} · backplane {} · {} · {} received ({}) · {} · {} read from the log · {} · log head {}, {} waiting for an earlier id",
                    c["node"].as_str().unwrap_or("?"),
                    if c["connected"].as_bool() == Some(true) { "connected" } else { "DOWN (serving from the database)" },
                    plural(n(&c["published"]), "publish"),
                    plural(n(&c["received"]), "message"),
                    plural(n(&c["received_events"]), "event"),
                    plural(n(&c["gaps"]), "gap"),
                    plural(n(&c["filled_from_log"]), "event"),
                    plural(n(&c["reconnects"]), "reconnect"),
                    n(&r["hub_head"]),
                    n(&r["hub_pending"]),
                )
            }}
        </p>
    }
}

/// "1 message", "2 messages".
fn plural(count: u64, noun: &str) -> String {
    let many = if noun.ends_with("sh") || noun.ends_with('s') {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    };
    protocol::count(count.min(i64::MAX as u64) as i64, noun, &many)
}

#[component]
fn Legend() -> impl IntoView {
    view! {
        <p class="legend">
            {Transport::ALL.into_iter().map(|t| view! {
                <span class=format!("t-{}", t.as_str())><span class=format!("swatch {}", t_class(t)) aria-hidden="true"></span>{t.label()}</span>
            }).collect_view()}
        </p>
    }
}

/// The slowest feed's `key` figure of a transport's `field` histogram, "–" with no samples.
fn worst_latency(v: &Value, field: &str, key: &str) -> String {
    let timed: Vec<f64> = Feed::ALL
        .iter()
        .map(|f| &v["feeds"][f.as_str()][field])
        .filter(|h| h["count"].as_u64().unwrap_or(0) > 0)
        .filter_map(|h| h[key].as_f64())
        .collect();
    if timed.is_empty() {
        "–".into()
    } else {
        format!("{:.1}", timed.into_iter().fold(0.0, f64::max))
    }
}

/// Per transport: open connections, requests, empty answers, events, bytes per event,
/// reconnects and delivery latency, in the transport's colour.
#[component]
fn MetricsTable(metrics: RwSignal<Value>) -> impl IntoView {
    let cell = move |t: Transport, key: &'static str| {
        move || {
            metrics.with(|m| {
                let v = &m["transports"][t.as_str()];
                match key {
                    "bytes_per_event" => {
                        let d = v["delivered"].as_f64().unwrap_or(0.0);
                        if d > 0.0 {
                            format!("{:.0}", v["bytes"].as_f64().unwrap_or(0.0) / d)
                        } else {
                            "–".into()
                        }
                    }
                    "p50" | "p99" | "max" => worst_latency(v, "latency_ms", key),
                    "c50" => worst_latency(v, "client_latency_ms", "p50"),
                    "faults" => {
                        let n: u64 = Feed::ALL
                            .iter()
                            .map(|f| {
                                let feed = &v["feeds"][f.as_str()];
                                feed["client_gaps"].as_u64().unwrap_or(0)
                                    + feed["client_duplicates"].as_u64().unwrap_or(0)
                            })
                            .sum();
                        n.to_string()
                    }
                    other => match &v[other] {
                        Value::Null => "–".to_string(),
                        n => n.to_string(),
                    },
                }
            })
        }
    };
    view! {
        <table class="grid metrics" data-testid="metrics-table">
            <caption class="sr-only">"Per transport, over all feeds; latency is the slowest feed's"</caption>
            <thead>
                <tr>
                    <th scope="col">"transport"</th>
                    <th scope="col">"open"</th>
                    <th scope="col">"requests"</th>
                    <th scope="col">"empty"</th>
                    <th scope="col">"events"</th>
                    <th scope="col">"bytes/event"</th>
                    <th scope="col">"reconnects"</th>
                    <th scope="col">"p50 ms"</th>
                    <th scope="col">"p99 ms"</th>
                    <th scope="col">"max ms"</th>
                    <th scope="col" title="Commit to screen, as browsers measured and reported it">"browser p50 ms"</th>
                    <th scope="col" title="Gaps and duplicates browsers reported: should stay 0">"faults"</th>
                </tr>
            </thead>
            <tbody>
                {Transport::ALL.into_iter().map(|t| view! {
                    <tr>
                        <th scope="row" class=format!("t-{}", t.as_str())>{t.label()}</th>
                        <td data-testid=format!("m-{}-open", t.as_str())>{cell(t, "open")}</td>
                        <td data-testid=format!("m-{}-requests", t.as_str())>{cell(t, "requests")}</td>
                        <td data-testid=format!("m-{}-empty", t.as_str())>{cell(t, "empty")}</td>
                        <td data-testid=format!("m-{}-delivered", t.as_str())>{cell(t, "delivered")}</td>
                        <td data-testid=format!("m-{}-bytes_per_event", t.as_str())>{cell(t, "bytes_per_event")}</td>
                        <td data-testid=format!("m-{}-reconnects", t.as_str())>{cell(t, "reconnects")}</td>
                        <td data-testid=format!("m-{}-p50", t.as_str())>{cell(t, "p50")}</td>
                        <td data-testid=format!("m-{}-p99", t.as_str())>{cell(t, "p99")}</td>
                        <td data-testid=format!("m-{}-max", t.as_str())>{cell(t, "max")}</td>
                        <td data-testid=format!("m-{}-c50", t.as_str())>{cell(t, "c50")}</td>
                        <td data-testid=format!("m-{}-faults", t.as_str())>{cell(t, "faults")}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn PollSettings() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let settings = chat.live_settings();
    let short = RwSignal::new(String::new());
    let long = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(s) = settings.get() {
            short.set(s.short_poll_ms.to_string());
            long.set(s.long_poll_s.to_string());
        }
    });
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = serde_json::json!({
            "short_poll_ms": short.get_untracked().trim().parse::<u64>().unwrap_or(0),
            "long_poll_s": long.get_untracked().trim().parse::<u64>().unwrap_or(0),
        });
        leptos::task::spawn_local(async move {
            if let Err(e) = api::put::<_, Value>("/api/admin/settings", &body).await {
                chat.notify(e.message);
            }
        });
    };
    view! {
        <form class="demo-form" on:submit=save data-testid="poll-settings">
            <label>"Short-poll interval "
                <input type="number" min="250" max="60000" step="50" aria-label="Short-poll interval in ms"
                    prop:value=move || short.get() on:input=move |ev| short.set(event_target_value(&ev)) />
            </label>
            " ms · long-poll hold "
            <label>
                <input type="number" min="1" max="30" aria-label="Long-poll hold in seconds"
                    prop:value=move || long.get() on:input=move |ev| long.set(event_target_value(&ev)) />
            </label>
            " s "
            <button type="submit">"Save"</button>
        </form>
    }
}
