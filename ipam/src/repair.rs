//! `ipam repair NETWORK`: the way out of a corrupt state file (a torn write
//! after a power loss, a disk error, a hand edit). Every pool file of the
//! network that does not decode is salvaged under its lock:
//!
//! 1. the header is taken from the file when it is consistent (magic, a
//!    network address, a bitmap the size of the subnet), else from
//!    `--subnet` (the network's first IPv4 pool) or the pool's file name
//!    (`<network>+<cidr>`);
//! 2. the owner records are walked from the first to the end of the file,
//!    whatever the stored count says: every record that reads back whole
//!    and sane (an offset inside the subnet, known flags, a packed id of 32
//!    bytes or a printable one, an interface name) is kept, and after a
//!    damaged one the walk moves on byte by byte to the next record that
//!    reads back; released records are dropped, as a compaction would;
//! 3. the bitmap is rebuilt from the kept owners (their addresses stay
//!    taken: DEL by their owner frees them, no ADD gets them);
//! 4. the corrupt file is hard-linked to `<file>.corrupt-<UTC time>` beside
//!    it (a name no network or pool can have: it holds `:`), then the
//!    salvaged pool replaces it by atomic rename and the derived index is
//!    removed.
//!
//! A file that decodes is left alone. Nothing is written before the
//! salvage succeeded, so a repair that fails (no subnet known) changes
//! nothing.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bitmap::{parse_subnet, Pool, Subnet};
use crate::owners::{rec_at, rec_ok, FREED};
use crate::store::{self, Error, Locked};
use crate::v6::{Owner6, Pool6, Subnet6};

/// What the repair of one pool file did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub file: PathBuf,
    /// "ok" (it decoded: untouched) or "repaired".
    pub state: &'static str,
    /// Live owners in the file now.
    pub owners: usize,
    /// What could not be read back, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<String>,
    /// The corrupt file, kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
}

/// Repairs every pool file of `network`; `subnet` is needed only when the
/// header of its first IPv4 pool is unreadable.
pub fn repair(
    data_dir: &Path,
    network: &str,
    subnet: Option<Subnet>,
) -> Result<Vec<Report>, Error> {
    store::check_name(network)?;
    let pools = crate::pools::pools_of(data_dir, network).map_err(|e| Error::Repair {
        path: data_dir.into(),
        why: e.to_string(),
    })?;
    let mut out = Vec::new();
    for pool in pools {
        let Some(lock) = Locked::acquire(data_dir, &pool, false)? else {
            continue;
        };
        let path = lock.path().to_path_buf();
        let buf = std::fs::read(&path).map_err(|err| Error::Read {
            path: path.clone(),
            err,
        })?;
        let named = pool.split_once('+').map(|(_, c)| c.replace('_', "/"));
        let fail = |why: String| Error::Repair {
            path: path.clone(),
            why,
        };
        let report = if pool.contains(':') {
            if let Ok(p) = Pool6::decode(&buf) {
                ok(path, p.owners.len())
            } else {
                let hint = named.as_deref().and_then(Subnet6::parse);
                let (p, lost) = salvage6(&buf, hint).map_err(fail)?;
                replace(&lock, &p.encode(), p.owners.len(), lost)?
            }
        } else if let Ok(p) = store::decode(buf.clone()) {
            ok(path, p.owners.len())
        } else {
            let hint = match &named {
                Some(c) => parse_subnet(c),
                None => subnet,
            };
            let (p, lost) = salvage(&buf, hint).map_err(fail)?;
            replace(&lock, &store::encode(&p), p.owners.len(), lost)?
        };
        out.push(report);
    }
    Ok(out)
}

fn ok(file: PathBuf, owners: usize) -> Report {
    Report {
        file,
        state: "ok",
        owners,
        lost: vec![],
        backup: None,
    }
}

/// Keeps the corrupt file as `<file>.corrupt-<time>`, then writes `bytes`.
fn replace(lock: &Locked, bytes: &[u8], owners: usize, lost: Vec<String>) -> Result<Report, Error> {
    let path = lock.path();
    let werr = |p: &Path| {
        let p = p.to_path_buf();
        move |err| Error::Write { path: p, err }
    };
    let stamp = utc_stamp();
    let mut backup = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    let mut n = 1;
    while let Err(e) = std::fs::hard_link(path, &backup) {
        if e.kind() != std::io::ErrorKind::AlreadyExists || n > 100 {
            return Err(werr(&backup)(e));
        }
        n += 1;
        backup = PathBuf::from(format!("{}.corrupt-{stamp}.{n}", path.display()));
    }
    atomicfile::write(path, bytes).map_err(werr(path))?;
    // Derived from the old file: it would not match anyway; gone is clearer.
    let _ = std::fs::remove_file(crate::update::index_path(path));
    Ok(Report {
        file: path.into(),
        state: "repaired",
        owners,
        lost,
        backup: Some(backup),
    })
}

/// `2024-05-01T12:00:00Z` for now.
fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Byte ranges the walk could not read, as lines for the report.
fn note_skip(lost: &mut Vec<String>, from: usize, to: usize) {
    if to > from {
        lost.push(format!("bytes {from}..{to} unreadable"));
    }
}

/// The IPv4 pool that can be read back from `buf`.
pub fn salvage(buf: &[u8], hint: Option<Subnet>) -> Result<(Pool, Vec<String>), String> {
    let u32_at = |at: usize| {
        buf.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let mut lost = Vec::new();
    // The header as stored, when it holds together.
    let stored = store::parse_head(buf)
        .ok()
        .filter(|h| Pool::new(h.subnet, 0).is_ok_and(|p| p.words.len() == h.nwords));
    let (subnet, gateway, last) = match (&stored, hint) {
        (Some(h), Some(s)) if h.subnet != s => {
            return Err(format!(
                "the file holds subnet {}, not {s}: give the right --subnet",
                h.subnet
            ))
        }
        (Some(h), _) => (h.subnet, h.gateway, h.last),
        (None, Some(s)) => {
            lost.push("header unreadable: rebuilt from the subnet given".into());
            let g = u32_at(store::GATEWAY_AT).unwrap_or(0);
            let l = u32_at(store::LAST_AT).unwrap_or(0);
            (s, g, l)
        }
        (None, None) => {
            return Err(
                "its header is unreadable: give the network's subnet with --subnet CIDR".into(),
            )
        }
    };
    let mut pool = Pool::new(subnet, 0).map_err(|e| e.to_string())?;
    let size = subnet.size();
    pool.gateway = if gateway < size - 1 { gateway } else { 0 };
    pool.last = if last < size { last } else { 0 };
    let mut at = store::WORDS_AT + pool.words.len() * 8 + 4;
    let mut skip_from = None;
    // offset -> index of its owner among the kept records.
    let mut kept: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut by_offset = std::collections::HashMap::new();
    while at < buf.len() {
        let rec = rec_at(buf, at).ok().filter(|r| rec_ok(r, size));
        let Some(r) = rec else {
            skip_from.get_or_insert(at);
            at += 1;
            continue;
        };
        if let Some(from) = skip_from.take() {
            note_skip(&mut lost, from, at);
        }
        if r.flags & FREED == 0 {
            // Two live owners of one address: the later allocation wins
            // (the earlier was released, its flag lost).
            let bytes = buf[at..at + r.len].to_vec();
            if let Some(i) = by_offset.insert(r.offset, kept.len()) {
                let (off, _): &(u32, Vec<u8>) = &kept[i];
                lost.push(format!(
                    "an older owner of {} (a later record holds it)",
                    crate::bitmap::host(subnet, *off)
                ));
                kept[i].1.clear();
            }
            kept.push((r.offset, bytes));
        }
        at += r.len;
    }
    if let Some(from) = skip_from {
        note_skip(&mut lost, from, buf.len());
    }
    let mut raw = Vec::new();
    let mut n = 0;
    for (off, bytes) in kept.into_iter().filter(|(_, b)| !b.is_empty()) {
        raw.extend_from_slice(&bytes);
        pool.words[(off / 64) as usize] |= 1u64 << (off % 64);
        n += 1;
    }
    pool.owners = crate::owners::Owners::from_raw(raw, n, |o| o < size)?;
    Ok((pool, lost))
}

/// The IPv6 pool that can be read back from `buf` (format in [`crate::v6`]).
pub fn salvage6(buf: &[u8], hint: Option<Subnet6>) -> Result<(Pool6, Vec<String>), String> {
    const HEAD: usize = 8 + 16 + 8 + 16 + 16 + 4;
    let mut lost = Vec::new();
    let u128_le = |at: usize| {
        buf.get(at..at + 16)
            .map(|b| u128::from_le_bytes(b.try_into().expect("16 bytes")))
    };
    let stored = (buf.len() >= HEAD && &buf[..8] == b"MDIPAM6\n")
        .then(|| Subnet6 {
            base: u128::from_be_bytes(buf[8..24].try_into().expect("16 bytes")),
            prefix: buf[24],
        })
        .filter(|s| s.check_prefix().is_ok() && Subnet6::parse(&s.to_string()) == Some(*s));
    let subnet = match (stored, hint) {
        (Some(s), Some(h)) if s != h => return Err(format!("the file holds subnet {s}, not {h}")),
        (Some(s), _) => s,
        (None, Some(h)) => {
            lost.push("header unreadable: rebuilt from the pool's name".into());
            h
        }
        (None, None) => return Err("its header is unreadable and its name has no subnet".into()),
    };
    let last = subnet.last();
    let sane = |v: Option<u128>| v.filter(|&v| v <= last).unwrap_or(0);
    let mut pool = Pool6 {
        subnet,
        gateway: sane(u128_le(32)),
        last: sane(u128_le(48)),
        owners: Vec::new(),
    };
    let text_ok = |b: &[u8], max: usize| {
        !b.is_empty()
            && b.len() <= max
            && std::str::from_utf8(b)
                .is_ok_and(|s| !s.chars().any(|c| c.is_control() || c.is_whitespace()))
    };
    let mut at = HEAD;
    let mut skip_from = None;
    let mut by_offset = std::collections::HashMap::new();
    while at < buf.len() {
        let rec = (|| {
            let offset = u128_le(at)?;
            let iflen = *buf.get(at + 16)? as usize;
            let idlen = u16::from_le_bytes(buf.get(at + 17..at + 19)?.try_into().ok()?) as usize;
            let id = buf.get(at + 19..at + 19 + idlen)?;
            let ifname = buf.get(at + 19 + idlen..at + 19 + idlen + iflen)?;
            let ok = offset != 0 && offset <= last && text_ok(id, 65535) && text_ok(ifname, 255);
            ok.then(|| (offset, id, ifname, 19 + idlen + iflen))
        })();
        let Some((offset, id, ifname, len)) = rec else {
            skip_from.get_or_insert(at);
            at += 1;
            continue;
        };
        if let Some(from) = skip_from.take() {
            note_skip(&mut lost, from, at);
        }
        let o = Owner6 {
            offset,
            id: String::from_utf8_lossy(id).into_owned(),
            ifname: String::from_utf8_lossy(ifname).into_owned(),
        };
        if let Some(i) = by_offset.insert(offset, pool.owners.len()) {
            lost.push(format!("an older owner of {}", subnet.host(offset)));
            pool.owners[i].offset = u128::MAX;
        }
        pool.owners.push(o);
        at += len;
    }
    if let Some(from) = skip_from {
        note_skip(&mut lost, from, buf.len());
    }
    pool.owners.retain(|o| o.offset != u128::MAX);
    Ok((pool, lost))
}

/// The repair command a corrupt `path` calls for, for error messages.
pub fn command_for(path: &Path) -> String {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let network = name.split('+').next().unwrap_or_default();
    format!("ipam --data-dir {} repair {network}", dir.display())
}
