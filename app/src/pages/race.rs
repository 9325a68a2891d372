//! The race lanes page (`/race`): one feed over all four transports at once, side by side, with
//! a timeline of arrivals and a table of what each lane cost.

use crate::api;
use crate::components::transports::{fmt_latency, state_class, state_text};
use crate::live::race::{LaneStats, Race, RaceUi};
use crate::state::chat::{new_client_id, Chat};
use leptos::prelude::*;
use protocol::{Feed, Transport};
use std::cell::RefCell;

/// Messages one "send a burst" click sends, and the time between them.
pub const BURST: usize = 10;
pub const BURST_GAP_MS: u64 = 300;
/// The timeline shows this much time, ending at the latest arrival.
const TIMELINE_MS: f64 = 8_000.0;

thread_local! {
    static RACE: RefCell<Option<Race>> = const { RefCell::new(None) };
}

#[component]
pub fn RacePage() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let ui = RaceUi::new();
    let feed = RwSignal::new(Feed::Chat);
    // The user's own private race room, once the first burst has asked for it.
    let race_room = RwSignal::new(None::<protocol::Room>);
    let restart = RwSignal::new(0u32);
    let ready = Memo::new(move |_| chat.live.settings.with(|s| s.is_some()));
    // Browser only: (re)open the lanes when the feed changes or on "restart".
    Effect::new(move |_| {
        let f = feed.get();
        restart.track();
        if !ready.get() {
            return;
        }
        if let Some(settings) = chat.live.settings.get_untracked() {
            let race = Race::start(f, &settings, ui);
            RACE.with(|r| *r.borrow_mut() = Some(race));
        }
    });
    on_cleanup(|| {
        RACE.with(|r| r.borrow_mut().take());
    });
    let sending = RwSignal::new(false);
    let burst = move |_| {
        sending.set(true);
        leptos::task::spawn_local(async move {
            // Bursts go to a private room of the user's own, never into a room others read.
            let room_id = match api::post::<_, protocol::Room>("/api/race/room", &()).await {
                Ok(room) => {
                    let id = room.id.clone();
                    let _ = race_room.try_set(Some(room.clone()));
                    chat.upsert_room(room);
                    id
                }
                Err(e) => {
                    chat.notify(e.message);
                    let _ = sending.try_set(false);
                    return;
                }
            };
            for i in 1..=BURST {
                let body = serde_json::json!({
                    "body": format!("race {i}/{BURST}"),
                    "client_id": new_client_id(),
                });
                if let Err(e) = api::post::<_, serde_json::Value>(
                    &format!("/api/rooms/{room_id}/messages"),
                    &body,
                )
                .await
                {
                    chat.notify(e.message);
                    break;
                }
                if i < BURST {
                    crate::time::sleep_ms(BURST_GAP_MS).await;
                }
            }
            let _ = sending.try_set(false);
        });
    };
    let demo = move |_| {
        let body = serde_json::json!({ "kind": "demo", "steps": 20, "step_ms": 200 });
        leptos::task::spawn_local(async move {
            if let Err(e) = api::post::<_, serde_json::Value>("/api/jobs", &body).await {
                chat.notify(e.message);
            }
        });
    };
    view! {
        <section class="race-page" aria-labelledby="race-title" data-testid="race-page">
            <header class="room-head">
                <h1 id="race-title">"Race lanes"</h1>
            </header>
            <div class="jobs-body">
                <p class="muted">
                    "The same feed over all four transports at once, each lane its own connection. WebSocket and SSE push each event as it is committed; long polling answers at once too, then needs a new request before the next one; short polling only sees events when its next poll comes round."
                </p>
                <div class="race-controls">
                    <fieldset class="inline">
                        <legend>"Feed"</legend>
                        <label class="check">
                            <input type="radio" name="race-feed" prop:checked=move || feed.get() == Feed::Chat
                                on:change=move |_| feed.set(Feed::Chat) data-testid="race-feed-chat" />
                            "Chat messages"
                        </label>
                        <label class="check">
                            <input type="radio" name="race-feed" prop:checked=move || feed.get() == Feed::Jobs
                                on:change=move |_| feed.set(Feed::Jobs) data-testid="race-feed-jobs" />
                            "Job progress"
                        </label>
                    </fieldset>
                    <Show
                        when=move || feed.get() == Feed::Chat
                        fallback=move || view! {
                            <button class="primary" on:click=demo data-testid="race-demo">"Run a demo job (20 steps × 200 ms)"</button>
                        }
                    >
                        <p class="muted" data-testid="race-room">
                            {move || match race_room.get() {
                                Some(r) => format!("Bursts go to #{}, a private room of your own: nobody else sees them.", r.name),
                                None => "Bursts go to a private room of your own (made on the first burst): nobody else sees them.".to_string(),
                            }}
                        </p>
                        <button class="primary" on:click=burst disabled=move || sending.get() data-testid="race-burst">
                            {format!("Send {BURST} messages, {BURST_GAP_MS} ms apart")}
                        </button>
                    </Show>
                    <button class="link" on:click=move |_| restart.update(|n| *n += 1) data-testid="race-restart">"Restart lanes"</button>
                </div>
                <Timeline ui />
                <div class="lanes">
                    {Transport::ALL.into_iter().enumerate().map(|(i, t)| view! { <LaneView ui i t /> }).collect_view()}
                </div>
                <h2>"Per lane"</h2>
                <RaceTable ui />
            </div>
        </section>
    }
}

#[component]
fn LaneView(ui: RaceUi, i: usize, t: Transport) -> impl IntoView {
    let lane = move || ui.lanes.with(|l| l.get(i).cloned());
    view! {
        <section class="lane" data-testid=format!("lane-{}", t.as_str()) aria-label=format!("{} lane", t.label())>
            <h2 class=format!("t-{}", t.as_str())>{t.label()}</h2>
            {move || lane().map(|l| view! {
                <p class=state_class(&l.state)>{state_text(&l.state)}</p>
                <ol class="arrivals" reversed>
                    {l.arrivals.iter().rev().take(12).map(|a| view! {
                        <li data-testid="arrival" data-id=a.id>
                            <span class="id">{format!("#{}", a.id)}</span>
                            <span class="label">{a.label.clone()}</span>
                            <span class="ms">{fmt_latency(a.latency_ms)}</span>
                        </li>
                    }).collect_view()}
                </ol>
            })}
        </section>
    }
}

/// Arrival times as dots, one row per transport, over the last few seconds of arrivals.
#[component]
fn Timeline(ui: RaceUi) -> impl IntoView {
    const W: f64 = 600.0;
    const ROW: f64 = 26.0;
    const LEFT: f64 = 96.0;
    let chart = move || {
        ui.lanes.with(|lanes| {
            let end = lanes
                .iter()
                .flat_map(|l| l.arrivals.last())
                .map(|a| a.at)
                .fold(f64::MIN, f64::max);
            let start = end - TIMELINE_MS;
            let x = move |at: f64| LEFT + (at - start) / TIMELINE_MS * (W - LEFT - 8.0);
            let rows = lanes
                .iter()
                .enumerate()
                .map(|(i, l): (usize, &LaneStats)| {
                    let y = 14.0 + i as f64 * ROW;
                    let dots = l
                        .arrivals
                        .iter()
                        .filter(|a| a.at >= start)
                        .map(|a| {
                            view! {
                                <circle cx=format!("{:.1}", x(a.at)) cy=format!("{y:.1}") r="4">
                                    <title>{format!("#{} · {}", a.id, fmt_latency(a.latency_ms))}</title>
                                </circle>
                            }
                        })
                        .collect_view();
                    view! {
                        <g class=format!("row s-{}", l.transport.as_str())>
                            <text x="0" y=format!("{:.1}", y + 4.0)>{l.transport.label()}</text>
                            <line x1=LEFT x2=W - 8.0 y1=y y2=y />
                            {dots}
                        </g>
                    }
                })
                .collect_view();
            view! {
                {rows}
                <text class="axis" x=LEFT y=4.0 * ROW + 12.0>{format!("← {:.0} s", TIMELINE_MS / 1000.0)}</text>
                <text class="axis" x=W - 8.0 y=4.0 * ROW + 12.0 text-anchor="end">"latest arrival"</text>
            }
        })
    };
    view! {
        <figure class="timeline">
            <svg viewBox=format!("0 0 {W} {}", 4.0 * ROW + 16.0) role="img"
                aria-label="Arrival times per transport" data-testid="race-timeline">
                {chart}
            </svg>
            <figcaption class="muted">"Each dot is an event arriving; the same event lines up vertically across lanes."</figcaption>
        </figure>
    }
}

#[component]
fn RaceTable(ui: RaceUi) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <table class="grid" data-testid="race-table">
                <thead>
                    <tr>
                        <th scope="col">"Lane"</th>
                        <th scope="col">"Events"</th>
                        <th scope="col">"p50"</th>
                        <th scope="col">"p95"</th>
                        <th scope="col">"Max"</th>
                        <th scope="col">"Requests"</th>
                        <th scope="col">"Bytes / event"</th>
                        <th scope="col">"Empty answers"</th>
                        <th scope="col">"Reconnects"</th>
                        <th scope="col">"Duplicates dropped"</th>
                    </tr>
                </thead>
                <tbody>
                    {move || ui.lanes.get().into_iter().map(|l| view! {
                        <tr data-testid=format!("race-row-{}", l.transport.as_str())>
                            <th scope="row" class=format!("t-{}", l.transport.as_str())>{l.transport.label()}</th>
                            <td data-testid="events">{l.arrivals.len()}</td>
                            <td>{fmt_latency(l.latency(0.5))}</td>
                            <td>{fmt_latency(l.latency(0.95))}</td>
                            <td>{fmt_latency(l.latency(1.0))}</td>
                            <td data-testid="requests">{l.requests}</td>
                            <td>{l.bytes_per_event().map_or("–".into(), |b| format!("{b:.0} B"))}</td>
                            <td>{l.empty}</td>
                            <td>{l.reconnects}</td>
                            <td>{l.duplicates}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
