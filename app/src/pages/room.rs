//! A room's page (`/rooms/{id}`): its header (topic, members and invites, settings, transport,
//! export, leave), the messages grouped by day and author with who joined and left between them,
//! who is typing, and the composer.

use crate::components::composer::Composer;
use crate::components::message::{row_version, MessageRow};
use crate::components::pending_files::{files_of, DroppedFiles};
use crate::components::room_info::{MembersPanel, RoomSettingsPanel};
use crate::components::sidebar::room_label;
use crate::components::thread::ThreadPanel;
use crate::components::transports::TransportPicker;
use crate::routes::{nav_click, Page};
use crate::state::chat::{Chat, MemberLine, SendState, UiMessage};
use crate::{api, testid};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use protocol::Feed;

/// Scrolled this close to the top, the page of older messages loads.
const OLDER_WHEN_PX: i32 = 120;
/// Messages from one author closer together than this share one header.
const GROUP_GAP_MS: i64 = 5 * 60 * 1000;

/// The room route (`/rooms/:id`): the room its address names, made anew when the id changes (the
/// router keeps a route's view and only updates its params).
#[component]
pub fn RoomPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id")));
    move || id.get().map(|room_id| view! { <RoomView room_id /> })
}

#[component]
fn RoomView(room_id: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let rid = StoredValue::new(room_id);
    let room = Memo::new(move |_| chat.room(&rid.get_value()));
    let is_member = move || room.get().is_some_and(|r| r.is_member);
    let navigate = use_navigate();

    let join = move |_| {
        let id = rid.get_value();
        leptos::task::spawn_local(async move {
            if let Err(e) = api::post_empty(&format!("/api/rooms/{id}/join")).await {
                chat.notify(e.message);
            }
        });
    };
    let leave_now = move || {
        let id = rid.get_value();
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::post_empty(&format!("/api/rooms/{id}/leave")).await {
                Ok(()) => navigate("/", Default::default()),
                Err(e) => chat.notify(e.message),
            }
        });
    };
    // Files dragged over the room go to its composer (members only: others have none).
    let dropped = RwSignal::new(Vec::<send_wrapper::SendWrapper<web_sys::File>>::new());
    provide_context(DroppedFiles(dropped));
    let dragging = RwSignal::new(false);
    let carries_files = |ev: &leptos::ev::DragEvent| {
        ev.data_transfer()
            .is_some_and(|d| d.types().includes(&"Files".into(), 0))
    };
    let drag_over = move |ev: leptos::ev::DragEvent| {
        if is_member() && carries_files(&ev) {
            ev.prevent_default();
            dragging.set(true);
        }
    };
    let drop = move |ev: leptos::ev::DragEvent| {
        dragging.set(false);
        if !is_member() {
            return;
        }
        let list = files_of(ev.data_transfer().and_then(|d| d.files()));
        if !list.is_empty() {
            ev.prevent_default();
            dropped.update(|d| d.extend(list.into_iter().map(send_wrapper::SendWrapper::new)));
        }
    };
    // Leaving a private room asks first: coming back takes a new invite.
    let confirming = RwSignal::new(false);
    let leave_button = NodeRef::<leptos::html::Button>::new();
    let stay_button = NodeRef::<leptos::html::Button>::new();
    let leave = {
        let leave_now = leave_now.clone();
        move |_| {
            if room
                .get_untracked()
                .is_some_and(|r| r.private && r.dm_with.is_none())
            {
                confirming.set(true);
                request_animation_frame(move || {
                    if let Some(b) = stay_button.get_untracked() {
                        let _ = b.focus();
                    }
                });
            } else {
                leave_now();
            }
        }
    };
    let stay = move || {
        confirming.set(false);
        request_animation_frame(move || {
            if let Some(b) = leave_button.get_untracked() {
                let _ = b.focus();
            }
        });
    };
    let export = {
        let navigate = use_navigate();
        move |_| {
            let body = serde_json::json!({ "kind": "export_room", "room_id": rid.get_value() });
            let navigate = navigate.clone();
            leptos::task::spawn_local(async move {
                match api::post::<_, protocol::Job>("/api/jobs", &body).await {
                    Ok(job) => {
                        chat.activity.upsert_job(job);
                        navigate(&Page::Jobs.href(), Default::default());
                    }
                    Err(e) => chat.notify(e.message),
                }
            });
        }
    };
    let title = move || {
        room.get()
            .map(|r| room_label(&r))
            .unwrap_or_else(|| "Room".into())
    };
    let topic = move || room.get().map(|r| r.topic).unwrap_or_default();
    let topic_whole = RwSignal::new(false);
    // The member list is open to members, and to anyone for a public room.
    let may_list = move || room.get().is_some_and(|r| r.is_member || !r.private);
    let members_open = RwSignal::new(false);
    let members_opener = NodeRef::<leptos::html::Button>::new();
    let settings_open = RwSignal::new(false);
    let settings_opener = NodeRef::<leptos::html::Button>::new();
    let members_label = move || {
        let n = room.get().map_or(0, |r| r.member_count);
        protocol::count(n, "member", "members")
    };

    view! {
        <section class="room-view" aria-labelledby="room-title">
            // Two lines at most on a phone: the title with the topic cut short (a tap shows it
            // whole), then compact buttons (their words stay for screen readers).
            <header class="room-head">
                <div class="room-title-line">
                    <a class="back" href="/" on:click=nav_click("/".into()) aria-label="Back to rooms">"←"</a>
                    <h1 id="room-title" data-testid=testid::ROOM_TITLE>{title}</h1>
                    {move || room.get().filter(|r| r.private && r.dm_with.is_none()).map(|_| view! { <span class="tag">"private"</span> })}
                    <Show when=move || !topic().is_empty()>
                        <button
                            type="button"
                            class="room-topic"
                            class:whole=move || topic_whole.get()
                            title=topic
                            aria-expanded=move || topic_whole.get().to_string()
                            on:click=move |_| topic_whole.update(|w| *w = !*w)
                            data-testid=testid::ROOM_TOPIC
                        >
                            {topic}
                        </button>
                    </Show>
                </div>
                <div class="room-actions">
                    <span class="via"><span class="via-word">"via "</span><TransportPicker feed=Feed::Chat /></span>
                    <Show when=may_list>
                        <button
                            class="link"
                            node_ref=members_opener
                            on:click=move |_| members_open.update(|o| *o = !*o)
                            aria-expanded=move || members_open.get().to_string()
                            data-testid=testid::OPEN_MEMBERS
                        >
                            {members_label}
                        </button>
                    </Show>
                    <Show when=is_member>
                        <button
                            class="link"
                            node_ref=settings_opener
                            on:click=move |_| settings_open.update(|o| *o = !*o)
                            aria-expanded=move || settings_open.get().to_string()
                            title="Room settings"
                            data-testid=testid::OPEN_ROOM_SETTINGS
                        >
                            <span class="icon" aria-hidden="true">"⚙"</span>
                            <span class="word">"Settings"</span>
                        </button>
                    </Show>
                    <Show when=is_member>
                        <button class="link" on:click=export.clone() title="Export this room" data-testid="export-room">
                            <span class="icon" aria-hidden="true">"⤓"</span>
                            <span class="word">"Export"</span>
                        </button>
                        <button class="link" on:click=leave.clone() node_ref=leave_button aria-expanded=move || confirming.get().to_string() title="Leave this room" data-testid=testid::LEAVE_ROOM>
                            <span class="icon" aria-hidden="true">"⎋"</span>
                            <span class="word">"Leave"</span>
                        </button>
                    </Show>
                </div>
            </header>
            <MembersPanel room_id=rid.get_value() open=members_open opener=members_opener />
            <RoomSettingsPanel room_id=rid.get_value() open=settings_open opener=settings_opener />
            <Show when=move || confirming.get()>
                <div
                    class="confirm-bar"
                    role="alertdialog"
                    aria-labelledby="leave-confirm-text"
                    data-testid=testid::LEAVE_CONFIRM
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Escape" {
                            stay();
                        }
                    }
                >
                    <p id="leave-confirm-text">
                        {move || format!("Leave #{}? It is private: you will need a new invite to come back.", room.get().map(|r| r.name).unwrap_or_default())}
                    </p>
                    <button class="danger" on:click={
                        let leave_now = leave_now.clone();
                        move |_| {
                            confirming.set(false);
                            leave_now();
                        }
                    } data-testid=testid::LEAVE_CONFIRM_YES>"Leave room"</button>
                    <button on:click=move |_| stay() node_ref=stay_button data-testid=testid::LEAVE_CONFIRM_NO>"Stay"</button>
                </div>
            </Show>
            <div class="room-body">
                <div class="room-main" on:dragenter=drag_over on:dragover=drag_over on:drop=drop>
            <Show when=move || dragging.get()>
                <div class="drop-zone" on:dragleave=move |_| dragging.set(false) data-testid=testid::DROP_ZONE>
                    <p>"Drop files to attach them to your message"</p>
                </div>
            </Show>
            <MessageList room_id=rid.get_value() />
            <TypingLine room_id=rid.get_value() />
            <Show
                when=is_member
                fallback=move || view! {
                    <div class="join-bar">
                        <p>"You are not a member of this room."</p>
                        <button class="primary" on:click=join data-testid=testid::JOIN_ROOM>"Join room"</button>
                    </div>
                }
            >
                <Composer room_id=rid.get_value() />
            </Show>
                </div>
                <ThreadPanel room_id=rid.get_value() />
            </div>
        </section>
    }
}

/// One row of the message list.
#[derive(Clone, PartialEq)]
enum Row {
    Day(String),
    /// "New messages": where I stopped reading when I opened the room.
    Divider,
    Msg(Box<UiMessage>, bool),
    Member(MemberLine),
}

impl Row {
    fn key(&self) -> String {
        match self {
            Row::Day(d) => format!("day:{d}"),
            Row::Divider => "divider".into(),
            Row::Member(l) => format!("member:{}:{}", l.event_id, l.user.shown_name()),
            Row::Msg(m, header) => format!("{}:{header}", row_version(m)),
        }
    }
}

/// The timeline: messages by day and author, with joins and leaves placed by their event ids
/// between the messages published before and after them (sends not yet confirmed come last),
/// and the "New messages" divider above the first unread one.
fn rows(
    msgs: &[UiMessage],
    lines: &[MemberLine],
    tz_offset: i32,
    divider: Option<i64>,
) -> Vec<Row> {
    let now = crate::time::now_ms();
    let mut out = Vec::with_capacity(msgs.len() + lines.len() + 4);
    let mut last_day = String::new();
    let mut prev: Option<&UiMessage> = None;
    let mut lines = lines.iter().peekable();
    for m in msgs {
        let before = |l: &&MemberLine| m.state != SendState::Sent || l.event_id < m.msg.event_id;
        let mut any = false;
        while let Some(l) = lines.next_if(before) {
            out.push(Row::Member(l.clone()));
            any = true;
        }
        if any {
            // A join or leave between two messages starts a new group.
            prev = None;
        }
        let day = crate::time::day_label(m.msg.created_at, now, tz_offset);
        let new_day = day != last_day;
        if new_day {
            out.push(Row::Day(day.clone()));
            last_day = day;
        }
        let divided = m.state == SendState::Sent && divider == Some(m.msg.seq);
        if divided {
            out.push(Row::Divider);
        }
        let header = new_day
            || divided
            || prev.is_none_or(|p| {
                p.msg.author.id != m.msg.author.id
                    || m.msg.created_at - p.msg.created_at > GROUP_GAP_MS
            });
        out.push(Row::Msg(Box::new(m.clone()), header));
        prev = Some(m);
    }
    out.extend(lines.cloned().map(Row::Member));
    out
}

#[component]
fn MessageList(room_id: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let me_id = StoredValue::new(chat.me.with_value(|m| m.id.clone()));
    let rid = StoredValue::new(room_id);
    let list_ref = NodeRef::<leptos::html::Div>::new();
    let at_bottom = RwSignal::new(true);
    let loading_older = StoredValue::new(false);
    let log = Memo::new(move |_| {
        chat.logs
            .with(|l| l.get(&rid.get_value()).cloned().unwrap_or_default())
    });
    let divider = Memo::new(move |_| chat.divider.with(|d| d.get(&rid.get_value()).copied()));
    // The newest seq seen while at the bottom: what came after it is "new" when scrolled up.
    let seen_seq = RwSignal::new(0i64);
    let newest = Memo::new(move |_| log.with(|l| l.last_confirmed_seq()));
    let unseen = Memo::new(move |_| {
        let seen = seen_seq.get();
        log.with(|l| {
            l.msgs
                .iter()
                .filter(|m| m.state == SendState::Sent && m.msg.seq > seen)
                .count()
        })
    });

    let to_bottom = move || {
        if let Some(el) = list_ref.get_untracked() {
            el.set_scroll_top(el.scroll_height());
        }
    };
    // Follow new messages while the reader is at the bottom; leave them alone when scrolled up.
    // A room opened with unread messages starts at the divider instead.
    let first_follow = StoredValue::new(true);
    // The newest row as last followed: a page of older history coming in above leaves it as it
    // is, and must not pull the reader down (a jump to a reply's original loads those pages).
    let followed_tail = StoredValue::new(None::<String>);
    Effect::new(move |_| {
        log.track();
        // A message opened from search is on screen: the pages loaded to reach it are not news.
        if chat.focus.with_untracked(Option::is_some) {
            first_follow.set_value(false);
            return;
        }
        if !at_bottom.get_untracked() {
            return;
        }
        // Lines older than the newest message (a page of history brings them) are not news.
        let tail = log.with_untracked(|l| {
            let last = l.msgs.last().map(row_version).unwrap_or_default();
            let newest_event = l.last_confirmed().map_or(0, |m| m.event_id);
            let line = l
                .lines
                .last()
                .filter(|x| x.event_id > newest_event)
                .map(|x| x.event_id);
            Some(format!("{last}|{line:?}"))
        });
        if !first_follow.get_value() && tail == followed_tail.get_value() {
            return;
        }
        followed_tail.set_value(tail);
        seen_seq.set(newest.get_untracked());
        let first = first_follow.get_value() && log.with_untracked(|l| l.loaded);
        if first {
            first_follow.set_value(false);
        }
        request_animation_frame(move || {
            let divider_el = document()
                .query_selector(".messages .new-divider")
                .ok()
                .flatten();
            match divider_el.filter(|_| first) {
                Some(el) => el.scroll_into_view_with_bool(true),
                None => to_bottom(),
            }
        });
    });
    // A message opened from search: scrolled to the middle and given the focus once it is drawn.
    Effect::new(move |_| {
        let Some(id) = chat.focus.get() else {
            return;
        };
        request_animation_frame(move || {
            let el = document()
                .get_element_by_id(&crate::components::message::dom_id(&id))
                .and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok());
            if let Some(el) = el {
                at_bottom.set(false);
                let opts = web_sys::ScrollIntoViewOptions::new();
                opts.set_block(web_sys::ScrollLogicalPosition::Center);
                el.scroll_into_view_with_scroll_into_view_options(&opts);
                let _ = el.focus();
            }
        });
    });
    let load_older = move || {
        if loading_older.get_value() || !log.with_untracked(|l| l.has_older) {
            return;
        }
        loading_older.set_value(true);
        let before = list_ref
            .get_untracked()
            .map(|el| (el.scroll_height(), el.scroll_top()))
            .unwrap_or((0, 0));
        let id = rid.get_value();
        leptos::task::spawn_local(async move {
            chat.load_older(id).await;
            // Keep the reader's place: shift by what was added above.
            request_animation_frame(move || {
                if let Some(el) = list_ref.get_untracked() {
                    el.set_scroll_top(before.1 + el.scroll_height() - before.0);
                }
                loading_older.set_value(false);
            });
        });
    };
    let on_scroll = move |_| {
        if let Some(el) = list_ref.get_untracked() {
            let bottom = el.scroll_height() - el.scroll_top() - el.client_height() < 80;
            if bottom != at_bottom.get_untracked() {
                at_bottom.set(bottom);
            }
            if bottom {
                seen_seq.set(newest.get_untracked());
            }
            // Near the top: the page before comes in, the reader stays where they are.
            if el.scroll_top() < OLDER_WHEN_PX {
                load_older();
            }
        }
    };
    let jump = move |_| {
        at_bottom.set(true);
        seen_seq.set(newest.get_untracked());
        if let Some(el) = list_ref.get_untracked() {
            let opts = web_sys::ScrollToOptions::new();
            opts.set_top(el.scroll_height() as f64);
            opts.set_behavior(web_sys::ScrollBehavior::Smooth);
            el.scroll_to_with_scroll_to_options(&opts);
        }
    };

    view! {
        <div class="messages-wrap">
            <div class="messages" node_ref=list_ref on:scroll=on_scroll data-testid=testid::MESSAGES>
                <Show when=move || log.with(|l| l.has_older)>
                    <button class="load-older" on:click=move |_| load_older() data-testid=testid::LOAD_OLDER>"Load older messages"</button>
                </Show>
                <Show when=move || log.with(|l| l.loaded && l.msgs.is_empty())>
                    <p class="muted center">"No messages yet. Say hello!"</p>
                </Show>
                <Show when=move || !log.with(|l| l.loaded)>
                    <p class="muted center">"Loading messages…"</p>
                </Show>
                <ol class="log" aria-live="polite" aria-relevant="additions" aria-label="Messages">
                    <For each=move || log.with(|l| rows(&l.msgs, &l.lines, chat.tz_offset.get(), divider.get())) key=Row::key let:row>
                        {
                            match row {
                                Row::Day(d) => view! { <li class="day"><span>{d}</span></li> }.into_any(),
                                Row::Divider => view! {
                                    <li class="new-divider" data-testid=testid::NEW_DIVIDER><span>"New messages"</span></li>
                                }.into_any(),
                                Row::Member(l) => {
                                    let who = if l.user.id == me_id.get_value() {
                                        "You".to_string()
                                    } else {
                                        l.user.shown_name().to_string()
                                    };
                                    let what = match l.change {
                                        protocol::MembershipChange::Joined => "joined",
                                        protocol::MembershipChange::Left => "left",
                                        protocol::MembershipChange::Invited => "was invited",
                                    };
                                    view! { <li class="member-line" data-testid=testid::MEMBER_LINE>{format!("{who} {what}")}</li> }.into_any()
                                }
                                Row::Msg(m, header) => view! { <MessageRow m=*m header /> }.into_any(),
                            }
                        }
                    </For>
                </ol>
            </div>
            <Show when=move || !at_bottom.get()>
                <button type="button" class="jump-latest" on:click=jump data-testid=testid::JUMP_LATEST>
                    {move || match unseen.get() {
                        0 => "Jump to latest".to_string(),
                        n => format!("Jump to latest ({n} new)"),
                    }}
                </button>
            </Show>
        </div>
    }
}

#[component]
fn TypingLine(room_id: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let text = move || {
        let names: Vec<String> = chat.typing.with(|t| {
            t.iter()
                .filter(|x| x.room_id == room_id)
                .map(|x| x.name.clone())
                .collect()
        });
        match names.len() {
            0 => String::new(),
            1 => format!("{} is typing…", names[0]),
            2 => format!("{} and {} are typing…", names[0], names[1]),
            _ => "Several people are typing…".to_string(),
        }
    };
    view! { <div class="typing" aria-live="polite" data-testid=testid::TYPING>{text}</div> }
}
