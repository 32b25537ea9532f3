//! A network's address pools: the range sets of a CNI config (one address
//! per set, each set of one family, its ranges tried in order), each range's
//! subnet one pool file. The network's first IPv4 subnet keeps the file
//! named after the network (the layout of a single-subnet network); every
//! other subnet, IPv4 or IPv6, is `<network>+<cidr>` ([`store::pool_name`]).
//! Releasing, listing and garbage collection walk every pool file of the
//! network, so they need no config (a DEL after the config changed still
//! releases everything).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::allocation::{self, code, Request};
use crate::bitmap::{self, Subnet};
use crate::store;
use crate::v6::{self, Request6, Subnet6};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    V4(#[from] allocation::Error),
    #[error(transparent)]
    V6(#[from] v6::Error),
    #[error("{0}")]
    Config(String),
    #[error("requested address {0} is in no range of the network")]
    NoRange(IpAddr),
    #[error("list {path}: {err}")]
    List { path: PathBuf, err: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn cni_code(&self) -> u32 {
        match self {
            Error::V4(e) => e.cni_code(),
            Error::V6(e) => match e {
                v6::Error::Store(store::Error::Corrupt { .. }) => code::CORRUPT_STATE,
                v6::Error::Store(store::Error::Name { .. }) => code::INVALID_CONFIG,
                v6::Error::Store(_) => code::IO,
                v6::Error::Exhausted { .. } => code::EXHAUSTED,
                v6::Error::Taken { .. }
                | v6::Error::Reserved { .. }
                | v6::Error::OutOfRange { .. } => code::ADDRESS_UNAVAILABLE,
                v6::Error::Prefix { .. }
                | v6::Error::Outside { .. }
                | v6::Error::BadRange { .. }
                | v6::Error::SubnetChanged { .. } => code::INVALID_CONFIG,
            },
            Error::Config(_) => code::INVALID_CONFIG,
            Error::NoRange(_) => code::ADDRESS_UNAVAILABLE,
            Error::List { .. } => code::IO,
        }
    }
    fn exhausted(&self) -> bool {
        self.cni_code() == code::EXHAUSTED
    }
}

/// One range, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Range {
    V4 {
        subnet: Subnet,
        start: Option<Ipv4Addr>,
        end: Option<Ipv4Addr>,
        gateway: Option<Ipv4Addr>,
    },
    V6 {
        subnet: Subnet6,
        start: Option<Ipv6Addr>,
        end: Option<Ipv6Addr>,
        gateway: Option<Ipv6Addr>,
    },
}

impl Range {
    /// From the config's strings; `field` names it in errors.
    pub fn parse(
        field: &str,
        subnet: &str,
        start: Option<&str>,
        end: Option<&str>,
        gateway: Option<&str>,
    ) -> Result<Range> {
        let bad =
            |what: &str, v: &str| Error::Config(format!("{field}.{what}: {v:?} is not valid"));
        fn ip<T: std::str::FromStr>(
            v: Option<&str>,
            what: &str,
            bad: &dyn Fn(&str, &str) -> Error,
        ) -> Result<Option<T>> {
            match v.filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => s.parse().map(Some).map_err(|_| bad(what, s)),
            }
        }
        if let Some(s) = bitmap::parse_subnet(subnet) {
            return Ok(Range::V4 {
                subnet: s,
                start: ip(start, "rangeStart", &bad)?,
                end: ip(end, "rangeEnd", &bad)?,
                gateway: ip(gateway, "gateway", &bad)?,
            });
        }
        if let Some(s) = Subnet6::parse(subnet) {
            return Ok(Range::V6 {
                subnet: s,
                start: ip(start, "rangeStart", &bad)?,
                end: ip(end, "rangeEnd", &bad)?,
                gateway: ip(gateway, "gateway", &bad)?,
            });
        }
        Err(bad("subnet", subnet))
    }
    pub fn is_v6(&self) -> bool {
        matches!(self, Range::V6 { .. })
    }
    pub fn cidr(&self) -> String {
        match self {
            Range::V4 { subnet, .. } => subnet.to_string(),
            Range::V6 { subnet, .. } => subnet.to_string(),
        }
    }
    fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Range::V4 { subnet, .. }, IpAddr::V4(ip)) => subnet.contains(ip),
            (Range::V6 { subnet, .. }, IpAddr::V6(ip)) => subnet.offset(ip).is_some(),
            _ => false,
        }
    }
}

/// The range sets of a network, validated: none empty, each of one family.
#[derive(Debug, Clone)]
pub struct Sets {
    pub network: String,
    pub data_dir: PathBuf,
    pub sets: Vec<Vec<Range>>,
}

/// One address handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    pub ip: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

impl Sets {
    pub fn new(network: &str, data_dir: PathBuf, sets: Vec<Vec<Range>>) -> Result<Sets> {
        store::check_name(network).map_err(|e| Error::Config(e.to_string()))?;
        if sets.is_empty() {
            return Err(Error::Config("ipam: no subnet or ranges".into()));
        }
        for (i, set) in sets.iter().enumerate() {
            let Some(first) = set.first() else {
                return Err(Error::Config(format!("ipam.ranges[{i}] is empty")));
            };
            if set.iter().any(|r| r.is_v6() != first.is_v6()) {
                return Err(Error::Config(format!(
                    "ipam.ranges[{i}] mixes IPv4 and IPv6 ranges"
                )));
            }
        }
        Ok(Sets {
            network: network.into(),
            data_dir,
            sets,
        })
    }

    /// The pool file of a range's subnet.
    pub fn pool(&self, r: &Range) -> String {
        let first_v4 = self.sets.iter().flatten().find_map(|r| match r {
            Range::V4 { subnet, .. } => Some(*subnet),
            _ => None,
        });
        match r {
            Range::V4 { subnet, .. } if Some(*subnet) == first_v4 => self.network.clone(),
            _ => store::pool_name(&self.network, &r.cidr()),
        }
    }

    fn alloc_one(&self, r: &Range, id: &str, ifname: &str, ip: Option<IpAddr>) -> Result<Address> {
        let pool = self.pool(r);
        match r {
            Range::V4 {
                subnet,
                start,
                end,
                gateway,
            } => {
                let a = allocation::allocate(&Request {
                    data_dir: self.data_dir.clone(),
                    network: pool,
                    subnet: *subnet,
                    gateway: *gateway,
                    range_start: *start,
                    range_end: *end,
                    id: id.into(),
                    ifname: ifname.into(),
                    ip: match ip {
                        Some(IpAddr::V4(i)) => Some(i),
                        _ => None,
                    },
                })?;
                Ok(Address {
                    ip: a.ip.into(),
                    prefix: a.prefix,
                    gateway: a.gateway.map(IpAddr::V4),
                })
            }
            Range::V6 {
                subnet,
                start,
                end,
                gateway,
            } => {
                let a = v6::allocate(&Request6 {
                    data_dir: self.data_dir.clone(),
                    network: self.network.clone(),
                    pool,
                    subnet: *subnet,
                    gateway: *gateway,
                    range_start: *start,
                    range_end: *end,
                    id: id.into(),
                    ifname: ifname.into(),
                    ip: match ip {
                        Some(IpAddr::V6(i)) => Some(i),
                        _ => None,
                    },
                })?;
                Ok(Address {
                    ip: a.ip.into(),
                    prefix: a.prefix,
                    gateway: a.gateway.map(IpAddr::V6),
                })
            }
        }
    }

    /// One address per range set, honouring `requested` (each must fall in
    /// some range). On failure, what this call allocated is released.
    pub fn allocate(&self, id: &str, ifname: &str, requested: &[IpAddr]) -> Result<Vec<Address>> {
        for ip in requested {
            if !self.sets.iter().flatten().any(|r| r.contains(*ip)) {
                return Err(Error::NoRange(*ip));
            }
        }
        let mut out = Vec::new();
        let mut err = None;
        'sets: for set in &self.sets {
            let want = requested
                .iter()
                .copied()
                .find(|ip| set.iter().any(|r| r.contains(*ip)));
            let mut last = None;
            for r in set {
                if want.is_some_and(|ip| !r.contains(ip)) {
                    continue;
                }
                match self.alloc_one(r, id, ifname, want) {
                    Ok(a) => {
                        out.push(a);
                        continue 'sets;
                    }
                    // The next range of the set may have room.
                    Err(e) if e.exhausted() => last = Some(e),
                    Err(e) => {
                        err = Some(e);
                        break 'sets;
                    }
                }
            }
            err = last;
            if err.is_some() {
                break;
            }
        }
        match err {
            None => Ok(out),
            Some(e) => {
                let _ = release(&self.data_dir, &self.network, id, ifname);
                Err(e)
            }
        }
    }

    /// Whether `id`/`ifname` holds an address in every range set.
    pub fn held_in_all(&self, id: &str, ifname: &str) -> Result<bool> {
        for set in &self.sets {
            let mut any = false;
            for r in set {
                let pool = self.pool(r);
                any |= match r {
                    Range::V4 { .. } => {
                        allocation::held(&self.data_dir, &pool, id, ifname)?.is_some()
                    }
                    Range::V6 { .. } => v6::load(&self.data_dir, &pool)?
                        .is_some_and(|p| p.find(id, ifname).is_some()),
                };
            }
            if !any {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The pool files of `network` in `data_dir`.
pub fn pools_of(data_dir: &Path, network: &str) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(data_dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(err) => {
            return Err(Error::List {
                path: data_dir.into(),
                err,
            })
        }
    };
    let prefix = format!("{network}+");
    let mut out: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| (n == network || n.starts_with(&prefix)) && store::check_pool_name(n).is_ok())
        .collect();
    out.sort();
    Ok(out)
}

fn is_v6_pool(pool: &str) -> bool {
    pool.contains(':')
}

/// One owner in any pool of a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub ip: IpAddr,
    pub id: String,
    pub ifname: String,
}

/// Releases what `id`/`ifname` holds in every pool of `network`.
pub fn release(data_dir: &Path, network: &str, id: &str, ifname: &str) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for pool in pools_of(data_dir, network)? {
        if is_v6_pool(&pool) {
            out.extend(
                v6::release(data_dir, &pool, id, ifname)?
                    .into_iter()
                    .map(IpAddr::V6),
            );
        } else {
            out.extend(
                allocation::release(data_dir, &pool, id, ifname)?
                    .into_iter()
                    .map(IpAddr::V4),
            );
        }
    }
    Ok(out)
}

/// Every owner of every pool of `network`.
pub fn list(data_dir: &Path, network: &str) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for pool in pools_of(data_dir, network)? {
        if is_v6_pool(&pool) {
            if let Some(p) = v6::load(data_dir, &pool)? {
                out.extend(p.owners.iter().map(|o| Entry {
                    ip: p.subnet.host(o.offset).into(),
                    id: o.id.clone(),
                    ifname: o.ifname.clone(),
                }));
            }
        } else {
            match allocation::list(data_dir, &pool) {
                Ok(l) => out.extend(l.allocations.into_iter().map(|e| Entry {
                    ip: e.ip.into(),
                    id: e.id,
                    ifname: e.ifname,
                })),
                Err(allocation::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

/// CNI GC: releases every owner not in `valid` (container id, ifname).
/// Returns what was released.
pub fn gc(data_dir: &Path, network: &str, valid: &[(String, String)]) -> Result<Vec<Entry>> {
    let stale: Vec<Entry> = list(data_dir, network)?
        .into_iter()
        .filter(|e| {
            !valid
                .iter()
                .any(|(id, ifn)| *id == e.id && *ifn == e.ifname)
        })
        .collect();
    for e in &stale {
        release(data_dir, network, &e.id, &e.ifname)?;
    }
    Ok(stale)
}

/// Removes every pool file of the network (the network is gone).
pub fn remove(data_dir: &Path, network: &str) -> Result<()> {
    store::check_name(network).map_err(|e| Error::Config(e.to_string()))?;
    for pool in pools_of(data_dir, network)? {
        if is_v6_pool(&pool) {
            for p in [pool.clone(), format!(".{pool}.lock")] {
                let _ = std::fs::remove_file(data_dir.join(p));
            }
        } else {
            allocation::remove(data_dir, &pool)?;
        }
    }
    allocation::remove(data_dir, network)?;
    Ok(())
}
