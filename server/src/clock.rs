//! The clock and fresh ids: a leaf every layer may use (the hub stamps events with it, the
//! services date records, sessions date sign-ins).

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in µs.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds, the API's time unit.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new random id (a UUID v4), for records, sign-ins and connections (`.into()` a typed id).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
