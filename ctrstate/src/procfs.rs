//! Process identity from /proc (parsed by the `procfs` crate): a pid plus
//! its start time names one process, so a recycled pid is never mistaken
//! for the container.

use procfs::FromRead;

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
    let pid = i32::try_from(pid).ok().filter(|&p| p > 0)?;
    let s = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some(Stat {
        state: s.state,
        start_time: s.starttime,
    })
}

/// Parses a stat line (the command name, field 2, may hold spaces and
/// parentheses).
pub fn parse_stat(s: &str) -> Option<Stat> {
    let s = procfs::process::Stat::from_read(s.as_bytes()).ok()?;
    Some(Stat {
        state: s.state,
        start_time: s.starttime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let line = "1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
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
        assert!(stat(me).is_some_and(|s| s.state != 'Z'));
        assert_eq!(pid_start_time(0), None);
        assert_eq!(pid_start_time(u32::MAX), None);
    }
}
