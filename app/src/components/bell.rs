//! The bell with its unread badge and the notifications panel it opens, and the toasts that
//! show new notifications while the tab is visible.

use crate::components::transports::TransportPicker;
use crate::state::activity::DESKTOP_KEY;
use crate::state::chat::Chat;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use protocol::Feed;

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
