//! The live feeds and the transports that carry them: names, sets, parsing, defaults.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The four live feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feed {
    Chat,
    Notifications,
    Jobs,
    Control,
}

impl Feed {
    pub const ALL: [Feed; 4] = [Feed::Chat, Feed::Notifications, Feed::Jobs, Feed::Control];

    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Chat => "chat",
            Feed::Notifications => "notifications",
            Feed::Jobs => "jobs",
            Feed::Control => "control",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Feed {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "chat" => Ok(Feed::Chat),
            "notifications" => Ok(Feed::Notifications),
            "jobs" => Ok(Feed::Jobs),
            "control" => Ok(Feed::Control),
            other => Err(ParseError(format!("unknown feed `{other}`"))),
        }
    }
}

/// A set of feeds, as a bit set (cheap to copy and test on the hot path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedSet(u8);

impl FeedSet {
    pub fn contains(self, feed: Feed) -> bool {
        self.0 & feed.bit() != 0
    }

    pub fn insert(&mut self, feed: Feed) {
        self.0 |= feed.bit();
    }

    pub fn iter(self) -> impl Iterator<Item = Feed> {
        Feed::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    /// Parses `chat,notifications`. `control` is always included, as API.md says. An empty or
    /// absent list means every feed.
    pub fn parse(list: Option<&str>) -> Result<FeedSet, ParseError> {
        let mut set = FeedSet::default();
        match list.map(str::trim) {
            None | Some("") => {
                for f in Feed::ALL {
                    set.insert(f);
                }
            }
            Some(list) => {
                for part in list.split(',') {
                    set.insert(part.trim().parse()?);
                }
                set.insert(Feed::Control);
            }
        }
        Ok(set)
    }
}

impl FromIterator<Feed> for FeedSet {
    fn from_iter<I: IntoIterator<Item = Feed>>(iter: I) -> Self {
        let mut set = FeedSet::default();
        for f in iter {
            set.insert(f);
        }
        set
    }
}

/// The four transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Websocket,
    Sse,
    LongPoll,
    ShortPoll,
}

impl Transport {
    /// The fallback order of API.md.
    pub const ALL: [Transport; 4] = [
        Transport::Websocket,
        Transport::Sse,
        Transport::LongPoll,
        Transport::ShortPoll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::Sse => "sse",
            Transport::LongPoll => "long_poll",
            Transport::ShortPoll => "short_poll",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Transport::Websocket => "WebSocket",
            Transport::Sse => "SSE",
            Transport::LongPoll => "long polling",
            Transport::ShortPoll => "short polling",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ParseError(format!("unknown transport `{s}`")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// The feeds whose transport a user chooses (`control` rides along on every connection).
pub const CHOOSABLE_FEEDS: [Feed; 3] = [Feed::Chat, Feed::Notifications, Feed::Jobs];

/// The default transport of a feed.
pub fn default_transport(feed: Feed) -> Transport {
    match feed {
        Feed::Chat => Transport::Websocket,
        Feed::Notifications => Transport::Sse,
        Feed::Jobs | Feed::Control => Transport::ShortPoll,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_sets_parse_and_always_include_control() {
        let set = FeedSet::parse(Some("chat")).unwrap();
        assert!(set.contains(Feed::Chat) && set.contains(Feed::Control));
        assert!(!set.contains(Feed::Jobs));
        assert_eq!(FeedSet::parse(None).unwrap().iter().count(), 4);
        assert!(FeedSet::parse(Some("chat,bogus")).is_err());
    }
}
