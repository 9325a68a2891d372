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

/// How many pages of older history a jump to a reply's original loads at most, looking for it.
const JUMP_PAGES: usize = 20;

/// Scrolls to a message on screen and highlights it a moment; false when it is not on screen.
fn scroll_and_flash(message_id: &str) -> bool {
    let Some(el) = document().get_element_by_id(&dom_id(message_id)) else {
        return false;
    };
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
    true
}

/// Scrolls to a message in the room and highlights it a moment. One not loaded yet is looked
/// for in older history, page by page, and shown once its page is in; if it cannot be found,
/// a notice says so.
pub fn jump_to(chat: Chat, room_id: &str, message_id: &str) {
    if scroll_and_flash(message_id) {
        return;
    }
    let (room_id, message_id) = (room_id.to_string(), message_id.to_string());
    leptos::task::spawn_local(async move {
        let held = |chat: Chat| {
            chat.logs.with_untracked(|l| {
                l.get(&room_id)
                    .is_some_and(|log| log.msgs.iter().any(|m| m.msg.id == message_id))
            })
        };
        for _ in 0..JUMP_PAGES {
            let more = chat
                .logs
                .with_untracked(|l| l.get(&room_id).is_some_and(|log| log.has_older));
            if !more || held(chat) {
                break;
            }
            chat.load_older(room_id.clone()).await;
        }
        if !held(chat) {
            chat.notify("The original is no longer loaded.");
            return;
        }
        // Once the page's rows are drawn.
        request_animation_frame(move || {
            if !scroll_and_flash(&message_id) {
                chat.notify("The original is no longer loaded.");
            }
        });
    });
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
        .map(|u| u.shown_name())
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
                m.attachments.clone(),
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
    let dom = if in_thread {
        format!("t-{id}")
    } else {
        dom_id(&id)
    };
    // A tap (or click) on the message itself, not on one of its controls, shows its actions:
    // a touch screen has no hover. Another tap on it, or on another message, moves them.
    let actions_open = Memo::new({
        let dom = dom.clone();
        move |_| {
            chat.actions_for
                .with(|a| a.as_deref() == Some(dom.as_str()))
        }
    });
    let on_row_click = {
        let dom = dom.clone();
        move |ev: leptos::ev::MouseEvent| {
            let on_control = ev
                .target()
                .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
                .and_then(|el| {
                    el.closest("button, a, input, textarea, select, .emoji-picker")
                        .ok()
                })
                .flatten()
                .is_some();
            if on_control {
                return;
            }
            let me = dom.clone();
            chat.actions_for.update(|a| {
                *a = if a.as_deref() == Some(me.as_str()) {
                    None
                } else {
                    Some(me)
                }
            });
        }
    };

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
    let files = m.msg.attachments.clone();
    let body = m.msg.body.clone();

    view! {
        <li
            class=format!("msg {state_class}")
            class:mine=is_mine
            class:mentions-me=mentions_me
            class:grouped=!header
            class:deleted=deleted
            class:actions-open=move || actions_open.get() || picker_open.get()
            on:click=on_row_click
            class:focused={
                let id = id.clone();
                move || chat.focus.with(|f| f.as_deref() == Some(id.as_str())) && !in_thread
            }
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
            {(!files.is_empty() && !deleted).then(|| view! { <Attachments files /> })}
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

/// A message's files: images as thumbnails that open the full picture, other files as chips
/// with their name and size that download them.
#[component]
fn Attachments(files: Vec<protocol::Upload>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    view! {
        <div class="attachments" role="group" aria-label="Attachments">
            {files.into_iter().map(|f| {
                let label = format!("{} ({})", f.name, human_size(f.size));
                if f.is_image() {
                    let thumb = format!("{}/thumbnail", f.url);
                    let whole = f.clone();
                    // A plain click opens the viewer; Ctrl/Cmd/Shift-click and the middle button
                    // keep the browser's own ways (a new tab, a download).
                    let open = move |ev: leptos::ev::MouseEvent| {
                        if !(ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key()) && ev.button() == 0 {
                            ev.prevent_default();
                            chat.viewing.set(Some(whole.clone()));
                        }
                    };
                    view! {
                        <a class="attachment-image" href=f.url.clone() target="_blank" rel="noopener"
                            title=label.clone() on:click=open data-testid=testid::ATTACHMENT_IMAGE>
                            <img src=thumb alt=f.name.clone() loading="lazy"
                                width=f.width.map(|w| w.min(320)) />
                        </a>
                    }.into_any()
                } else {
                    view! {
                        <a class="attachment-file" href=f.url.clone() download=f.name.clone()
                            title=label data-testid=testid::ATTACHMENT_FILE>
                            <span class="name">{f.name.clone()}</span>
                            <span class="size">{human_size(f.size)}</span>
                        </a>
                    }.into_any()
                }
            }).collect_view()}
        </div>
    }
}

/// A size in bytes as people read it: "812 bytes", "14 KB", "3.2 MB".
pub fn human_size(n: i64) -> String {
    let n = n.max(0) as f64;
    if n < 1024.0 {
        format!("{n} bytes")
    } else if n < 1024.0 * 1024.0 {
        format!("{:.0} KB", n / 1024.0)
    } else {
        format!("{:.1} MB", n / (1024.0 * 1024.0))
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
