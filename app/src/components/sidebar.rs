//! The sidebar: the room list (rooms, direct messages, other rooms) with presence dots and
//! unread badges, and the forms that create a room or open a direct message.

use crate::components::field::{FieldError, TextField};
use crate::routes::{nav_click, room_href};
use crate::state::chat::Chat;
use crate::{api, testid};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use protocol::{CreateRoom, Room, UserId, UsernameBody};

#[component]
pub fn RoomList() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let section = move |filter: fn(&Room) -> bool| {
        move || {
            chat.rooms
                .get()
                .into_iter()
                .filter(filter)
                .map(|room| view! { <RoomLink room /> })
                .collect_view()
        }
    };
    view! {
        <nav data-testid=testid::ROOM_LIST>
            <h3>"Rooms"</h3>
            <ul class="rooms">{section(|r| r.is_member && r.dm_with.is_none())}</ul>
            <h3>"Direct messages"</h3>
            <ul class="rooms">{section(|r| r.is_member && r.dm_with.is_some())}</ul>
            <h3>"Other rooms"</h3>
            <ul class="rooms">{section(|r| !r.is_member)}</ul>
            <Show when=move || !chat.rooms_loaded.get()>
                <p class="muted">"Loading rooms…"</p>
            </Show>
        </nav>
    }
}

/// A dot with its text equivalent: online, idle or offline.
#[component]
pub fn PresenceDot(user_id: UserId) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let status = Memo::new(move |_| {
        chat.presence
            .with(|p| p.get(user_id.as_str()).cloned())
            .unwrap_or_else(|| "offline".into())
    });
    view! {
        <span class=move || format!("presence {}", status.get()) title=move || status.get() data-testid="presence">
            <span class="sr-only">{move || status.get()}</span>
        </span>
    }
}

pub(crate) fn room_label(room: &Room) -> String {
    match &room.dm_with {
        Some(other) => format!("@{}", other.shown_name()),
        None => format!("# {}", room.name),
    }
}

#[component]
fn RoomLink(room: Room) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let id = room.id.clone();
    let active = Memo::new(move |_| chat.current.get().as_deref() == Some(id.as_str()));
    let unread = room.unread;
    let label = room_label(&room);
    let hint = if room.is_member {
        ""
    } else if room.private {
        "invited"
    } else {
        "join"
    };
    let href = room_href(&room.id);
    let on_click = nav_click(href.clone());
    view! {
        <li>
            <a
                href=href
                on:click=on_click
                class:active=move || active.get()
                class:unread={unread > 0}
                aria-current=move || if active.get() { Some("page") } else { None }
            >
                {room.dm_with.clone().map(|u| view! { <PresenceDot user_id=u.id /> })}
                <span class="name">{label}</span>
                {(room.private && room.dm_with.is_none()).then(|| view! { <span class="tag" title="Private">"private"</span> })}
                {(!hint.is_empty()).then(|| view! { <span class="tag">{hint}</span> })}
                {(unread > 0).then(|| view! {
                    <span class="badge">{unread}<span class="sr-only">" unread"</span></span>
                })}
            </a>
        </li>
    }
}

#[component]
pub fn NewRoomForm() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let name = RwSignal::new(String::new());
    let private = RwSignal::new(false);
    // What is wrong with the name, said under the field (which gets the focus).
    let error = FieldError::new();
    let navigate = use_navigate();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = CreateRoom {
            name: name.get_untracked(),
            private: private.get_untracked(),
        };
        if body.name.trim().is_empty() {
            error.show("A room needs a name.");
            return;
        }
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::post::<_, Room>("/api/rooms", &body).await {
                Ok(room) => {
                    // The next room starts from the defaults again: public, no name.
                    name.set(String::new());
                    private.set(false);
                    error.clear();
                    let id = room.id.clone();
                    chat.upsert_room(room);
                    navigate(&room_href(&id), Default::default());
                }
                Err(e) => error.show(e.message),
            }
        });
    };
    view! {
        <form class="side-form" on:submit=on_submit>
            <TextField
                id="new-room"
                label="New room"
                value=name
                error
                testid=testid::NEW_ROOM_NAME
                error_testid=testid::NEW_ROOM_ERROR
                placeholder="Room name"
                maxlength=80
            >
                <button type="submit" data-testid=testid::NEW_ROOM_SUBMIT>"Create"</button>
            </TextField>
            <label class="check">
                <input
                    type="checkbox"
                    prop:checked=move || private.get()
                    on:change=move |ev| private.set(event_target_checked(&ev))
                    data-testid=testid::NEW_ROOM_PRIVATE
                />
                "Private (invite only)"
            </label>
        </form>
    }
}

#[component]
pub fn DmForm() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let who = RwSignal::new(String::new());
    let error = FieldError::new();
    let navigate = use_navigate();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = UsernameBody {
            username: who.get_untracked(),
        };
        if body.username.trim().is_empty() {
            error.show("Enter a username.");
            return;
        }
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::post::<_, Room>("/api/dms", &body).await {
                Ok(room) => {
                    who.set(String::new());
                    error.clear();
                    let id = room.id.clone();
                    chat.upsert_room(room);
                    navigate(&room_href(&id), Default::default());
                }
                Err(e) => error.show(e.message),
            }
        });
    };
    view! {
        <form class="side-form" on:submit=on_submit>
            <TextField
                id="dm"
                label="Message someone"
                value=who
                error
                testid=testid::DM_USERNAME
                error_testid=testid::DM_ERROR
                placeholder="Username"
                autocapitalize="none"
            >
                <button type="submit" data-testid=testid::DM_SUBMIT>"Open"</button>
            </TextField>
        </form>
    }
}
