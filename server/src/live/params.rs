//! The live endpoints' query strings, parsed by pure functions (no request, no state): what
//! `/api/live/ws`, `/api/live/sse` and `/api/live/poll` ask for, or the API's 400 JSON error
//! saying which parameter is wrong. Pure so that they can be fuzzed without a server
//! (`tests/it/fuzz.rs` feeds them arbitrary query strings).

use super::poll::{parse_wait, PollQuery};
use super::ws::{parse_cursor, parse_feeds, LiveQuery};
use crate::error::{ApiError, ApiResult};
use protocol::FeedSet;
use serde::de::DeserializeOwned;

/// What a WebSocket or SSE connection asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamParams {
    pub feeds: FeedSet,
    pub cursor: Option<i64>,
    /// `reconnect=1`: the client lost its previous connection (only the meters care).
    pub reconnect: bool,
}

/// What a poll asks for; `wait` 0 is a short poll, 1–30 a long one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollParams {
    pub feeds: FeedSet,
    pub cursor: Option<i64>,
    pub wait: u64,
    pub eph: Option<u64>,
    pub reconnect: bool,
}

fn decode<T: DeserializeOwned>(query: Option<&str>) -> ApiResult<T> {
    serde_urlencoded::from_str(query.unwrap_or_default()).map_err(|e| {
        ApiError::bad(
            "invalid_query",
            format!("Failed to deserialize query string: {e}"),
        )
    })
}

/// `feeds`, `cursor`, `reconnect` of a streaming connection. `last_event_id` (SSE's header)
/// stands in for an absent `cursor`.
pub fn stream_params(query: Option<&str>, last_event_id: Option<&str>) -> ApiResult<StreamParams> {
    let q: LiveQuery = decode(query)?;
    Ok(StreamParams {
        feeds: parse_feeds(q.feeds.as_deref())?,
        cursor: parse_cursor(q.cursor.as_deref().or(last_event_id))?,
        reconnect: q.is_reconnect(),
    })
}

/// `feeds`, `cursor`, `wait`, `eph`, `reconnect` of a poll.
pub fn poll_params(query: Option<&str>) -> ApiResult<PollParams> {
    let q: PollQuery = decode(query)?;
    Ok(PollParams {
        wait: parse_wait(q.wait.as_deref())?,
        feeds: parse_feeds(q.feeds.as_deref())?,
        cursor: parse_cursor(q.cursor.as_deref())?,
        eph: q.eph,
        reconnect: q.reconnect.as_deref() == Some("1"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Feed;

    fn code(e: ApiError) -> &'static str {
        e.code()
    }

    #[test]
    fn every_parameter_is_read() {
        let p = poll_params(Some("feeds=chat,jobs&cursor=7&wait=25&eph=3&reconnect=1")).unwrap();
        assert_eq!(
            p.feeds.iter().collect::<Vec<_>>(),
            [Feed::Chat, Feed::Jobs, Feed::Control]
        );
        assert_eq!(
            (p.cursor, p.wait, p.eph, p.reconnect),
            (Some(7), 25, Some(3), true)
        );
        let s = stream_params(None, Some("12")).unwrap();
        assert_eq!(
            (s.cursor, s.reconnect, s.feeds.iter().count()),
            (Some(12), false, 4)
        );
        assert_eq!(
            stream_params(Some("cursor=3"), Some("12")).unwrap().cursor,
            Some(3)
        );
    }

    #[test]
    fn each_bad_parameter_has_its_own_code() {
        assert_eq!(
            code(poll_params(Some("wait=31")).unwrap_err()),
            "invalid_wait"
        );
        assert_eq!(
            code(poll_params(Some("cursor=-1")).unwrap_err()),
            "invalid_cursor"
        );
        assert_eq!(
            code(poll_params(Some("feeds=chat,,jobs")).unwrap_err()),
            "invalid_feeds"
        );
        assert_eq!(
            code(poll_params(Some("eph=x")).unwrap_err()),
            "invalid_query"
        );
        assert_eq!(
            code(poll_params(Some("wait=1&wait=2")).unwrap_err()),
            "invalid_query"
        );
        assert_eq!(
            code(stream_params(None, Some("abc")).unwrap_err()),
            "invalid_cursor"
        );
        // Unknown parameters are ignored, so clients can add some without breaking old servers.
        assert!(stream_params(Some("transport=sse&x=%FF"), None).is_ok());
    }
}
