//! One message on screen: its header, its body as Markdown, the quote of what it answers, its
//! reaction chips, its thread link, and its actions (react, reply, thread, edit, delete) on
//! hover and from the keyboard, with editing in place and a confirm before deleting.

use crate::components::emoji_picker::EmojiPicker;
use crate::components::sidebar::PresenceDot;
use crate::state::chat::{Chat, SendState, UiMessage};
use crate::state::life::{reply_ref, Replying};
use crate::{markdown, testid};
use leptos::prelude::*;
use protocol::{Message, Reaction, ReplyRef};

/// How long a message jumped to stays highlighted.
const FLASH_MS: u64 = 2_000;

/// The element id of a message in the room's list (notifications link to `#m-{id}`).
pub fn dom_id(message_id: &str) -> String {
    format!("m-{message_id}")
}

/// Scrolls to a message in the room and highlights it a moment; one that is not loaded opens
/// as a thread, which fetches it.
pub fn jump_to(chat: Chat, room_id: &str, message_id: &str) {
    match document().get_element_by_id(&dom_id(message_id)) {
        Some(el) => {
            let opts = web_sys::ScrollIntoViewOptions::new();
            opts.set_block(web_sys::ScrollLogicalPosition::Center);
            el.scroll_into_view_with_scroll_into_view_options(&opts);
            let _ = el.class_list().add_1("flash");
            if let Ok(h) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(el.clone()) {
                let _ = h.focus();
            }
            set_timeout(
                move || {
                    let _ = el.class_list().remove_1("flash");
                },
                std::time::Duration::from_millis(FLASH_MS),
            );
        }
        None => chat.open_thread(room_id.to_string(), message_id.to_string()),
    }
}

fn focus_composer() {
    request_animation_frame(|| {
        if let Some(el) = document().get_element_by_id("composer") {
            if let Ok(el) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(el) {
                let _ = el.focus();
            }
        }
    });
}

/// Who reacted, in words for the chip's tooltip.
fn reactors(chip: &Reaction) -> String {
    let code = crate::emoji::ALL
        .iter()
        .find(|e| e.glyph == chip.emoji)
        .map(|e| format!(":{}:", e.code))
        .unwrap_or_else(|| chip.emoji.clone());
    let named = chip.users.len() as i64;
    if named == 0 {
        let who = if chip.count == 1 {
            "1 person"
        } else {
            "people"
        };
        let who = if chip.count > 1 {
            format!("{} {who}", chip.count)
        } else {
            who.to_string()
        };
        return format!("{who} reacted with {code}");
    }
    let mut names = chip
        .users
        .iter()
        .map(|u| u.username.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if chip.count > named {
        names.push_str(&format!(" and {} more", chip.count - named));
    }
    format!("{names} reacted with {code}")
}

/// A message row. `in_thread`: shown in the thread panel (no thread link, ids kept unique).
#[component]
pub fn MessageRow(m: UiMessage, header: bool, #[prop(optional)] in_thread: bool) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let me = chat.me.get_value();
    let msg = StoredValue::new(m.msg.clone());
    let is_mine = m.msg.author.id == me.id;
    let sent = m.state == SendState::Sent && !m.msg.id.starts_with("pending:");
    let deleted = m.msg.deleted;
    let can_edit = sent && is_mine && !deleted;
    let can_delete = sent && (is_mine || me.is_admin) && !deleted;
    let mentions_me = !is_mine && protocol::mentions(&m.msg.body).contains(&me.username);
    let created_at = m.msg.created_at;
    let (state_class, failed) = match &m.state {
        SendState::Sent => ("", None),
        SendState::Pending => ("pending", None),
        SendState::Queued => ("pending queued", None),
        SendState::Failed(e) => ("failed", Some(e.clone())),
    };
    let retry = {
        let m = m.msg.clone();
        move |_| {
            chat.send(
                m.room_id.to_string(),
                m.body.clone(),
                Some(m.client_id.clone()),
                m.reply_to.as_ref().map(|r| r.id.to_string()),
            )
        }
    };
    let discard = {
        let (room_id, client_id) = (m.msg.room_id.clone(), m.msg.client_id.clone());
        move |_| chat.discard(&room_id, &client_id)
    };
    let id = m.msg.id.to_string();
    let editing = Memo::new({
        let id = id.clone();
        move |_| !in_thread && chat.editing.with(|e| e.as_deref() == Some(id.as_str()))
    });
    let picker_open = RwSignal::new(false);
    let react_button = NodeRef::<leptos::html::Button>::new();
    let confirming = RwSignal::new(false);
    let row = NodeRef::<leptos::html::Li>::new();

    let react = move |emoji: String| {
        msg.with_value(|m| chat.toggle_reaction(m.room_id.to_string(), m.id.to_string(), emoji));
    };
    let on_pick = Callback::new(react);
    let reply = move || {
        msg.with_value(|m| {
            if in_thread {
                // In the thread panel, answering goes to the thread's own composer.
                focus_thread_composer();
            } else {
                chat.replying.set(Some(Replying {
                    room_id: m.room_id.to_string(),
                    to: reply_ref(m),
                }));
                focus_composer();
            }
        })
    };
    let thread_root = m
        .msg
        .reply_to
        .as_ref()
        .map(|r| r.id.to_string())
        .filter(|_| m.msg.reply_count == 0)
        .unwrap_or_else(|| m.msg.id.to_string());
    let open_thread = {
        let root = thread_root.clone();
        move || msg.with_value(|m| chat.open_thread(m.room_id.to_string(), root.clone()))
    };
    let edit = move || chat.editing.set(Some(msg.with_value(|m| m.id.to_string())));
    let ask_delete = move || confirming.set(true);
    let on_row_key = {
        let open_thread = open_thread.clone();
        move |ev: leptos::ev::KeyboardEvent| {
            // Only keys pressed on the row itself: typing in its edit box is typing.
            let on_row = ev.target().zip(row.get_untracked()).is_some_and(|(t, r)| {
                let r: &web_sys::EventTarget = &r;
                t == *r
            });
            if !on_row || !sent || deleted {
                return;
            }
            match ev.key().as_str() {
                "r" => reply(),
                "t" if !in_thread => open_thread(),
                "e" if can_edit && !in_thread => edit(),
                "+" | "=" => picker_open.set(true),
                "Delete" | "Backspace" if can_delete => ask_delete(),
                _ => return,
            }
            ev.prevent_default();
        }
    };
    // In the thread panel every reply answers the root shown above it: no quote needed.
    let reply_quote = m
        .msg
        .reply_to
        .clone()
        .filter(|_| !in_thread)
        .map(|r: ReplyRef| {
            let room_id = m.msg.room_id.clone();
            let target = r.id.clone();
            let who = if r.author.username.is_empty() {
                "a message".to_string()
            } else {
                r.author.shown_name().to_string()
            };
            let excerpt = if r.deleted {
                "This message was deleted".to_string()
            } else if r.excerpt.is_empty() {
                "(no longer shown)".to_string()
            } else {
                // The excerpt is the start of the Markdown source: shown as the words it reads as.
                markdown::plain_text(&r.excerpt)
            };
            view! {
                <button
                    type="button"
                    class="reply-quote"
                    title="Show the original"
                    on:click=move |_| jump_to(chat, &room_id, &target)
                    data-testid=testid::REPLY_QUOTE
                >
                    <span class="who">{who}</span>
                    <span class="excerpt">{excerpt}</span>
                </button>
            }
        });
    let edited_title = m.msg.edited_at.map(|t| {
        let tz = chat.tz_offset.get_untracked();
        let now = crate::time::now_ms();
        format!(
            "Edited {} at {}",
            crate::time::day_label(t, now, tz).to_lowercase(),
            crate::time::clock(t, tz)
        )
    });
    let reply_count = m.msg.reply_count;
    let chips = m.msg.reactions.clone();
    let body = m.msg.body.clone();
    let dom = if in_thread {
        format!("t-{id}")
    } else {
        dom_id(&id)
    };

    view! {
        <li
            class=format!("msg {state_class}")
            class:mine=is_mine
            class:mentions-me=mentions_me
            class:grouped=!header
            class:deleted=deleted
            id=dom
            tabindex="0"
            node_ref=row
            aria-keyshortcuts=sent.then_some("r t e + Delete")
            on:keydown=on_row_key
            data-testid=testid::MESSAGE
            data-seq=m.msg.seq
            data-id=id.clone()
        >
            {header.then(|| view! {
                <div class="meta">
                    <PresenceDot user_id=m.msg.author.id.clone() />
                    <span class="author" title=m.msg.author.display_name.is_some().then(|| format!("@{}", m.msg.author.username))>{m.msg.author.shown_name().to_string()}</span>
                    <time datetime=crate::time::iso(m.msg.created_at)>
                        {move || crate::time::clock(created_at, chat.tz_offset.get())}
                    </time>
                </div>
            })}
            {reply_quote}
            {move || if editing.get() {
                view! { <EditBox msg /> }.into_any()
            } else if deleted {
                view! { <div class="body tombstone" data-testid=testid::MESSAGE_BODY>"This message was deleted"</div> }.into_any()
            } else {
                view! {
                    <div class="body md" data-testid=testid::MESSAGE_BODY>{markdown::render(&body)}</div>
                }.into_any()
            }}
            {edited_title.filter(|_| !deleted).map(|t| view! {
                <span class="edited" title=t.clone() aria-label=t data-testid=testid::MESSAGE_EDITED>"(edited)"</span>
            })}
            {(!chips.is_empty()).then(|| view! {
                <div class="reactions" role="group" aria-label="Reactions">
                    {chips.iter().map(|chip| {
                        let emoji = chip.emoji.clone();
                        let title = reactors(chip);
                        view! {
                            <button
                                type="button"
                                class="chip"
                                class:mine=chip.mine
                                aria-pressed=chip.mine.to_string()
                                title=title.clone()
                                aria-label=title
                                on:click=move |_| react(emoji.clone())
                                disabled=!sent
                                data-testid=testid::REACTION_CHIP
                                data-emoji=chip.emoji.clone()
                            >
                                <span class="e">{chip.emoji.clone()}</span>
                                <span class="n">{chip.count}</span>
                            </button>
                        }
                    }).collect_view()}
                </div>
            })}
            {(reply_count > 0 && !in_thread).then(|| {
                let open_thread = open_thread.clone();
                view! {
                    <button type="button" class="link replies" on:click=move |_| open_thread() data-testid=testid::THREAD_OPEN>
                        {if reply_count == 1 { "1 reply".to_string() } else { format!("{reply_count} replies") }}
                    </button>
                }
            })}
            {(sent && !deleted).then(|| {
                let open_thread = open_thread.clone();
                view! {
                    <div class="msg-actions" role="toolbar" aria-label="Message actions">
                        <button type="button" title="Add a reaction (+)" aria-label="Add a reaction" node_ref=react_button
                            aria-expanded=move || picker_open.get().to_string()
                            on:click=move |_| picker_open.update(|o| *o = !*o)
                            data-testid=testid::MESSAGE_REACT>"☺+"</button>
                        <button type="button" title="Reply (r)" on:click=move |_| reply() data-testid=testid::MESSAGE_REPLY>"Reply"</button>
                        {(!in_thread).then(|| view! {
                            <button type="button" title="Open the thread (t)" on:click=move |_| open_thread() data-testid=testid::MESSAGE_THREAD>"Thread"</button>
                        })}
                        {(can_edit && !in_thread).then(|| view! {
                            <button type="button" title="Edit (e)" on:click=move |_| edit() data-testid=testid::MESSAGE_EDIT>"Edit"</button>
                        })}
                        {can_delete.then(|| view! {
                            <button type="button" class="danger" title="Delete" on:click=move |_| ask_delete() data-testid=testid::MESSAGE_DELETE>"Delete"</button>
                        })}
                    </div>
                }
            })}
            <EmojiPicker open=picker_open on_pick opener=react_button label="React with an emoji" />
            <Show when=move || confirming.get()>
                <DeleteConfirm msg confirming row />
            </Show>
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

fn focus_thread_composer() {
    request_animation_frame(|| {
        if let Some(el) = document().get_element_by_id("thread-composer") {
            if let Ok(el) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(el) {
                let _ = el.focus();
            }
        }
    });
}

/// "Delete this message?" under the message, focused on Cancel (the safe choice).
#[component]
fn DeleteConfirm(
    msg: StoredValue<Message>,
    confirming: RwSignal<bool>,
    row: NodeRef<leptos::html::Li>,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let cancel_button = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |_| {
        if let Some(b) = cancel_button.get() {
            let _ = b.focus();
        }
    });
    let back_to_row = move || {
        confirming.set(false);
        if let Some(r) = row.get_untracked() {
            let _ = r.focus();
        }
    };
    view! {
        <div
            class="confirm-bar inline-confirm"
            role="alertdialog"
            aria-label="Delete this message?"
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                if ev.key() == "Escape" {
                    ev.prevent_default();
                    back_to_row();
                }
            }
            data-testid=testid::DELETE_CONFIRM
        >
            <p>"Delete this message? Everyone will see that it was deleted."</p>
            <button class="danger" on:click=move |_| {
                confirming.set(false);
                msg.with_value(|m| chat.delete_message(m.room_id.to_string(), m.id.to_string()));
            } data-testid=testid::DELETE_CONFIRM_YES>"Delete"</button>
            <button node_ref=cancel_button on:click=move |_| back_to_row() data-testid=testid::DELETE_CONFIRM_NO>"Cancel"</button>
        </div>
    }
}

/// Editing in place: Enter saves, Shift+Enter a new line, Escape cancels.
#[component]
fn EditBox(msg: StoredValue<Message>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let text = RwSignal::new(msg.with_value(|m| m.body.clone()));
    let field = NodeRef::<leptos::html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(el) = field.get() {
            let _ = el.focus();
            let end = el.value().encode_utf16().count() as u32;
            let _ = el.set_selection_range(end, end);
        }
    });
    let back_to_row = move || {
        let id = dom_id(&msg.with_value(|m| m.id.to_string()));
        request_animation_frame(move || {
            if let Some(el) = document().get_element_by_id(&id) {
                if let Ok(el) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(el) {
                    let _ = el.focus();
                }
            }
        });
    };
    let cancel = move || {
        chat.editing.set(None);
        back_to_row();
    };
    let save = move || {
        let body = text.get_untracked();
        let (room_id, id, old) =
            msg.with_value(|m| (m.room_id.to_string(), m.id.to_string(), m.body.clone()));
        if body.trim().is_empty() {
            chat.notify("A message cannot be empty. Delete it instead.");
            return;
        }
        if body.trim().chars().count() > protocol::MAX_BODY_CHARS {
            chat.notify("Messages are at most 4000 characters.");
            return;
        }
        if body == old {
            cancel();
            return;
        }
        chat.save_edit(room_id, id, body);
        back_to_row();
    };
    view! {
        <form class="edit-box" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); save(); }>
            <textarea
                rows="2"
                aria-label="Edit message"
                node_ref=field
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        save();
                    } else if ev.key() == "Escape" {
                        ev.prevent_default();
                        ev.stop_propagation();
                        cancel();
                    }
                }
                data-testid=testid::EDIT_BOX
            ></textarea>
            <div class="edit-hint">
                "Enter to save, Escape to cancel "
                <button type="submit" class="primary" data-testid=testid::EDIT_SAVE>"Save"</button>
                <button type="button" on:click=move |_| cancel()>"Cancel"</button>
            </div>
        </form>
    }
}

/// A key that changes whenever what a row shows changes (its send state, an edit, a delete, its
/// reactions or replies), so a keyed list rebuilds that row and only that row.
pub fn row_version(m: &UiMessage) -> String {
    let state = match &m.state {
        SendState::Sent => "s".to_string(),
        SendState::Pending => "p".to_string(),
        SendState::Queued => "q".to_string(),
        SendState::Failed(e) => format!("f{e}"),
    };
    let reactions: String = m
        .msg
        .reactions
        .iter()
        .map(|c| {
            let who: Vec<&str> = c.users.iter().map(|u| u.id.as_str()).collect();
            format!(
                "{}{}{}{};",
                c.emoji,
                c.count,
                u8::from(c.mine),
                who.join(",")
            )
        })
        .collect();
    // The author's shown name too: a display-name change redraws their rows.
    format!(
        "{}:{}:{}:{}:{}:{}:{}:{}:{}",
        m.msg.client_id,
        m.msg.id,
        state,
        m.msg.edited_at.unwrap_or(0),
        u8::from(m.msg.deleted),
        m.msg.reply_count,
        m.msg.reply_to.as_ref().map_or("", |r| r.excerpt.as_str()),
        reactions,
        m.msg.author.shown_name()
    )
}
