//! Docker's json-file log: one `{"log","stream","time"}` object per line.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Splits a stream into lines as docker does: a line ends at '\n'; a partial
/// line is held until its end arrives or the stream closes.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

/// docker cuts lines longer than this into several entries.
const MAX_LINE: usize = 16 * 1024;

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

pub struct Writer {
    file: File,
}

impl Writer {
    pub fn open(path: &Path) -> std::io::Result<Writer> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Writer { file })
    }
    pub fn write(&mut self, stream: &str, line: &[u8]) {
        let e = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: stream.to_string(),
            time: ctrstate::time::now_rfc3339(),
        };
        let mut s = serde_json::to_string(&e).unwrap_or_default();
        s.push('\n');
        // One write per entry so a reader never sees half a line; a full disk
        // must not kill the container's supervisor.
        let _ = self.file.write_all(s.as_bytes());
    }
}

/// Reads all entries (a torn last line, from a crash, is skipped).
pub fn read_entries(path: &Path) -> std::io::Result<Vec<Entry>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut out = vec![];
    for line in BufReader::new(f).lines() {
        if let Ok(e) = serde_json::from_str::<Entry>(&line?) {
            out.push(e);
        }
    }
    Ok(out)
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
}
