//! Tar-split records: enough of a layer tar, beside its extracted files,
//! to rebuild the tar byte for byte (so `save` reproduces the diff id).
//!
//! While a layer is extracted every byte of the uncompressed stream is
//! either raw (headers, padding, PAX records, the end marker: kept in the
//! record) or the content of a regular file (kept as a reference to that
//! file in the layer dir). Format, repeated: `b'R' u64le:len bytes` or
//! `b'F' u64le:len u32le:pathlen path`.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::rc::Rc;

/// The recording side, shared by the stream wrapper and the unpacker.
pub struct Split {
    out: BufWriter<File>,
    raw: Vec<u8>,
    file: Option<(Vec<u8>, u64)>,
    err: Option<io::Error>,
}

pub type SharedSplit = Rc<RefCell<Split>>;

impl Split {
    pub fn create(path: &Path) -> io::Result<SharedSplit> {
        let out = BufWriter::new(File::create(path)?);
        Ok(Rc::new(RefCell::new(Split {
            out,
            raw: Vec::new(),
            file: None,
            err: None,
        })))
    }

    fn record(&mut self, bytes: &[u8]) {
        match &mut self.file {
            Some((_, len)) => *len += bytes.len() as u64,
            None => {
                self.raw.extend_from_slice(bytes);
                if self.raw.len() >= 1 << 20 {
                    self.flush_raw();
                }
            }
        }
    }

    fn flush_raw(&mut self) {
        if self.raw.is_empty() {
            return;
        }
        let mut rec = Vec::with_capacity(9);
        rec.push(b'R');
        rec.extend_from_slice(&(self.raw.len() as u64).to_le_bytes());
        let res = self
            .out
            .write_all(&rec)
            .and_then(|_| self.out.write_all(&self.raw));
        self.keep_err(res);
        self.raw.clear();
    }

    /// The bytes read from now until `end_file` are the content of `path`
    /// (relative to the layer dir).
    pub fn begin_file(&mut self, path: &[u8]) {
        self.end_file();
        self.flush_raw();
        self.file = Some((path.to_vec(), 0));
    }

    pub fn end_file(&mut self) {
        if let Some((path, len)) = self.file.take() {
            let mut rec = vec![b'F'];
            rec.extend_from_slice(&len.to_le_bytes());
            rec.extend_from_slice(&(path.len() as u32).to_le_bytes());
            rec.extend_from_slice(&path);
            let res = self.out.write_all(&rec);
            self.keep_err(res);
        }
    }

    fn keep_err(&mut self, res: io::Result<()>) {
        if let Err(e) = res {
            self.err.get_or_insert(e);
        }
    }

    /// Writes out what is pending; the first error of the whole recording.
    /// Not fsynced: the record is as durable as the layer files it points
    /// into, which are not either (see `layer::ensure`); `save` checks the
    /// digest of what it rebuilds.
    pub fn finish(&mut self) -> io::Result<()> {
        self.end_file();
        self.flush_raw();
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

/// A reader that feeds everything it reads to a `Split`.
pub struct Recorder<R> {
    inner: R,
    split: SharedSplit,
}

impl<R: Read> Recorder<R> {
    pub fn new(inner: R, split: SharedSplit) -> Recorder<R> {
        Recorder { inner, split }
    }
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.split.borrow_mut().record(&buf[..n]);
        Ok(n)
    }
}

/// One piece of a recorded tar.
#[derive(Debug, PartialEq)]
pub enum Segment {
    Raw(Vec<u8>),
    File { path: Vec<u8>, len: u64 },
}

/// Reads a split record whole (raw parts are small: headers and padding).
pub fn read(path: &Path) -> io::Result<Vec<Segment>> {
    let mut r = BufReader::new(File::open(path)?);
    let mut out = Vec::new();
    let mut tag = [0u8; 1];
    loop {
        match r.read_exact(&mut tag) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(out),
            Err(e) => return Err(e),
        }
        let mut len = [0u8; 8];
        r.read_exact(&mut len)?;
        let len = u64::from_le_bytes(len);
        match tag[0] {
            b'R' => {
                let mut b = vec![0; len as usize];
                r.read_exact(&mut b)?;
                out.push(Segment::Raw(b));
            }
            b'F' => {
                let mut pl = [0u8; 4];
                r.read_exact(&mut pl)?;
                let mut p = vec![0; u32::from_le_bytes(pl) as usize];
                r.read_exact(&mut p)?;
                out.push(Segment::File { path: p, len });
            }
            t => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad split record tag {t}"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_raw_and_file_segments() {
        let dir = std::env::temp_dir().join(format!("split-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s");
        let split = Split::create(&p).unwrap();
        let mut r = Recorder::new(&b"HEADERdatadataPAD"[..], split.clone());
        let mut b = [0u8; 6];
        r.read_exact(&mut b).unwrap();
        split.borrow_mut().begin_file(b"a/f");
        let mut d = [0u8; 8];
        r.read_exact(&mut d).unwrap();
        split.borrow_mut().end_file();
        io::copy(&mut r, &mut io::sink()).unwrap();
        split.borrow_mut().finish().unwrap();
        let segs = read(&p).unwrap();
        assert_eq!(
            segs,
            vec![
                Segment::Raw(b"HEADER".to_vec()),
                Segment::File {
                    path: b"a/f".to_vec(),
                    len: 8
                },
                Segment::Raw(b"PAD".to_vec())
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
