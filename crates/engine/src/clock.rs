//! Calendar dates from the system clock, for DKIM selector templates. The planner never
//! reads the clock; the engine reads it once and passes the date in.

use std::time::{SystemTime, UNIX_EPOCH};

/// A civil date (UTC): year, month 1–12, day 1–31.
pub type Date = (i32, u32, u32);

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

/// The UTC date of a Unix time. Days-to-civil conversion of the proleptic Gregorian
/// calendar (H. Hinnant's algorithm), small enough not to need a date crate.
pub fn utc_date(unix_seconds: i64) -> Date {
    let days = unix_seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(utc_date(0), (1970, 1, 1));
        assert_eq!(utc_date(951_782_400), (2000, 2, 29));
        assert_eq!(utc_date(1_795_651_200), (2026, 11, 26));
        assert_eq!(utc_date(1_795_651_200 + 86_399), (2026, 11, 26));
        assert_eq!(utc_date(-1), (1969, 12, 31));
    }

    #[test]
    fn huge_durations_saturate_instead_of_wrapping_or_panicking() {
        let huge = std::time::Duration::from_secs(u64::MAX);
        assert_eq!(secs(huge), i64::MAX);
        assert_eq!(after(1_795_651_200, huge), i64::MAX);
        assert!(deadline(huge) > std::time::Instant::now());
        assert_eq!(after(10, std::time::Duration::from_secs(5)), 15);
    }
}
