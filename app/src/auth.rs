//! Sign-in and sign-up. Each form posts to the API as a plain HTML form when the wasm has not
//! loaded (the server answers with a redirect), and through fetch with inline errors after.

use crate::{api, testid};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use protocol::{check_password, normalize_username, Credentials, User};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Login,
    Signup,
}

#[component]
pub fn LoginPage() -> impl IntoView {
    view! { <AuthForm mode=Mode::Login /> }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    view! { <AuthForm mode=Mode::Signup /> }
}

/// The message for an error code the server put in `?error=` after a form post.
fn describe(code: &str) -> &'static str {
    match code {
        "bad_credentials" => "Wrong username or password.",
        "username_taken" => "That username is taken.",
        "invalid_username" => "Usernames are 3 to 32 characters: a-z, 0-9, _ . and -.",
        "invalid_password" => "Passwords are at least 8 characters long.",
        "rate_limited" => "Too many attempts. Wait a minute and try again.",
        _ => "Something went wrong. Try again.",
    }
}

#[component]
fn AuthForm(mode: Mode) -> impl IntoView {
    let query = use_query_map();
    let error = RwSignal::new(
        query
            .with_untracked(|q| q.get("error"))
            .map(|code| describe(&code).to_string()),
    );
    // The fields are read when the form is sent, not mirrored into signals: what someone typed
    // before the wasm loaded stays in the page through hydration and is sent as typed.
    let username = NodeRef::<leptos::html::Input>::new();
    let password = NodeRef::<leptos::html::Input>::new();
    let busy = RwSignal::new(false);
    let (title, action, button, other_text, other_href, other_link, pw_complete) = match mode {
        Mode::Login => (
            "Sign in to Switchboard",
            "/api/auth/login",
            "Sign in",
            "New here?",
            "/signup",
            "Create an account",
            "current-password",
        ),
        Mode::Signup => (
            "Create your Switchboard account",
            "/api/auth/signup",
            "Create account",
            "Already have an account?",
            "/login",
            "Sign in",
            "new-password",
        ),
    };

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let value = |field: NodeRef<leptos::html::Input>| {
            field.get_untracked().map(|i| i.value()).unwrap_or_default()
        };
        let creds = Credentials {
            username: value(username),
            password: value(password),
        };
        if mode == Mode::Signup {
            if let Err(m) =
                normalize_username(&creds.username).and_then(|_| check_password(&creds.password))
            {
                error.set(Some(m.to_string()));
                return;
            }
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::post::<_, User>(action, &creds).await {
                Ok(_) => {
                    // A full load, so the server renders the app for the new session.
                    let _ = window().location().set_href("/");
                }
                Err(e) => {
                    error.set(Some(e.message));
                    busy.set(false);
                }
            }
        });
    };

    view! {
        <Title text=if mode == Mode::Login { "Sign in · Switchboard" } else { "Sign up · Switchboard" } />
        <main class="centered">
            <form
                class="card auth"
                method="post"
                action=action
                on:submit=on_submit
                data-testid=testid::AUTH_FORM
                novalidate
            >
                <h1 class="brand">"Switchboard"</h1>
                <h2>{title}</h2>
                <p
                    class="form-error"
                    role="alert"
                    data-testid=testid::AUTH_ERROR
                    hidden=move || error.get().is_none()
                >
                    {move || error.get().unwrap_or_default()}
                </p>
                <label for="username">"Username"</label>
                <input
                    id="username"
                    name="username"
                    type="text"
                    autocomplete="username"
                    autocapitalize="none"
                    spellcheck="false"
                    required
                    minlength="3"
                    maxlength="32"
                    node_ref=username
                />
                <label for="password">"Password"</label>
                <input
                    id="password"
                    name="password"
                    type="password"
                    autocomplete=pw_complete
                    required
                    minlength="8"
                    node_ref=password
                />
                {(mode == Mode::Signup)
                    .then(|| view! { <p class="hint">"3–32 characters: a-z, 0-9, _ . - · password at least 8 characters"</p> })}
                <button type="submit" class="primary" disabled=move || busy.get()>
                    {button}
                </button>
                <p class="switch">{other_text} " " <a href=other_href>{other_link}</a></p>
            </form>
        </main>
    }
}
