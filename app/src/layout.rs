//! The signed-in pages' frame: the top bar (connection, jobs tray, bell, transports, sign out),
//! the notice line, the sidebar, and the page in the middle. It makes the chat screen's state
//! and shares it through context, so moving between pages keeps it and its live connection.

use crate::components::bell::{Bell, Toasts};
use crate::components::profile::ProfilePanel;
use crate::components::search::SearchPanel;
use crate::components::sidebar::{DmForm, NewRoomForm, RoomList};
use crate::components::transports::{state_class, state_text, TransportSettingsPanel};
use crate::components::viewer::ImageViewer;
use crate::routes::{nav_click, room_in_path, Page};
use crate::state::chat::Chat;
use crate::state::{Initial, Me};
use crate::{api, testid};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Outlet;
use leptos_router::hooks::use_location;
use protocol::{Feed, User};

/// The frame of every signed-in page: waits for the user and the first state the server
/// rendered, then shows the chat screen (or says the visitor is signed out).
#[component]
pub fn Layout() -> impl IntoView {
    let Me(me) = expect_context::<Me>();
    // Rendered on the server with the room list and the open room's messages, so the page reads
    // before its wasm loads; the browser takes this state over and follows it live.
    let initial = Resource::new_blocking(
        || (),
        |_| {
            #[cfg(feature = "ssr")]
            let source = use_context::<http::request::Parts>().and_then(|p| {
                let user = p
                    .extensions
                    .get::<crate::state::SsrUser>()
                    .and_then(|u| u.0.clone())?;
                let data = p.extensions.get::<crate::state::SsrData>()?.clone();
                Some((user, data, room_in_path(p.uri.path())))
            });
            async move {
                #[cfg(feature = "ssr")]
                {
                    let Some((user, data, room_id)) = source else {
                        return Initial::default();
                    };
                    let cursor = Some(data.0.cursor());
                    let rooms = data.0.rooms(user.clone()).await;
                    let messages = match &room_id {
                        Some(id) => {
                            data.0
                                .messages(user, id.clone(), crate::state::chat::PAGE)
                                .await
                        }
                        None => None,
                    };
                    Initial {
                        cursor,
                        rooms: Some(rooms),
                        room_id,
                        messages,
                    }
                }
                #[cfg(not(feature = "ssr"))]
                {
                    Initial::default()
                }
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let initial = initial.await;
                match me.await {
                    Some(user) => view! { <ChatApp user initial /> }.into_any(),
                    None => view! {
                        <main class="centered">
                            <div class="card">
                                <h1>"You are signed out."</h1>
                                <p><a href="/login">"Sign in"</a></p>
                            </div>
                        </main>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

/// The chat screen: makes its state, starts it, and lays out the top bar, the sidebar and the page.
#[component]
fn ChatApp(user: User, initial: Initial) -> impl IntoView {
    let location = use_location();
    // The room on screen: the state needs it too (unread counts, marking read, typing).
    let current = Memo::new(move |_| room_in_path(&location.pathname.get()));
    let cursor = initial.cursor;
    let chat = Chat::new(&user, initial, current);
    provide_context(chat);
    chat.start(cursor);
    // Another room or page: an error about the last one no longer applies.
    Effect::new(move |_| {
        location.pathname.track();
        chat.clear_error_notice();
    });

    let username = user.username.clone();
    let me_title = format!("Signed in as {username}: your profile");
    let profile_open = RwSignal::new(false);
    let profile_opener = NodeRef::<leptos::html::Button>::new();
    let settings_open = RwSignal::new(false);
    let settings_opener = NodeRef::<leptos::html::Button>::new();
    let search_open = RwSignal::new(false);
    let is_admin = user.is_admin;
    let sign_out = move |_| {
        leptos::task::spawn_local(async move {
            let _ = api::post_empty("/api/auth/logout").await;
            let _ = window().location().set_href("/login");
        });
    };

    view! {
        // The server writes the page's title after the page, outside the reactive scope of this
        // render, where reading a signal panics (and, under concurrent renders, once left the
        // response hanging). Nothing is unread before the browser loads anything, so the
        // server's title is the plain one and only the browser's counts.
        <Title text=move || {
            if cfg!(feature = "ssr") {
                return "Switchboard".to_string();
            }
            let unread = chat.activity.unread.get();
            if unread > 0 { format!("({unread}) Switchboard") } else { "Switchboard".to_string() }
        } />
        <div class="app" class:room-open=move || location.pathname.with(|p| p != "/")>
            <SkipLink />
            <header class="topbar">
                <a class="brand" href="/" on:click=nav_click("/".into())>"Switchboard"</a>
                <ConnectionBanner />
                <a class="jobs-link" href=Page::Jobs.href() on:click=nav_click(Page::Jobs.href()) data-testid="jobs-link">
                    "Jobs"
                    // The tray: how many run, and the newest one's progress.
                    {move || {
                        let (running, newest) = chat.activity.jobs.with(|j| {
                            let live: Vec<&protocol::Job> = j.iter().filter(|j| !j.is_finished()).collect();
                            (live.len(), live.first().map(|j| j.progress))
                        });
                        (running > 0).then(|| view! {
                            <span class="badge running">{running}<span class="sr-only">" running"</span></span>
                            <progress class="tray" max="1" value=newest.unwrap_or(0.0) aria-label="Newest running job"></progress>
                        })
                    }}
                </a>
                <a class="jobs-link race-link" href=Page::Race.href() on:click=nav_click(Page::Race.href()) data-testid="race-link"
                    title="One feed over all four transports, side by side">"Race"</a>
                {is_admin.then(|| view! {
                    <a class="jobs-link admin-link" href=Page::Admin.href() on:click=nav_click(Page::Admin.href()) data-testid="admin-link">"Admin"</a>
                })}
                <button
                    class="link search-open"
                    title="Search messages (Ctrl+K)"
                    aria-keyshortcuts="Control+K Meta+K"
                    on:click=move |_| search_open.set(true)
                    data-testid=testid::OPEN_SEARCH
                >
                    "Search"
                </button>
                <Bell />
                <button
                    class="link me"
                    title=me_title
                    node_ref=profile_opener
                    on:click=move |_| profile_open.update(|o| *o = !*o)
                    aria-expanded=move || profile_open.get().to_string()
                    data-testid=testid::OPEN_PROFILE
                >
                    {move || chat.my_name.get().unwrap_or_else(|| username.clone())}
                    {user.is_admin.then(|| view! { <span class="tag">"admin"</span> })}
                </button>
                <button
                    class="link"
                    node_ref=settings_opener
                    on:click=move |_| settings_open.update(|o| *o = !*o)
                    aria-expanded=move || settings_open.get().to_string()
                    data-testid="open-settings"
                >
                    "Transports"
                </button>
                <button class="link" on:click=sign_out data-testid=testid::SIGN_OUT>"Sign out"</button>
            </header>
            <Notice />
            <TransportSettingsPanel open=settings_open opener=settings_opener />
            <ProfilePanel open=profile_open opener=profile_opener />
            <SearchPanel open=search_open />
            <ImageViewer />
            <div class="layout">
                <aside class="sidebar" aria-label="Rooms">
                    <RoomList />
                    <NewRoomForm />
                    <DmForm />
                </aside>
                <main class="room" id="main" tabindex="-1">
                    <Outlet />
                </main>
            </div>
            <Toasts />
        </div>
    }
}

/// The chat feed's transport and its state, in the header.
#[component]
fn ConnectionBanner() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let stats = move || chat.live.feed(Feed::Chat);
    let text = move || match stats() {
        Some(s) if s.transport != s.preferred => format!(
            "Chat: {} — using {} for now · {}",
            s.preferred.label(),
            s.transport.label(),
            state_text(&s.state)
        ),
        Some(s) => format!("Chat: {} · {}", s.transport.label(), state_text(&s.state)),
        None => "Chat: connecting…".to_string(),
    };
    let class = move || format!("conn {}", stats().map_or("warn", |s| state_class(&s.state)));
    let transport = move || stats().map(|s| s.transport.as_str()).unwrap_or("websocket");
    view! {
        <span class=class role="status" aria-live="polite" data-testid=testid::CONNECTION data-transport=transport>
            <span class="dot" aria-hidden="true"></span>
            {text}
        </span>
    }
}

#[component]
fn Notice() -> impl IntoView {
    let chat = expect_context::<Chat>();
    view! {
        <Show when=move || chat.notice.with(Option::is_some)>
            <div
                class="notice"
                class:ok=move || chat.notice.with(|n| n.as_ref().is_some_and(|n| n.ok))
                role=move || if chat.notice.with(|n| n.as_ref().is_some_and(|n| n.ok)) { "status" } else { "alert" }
                data-testid=testid::NOTICE
            >
                <span>{move || chat.notice.with(|n| n.as_ref().map(|n| n.text.clone()).unwrap_or_default())}</span>
                <button class="link" on:click=move |_| chat.notice.set(None) aria-label="Dismiss">"×"</button>
            </div>
        </Show>
    }
}

/// The first thing Tab reaches: straight to the composer (or the page's content when there is
/// none), past the header and the room list.
#[component]
fn SkipLink() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let label = move || {
        if chat.current.get().is_some() {
            "Skip to composer"
        } else {
            "Skip to content"
        }
    };
    let on_click = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        let target = document()
            .get_element_by_id("composer")
            .or_else(|| document().get_element_by_id("main"));
        if let Some(el) =
            target.and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok())
        {
            let _ = el.focus();
        }
    };
    view! {
        <a class="skip-link" href=move || if chat.current.get().is_some() { "#composer" } else { "#main" } on:click=on_click data-testid=testid::SKIP_LINK>{label}</a>
    }
}
