//! The error of a one-field form, said under its field.

use leptos::prelude::*;

/// A one-field form's error: said under the field (which points to it with
/// `aria-describedby`), and the focus moves to the field.
#[derive(Clone, Copy)]
pub(crate) struct FieldError {
    pub(crate) text: RwSignal<Option<String>>,
    pub(crate) input: NodeRef<leptos::html::Input>,
}

impl FieldError {
    pub(crate) fn new() -> Self {
        FieldError {
            text: RwSignal::new(None),
            input: NodeRef::new(),
        }
    }

    pub(crate) fn show(self, text: impl Into<String>) {
        self.text.set(Some(text.into()));
        request_animation_frame(move || {
            if let Some(i) = self.input.get_untracked() {
                let _ = i.focus();
            }
        });
    }

    pub(crate) fn clear(self) {
        self.text.set(None);
    }

    pub(crate) fn is_shown(self) -> bool {
        self.text.with(Option::is_some)
    }
}
