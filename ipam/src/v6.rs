//! IPv6 pools. A /64 has 2^64 addresses: no bitmap can cover it, and none
//! is needed, because a pool hands out a tiny fraction of it. The state is a
//! next-fit cursor plus the sparse set of allocated offsets with their
//! owners:
//!
//! ```text
//! magic    8 bytes  "MDIPAM6\n"
//! base     u128     subnet network address (big-endian, as the address)
//! prefix   u8       prefix length; 7 bytes zero
//! gateway  u128     gateway offset (0: none)
//! last     u128     offset handed out last (next-fit cursor)
//! nowners  u32
//! owners   nowners x (offset u128 LE, ifnamelen u8, idlen u16 LE, id, ifname)
//! ```
//!
//! A file costs 60 bytes plus about 85 bytes per live owner, whatever the
//! prefix. An allocation tries `last + 1`, skipping offsets in the hash set
//! of taken ones (only an explicitly requested address can sit ahead of the
//! cursor), so it is O(1) expected: the cursor does not come back to the
//! start of a /64 in any machine's lifetime. Reading the owners is one read
//! of the file (its size is the live owners, not the prefix); the file is
//! rewritten whole by atomic rename (temp, fsync, rename) under
//! `flock(<dataDir>/.<pool>.lock)`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use crate::store;

const MAGIC: &[u8; 8] = b"MDIPAM6\n";
/// Prefixes we allocate from: offsets fit a u128 anyway; below /8 is a typo.
pub const MIN_PREFIX: u8 = 8;
pub const MAX_PREFIX: u8 = 126;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("subnet {subnet}: prefix must be between /{MIN_PREFIX} and /{MAX_PREFIX}")]
    Prefix { subnet: String },
    #[error("{what} {ip} is outside {subnet}")]
    Outside {
        what: &'static str,
        ip: Ipv6Addr,
        subnet: String,
    },
    #[error("range {lo}-{hi}: start must be <= end and not the subnet-router address")]
    BadRange { lo: Ipv6Addr, hi: Ipv6Addr },
    #[error("requested address {ip} is already allocated to {id}/{ifname}")]
    Taken {
        ip: Ipv6Addr,
        id: String,
        ifname: String,
    },
    #[error("requested address {ip} is reserved (subnet-router anycast or gateway)")]
    Reserved { ip: Ipv6Addr },
    #[error("requested address {ip} is outside the allocatable range {range}")]
    OutOfRange { ip: Ipv6Addr, range: String },
    #[error("no free address left in {range} of network {network}")]
    Exhausted { network: String, range: String },
    #[error("pool {pool} already has subnet {stored}, not {asked}")]
    SubnetChanged {
        pool: String,
        stored: String,
        asked: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// An IPv6 subnet, network address and prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet6 {
    pub base: u128,
    pub prefix: u8,
}

impl Subnet6 {
    /// `addr/len`, host bits cleared.
    pub fn parse(s: &str) -> Option<Subnet6> {
        let (ip, len) = s.split_once('/')?;
        let prefix: u8 = len.trim().parse().ok().filter(|p| *p <= 128)?;
        let ip: Ipv6Addr = ip.trim().parse().ok()?;
        Some(Subnet6 {
            base: u128::from(ip) & Self::mask(prefix),
            prefix,
        })
    }
    fn mask(prefix: u8) -> u128 {
        if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - prefix)
        }
    }
    /// The highest offset in the subnet.
    pub fn last(&self) -> u128 {
        !Self::mask(self.prefix)
    }
    pub fn offset(&self, ip: Ipv6Addr) -> Option<u128> {
        let v = u128::from(ip);
        (v & Self::mask(self.prefix) == self.base).then(|| v - self.base)
    }
    pub fn host(&self, off: u128) -> Ipv6Addr {
        Ipv6Addr::from(self.base | (off & self.last()))
    }
    pub fn overlaps(&self, o: &Subnet6) -> bool {
        let p = self.prefix.min(o.prefix);
        self.base & Self::mask(p) == o.base & Self::mask(p)
    }
    pub fn check_prefix(&self) -> Result<()> {
        if (MIN_PREFIX..=MAX_PREFIX).contains(&self.prefix) {
            Ok(())
        } else {
            Err(Error::Prefix {
                subnet: self.to_string(),
            })
        }
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv6Addr::from(self.base), self.prefix)
    }
}

/// One allocation request in an IPv6 pool.
#[derive(Debug, Clone)]
pub struct Request6 {
    pub data_dir: PathBuf,
    /// The network, for messages.
    pub network: String,
    /// The state file's name under `data_dir`.
    pub pool: String,
    pub subnet: Subnet6,
    pub gateway: Option<Ipv6Addr>,
    pub range_start: Option<Ipv6Addr>,
    pub range_end: Option<Ipv6Addr>,
    pub id: String,
    pub ifname: String,
    pub ip: Option<Ipv6Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner6 {
    pub offset: u128,
    pub id: String,
    pub ifname: String,
}

/// A pool as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool6 {
    pub subnet: Subnet6,
    pub gateway: u128,
    pub last: u128,
    pub owners: Vec<Owner6>,
}

impl Pool6 {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(60 + self.owners.len() * 90);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.subnet.base.to_be_bytes());
        b.extend_from_slice(&[self.subnet.prefix, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&self.gateway.to_le_bytes());
        b.extend_from_slice(&self.last.to_le_bytes());
        b.extend_from_slice(&(self.owners.len() as u32).to_le_bytes());
        for o in &self.owners {
            b.extend_from_slice(&o.offset.to_le_bytes());
            b.push(o.ifname.len() as u8);
            b.extend_from_slice(&(o.id.len() as u16).to_le_bytes());
            b.extend_from_slice(o.id.as_bytes());
            b.extend_from_slice(o.ifname.as_bytes());
        }
        b
    }

    pub(crate) fn decode(b: &[u8]) -> std::result::Result<Pool6, String> {
        let mut at = 0usize;
        let mut take = |n: usize| -> std::result::Result<&[u8], String> {
            let s = b
                .get(at..at + n)
                .ok_or_else(|| format!("truncated at byte {at}"))?;
            at += n;
            Ok(s)
        };
        if take(8)? != MAGIC {
            return Err("bad magic".into());
        }
        let base = u128::from_be_bytes(take(16)?.try_into().unwrap());
        let prefix = take(8)?[0];
        let gateway = u128::from_le_bytes(take(16)?.try_into().unwrap());
        let last = u128::from_le_bytes(take(16)?.try_into().unwrap());
        let n = u32::from_le_bytes(take(4)?.try_into().unwrap()) as usize;
        let subnet = Subnet6 { base, prefix };
        if prefix > 128 || base & !Subnet6::mask(prefix) != 0 {
            return Err(format!("bad subnet prefix {prefix}"));
        }
        let mut owners = Vec::with_capacity(n.min(1 << 20));
        let mut seen = HashSet::new();
        for _ in 0..n {
            let offset = u128::from_le_bytes(take(16)?.try_into().unwrap());
            let iflen = take(1)?[0] as usize;
            let idlen = u16::from_le_bytes(take(2)?.try_into().unwrap()) as usize;
            let id = String::from_utf8_lossy(take(idlen)?).into_owned();
            let ifname = String::from_utf8_lossy(take(iflen)?).into_owned();
            if offset > subnet.last() || !seen.insert(offset) {
                return Err(format!("bad or duplicate owner offset {offset}"));
            }
            owners.push(Owner6 { offset, id, ifname });
        }
        Ok(Pool6 {
            subnet,
            gateway,
            last,
            owners,
        })
    }

    pub fn find(&self, id: &str, ifname: &str) -> Option<u128> {
        self.owners
            .iter()
            .find(|o| o.id == id && o.ifname == ifname)
            .map(|o| o.offset)
    }
}

/// The allocatable offsets `[lo, hi]` of a request, checked.
fn range_of(req: &Request6) -> Result<(u128, u128)> {
    let s = req.subnet;
    let off = |what, ip: Option<Ipv6Addr>, dflt| match ip {
        None => Ok(dflt),
        Some(ip) => s.offset(ip).ok_or(Error::Outside {
            what,
            ip,
            subnet: s.to_string(),
        }),
    };
    let lo = off("rangeStart", req.range_start, 1)?;
    let hi = off("rangeEnd", req.range_end, s.last())?;
    if lo == 0 || lo > hi {
        return Err(Error::BadRange {
            lo: s.host(lo),
            hi: s.host(hi),
        });
    }
    Ok((lo, hi))
}

fn gateway_of(req: &Request6) -> Result<u128> {
    let s = req.subnet;
    match req.gateway {
        None => Ok(1),
        Some(g) => match s.offset(g) {
            Some(o) if o != 0 => Ok(o),
            _ => Err(Error::Outside {
                what: "gateway",
                ip: g,
                subnet: s.to_string(),
            }),
        },
    }
}

/// What an allocation returns: the address, its prefix, the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocated6 {
    pub ip: Ipv6Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv6Addr>,
}

/// Validates the request, then allocates under the pool's lock.
pub fn allocate(req: &Request6) -> Result<Allocated6> {
    req.subnet.check_prefix()?;
    let gw = gateway_of(req)?;
    let (lo, hi) = range_of(req)?;
    let range = || format!("{}-{}", req.subnet.host(lo), req.subnet.host(hi));
    let requested = match req.ip {
        None => None,
        Some(ip) => match req.subnet.offset(ip) {
            Some(o) if (lo..=hi).contains(&o) => Some(o),
            _ => return Err(Error::OutOfRange { ip, range: range() }),
        },
    };
    let file = File6::lock(&req.data_dir, &req.pool, true)?.expect("created");
    let mut pool = match file.load()? {
        Some(p) if p.subnet != req.subnet => {
            return Err(Error::SubnetChanged {
                pool: req.pool.clone(),
                stored: p.subnet.to_string(),
                asked: req.subnet.to_string(),
            })
        }
        Some(p) => p,
        None => Pool6 {
            subnet: req.subnet,
            gateway: gw,
            last: 0,
            owners: vec![],
        },
    };
    pool.gateway = gw;
    let done = |off: u128| Allocated6 {
        ip: req.subnet.host(off),
        prefix: req.subnet.prefix,
        gateway: Some(req.subnet.host(gw)),
    };
    if let Some(held) = pool.find(&req.id, &req.ifname) {
        if requested.is_none_or(|r| r == held) {
            return Ok(done(held));
        }
    }
    let taken: HashMap<u128, usize> = pool
        .owners
        .iter()
        .enumerate()
        .map(|(i, o)| (o.offset, i))
        .collect();
    let off = match requested {
        Some(o) => {
            if o == gw {
                return Err(Error::Reserved {
                    ip: req.subnet.host(o),
                });
            }
            if let Some(&i) = taken.get(&o) {
                let w = &pool.owners[i];
                return Err(Error::Taken {
                    ip: req.subnet.host(o),
                    id: w.id.clone(),
                    ifname: w.ifname.clone(),
                });
            }
            o
        }
        None => {
            // Next-fit: each step skips one taken offset (or the gateway),
            // so at most owners + 2 steps, and one in practice.
            let size = hi - lo + 1;
            let mut cand = if (lo..hi).contains(&pool.last) {
                pool.last + 1
            } else {
                lo
            };
            let mut steps = 0u128;
            loop {
                if cand != gw && !taken.contains_key(&cand) {
                    break cand;
                }
                steps += 1;
                if steps >= size || steps > taken.len() as u128 + 2 {
                    return Err(Error::Exhausted {
                        network: req.network.clone(),
                        range: range(),
                    });
                }
                cand = if cand >= hi { lo } else { cand + 1 };
            }
        }
    };
    // A retried ADD asking for another address gives up the old one.
    pool.owners
        .retain(|o| !(o.id == req.id && o.ifname == req.ifname));
    pool.owners.push(Owner6 {
        offset: off,
        id: req.id.clone(),
        ifname: req.ifname.clone(),
    });
    if requested.is_none() {
        pool.last = off;
    }
    file.save(&pool)?;
    Ok(done(off))
}

/// Releases what `id`/`ifname` holds in pool `pool`; nothing is success.
pub fn release(data_dir: &Path, pool: &str, id: &str, ifname: &str) -> Result<Vec<Ipv6Addr>> {
    retain(data_dir, pool, |o| !(o.id == id && o.ifname == ifname))
}

/// Keeps the owners `keep` says yes to; returns the addresses released.
pub fn retain(
    data_dir: &Path,
    pool: &str,
    keep: impl Fn(&Owner6) -> bool,
) -> Result<Vec<Ipv6Addr>> {
    let Some(file) = File6::lock(data_dir, pool, false)? else {
        return Ok(vec![]);
    };
    let Some(mut p) = file.load()? else {
        return Ok(vec![]);
    };
    let (kept, gone): (Vec<Owner6>, Vec<Owner6>) = p.owners.drain(..).partition(|o| keep(o));
    p.owners = kept;
    if !gone.is_empty() {
        file.save(&p)?;
    }
    Ok(gone.iter().map(|o| p.subnet.host(o.offset)).collect())
}

/// The pool as stored (None: no state).
pub fn load(data_dir: &Path, pool: &str) -> Result<Option<Pool6>> {
    match File6::lock(data_dir, pool, false)? {
        Some(f) => f.load(),
        None => Ok(None),
    }
}

/// The state file of a pool, locked.
struct File6 {
    _lock: atomicfile::Lock,
    path: PathBuf,
}

impl File6 {
    fn lock(data_dir: &Path, pool: &str, create: bool) -> Result<Option<File6>> {
        store::check_pool_name(pool)?;
        if create {
            atomicfile::private_dir(data_dir).map_err(|err| store::Error::DataDir {
                path: data_dir.into(),
                err,
            })?;
        } else if !data_dir.join(pool).exists() {
            return Ok(None);
        }
        let lock_path = data_dir.join(format!(".{pool}.lock"));
        let lock = atomicfile::lock(&lock_path).map_err(|err| store::Error::Lock {
            path: lock_path,
            err,
        })?;
        Ok(Some(File6 {
            _lock: lock,
            path: data_dir.join(pool),
        }))
    }

    fn load(&self) -> Result<Option<Pool6>> {
        let b = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(store::Error::Read {
                    path: self.path.clone(),
                    err,
                }
                .into())
            }
        };
        Pool6::decode(&b).map(Some).map_err(|why| {
            store::Error::Corrupt {
                path: self.path.clone(),
                why,
            }
            .into()
        })
    }

    fn save(&self, p: &Pool6) -> Result<()> {
        let b = p.encode();
        atomicfile::write_with(&self.path, |f| f.write_all(&b)).map_err(|err| {
            store::Error::Write {
                path: self.path.clone(),
                err,
            }
            .into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(dir: &Path, id: &str) -> Request6 {
        Request6 {
            data_dir: dir.into(),
            network: "n".into(),
            pool: "n+fd00::_64".into(),
            subnet: Subnet6::parse("fd00::/64").unwrap(),
            gateway: None,
            range_start: None,
            range_end: None,
            id: id.into(),
            ifname: "eth0".into(),
            ip: None,
        }
    }

    #[test]
    fn subnets_parse_and_overlap() {
        let s = Subnet6::parse("fd00:1::5/64").unwrap();
        assert_eq!(s.to_string(), "fd00:1::/64");
        assert_eq!(s.last(), u64::MAX as u128);
        assert!(s.overlaps(&Subnet6::parse("fd00::/16").unwrap()));
        assert!(!s.overlaps(&Subnet6::parse("fd00:2::/64").unwrap()));
        assert!(Subnet6::parse("10.0.0.0/8").is_none());
        assert!(Subnet6::parse("fd00::/129").is_none());
    }

    #[test]
    fn next_fit_skips_taken_and_the_file_stays_small() {
        let d = std::env::temp_dir().join(format!("ipam-v6-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let a = allocate(&req(&d, "a")).unwrap();
        assert_eq!(a.ip, "fd00::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(a.gateway, Some("fd00::1".parse().unwrap()));
        // Requested ahead of the cursor: the next allocation skips it.
        let mut r = req(&d, "b");
        r.ip = Some("fd00::3".parse().unwrap());
        allocate(&r).unwrap();
        assert!(matches!(allocate(&r.clone()), Ok(x) if x.ip == r.ip.unwrap()));
        let mut taken = req(&d, "x");
        taken.ip = r.ip;
        assert!(matches!(allocate(&taken), Err(Error::Taken { .. })));
        let c = allocate(&req(&d, "c")).unwrap();
        assert_eq!(c.ip, "fd00::4".parse::<Ipv6Addr>().unwrap());
        // Retried ADD: same address.
        assert_eq!(allocate(&req(&d, "c")).unwrap(), c);
        // Released addresses are not reused before the cursor wraps.
        assert_eq!(release(&d, "n+fd00::_64", "a", "eth0").unwrap(), vec![a.ip]);
        assert_eq!(
            allocate(&req(&d, "e")).unwrap().ip,
            "fd00::5".parse::<Ipv6Addr>().unwrap()
        );
        let size = std::fs::metadata(d.join("n+fd00::_64")).unwrap().len();
        assert!(size < 400, "{size} bytes for 3 owners of a /64");
        // A tiny range exhausts.
        let mut small = req(&d, "s");
        small.pool = "n+fd01::_126".into();
        small.subnet = Subnet6::parse("fd01::/126").unwrap();
        allocate(&small).unwrap();
        small.id = "s2".into();
        allocate(&small).unwrap();
        small.id = "s3".into();
        assert!(matches!(allocate(&small), Err(Error::Exhausted { .. })));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
