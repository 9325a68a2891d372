//! Notifications and jobs in the browser: the bell with its unread badge and panel, toasts,
//! opt-in desktop notifications, the unread total in the page title, and the jobs page with its
//! progress bars. State arrives over the `notifications` and `jobs` feeds (whichever transport
//! each rides) on top of a first load over REST.

use crate::api;
use crate::chat::{Chat, FeedReadout, TransportPicker};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use protocol::{kind, Event, Feed, Job, JobList, Notification, NotificationList};
use std::collections::HashSet;

/// How long a toast stays (paused while the pointer is on it).
const TOAST_MS: u64 = 6_000;
/// Toasts shown at once; older ones give way.
const MAX_TOASTS: usize = 3;
/// localStorage key remembering that the user asked for desktop notifications.
const DESKTOP_KEY: &str = "switchboard.desktop-notifications";

#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    pub note: Notification,
    pub hovered: bool,
}

/// Notifications and jobs state (all signals, Copy).
#[derive(Clone, Copy)]
pub struct Activity {
    pub notes: RwSignal<Vec<Notification>>,
    pub unread: RwSignal<i64>,
    pub toasts: RwSignal<Vec<Toast>>,
    pub panel_open: RwSignal<bool>,
    pub jobs: RwSignal<Vec<Job>>,
    pub cancelling: RwSignal<HashSet<String>>,
    /// Ticks every second, for "updated Ns ago".
    pub clock: RwSignal<i64>,
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            notes: RwSignal::new(Vec::new()),
            unread: RwSignal::new(0),
            toasts: RwSignal::new(Vec::new()),
            panel_open: RwSignal::new(false),
            jobs: RwSignal::new(Vec::new()),
            cancelling: RwSignal::new(HashSet::new()),
            clock: RwSignal::new(crate::time::now_ms()),
        }
    }

    pub async fn load(self) {
        if let Ok(list) = api::get::<NotificationList>("/api/notifications?limit=50").await {
            self.notes.set(list.notifications);
            self.unread.set(list.unread);
        }
        if let Ok(list) = api::get::<JobList>("/api/jobs").await {
            self.jobs.set(list.jobs);
        }
    }

    /// Applies an event of the notifications or jobs feed; false if it was neither.
    pub fn apply(self, ev: &Event) -> bool {
        match (ev.feed, ev.kind.as_str()) {
            (Feed::Notifications, kind::NOTIFICATION) => {
                let Ok(note) = serde_json::from_value::<Notification>(ev.data.clone()) else {
                    return true;
                };
                let mut fresh = false;
                self.notes.update(|n| {
                    if !n.iter().any(|x| x.id == note.id) {
                        n.insert(0, note.clone());
                        fresh = true;
                    }
                });
                if fresh && !note.read {
                    self.unread.update(|u| *u += 1);
                    if document().hidden() {
                        desktop_notification(&note);
                    } else if !about_open_room(&note) {
                        // (A mention in the room on screen is seen where it lands; opening the
                        // room reads it.)
                        self.toast(note);
                    }
                }
                true
            }
            (Feed::Notifications, kind::READ) => {
                // Marked read here or in another tab: the server has the true count.
                leptos::task::spawn_local(self.reload_notes());
                true
            }
            (Feed::Jobs, kind::JOB) => {
                let Ok(job) = serde_json::from_value::<Job>(ev.data.clone()) else {
                    return true;
                };
                if job.is_finished() {
                    self.cancelling.update(|c| {
                        c.remove(&job.id);
                    });
                }
                self.upsert_job(job);
                true
            }
            _ => false,
        }
    }

    pub fn upsert_job(self, job: Job) {
        self.jobs
            .update(|jobs| match jobs.iter_mut().find(|j| j.id == job.id) {
                // Snapshots can arrive twice during a switch; never go back to an older one.
                Some(j) if j.updated_at <= job.updated_at => *j = job,
                Some(_) => {}
                None => jobs.insert(0, job),
            });
    }

    async fn reload_notes(self) {
        if let Ok(list) = api::get::<NotificationList>("/api/notifications?limit=50").await {
            self.notes.set(list.notifications);
            self.unread.set(list.unread);
        }
    }

    fn toast(self, note: Notification) {
        let id = note.id.clone();
        self.toasts.update(|t| {
            t.push(Toast {
                note,
                hovered: false,
            });
            while t.len() > MAX_TOASTS {
                t.remove(0);
            }
        });
        self.expire_toast(id, TOAST_MS);
    }

    fn expire_toast(self, id: String, after_ms: u64) {
        let toasts = self.toasts;
        set_timeout(
            move || {
                let hovered =
                    toasts.with_untracked(|t| t.iter().any(|x| x.note.id == id && x.hovered));
                if hovered {
                    self.expire_toast(id, 1_000);
                } else {
                    let _ = toasts.try_update(|t| t.retain(|x| x.note.id != id));
                }
            },
            std::time::Duration::from_millis(after_ms),
        );
    }

    /// Marks notifications read (all when `ids` is None).
    pub fn mark_read(self, ids: Option<Vec<String>>) {
        let body = match &ids {
            Some(ids) => serde_json::json!({ "ids": ids }),
            None => serde_json::json!({ "all": true }),
        };
        self.notes.update(|n| {
            for x in n.iter_mut() {
                if ids.as_ref().is_none_or(|ids| ids.contains(&x.id)) {
                    x.read = true;
                }
            }
        });
        leptos::task::spawn_local(async move {
            let _ = api::post::<_, ()>("/api/notifications/read", &body).await;
            self.reload_notes().await;
        });
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// What a notification is, in words.
fn note_kind_label(kind: &str) -> &'static str {
    match kind {
        "mention" => "Mention",
        "dm" => "Direct message",
        "invite" => "Invite",
        "job_finished" => "Job finished",
        "job_failed" => "Job failed",
        "announcement" => "Announcement",
        _ => "Notification",
    }
}

/// Whether `note` points into the room this tab shows (its link is `/rooms/{id}#…`).
fn about_open_room(note: &Notification) -> bool {
    let Ok(path) = window().location().pathname() else {
        return false;
    };
    path.starts_with("/rooms/") && note.link.split('#').next() == Some(path.as_str())
}

fn desktop_notification(note: &Notification) {
    let wanted = window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(DESKTOP_KEY).ok().flatten())
        .is_some();
    if !wanted || web_sys::Notification::permission() != web_sys::NotificationPermission::Granted {
        return;
    }
    let options = web_sys::NotificationOptions::new();
    options.set_body(&note.body);
    options.set_tag(&note.id);
    let _ = web_sys::Notification::new_with_options(&note.title, &options);
}

/// The bell: unread badge, and the panel it opens.
#[component]
pub fn Bell() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let act = chat.activity;
    let label = move || {
        let n = act.unread.get();
        if n == 0 {
            "Notifications, none unread".to_string()
        } else {
            format!("Notifications, {n} unread")
        }
    };
    // Escape or a press outside closes the panel; focus goes back to the bell.
    let wrap = NodeRef::<leptos::html::Div>::new();
    let bell = NodeRef::<leptos::html::Button>::new();
    crate::dismiss::dismiss_on_escape_or_outside(
        move || act.panel_open.get_untracked(),
        move || act.panel_open.set(false),
        move || {
            wrap.get_untracked()
                .map(web_sys::Element::from)
                .into_iter()
                .collect()
        },
        move || bell.get_untracked().map(web_sys::HtmlElement::from),
    );
    view! {
        <div class="bell-wrap" node_ref=wrap>
            <button
                class="bell"
                node_ref=bell
                aria-label=label
                aria-expanded=move || act.panel_open.get().to_string()
                on:click=move |_| act.panel_open.update(|o| *o = !*o)
                data-testid="bell"
            >
                <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
                    <path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z" />
                </svg>
                <Show when=move || { act.unread.get() > 0 }>
                    <span class="badge" data-testid="bell-badge">{move || act.unread.get()}</span>
                </Show>
            </button>
            <Show when=move || act.panel_open.get()>
                <NotificationPanel />
            </Show>
        </div>
    }
}

#[component]
fn NotificationPanel() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let act = chat.activity;
    let navigate = use_navigate();
    let desktop_state = RwSignal::new(String::new());
    // Opened: focus moves into the panel.
    let panel = NodeRef::<leptos::html::Section>::new();
    Effect::new(move |_| {
        if let Some(el) = panel.get() {
            let _ = el.focus();
        }
    });
    let enable_desktop = move |_| {
        // Asked only from this click, as browsers expect.
        if let Ok(promise) = web_sys::Notification::request_permission() {
            leptos::task::spawn_local(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
                let granted =
                    web_sys::Notification::permission() == web_sys::NotificationPermission::Granted;
                if granted {
                    if let Some(s) = window().local_storage().ok().flatten() {
                        let _ = s.set_item(DESKTOP_KEY, "1");
                    }
                    desktop_state
                        .set("Desktop notifications are on while this tab is hidden.".into());
                } else {
                    desktop_state.set("The browser did not allow desktop notifications.".into());
                }
            });
        }
    };
    view! {
        <section class="panel notes" role="dialog" aria-label="Notifications" tabindex="-1" node_ref=panel data-testid="notification-panel">
            <div class="panel-head">
                <h2>"Notifications"</h2>
                <button class="link" on:click=move |_| act.mark_read(None) data-testid="mark-all-read">
                    "Mark all read"
                </button>
            </div>
            <div class="panel-transport">
                "via " <TransportPicker feed=Feed::Notifications />
            </div>
            <ul class="note-list">
                {move || {
                    let notes = act.notes.get();
                    if notes.is_empty() {
                        return view! { <li class="muted empty-note">"Nothing yet."</li> }.into_any();
                    }
                    notes
                        .into_iter()
                        .map(|n| {
                            let navigate = navigate.clone();
                            let (id, link) = (n.id.clone(), n.link.clone());
                            let open = move |_| {
                                act.mark_read(Some(vec![id.clone()]));
                                act.panel_open.set(false);
                                navigate(&link, Default::default());
                            };
                            view! {
                                <li class:unread=!n.read data-testid="notification">
                                    <button class="note" on:click=open>
                                        <span class="note-title">{n.title.clone()}</span>
                                        <span class="note-body">{n.body.clone()}</span>
                                        <span class="note-kind">
                                            {note_kind_label(&n.kind)} " · "
                                            <time
                                                datetime=crate::time::iso(n.created_at)
                                                title={
                                                    let off = crate::time::browser_offset_minutes();
                                                    format!("{} {}", crate::time::day_label(n.created_at, act.clock.get_untracked(), off), crate::time::clock(n.created_at, off))
                                                }
                                                data-testid="notification-time"
                                            >
                                                {move || crate::time::relative(n.created_at, act.clock.get(), crate::time::browser_offset_minutes())}
                                            </time>
                                        </span>
                                    </button>
                                </li>
                            }
                        })
                        .collect_view()
                        .into_any()
                }}
            </ul>
            <footer>
                <button class="link" on:click=enable_desktop>"Enable desktop notifications"</button>
                <span class="muted">{move || desktop_state.get()}</span>
            </footer>
        </section>
    }
}

/// New notifications while the tab is visible.
#[component]
pub fn Toasts() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let act = chat.activity;
    let navigate = use_navigate();
    view! {
        <div class="toasts" role="status" aria-live="polite" data-testid="toasts">
            <For each=move || act.toasts.get() key=|t| t.note.id.clone() let:t>
                {
                    let navigate = navigate.clone();
                    let (id, link) = (t.note.id.clone(), t.note.link.clone());
                    let (hover_id, leave_id) = (id.clone(), id.clone());
                    let open = move |_| {
                        act.mark_read(Some(vec![id.clone()]));
                        act.toasts.update(|ts| ts.retain(|x| x.note.id != id));
                        navigate(&link, Default::default());
                    };
                    view! {
                        <div
                            class="toast"
                            data-testid="toast"
                            on:mouseenter=move |_| act.toasts.update(|ts| ts.iter_mut().filter(|x| x.note.id == hover_id).for_each(|x| x.hovered = true))
                            on:mouseleave=move |_| act.toasts.update(|ts| ts.iter_mut().filter(|x| x.note.id == leave_id).for_each(|x| x.hovered = false))
                        >
                            <button class="note" on:click=open>
                                <span class="note-title">{t.note.title.clone()}</span>
                                <span class="note-body">{t.note.body.clone()}</span>
                            </button>
                        </div>
                    }
                }
            </For>
        </div>
    }
}

fn job_label(kind: &str) -> &'static str {
    match kind {
        "export_room" => "Room export",
        "demo" => "Demo",
        _ => "Job",
    }
}

fn ago(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// The jobs page: start a demo, watch progress, cancel, download exports.
#[component]
pub fn JobsPage() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let act = chat.activity;
    let steps = RwSignal::new("10".to_string());
    let step_ms = RwSignal::new("500".to_string());
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = serde_json::json!({
            "kind": "demo",
            "steps": steps.get_untracked().trim().parse::<i64>().unwrap_or(0),
            "step_ms": step_ms.get_untracked().trim().parse::<u64>().unwrap_or(0),
        });
        leptos::task::spawn_local(async move {
            match api::post::<_, Job>("/api/jobs", &body).await {
                Ok(job) => act.upsert_job(job),
                Err(e) => chat.notify(e.message),
            }
        });
    };
    view! {
        <section class="jobs-page" aria-labelledby="jobs-title" data-testid="jobs-page">
            <header class="room-head">
                <h1 id="jobs-title">"Jobs"</h1>
                <div class="room-actions">
                    <span class="via">"progress via " <TransportPicker feed=Feed::Jobs bare=true /></span>
                </div>
            </header>
            <div class="jobs-body">
                <form class="demo-form" on:submit=start>
                    <label>"Demo job: "
                        <input type="number" min="1" max="1000" aria-label="Steps" prop:value=move || steps.get()
                            on:input=move |ev| steps.set(event_target_value(&ev)) data-testid="demo-steps" />
                    </label>
                    <label>" steps of "
                        <input type="number" min="10" max="60000" step="10" aria-label="Milliseconds per step" prop:value=move || step_ms.get()
                            on:input=move |ev| step_ms.set(event_target_value(&ev)) data-testid="demo-step-ms" />
                    </label>
                    " ms "
                    <button type="submit" class="primary" data-testid="start-demo">"Start"</button>
                </form>
                <p class="muted">"Export a room from its header. Progress arrives over the jobs feed's transport; with short polling it shows in steps."</p>
                <FeedReadout feed=Feed::Jobs />
                <ul class="job-list">
                    <For each=move || act.jobs.get() key=|j| format!("{}:{}:{}", j.id, j.updated_at, j.state) let:job>
                        <JobRow job />
                    </For>
                </ul>
                <Show when=move || act.jobs.with(|j| j.is_empty())>
                    <p class="muted">"No jobs yet."</p>
                </Show>
            </div>
        </section>
    }
}

#[component]
fn JobRow(job: Job) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let act = chat.activity;
    let id = job.id.clone();
    let cancelling = {
        let id = id.clone();
        Memo::new(move |_| act.cancelling.with(|c| c.contains(&id)))
    };
    let cancel = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            act.cancelling.update(|c| {
                c.insert(id.clone());
            });
            leptos::task::spawn_local(async move {
                if let Err(e) = api::post_empty(&format!("/api/jobs/{id}/cancel")).await {
                    act.cancelling.update(|c| {
                        c.remove(&id);
                    });
                    chat.notify(e.message);
                }
            });
        }
    };
    let state_text = match job.state.as_str() {
        "queued" => "Queued",
        "running" => "Running",
        "done" => "Done",
        "failed" => "Failed",
        "cancelled" => "Cancelled",
        _ => "Unknown",
    };
    let (one, many) = if job.kind == "export_room" {
        ("message", "messages")
    } else {
        ("step", "steps")
    };
    let count = format!(
        "{} / {} {}",
        job.done,
        job.total,
        protocol::plural(job.total, one, many)
    );
    // "Export of #lobby" rather than a kind of job.
    let title = match (job.kind.as_str(), &job.room_name) {
        ("export_room", Some(room)) => format!("Export of #{room}"),
        (kind, _) => job_label(kind).to_string(),
    };
    let updated_at = job.updated_at;
    let finished = job.is_finished();
    let eta = job
        .eta_ms
        .map(|ms| format!("about {} s left", (ms + 999) / 1000));
    view! {
        <li class=format!("job {}", job.state) data-testid="job" data-state=job.state.clone() id=format!("job-{}", job.id)>
            <div class="job-head">
                <strong data-testid="job-title">{title.clone()}</strong>
                <span class=format!("pill {}", job.state) data-testid="job-state">
                    {move || if cancelling.get() && !finished { "Cancelling…" } else { state_text }}
                </span>
                <span class="muted updated" title="Time since the last update reached this page">
                    {move || format!("updated {}", ago(act.clock.get() - updated_at))}
                </span>
            </div>
            <progress max="1" value=job.progress aria-label=format!("{title} progress")></progress>
            <div class="job-foot">
                <span data-testid="job-count">{count}</span>
                {eta.map(|e| view! { <span class="muted">{e}</span> })}
                <span class=if job.state == "failed" { "error" } else { "muted" }>{job.message.clone()}</span>
                {job.result_url.clone().map(|url| view! { <a href=url download data-testid="job-download">"Download"</a> })}
                {(!finished).then(|| view! {
                    <button class="link" on:click=cancel.clone() disabled=move || cancelling.get() data-testid="job-cancel">"Cancel"</button>
                })}
            </div>
        </li>
    }
}
