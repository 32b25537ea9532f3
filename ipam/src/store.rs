//! The on-disk state of one network: `<dataDir>/<network>`, and
//! `<dataDir>/.<network>.lock`, held with flock(LOCK_EX) around every
//! read-modify-write (a separate lock file, because the state file is
//! sometimes replaced; hidden, because network names never start with a dot
//! and so can never collide with it). ADD and DEL update the file in place
//! ([`crate::update`]); the first write of a network, the repair of a file
//! left half-written and the compaction of released records write it whole
//! here, by atomic rename (temp file, fsync, rename).
//!
//! Format (all integers little-endian), compact so a /16 costs 8 KiB plus
//! the owners actually present:
//!
//! ```text
//! magic    8 bytes  "MDIPAM1\n"
//! base     u32      subnet base address
//! prefix   u8       subnet prefix length
//! pad      3 bytes  zero
//! gateway  u32      gateway offset in the subnet (0: none)
//! last     u32      offset handed out last (next-fit cursor)
//! nwords   u32      bitmap length in u64 words (= ceil(2^(32-prefix) / 64))
//! words    nwords x u64, bit i of word w = offset 64w+i allocated
//! nowners  u32      owner records, released ones included
//! owners   nowners records, see [`crate::owners`]: 8 bytes + id + ifname
//!          each, a 64-hex container id packed into 32 bytes; flag bit 1
//!          marks a record released in place
//! ```
//!
//! The owner records are the truth: loading rebuilds the bitmap from them
//! and ignores bytes after the last record (see [`crate::update`] for why
//! either can disagree after a crash).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::bitmap::{Pool, Subnet};
use crate::owners::Owners;

const MAGIC: &[u8; 8] = b"MDIPAM1\n";
/// Byte offsets of the header fields written in place ([`crate::update`]).
pub(crate) const GATEWAY_AT: usize = 16;
pub(crate) const LAST_AT: usize = 20;
pub(crate) const WORDS_AT: usize = 28;

/// The fixed header.
pub(crate) struct Head {
    pub subnet: Subnet,
    pub gateway: u32,
    pub last: u32,
    pub nwords: usize,
}

/// The header, checked to leave room for the bitmap and the record count.
pub(crate) fn parse_head(b: &[u8]) -> std::result::Result<Head, String> {
    let mut r = Reader { b, at: 0 };
    if r.take(8)? != MAGIC {
        return Err("bad magic".into());
    }
    let base = r.u32()?;
    let prefix = r.take(4)?[0];
    let gateway = r.u32()?;
    let last = r.u32()?;
    let nwords = r.u32()? as usize;
    r.take(nwords.checked_mul(8).ok_or("bad bitmap length")? + 4)?;
    Ok(Head {
        subnet: subnet_of(base, prefix)?,
        gateway,
        last,
        nwords,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("create data dir {path}: {err}")]
    DataDir { path: PathBuf, err: std::io::Error },
    #[error("lock {path}: {err}")]
    Lock { path: PathBuf, err: std::io::Error },
    #[error("read {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("write {path}: {err}")]
    Write { path: PathBuf, err: std::io::Error },
    #[error(
        "corrupt state file {}: {why}; run `{}` to keep every owner that reads back (the file is kept beside it)",
        path.display(),
        crate::repair::command_for(path)
    )]
    Corrupt { path: PathBuf, why: String },
    #[error("invalid owner: {why}")]
    Owner { why: String },
    #[error("cannot repair {}: {why}", path.display())]
    Repair { path: PathBuf, why: String },
    #[error(
        "invalid network name {name:?}: use letters, digits, '.', '_', '-' (not starting with '.')"
    )]
    Name { name: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Network names become file names: keep them to a safe alphabet.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Name { name: name.into() })
    }
}

/// The state file of a pool other than a network's first IPv4 one:
/// `<network>+<cidr>`, `/` written `_` (`net1+fd00::_64`). `+` is not in
/// network names, so no network's file can be another's pool.
pub fn pool_name(network: &str, cidr: &str) -> String {
    format!("{network}+{}", cidr.replace('/', "_"))
}

/// A network name, or a [`pool_name`] of one.
pub fn check_pool_name(pool: &str) -> Result<()> {
    match pool.split_once('+') {
        None => check_name(pool),
        Some((net, cidr)) => {
            check_name(net)?;
            let ok = !cidr.is_empty()
                && cidr.len() <= 50
                && cidr
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':' || b == b'_');
            if ok {
                Ok(())
            } else {
                Err(Error::Name { name: pool.into() })
            }
        }
    }
}

/// The state file of `network` under `data_dir`.
pub fn state_path(data_dir: &Path, network: &str) -> PathBuf {
    data_dir.join(network)
}

/// An exclusive flock on `<dataDir>/.<network>.lock`, released on drop.
pub struct Locked {
    _lock: atomicfile::Lock,
    path: PathBuf,
}

impl Locked {
    /// Takes the lock, creating the data dir if `create` (a reader of a
    /// network that never existed needs no dir).
    pub fn acquire(data_dir: &Path, network: &str, create: bool) -> Result<Option<Locked>> {
        check_pool_name(network)?;
        if create {
            atomicfile::private_dir(data_dir).map_err(|err| Error::DataDir {
                path: data_dir.into(),
                err,
            })?;
        } else if !data_dir.join(network).exists() {
            return Ok(None);
        }
        let lock_path = data_dir.join(format!(".{network}.lock"));
        let lock = atomicfile::lock(&lock_path).map_err(|err| Error::Lock {
            path: lock_path,
            err,
        })?;
        Ok(Some(Locked {
            _lock: lock,
            path: state_path(data_dir, network),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pool, or None when the network has no state yet.
    pub fn load(&self) -> Result<Option<Pool>> {
        // fs::read sizes the buffer from the file's length: one allocation.
        let buf = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(Error::Read {
                    path: self.path.clone(),
                    err,
                })
            }
        };
        decode(buf).map(Some).map_err(|why| Error::Corrupt {
            path: self.path.clone(),
            why,
        })
    }

    /// Writes the pool atomically (`atomicfile`: temp file, fsync, rename).
    pub fn save(&self, pool: &Pool) -> Result<()> {
        atomicfile::write_with(&self.path, |f| {
            f.write_all(&encode_head(pool))?;
            f.write_all(pool.owners.raw())
        })
        .map_err(|err| Error::Write {
            path: self.path.clone(),
            err,
        })
    }

    /// Removes the state file, its index and the lock file (the network is gone).
    pub fn remove(self) -> Result<()> {
        let lock = self.path.with_file_name(format!(
            ".{}.lock",
            self.path.file_name().unwrap().to_string_lossy()
        ));
        let index = crate::update::index_path(&self.path);
        for p in [&self.path, &index, &lock] {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(Error::Write {
                        path: p.clone(),
                        err,
                    })
                }
            }
        }
        Ok(())
    }
}

pub fn encode(p: &Pool) -> Vec<u8> {
    let mut b = encode_head(p);
    b.extend_from_slice(p.owners.raw());
    b
}

/// Everything but the owner records (which are written as they are held).
fn encode_head(p: &Pool) -> Vec<u8> {
    let mut b = Vec::with_capacity(36 + p.words.len() * 8);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&u32::from(p.subnet.network()).to_le_bytes());
    b.extend_from_slice(&[p.subnet.prefix(), 0, 0, 0]);
    b.extend_from_slice(&p.gateway.to_le_bytes());
    b.extend_from_slice(&p.last.to_le_bytes());
    b.extend_from_slice(&(p.words.len() as u32).to_le_bytes());
    for w in &p.words {
        b.extend_from_slice(&w.to_le_bytes());
    }
    b.extend_from_slice(&(p.owners.len() as u32).to_le_bytes());
    b
}

/// The stored subnet, which must be a network address and a prefix.
fn subnet_of(base: u32, prefix: u8) -> std::result::Result<Subnet, String> {
    Subnet::new(base.into(), prefix)
        .ok()
        .filter(|s| u32::from(s.network()) == base)
        .ok_or_else(|| format!("bad subnet {}/{prefix}", std::net::Ipv4Addr::from(base)))
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
}

pub fn decode(mut buf: Vec<u8>) -> std::result::Result<Pool, String> {
    let b = &buf[..];
    let mut r = Reader { b, at: 0 };
    if r.take(8)? != MAGIC {
        return Err("bad magic".into());
    }
    let base = r.u32()?;
    let prefix = r.take(4)?[0];
    let gateway = r.u32()?;
    let last = r.u32()?;
    let nwords = r.u32()? as usize;
    let subnet = subnet_of(base, prefix)?;
    let mut pool = Pool::new(subnet, gateway).map_err(|e| e.to_string())?;
    if nwords != pool.words.len() || gateway >= subnet.size() || last >= subnet.size() {
        return Err("header does not match the subnet".into());
    }
    pool.last = last;
    // The stored bitmap is rebuilt from the owners below.
    r.take(nwords * 8)?;
    let n = r.u32()? as usize;
    // The owner records stay as they are, in the buffer they were read into.
    let at = r.at;
    buf.drain(..at);
    let rest = buf;
    let owners = Owners::from_raw(rest, n, |off| off < subnet.size())?;
    // The owners are the truth, the bitmap follows them: a process killed
    // between the in-place writes of an ADD or a DEL leaves one bit behind,
    // repaired here (and written back by the next save).
    let mut words = vec![0u64; nwords];
    for off in owners.offsets() {
        let (w, b) = ((off / 64) as usize, 1u64 << (off % 64));
        if words[w] & b != 0 {
            return Err(format!("two owners of offset {off}"));
        }
        words[w] |= b;
    }
    pool.words = words;
    pool.owners = owners;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitmap::Range;

    #[test]
    fn encode_decode_round_trip_and_size() {
        let s = crate::bitmap::parse_subnet("10.9.0.0/16").unwrap();
        let mut p = Pool::new(s, 1).unwrap();
        let r = Range::new(s, None, None).unwrap();
        for i in 0..5 {
            p.allocate("n", r, &format!("{i:064}"), "eth0", None)
                .unwrap();
        }
        let b = encode(&p);
        assert!(b.len() < 16 * 1024, "{} bytes", b.len());
        assert_eq!(decode(b.clone()).unwrap(), p);
        assert!(decode(b[..b.len() - 1].to_vec()).is_err());
        let mut bad = b.clone();
        bad[0] = b'X';
        assert!(decode(bad).is_err());
        // A set bit without an owner (a DEL killed half-way) is repaired.
        let mut orphan = p.clone();
        orphan.words[0] |= 1 << 60;
        assert_eq!(decode(encode(&orphan)).unwrap(), p);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("net-1_a.b").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
