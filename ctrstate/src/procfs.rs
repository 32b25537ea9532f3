//! Process identity from /proc: a pid plus its start time names one process,
//! so a recycled pid is never mistaken for the container.

/// Field 22 of /proc/PID/stat (start time in clock ticks since boot), or
/// `None` when no such process exists.
pub fn pid_start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.start_time)
}

/// What `reconcile` needs from /proc/PID/stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 3: R, S, D, Z, ...
    pub state: char,
    /// Field 22.
    pub start_time: u64,
}

/// Reads and parses /proc/PID/stat; `None` when the process is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    if pid == 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&s)
}

/// Parses a stat line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(s: &str) -> Option<Stat> {
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?.chars().next()?;
    // Fields 4..=21 lie between the state (3) and the start time (22).
    let start_time = f.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let line =
            "1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_has_a_start_time_and_pid_zero_has_none() {
        let me = std::process::id();
        let t = pid_start_time(me).expect("own start time");
        assert_eq!(pid_start_time(me), Some(t));
        assert_eq!(pid_start_time(0), None);
    }
}
