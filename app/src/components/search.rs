//! The search panel: opened by Ctrl/Cmd+K or the top bar's button; a query with room and person
//! filters, results grouped by room with the matches marked, arrow keys to move, Enter to open.
//! Opening a result shows its room at that message ([`Chat::open_at`]).

use crate::routes::room_href;
use crate::state::chat::Chat;
use crate::{api, testid};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use protocol::{snippet_parts, SearchHit, SearchResults};
use std::time::Duration;

/// How long typing pauses before the search runs: one request per pause, not per key.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// A snippet's text without Markdown's markers (`**`, `__`, `~~`, backticks): a snippet is a
/// window cut anywhere in a body, so it cannot be parsed as Markdown, and the markers are noise
/// to a reader. Single `*` and `_` stay (`snake_case`, `2 * 3`).
pub fn unmarked(text: &str) -> String {
    text.replace("**", "")
        .replace("__", "")
        .replace("~~", "")
        .replace('`', "")
}

/// A snippet as text with the matches in `<mark>` (a view tree: the text is never HTML).
fn snippet_view(snippet: &str) -> impl IntoView {
    snippet_parts(snippet)
        .into_iter()
        .map(|(hit, text)| {
            let text = unmarked(text);
            if hit {
                view! { <mark>{text}</mark> }.into_any()
            } else {
                view! { <span>{text}</span> }.into_any()
            }
        })
        .collect_view()
}

/// `q` percent-encoded for a query string.
fn encode(q: &str) -> String {
    js_sys::encode_uri_component(q).into()
}

#[component]
pub fn SearchPanel(open: RwSignal<bool>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let navigate = use_navigate();
    let query = RwSignal::new(String::new());
    let room = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let results = RwSignal::new(Vec::<SearchHit>::new());
    let error = RwSignal::new(None::<String>);
    let searching = RwSignal::new(false);
    let active = RwSignal::new(0usize);
    // People seen in results so far (id, name): the "from" choices besides me.
    let people = RwSignal::new(Vec::<(String, String)>::new());
    let generation = StoredValue::new(0u64);
    let input_ref = NodeRef::<leptos::html::Input>::new();

    // Ctrl/Cmd+K anywhere opens (or closes) the panel; browser only.
    Effect::new(move |_| {
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if (ev.ctrl_key() || ev.meta_key()) && ev.key().eq_ignore_ascii_case("k") {
                ev.prevent_default();
                open.update(|o| *o = !*o);
            }
        });
        on_cleanup(move || handle.remove());
    });
    Effect::new(move |_| {
        if open.get() {
            request_animation_frame(move || {
                if let Some(el) = input_ref.get_untracked() {
                    let _ = el.focus();
                    el.select();
                }
            });
        }
    });

    let run = move || {
        let q = query.get_untracked();
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        if q.trim().is_empty() {
            results.set(Vec::new());
            error.set(None);
            return;
        }
        let mut url = format!("/api/search?q={}", encode(&q));
        let r = room.get_untracked();
        if !r.is_empty() {
            url.push_str(&format!("&room_id={}", encode(&r)));
        }
        let f = from.get_untracked();
        if !f.is_empty() {
            url.push_str(&format!("&from={}", encode(&f)));
        }
        set_timeout(
            move || {
                if generation.get_value() != mine {
                    return;
                }
                searching.set(true);
                leptos::task::spawn_local(async move {
                    let answer = api::get::<SearchResults>(&url).await;
                    if generation.get_value() != mine {
                        return;
                    }
                    searching.set(false);
                    match answer {
                        Ok(list) => {
                            people.update(|p| {
                                for hit in &list.results {
                                    let a = &hit.message.author;
                                    if !p.iter().any(|(id, _)| *id == *a.id) {
                                        let name = a
                                            .display_name
                                            .clone()
                                            .unwrap_or_else(|| a.username.clone());
                                        p.push((a.id.to_string(), name));
                                    }
                                }
                            });
                            error.set(None);
                            active.set(0);
                            results.set(list.results);
                        }
                        Err(e) => {
                            results.set(Vec::new());
                            error.set(Some(e.message));
                        }
                    }
                });
            },
            DEBOUNCE,
        );
    };

    let open_hit = Callback::new(move |hit: SearchHit| {
        open.set(false);
        let room_id = hit.message.room_id.to_string();
        navigate(&room_href(&room_id), Default::default());
        leptos::task::spawn_local(chat.open_at(room_id, hit.message.id.to_string()));
    });

    // Results grouped by room, rooms in the order of their newest result; each result keeps its
    // place in the flat list (arrow keys walk that).
    let groups = Memo::new(move |_| {
        let mut out: Vec<(String, Vec<(usize, SearchHit)>)> = Vec::new();
        results.with(|rs| {
            for (i, hit) in rs.iter().enumerate() {
                let room_id = hit.message.room_id.to_string();
                match out.iter_mut().find(|(r, _)| *r == room_id) {
                    Some((_, list)) => list.push((i, hit.clone())),
                    None => out.push((room_id, vec![(i, hit.clone())])),
                }
            }
        });
        // The flat order follows the groups as shown.
        out
    });
    let order = Memo::new(move |_| {
        groups.with(|g| {
            g.iter()
                .flat_map(|(_, l)| l.iter().map(|(i, _)| *i))
                .collect::<Vec<_>>()
        })
    });
    let room_name = move |id: &str| {
        chat.rooms.with_untracked(|rs| {
            rs.iter()
                .find(|r| *r.id == *id)
                .map(|r| {
                    r.dm_with
                        .as_ref()
                        .map(|a| {
                            format!(
                                "@{}",
                                a.display_name.clone().unwrap_or_else(|| a.username.clone())
                            )
                        })
                        .unwrap_or_else(|| format!("#{}", r.name))
                })
                .unwrap_or_else(|| "A room".to_string())
        })
    };

    let on_key = {
        move |ev: leptos::ev::KeyboardEvent| {
            let n = order.with_untracked(Vec::len);
            match ev.key().as_str() {
                "Escape" => {
                    ev.prevent_default();
                    open.set(false);
                }
                "ArrowDown" if n > 0 => {
                    ev.prevent_default();
                    active.update(|a| *a = (*a + 1) % n);
                }
                "ArrowUp" if n > 0 => {
                    ev.prevent_default();
                    active.update(|a| *a = (*a + n - 1) % n);
                }
                "Enter" if n > 0 => {
                    ev.prevent_default();
                    let pos = active.get_untracked().min(n - 1);
                    let index = order.with_untracked(|o| o[pos]);
                    if let Some(hit) = results.with_untracked(|r| r.get(index).cloned()) {
                        open_hit.run(hit);
                    }
                }
                _ => {}
            }
        }
    };
    let my_id = StoredValue::new(chat.me.with_value(|u| u.id.to_string()));

    view! {
        <Show when=move || open.get()>
            <div class="search-backdrop" on:click=move |_| open.set(false)></div>
            <div class="search-panel" role="dialog" aria-modal="true" aria-label="Search messages" data-testid=testid::SEARCH_PANEL on:keydown=on_key>
                <div class="search-row">
                    <input
                        type="search"
                        node_ref=input_ref
                        placeholder="Search messages: words, prefix*, \"a phrase\""
                        aria-label="Search messages"
                        maxlength="200"
                        prop:value=move || query.get()
                        on:input=move |ev| { query.set(event_target_value(&ev)); run(); }
                        data-testid=testid::SEARCH_INPUT
                    />
                    <button type="button" class="link" on:click=move |_| open.set(false) aria-label="Close search">"×"</button>
                </div>
                <div class="search-filters">
                    <label>
                        <span class="sr-only">"Room"</span>
                        <select
                            on:change=move |ev| { room.set(event_target_value(&ev)); run(); }
                            prop:value=move || room.get()
                            data-testid=testid::SEARCH_ROOM
                        >
                            <option value="">"All my rooms"</option>
                            {move || chat.rooms.with(|rs| rs.iter().filter(|r| r.is_member).map(|r| {
                                let label = r.dm_with.as_ref().map(|a| format!("@{}", a.display_name.clone().unwrap_or_else(|| a.username.clone()))).unwrap_or_else(|| format!("#{}", r.name));
                                view! { <option value=r.id.to_string()>{label}</option> }
                            }).collect_view())}
                        </select>
                    </label>
                    <label>
                        <span class="sr-only">"From"</span>
                        <select
                            on:change=move |ev| { from.set(event_target_value(&ev)); run(); }
                            prop:value=move || from.get()
                            data-testid=testid::SEARCH_FROM
                        >
                            <option value="">"Anyone"</option>
                            <option value=my_id.get_value()>"Me"</option>
                            {
                                move || people.with(|p| p.iter().filter(|(id, _)| *id != my_id.get_value()).map(|(id, name)| {
                                    view! { <option value=id.clone()>{name.clone()}</option> }
                                }).collect_view())
                            }
                        </select>
                    </label>
                </div>
                <div class="search-results" role="listbox" aria-label="Results" data-testid=testid::SEARCH_RESULTS>
                    {move || error.get().map(|e| view! { <p class="search-note error" role="alert">{e}</p> })}
                    {move || {
                        let none = !searching.get() && error.with(Option::is_none) && results.with(Vec::is_empty)
                            && !query.with(|q| q.trim().is_empty());
                        none.then(|| view! { <p class="search-note">"No messages found."</p> })
                    }}
                    {move || {
                                                groups.get().into_iter().map(|(room_id, hits)| {
                            let name = room_name(&room_id);
                                                        view! {
                                <section class="search-group">
                                    <h3>{name}</h3>
                                    <ul>
                                        {hits.into_iter().map(|(i, hit)| {
                                                                                        let a = &hit.message.author;
                                            let who = a.display_name.clone().unwrap_or_else(|| a.username.clone());
                                            let when = crate::time::clock(hit.message.created_at, chat.tz_offset.get_untracked());
                                            let is_active = move || order.with(|o| o.get(active.get()) == Some(&i));
                                            let snippet = snippet_view(&hit.snippet);
                                            let h = hit.clone();
                                            view! {
                                                <li>
                                                    <button
                                                        type="button"
                                                        class="search-hit"
                                                        class:active=is_active
                                                        role="option"
                                                        aria-selected=move || is_active().to_string()
                                                        on:click=move |_| open_hit.run(h.clone())
                                                        data-testid=testid::SEARCH_HIT
                                                    >
                                                        <span class="who">{who}</span>
                                                        <span class="when">{when}</span>
                                                        <span class="snippet">{snippet}</span>
                                                    </button>
                                                </li>
                                            }
                                        }).collect_view()}
                                    </ul>
                                </section>
                            }
                        }).collect_view()
                    }}
                </div>
                <p class="search-help">"↑ ↓ to move · Enter to open · Esc to close"</p>
            </div>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn snippets_lose_markdown_markers_only() {
        assert_eq!(
            super::unmarked("Here are **the files** from `today`"),
            "Here are the files from today"
        );
        assert_eq!(
            super::unmarked("~~old~~ __new__ snake_case 2 * 3"),
            "old new snake_case 2 * 3"
        );
    }
}
