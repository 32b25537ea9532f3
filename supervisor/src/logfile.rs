//! Docker's json-file log: one `{"log","stream","time"}` object per line,
//! in `<id>-json.log`, rotated as docker's `max-size`/`max-file` options
//! say (`<id>-json.log.1` is the newest rotated file, `.N` the oldest).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// docker cuts lines longer than this into several entries.
pub const MAX_LINE: usize = 16 * 1024;

/// Splits a stream into lines as docker does: a line ends at '\n'; a partial
/// line is held until its end arrives or the stream closes.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            emit(&self.pending[start..start + nl + 1]);
            start += nl + 1;
        }
        while self.pending.len() - start >= MAX_LINE {
            emit(&self.pending[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        self.pending.drain(..start);
    }
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }
}

/// Rotation, as docker's json-file options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate once the file holds this many bytes; 0 = never (docker's -1).
    pub max_size: u64,
    /// Files kept, the current one included (at least 1; 1 = truncate).
    pub max_file: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_size: 0,
            max_file: 1,
        }
    }
}

/// Appends entries to a json-file log, rotating it.
pub struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
}

impl Writer {
    pub fn open(path: &Path, rotation: Rotation) -> std::io::Result<Writer> {
        let file = open_log(path, false)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            size,
            rotation,
        })
    }

    pub fn write(&mut self, stream: &str, line: &[u8]) {
        // docker checks before the write: a file may pass max-size by one entry.
        if self.rotation.max_size > 0 && self.size >= self.rotation.max_size {
            if let Ok(f) = self.rotate() {
                self.file = f;
                self.size = 0;
            }
        }
        let s = entry(stream, line, &crate::time::now_rfc3339());
        // One write per entry so a reader never sees half a line; a full disk
        // must not kill the container's supervisor.
        if self.file.write_all(s.as_bytes()).is_ok() {
            self.size += s.len() as u64;
        }
    }

    /// Shifts `.i` to `.i+1` (dropping the oldest) and the current file to
    /// `.1`, then starts an empty current file (with one file: truncates).
    fn rotate(&mut self) -> std::io::Result<File> {
        let n = self.rotation.max_file;
        if n >= 2 {
            let _ = std::fs::remove_file(rotated(&self.path, n - 1));
            for i in (1..n - 1).rev() {
                let _ = std::fs::rename(rotated(&self.path, i), rotated(&self.path, i + 1));
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        open_log(&self.path, true)
    }
}

fn open_log(path: &Path, truncate: bool) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(!truncate)
        .write(true)
        .truncate(truncate)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// The `i`th rotated file of `path` (`path.i`).
pub fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// The log's files that exist, oldest first (`.N` ... `.1`, then `path`).
pub fn files_oldest_first(path: &Path) -> Vec<PathBuf> {
    let mut n = 0;
    while rotated(path, n + 1).exists() {
        n += 1;
    }
    let mut out: Vec<PathBuf> = (1..=n).rev().map(|i| rotated(path, i)).collect();
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

/// One log line: `{"log":"...","stream":"stdout","time":"..."}\n`.
pub fn entry(stream: &str, line: &[u8], time: &str) -> String {
    let text = String::from_utf8_lossy(line);
    let mut s = String::with_capacity(text.len() + 80);
    s.push_str("{\"log\":");
    push_json_str(&mut s, &text);
    s.push_str(",\"stream\":");
    push_json_str(&mut s, stream);
    s.push_str(",\"time\":");
    push_json_str(&mut s, time);
    s.push_str("}\n");
    s
}

/// Appends `v` as a JSON string, escaped as Go's encoding/json does
/// (docker's writer): control characters, `"`, `\`, and `<`, `>`, `&`,
/// U+2028, U+2029 as `\u` escapes.
pub fn push_json_str(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                s.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_reads() {
        let mut s = LineSplitter::default();
        let mut got: Vec<String> = vec![];
        s.push(b"a\nb", |l| got.push(String::from_utf8_lossy(l).into()));
        s.push(b"c\n\nd", |l| got.push(String::from_utf8_lossy(l).into()));
        s.flush(|l| got.push(String::from_utf8_lossy(l).into()));
        assert_eq!(got, vec!["a\n", "bc\n", "\n", "d"]);
    }

    #[test]
    fn long_lines_are_cut() {
        let mut s = LineSplitter::default();
        let mut n = 0;
        s.push(&vec![b'x'; MAX_LINE * 2 + 5], |_| n += 1);
        assert_eq!(n, 2);
    }

    #[test]
    fn entries_are_escaped_like_go() {
        assert_eq!(
            entry("stdout", b"a\"b\\c\t<\x01>\n", "T"),
            "{\"log\":\"a\\\"b\\\\c\\t\\u003c\\u0001\\u003e\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n"
        );
        // Invalid UTF-8 becomes U+FFFD, as Go's encoder does.
        assert!(entry("stderr", b"\xff", "T").contains("\u{fffd}"));
    }

    #[test]
    fn rotation_keeps_max_file_files_in_order() {
        let dir = std::env::temp_dir().join(format!("suplog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x-json.log");
        let mut w = Writer::open(
            &p,
            Rotation {
                max_size: 100,
                max_file: 3,
            },
        )
        .unwrap();
        for i in 0..40 {
            w.write("stdout", format!("line {i}\n").as_bytes());
        }
        let files = files_oldest_first(&p);
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(files[0], rotated(&p, 2));
        let all: String = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        let nums: Vec<u32> = all
            .lines()
            .map(|l| l.split("line ").nth(1).unwrap().split('\\').next().unwrap())
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(*nums.last().unwrap(), 39);
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        for f in &files {
            // One entry past max-size at most.
            assert!(std::fs::metadata(f).unwrap().len() < 200);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
