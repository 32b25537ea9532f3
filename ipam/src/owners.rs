//! Who holds each allocated offset, kept as the raw records of the state
//! file: loading a network with 60,000 owners is one read and one walk, not
//! 120,000 string allocations, and saving writes the bytes back as they are.
//!
//! Record (little-endian): `offset u32, flags u8, ifnamelen u8, idlen u16,
//! id, ifname`. Flag bit 0: the id was 64 lowercase hex digits (the usual
//! container id) and is stored as its 32 bytes. Flag bit 1: released (a DEL
//! marks the record in place; the next compaction drops it). Records are in
//! allocation order; listings sort them by offset.

use std::borrow::Cow;

const HEX64: u8 = 1;
/// The record was released in place.
pub const FREED: u8 = 2;
const HEAD: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub offset: u32,
    pub id: String,
    pub ifname: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    raw: Vec<u8>,
    count: usize,
}

/// An id as stored: packed when it is 64 lowercase hex digits.
pub(crate) fn encode_id(id: &str) -> (u8, Cow<'_, [u8]>) {
    let b = id.as_bytes();
    let hex = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if b.len() == 64 {
        let packed: Option<Vec<u8>> = b
            .chunks_exact(2)
            .map(|p| Some(hex(p[0])? << 4 | hex(p[1])?))
            .collect();
        if let Some(p) = packed {
            return (HEX64, Cow::Owned(p));
        }
    }
    (0, Cow::Borrowed(b))
}

fn decode_id(flags: u8, id: &[u8]) -> String {
    if flags & HEX64 != 0 {
        id.iter().map(|b| format!("{b:02x}")).collect()
    } else {
        String::from_utf8_lossy(id).into_owned()
    }
}

/// One record, borrowed from the raw bytes.
pub(crate) struct Rec<'a> {
    pub offset: u32,
    pub flags: u8,
    pub id: &'a [u8],
    pub ifname: &'a [u8],
    pub len: usize,
}

pub(crate) fn rec_at(raw: &[u8], at: usize) -> Result<Rec<'_>, String> {
    let trunc = || format!("owner record truncated at byte {at}");
    let h = raw.get(at..at + HEAD).ok_or_else(trunc)?;
    let offset = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let flags = h[4];
    let iflen = h[5] as usize;
    let idlen = u16::from_le_bytes([h[6], h[7]]) as usize;
    let id = raw.get(at + HEAD..at + HEAD + idlen).ok_or_else(trunc)?;
    let ifname = raw
        .get(at + HEAD + idlen..at + HEAD + idlen + iflen)
        .ok_or_else(trunc)?;
    Ok(Rec {
        offset,
        flags,
        id,
        ifname,
        len: HEAD + idlen + iflen,
    })
}

/// A record that reads back sane: an offset inside a subnet of `size`
/// addresses (not the network or broadcast address), known flags, a packed
/// id of 32 bytes or a printable one, and an interface name the kernel
/// would take. Decoding refuses any other; a repair resynchronises on it.
pub(crate) fn rec_ok(r: &Rec<'_>, size: u32) -> bool {
    let text = |b: &[u8]| std::str::from_utf8(b).is_ok_and(|s| !s.chars().any(|c| c.is_control()));
    r.offset != 0
        && r.offset < size.saturating_sub(1)
        && r.flags & !(HEX64 | FREED) == 0
        && if r.flags & HEX64 != 0 {
            r.id.len() == 32
        } else {
            !r.id.is_empty() && text(r.id)
        }
        && std::str::from_utf8(r.ifname).is_ok_and(|i| check_ifname(i).is_ok())
}

/// What an owner must be before it is written: an id of 1 to
/// [`MAX_ID`] bytes without control characters, an interface name of 1 to
/// 15 bytes as the kernel takes it. Anything longer could not be stored in
/// the record's length fields.
pub fn check_owner(id: &str, ifname: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID || id.chars().any(|c| c.is_control()) {
        return Err(format!(
            "container id must be 1-{MAX_ID} bytes without control characters"
        ));
    }
    check_ifname(ifname).map_err(|why| format!("interface name {ifname:?}: {why}"))
}

/// Longest container id stored (CNI's bound is 256; ours leaves room).
pub const MAX_ID: usize = 1024;

fn check_ifname(s: &str) -> Result<(), &'static str> {
    cni_plugin::check_ifname(s)
}

impl Owners {
    /// Takes `count` records from `raw`, checking each live one with
    /// `valid(offset)`; released records are dropped. Bytes after the last
    /// record (an append cut short) are ignored.
    pub fn from_raw(
        mut raw: Vec<u8>,
        count: usize,
        valid: impl Fn(u32) -> bool,
    ) -> Result<Owners, String> {
        let mut at = 0;
        let mut live = 0;
        let mut dead = false;
        for _ in 0..count {
            let r = rec_at(&raw, at)?;
            if r.flags & FREED != 0 {
                dead = true;
                at += r.len;
                continue;
            }
            if !valid(r.offset) || !rec_ok(&r, u32::MAX) {
                return Err(format!(
                    "owner record at byte {at} does not read back (offset {})",
                    r.offset
                ));
            }
            if r.flags & HEX64 != 0 && r.id.len() != 32 {
                return Err(format!(
                    "owner record at byte {at}: packed id is not 32 bytes"
                ));
            }
            if std::str::from_utf8(r.ifname).is_err()
                || (r.flags & HEX64 == 0 && std::str::from_utf8(r.id).is_err())
            {
                return Err(format!("owner record at byte {at} is not UTF-8"));
            }
            live += 1;
            at += r.len;
        }
        raw.truncate(at);
        if dead {
            // Keep only the live records: what a save writes back.
            let mut kept = Vec::with_capacity(raw.len());
            let mut at = 0;
            while at < raw.len() {
                let r = rec_at(&raw, at).expect("walked above");
                if r.flags & FREED == 0 {
                    kept.extend_from_slice(&raw[at..at + r.len]);
                }
                at += r.len;
            }
            raw = kept;
        }
        Ok(Owners { raw, count: live })
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
    pub fn len(&self) -> usize {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn recs(&self) -> impl Iterator<Item = Rec<'_>> {
        let mut at = 0;
        (0..self.count).map(move |_| {
            let r = rec_at(&self.raw, at).expect("validated on load");
            at += r.len;
            r
        })
    }

    /// Appends one record as it is stored (from another record list).
    pub(crate) fn push_raw(&mut self, rec: &[u8]) {
        self.raw.extend_from_slice(rec);
        self.count += 1;
    }

    /// The offsets held, in record order.
    pub fn offsets(&self) -> impl Iterator<Item = u32> + '_ {
        self.recs().map(|r| r.offset)
    }

    /// Appends a record; `id` up to 65535 bytes, `ifname` up to 255.
    pub fn push(&mut self, offset: u32, id: &str, ifname: &str) {
        let (flags, idb) = encode_id(id);
        self.raw.extend_from_slice(&offset.to_le_bytes());
        self.raw.push(flags);
        self.raw.push(ifname.len() as u8);
        self.raw
            .extend_from_slice(&(idb.len() as u16).to_le_bytes());
        self.raw.extend_from_slice(&idb);
        self.raw.extend_from_slice(ifname.as_bytes());
        self.count += 1;
    }

    /// The offset `id`/`ifname` holds: a byte comparison per record.
    pub fn find(&self, id: &str, ifname: &str) -> Option<u32> {
        let (flags, idb) = encode_id(id);
        self.recs()
            .find(|r| r.flags == flags && r.id == &idb[..] && r.ifname == ifname.as_bytes())
            .map(|r| r.offset)
    }

    /// The owner of `offset`.
    pub fn owner_of(&self, offset: u32) -> Option<Owner> {
        self.recs().find(|r| r.offset == offset).map(|r| Owner {
            offset,
            id: decode_id(r.flags, r.id),
            ifname: String::from_utf8_lossy(r.ifname).into_owned(),
        })
    }

    /// Removes what `id`/`ifname` holds; returns the freed offsets.
    pub fn remove(&mut self, id: &str, ifname: &str) -> Vec<u32> {
        let (flags, idb) = encode_id(id);
        let mut kept = Vec::with_capacity(self.raw.len());
        let mut freed = Vec::new();
        let mut at = 0;
        for _ in 0..self.count {
            let r = rec_at(&self.raw, at).expect("validated on load");
            if r.flags == flags && r.id == &idb[..] && r.ifname == ifname.as_bytes() {
                freed.push(r.offset);
            } else {
                kept.extend_from_slice(&self.raw[at..at + r.len]);
            }
            at += r.len;
        }
        if !freed.is_empty() {
            self.raw = kept;
            self.count -= freed.len();
        }
        freed
    }

    /// Every owner, sorted by offset.
    pub fn list(&self) -> Vec<Owner> {
        let mut v: Vec<Owner> = self
            .recs()
            .map(|r| Owner {
                offset: r.offset,
                id: decode_id(r.flags, r.id),
                ifname: String::from_utf8_lossy(r.ifname).into_owned(),
            })
            .collect();
        v.sort_by_key(|o| o.offset);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_packed_and_round_trip() {
        let long = "ab".repeat(32);
        let mut o = Owners::default();
        o.push(5, &long, "eth0");
        o.push(3, "short-id", "eth1");
        o.push(9, &"AB".repeat(32), "eth0"); // upper case: stored as is
        assert_eq!(o.raw().len(), (8 + 32 + 4) + (8 + 8 + 4) + (8 + 64 + 4));
        assert_eq!(o.find(&long, "eth0"), Some(5));
        assert_eq!(o.find(&long, "eth1"), None);
        assert_eq!(o.find("short-id", "eth1"), Some(3));
        let l = o.list();
        assert_eq!(
            l.iter().map(|x| x.offset).collect::<Vec<_>>(),
            vec![3, 5, 9]
        );
        assert_eq!(l[1].id, long);
        assert_eq!(o.owner_of(9).unwrap().id, "AB".repeat(32));
        let again = Owners::from_raw(o.raw().to_vec(), 3, |_| true).unwrap();
        assert_eq!(again, o);
        assert!(Owners::from_raw(o.raw().to_vec(), 4, |_| true).is_err());
        assert!(Owners::from_raw(o.raw().to_vec(), 3, |off| off != 9).is_err());
        assert_eq!(o.remove("short-id", "eth1"), vec![3]);
        assert_eq!(o.len(), 2);
        assert!(o.remove("short-id", "eth1").is_empty());
        assert_eq!(o.find(&long, "eth0"), Some(5));
    }
}
