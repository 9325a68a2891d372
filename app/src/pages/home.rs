//! The home page (`/`): what the middle shows before a room is picked.

use leptos::prelude::*;

#[component]
pub fn Home() -> impl IntoView {
    view! {
        <div class="empty">
            <h1>"Welcome to Switchboard"</h1>
            <p>"Pick a room on the left, create one, or message someone."</p>
        </div>
    }
}
