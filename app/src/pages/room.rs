//! A room's page (`/rooms/{id}`): its header (topic, members, settings, transport, invite,
//! export, leave), the messages grouped by day and author with who joined and left between them,
//! who is typing, and the composer.

use crate::components::field::FieldError;
use crate::components::room_info::{MembersPanel, RoomSettingsPanel};
use crate::components::sidebar::{room_label, PresenceDot};
use crate::components::transports::TransportPicker;
use crate::live::{self, ConnState};
use crate::routes::{nav_click, Page};
use crate::state::chat::{now, Chat, MemberLine, SendState, UiMessage};
use crate::{api, outbox, testid};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use protocol::{ClientFrame, Feed, UsernameBody};

/// Least time between two typing notices sent while the user types.
const TYPING_SEND_EVERY_MS: f64 = 3_000.0;
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
    let title = move || {
        room.get()
            .map(|r| room_label(&r))
            .unwrap_or_else(|| "Room".into())
    };
    let is_dm = move || room.get().is_some_and(|r| r.dm_with.is_some());
    let topic = move || room.get().map(|r| r.topic).unwrap_or_default();
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
            <header class="room-head">
                <a class="back" href="/" on:click=nav_click("/".into()) aria-label="Back to rooms">"←"</a>
                <h1 id="room-title" data-testid=testid::ROOM_TITLE>{title}</h1>
                {move || room.get().filter(|r| r.private && r.dm_with.is_none()).map(|_| view! { <span class="tag">"private"</span> })}
                <div class="room-actions">
                    <span class="via">"via " <TransportPicker feed=Feed::Chat /></span>
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
                            data-testid=testid::OPEN_ROOM_SETTINGS
                        >
                            "Settings"
                        </button>
                    </Show>
                    <Show when=move || is_member() && !is_dm()>
                        <form class="inline" on:submit=invite>
                            <input
                                type="text"
                                placeholder="Invite username"
                                aria-label="Username to invite"
                                autocapitalize="none"
                                prop:value=move || invitee.get()
                                on:input=move |ev| {
                                    invitee.set(event_target_value(&ev));
                                    invite_error.clear();
                                }
                                aria-invalid=move || invite_error.is_shown().then_some("true")
                                aria-describedby=move || invite_error.is_shown().then_some("invite-error")
                                node_ref=invite_error.input
                                data-testid=testid::INVITE_USERNAME
                            />
                            <button type="submit" data-testid=testid::INVITE_SUBMIT>"Invite"</button>
                        </form>
                    </Show>
                    <Show when=is_member>
                        <button class="link" on:click=export.clone() data-testid="export-room">"Export"</button>
                        <button class="link" on:click=leave.clone() node_ref=leave_button aria-expanded=move || confirming.get().to_string() data-testid=testid::LEAVE_ROOM>"Leave"</button>
                    </Show>
                </div>
            </header>
            <Show when=move || !topic().is_empty()>
                <p class="room-topic" data-testid=testid::ROOM_TOPIC>{topic}</p>
            </Show>
            <MembersPanel room_id=rid.get_value() open=members_open opener=members_opener />
            <RoomSettingsPanel room_id=rid.get_value() open=settings_open opener=settings_opener />
            <p
                id="invite-error"
                class="field-error bar-error"
                data-testid=testid::INVITE_ERROR
                hidden=move || !invite_error.is_shown()
            >
                {move || invite_error.text.get().unwrap_or_default()}
            </p>
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
        </section>
    }
}

/// One row of the message list.
#[derive(Clone, PartialEq)]
enum Row {
    Day(String),
    // Boxed: a message (with its reactions and reply) is far larger than a day's label.
    Msg(Box<UiMessage>, bool),
    Member(MemberLine),
}

impl Row {
    fn key(&self) -> String {
        match self {
            Row::Day(d) => format!("day:{d}"),
            Row::Member(l) => format!("member:{}:{}", l.event_id, l.user.shown_name()),
            Row::Msg(m, header) => {
                let state = match &m.state {
                    SendState::Sent => "s".to_string(),
                    SendState::Pending => "p".to_string(),
                    SendState::Queued => "q".to_string(),
                    SendState::Failed(e) => format!("f{e}"),
                };
                // The author's shown name too: a display-name change redraws their rows.
                format!(
                    "{}:{}:{}:{}:{}",
                    m.msg.client_id,
                    m.msg.id,
                    state,
                    header,
                    m.msg.author.shown_name()
                )
            }
        }
    }
}

/// The timeline: messages by day and author, with joins and leaves placed by their event ids
/// between the messages published before and after them (sends not yet confirmed come last).
fn rows(msgs: &[UiMessage], lines: &[MemberLine], tz_offset: i32) -> Vec<Row> {
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
        let header = new_day
            || prev.is_none()
            || prev.is_some_and(|p| {
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
    let rid = StoredValue::new(room_id);
    let list_ref = NodeRef::<leptos::html::Div>::new();
    let at_bottom = StoredValue::new(true);
    let log = Memo::new(move |_| {
        chat.logs
            .with(|l| l.get(&rid.get_value()).cloned().unwrap_or_default())
    });
    let me_id = chat.me.with_value(|m| m.id.clone());

    // Follow new messages while the reader is at the bottom; leave them alone when scrolled up.
    Effect::new(move |_| {
        log.track();
        if at_bottom.get_value() {
            request_animation_frame(move || {
                if let Some(el) = list_ref.get_untracked() {
                    el.set_scroll_top(el.scroll_height());
                }
            });
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = list_ref.get_untracked() {
            at_bottom.set_value(el.scroll_height() - el.scroll_top() - el.client_height() < 80);
        }
    };
    let load_older = move |_| {
        let before = list_ref
            .get_untracked()
            .map(|el| el.scroll_height())
            .unwrap_or(0);
        let id = rid.get_value();
        leptos::task::spawn_local(async move {
            chat.load_older(id).await;
            // Keep the reader's place: shift by what was added above.
            request_animation_frame(move || {
                if let Some(el) = list_ref.get_untracked() {
                    el.set_scroll_top(el.scroll_top() + el.scroll_height() - before);
                }
            });
        });
    };

    view! {
        <div class="messages" node_ref=list_ref on:scroll=on_scroll data-testid=testid::MESSAGES>
            <Show when=move || log.with(|l| l.has_older)>
                <button class="load-older" on:click=load_older data-testid=testid::LOAD_OLDER>"Load older messages"</button>
            </Show>
            <Show when=move || log.with(|l| l.loaded && l.msgs.is_empty())>
                <p class="muted center">"No messages yet. Say hello!"</p>
            </Show>
            <Show when=move || !log.with(|l| l.loaded)>
                <p class="muted center">"Loading messages…"</p>
            </Show>
            <ol class="log" aria-live="polite" aria-relevant="additions" aria-label="Messages">
                <For each=move || log.with(|l| rows(&l.msgs, &l.lines, chat.tz_offset.get())) key=Row::key let:row>
                    {
                        let me_id = me_id.clone();
                        match row {
                            Row::Day(d) => view! { <li class="day"><span>{d}</span></li> }.into_any(),
                            Row::Member(l) => {
                                let who = if l.user.id == me_id { "You".to_string() } else { l.user.shown_name().to_string() };
                                let what = match l.change {
                                    protocol::MembershipChange::Joined => "joined",
                                    protocol::MembershipChange::Left => "left",
                                    protocol::MembershipChange::Invited => "was invited",
                                };
                                view! { <li class="member-line" data-testid=testid::MEMBER_LINE>{format!("{who} {what}")}</li> }.into_any()
                            }
                            Row::Msg(m, header) => { let m = *m; view! { <MessageRow m header mine=m_is_mine(&me_id) /> }.into_any() }
                        }
                    }
                </For>
            </ol>
        </div>
    }
}

fn m_is_mine(me_id: &str) -> String {
    me_id.to_string()
}

#[component]
fn MessageRow(m: UiMessage, header: bool, mine: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let is_mine = m.msg.author.id == mine;
    let me_name = chat.me.with_value(|u| u.username.clone());
    let mentions_me = !is_mine && protocol::mentions(&m.msg.body).contains(&me_name);
    let created_at = m.msg.created_at;
    let (state_class, failed) = match &m.state {
        SendState::Sent => ("", None),
        SendState::Pending => ("pending", None),
        SendState::Queued => ("pending queued", None),
        SendState::Failed(e) => ("failed", Some(e.clone())),
    };
    let retry = {
        let (room_id, body, client_id) = (
            m.msg.room_id.clone(),
            m.msg.body.clone(),
            m.msg.client_id.clone(),
        );
        move |_| chat.send(room_id.to_string(), body.clone(), Some(client_id.clone()))
    };
    let discard = {
        let (room_id, client_id) = (m.msg.room_id.clone(), m.msg.client_id.clone());
        move |_| chat.discard(&room_id, &client_id)
    };
    view! {
        <li class=format!("msg {state_class}") class:mine=is_mine class:mentions-me=mentions_me class:grouped=!header data-testid=testid::MESSAGE data-seq=m.msg.seq>
            {header.then(|| view! {
                <div class="meta">
                    <PresenceDot user_id=m.msg.author.id.clone() />
                    <span class="author" title=m.msg.author.display_name.is_some().then(|| format!("@{}", m.msg.author.username))>{m.msg.author.shown_name().to_string()}</span>
                    <time datetime=crate::time::iso(m.msg.created_at)>
                        {move || crate::time::clock(created_at, chat.tz_offset.get())}
                    </time>
                </div>
            })}
            <div class="body" data-testid=testid::MESSAGE_BODY>{m.msg.body.clone()}</div>
            {(m.state == SendState::Pending).then(|| view! { <span class="status" data-testid=testid::SEND_STATUS>"Sending…"</span> })}
            {(m.state == SendState::Queued).then(|| view! { <span class="status queued" data-testid=testid::SEND_STATUS>"Waiting for connection…"</span> })}
            {failed.map(|e| view! {
                <span class="status error" data-testid=testid::SEND_STATUS>
                    "Not sent: " {e} " "
                    <button class="link" on:click=retry data-testid=testid::SEND_RETRY>"Retry"</button>
                    " "
                    <button class="link" on:click=discard data-testid=testid::SEND_DISCARD>"Discard"</button>
                </span>
            })}
        </li>
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

#[component]
fn Composer(room_id: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let rid = StoredValue::new(room_id);
    let me_id = StoredValue::new(chat.me_id());
    let text = RwSignal::new(String::new());
    let last_typing = StoredValue::new(0.0f64);
    // Browser only: what was typed here before a reload comes back.
    Effect::new(move |_| {
        if let Some(draft) = outbox::draft(&me_id.get_value(), &rid.get_value()) {
            if text.get_untracked().is_empty() {
                text.set(draft);
            }
        }
    });
    let submit = move || {
        let body = text.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        if body.trim().chars().count() > protocol::MAX_BODY_CHARS {
            chat.notify("Messages are at most 4000 characters.");
            return;
        }
        text.set(String::new());
        outbox::set_draft(&me_id.get_value(), &rid.get_value(), "");
        last_typing.set_value(0.0);
        chat.send(rid.get_value(), body, None);
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            submit();
        }
    };
    let on_input = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        outbox::set_draft(&me_id.get_value(), &rid.get_value(), &value);
        text.set(value);
        let t = now();
        // Offline, nobody would see the notice.
        if chat.chat_live() && t - last_typing.get_value() > TYPING_SEND_EVERY_MS {
            last_typing.set_value(t);
            let room_id = rid.get_value();
            if !live::send(
                Feed::Chat,
                &ClientFrame::Typing {
                    room_id: room_id.clone().into(),
                },
            ) {
                leptos::task::spawn_local(async move {
                    let _ = api::post_empty(&format!("/api/rooms/{room_id}/typing")).await;
                });
            }
        }
    };
    let over = move || text.with(|t| t.trim().chars().count() > protocol::MAX_BODY_CHARS);
    let offline = move || {
        chat.live.feed(Feed::Chat).is_some_and(|s| {
            matches!(
                s.state,
                ConnState::Reconnecting { .. } | ConnState::Offline | ConnState::Stopped(_)
            )
        })
    };
    view! {
        <Show when=offline>
            <p class="composer-offline" role="status" data-testid=testid::COMPOSER_OFFLINE>
                <span class="dot" aria-hidden="true"></span>
                "You are offline. Messages you send now wait here and go out by themselves when the connection is back."
            </p>
        </Show>
        <form class="composer" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); submit(); }>
            <textarea
                id="composer"
                rows="2"
                placeholder="Write a message… (Enter sends, Shift+Enter for a new line)"
                aria-label="Message"
                prop:value=move || text.get()
                on:input=on_input
                on:keydown=on_keydown
                data-testid=testid::COMPOSER
            ></textarea>
            <button type="submit" class="primary" disabled=over data-testid=testid::SEND>"Send"</button>
        </form>
    }
}
