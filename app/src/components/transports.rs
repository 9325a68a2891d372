//! The live transports on screen: each feed's picker, the transport inspector with its latency
//! sparkline and readout, the admins' global switches, and the settings drawer that holds them.

use crate::live::{self, ConnState};
use crate::state::chat::Chat;
use crate::{api, testid};
use leptos::prelude::*;
use protocol::{Feed, Transport, TransportSettings, CHOOSABLE_FEEDS};

pub(crate) fn state_text(state: &ConnState) -> String {
    match state {
        ConnState::Connecting => "connecting…".into(),
        ConnState::Connected => "live".into(),
        ConnState::Reconnecting {
            attempt,
            retry_in_ms,
        } => {
            format!(
                "reconnecting (attempt {attempt}, in {:.1} s)",
                *retry_in_ms as f64 / 1000.0
            )
        }
        ConnState::Offline => "offline, waiting for the network".into(),
        ConnState::Stopped(reason) => format!("stopped: {reason}"),
    }
}

pub(crate) fn state_class(state: &ConnState) -> &'static str {
    match state {
        ConnState::Connected => "ok",
        ConnState::Connecting | ConnState::Reconnecting { .. } => "warn",
        _ => "bad",
    }
}

fn feed_label(feed: Feed) -> &'static str {
    match feed {
        Feed::Chat => "Chat",
        Feed::Notifications => "Notifications",
        Feed::Jobs => "Jobs",
        Feed::Control => "Control",
    }
}

/// Chooses the transport of one feed: my choice, with what an admin forced or switched off.
#[component]
pub fn TransportPicker(
    feed: Feed,
    /// Without the inspector next to it (where the full readout is shown anyway).
    #[prop(optional)]
    bare: bool,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let settings = chat.live.settings;
    let chosen = move || {
        settings.with(|s| {
            s.as_ref().map(|s| match feed {
                Feed::Chat => s.chat,
                Feed::Notifications => s.notifications,
                _ => s.jobs,
            })
        })
    };
    let forced = move || settings.with(|s| s.as_ref().and_then(|s| s.overrides.get(feed)));
    // On a fallback for now (the preferred transport failed here): what is really in use.
    let for_now = move || {
        chat.live
            .feed(feed)
            .filter(|s| s.transport != s.preferred)
            .map(|s| s.transport)
    };
    let on_change = move |ev: leptos::ev::Event| {
        let Ok(t) = event_target_value(&ev).parse::<Transport>() else {
            return;
        };
        let body = serde_json::json!({ feed.as_str(): t });
        leptos::task::spawn_local(async move {
            match api::put::<_, TransportSettings>("/api/me/transports", &body).await {
                Ok(settings) => live::apply_settings(settings),
                Err(e) => chat.notify(e.message),
            }
        });
    };
    view! {
        <span class="picker">
            <select
                aria-label=format!("{} transport", feed_label(feed))
                on:change=on_change
                data-testid=format!("transport-{}", feed.as_str())
            >
                {Transport::ALL
                    .into_iter()
                    .map(|t| {
                        let off = move || settings.with(|s| s.as_ref().is_some_and(|s| !s.enabled.enabled(t)));
                        view! {
                            <option value=t.as_str() selected=move || chosen() == Some(t)>
                                {move || if off() { format!("{} (off)", t.label()) } else { t.label().to_string() }}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            {move || forced().map(|t| view! { <span class="tag" title="Set by an administrator">{format!("admin: {}", t.label())}</span> })}
            {move || for_now().map(|t| view! {
                <span class="tag for-now" title="The chosen transport failed here; it is tried again by itself" data-testid=format!("transport-{}-in-use", feed.as_str())>
                    {format!("using {} for now", t.label())}
                </span>
            })}
            {(!bare).then(|| view! { <Inspector feed /> })}
        </span>
    }
}

/// A latency sparkline: the last events' commit-to-screen latency, oldest on the left, scaled
/// to the largest shown (its value is in the title).
#[component]
pub fn Sparkline(
    values: Vec<f64>,
    #[prop(default = 120.0)] w: f64,
    #[prop(default = 28.0)] h: f64,
) -> impl IntoView {
    let max = values.iter().copied().fold(0.0f64, f64::max).max(1.0);
    let n = values.len();
    let step = if n > 1 {
        w / (live::SPARK_SAMPLES - 1) as f64
    } else {
        0.0
    };
    let x0 = w - step * n.saturating_sub(1) as f64;
    let points = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                x0 + i as f64 * step,
                h - 2.0 - (v / max) * (h - 4.0)
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let label = if n == 0 {
        "no live events yet".to_string()
    } else {
        format!(
            "last {}, up to {max:.1} ms",
            protocol::count(n as i64, "event", "events")
        )
    };
    let title = label.clone();
    view! {
        <svg class="spark" viewBox=format!("0 0 {w} {h}") width=w height=h role="img" aria-label=label>
            <title>{title}</title>
            <line x1="0" x2=w y1=h - 1.0 y2=h - 1.0 class="base" />
            {(n > 0).then(|| view! { <polyline points=points /> })}
        </svg>
    }
}

/// A latency for display: one decimal under 10 ms, "–" when there is none.
pub(crate) fn fmt_latency(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(ms) if ms < 10.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{ms:.0} ms"),
    }
}

/// The transport inspector of one feed: transport and state, latency sparkline, requests per
/// minute, bytes per event, empty-poll ratio, reconnects, and the integrity badge.
#[component]
pub fn FeedReadout(
    feed: Feed,
    /// Inside an inspector popover (test id `inspector-readout-…`, so pages that also show the
    /// full readout have one `readout-…`).
    #[prop(optional)]
    popover: bool,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let stats = move || chat.live.feed(feed);
    let testid = format!(
        "{}readout-{}",
        if popover { "inspector-" } else { "" },
        feed.as_str()
    );
    view! {
        <dl class="readout" data-testid=testid>
            {move || match stats() {
                None => view! { <dt>"state"</dt><dd>"starting…"</dd> }.into_any(),
                Some(s) => {
                    let faults = s.integrity_faults();
                    view! {
                        <dt>"via"</dt><dd class=format!("t-{}", s.transport.as_str())>{s.transport.label()}</dd>
                        <dt>"state"</dt><dd class=state_class(&s.state)>{state_text(&s.state)}</dd>
                        <dt>"latency"</dt>
                        <dd class="spark-cell" data-testid="latency">
                            <Sparkline values=s.latencies.clone() w=88.0 h=22.0 />
                            <span>{format!("p50 {}", fmt_latency(s.latency_p50()))}</span>
                        </dd>
                        <dt>"requests"</dt><dd data-testid="requests">{format!("{} ({:.0}/min)", s.requests, s.requests_per_min())}</dd>
                        <dt>"bytes / event"</dt><dd data-testid="bytes-per-event">{s.bytes_per_event().map_or("–".into(), |b| format!("{b:.0} B"))}</dd>
                        <dt>"empty answers"</dt><dd data-testid="empty">{match s.empty_ratio() {
                            Some(r) => format!("{} ({:.0}%)", s.empty, r * 100.0),
                            None => "– (pushed)".into(),
                        }}</dd>
                        <dt>"reconnects"</dt><dd data-testid="reconnects">{s.reconnects}</dd>
                        <dt>"events"</dt><dd data-testid="received">{s.received}</dd>
                        <dt>"last id"</dt><dd>{s.last_id.map_or("–".to_string(), |i| format!("#{i}"))}</dd>
                        <dt>"integrity"</dt>
                        <dd data-testid="integrity" class=if faults == 0 { "ok" } else { "bad" }>
                            {if faults == 0 { "✓ no gaps, no duplicates".to_string() } else { format!("⚠ {}, {}", protocol::count(s.gaps as i64, "gap", "gaps"), protocol::count(s.dup_shown as i64, "duplicate", "duplicates")) }}
                            <span class="visually-hidden" data-testid="gaps">{s.gaps}</span>
                        </dd>
                        <dt>"overlap dropped"</dt><dd data-testid="duplicates" title="Events that arrived twice while a switch had two connections open, dropped before the view">{s.duplicates}</dd>
                    }
                    .into_any()
                }
            }}
        </dl>
    }
}

/// Next to a feed's picker: its latency sparkline, p50 and integrity at a glance; opens the
/// full inspector.
#[component]
pub fn Inspector(feed: Feed) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let stats = move || chat.live.feed(feed);
    let details = NodeRef::<leptos::html::Details>::new();
    let summary = NodeRef::<leptos::html::Summary>::new();
    let is_open = move || {
        details
            .get_untracked()
            .is_some_and(|d| d.has_attribute("open"))
    };
    let close = move || {
        if let Some(d) = details.get_untracked() {
            let _ = d.remove_attribute("open");
        }
    };
    crate::dismiss::dismiss_on_escape_or_outside(
        is_open,
        close,
        move || {
            details
                .get_untracked()
                .map(web_sys::Element::from)
                .into_iter()
                .collect()
        },
        move || summary.get_untracked(),
    );
    // Escape inside closes this popover only, not the panel around it.
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" && is_open() {
            ev.stop_propagation();
            close();
            if let Some(s) = summary.get_untracked() {
                let _ = s.focus();
            }
        }
    };
    view! {
        <details class="inspector" node_ref=details on:keydown=on_keydown data-testid=format!("inspector-{}", feed.as_str())>
            <summary node_ref=summary title="How this feed's transport behaves">
                {move || stats().map(|s| view! {
                    <Sparkline values=s.latencies.clone() w=48.0 h=16.0 />
                    <span class="p50">{fmt_latency(s.latency_p50())}</span>
                    <span class=if s.integrity_faults() == 0 { "ok" } else { "bad" }>
                        {if s.integrity_faults() == 0 { "✓" } else { "⚠" }}
                    </span>
                })}
                <span class="visually-hidden">"Transport inspector"</span>
            </summary>
            <div class="inspector-body">
                <FeedReadout feed popover=true />
            </div>
        </details>
    }
}

/// Admins only: switch a transport off (or on) for everyone; clients move by themselves.
#[component]
pub fn GlobalSwitches() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let settings = chat.live.settings;
    let toggle = move |t: Transport, on: bool| {
        let body = serde_json::json!({ t.as_str(): on });
        leptos::task::spawn_local(async move {
            match api::put::<_, protocol::Switches>("/api/admin/transports", &body).await {
                // The switch's control event refreshes everyone's settings, mine included.
                Ok(_) => {}
                Err(e) => chat.notify(e.message),
            }
        });
    };
    view! {
        <fieldset class="switches" data-testid="global-switches">
            <legend>"For everyone (admin)"</legend>
            {Transport::ALL
                .into_iter()
                .map(|t| {
                    let on = move || settings.with(|s| s.as_ref().is_none_or(|s| s.enabled.enabled(t)));
                    view! {
                        <label class="check">
                            <input
                                type="checkbox"
                                prop:checked=on
                                on:change=move |ev| toggle(t, event_target_checked(&ev))
                                data-testid=format!("switch-{}", t.as_str())
                            />
                            <span class=format!("t-{}", t.as_str())>{t.label()}</span>
                        </label>
                    }
                })
                .collect_view()}
        </fieldset>
    }
}

/// Settings: every feed's transport picker and readout side by side, in a drawer over the right
/// of the page (the chat keeps its size). Escape, a press outside or × closes it; focus goes back
/// to the "Transports" button.
#[component]
pub fn TransportSettingsPanel(
    open: RwSignal<bool>,
    opener: NodeRef<leptos::html::Button>,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let panel = NodeRef::<leptos::html::Section>::new();
    let focus_opener = move || {
        if let Some(el) = opener.get_untracked() {
            let _ = el.focus();
        }
    };
    crate::dismiss::dismiss_on_escape_or_outside(
        move || open.get_untracked(),
        move || open.set(false),
        move || {
            [
                panel.get_untracked().map(web_sys::Element::from),
                opener.get_untracked().map(web_sys::Element::from),
            ]
            .into_iter()
            .flatten()
            .collect()
        },
        move || opener.get_untracked().map(web_sys::HtmlElement::from),
    );
    // Opened: focus moves into the drawer, so the keyboard is where the eyes are.
    Effect::new(move |_| {
        if let Some(el) = panel.get() {
            let _ = el.focus();
        }
    });
    let is_admin = chat.me.with_value(|m| m.is_admin);
    let sign_out_everywhere = move |_| {
        leptos::task::spawn_local(async move {
            let _ = api::post_empty("/api/auth/logout-everywhere").await;
            let _ = window().location().set_href("/login");
        });
    };
    view! {
        <Show when=move || open.get()>
            <section class="settings" role="dialog" aria-labelledby="settings-title" tabindex="-1" node_ref=panel data-testid="transport-settings">
                <div class="panel-head">
                    <h2 id="settings-title">"Live transports"</h2>
                    <button class="link" on:click=move |_| { open.set(false); focus_opener(); } aria-label="Close settings" data-testid=testid::CLOSE_SETTINGS>"×"</button>
                </div>
                <p class="muted">
                    "Each feed rides one transport. Switching is live: the new connection starts from the last event you saw, so nothing is lost or shown twice."
                </p>
                <p class="muted" data-testid="clock-offset">
                    {move || match chat.live.clock.get() {
                        Some(c) => format!("Latency is commit to screen, on the server's clock: this tab's clock is {:+.1} ms off (±{:.1} ms).", -c.offset_ms, c.rtt_ms / 2.0),
                        None => "Latency is commit to screen, once this tab has measured its clock offset.".to_string(),
                    }}
                </p>
                <div class="feeds">
                    {CHOOSABLE_FEEDS
                        .into_iter()
                        .map(|feed| view! {
                            <div class="feed">
                                <h3>{feed_label(feed)}</h3>
                                <TransportPicker feed bare=true />
                                <FeedReadout feed />
                            </div>
                        })
                        .collect_view()}
                </div>
                {is_admin.then(|| view! { <GlobalSwitches /> })}
                <div class="sessions">
                    <h3>"Sessions"</h3>
                    <p class="muted">"Signed in on another device you no longer use? This signs you out of every session, this one included, and closes their live connections."</p>
                    <button class="link" on:click=sign_out_everywhere data-testid=testid::SIGN_OUT_EVERYWHERE>
                        "Sign out everywhere"
                    </button>
                </div>
            </section>
        </Show>
    }
}
