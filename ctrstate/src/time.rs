//! RFC 3339 timestamps in UTC with nanoseconds, formatted by hand so the
//! tool needs no date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Docker's zero time: what `startedAt`/`finishedAt` hold when unset.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The current time as `2026-11-22T21:30:00.123456789Z`.
pub fn now_rfc3339() -> String {
    // Before 1970 only on a broken clock; the zero time is an honest answer.
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => format_unix(d.as_secs(), d.subsec_nanos()),
        Err(_) => ZERO_TIME.to_string(),
    }
}

/// True when `t` is absent in docker's sense (empty or the zero time).
pub fn is_zero(t: &str) -> bool {
    t.is_empty() || t == ZERO_TIME
}

/// Formats seconds + nanoseconds since the epoch. Fixed width, so the strings
/// sort in time order (`ls` relies on it).
pub fn format_unix(secs: u64, nanos: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        y,
        m,
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        nanos
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_known_dates() {
        assert_eq!(format_unix(0, 0), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 (leap day) 12:34:56
        assert_eq!(
            format_unix(951_827_696, 7),
            "2000-02-29T12:34:56.000000007Z"
        );
        // date -u -d @1795383000 -> 2026-11-22T21:30:00Z
        assert_eq!(
            format_unix(1_795_383_000, 123_456_789),
            "2026-11-22T21:30:00.123456789Z"
        );
        assert_eq!(
            format_unix(4_102_444_799, 0),
            "2099-12-31T23:59:59.000000000Z"
        );
    }

    #[test]
    fn now_is_well_formed_and_sortable() {
        let a = now_rfc3339();
        let b = now_rfc3339();
        assert_eq!(a.len(), 30, "{a}");
        assert!(a.ends_with('Z') && a.as_bytes()[10] == b'T');
        assert!(a <= b);
    }

    #[test]
    fn zero_time_is_zero() {
        assert!(is_zero(ZERO_TIME));
        assert!(is_zero(""));
        assert!(!is_zero("2026-11-22T21:30:00.123456789Z"));
    }
}
