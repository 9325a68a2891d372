//! A small fixed-window rate limiter keyed by string (client IP, username). In memory: a limit
//! per server process, which is what brute-force protection on one machine needs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept before expired windows are swept, so a flood of distinct keys cannot grow the map
/// without bound.
const SWEEP_AT: usize = 10_000;

pub struct RateLimiter {
    window: Duration,
    hits: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(window: Duration) -> Self {
        RateLimiter {
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt for `key`. Err carries the seconds until the window resets. A limit
    /// of 0 means no limit.
    pub fn check(&self, key: &str, limit: u32) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if hits.len() >= SWEEP_AT {
            let window = self.window;
            hits.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = hits.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            let left = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

impl RateLimiter {
    /// How many times `key` was counted in its current window (0 when it has none).
    pub fn count(&self, key: &str) -> u32 {
        let hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        hits.get(key)
            .filter(|(start, _)| start.elapsed() < self.window)
            .map_or(0, |(_, n)| *n)
    }

    /// Seconds until `key`'s window resets (at least 1).
    pub fn retry_after(&self, key: &str) -> u64 {
        let hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        hits.get(key).map_or(1, |(start, _)| {
            self.window.saturating_sub(start.elapsed()).as_secs().max(1)
        })
    }

    /// Counts one event for `key`, with no limit (failures, watched by [`RateLimiter::count`]).
    pub fn record(&self, key: &str) {
        let _ = self.check(key, u32::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_per_key() {
        let rl = RateLimiter::new(Duration::from_secs(60));
        assert!(rl.check("a", 2).is_ok());
        assert!(rl.check("a", 2).is_ok());
        let retry = rl.check("a", 2).unwrap_err();
        assert!((1..=60).contains(&retry));
        assert!(rl.check("b", 2).is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        let rl = RateLimiter::new(Duration::from_secs(60));
        for _ in 0..100 {
            assert!(rl.check("a", 0).is_ok());
        }
    }

    #[test]
    fn counts_and_records_without_a_limit() {
        let rl = RateLimiter::new(Duration::from_secs(60));
        assert_eq!(rl.count("a"), 0);
        rl.record("a");
        rl.record("a");
        assert_eq!(rl.count("a"), 2);
        assert_eq!(rl.count("b"), 0);
        assert!((1..=60).contains(&rl.retry_after("a")));
    }

    #[test]
    fn a_new_window_resets_the_count() {
        let rl = RateLimiter::new(Duration::from_millis(0));
        for _ in 0..5 {
            assert!(rl.check("a", 1).is_ok());
        }
    }
}
