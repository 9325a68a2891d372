//! Clock and measurement reports: `GET /api/time` and `POST /api/live/stats`.

use crate::feed::{Feed, Transport};
use serde::{Deserialize, Serialize};

/// `GET /api/time`: the server's clock, for clients estimating their offset (NTP-style: the
/// round trip with the smallest delay wins, offset = server time − midpoint of the request).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ServerTime {
    /// Unix time in milliseconds, with a fractional part (µs resolution).
    pub now_ms: f64,
}

/// Most reports in one `POST /api/live/stats`, and most latency samples in one report.
pub const MAX_STATS_REPORTS: usize = 16;
pub const MAX_STATS_SAMPLES: usize = 500;
/// Largest latency sample accepted (ms): ten minutes.
pub const MAX_STATS_LATENCY_MS: f64 = 600_000.0;

/// `POST /api/live/stats`: what a browser measured since its last report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientStats {
    pub reports: Vec<ClientReport>,
}

/// One (transport, feed)'s measurements: commit-to-screen latencies, each corrected by the
/// client's clock offset, and the gaps and duplicates it noticed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientReport {
    pub transport: Transport,
    pub feed: Feed,
    #[serde(default)]
    pub latency_ms: Vec<f64>,
    #[serde(default)]
    pub gaps: u64,
    #[serde(default)]
    pub duplicates: u64,
}

impl ClientStats {
    /// Checks the limits; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.reports.len() > MAX_STATS_REPORTS {
            return Err(format!("at most {MAX_STATS_REPORTS} reports"));
        }
        for r in &self.reports {
            if r.latency_ms.len() > MAX_STATS_SAMPLES {
                return Err(format!(
                    "at most {MAX_STATS_SAMPLES} latency samples per report"
                ));
            }
            if r.latency_ms
                .iter()
                .any(|v| !v.is_finite() || *v < 0.0 || *v > MAX_STATS_LATENCY_MS)
            {
                return Err(format!(
                    "latency samples are milliseconds from 0 to {MAX_STATS_LATENCY_MS}"
                ));
            }
            if r.gaps > 10_000 || r.duplicates > 10_000 {
                return Err("gaps and duplicates are counts up to 10000".into());
            }
        }
        Ok(())
    }
}
