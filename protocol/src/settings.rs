//! Transport settings: what an administrator switched on, what a user chose, what an
//! administrator overrode, and what a user's clients must use.

use crate::feed::{default_transport, Feed, Transport, CHOOSABLE_FEEDS};
use serde::{Deserialize, Serialize};

/// Which transports an administrator has left on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switches {
    pub websocket: bool,
    pub sse: bool,
    pub long_poll: bool,
    pub short_poll: bool,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            websocket: true,
            sse: true,
            long_poll: true,
            short_poll: true,
        }
    }
}

impl Switches {
    pub fn enabled(&self, t: Transport) -> bool {
        match t {
            Transport::Websocket => self.websocket,
            Transport::Sse => self.sse,
            Transport::LongPoll => self.long_poll,
            Transport::ShortPoll => self.short_poll,
        }
    }

    pub fn set(&mut self, t: Transport, on: bool) {
        match t {
            Transport::Websocket => self.websocket = on,
            Transport::Sse => self.sse = on,
            Transport::LongPoll => self.long_poll = on,
            Transport::ShortPoll => self.short_poll = on,
        }
    }

    pub fn any(&self) -> bool {
        Transport::ALL.iter().any(|t| self.enabled(*t))
    }

    /// `preferred` if it is on, else the next one on in the order websocket → sse → long_poll →
    /// short_poll (wrapping round). With everything off, `preferred` itself.
    pub fn resolve(&self, preferred: Transport) -> Transport {
        let start = Transport::ALL
            .iter()
            .position(|t| *t == preferred)
            .unwrap_or(0);
        (0..Transport::ALL.len())
            .map(|i| Transport::ALL[(start + i) % Transport::ALL.len()])
            .find(|t| self.enabled(*t))
            .unwrap_or(preferred)
    }
}

/// One transport per choosable feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedTransports {
    pub chat: Transport,
    pub notifications: Transport,
    pub jobs: Transport,
}

impl FeedTransports {
    pub fn get(&self, feed: Feed) -> Transport {
        match feed {
            Feed::Chat => self.chat,
            Feed::Notifications => self.notifications,
            Feed::Jobs | Feed::Control => self.jobs,
        }
    }

    pub fn set(&mut self, feed: Feed, t: Transport) {
        match feed {
            Feed::Chat => self.chat = t,
            Feed::Notifications => self.notifications = t,
            Feed::Jobs | Feed::Control => self.jobs = t,
        }
    }

    pub fn defaults() -> Self {
        FeedTransports {
            chat: default_transport(Feed::Chat),
            notifications: default_transport(Feed::Notifications),
            jobs: default_transport(Feed::Jobs),
        }
    }
}

/// An optional transport per choosable feed (admin overrides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FeedOverrides {
    pub chat: Option<Transport>,
    pub notifications: Option<Transport>,
    pub jobs: Option<Transport>,
}

impl FeedOverrides {
    pub fn get(&self, feed: Feed) -> Option<Transport> {
        match feed {
            Feed::Chat => self.chat,
            Feed::Notifications => self.notifications,
            Feed::Jobs | Feed::Control => self.jobs,
        }
    }

    pub fn set(&mut self, feed: Feed, t: Option<Transport>) {
        match feed {
            Feed::Chat => self.chat = t,
            Feed::Notifications => self.notifications = t,
            Feed::Jobs | Feed::Control => self.jobs = t,
        }
    }
}

/// `GET /api/me/transports`: my choices (the top-level fields, as API.md has them), what an
/// admin overrode, what is switched on, and what my clients must use (`effective`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportSettings {
    pub chat: Transport,
    pub notifications: Transport,
    pub jobs: Transport,
    pub effective: FeedTransports,
    #[serde(default)]
    pub overrides: FeedOverrides,
    #[serde(default)]
    pub enabled: Switches,
    /// Short-poll interval the client should use.
    #[serde(default = "default_short_poll_ms")]
    pub short_poll_ms: u32,
    /// Long-poll hold the client should ask for (seconds).
    #[serde(default = "default_long_poll_s")]
    pub long_poll_s: u32,
}

pub fn default_short_poll_ms() -> u32 {
    2000
}

pub fn default_long_poll_s() -> u32 {
    25
}

impl TransportSettings {
    /// Computes the effective transports from choices, overrides and switches.
    pub fn new(
        chosen: FeedTransports,
        overrides: FeedOverrides,
        enabled: Switches,
        short_poll_ms: u32,
        long_poll_s: u32,
    ) -> Self {
        let mut effective = chosen;
        for feed in CHOOSABLE_FEEDS {
            let preferred = overrides.get(feed).unwrap_or(chosen.get(feed));
            effective.set(feed, enabled.resolve(preferred));
        }
        TransportSettings {
            chat: chosen.chat,
            notifications: chosen.notifications,
            jobs: chosen.jobs,
            effective,
            overrides,
            enabled,
            short_poll_ms,
            long_poll_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_transport_falls_back_in_order_and_wraps() {
        let mut s = Switches::default();
        assert_eq!(s.resolve(Transport::Websocket), Transport::Websocket);
        s.websocket = false;
        assert_eq!(s.resolve(Transport::Websocket), Transport::Sse);
        s.sse = false;
        assert_eq!(s.resolve(Transport::Websocket), Transport::LongPoll);
        s.short_poll = false;
        s.long_poll = true;
        s.websocket = true;
        assert_eq!(
            s.resolve(Transport::ShortPoll),
            Transport::Websocket,
            "wraps round"
        );
    }

    #[test]
    fn overrides_win_over_choices_and_switches_win_over_both() {
        let mut chosen = FeedTransports::defaults();
        chosen.jobs = Transport::Sse;
        let overrides = FeedOverrides {
            chat: Some(Transport::LongPoll),
            ..Default::default()
        };
        let on = Switches {
            sse: false,
            ..Default::default()
        };
        let s = TransportSettings::new(chosen, overrides, on, 2000, 25);
        assert_eq!(s.effective.chat, Transport::LongPoll);
        assert_eq!(
            s.effective.notifications,
            Transport::LongPoll,
            "sse off → long poll"
        );
        assert_eq!(s.effective.jobs, Transport::LongPoll);
        assert_eq!(s.chat, Transport::Websocket, "my own choice is kept");
    }
}
