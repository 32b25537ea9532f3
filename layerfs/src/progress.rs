//! A progress line on the terminal while a large layer loads, like docker's
//! `Loading layer [=====>     ]  45.1MB/200MB`. Only when stderr is a
//! terminal: pipes and logs get no control characters.

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

/// Layers smaller than this load too fast to need a progress line.
const MIN_SIZE: u64 = 8 << 20;

/// Wraps `inner` (of `total` bytes) in a reader that draws progress on
/// stderr, or returns it as it is when there is no terminal or it is small.
pub fn wrap<'a, R: Read + Send + 'a>(
    inner: R,
    total: u64,
    label: &str,
) -> Box<dyn Read + Send + 'a> {
    if total < MIN_SIZE || !std::io::stderr().is_terminal() {
        return Box::new(inner);
    }
    Box::new(Progress {
        inner,
        label: label.to_string(),
        total,
        done: 0,
        last: None,
    })
}

struct Progress<R> {
    inner: R,
    label: String,
    total: u64,
    done: u64,
    last: Option<Instant>,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        let finished = n == 0 || self.done >= self.total;
        if finished
            || self
                .last
                .is_none_or(|t| t.elapsed() > Duration::from_millis(100))
        {
            self.last = Some(Instant::now());
            let _ = write!(
                std::io::stderr(),
                "\r{}",
                line(&self.label, self.done, self.total)
            );
            if finished {
                let _ = writeln!(std::io::stderr());
                self.total = u64::MAX; // draw the last line once
            }
        }
        Ok(n)
    }
}

/// One progress line: label, a 50-column bar, done/total in MB.
fn line(label: &str, done: u64, total: u64) -> String {
    let frac = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let fill = (frac * 50.0) as usize;
    let bar = if fill >= 50 {
        "=".repeat(50)
    } else {
        format!("{}>{}", "=".repeat(fill), " ".repeat(49 - fill))
    };
    format!(
        "{label}: Loading layer [{bar}] {:.1}MB/{:.1}MB",
        done as f64 / 1e6,
        total as f64 / 1e6
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_bytes() {
        assert!(line("abc", 0, 100).contains("[>  "));
        assert!(line("abc", 50, 100).contains(&format!("[{}>", "=".repeat(25))));
        assert!(line("abc", 100, 100).contains(&"=".repeat(50)));
        assert!(line("abc", 45_100_000, 200_000_000).ends_with("45.1MB/200.0MB"));
    }

    #[test]
    fn no_terminal_means_no_wrapper_output() {
        // Under the test harness stderr is captured, not a terminal: the
        // data passes through untouched either way.
        let mut out = vec![];
        wrap(&[7u8; 100][..], 100, "x")
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, vec![7u8; 100]);
    }
}
