//! Server rendering of the Leptos pages: who is signed in, which page fits, and the data the chat
//! screen renders before its wasm loads (read through the same services as the API).

use crate::extract::current_user;
use crate::services::chat;
use crate::state::AppState;
use app::routes::{is_sign_in_page, is_signed_in_page};
use app::{PageData, SsrData, SsrUser};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use protocol::{MessageList, Room, User};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

struct Pages(AppState);

impl PageData for Pages {
    fn cursor(&self) -> i64 {
        self.0.hub.head()
    }

    fn rooms(&self, user: User) -> Pin<Box<dyn Future<Output = Vec<Room>> + Send>> {
        let state = self.0.clone();
        Box::pin(async move {
            chat::list_rooms(&state, &user).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "rooms for page");
                Vec::new()
            })
        })
    }

    fn messages(
        &self,
        user: User,
        room_id: String,
        limit: u32,
    ) -> Pin<Box<dyn Future<Output = Option<MessageList>> + Send>> {
        let state = self.0.clone();
        Box::pin(async move {
            chat::history(&state, &user, &room_id.into(), None, Some(limit))
                .await
                .ok()
        })
    }
}

/// Resolves the signed-in user for server-rendered pages and sends people to the page that fits:
/// the app needs a session, the sign-in pages do not.
pub async fn prepare(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let app_page = is_signed_in_page(&path);
    let auth_page = is_sign_in_page(&path);
    // Static files and unknown paths need no session lookup.
    let user = if app_page || auth_page {
        current_user(&mut parts, &state).await.ok().flatten()
    } else {
        None
    };
    if app_page && user.is_none() {
        return Redirect::to("/login").into_response();
    }
    if auth_page && user.is_some() {
        return Redirect::to("/").into_response();
    }
    if app_page {
        parts
            .extensions
            .insert(SsrData(Arc::new(Pages(state.clone()))));
    }
    parts.extensions.insert(SsrUser(user));
    let req = Request::from_parts(parts, body);
    if !(app_page || auth_page) {
        return next.run(req).await;
    }
    // A page is rendered whole before it is sent (its data is awaited on the server); should a
    // render ever stall, the visitor gets a page that says so instead of a connection that hangs.
    match tokio::time::timeout(RENDER_LIMIT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(%path, "a page took longer than {RENDER_LIMIT:?} to render");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "2")],
                Html(
                    "<!DOCTYPE html><html lang=\"en\"><meta charset=\"utf-8\"><title>Switchboard</title>\
                     <p>This page took too long to prepare. Reload to try again.</p></html>",
                ),
            )
                .into_response()
        }
    }
}

/// The longest a server-rendered page may take before the visitor is told to reload.
const RENDER_LIMIT: Duration = Duration::from_secs(20);

#[cfg(test)]
mod tests {
    use super::*;
    use app::routes::{room_href, Page};

    /// The router's table (in axum's spelling, `/rooms/{id}`) and the pages this middleware signs
    /// in are one list: every page the app routes is a sign-in page or a signed-in one, and every
    /// `Page` is routed.
    #[tokio::test]
    async fn every_routed_page_is_known_here() {
        let routed: Vec<String> = crate::route_list()
            .iter()
            .map(|r| r.path().replace("{id}", "abc"))
            .collect();
        for path in &routed {
            assert!(
                is_signed_in_page(path) != is_sign_in_page(path),
                "{path}: routed, but neither a sign-in page nor a signed-in one"
            );
        }
        for page in Page::ALL {
            let path = match page {
                Page::Rooms => room_href("abc"),
                _ => page.href(),
            };
            assert!(routed.contains(&path), "{path} is not routed: {routed:?}");
        }
        assert!(routed.iter().any(|p| p == "/"), "{routed:?}");
    }
}
