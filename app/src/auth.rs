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

/// The words for an error code, the same whether the server put the code in `?error=` after a
/// plain form post or answered the hydrated form's fetch, or the form found it before sending.
fn describe(code: &str) -> Option<&'static str> {
    Some(match code {
        "username_required" => "Enter your username.",
        "password_required" => "Enter your password.",
        "bad_credentials" => "Wrong username or password.",
        "username_taken" => "That username is taken.",
        "invalid_username" => "Usernames are 3 to 32 characters: a-z, 0-9, _ . and -.",
        "invalid_password" => "Passwords are 8 to 256 characters long.",
        "rate_limited" => "Too many attempts. Wait a minute and try again.",
        "storage_unavailable" | "internal" => {
            "The server cannot sign you in right now. Try again in a moment."
        }
        _ => return None,
    })
}

/// Which field an error is about: its words sit under that field, which gets the focus.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Field {
    Username,
    Password,
    /// The form as a whole (wrong credentials, too many attempts): said above the fields.
    Form,
}

fn field_of(code: &str) -> Field {
    match code {
        "username_required" | "invalid_username" | "username_taken" => Field::Username,
        "password_required" | "invalid_password" => Field::Password,
        _ => Field::Form,
    }
}

/// What the form finds wrong before sending, as the code the server would answer: the same
/// rules (protocol's), so the same words.
fn check_fields(mode: Mode, username: &str, password: &str) -> Option<&'static str> {
    if username.trim().is_empty() {
        return Some("username_required");
    }
    if password.is_empty() {
        return Some("password_required");
    }
    if mode == Mode::Signup {
        if normalize_username(username).is_err() {
            return Some("invalid_username");
        }
        if check_password(password).is_err() {
            return Some("invalid_password");
        }
    }
    None
}

/// An error shown on the form: which field, and what to say.
#[derive(Clone, PartialEq, Debug)]
struct FormError {
    field: Field,
    text: String,
}

impl FormError {
    /// `fallback` is said for a code without words of its own (a network failure's message).
    fn new(code: &str, fallback: Option<String>) -> Self {
        FormError {
            field: field_of(code),
            text: describe(code)
                .map(str::to_string)
                .or(fallback)
                .unwrap_or_else(|| "Something went wrong. Try again.".into()),
        }
    }
}

#[component]
fn AuthForm(mode: Mode) -> impl IntoView {
    let query = use_query_map();
    let error = RwSignal::new(
        query
            .with_untracked(|q| q.get("error"))
            .map(|code| FormError::new(&code, None)),
    );
    // Without the wasm, the field with the error is focused when the page loads.
    let initial_field = error.with_untracked(|e| e.as_ref().map(|e| e.field));
    // The fields are read when the form is sent, not mirrored into signals: what someone typed
    // before the wasm loaded stays in the page through hydration and is sent as typed.
    let username = NodeRef::<leptos::html::Input>::new();
    let password = NodeRef::<leptos::html::Input>::new();
    let busy = RwSignal::new(false);
    let error_on = move |field: Field| error.with(|e| e.as_ref().is_some_and(|e| e.field == field));
    let error_text = move |field: Field| {
        error.with(|e| {
            e.as_ref()
                .filter(|e| e.field == field)
                .map(|e| e.text.clone())
                .unwrap_or_default()
        })
    };
    // Shows the error and moves the focus to its field (a form-level error: the username).
    let show = move |e: FormError| {
        let input = if e.field == Field::Password {
            password
        } else {
            username
        };
        error.set(Some(e));
        request_animation_frame(move || {
            if let Some(i) = input.get_untracked() {
                let _ = i.focus();
            }
        });
    };
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
        if let Some(code) = check_fields(mode, &creds.username, &creds.password) {
            show(FormError::new(code, None));
            return;
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
                    busy.set(false);
                    show(FormError::new(&e.code, Some(e.message)));
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
                    id="auth-error"
                    class="form-error"
                    role="alert"
                    data-testid=testid::AUTH_ERROR
                    hidden=move || !error_on(Field::Form)
                >
                    {move || error_text(Field::Form)}
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
                    autofocus=matches!(initial_field, Some(Field::Username | Field::Form))
                    aria-invalid=move || error_on(Field::Username).then_some("true")
                    aria-describedby=move || {
                        if error_on(Field::Username) {
                            Some("username-error")
                        } else if error_on(Field::Form) {
                            Some("auth-error")
                        } else {
                            None
                        }
                    }
                    node_ref=username
                />
                <p
                    id="username-error"
                    class="field-error"
                    data-testid=testid::AUTH_USERNAME_ERROR
                    hidden=move || !error_on(Field::Username)
                >
                    {move || error_text(Field::Username)}
                </p>
                <label for="password">"Password"</label>
                <input
                    id="password"
                    name="password"
                    type="password"
                    autocomplete=pw_complete
                    required
                    minlength="8"
                    autofocus=initial_field == Some(Field::Password)
                    aria-invalid=move || error_on(Field::Password).then_some("true")
                    aria-describedby=move || error_on(Field::Password).then_some("password-error")
                    node_ref=password
                />
                <p
                    id="password-error"
                    class="field-error"
                    data-testid=testid::AUTH_PASSWORD_ERROR
                    hidden=move || !error_on(Field::Password)
                >
                    {move || error_text(Field::Password)}
                </p>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_before_sending_has_the_words_the_server_code_gets() {
        for (mode, user, pw, code) in [
            (Mode::Login, "", "", "username_required"),
            (Mode::Login, "  ", "secret123", "username_required"),
            (Mode::Login, "alice", "", "password_required"),
            (Mode::Signup, "a", "secret123", "invalid_username"),
            (Mode::Signup, "émile", "secret123", "invalid_username"),
            (Mode::Signup, "alice", "short", "invalid_password"),
        ] {
            assert_eq!(check_fields(mode, user, pw), Some(code), "{user:?} {pw:?}");
            assert!(describe(code).is_some(), "{code} has words");
        }
        assert_eq!(
            check_fields(Mode::Login, "a", "x"),
            None,
            "sign-in checks presence only"
        );
        assert_eq!(field_of("username_required"), Field::Username);
        assert_eq!(field_of("invalid_password"), Field::Password);
        assert_eq!(field_of("bad_credentials"), Field::Form);
        assert_eq!(
            FormError::new("network", Some("Could not reach the server.".into())).text,
            "Could not reach the server."
        );
    }
}
