//! Extractors that turn a request into typed input, with every failure as the API's JSON error.
//! Shared by the API (`http/`) and the live routes (`live/`).

use crate::error::{ApiError, ApiResult};
use crate::sessions::SessionWatch;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use protocol::User;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub use crate::sessions::USER_KEY;

/// The signed-in user, from the store or a few seconds' cache (see `state::UserCache`). 401
/// when nobody is signed in.
pub struct CurrentUser(pub User);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        current_user(parts, state)
            .await?
            .map(CurrentUser)
            .ok_or(ApiError::Unauthorized)
    }
}

/// The signed-in user, if any.
pub async fn current_user(parts: &mut Parts, state: &AppState) -> Result<Option<User>, ApiError> {
    // Timeouts and "sign out everywhere" are checked here, on every request.
    let Some((id, _)) = state.sessions.check_request(parts).await? else {
        return Ok(None);
    };
    // A valid session: this connection is a signed-in user's, never closed to make room.
    if let Some(slot) = parts.extensions.get::<crate::limits::ConnSlot>() {
        slot.signed_in();
    }
    if let Some(user) = state.users.get(&id) {
        return Ok(Some(user));
    }
    let user = state.store.user_by_id(&id).await?;
    if let Some(u) = &user {
        state.users.put(u);
    }
    Ok(user)
}

/// An admin, or 403.
pub struct AdminUser(pub User);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        if !user.is_admin {
            return Err(ApiError::Forbidden("Administrators only.".into()));
        }
        Ok(AdminUser(user))
    }
}

/// A JSON body whose every rejection is an API error (bad JSON, wrong types and missing fields
/// 400, too large 413).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

pub fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge("The request body is too large.".into())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::bad(
            "invalid_json",
            "Send the body as JSON (Content-Type: application/json).",
        ),
        _ => ApiError::bad("invalid_json", rejection.body_text()),
    }
}

/// Query parameters whose rejection is a 400 JSON error.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::bad("invalid_query", e.body_text()))
    }
}

/// Path parameters whose rejection is a 400 JSON error (axum's own is plain text; a segment
/// that is not valid UTF-8 once percent-decoded, e.g. `%FF`, gets there).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::bad("invalid_id", e.body_text()))
    }
}

/// The peer's IP address (the direct peer: no proxy headers are trusted).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(ip))
    }
}

/// The live connection's session, watched for a sign-out (see [`SessionWatch`]); 401 when
/// nobody is signed in.
impl FromRequestParts<AppState> for SessionWatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        state.sessions.watch_request(parts).await
    }
}
