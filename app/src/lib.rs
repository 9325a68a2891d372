//! Switchboard's UI. Rendered on the server (feature `ssr`) and hydrated in the browser (feature
//! `hydrate`). Business rules live in the server's services; this crate shows state and sends
//! intents over the API.

#![recursion_limit = "512"]

pub mod api;
pub mod auth;
pub mod components;
pub mod dismiss;
pub mod emoji;
pub mod layout;
pub mod live;
pub mod markdown;
pub mod outbox;
pub mod pages;
pub mod routes;
pub mod state;
pub mod testid;
pub mod time;
pub mod upload;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, ParamSegment, SsrMode, StaticSegment};
use routes::Page;
pub use state::{CspNonce, Initial, Me, SsrUser};
#[cfg(feature = "ssr")]
pub use state::{PageData, SsrData};

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
                    send_wrapper::SendWrapper::new(api::get::<protocol::User>("/api/me"))
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
                <Route path=StaticSegment(Page::Login) view=auth::LoginPage />
                <Route path=StaticSegment(Page::Signup) view=auth::SignupPage />
                // Every signed-in page inside one layout: moving between them keeps the chat
                // screen's state and its live connection. The server knows these pages from
                // `Page::signed_in`, so each one here is a `Page` (or the home page).
                <ParentRoute path=path!("") view=layout::Layout ssr=SsrMode::Async>
                    <Route path=path!("") view=pages::home::Home />
                    <Route path=(StaticSegment(Page::Rooms), ParamSegment("id")) view=pages::room::RoomPage />
                    <Route path=StaticSegment(Page::Jobs) view=pages::jobs::JobsPage />
                    <Route path=StaticSegment(Page::Admin) view=pages::admin::AdminRoute />
                    <Route path=StaticSegment(Page::Race) view=pages::race::RacePage />
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
mod style_tests {
    /// The stylesheet's braces balance and never close more than they opened (comments aside):
    /// one lost `}` once put every rule after it inside a phone-only media query.
    #[test]
    fn the_stylesheet_braces_balance() {
        let css = include_str!("../../style/main.css");
        let mut depth = 0i32;
        let mut rest = css;
        let mut line = 1;
        while let Some(c) = rest.chars().next() {
            if rest.starts_with("/*") {
                let end = rest.find("*/").expect("a comment that ends") + 2;
                line += rest[..end].matches('\n').count();
                rest = &rest[end..];
                continue;
            }
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                '\n' => line += 1,
                _ => {}
            }
            assert!(depth >= 0, "style/main.css:{line}: a `}}` closes nothing");
            // Top-level rules only start at depth 0, and media blocks hold only rules.
            assert!(
                depth <= 2,
                "style/main.css:{line}: nested deeper than a media query"
            );
            rest = &rest[c.len_utf8()..];
        }
        assert_eq!(depth, 0, "style/main.css: {depth} block(s) left open");
    }
}
