//! Services: the rules of the product (who may do what), over the store and the hub. Handlers
//! for every transport call these; nothing here knows about HTTP framing.

pub mod admin;
pub mod auth;
pub mod chat;
pub mod jobs;
pub mod notifications;
pub mod transports;
pub mod writer;

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds, the API's time unit.
/// Unix time in µs.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Checks that a path or body id is a UUID, so a malformed id is a 400, not a 404 or worse.
pub fn parse_id(raw: &str, what: &'static str) -> Result<String, crate::error::ApiError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|_| {
            crate::error::ApiError::bad("invalid_id", format!("{what} id is not a valid id"))
        })
}

/// A page size: absent means the default; 1..=100 otherwise, else a 400.
pub fn page_limit(limit: Option<u32>) -> Result<u32, crate::error::ApiError> {
    match limit {
        None => Ok(protocol::DEFAULT_PAGE),
        Some(n) if (1..=protocol::MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(crate::error::ApiError::bad(
            "invalid_limit",
            "limit must be between 1 and 100",
        )),
    }
}
