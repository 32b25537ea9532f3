//! In-place updates of a network's state file (format in [`crate::store`]),
//! the hot path of ADD and DEL: instead of rewriting the whole file (2.6 MB
//! with 60,000 owners) and renaming it, an ADD appends one owner record and
//! sets one bitmap bit, a DEL marks the owner's record released and clears
//! its bit: a few `pwrite`s of the bytes that change, under the network's
//! flock. Released records stay until a compaction (an atomic rewrite by
//! [`crate::store::Locked::save`]) once there are 32 and more than half as
//! many as live ones.
//!
//! Crash safety. The owner records are the truth and the bitmap follows
//! them. An ADD writes, in order: the record after the last one, the record
//! count (the commit point), the bitmap word, the next-fit cursor. A DEL
//! writes the record's released flag (the commit point), then the bitmap
//! word. A process killed between two writes leaves at worst one bit that
//! disagrees with the owners, or bytes after the last counted record:
//! [`open`] finds the file not clean and the caller takes the slow path,
//! whose decode rebuilds the bitmap from the owners and ignores those bytes,
//! and whose save writes the repaired file atomically.
//!
//! Durability. The in-place writes are not fsynced (host-local does not
//! fsync either): an fsync costs a journal commit, more than the whole
//! allocation. A process crash loses nothing (the writes are in the page
//! cache); a power loss may lose the last allocations, whose containers died
//! with the machine, or leave a torn file that decodes as corrupt (code 102:
//! remove it to start over). Compactions and the first write of a network
//! are still fsynced and renamed into place.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::bitmap::Pool;
use crate::owners::{encode_id, Owners, FREED};
use crate::store::{self, Error, Locked, Result};

/// A read-only shared mapping of a whole file, unmapped on drop.
struct Map {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Map {
    fn new(file: &File, len: usize) -> std::io::Result<Map> {
        if len == 0 {
            return Ok(Map {
                ptr: std::ptr::null_mut(),
                len,
            });
        }
        // SAFETY: a fresh read-only mapping of a file we hold open; every
        // writer of the file holds the network's flock, which we hold too,
        // so it is neither truncated nor rewritten under us.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Map { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the mapping is `len` bytes long and lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping what new() mapped, once.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// A state file read for one in-place update.
pub struct Update {
    file: File,
    path: PathBuf,
    /// Header and bitmap; `owners` holds only the records this call needs:
    /// the caller's own and the holder of the requested offset.
    pub pool: Pool,
    gateway: u32,
    nrec: u32,
    rec_end: usize,
    live: usize,
    dead: usize,
    /// (byte position, offset) of the caller's live records.
    pub held: Vec<(usize, u32)>,
}

/// Opens the state file for an update by `id`/`ifname` (and `also`, a
/// requested offset whose holder an error may have to name). None when the
/// network has no state, or when its file is not clean (after a crash):
/// the caller then loads, repairs and saves the whole file.
pub fn open(lock: &Locked, id: &str, ifname: &str, also: Option<u32>) -> Result<Option<Update>> {
    let path = lock.path().to_path_buf();
    let rerr = |err| Error::Read {
        path: path.clone(),
        err,
    };
    let file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(rerr(err)),
    };
    let len = file.metadata().map_err(rerr)?.len() as usize;
    // Mapped, not read: the owners of 60,000 addresses are 2.6 MB that this
    // call walks once and never copies.
    let map = Map::new(&file, len).map_err(rerr)?;
    let buf = map.bytes();
    let corrupt = |why: String| Error::Corrupt {
        path: path.clone(),
        why,
    };
    let head = store::parse_head(buf).map_err(corrupt)?;
    let mut pool = Pool::new(head.subnet, head.gateway).map_err(|e| corrupt(e.to_string()))?;
    if head.nwords != pool.words.len() || head.last >= head.subnet.size() {
        return Err(corrupt("header does not match the subnet".into()));
    }
    pool.last = head.last;
    let words = &buf[store::WORDS_AT..store::WORDS_AT + head.nwords * 8];
    for (w, c) in pool.words.iter_mut().zip(words.chunks_exact(8)) {
        *w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
    }
    let nrec_at = store::WORDS_AT + head.nwords * 8;
    let nrec = u32::from_le_bytes(buf[nrec_at..nrec_at + 4].try_into().expect("4 bytes"));
    let (kflags, kid) = encode_id(id);
    let mut owners = Owners::default();
    let mut held = Vec::new();
    let (mut live, mut dead, mut clean) = (0usize, 0usize, true);
    let mut at = nrec_at + 4;
    // The hot loop of a big network (60,000 records): the fixed 8-byte
    // head of each record decides; the id is compared only when the
    // lengths and flags match.
    let size = head.subnet.size();
    let (kid, kif) = (&kid[..], ifname.as_bytes());
    for _ in 0..nrec {
        let Some(h) = buf.get(at..at + 8) else {
            return Err(corrupt(format!("owner record truncated at byte {at}")));
        };
        let offset = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (flags, iflen) = (h[4], h[5] as usize);
        let idlen = u16::from_le_bytes([h[6], h[7]]) as usize;
        let len = 8 + idlen + iflen;
        if at + len > buf.len() {
            return Err(corrupt(format!("owner record truncated at byte {at}")));
        }
        if flags & FREED != 0 {
            dead += 1;
        } else {
            live += 1;
            clean &= offset < size && pool.is_set(offset);
            let mine = flags == kflags
                && idlen == kid.len()
                && iflen == kif.len()
                && &buf[at + 8..at + 8 + idlen] == kid
                && &buf[at + 8 + idlen..at + len] == kif;
            if mine {
                held.push((at, offset));
            }
            if mine || also == Some(offset) {
                owners.push_raw(&buf[at..at + len]);
            }
        }
        at += len;
    }
    let set: usize = pool.words.iter().map(|w| w.count_ones() as usize).sum();
    if !clean || set != live || at != buf.len() {
        return Ok(None);
    }
    pool.owners = owners;
    Ok(Some(Update {
        file,
        path,
        gateway: head.gateway,
        pool,
        nrec,
        rec_end: at,
        live,
        dead,
        held,
    }))
}

impl Update {
    fn write(&self, at: usize, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all_at(bytes, at as u64)
            .map_err(|err| Error::Write {
                path: self.path.clone(),
                err,
            })
    }

    fn write_word(&self, off: u32) -> Result<()> {
        let w = (off / 64) as usize;
        self.write(store::WORDS_AT + w * 8, &self.pool.words[w].to_le_bytes())
    }

    /// Writes what `pool.allocate` just did: `rec` (the new record) at
    /// `off`, and the cursor and gateway of `pool`.
    pub fn append(&mut self, rec: &[u8], off: u32) -> Result<()> {
        let nrec_at = store::WORDS_AT + self.pool.words.len() * 8;
        self.write(self.rec_end, rec)?;
        self.write(nrec_at, &(self.nrec + 1).to_le_bytes())?;
        self.write_word(off)?;
        self.write(store::LAST_AT, &self.pool.last.to_le_bytes())?;
        if self.pool.gateway != self.gateway {
            self.write(store::GATEWAY_AT, &self.pool.gateway.to_le_bytes())?;
        }
        self.nrec += 1;
        self.rec_end += rec.len();
        self.live += 1;
        Ok(())
    }

    /// Releases every record of the caller; returns the freed offsets.
    pub fn release(&mut self) -> Result<Vec<u32>> {
        let held = std::mem::take(&mut self.held);
        let mut freed = Vec::with_capacity(held.len());
        for (pos, off) in held {
            let mut flags = [0u8];
            self.file
                .read_exact_at(&mut flags, pos as u64 + 4)
                .map_err(|err| Error::Read {
                    path: self.path.clone(),
                    err,
                })?;
            self.write(pos + 4, &[flags[0] | FREED])?;
            self.pool.words[(off / 64) as usize] &= !(1u64 << (off % 64));
            self.write_word(off)?;
            self.live -= 1;
            self.dead += 1;
            freed.push(off);
        }
        Ok(freed)
    }

    /// Released records are worth a rewrite: at least 32, and more than
    /// half the live ones (so a /16 with 100 owners stays under 16 KiB).
    pub fn wants_compaction(&self) -> bool {
        self.dead >= 32 && 2 * self.dead > self.live
    }
}

#[cfg(test)]
mod tests {
    use crate::allocation::{self, Request};
    use crate::bitmap::Subnet;
    use crate::owners::FREED;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};

    /// A data dir removed on drop.
    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn dir(tag: &str) -> Dir {
        Dir(std::env::temp_dir().join(format!("ipam-upd-{tag}-{}", std::process::id())))
    }

    fn req(d: &Path, id: &str, ip: Option<&str>) -> Request {
        Request {
            data_dir: d.into(),
            network: "n".into(),
            subnet: Subnet::parse("10.7.0.0/16").unwrap(),
            gateway: None,
            range_start: None,
            range_end: None,
            id: id.into(),
            ifname: "eth0".into(),
            ip: ip.map(|s| s.parse().unwrap()),
        }
    }

    fn ino(d: &Path) -> u64 {
        std::fs::metadata(d.join("n")).unwrap().ino()
    }

    #[test]
    fn add_and_del_update_the_file_in_place() {
        let d = dir("inplace");
        let first = allocation::allocate(&req(&d.0, &"a".repeat(64), None)).unwrap();
        assert_eq!(first.ip.to_string(), "10.7.0.2");
        let (inode, size) = (ino(&d.0), std::fs::metadata(d.0.join("n")).unwrap().len());
        let b = allocation::allocate(&req(&d.0, "b", None)).unwrap();
        assert_eq!(b.ip.to_string(), "10.7.0.3");
        // Same file, one record longer (8 + 1 + 4 bytes), no rewrite.
        assert_eq!(ino(&d.0), inode);
        assert_eq!(std::fs::metadata(d.0.join("n")).unwrap().len(), size + 13);
        // ADD again: the same address, nothing written.
        assert_eq!(
            allocation::allocate(&req(&d.0, "b", None)).unwrap().ip,
            b.ip
        );
        assert_eq!(std::fs::metadata(d.0.join("n")).unwrap().len(), size + 13);
        // A requested address held by another names its holder.
        let e = allocation::allocate(&req(&d.0, "c", Some("10.7.0.3"))).unwrap_err();
        assert!(e.to_string().contains("to b/eth0"), "{e}");
        let freed = allocation::release(&d.0, "n", "b", "eth0").unwrap();
        assert_eq!(freed, vec![b.ip]);
        assert!(allocation::release(&d.0, "n", "b", "eth0")
            .unwrap()
            .is_empty());
        assert_eq!(ino(&d.0), inode);
        let l = allocation::list(&d.0, "n").unwrap();
        assert_eq!(l.allocations.len(), 1);
        assert_eq!(l.allocations[0].id, "a".repeat(64));
        // Next-fit goes on after .3.
        assert_eq!(
            allocation::allocate(&req(&d.0, "c", None))
                .unwrap()
                .ip
                .to_string(),
            "10.7.0.4"
        );
    }

    #[test]
    fn a_file_left_half_written_is_repaired() {
        let d = dir("repair");
        allocation::allocate(&req(&d.0, "a", None)).unwrap();
        allocation::allocate(&req(&d.0, "b", None)).unwrap();
        // A DEL of b killed after its commit point: released flag written,
        // bit (offset 3, word 0) still set.
        let p = d.0.join("n");
        let mut buf = std::fs::read(&p).unwrap();
        let recs = crate::store::WORDS_AT + 1024 * 8 + 4;
        let second = recs + 8 + 1 + 4;
        assert_eq!(buf[second], 3, "b's record holds offset 3");
        buf[second + 4] |= FREED;
        // ... and an ADD killed before its commit point: junk after the records.
        buf.extend_from_slice(&[9, 9, 9]);
        std::fs::write(&p, &buf).unwrap();
        let inode = ino(&d.0);
        let c = allocation::allocate(&req(&d.0, "c", None)).unwrap();
        assert_eq!(c.ip.to_string(), "10.7.0.4");
        assert_ne!(ino(&d.0), inode, "repaired by an atomic rewrite");
        let l = allocation::list(&d.0, "n").unwrap();
        let ids: Vec<_> = l.allocations.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        // Offset 3 is free again: ask for it.
        let b2 = allocation::allocate(&req(&d.0, "b2", Some("10.7.0.3"))).unwrap();
        assert_eq!(b2.ip.to_string(), "10.7.0.3");
    }

    #[test]
    fn released_records_are_compacted_away() {
        let d = dir("compact");
        allocation::allocate(&req(&d.0, "keep", None)).unwrap();
        let small = std::fs::metadata(d.0.join("n")).unwrap().len();
        for i in 0..70 {
            allocation::allocate(&req(&d.0, &format!("t{i}"), None)).unwrap();
        }
        for i in 0..70 {
            allocation::release(&d.0, "n", &format!("t{i}"), "eth0").unwrap();
        }
        // Compacted whenever 32 released records outnumbered half the live
        // ones: what is left is the few released after the last time.
        let len = std::fs::metadata(d.0.join("n")).unwrap().len();
        assert!(len < small + 64 * 12, "{len} bytes vs {small}");
        let l = allocation::list(&d.0, "n").unwrap();
        assert_eq!(l.allocations.len(), 1);
        assert_eq!(l.allocations[0].id, "keep");
    }
}
