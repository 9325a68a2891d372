//! The composer: writing a message (Enter sends, Shift+Enter a new line), answering one ("Replying
//! to bob"), `:shortcode:` and `@mention` completion, an emoji button, typing notices, the draft
//! kept over reloads, Up in an empty composer to edit my last message, and files (the paperclip,
//! a paste, a drop on the room; see [`crate::components::pending_files`]). The room's composer
//! and a thread's are the same component.

use crate::components::emoji_picker::EmojiPicker;
use crate::components::pending_files::{files_of, DroppedFiles, PendingFileList, PendingFiles};
use crate::live::{self, ConnState};
use crate::state::chat::{now, Chat};
use crate::{api, emoji, outbox, testid};
use leptos::prelude::*;
use protocol::{ClientFrame, Feed};
use send_wrapper::SendWrapper;

/// Least time between two typing notices sent while the user types.
const TYPING_SEND_EVERY_MS: f64 = 3_000.0;
/// Suggestions shown at once under the composer.
const SUGGESTIONS: usize = 8;

/// One completion offered while typing: what it shows and what replaces the typed word.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub label: String,
    pub insert: String,
}

/// The `@name` being typed at the end of `before_caret` (`hi @bo` → `bo`; `@` alone → ``).
pub fn typing_mention(before_caret: &str) -> Option<&str> {
    let at = before_caret.rfind('@')?;
    let word = &before_caret[at + 1..];
    let starts_word = before_caret[..at]
        .chars()
        .next_back()
        .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '['));
    let ok = starts_word
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    ok.then_some(word)
}

/// What to offer for the text before the caret: emoji for `:sm`, people for `@bo`. Returns the
/// byte where the typed word starts (it is replaced) and the suggestions.
pub fn suggest(before_caret: &str, people: &[String]) -> Option<(usize, Vec<Suggestion>)> {
    if let Some(code) = emoji::typing_shortcode(before_caret) {
        let list: Vec<Suggestion> = emoji::search(code, SUGGESTIONS)
            .into_iter()
            .map(|e| Suggestion {
                label: format!("{} :{}:", e.glyph, e.code),
                insert: e.glyph.to_string(),
            })
            .collect();
        let start = before_caret.len() - code.len() - 1;
        return (!list.is_empty()).then_some((start, list));
    }
    let name = typing_mention(before_caret)?.to_lowercase();
    let mut list: Vec<&String> = people
        .iter()
        .filter(|p| p.to_lowercase().starts_with(&name))
        .collect();
    list.extend(
        people
            .iter()
            .filter(|p| !p.to_lowercase().starts_with(&name) && p.to_lowercase().contains(&name)),
    );
    let list: Vec<Suggestion> = list
        .into_iter()
        .take(SUGGESTIONS)
        .map(|p| Suggestion {
            label: format!("@{p}"),
            insert: format!("@{p} "),
        })
        .collect();
    let start = before_caret.len() - name.len() - 1;
    (!list.is_empty()).then_some((start, list))
}

/// The byte offset in `s` of UTF-16 offset `units` (what a text field's caret gives).
fn byte_at_utf16(s: &str, units: u32) -> usize {
    let mut n = 0u32;
    for (i, c) in s.char_indices() {
        if n >= units {
            return i;
        }
        n += c.len_utf16() as u32;
    }
    s.len()
}

/// Whoever wrote in the room: who `@` completes to besides the members (all of it when the
/// server has no member list to give).
fn people_from_log(chat: Chat, room_id: &str) -> Vec<String> {
    chat.logs.with_untracked(|l| {
        let mut names: Vec<String> = l
            .get(room_id)
            .map(|log| {
                log.msgs
                    .iter()
                    .map(|m| m.msg.author.username.clone())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.dedup();
        names
    })
}

#[component]
pub fn Composer(
    room_id: String,
    /// A thread's composer: every message answers this one.
    #[prop(optional)]
    thread_root: Option<String>,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let rid = StoredValue::new(room_id);
    let root = StoredValue::new(thread_root);
    let in_thread = root.with_value(Option::is_some);
    let me_id = StoredValue::new(chat.me_id());
    let text = RwSignal::new(String::new());
    let last_typing = StoredValue::new(0.0f64);
    let field = NodeRef::<leptos::html::Textarea>::new();
    let suggestions = RwSignal::new(Vec::<Suggestion>::new());
    let replace_from = StoredValue::new(0usize);
    let active = RwSignal::new(0usize);
    let people = RwSignal::new(Vec::<String>::new());
    let picker_open = RwSignal::new(false);
    let emoji_button = NodeRef::<leptos::html::Button>::new();
    let field_id = if in_thread {
        "thread-composer"
    } else {
        "composer"
    };
    let list_id = format!("{field_id}-suggestions");
    let files = PendingFiles::new((!in_thread).then(|| (me_id.get_value(), rid.get_value())));
    let file_input = NodeRef::<leptos::html::Input>::new();
    on_cleanup(move || files.cancel_all());
    // Files dropped on the room's page come to the room's composer.
    if !in_thread {
        if let Some(DroppedFiles(dropped)) = use_context::<DroppedFiles>() {
            Effect::new(move |_| {
                let list = dropped.get();
                if !list.is_empty() {
                    dropped.set(Vec::new());
                    files.add(list.into_iter().map(SendWrapper::take).collect(), chat);
                }
            });
        }
    }

    // Browser only: what was typed here before a reload comes back, and who can be mentioned.
    Effect::new(move |_| {
        if !in_thread {
            if let Some(draft) = outbox::draft(&me_id.get_value(), &rid.get_value()) {
                if text.get_untracked().is_empty() {
                    text.set(draft);
                }
            }
            files.restore();
        }
        let url = format!("/api/rooms/{}/members", rid.get_value());
        leptos::task::spawn_local(async move {
            if let Ok(v) = api::get::<serde_json::Value>(&url).await {
                let mut names: Vec<String> = v["members"]
                    .as_array()
                    .map(|ms| {
                        ms.iter()
                            .filter_map(|m| m["user"]["username"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if !names.is_empty() {
                    names.sort();
                    let _ = people.try_set(names);
                }
            }
        });
    });
    let replying = Memo::new(move |_| {
        if in_thread {
            return None;
        }
        chat.replying
            .with(|r| r.clone().filter(|r| r.room_id == rid.get_value()))
    });
    let submit = move || {
        let body = text.get_untracked();
        if files.uploading() {
            chat.notify("Wait for the files to finish uploading (or cancel them), then send.");
            return;
        }
        let attachments = files.stored();
        if body.trim().is_empty() && attachments.is_empty() {
            return;
        }
        if body.trim().chars().count() > protocol::MAX_BODY_CHARS {
            chat.notify("Messages are at most 4000 characters.");
            return;
        }
        text.set(String::new());
        suggestions.set(Vec::new());
        if !in_thread {
            outbox::set_draft(&me_id.get_value(), &rid.get_value(), "");
        }
        last_typing.set_value(0.0);
        let reply_to = root
            .get_value()
            .or_else(|| replying.get_untracked().map(|r| r.to.id.to_string()));
        if !in_thread {
            chat.replying.set(None);
        }
        files.clear();
        chat.send(rid.get_value(), body, None, reply_to, attachments);
    };
    let refresh_suggestions = move || {
        let Some(el) = field.get_untracked() else {
            return;
        };
        let value = el.value();
        let caret = el.selection_start().ok().flatten().unwrap_or(0);
        let before = &value[..byte_at_utf16(&value, caret)];
        // The members (when the server lists them) and whoever wrote here so far.
        let mut who = people.get_untracked();
        who.extend(people_from_log(chat, &rid.get_value()));
        who.sort();
        who.dedup();
        match suggest(before, &who) {
            Some((start, list)) => {
                replace_from.set_value(start);
                active.set(0);
                suggestions.set(list);
            }
            None => {
                if !suggestions.with_untracked(Vec::is_empty) {
                    suggestions.set(Vec::new());
                }
            }
        }
    };
    // Puts `insert` at the caret, replacing the text from byte `from` (the typed word).
    let insert_at_caret = move |from: Option<usize>, insert: &str| {
        let Some(el) = field.get_untracked() else {
            return;
        };
        let value = el.value();
        let caret = el
            .selection_start()
            .ok()
            .flatten()
            .map_or(value.len(), |c| byte_at_utf16(&value, c));
        let from = from.unwrap_or(caret).min(caret);
        let new = format!("{}{}{}", &value[..from], insert, &value[caret..]);
        let new_caret =
            (value[..from].encode_utf16().count() + insert.encode_utf16().count()) as u32;
        text.set(new.clone());
        el.set_value(&new);
        let _ = el.set_selection_range(new_caret, new_caret);
        let _ = el.focus();
        if !in_thread {
            outbox::set_draft(&me_id.get_value(), &rid.get_value(), &new);
        }
        suggestions.set(Vec::new());
    };
    let accept = move |i: usize| {
        if let Some(s) = suggestions.with_untracked(|l| l.get(i).cloned()) {
            insert_at_caret(Some(replace_from.get_value()), &s.insert);
        }
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.is_composing() {
            return;
        }
        let open = suggestions.with_untracked(|s| s.len());
        if open > 0 {
            let handled = match ev.key().as_str() {
                "ArrowDown" => {
                    active.update(|a| *a = (*a + 1) % open);
                    true
                }
                "ArrowUp" => {
                    active.update(|a| *a = (*a + open - 1) % open);
                    true
                }
                "Enter" | "Tab" => {
                    accept(active.get_untracked());
                    true
                }
                "Escape" => {
                    suggestions.set(Vec::new());
                    ev.stop_propagation();
                    true
                }
                _ => false,
            };
            if handled {
                ev.prevent_default();
                return;
            }
        }
        match ev.key().as_str() {
            "Enter" if !ev.shift_key() => {
                ev.prevent_default();
                submit();
            }
            "ArrowUp" if !in_thread && text.with_untracked(String::is_empty) => {
                if let Some(id) = chat.my_last_message(&rid.get_value()) {
                    ev.prevent_default();
                    chat.editing.set(Some(id));
                }
            }
            "Escape" if replying.get_untracked().is_some() => {
                ev.prevent_default();
                ev.stop_propagation();
                chat.replying.set(None);
            }
            _ => {}
        }
    };
    let on_paste = move |ev: leptos::ev::ClipboardEvent| {
        let pasted = files_of(ev.clipboard_data().and_then(|d| d.files()));
        if !pasted.is_empty() {
            ev.prevent_default();
            files.add(pasted, chat);
        }
    };
    let on_picked = move |_| {
        if let Some(input) = file_input.get_untracked() {
            files.add(files_of(input.files()), chat);
            // The same file can be picked again.
            input.set_value("");
        }
    };
    let on_input = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        if !in_thread {
            outbox::set_draft(&me_id.get_value(), &rid.get_value(), &value);
        }
        text.set(value);
        refresh_suggestions();
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
    let on_pick = Callback::new(move |glyph: String| insert_at_caret(None, &glyph));
    let placeholder = if in_thread {
        "Reply in thread…"
    } else {
        "Write a message…"
    };
    let list_id2 = list_id.clone();
    view! {
        <Show when=move || offline() && !in_thread>
            <p class="composer-offline" role="status" data-testid=testid::COMPOSER_OFFLINE>
                <span class="dot" aria-hidden="true"></span>
                "You are offline. Messages you send now wait here and go out by themselves when the connection is back."
            </p>
        </Show>
        {move || replying.get().map(|r| view! {
            <div class="replying" data-testid=testid::REPLYING>
                <span>"Replying to " <strong>{r.to.author.shown_name().to_string()}</strong> ": " <span class="excerpt">{r.to.excerpt.clone()}</span></span>
                <button type="button" class="link" aria-label="Cancel the reply" on:click=move |_| chat.replying.set(None) data-testid=testid::REPLY_CANCEL>"Cancel"</button>
            </div>
        })}
        <PendingFileList files />
        <form class="composer" class:thread-composer=in_thread on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); submit(); }>
            <Show when=move || !suggestions.with(Vec::is_empty)>
                <ul class="suggestions" role="listbox" id=list_id.clone() aria-label="Suggestions" data-testid=testid::SUGGESTIONS>
                    {move || suggestions.get().into_iter().enumerate().map(|(i, s)| view! {
                        <li
                            role="option"
                            id=format!("{field_id}-s{i}")
                            aria-selected=move || (active.get() == i).to_string()
                            class:active=move || active.get() == i
                            on:mousedown=move |ev: leptos::ev::MouseEvent| { ev.prevent_default(); accept(i); }
                            data-testid=testid::SUGGESTION
                        >{s.label}</li>
                    }).collect_view()}
                </ul>
            </Show>
            <textarea
                id=field_id
                rows="2"
                placeholder=placeholder
                title="Enter sends, Shift+Enter starts a new line"
                aria-label=if in_thread { "Reply in thread" } else { "Message" }
                role="combobox"
                aria-autocomplete="list"
                aria-expanded=move || (!suggestions.with(Vec::is_empty)).to_string()
                aria-controls=list_id2
                aria-activedescendant=move || (!suggestions.with(Vec::is_empty)).then(|| format!("{field_id}-s{}", active.get()))
                node_ref=field
                prop:value=move || text.get()
                on:input=on_input
                on:keydown=on_keydown
                on:paste=on_paste
                on:blur=move |_| suggestions.set(Vec::new())
                data-testid=if in_thread { testid::THREAD_COMPOSER } else { testid::COMPOSER }
            ></textarea>
            <div class="composer-tools">
                <button type="button" class="emoji-button" aria-label="Insert an emoji" title="Insert an emoji" node_ref=emoji_button
                    aria-expanded=move || picker_open.get().to_string()
                    on:click=move |_| picker_open.update(|o| *o = !*o)
                    data-testid=testid::COMPOSER_EMOJI>"☺"</button>
                <EmojiPicker open=picker_open on_pick opener=emoji_button />
                <button type="button" class="attach-button" aria-label="Attach files" title="Attach files (or drop them on the room, or paste)"
                    on:click=move |_| if let Some(i) = file_input.get_untracked() { i.click() }
                    data-testid=testid::ATTACH_BUTTON>
                    // A paperclip drawn here: the emoji is missing from many fonts.
                    <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" fill="none" stroke="currentColor"
                        stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
                        <path d="M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9" />
                    </svg>
                </button>
                <input type="file" multiple hidden node_ref=file_input on:change=on_picked
                    tabindex="-1" aria-hidden="true" data-testid=testid::ATTACH_INPUT />
                <button type="submit" class="primary" disabled=over
                    data-testid=if in_thread { testid::THREAD_SEND } else { testid::SEND }>
                    {move || if files.list.with(|l| l.iter().any(|f| matches!(f.state, crate::components::pending_files::FileState::Sending(_)))) { "Uploading…" } else { "Send" }}
                </button>
            </div>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_complete_from_people() {
        let people = vec!["alice".to_string(), "bob".to_string(), "bobby".to_string()];
        let (start, list) = suggest("hi @bo", &people).unwrap();
        assert_eq!(start, 3);
        assert_eq!(list[0].insert, "@bob ");
        assert_eq!(list.len(), 2);
        assert!(suggest("mail a@bo", &people).is_none());
        assert_eq!(suggest("@", &people).unwrap().1.len(), 3);
        assert!(suggest("hi @zed", &people).is_none());
    }

    #[test]
    fn shortcodes_complete_to_emoji() {
        let (start, list) = suggest("nice :tad", &[]).unwrap();
        assert_eq!(start, 5);
        assert_eq!(list[0].insert, "🎉");
        assert!(suggest("at 10:30", &[]).is_none());
    }

    #[test]
    fn carets_count_utf16() {
        assert_eq!(byte_at_utf16("a👍b", 3), 5);
        assert_eq!(byte_at_utf16("é", 1), 2);
        assert_eq!(byte_at_utf16("ab", 9), 2);
    }
}
