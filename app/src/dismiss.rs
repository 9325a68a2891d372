//! Panels and popovers close the same way everywhere: Escape, or a press outside them (and what
//! opened them). Focus then goes back to the button that opened the panel, unless the press put it
//! on another control on purpose (a field, a button, a link).

use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// What a press may put focus on deliberately; anything else (the body, a scrolling list) gives
/// it back to the opener.
const CONTROLS: &str = "input, textarea, select, button, a[href], summary, [contenteditable=true]";

/// True when focus is nowhere (on the body), inside one of `roots`, or on something that is not a
/// control.
fn focus_is_lost_or_inside(roots: &[web_sys::Element]) -> bool {
    let Some(active) = document().active_element() else {
        return true;
    };
    let node: &web_sys::Node = &active;
    roots.iter().any(|r| r.contains(Some(node))) || !active.matches(CONTROLS).unwrap_or(false)
}

/// Closes a panel on Escape and on a press outside it. `is_open` and `close` read and change its
/// state; `roots` are the elements that count as inside (the panel and its opener); `opener` gets
/// focus back. Browser only: the listeners are added by an effect and removed with the caller.
pub fn dismiss_on_escape_or_outside(
    is_open: impl Fn() -> bool + Clone + 'static,
    close: impl Fn() + Clone + 'static,
    roots: impl Fn() -> Vec<web_sys::Element> + Clone + 'static,
    opener: impl Fn() -> Option<web_sys::HtmlElement> + Clone + 'static,
) {
    Effect::new(move |_| {
        let (is_open2, close2, roots2, opener2) = (
            is_open.clone(),
            close.clone(),
            roots.clone(),
            opener.clone(),
        );
        let keys = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() != "Escape" || ev.default_prevented() || !is_open2() {
                return;
            }
            let refocus = focus_is_lost_or_inside(&roots2());
            close2();
            if refocus {
                if let Some(el) = opener2() {
                    let _ = el.focus();
                }
            }
        });
        let (is_open, close, roots, opener) = (
            is_open.clone(),
            close.clone(),
            roots.clone(),
            opener.clone(),
        );
        let presses = window_event_listener(leptos::ev::pointerdown, move |ev| {
            if !is_open() {
                return;
            }
            let inside = roots();
            let target = ev.target().and_then(|t| t.dyn_into::<web_sys::Node>().ok());
            if target.is_some_and(|t| inside.iter().any(|r| r.contains(Some(&t)))) {
                return;
            }
            close();
            // The press moves focus after this handler: look once it has.
            let opener = opener.clone();
            request_animation_frame(move || {
                if focus_is_lost_or_inside(&inside) {
                    if let Some(el) = opener() {
                        let _ = el.focus();
                    }
                }
            });
        });
        on_cleanup(move || {
            keys.remove();
            presses.remove();
        });
    });
}
