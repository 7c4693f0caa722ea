//! Civil dates of Unix times in UTC (proleptic Gregorian calendar), for DKIM selector
//! templates and RRSIG times (RFC 4034 §3.2). Pure: the caller reads the clock. The
//! days-to-civil conversion is H. Hinnant's algorithm, small enough not to need a date
//! crate.

/// A civil date (UTC): year, month 1–12, day 1–31.
pub type Date = (i32, u32, u32);

/// The UTC date of a Unix time.
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

/// The UTC time of day of a Unix time: hours, minutes, seconds.
pub fn utc_time_of_day(unix_seconds: i64) -> (u32, u32, u32) {
    let rem = unix_seconds.rem_euclid(86_400) as u32;
    (rem / 3600, (rem % 3600) / 60, rem % 60)
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
        assert_eq!(utc_time_of_day(-1), (23, 59, 59));
        assert_eq!(utc_time_of_day(1_795_651_200 + 3_723), (1, 2, 3));
    }
}
