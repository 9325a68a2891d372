//! Extractors that turn a request into typed input, with every failure as the API's JSON error.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
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

/// Why a request was refused by the origin policy (the 403's message).
pub type Refusal = &'static str;

/// The host policy, against DNS rebinding (see docs/SECURITY.md): a rebinding attack reaches the
/// server under the attacker's own domain name, so a request is served only when its `Host` is
/// an IP address, `localhost`, a name in `allowed_hosts` (`name` for any port, `name:port` for
/// one), the host of one of `allowed_origins`, or anything when `allowed_hosts` holds `*`.
pub fn check_host(
    headers: &axum::http::HeaderMap,
    allowed_hosts: &[String],
    allowed_origins: &[String],
) -> bool {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|h| !h.is_empty())
    else {
        return false;
    };
    // Compared without case and without a copy: this runs on every request, polls included.
    let name = split_port(host);
    if name.eq_ignore_ascii_case("localhost") || is_ip_literal(name) {
        return true;
    }
    let matches = |entry: &str| {
        let entry = entry.trim();
        entry == "*"
            || entry.eq_ignore_ascii_case(host)
            || (!entry.contains(':') && entry.eq_ignore_ascii_case(name))
    };
    allowed_hosts.iter().any(|h| matches(h))
        || allowed_origins.iter().any(|o| {
            let o = o.trim().trim_end_matches('/');
            o.split_once("://").is_some_and(|(_, h)| matches(h))
        })
}

/// The host part of `host[:port]` (an IPv6 literal keeps its brackets).
fn split_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

fn is_ip_literal(name: &str) -> bool {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => name.parse::<Ipv4Addr>().is_ok(),
    }
}

/// The origin policy (see docs/SECURITY.md). A request is from "this site" when its `Origin` is
/// the server's own (scheme-less compare with `Host`) or one of `allowed`; without `Origin`,
/// when `Sec-Fetch-Site` is `same-origin` or `none` (a typed URL or bookmark). Browsers send
/// `Origin` on every WebSocket handshake and every non-GET request, and `Sec-Fetch-Site` on
/// everything, so a request with neither is not from a browser page: it may write (API clients,
/// curl), but when `live` (a WebSocket or SSE stream, a poll) it must say where it comes from,
/// because those are the requests a hostile page could otherwise ride with the user's cookie.
pub fn check_origin(
    headers: &axum::http::HeaderMap,
    allowed: &[String],
    live: bool,
) -> Result<(), Refusal> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = header(header::ORIGIN.as_str()) {
        let origin = origin.trim();
        if origin.eq_ignore_ascii_case("null") {
            return Err("Requests from an opaque (null) origin are refused.");
        }
        if allowed
            .iter()
            .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return Ok(());
        }
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        return match (origin_host, header(header::HOST.as_str())) {
            (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
            _ => Err("Cross-origin requests are refused."),
        };
    }
    match header("sec-fetch-site") {
        Some("same-origin" | "none") => Ok(()),
        Some(_) => Err("Cross-origin requests are refused."),
        None if live => Err("Live connections must carry an Origin header."),
        None => Ok(()),
    }
}

#[cfg(test)]
mod host_tests {
    use super::check_host;
    use axum::http::{header, HeaderMap, HeaderValue};

    fn with_host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::HOST, HeaderValue::from_str(h).unwrap());
        m
    }

    #[test]
    fn only_addresses_localhost_and_named_hosts_pass() {
        let none: [String; 0] = [];
        for ok in [
            "127.0.0.1:3000",
            "10.0.0.7",
            "[::1]:3000",
            "[::1]",
            "localhost:3000",
            "LOCALHOST",
        ] {
            assert!(check_host(&with_host(ok), &none, &none), "{ok}");
        }
        for bad in [
            "evil.example:3000",
            "evil.example",
            "127.0.0.1.nip.io:3000",
            "localhost.evil.example",
            "[::1",
        ] {
            assert!(!check_host(&with_host(bad), &none, &none), "{bad}");
        }
        assert!(!check_host(&HeaderMap::new(), &none, &none), "no Host");
        let hosts = [
            "chat.example.com".to_string(),
            "other.example:8443".to_string(),
        ];
        assert!(check_host(&with_host("chat.example.com"), &hosts, &none));
        assert!(check_host(
            &with_host("Chat.Example.com:443"),
            &hosts,
            &none
        ));
        assert!(check_host(&with_host("other.example:8443"), &hosts, &none));
        assert!(!check_host(&with_host("other.example:9000"), &hosts, &none));
        let origins = ["https://app.example.org".to_string()];
        assert!(check_host(&with_host("app.example.org"), &none, &origins));
        assert!(check_host(
            &with_host("anything.example"),
            &["*".to_string()],
            &none
        ));
    }
}
