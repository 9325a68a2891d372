//! The emoji picker: a popover with a search box over the built-in table ([`crate::emoji`]),
//! usable from the keyboard (arrows move, Enter picks, Escape closes) and closed by a press
//! outside it.

use crate::dismiss::dismiss_on_escape_or_outside;
use crate::emoji;
use crate::testid;
use leptos::prelude::*;

/// Emoji per row in the grid (arrow up and down move by this much).
const COLS: usize = 8;
/// How many emoji the grid shows at once: enough to browse, small enough to render at once.
const SHOWN: usize = 80;

thread_local! {
    /// Numbers the pickers on a page, for their elements' ids.
    static PICKERS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The picker, shown while `open`; `on_pick` gets the chosen emoji. `opener` is the button that
/// opened it (focus goes back there when it closes).
#[component]
pub fn EmojiPicker(
    open: RwSignal<bool>,
    on_pick: Callback<String>,
    opener: NodeRef<leptos::html::Button>,
    #[prop(optional, into)] label: Option<String>,
) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let active = RwSignal::new(0usize);
    let panel = NodeRef::<leptos::html::Div>::new();
    let search = NodeRef::<leptos::html::Input>::new();
    let found = Memo::new(move |_| query.with(|q| emoji::search(q, SHOWN)));
    let uid = StoredValue::new(format!(
        "ep{}",
        PICKERS.with(|n| {
            n.set(n.get() + 1);
            n.get()
        })
    ));
    dismiss_on_escape_or_outside(
        move || open.get_untracked(),
        move || open.set(false),
        move || {
            [
                panel.get_untracked().map(Into::into),
                opener.get_untracked().map(Into::into),
            ]
            .into_iter()
            .flatten()
            .collect()
        },
        move || opener.get_untracked().map(Into::into),
    );
    // Opening puts the cursor in the search box, fresh.
    Effect::new(move |_| {
        if open.get() {
            query.set(String::new());
            active.set(0);
            request_animation_frame(move || {
                if let Some(el) = search.get_untracked() {
                    let _ = el.focus();
                }
            });
        }
    });
    let pick = move |glyph: &str| {
        open.set(false);
        on_pick.run(glyph.to_string());
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let n = found.with_untracked(Vec::len);
        let at = active.get_untracked();
        let to = match ev.key().as_str() {
            "ArrowRight" => Some((at + 1).min(n.saturating_sub(1))),
            "ArrowLeft" => Some(at.saturating_sub(1)),
            "ArrowDown" => Some((at + COLS).min(n.saturating_sub(1))),
            "ArrowUp" => Some(at.saturating_sub(COLS)),
            "Enter" => {
                ev.prevent_default();
                if let Some(e) = found.with_untracked(|f| f.get(at).copied()) {
                    pick(e.glyph);
                }
                None
            }
            _ => None,
        };
        if let Some(to) = to {
            ev.prevent_default();
            active.set(to);
            let id = format!("{}-{to}", uid.get_value());
            if let Some(el) = document().get_element_by_id(&id) {
                el.scroll_into_view_with_bool(false);
            }
        }
    };
    let label = label.unwrap_or_else(|| "Choose an emoji".into());
    view! {
        <Show when=move || open.get()>
            <div class="emoji-picker" role="dialog" aria-label=label.clone() node_ref=panel data-testid=testid::EMOJI_PICKER>
                <input
                    type="search"
                    placeholder="Search emoji"
                    aria-label="Search emoji"
                    autocomplete="off"
                    role="combobox"
                    aria-expanded="true"
                    aria-controls=move || format!("{}-list", uid.get_value())
                    aria-activedescendant=move || format!("{}-{}", uid.get_value(), active.get())
                    node_ref=search
                    prop:value=move || query.get()
                    on:input=move |ev| {
                        query.set(event_target_value(&ev));
                        active.set(0);
                    }
                    on:keydown=on_key
                    data-testid=testid::EMOJI_SEARCH
                />
                <div class="emoji-grid" role="listbox" id=move || format!("{}-list", uid.get_value()) aria-label="Emoji">
                    {move || {
                        let list = found.get();
                        if list.is_empty() {
                            return view! { <p class="muted">"No emoji by that name."</p> }.into_any();
                        }
                        list.into_iter()
                            .enumerate()
                            .map(|(i, e)| {
                                let glyph = e.glyph;
                                view! {
                                    <button
                                        type="button"
                                        role="option"
                                        tabindex="-1"
                                        id=format!("{}-{i}", uid.get_value())
                                        class:active=move || active.get() == i
                                        aria-selected=move || (active.get() == i).to_string()
                                        title=format!(":{}:", e.code)
                                        aria-label=e.code.replace('_', " ")
                                        on:click=move |_| pick(glyph)
                                        data-testid=testid::EMOJI_OPTION
                                    >
                                        {glyph}
                                    </button>
                                }
                            })
                            .collect_view()
                            .into_any()
                    }}
                </div>
            </div>
        </Show>
    }
}
