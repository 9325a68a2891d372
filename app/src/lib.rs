//! Switchboard's UI. Rendered on the server (feature `ssr`) and hydrated in the browser (feature
//! `hydrate`). Business rules live in the server's services; this crate shows state and sends
//! intents over the API.

#![recursion_limit = "512"]

pub mod activity;
pub mod admin;
pub mod api;
pub mod auth;
pub mod chat;
pub mod dismiss;
pub mod live;
pub mod outbox;
pub mod race;
pub mod testid;
pub mod time;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};
use protocol::User;

/// The signed-in user, put into the request's extensions by the server for server rendering.
#[derive(Debug, Clone)]
pub struct SsrUser(pub Option<User>);

/// What server rendering reads to fill the chat screen, implemented by the server over its
/// services (the same rules as the API) and put into the request's extensions.
#[cfg(feature = "ssr")]
pub trait PageData: Send + Sync {
    /// The newest event id now: read before the rest, so the live connection can resume from it
    /// and nothing committed between the render and the connection is missed.
    fn cursor(&self) -> i64;
    fn rooms(
        &self,
        user: User,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<protocol::Room>> + Send>>;
    /// The newest `limit` messages of a room the user may read, or None.
    fn messages(
        &self,
        user: User,
        room_id: String,
        limit: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Vec<protocol::Message>>> + Send>>;
}

#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct SsrData(pub std::sync::Arc<dyn PageData>);

/// The Content-Security-Policy nonce of this response, chosen by the server (which also sends it
/// in the CSP header) and put into the request's extensions; the page's inline scripts carry it.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// The chat screen's first state, rendered on the server and carried to the browser in the page.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Initial {
    pub cursor: Option<i64>,
    pub rooms: Option<Vec<protocol::Room>>,
    pub room_id: Option<String>,
    pub messages: Option<Vec<protocol::Message>>,
}

/// The HTML document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The server's nonce replaces the one leptos_axum made up, so the header and the inline
    // hydration scripts agree.
    #[cfg(feature = "ssr")]
    if let Some(nonce) =
        use_context::<http::request::Parts>().and_then(|p| p.extensions.get::<CspNonce>().cloned())
    {
        provide_context(leptos::nonce::Nonce::from_value(nonce.0));
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="stylesheet" href="/pkg/switchboard.css" />
                <link rel="icon" href="/favicon.ico" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The signed-in user as a resource: read from the request on the server, carried to the
/// browser in the page, fetched from /api/me on client-side navigation.
#[derive(Clone, Copy)]
pub struct Me(pub Resource<Option<User>>);

/// The pages that need a session (the chat screen's routes below). The server reads this to
/// send signed-out visitors to the sign-in page and to render these pages signed in: keep it
/// beside the routes, so a new page cannot be forgotten there.
pub fn is_signed_in_page(path: &str) -> bool {
    matches!(path, "/" | "/jobs" | "/admin" | "/race")
        || path
            .strip_prefix("/rooms/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// The pages for signed-out visitors; the signed-in are sent on to the app.
pub fn is_sign_in_page(path: &str) -> bool {
    matches!(path, "/login" | "/signup")
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let me = Resource::new_blocking(
        || (),
        |_| {
            #[cfg(feature = "ssr")]
            let user = use_context::<http::request::Parts>()
                .and_then(|p| p.extensions.get::<SsrUser>().cloned())
                .and_then(|u| u.0);
            async move {
                #[cfg(feature = "ssr")]
                {
                    user
                }
                #[cfg(not(feature = "ssr"))]
                {
                    // Browser futures are not Send; the wasm build is single-threaded.
                    send_wrapper::SendWrapper::new(api::get::<User>("/api/me"))
                        .await
                        .ok()
                }
            }
        },
    );
    provide_context(Me(me));
    // Browser tests wait for this before clicking: before hydration a click does nothing.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Router>
            <Routes fallback=|| view! { <NotFound /> }>
                <Route path=path!("/login") view=auth::LoginPage />
                <Route path=path!("/signup") view=auth::SignupPage />
                // One chat screen for "/" and "/rooms/:id": moving between rooms keeps its state
                // and its live connection. Its paths are `is_signed_in_page`'s.
                <ParentRoute path=path!("") view=chat::ChatPage ssr=SsrMode::Async>
                    <Route path=path!("") view=|| () />
                    <Route path=path!("rooms/:id") view=|| () />
                    <Route path=path!("jobs") view=|| () />
                    <Route path=path!("admin") view=|| () />
                    <Route path=path!("race") view=|| () />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <Title text="Not found · Switchboard" />
        <main class="centered">
            <div class="card">
                <h1>"Not found"</h1>
                <p>"There is nothing at this address."</p>
                <p><a href="/">"Back to Switchboard"</a></p>
            </div>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chat_route_needs_a_session() {
        for path in ["/", "/jobs", "/admin", "/race", "/rooms/abc"] {
            assert!(is_signed_in_page(path), "{path}");
        }
        for path in [
            "/login",
            "/signup",
            "/rooms/",
            "/rooms/a/b",
            "/pkg/x.js",
            "/nope",
        ] {
            assert!(!is_signed_in_page(path), "{path}");
        }
        assert!(is_sign_in_page("/login") && is_sign_in_page("/signup"));
    }
}
