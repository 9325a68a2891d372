//! The admin console: every user's transports (with overrides), the global switches, poll
//! timing, announcements, the audit log, and the live comparison of the transports (the
//! server's meters, refreshed every second).

use crate::api;
use crate::chat::{Chat, GlobalSwitches};
use leptos::prelude::*;
use protocol::{Feed, Transport, CHOOSABLE_FEEDS};
use serde_json::Value;

/// How often the comparison table refreshes.
const REFRESH_MS: u64 = 1_000;

#[component]
pub fn AdminPage() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let users = RwSignal::new(Vec::<Value>::new());
    let audit = RwSignal::new(Vec::<Value>::new());
    let metrics = RwSignal::new(Value::Null);
    let reload = move || {
        leptos::task::spawn_local(async move {
            if let Ok(v) = api::get::<Value>("/api/admin/users").await {
                users.set(v["users"].as_array().cloned().unwrap_or_default());
            }
            if let Ok(v) = api::get::<Value>("/api/admin/audit?limit=20").await {
                audit.set(v["entries"].as_array().cloned().unwrap_or_default());
            }
        });
    };
    let fetch_metrics = move || {
        leptos::task::spawn_local(async move {
            if let Ok(v) = api::get::<Value>("/api/admin/metrics").await {
                let _ = metrics.try_set(v);
            }
        });
    };
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            reload();
            fetch_metrics();
            let tick = set_interval_with_handle(
                fetch_metrics,
                std::time::Duration::from_millis(REFRESH_MS),
            );
            on_cleanup(move || {
                if let Ok(t) = tick {
                    t.clear();
                }
            });
        }
    });
    let set_override = move |user_id: String, feed: Feed, value: String| {
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
                    chat.notify(format!("Announced to {} people.", v["recipients"]));
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
                <h2 id="admin-title">"Admin console"</h2>
            </header>
            <div class="jobs-body">
                <h3>"Live comparison (last minute)"</h3>
                <MetricsTable metrics />
                <h3>"Transports for everyone"</h3>
                <GlobalSwitches />
                <PollSettings />
                <h3>"Users"</h3>
                <table class="grid" data-testid="admin-users">
                    <thead>
                        <tr>
                            <th scope="col">"User"</th>
                            {CHOOSABLE_FEEDS.into_iter().map(|f| view! { <th scope="col">{f.as_str()}</th> }).collect_view()}
                        </tr>
                    </thead>
                    <tbody>
                        {move || users.get().into_iter().map(|u| {
                            let id = u["id"].as_str().unwrap_or_default().to_string();
                            let name = u["username"].as_str().unwrap_or_default().to_string();
                            view! {
                                <tr data-testid="admin-user" data-username=name.clone()>
                                    <th scope="row">{name.clone()}</th>
                                    {CHOOSABLE_FEEDS.into_iter().map(|f| {
                                        let effective = u["transports"]["effective"][f.as_str()].as_str().unwrap_or_default().to_string();
                                        let forced = u["transports"]["overrides"][f.as_str()].as_str().unwrap_or_default().to_string();
                                        let id = id.clone();
                                        view! {
                                            <td>
                                                <span class=format!("t-{effective}")>{effective.replace('_', " ")}</span>
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
                <h3>"Announcement"</h3>
                <form class="side-form" on:submit=announce>
                    <input type="text" placeholder="Title" aria-label="Announcement title" maxlength="120"
                        prop:value=move || title.get() on:input=move |ev| title.set(event_target_value(&ev)) />
                    <textarea rows="2" placeholder="Text" aria-label="Announcement text"
                        prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
                    <button type="submit" class="primary">"Send to everyone"</button>
                </form>
                <h3>"Audit log"</h3>
                <ul class="audit" data-testid="audit-log">
                    {move || audit.get().into_iter().map(|e| view! {
                        <li>
                            <time>{crate::time::clock(e["at"].as_i64().unwrap_or(0), 0)}" UTC"</time>
                            " " <strong>{e["actor"]["username"].as_str().unwrap_or_default().to_string()}</strong>
                            " " {e["action"].as_str().unwrap_or_default().replace('_', " ")}
                            " " <code>{e["detail"].to_string()}</code>
                        </li>
                    }).collect_view()}
                </ul>
            </div>
        </section>
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
                    "p50" | "p99" | "max" => {
                        // The slowest feed of the transport.
                        let worst = Feed::ALL
                            .iter()
                            .filter_map(|f| v["feeds"][f.as_str()]["latency_ms"][key].as_f64())
                            .fold(0.0, f64::max);
                        format!("{worst:.1}")
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
