//! In-place updates of a network's state file (format in [`crate::store`]),
//! the hot path of ADD and DEL: instead of rewriting the whole file (2.6 MB
//! with 60,000 owners) and renaming it, an ADD appends one owner record and
//! sets one bitmap bit, a DEL marks the owner's record released and clears
//! its bit: a few `pwrite`s of the bytes that change, under the network's
//! flock. The owner is found through an index ([`crate::index`]), not by
//! walking every record. Released records stay until a compaction (an
//! atomic rewrite by [`crate::store::Locked::save`]) once there are 16 and
//! more than a quarter as many as live ones.
//!
//! Crash safety. The owner records are the truth and the bitmap follows
//! them. An ADD writes, in order: the record after the last one, the record
//! count (the commit point), the bitmap word, the next-fit cursor. A DEL
//! writes the record's released flag (the commit point), then the bitmap
//! word. The index is marked dirty before the first of these writes and
//! gets the file's new stamp after the last. A process killed between two
//! writes leaves a dirty index, and at worst one bit that disagrees with the
//! owners or bytes after the last counted record: [`open`] then walks every
//! record, finds the file not clean and the caller takes the slow path,
//! whose decode rebuilds the bitmap from the owners and ignores those bytes,
//! and whose save writes the repaired file atomically.
//!
//! Durability. The in-place writes are not fsynced (host-local does not
//! fsync either): an fsync costs a journal commit, more than the whole
//! allocation. A process crash loses nothing (the writes are in the page
//! cache); a power loss may lose the last allocations, whose containers died
//! with the machine, or leave a torn file that decodes as corrupt (code 102:
//! `ipam repair` keeps what reads back). Compactions and the first write of a network
//! are still fsynced and renamed into place.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::bitmap::Pool;
use crate::index::{key_hash, Index, Stamp};
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
    /// The owner index, kept in step (see [`crate::index`]).
    index: Option<Index>,
    /// The caller's key hash in the index.
    key: u64,
}

/// `<dataDir>/.<network>.idx` for the state file `<dataDir>/<network>`.
pub fn index_path(state: &Path) -> PathBuf {
    state.with_file_name(format!(
        ".{}.idx",
        state.file_name().unwrap_or_default().to_string_lossy()
    ))
}

/// The pool of a header and bitmap (`buf` holds at least those).
fn pool_of(buf: &[u8], head: &store::Head) -> std::result::Result<Pool, String> {
    let mut pool = Pool::new(head.subnet, head.gateway).map_err(|e| e.to_string())?;
    if head.nwords != pool.words.len() || head.last >= head.subnet.size() {
        return Err("header does not match the subnet".into());
    }
    pool.last = head.last;
    let words = &buf[store::WORDS_AT..store::WORDS_AT + head.nwords * 8];
    for (w, c) in pool.words.iter_mut().zip(words.chunks_exact(8)) {
        *w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
    }
    Ok(pool)
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
    let stamp = Stamp::of(&file).map_err(rerr)?;
    let (kflags, kid) = encode_id(id);
    let key = key_hash(kflags, &kid, ifname.as_bytes());
    let ipath = index_path(&path);
    // The fast way: the header and bitmap, then the owner through the index
    // (the holder of a requested address is not indexed: walk for that).
    if also.is_none() {
        if let Some(up) = open_indexed(&file, &path, stamp, &ipath, (kflags, &kid, ifname))? {
            return Ok(Some(Update { file, key, ..up }));
        }
    }
    let len = stamp.size as usize;
    // Mapped, not read: the owners of 60,000 addresses are 2.6 MB that this
    // call walks once and never copies.
    let map = Map::new(&file, len).map_err(rerr)?;
    let buf = map.bytes();
    let corrupt = |why: String| Error::Corrupt {
        path: path.clone(),
        why,
    };
    let head = store::parse_head(buf).map_err(corrupt)?;
    let mut pool = pool_of(buf, &head).map_err(corrupt)?;
    let nrec_at = store::WORDS_AT + head.nwords * 8;
    let nrec = u32::from_le_bytes(buf[nrec_at..nrec_at + 4].try_into().expect("4 bytes"));
    let mut owners = Owners::default();
    let mut held = Vec::new();
    let (mut live, mut dead, mut clean) = (0usize, 0usize, true);
    let mut at = nrec_at + 4;
    // The hot loop of a big network (60,000 records): the fixed 8-byte
    // head of each record decides; the id is compared only when the
    // lengths and flags match.
    let size = head.subnet.size();
    let (kid, kif) = (&kid[..], ifname.as_bytes());
    let mut entries = Vec::new();
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
            let (rid, rif) = (&buf[at + 8..at + 8 + idlen], &buf[at + 8 + idlen..at + len]);
            let mine = flags == kflags && rid == kid && rif == kif;
            if mine {
                held.push((at, offset));
            }
            if mine || also == Some(offset) {
                owners.push_raw(&buf[at..at + len]);
            }
            entries.push((key_hash(flags, rid, rif), at as u32));
        }
        at += len;
    }
    let set: usize = pool.words.iter().map(|w| w.count_ones() as usize).sum();
    if !clean || set != live || at != buf.len() {
        return Ok(None);
    }
    // A new index for the next calls; without one they walk too.
    let index = Index::build(&ipath, stamp, nrec, dead as u32, &entries).ok();
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
        index,
        key,
    }))
}

/// The fast open: None when the index is missing, stale, dirty or full.
fn open_indexed(
    file: &File,
    path: &Path,
    stamp: Stamp,
    ipath: &Path,
    (kflags, kid, ifname): (u8, &[u8], &str),
) -> Result<Option<Update>> {
    let rerr = |err| Error::Read {
        path: path.into(),
        err,
    };
    let mut first = [0u8; store::WORDS_AT];
    if file.read_exact_at(&mut first, 0).is_err() {
        return Ok(None);
    }
    let nwords = u32::from_le_bytes(first[24..28].try_into().expect("4 bytes")) as usize;
    let hlen = store::WORDS_AT + nwords.min(1 << 20) * 8 + 4;
    if hlen as u64 > stamp.size {
        return Ok(None);
    }
    let mut hb = vec![0u8; hlen];
    file.read_exact_at(&mut hb, 0).map_err(rerr)?;
    let Ok(head) = store::parse_head(&hb) else {
        return Ok(None);
    };
    let Ok(mut pool) = pool_of(&hb, &head) else {
        return Ok(None);
    };
    let nrec = u32::from_le_bytes(hb[hlen - 4..].try_into().expect("4 bytes"));
    let Some(index) = Index::open(ipath, stamp, nrec) else {
        return Ok(None);
    };
    let key = key_hash(kflags, kid, ifname.as_bytes());
    let mut owners = Owners::default();
    let mut held = Vec::new();
    let mut rec = Vec::new();
    for pos in index.candidates(key).map_err(rerr)? {
        // Every candidate is read and compared: the index only points.
        let mut h = [0u8; 8];
        if file.read_exact_at(&mut h, pos as u64).is_err() {
            return Ok(None);
        }
        let offset = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (flags, iflen) = (h[4], h[5] as usize);
        let idlen = u16::from_le_bytes([h[6], h[7]]) as usize;
        if flags != kflags || idlen != kid.len() || iflen != ifname.len() {
            continue;
        }
        rec.resize(8 + idlen + iflen, 0);
        if file.read_exact_at(&mut rec, pos as u64).is_err() {
            return Ok(None);
        }
        if &rec[8..8 + idlen] == kid && &rec[8 + idlen..] == ifname.as_bytes() {
            if offset >= head.subnet.size() || !pool.is_set(offset) {
                return Ok(None);
            }
            held.push((pos as usize, offset));
            owners.push_raw(&rec);
        }
    }
    pool.owners = owners;
    Ok(Some(Update {
        file: file.try_clone().map_err(rerr)?,
        path: path.into(),
        gateway: head.gateway,
        pool,
        nrec,
        rec_end: stamp.size as usize,
        live: index.live as usize,
        dead: index.dead as usize,
        held,
        index: Some(index),
        key,
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

    /// Marks the index dirty before the state changes (an index that
    /// cannot be written is dropped: the next call walks).
    fn begin(&mut self) {
        if self.index.as_ref().is_some_and(|ix| ix.begin().is_err()) {
            self.index = None;
        }
    }

    /// The index, told what changed, gets the new stamp of the state file.
    fn finish(&mut self, change: impl FnOnce(&mut Index) -> std::io::Result<()>) {
        if let Some(ix) = self.index.as_mut() {
            let file = &self.file;
            let _ = change(ix).and_then(|_| ix.finish(Stamp::of(file)?));
        }
    }

    /// Writes what `pool.allocate` just did: `rec` (the new record) at
    /// `off`, and the cursor and gateway of `pool`.
    pub fn append(&mut self, rec: &[u8], off: u32) -> Result<()> {
        self.begin();
        let nrec_at = store::WORDS_AT + self.pool.words.len() * 8;
        let pos = self.rec_end;
        self.write(pos, rec)?;
        self.write(nrec_at, &(self.nrec + 1).to_le_bytes())?;
        self.write_word(off)?;
        self.write(store::LAST_AT, &self.pool.last.to_le_bytes())?;
        if self.pool.gateway != self.gateway {
            self.write(store::GATEWAY_AT, &self.pool.gateway.to_le_bytes())?;
        }
        self.nrec += 1;
        self.rec_end += rec.len();
        self.live += 1;
        let key = self.key;
        self.finish(|ix| ix.insert(key, pos as u32));
        Ok(())
    }

    /// Releases every record of the caller; returns the freed offsets.
    pub fn release(&mut self) -> Result<Vec<u32>> {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return Ok(vec![]);
        }
        self.begin();
        let mut freed = Vec::with_capacity(held.len());
        for &(pos, off) in &held {
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
        let key = self.key;
        self.finish(|ix| {
            held.iter()
                .try_for_each(|&(pos, _)| ix.remove(key, pos as u32))
        });
        Ok(freed)
    }

    /// Released records are worth a rewrite: at least 16, and more than a
    /// quarter of the live ones (so a /16 with 100 owners stays under 16
    /// KiB, index included).
    pub fn wants_compaction(&self) -> bool {
        self.dead >= 16 && 4 * self.dead > self.live
    }
}

#[cfg(test)]
mod tests {
    use crate::allocation::{self, Request};
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
            subnet: crate::bitmap::parse_subnet("10.7.0.0/16").unwrap(),
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
        // Compacted whenever 16 released records outnumbered a quarter of
        // the live ones: what is left is the few released after the last time.
        let len = std::fs::metadata(d.0.join("n")).unwrap().len();
        assert!(len < small + 64 * 12, "{len} bytes vs {small}");
        let l = allocation::list(&d.0, "n").unwrap();
        assert_eq!(l.allocations.len(), 1);
        assert_eq!(l.allocations[0].id, "keep");
    }

    #[test]
    fn the_owner_index_follows_adds_dels_and_growth() {
        let d = dir("index");
        let id = |i: usize| format!("{i:064x}");
        let mut ips = Vec::new();
        for i in 0..200 {
            ips.push(allocation::allocate(&req(&d.0, &id(i), None)).unwrap().ip);
        }
        assert!(d.0.join(".n.idx").exists());
        // Retries find their owner (through the index, grown past 64 slots).
        for i in [0, 63, 64, 199] {
            assert_eq!(
                allocation::allocate(&req(&d.0, &id(i), None)).unwrap().ip,
                ips[i]
            );
        }
        for i in (0..200).step_by(2) {
            assert_eq!(
                allocation::release(&d.0, "n", &id(i), "eth0").unwrap(),
                vec![ips[i]]
            );
        }
        for i in (0..200).step_by(2) {
            assert!(allocation::release(&d.0, "n", &id(i), "eth0")
                .unwrap()
                .is_empty());
        }
        let l = allocation::list(&d.0, "n").unwrap();
        assert_eq!(l.allocations.len(), 100);
        assert!(l
            .allocations
            .iter()
            .all(|a| a.id != id(0) && a.id != id(198)));
        assert_eq!(
            allocation::allocate(&req(&d.0, &id(1), None)).unwrap().ip,
            ips[1]
        );
        // Each index entry is checked against its record: one left dirty
        // (a process killed mid-update) or pointing at another state file is
        // not trusted.
        let ix = d.0.join(".n.idx");
        let mut b = std::fs::read(&ix).unwrap();
        b[52] = 1;
        std::fs::write(&ix, &b).unwrap();
        assert_eq!(
            allocation::allocate(&req(&d.0, &id(3), None)).unwrap().ip,
            ips[3]
        );
        assert_eq!(std::fs::read(&ix).unwrap()[52], 0, "rebuilt clean");
        let new = allocation::allocate(&req(&d.0, "fresh", None)).unwrap();
        assert!(!ips.contains(&new.ip));
        allocation::remove(&d.0, "n").unwrap();
        assert!(!ix.exists(), "the index goes with the network");
    }
}
