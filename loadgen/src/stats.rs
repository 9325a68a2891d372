//! Latency summaries and the server's memory, read from /proc.

use std::fmt;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentiles of samples in microseconds.
pub fn summarize(mut us: Vec<u64>) -> Summary {
    if us.is_empty() {
        return Summary::default();
    }
    us.sort_unstable();
    let pct = |q: f64| {
        let rank = ((q * us.len() as f64).ceil() as usize).clamp(1, us.len());
        us[rank - 1] as f64 / 1000.0
    };
    Summary {
        n: us.len(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: *us.last().unwrap_or(&0) as f64 / 1000.0,
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.2} ms · p99 {:.2} ms · max {:.2} ms (n={})",
            self.p50_ms, self.p99_ms, self.max_ms, self.n
        )
    }
}

/// Resident memory of process `pid` in KiB (VmRSS), Linux only.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time (user + system) process `pid` has used so far, in milliseconds, from
/// `/proc/<pid>/stat` (Linux only; clock ticks taken as 100 per second, Linux's `USER_HZ`).
pub fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 * 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = summarize((1..=100).map(|i| i * 1000).collect());
        assert_eq!(s.n, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(summarize(vec![]).n, 0);
    }

    #[test]
    fn reads_its_own_rss() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn reads_its_own_cpu_time() {
        let start = cpu_ms(std::process::id()).unwrap();
        // Burn some CPU until the clock-tick counter moves (it must, eventually).
        let mut x = 0u64;
        while cpu_ms(std::process::id()).unwrap() <= start {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
        }
        std::hint::black_box(x);
        assert!(cpu_ms(u32::MAX).is_none());
    }
}
