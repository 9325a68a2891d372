//! Server rendering of the Leptos pages: who is signed in, which page fits, and the data the chat
//! screen renders before its wasm loads (read through the same services as the API).

use crate::extract::current_user;
use crate::services::chat;
use crate::state::AppState;
use app::{PageData, SsrData, SsrUser};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use protocol::{Message, Room, User};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

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
    ) -> Pin<Box<dyn Future<Output = Option<Vec<Message>>> + Send>> {
        let state = self.0.clone();
        Box::pin(async move {
            chat::history(&state, &user, &room_id, None, Some(limit))
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
    let app_page = app::is_signed_in_page(&path);
    let auth_page = app::is_sign_in_page(&path);
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
    next.run(Request::from_parts(parts, body)).await
}
