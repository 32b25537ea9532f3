//! RFC 3339 timestamps as docker records them: UTC with nanoseconds, fixed
//! width (`2026-11-22T21:30:00.123456789Z`, so the strings sort in time
//! order; `ls` relies on it), formatted by `humantime`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Docker's zero time: what `startedAt`/`finishedAt` hold when unset.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The current time as `2026-11-22T21:30:00.123456789Z`.
pub fn now_rfc3339() -> String {
    format(SystemTime::now())
}

/// `t` as `2026-11-22T21:30:00.123456789Z`.
pub fn format(t: SystemTime) -> String {
    // Before 1970 only on a broken clock (humantime would panic); the zero
    // time is an honest answer.
    if t < UNIX_EPOCH {
        return ZERO_TIME.to_string();
    }
    humantime::format_rfc3339_nanos(t).to_string()
}

/// True when `t` is absent in docker's sense (empty or the zero time).
pub fn is_zero(t: &str) -> bool {
    t.is_empty() || t == ZERO_TIME
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, nanos: u32) -> String {
        format(UNIX_EPOCH + Duration::new(secs, nanos))
    }

    #[test]
    fn formats_epoch_and_known_dates() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 (leap day) 12:34:56
        assert_eq!(at(951_827_696, 7), "2000-02-29T12:34:56.000000007Z");
        // date -u -d @1795383000 -> 2026-11-22T21:30:00Z
        assert_eq!(
            at(1_795_383_000, 123_456_789),
            "2026-11-22T21:30:00.123456789Z"
        );
        assert_eq!(at(4_102_444_799, 0), "2099-12-31T23:59:59.000000000Z");
        assert_eq!(format(UNIX_EPOCH - Duration::from_secs(1)), ZERO_TIME);
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
