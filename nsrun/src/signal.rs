//! Signal names and numbers as `kill` accepts them: `TERM`, `SIGTERM`,
//! `sigkill`, `9`.

use nix::sys::signal::Signal;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("invalid signal {0:?}: want a name like TERM or SIGKILL, or a number")]
    Invalid(String),
}

/// Parses a signal; 0 (no signal, a liveness probe) is accepted as `None`.
pub fn parse(s: &str) -> Result<Option<Signal>, SignalError> {
    let bad = || SignalError::Invalid(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        if n == 0 {
            return Ok(None);
        }
        return Signal::try_from(n).map(Some).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map(Some).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM").unwrap(), Some(Signal::SIGTERM));
        assert_eq!(parse("SIGKILL").unwrap(), Some(Signal::SIGKILL));
        assert_eq!(parse("hup").unwrap(), Some(Signal::SIGHUP));
        assert_eq!(parse("9").unwrap(), Some(Signal::SIGKILL));
        assert_eq!(parse("0").unwrap(), None);
    }

    #[test]
    fn rejects_junk() {
        for s in ["", "NOPE", "SIG", "99", "-1", "1.5"] {
            assert!(parse(s).is_err(), "{s}");
        }
    }
}
