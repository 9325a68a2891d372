//! The thread panel beside a room: a message and its replies, kept live by the same events as
//! the room, with its own composer (every message sent there answers the thread's root).

use crate::components::composer::Composer;
use crate::components::message::MessageRow;
use crate::state::chat::{Chat, SendState, UiMessage};
use crate::testid;
use leptos::prelude::*;

#[component]
pub fn ThreadPanel(room_id: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let rid = StoredValue::new(room_id);
    let open = Memo::new(move |_| {
        chat.thread.with(|t| {
            t.as_ref()
                .filter(|t| t.room_id == rid.get_value())
                .map(|t| t.root_id.clone())
        })
    });
    // Confirmed messages from the thread, then my replies still on their way (from the room's
    // outbox copies).
    let rows = Memo::new(move |_| {
        let Some(root) = open.get() else {
            return Vec::new();
        };
        let mut rows: Vec<UiMessage> = chat.thread.with(|t| {
            t.as_ref()
                .map(|t| {
                    t.msgs
                        .iter()
                        .map(|m| UiMessage {
                            msg: m.clone(),
                            state: SendState::Sent,
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
        chat.logs.with(|l| {
            if let Some(log) = l.get(&rid.get_value()) {
                rows.extend(
                    log.msgs
                        .iter()
                        .filter(|m| {
                            m.state != SendState::Sent
                                && m.msg.reply_to.as_ref().is_some_and(|r| r.id == root)
                        })
                        .cloned(),
                );
            }
        });
        rows
    });
    let loaded = move || chat.thread.with(|t| t.as_ref().is_some_and(|t| t.loaded));
    let close = move || chat.thread.set(None);
    view! {
        <Show when=move || open.get().is_some()>
            <aside
                class="thread-panel"
                aria-label="Thread"
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Escape" && !ev.default_prevented() {
                        close();
                    }
                }
                data-testid=testid::THREAD_PANEL
            >
                <header>
                    <h2>"Thread"</h2>
                    <button type="button" class="link" aria-label="Close the thread" on:click=move |_| close() data-testid=testid::THREAD_CLOSE>"Close"</button>
                </header>
                <ol class="log thread-log" aria-live="polite" aria-label="Thread messages">
                    <For
                        each=move || rows.get().into_iter().enumerate()
                        key=|(i, m)| format!("{i}:{}", crate::components::message::row_version(m))
                        let:item
                    >
                        {
                            let (i, m) = item;
                            view! {
                                {(i == 1).then(|| view! { <li class="day"><span>"Replies"</span></li> })}
                                <MessageRow m header=true in_thread=true />
                            }
                        }
                    </For>
                </ol>
                <Show when=move || !loaded()>
                    <p class="muted center">"Loading the thread…"</p>
                </Show>
                {move || open.get().map(|root| view! { <Composer room_id=rid.get_value() thread_root=root /> })}
            </aside>
        </Show>
    }
}
