//! A one-field form's parts: its field with a label, and its error said under it.

use leptos::prelude::*;

/// A one-field form's error: said under the field (which points to it with
/// `aria-describedby`), and the focus moves to the field.
#[derive(Clone, Copy)]
pub struct FieldError {
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

/// One labelled text field with its error said under it: the label, the input (pointing to the
/// error with `aria-describedby` while there is one, and cleared of it by typing), and the
/// error. `children` (a submit button) sit beside the input in a row; without them the input
/// stands alone, for a form that stacks several fields and one button.
#[component]
pub fn TextField(
    /// The input's element id (the label points to it).
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    /// Said under the field, in the element `{id}-error` that the input names in
    /// `aria-describedby`.
    error: FieldError,
    testid: &'static str,
    #[prop(optional)] error_testid: Option<&'static str>,
    /// `text` unless given (`password`).
    #[prop(optional)]
    kind: Option<&'static str>,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional)] maxlength: Option<usize>,
    #[prop(optional)] autocomplete: Option<&'static str>,
    /// `none` for a username, which phones would otherwise capitalize.
    #[prop(optional)]
    autocapitalize: Option<&'static str>,
    /// The label for screen readers only (the placeholder says it on screen).
    #[prop(optional)]
    hide_label: bool,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    let described_by = error_id.clone();
    let input = view! {
        <input
            id=id
            type=kind.unwrap_or("text")
            placeholder=placeholder
            maxlength=maxlength.map(|n| n.to_string())
            autocomplete=autocomplete
            autocapitalize=autocapitalize
            prop:value=move || value.get()
            on:input=move |ev| {
                value.set(event_target_value(&ev));
                error.clear();
            }
            aria-invalid=move || error.is_shown().then_some("true")
            aria-describedby=move || error.is_shown().then(|| described_by.clone())
            node_ref=error.input
            data-testid=testid
        />
    };
    let field = match children {
        Some(beside) => view! { <div class="row">{input}{beside()}</div> }.into_any(),
        None => input.into_any(),
    };
    view! {
        <label for=id class:sr-only=hide_label>{label}</label>
        {field}
        <p id=error_id class="field-error" data-testid=error_testid hidden=move || !error.is_shown()>
            {move || error.text.get().unwrap_or_default()}
        </p>
    }
}
