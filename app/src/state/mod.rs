//! The app's state: what the server hands to its rendering (the signed-in user, the page data,
//! the CSP nonce), the first state it renders, the signed-in user as a resource, and the chat
//! screen's state ([`chat`]) with its notifications and jobs ([`activity`]).

pub mod activity;
pub mod chat;
pub mod life;
pub mod reply;

use leptos::prelude::*;
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
    /// The newest `limit` messages of a room the user may read (with who joined and left among
    /// them), or None.
    fn messages(
        &self,
        user: User,
        room_id: String,
        limit: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<protocol::MessageList>> + Send>>;
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
    pub messages: Option<protocol::MessageList>,
}

/// The signed-in user as a resource: read from the request on the server, carried to the
/// browser in the page, fetched from /api/me on client-side navigation.
#[derive(Clone, Copy)]
pub struct Me(pub Resource<Option<User>>);
