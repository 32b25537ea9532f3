//! Docker's human-readable durations and sizes.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-11-22T21:30:00.123Z`);
/// None for docker's zero time or garbage.
pub fn parse_rfc3339(t: &str) -> Option<f64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if y < 1970 {
        return None;
    }
    let frac = t[19..].trim_end_matches('Z').trim_start_matches('.');
    let frac: f64 = if frac.is_empty() {
        0.0
    } else {
        format!("0.{frac}").parse().ok()?
    };
    let days = days_from_civil(y, m, d);
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64 + frac)
}

/// Howard Hinnant's days_from_civil.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
