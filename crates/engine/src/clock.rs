//! Calendar dates from the system clock, for DKIM selector templates. The planner never
//! reads the clock; the engine reads it once and passes the date in.

use std::time::{SystemTime, UNIX_EPOCH};

pub use mailzone_records::calendar::{Date, utc_date};

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A duration in whole seconds, for adding to Unix times. Config durations are at most a
/// century, so this never saturates for them; it keeps a wrapped `as i64` from turning a
/// huge value negative all the same.
pub fn secs(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// `now + duration` in Unix seconds, saturating instead of overflowing.
pub fn after(now_unix: i64, duration: std::time::Duration) -> i64 {
    now_unix.saturating_add(secs(duration))
}

/// An instant `duration` from now; a duration too long for the platform's clock means
/// "never" and gives an instant a century away.
pub fn deadline(duration: std::time::Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(duration)
        .or_else(|| now.checked_add(mailzone_records::config::MAX_DURATION))
        .unwrap_or(now)
}

/// A Unix time as RFC 3339 UTC (`2026-11-27T06:00:00Z`), for messages.
pub fn rfc3339(unix_seconds: i64) -> String {
    let at = UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate_instead_of_wrapping_or_panicking() {
        let huge = std::time::Duration::from_secs(u64::MAX);
        assert_eq!(secs(huge), i64::MAX);
        assert_eq!(after(1_795_651_200, huge), i64::MAX);
        assert!(deadline(huge) > std::time::Instant::now());
        assert_eq!(after(10, std::time::Duration::from_secs(5)), 15);
    }
}
