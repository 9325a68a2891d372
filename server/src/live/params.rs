//! The live endpoints' query strings, parsed by pure functions (no request, no state): what
//! `/api/live/ws`, `/api/live/sse` and `/api/live/poll` ask for, or the API's 400 JSON error
//! saying which parameter is wrong. Pure so that they can be fuzzed without a server
//! (`tests/it/fuzz.rs` feeds them arbitrary query strings).

use crate::error::{ApiError, ApiResult};
use protocol::FeedSet;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Longest hold a long poll may ask for, in seconds.
pub const MAX_WAIT_S: u64 = 30;

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

/// The query string of a WebSocket or SSE connection, as sent.
#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    pub feeds: Option<String>,
    pub cursor: Option<String>,
    /// `1` when a client reopens after losing its connection: counted as a reconnect (a first
    /// connection with a page's render cursor, or a switch, is not one).
    pub reconnect: Option<String>,
}

impl LiveQuery {
    pub fn is_reconnect(&self) -> bool {
        self.reconnect.as_deref() == Some("1")
    }
}

/// Parses `cursor`: absent, or a non-negative integer.
pub fn parse_cursor(raw: Option<&str>) -> ApiResult<Option<i64>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|c| *c >= 0)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad("invalid_cursor", "cursor must be a non-negative integer")
            }),
    }
}

pub fn parse_feeds(raw: Option<&str>) -> ApiResult<FeedSet> {
    FeedSet::parse(raw).map_err(|e| ApiError::bad("invalid_feeds", e.to_string()))
}

/// The query string of a poll, as sent.
#[derive(Debug, Deserialize)]
pub struct PollQuery {
    pub feeds: Option<String>,
    pub cursor: Option<String>,
    pub wait: Option<String>,
    /// The `eph` of the previous answer: recent ephemeral events after it come too.
    pub eph: Option<u64>,
    /// `1` when a client polls again after a failed poll: counted as a reconnect.
    pub reconnect: Option<String>,
}

pub fn parse_wait(raw: Option<&str>) -> ApiResult<u64> {
    match raw.map(str::trim) {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|w| *w <= MAX_WAIT_S)
            .ok_or_else(|| {
                ApiError::bad(
                    "invalid_wait",
                    "wait must be an integer from 0 to 30 (seconds)",
                )
            }),
    }
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

    #[test]
    fn cursors_are_non_negative_integers() {
        assert_eq!(parse_cursor(None).unwrap(), None);
        assert_eq!(parse_cursor(Some("42")).unwrap(), Some(42));
        assert!(parse_cursor(Some("-1")).is_err());
        assert!(parse_cursor(Some("abc")).is_err());
        assert!(parse_cursor(Some("1e3")).is_err());
    }

    #[test]
    fn waits_are_whole_seconds_up_to_thirty() {
        assert_eq!(parse_wait(None).unwrap(), 0);
        assert_eq!(parse_wait(Some("25")).unwrap(), 25);
        assert!(parse_wait(Some("31")).is_err());
        assert!(parse_wait(Some("-1")).is_err());
        assert!(parse_wait(Some("1.5")).is_err());
    }
}
