//! Time display without the browser's Date, so the server renders the same text the browser
//! would (in UTC) and the browser switches to local time once it has hydrated.

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// The browser's offset from UTC in minutes, as JS `getTimezoneOffset` gives it (UTC+1 → -60).
pub fn browser_offset_minutes() -> i32 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::new_0().get_timezone_offset() as i32
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

fn local_ms(ms: i64, offset_minutes: i32) -> i64 {
    ms - offset_minutes as i64 * 60_000
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31). Howard Hinnant's civil-from-days.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// "14:05".
pub fn clock(ms: i64, offset_minutes: i32) -> String {
    let t = local_ms(ms, offset_minutes).rem_euclid(DAY_MS) / 60_000;
    format!("{:02}:{:02}", t / 60, t % 60)
}

/// ISO 8601 in UTC, for `<time datetime>`: "2026-11-22T01:07:46.000Z".
pub fn iso(ms: i64) -> String {
    let (y, m, d) = civil(ms.div_euclid(DAY_MS));
    let t = ms.rem_euclid(DAY_MS);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        t / 3_600_000,
        t / 60_000 % 60,
        t / 1000 % 60,
        t % 1000
    )
}

/// "Today", "Yesterday", or "Sun 22 Nov 2026".
pub fn day_label(ms: i64, now: i64, offset_minutes: i32) -> String {
    let day = local_ms(ms, offset_minutes).div_euclid(DAY_MS);
    let today = local_ms(now, offset_minutes).div_euclid(DAY_MS);
    match today - day {
        0 => "Today".into(),
        1 => "Yesterday".into(),
        _ => {
            let (y, m, d) = civil(day);
            let weekday = WEEKDAYS[(day + 4).rem_euclid(7) as usize];
            format!("{weekday} {d} {} {y}", MONTHS[(m - 1) as usize])
        }
    }
}

/// How long ago, in words: "just now", "5 min ago", "3 h ago", then the day ("Yesterday",
/// "Sun 22 Nov 2026").
pub fn relative(ms: i64, now: i64, offset_minutes: i32) -> String {
    let s = ((now - ms) / 1000).max(0);
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=43_199 => format!("{} h ago", s / 3600),
        _ => format!(
            "{} {}",
            day_label(ms, now, offset_minutes),
            clock(ms, offset_minutes)
        ),
    }
}

/// Waits `ms` in the browser (a timer, not a busy loop). Browser only.
pub async fn sleep_ms(ms: u64) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                ms.min(i32::MAX as u64) as i32,
            );
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-22T01:07:46Z, a Sunday.
    const T: i64 = 1_795_309_666_000;

    #[test]
    fn clocks_and_days_in_utc_and_with_offsets() {
        assert_eq!(clock(T, 0), "01:07");
        assert_eq!(clock(T, -60), "02:07", "UTC+1");
        assert_eq!(clock(T, 120), "23:07", "UTC-2, the day before");
        assert_eq!(day_label(T, T, 0), "Today");
        assert_eq!(day_label(T - DAY_MS, T, 0), "Yesterday");
        assert_eq!(day_label(T, T + 3 * DAY_MS, 0), "Sun 22 Nov 2026");
        assert_eq!(day_label(0, T, 0), "Thu 1 Jan 1970");
        assert_eq!(day_label(951_782_400_000, T, 0), "Tue 29 Feb 2000");
        assert_eq!(iso(T), "2026-11-22T01:07:46.000Z");
        assert_eq!(iso(T + 123), "2026-11-22T01:07:46.123Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(951_868_799_999), "2000-02-29T23:59:59.999Z");
    }

    #[test]
    fn relative_times() {
        assert_eq!(relative(T, T + 5_000, 0), "just now");
        assert_eq!(relative(T, T + 60_000, 0), "1 min ago");
        assert_eq!(relative(T, T + 3 * 3_600_000, 0), "3 h ago");
        assert_eq!(relative(T, T + 3 * DAY_MS, 0), "Sun 22 Nov 2026 01:07");
    }
}
