//! Docker's human-readable durations and sizes.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-11-22T21:30:00.123Z`),
/// parsed by `humantime` as ctrstate's times are formatted; None for
/// docker's zero time (before 1970) or garbage.
pub fn parse_rfc3339(t: &str) -> Option<f64> {
    let at = humantime::parse_rfc3339(t).ok()?;
    at.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Docker's `HumanDuration`: "Less than a second", "3 seconds", "About a minute", ...
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let m = s / 60;
    let h = (secs / 3600.0).round() as u64;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if m == 1 {
        "About a minute".into()
    } else if m < 60 {
        format!("{m} minutes")
    } else if h == 1 {
        "About an hour".into()
    } else if h < 48 {
        format!("{h} hours")
    } else if h < 24 * 7 * 2 {
        format!("{} days", h / 24)
    } else if h < 24 * 30 * 2 {
        format!("{} weeks", h / 24 / 7)
    } else if h < 24 * 365 * 2 {
        format!("{} months", h / 24 / 30)
    } else {
        format!("{} years", h / 24 / 365)
    }
}

/// "3 seconds ago" from an RFC 3339 time.
pub fn ago(t: &str) -> String {
    match parse_rfc3339(t) {
        Some(at) => format!("{} ago", duration(now() - at)),
        None => String::new(),
    }
}

/// Docker's `HumanSize` (decimal units, 3 significant digits): "4.2MB".
pub fn size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // Three significant digits, as docker prints.
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{:.*}", digits, v);
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{}{}", s, units[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_rfc3339("2026-11-22T21:30:00.5Z"),
            Some(1_795_383_000.5)
        );
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
        // ctrstate's own format, nanoseconds and all
        let t = ctrstate::time::format(
            UNIX_EPOCH + std::time::Duration::new(1_795_383_000, 250_000_000),
        );
        assert_eq!(parse_rfc3339(&t), Some(1_795_383_000.25));
    }

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(duration(0.2), "Less than a second");
        assert_eq!(duration(3.0), "3 seconds");
        assert_eq!(duration(65.0), "About a minute");
        assert_eq!(duration(600.0), "10 minutes");
        assert_eq!(duration(3.0 * 3600.0), "3 hours");
    }

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(size(999), "999B");
        assert_eq!(size(4_200_000), "4.2MB");
        assert_eq!(size(2_150_400), "2.15MB");
    }
}
