//! My profile: the display name others see instead of my username, and a password change that
//! signs out my other sessions. A drawer opened from my name in the top bar.

use crate::components::field::{FieldError, TextField};
use crate::state::chat::Chat;
use crate::{api, testid};
use leptos::prelude::*;
use protocol::{PasswordChange, ProfileUpdate, User};

#[component]
pub fn ProfilePanel(open: RwSignal<bool>, opener: NodeRef<leptos::html::Button>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let panel = NodeRef::<leptos::html::Section>::new();
    crate::dismiss::dismiss_on_escape_or_outside(
        move || open.get_untracked(),
        move || open.set(false),
        move || {
            [
                panel.get_untracked().map(web_sys::Element::from),
                opener.get_untracked().map(web_sys::Element::from),
            ]
            .into_iter()
            .flatten()
            .collect()
        },
        move || opener.get_untracked().map(web_sys::HtmlElement::from),
    );
    Effect::new(move |_| {
        if let Some(el) = panel.get() {
            let _ = el.focus();
        }
    });
    let close = move || {
        open.set(false);
        if let Some(el) = opener.get_untracked() {
            let _ = el.focus();
        }
    };
    let username = chat.me.with_value(|m| m.username.clone());

    let name = RwSignal::new(String::new());
    let name_error = FieldError::new();
    Effect::new(move |_| {
        if open.get() {
            name.set(chat.my_name.get_untracked().unwrap_or_default());
            name_error.clear();
        }
    });
    let save_name = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let raw = name.get_untracked();
        if let Err(m) = protocol::check_display_name(&raw) {
            name_error.show(m);
            return;
        }
        let body = ProfileUpdate { display_name: raw };
        leptos::task::spawn_local(async move {
            match api::patch::<_, User>("/api/me", &body).await {
                Ok(me) => {
                    chat.person_renamed(me.author());
                    name.set(me.display_name.unwrap_or_default());
                    chat.notify_ok("Display name saved.");
                }
                Err(e) => name_error.show(e.message),
            }
        });
    };

    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let current_error = FieldError::new();
    let new_error = FieldError::new();
    let save_password = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = PasswordChange {
            current_password: current.get_untracked(),
            new_password: new.get_untracked(),
        };
        if body.current_password.is_empty() {
            current_error.show("Enter your current password.");
            return;
        }
        if let Err(m) = protocol::check_password(&body.new_password) {
            new_error.show(m);
            return;
        }
        leptos::task::spawn_local(async move {
            match api::post::<_, ()>("/api/me/password", &body).await {
                Ok(()) => {
                    current.set(String::new());
                    new.set(String::new());
                    chat.notify_ok("Password changed. Your other sessions are signed out.");
                }
                Err(e) if e.code == "wrong_password" || e.code == "password_required" => {
                    current_error.show(e.message)
                }
                Err(e) => new_error.show(e.message),
            }
        });
    };
    view! {
        <Show when=move || open.get()>
            <section class="settings profile" role="dialog" aria-labelledby="profile-title" tabindex="-1" node_ref=panel data-testid=testid::PROFILE_PANEL>
                <div class="panel-head">
                    <h2 id="profile-title">"Your profile"</h2>
                    <button class="link" on:click=move |_| close() aria-label="Close your profile">"×"</button>
                </div>
                <p class="muted">{format!("Signed in as {username}.")}</p>
                <form class="stacked" on:submit=save_name>
                    <h3>"Display name"</h3>
                    <p class="hint">"Shown instead of your username wherever your name appears."</p>
                    <TextField
                        id="display-name"
                        label="Display name"
                        value=name
                        error=name_error
                        testid=testid::DISPLAY_NAME_INPUT
                        error_testid=testid::DISPLAY_NAME_ERROR
                        maxlength=protocol::MAX_DISPLAY_NAME_CHARS
                        autocomplete="name"
                    />
                    <button type="submit" class="primary" data-testid=testid::DISPLAY_NAME_SAVE>"Save name"</button>
                </form>
                <form class="stacked" on:submit=save_password>
                    <h3>"Password"</h3>
                    <p class="hint">"Changing it signs you out everywhere else; this tab stays signed in."</p>
                    <TextField
                        id="current-password"
                        label="Current password"
                        value=current
                        error=current_error
                        testid=testid::CURRENT_PASSWORD
                        error_testid=testid::PASSWORD_ERROR
                        kind="password"
                        autocomplete="current-password"
                    />
                    <TextField
                        id="new-password"
                        label="New password"
                        value=new
                        error=new_error
                        testid=testid::NEW_PASSWORD
                        kind="password"
                        autocomplete="new-password"
                    />
                    <button type="submit" class="primary" data-testid=testid::PASSWORD_SAVE>"Change password"</button>
                </form>
            </section>
        </Show>
    }
}
