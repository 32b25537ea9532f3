//! Allocate, release, look up and list, each one read-modify-write of the
//! network's state file under its lock. The CNI plugin and the human
//! subcommands both call these.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bitmap::{self, host, offset, Pool, Range, Subnet};
use crate::store::{self, Locked};
use crate::update;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("network {network}: {err}")]
    Pool { network: String, err: bitmap::Error },
    #[error("gateway {gateway} is not a host address of {subnet}")]
    Gateway { gateway: Ipv4Addr, subnet: String },
    #[error("network {network} already has subnet {stored} in {path}, not {asked}")]
    SubnetChanged {
        network: String,
        stored: String,
        asked: String,
        path: PathBuf,
    },
    #[error("network {network} has no state under {data_dir}")]
    NotFound { network: String, data_dir: PathBuf },
}

pub type Result<T> = std::result::Result<T, Error>;

/// CNI error codes (spec codes 1-7, ours from 100), also documented in lib.rs.
pub mod code {
    pub use cni_plugin::code::*;
    pub const ADDRESS_UNAVAILABLE: u32 = 100;
    pub const EXHAUSTED: u32 = 101;
    pub const CORRUPT_STATE: u32 = 102;
}

impl Error {
    pub fn cni_code(&self) -> u32 {
        match self {
            Error::Store(store::Error::Corrupt { .. }) => code::CORRUPT_STATE,
            Error::Store(store::Error::Name { .. } | store::Error::Owner { .. }) => {
                code::INVALID_CONFIG
            }
            Error::Store(_) => code::IO,
            Error::Pool { err, .. } => match err {
                bitmap::Error::Exhausted { .. } => code::EXHAUSTED,
                bitmap::Error::Taken { .. }
                | bitmap::Error::Reserved { .. }
                | bitmap::Error::OutOfRange { .. } => code::ADDRESS_UNAVAILABLE,
                bitmap::Error::Prefix { .. } | bitmap::Error::BadRange { .. } => {
                    code::INVALID_CONFIG
                }
            },
            Error::Gateway { .. } | Error::SubnetChanged { .. } => code::INVALID_CONFIG,
            Error::NotFound { .. } => code::UNKNOWN_CONTAINER,
        }
    }

    /// Bad input (exit 2) as opposed to a failed operation (exit 1).
    pub fn is_usage(&self) -> bool {
        self.cni_code() == code::INVALID_CONFIG
    }
}

/// One allocation request, fully parsed.
#[derive(Debug, Clone)]
pub struct Request {
    pub data_dir: PathBuf,
    pub network: String,
    pub subnet: Subnet,
    pub gateway: Option<Ipv4Addr>,
    pub range_start: Option<Ipv4Addr>,
    pub range_end: Option<Ipv4Addr>,
    pub id: String,
    pub ifname: String,
    pub ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Allocated {
    pub network: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// `ip/prefix`, the CNI form.
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    pub id: String,
    pub ifname: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub ip: Ipv4Addr,
    pub id: String,
    pub ifname: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub network: String,
    pub subnet: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    pub allocations: Vec<Entry>,
}

fn gateway_offset(subnet: Subnet, gw: Option<Ipv4Addr>) -> Result<u32> {
    // host-local's default: the first host of the subnet.
    let gw = gw.unwrap_or_else(|| host(subnet, 1));
    match offset(subnet, gw) {
        Some(o) if o != 0 && o < subnet.size() - 1 => Ok(o),
        _ => Err(Error::Gateway {
            gateway: gw,
            subnet: subnet.to_string(),
        }),
    }
}

fn allocated(pool: &Pool, req: &Request, off: u32) -> Allocated {
    let ip = host(pool.subnet, off);
    Allocated {
        network: req.network.clone(),
        ip,
        prefix: pool.subnet.prefix(),
        address: format!("{ip}/{}", pool.subnet.prefix()),
        gateway: (pool.gateway != 0).then(|| host(pool.subnet, pool.gateway)),
        id: req.id.clone(),
        ifname: req.ifname.clone(),
    }
}

/// Validates the request, then allocates under the network's lock.
pub fn allocate(req: &Request) -> Result<Allocated> {
    let perr = |err| Error::Pool {
        network: req.network.clone(),
        err,
    };
    store::check_pool_name(&req.network)?;
    crate::owners::check_owner(&req.id, &req.ifname)
        .map_err(|why| Error::Store(store::Error::Owner { why }))?;
    // Before any size arithmetic: a /0 has 2^32 addresses, more than a u32.
    bitmap::check_prefix(req.subnet).map_err(perr)?;
    let gw = gateway_offset(req.subnet, req.gateway)?;
    let range = Range::new(req.subnet, req.range_start, req.range_end).map_err(perr)?;
    let requested = match req.ip {
        Some(ip) => Some(offset(req.subnet, ip).ok_or_else(|| {
            perr(bitmap::Error::OutOfRange {
                ip,
                range: range.display(req.subnet),
            })
        })?),
        None => None,
    };
    Pool::new(req.subnet, gw).map_err(perr)?;
    let lock = Locked::acquire(&req.data_dir, &req.network, true)?.expect("created");
    let changed = |stored: Subnet| Error::SubnetChanged {
        network: req.network.clone(),
        stored: stored.to_string(),
        asked: req.subnet.to_string(),
        path: lock.path().into(),
    };
    // The hot path: a few bytes written in place (see crate::update).
    if let Some(mut up) = update::open(&lock, &req.id, &req.ifname, requested)? {
        if up.pool.subnet != req.subnet {
            return Err(changed(up.pool.subnet));
        }
        up.pool.gateway = gw;
        let before = up.pool.owners.raw().len();
        let off = up
            .pool
            .allocate(&req.network, range, &req.id, &req.ifname, requested)
            .map_err(perr)?;
        if up.pool.owners.raw().len() > before {
            let rec = up.pool.owners.raw()[before..].to_vec();
            up.append(&rec, off)?;
        }
        return Ok(allocated(&up.pool, req, off));
    }
    // No state yet, or a file to repair: load, allocate, save it whole.
    let mut pool = match lock.load()? {
        Some(p) if p.subnet != req.subnet => return Err(changed(p.subnet)),
        Some(p) => p,
        None => Pool::new(req.subnet, gw).map_err(perr)?,
    };
    pool.gateway = gw;
    let off = pool
        .allocate(&req.network, range, &req.id, &req.ifname, requested)
        .map_err(perr)?;
    lock.save(&pool)?;
    Ok(allocated(&pool, req, off))
}

/// Releases what `id`/`ifname` holds; nothing held (or no state) is success.
pub fn release(data_dir: &Path, network: &str, id: &str, ifname: &str) -> Result<Vec<Ipv4Addr>> {
    let Some(lock) = Locked::acquire(data_dir, network, false)? else {
        return Ok(vec![]);
    };
    if let Some(mut up) = update::open(&lock, id, ifname, None)? {
        let freed = up.release()?;
        if up.wants_compaction() {
            if let Some(pool) = lock.load()? {
                lock.save(&pool)?;
            }
        }
        return Ok(freed.into_iter().map(|o| host(up.pool.subnet, o)).collect());
    }
    let Some(mut pool) = lock.load()? else {
        return Ok(vec![]);
    };
    let freed = pool.release(id, ifname);
    if !freed.is_empty() {
        lock.save(&pool)?;
    }
    Ok(freed.into_iter().map(|o| host(pool.subnet, o)).collect())
}

/// The address `id`/`ifname` holds, as `(ip, prefix)`.
pub fn held(
    data_dir: &Path,
    network: &str,
    id: &str,
    ifname: &str,
) -> Result<Option<(Ipv4Addr, u8)>> {
    let Some(lock) = Locked::acquire(data_dir, network, false)? else {
        return Ok(None);
    };
    Ok(lock.load()?.and_then(|p| {
        p.find(id, ifname)
            .map(|o| (host(p.subnet, o), p.subnet.prefix()))
    }))
}

/// Everything allocated in `network`.
pub fn list(data_dir: &Path, network: &str) -> Result<Listing> {
    let not_found = || Error::NotFound {
        network: network.into(),
        data_dir: data_dir.into(),
    };
    let lock = Locked::acquire(data_dir, network, false)?.ok_or_else(not_found)?;
    let pool = lock.load()?.ok_or_else(not_found)?;
    Ok(Listing {
        network: network.into(),
        subnet: pool.subnet.to_string(),
        gateway: (pool.gateway != 0).then(|| host(pool.subnet, pool.gateway)),
        allocations: pool
            .owners
            .list()
            .into_iter()
            .map(|o| Entry {
                ip: host(pool.subnet, o.offset),
                id: o.id,
                ifname: o.ifname,
            })
            .collect(),
    })
}

/// Removes the network's state (used when the network is deleted).
pub fn remove(data_dir: &Path, network: &str) -> Result<()> {
    if let Some(lock) = Locked::acquire(data_dir, network, false)? {
        lock.remove()?;
    } else {
        store::check_pool_name(network)?;
        let _ = std::fs::remove_file(data_dir.join(format!(".{network}.lock")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_too_short_or_long_is_refused_before_anything() {
        for cidr in ["0.0.0.0/0", "10.0.0.0/7", "10.0.0.0/31"] {
            let data_dir = std::env::temp_dir().join(format!("ipam-prefix-{}", std::process::id()));
            let req = Request {
                data_dir: data_dir.clone(),
                network: "n".into(),
                subnet: bitmap::parse_subnet(cidr).unwrap(),
                gateway: None,
                range_start: None,
                range_end: None,
                id: "c".into(),
                ifname: "eth0".into(),
                ip: None,
            };
            let e = allocate(&req).unwrap_err();
            assert!(e.to_string().contains("prefix must be"), "{cidr}: {e}");
            assert!(e.is_usage(), "{cidr}");
            assert!(!data_dir.exists(), "{cidr}: nothing written");
        }
    }
}
