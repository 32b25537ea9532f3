//! sha256 computed while a stream is read, so a layer is hashed and
//! extracted in one pass.

use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

/// A reader that hashes and counts every byte passing through it.
pub struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> HashReader<R> {
        HashReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream (a tar's trailing padding counts toward
    /// its digest), then returns `("sha256:<hex>", bytes read)`.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            format!("sha256:{}", hex(&self.hasher.finalize())),
            self.count,
        ))
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Chunks read ahead by the hashing thread.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the threads (bounds the memory used).
const AHEAD: usize = 4;

/// A stream read and hashed by a second thread (`read_ahead`), so that
/// hashing (and decompression, when `inner` decodes) overlaps with what
/// the reader does with the bytes. Reads like the stream itself.
pub struct Ahead {
    rx: Receiver<io::Result<Vec<u8>>>,
    back: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

/// What the hashing thread ends with: `("sha256:<hex>", bytes)` once it
/// has read the whole stream, None when it stopped early (a read error,
/// or the `Ahead` was dropped before the end).
pub type AheadDigest = Option<(String, u64)>;

/// Starts a thread in `scope` reading `inner` to its end in 1 MiB chunks,
/// hashing each before handing it over to the returned reader. The digest
/// covers every byte of the stream, read by the caller or not: join the
/// handle after reading what is needed (the thread keeps reading ahead).
pub fn read_ahead<'scope, R: Read + Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    inner: R,
) -> (Ahead, ScopedJoinHandle<'scope, AheadDigest>) {
    let (tx, rx) = mpsc::sync_channel(AHEAD);
    let (back, back_rx) = mpsc::channel();
    let h = scope.spawn(move || hash_chunks(inner, tx, back_rx));
    (
        Ahead {
            rx,
            back,
            cur: Vec::new(),
            pos: 0,
            done: false,
        },
        h,
    )
}

fn hash_chunks<R: Read>(
    mut inner: R,
    tx: SyncSender<io::Result<Vec<u8>>>,
    back: Receiver<Vec<u8>>,
) -> AheadDigest {
    let mut hasher = Sha256::new();
    let mut count = 0u64;
    loop {
        // A buffer the reader is done with, or a new one.
        let mut buf = back.try_recv().unwrap_or_default();
        buf.resize(CHUNK, 0);
        let mut n = 0;
        while n < CHUNK {
            match inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return None;
                }
            }
        }
        buf.truncate(n);
        hasher.update(&buf);
        count += n as u64;
        let end = n == 0;
        // An empty chunk marks the end; a closed channel means the reader quit.
        if tx.send(Ok(buf)).is_err() {
            return None;
        }
        if end {
            return Some((format!("sha256:{}", hex(&hasher.finalize())), count));
        }
    }
}

impl Read for Ahead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            let next = match self.rx.recv() {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the hashing thread stopped"));
                }
            };
            if next.is_empty() {
                self.done = true;
            }
            let old = std::mem::replace(&mut self.cur, next);
            self.pos = 0;
            let _ = self.back.send(old);
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `sha256:<hex>` of a byte slice.
pub fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_everything_read() {
        let mut r = HashReader::new(&b"abc"[..]);
        let mut one = [0u8; 1];
        r.read_exact(&mut one).unwrap();
        let (d, n) = r.finish().unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            d,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_of(b"abc"), d);
    }

    #[test]
    fn read_ahead_hashes_the_whole_stream_and_reads_it_in_order() {
        let data: Vec<u8> = (0..(3 * CHUNK + 12345) as u32)
            .map(|i| (i % 251) as u8)
            .collect();
        let (got, digest) = std::thread::scope(|sc| {
            let (mut r, h) = read_ahead(sc, &data[..]);
            let mut got = Vec::new();
            let mut small = [0u8; 700];
            // Small and large reads alike.
            let n = r.read(&mut small).unwrap();
            got.extend_from_slice(&small[..n]);
            r.read_to_end(&mut got).unwrap();
            assert_eq!(r.read(&mut small).unwrap(), 0, "EOF stays EOF");
            (got, h.join().unwrap())
        });
        assert!(got == data);
        assert_eq!(digest, Some((sha256_of(&data), data.len() as u64)));
    }

    #[test]
    fn read_ahead_digest_covers_bytes_never_read() {
        let data = vec![7u8; CHUNK / 2];
        let digest = std::thread::scope(|sc| {
            let (mut r, h) = read_ahead(sc, &data[..]);
            let mut one = [0u8; 1];
            r.read_exact(&mut one).unwrap();
            // Keep the reader alive until the thread is done.
            let d = h.join().unwrap();
            drop(r);
            d
        });
        assert_eq!(digest, Some((sha256_of(&data), data.len() as u64)));
    }

    #[test]
    fn read_ahead_passes_read_errors_on() {
        struct Bad;
        impl Read for Bad {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let (err, digest) = std::thread::scope(|sc| {
            let (mut r, h) = read_ahead(sc, Bad);
            let mut b = [0u8; 10];
            (r.read(&mut b).unwrap_err(), h.join().unwrap())
        });
        assert!(err.to_string().contains("disk on fire"));
        assert_eq!(digest, None);
    }
}
