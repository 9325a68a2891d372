//! A picture at full size over the page: opened from a thumbnail, closed by Escape, the Close
//! button or a press on the dark surround; focus goes to Close when it opens and back to the
//! thumbnail when it closes. It shows the name, the size in pixels and bytes, and a download.

use crate::components::message::human_size;
use crate::state::chat::Chat;
use crate::testid;
use leptos::prelude::*;

#[component]
pub fn ImageViewer() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let close_button = NodeRef::<leptos::html::Button>::new();
    // What had focus (the thumbnail) gets it back on close.
    let opener = StoredValue::new(None::<send_wrapper::SendWrapper<web_sys::HtmlElement>>);
    Effect::new(move |_| {
        if chat.viewing.with(Option::is_some) {
            let active = document()
                .active_element()
                .and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok());
            opener.set_value(active.map(send_wrapper::SendWrapper::new));
            request_animation_frame(move || {
                if let Some(b) = close_button.get_untracked() {
                    let _ = b.focus();
                }
            });
        }
    });
    let close = move || {
        chat.viewing.set(None);
        if let Some(el) = opener.get_value() {
            let _ = el.focus();
        }
        opener.set_value(None);
    };
    Effect::new(move |_| {
        let keys = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() == "Escape" && chat.viewing.with_untracked(Option::is_some) {
                ev.prevent_default();
                close();
            }
        });
        on_cleanup(move || keys.remove());
    });
    view! {
        {move || chat.viewing.get().map(|f| {
            let pixels = f.width.zip(f.height).map(|(w, h)| format!("{w} × {h} · ")).unwrap_or_default();
            let caption = format!("{pixels}{}", human_size(f.size));
            view! {
                <div class="viewer" role="dialog" aria-modal="true" aria-label=f.name.clone()
                    on:click=move |_| close() data-testid=testid::IMAGE_VIEWER>
                    <figure on:click=|ev: leptos::ev::MouseEvent| ev.stop_propagation()>
                        <img src=f.url.clone() alt=f.name.clone() />
                        <figcaption>
                            <span class="name">{f.name.clone()}</span>
                            <span class="meta">{caption}</span>
                            <a class="link" href=f.url.clone() download=f.name.clone()>"Download"</a>
                            <button type="button" class="link" node_ref=close_button on:click=move |_| close()
                                data-testid=testid::IMAGE_VIEWER_CLOSE>"Close"</button>
                        </figcaption>
                    </figure>
                </div>
            }
        })}
    }
}
