//! What a room's header opens: the member panel (who is in, with presence) and the room's
//! settings (its name and topic). Both are drawers that close on Escape, on a press outside, or
//! with their close button, and give focus back to what opened them.

use crate::components::field::{FieldError, TextField};
use crate::components::sidebar::PresenceDot;
use crate::state::chat::Chat;
use crate::{api, testid};
use leptos::prelude::*;
use protocol::{Room, RoomUpdate, UsernameBody};

/// Wires a drawer: Escape and a press outside close it, focus moves in when it opens.
fn drawer(
    open: RwSignal<bool>,
    panel: NodeRef<leptos::html::Section>,
    opener: NodeRef<leptos::html::Button>,
) {
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
    Effect::new(move |_| {
        if let Some(el) = panel.get() {
            let _ = el.focus();
        }
    });
}

fn close_and_refocus(open: RwSignal<bool>, opener: NodeRef<leptos::html::Button>) {
    open.set(false);
    if let Some(el) = opener.get_untracked() {
        let _ = el.focus();
    }
}

/// Who is in the room, online first, each with their presence in words as well as a dot.
#[component]
pub fn MembersPanel(
    room_id: String,
    open: RwSignal<bool>,
    opener: NodeRef<leptos::html::Button>,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let rid = StoredValue::new(room_id);
    let panel = NodeRef::<leptos::html::Section>::new();
    drawer(open, panel, opener);
    // Opened: fetch the list afresh; joins, leaves and renames keep it current while open.
    Effect::new(move |_| {
        if open.get() {
            leptos::task::spawn_local(chat.load_members(rid.get_value()));
        }
    });
    let me = chat.me_id();
    let members = move || {
        let presence = chat.presence.get();
        let mut list = chat
            .members
            .with(|m| m.get(&rid.get_value()).cloned())
            .unwrap_or_default();
        let rank = |id: &str| match presence.get(id).map(String::as_str) {
            Some("online") => 0,
            Some("idle") => 1,
            _ => 2,
        };
        list.sort_by(|a, b| {
            rank(&a.user.id).cmp(&rank(&b.user.id)).then_with(|| {
                a.user
                    .shown_name()
                    .to_lowercase()
                    .cmp(&b.user.shown_name().to_lowercase())
            })
        });
        list
    };
    let loaded = move || chat.members.with(|m| m.contains_key(&rid.get_value()));
    let count = move || {
        let n = chat
            .members
            .with(|m| m.get(&rid.get_value()).map(Vec::len))
            .unwrap_or(0);
        protocol::count(n as i64, "member", "members")
    };
    // Members invite people from here (a DM has no one to invite).
    let may_invite = move || {
        chat.room(&rid.get_value())
            .is_some_and(|r| r.is_member && r.dm_with.is_none())
    };
    let invitee = RwSignal::new(String::new());
    let invite_error = FieldError::new();
    let invite = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = UsernameBody {
            username: invitee.get_untracked(),
        };
        if body.username.trim().is_empty() {
            invite_error.show("Enter the username to invite.");
            return;
        }
        let id = rid.get_value();
        leptos::task::spawn_local(async move {
            match api::post::<_, ()>(&format!("/api/rooms/{id}/invite"), &body).await {
                Ok(()) => {
                    chat.notify_ok(format!("Invited {}.", body.username.trim()));
                    invitee.set(String::new());
                    invite_error.clear();
                }
                Err(e) => invite_error.show(e.message),
            }
        });
    };
    view! {
        <Show when=move || open.get()>
            <section class="settings members" role="dialog" aria-labelledby="members-title" tabindex="-1" node_ref=panel data-testid=testid::MEMBERS_PANEL>
                <div class="panel-head">
                    <h2 id="members-title">{move || if loaded() { count() } else { "Members".to_string() }}</h2>
                    <button class="link" on:click=move |_| close_and_refocus(open, opener) aria-label="Close the member list">"×"</button>
                </div>
                <Show when=may_invite>
                    <form class="side-form invite-form" on:submit=invite>
                        <TextField
                            id="invite"
                            label="Invite someone"
                            value=invitee
                            error=invite_error
                            testid=testid::INVITE_USERNAME
                            error_testid=testid::INVITE_ERROR
                            placeholder="Username"
                            autocapitalize="none"
                        >
                            <button type="submit" data-testid=testid::INVITE_SUBMIT>"Invite"</button>
                        </TextField>
                    </form>
                </Show>
                <Show when=move || !loaded()>
                    <p class="muted">"Loading members…"</p>
                </Show>
                <ul class="member-list">
                    {
                        let me = me.clone();
                        move || members().into_iter().map(|m| {
                            let is_me = m.user.id == me;
                            let shown = m.user.shown_name().to_string();
                            let handle = m.user.display_name.is_some().then(|| format!("@{}", m.user.username));
                            // In words too, not by the dot's colour alone.
                            let uid = m.user.id.clone();
                            let status = move || chat.presence.with(|p| p.get(uid.as_str()).cloned()).unwrap_or_else(|| "offline".into());
                            view! {
                                <li data-testid=testid::MEMBER data-username=m.user.username.clone()>
                                    <PresenceDot user_id=m.user.id.clone() />
                                    <span class="name">{shown}</span>
                                    {handle.map(|h| view! { <span class="muted handle">{h}</span> })}
                                    {is_me.then(|| view! { <span class="tag">"you"</span> })}
                                    <span class="muted status" aria-hidden="true">{status}</span>
                                </li>
                            }
                        }).collect_view()
                    }
                </ul>
            </section>
        </Show>
    }
}

/// The room's name and topic, for its members to change. A DM keeps its name: only its topic
/// shows.
#[component]
pub fn RoomSettingsPanel(
    room_id: String,
    open: RwSignal<bool>,
    opener: NodeRef<leptos::html::Button>,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let rid = StoredValue::new(room_id);
    let panel = NodeRef::<leptos::html::Section>::new();
    drawer(open, panel, opener);
    let room = Memo::new(move |_| chat.room(&rid.get_value()));
    let is_dm = move || room.get().is_some_and(|r| r.dm_with.is_some());
    let name = RwSignal::new(String::new());
    let topic = RwSignal::new(String::new());
    let name_error = FieldError::new();
    let topic_error = FieldError::new();
    // Opened: the fields start from the room as it is now.
    Effect::new(move |_| {
        if open.get() {
            if let Some(r) = room.get_untracked() {
                name.set(r.name);
                topic.set(r.topic);
            }
            name_error.clear();
            topic_error.clear();
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(current) = room.get_untracked() else {
            return;
        };
        let new_name = name.get_untracked();
        let new_topic = topic.get_untracked();
        if current.dm_with.is_none() {
            if let Err(m) = protocol::check_room_name(&new_name) {
                name_error.show(m);
                return;
            }
        }
        if let Err(m) = protocol::check_topic(&new_topic) {
            topic_error.show(m);
            return;
        }
        let body = RoomUpdate {
            name: (current.dm_with.is_none() && new_name.trim() != current.name)
                .then(|| new_name.trim().to_string()),
            topic: (new_topic.trim() != current.topic).then(|| new_topic.trim().to_string()),
        };
        if body.name.is_none() && body.topic.is_none() {
            close_and_refocus(open, opener);
            return;
        }
        let id = rid.get_value();
        leptos::task::spawn_local(async move {
            match api::patch::<_, Room>(&format!("/api/rooms/{id}"), &body).await {
                Ok(room) => {
                    chat.upsert_room(room);
                    chat.notify_ok("Room updated.");
                    close_and_refocus(open, opener);
                }
                Err(e) if e.code == "invalid_topic" => topic_error.show(e.message),
                Err(e) => name_error.show(e.message),
            }
        });
    };
    view! {
        <Show when=move || open.get()>
            <section class="settings room-settings" role="dialog" aria-labelledby="room-settings-title" tabindex="-1" node_ref=panel data-testid=testid::ROOM_SETTINGS>
                <div class="panel-head">
                    <h2 id="room-settings-title">"Room settings"</h2>
                    <button class="link" on:click=move |_| close_and_refocus(open, opener) aria-label="Close room settings">"×"</button>
                </div>
                <form class="stacked" on:submit=on_submit>
                    <Show when=move || !is_dm()>
                        <TextField
                            id="room-name"
                            label="Name"
                            value=name
                            error=name_error
                            testid=testid::ROOM_NAME_INPUT
                            error_testid=testid::ROOM_SETTINGS_ERROR
                            maxlength=protocol::MAX_ROOM_NAME_CHARS
                        />
                    </Show>
                    <TextField
                        id="room-topic"
                        label="Topic"
                        value=topic
                        error=topic_error
                        testid=testid::ROOM_TOPIC_INPUT
                        placeholder="What this room is about"
                        maxlength=protocol::MAX_TOPIC_CHARS
                    />
                    <p class="hint">"Everyone in the room sees a new name or topic at once."</p>
                    <button type="submit" class="primary" data-testid=testid::ROOM_SETTINGS_SAVE>"Save"</button>
                </form>
            </section>
        </Show>
    }
}
