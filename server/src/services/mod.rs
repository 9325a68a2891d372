//! Services: the rules of the product (who may do what), over the store and the hub. Handlers
//! for every transport call these; nothing here knows about HTTP framing.

pub mod admin;
pub mod auth;
pub mod chat;
pub mod jobs;
pub mod messages;
pub mod notifications;
pub mod search;
pub mod transports;
pub mod uploads;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Checks that a path or body id is a UUID, so a malformed id is a 400, not a 404 or worse;
/// gives it in its canonical form, as the typed id `T` it names.
pub fn parse_id<T: From<String>>(raw: &str, what: &'static str) -> ApiResult<T> {
    uuid::Uuid::parse_str(raw)
        .map(|u| T::from(u.to_string()))
        .map_err(|_| ApiError::bad("invalid_id", format!("{what} id is not a valid id")))
}

/// A page size: absent means the default; 1..=100 otherwise, else a 400.
pub fn page_limit(limit: Option<u32>) -> ApiResult<u32> {
    match limit {
        None => Ok(protocol::DEFAULT_PAGE),
        Some(n) if (1..=protocol::MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad(
            "invalid_limit",
            "limit must be between 1 and 100",
        )),
    }
}

/// One more of `what` by `user_id` this minute: 429 `rate_limited` past `limit` (0: no limit).
pub fn per_minute(state: &AppState, what: &str, user_id: &str, limit: u32) -> ApiResult<()> {
    one_more(&state.limiter, what, user_id, limit)
}

/// One more of `what` by `user_id` this hour (a quota on creating things): 429 `rate_limited`
/// with the seconds until the hour's window ends, past `limit` (0: no limit).
pub fn per_hour(state: &AppState, what: &str, user_id: &str, limit: u32) -> ApiResult<()> {
    one_more(&state.quotas, what, user_id, limit)
}

fn one_more(
    limiter: &crate::ratelimit::RateLimiter,
    what: &str,
    user_id: &str,
    limit: u32,
) -> ApiResult<()> {
    limiter
        .check(&format!("{what}:{user_id}"), limit)
        .map_err(ApiError::RateLimited)
}
