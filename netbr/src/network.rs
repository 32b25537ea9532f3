//! Named networks for humans and for mydocker: `<root>/networks/<name>.json`,
//! a CNI conflist whose single plugin is netbr with ipam. connect/disconnect
//! run the same ADD/DEL code as the CNI plugin with that config.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipam::bitmap::{self, host, offset, parse_subnet};
use ipam::v6::Subnet6;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::iptables;
use crate::marks;
use crate::netlink::{self, Netlink};
use crate::plugin::{self, Netbr, PortMapping};
use cni_plugin::Env;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}")]
    Usage { what: String },
    #[error("network {name} already exists ({path})")]
    Exists { name: String, path: PathBuf },
    #[error("subnet {subnet} overlaps network {other} ({other_subnet})")]
    Overlap {
        subnet: String,
        other: String,
        other_subnet: String,
    },
    #[error("network {name} not found in {dir}")]
    NotFound { name: String, dir: PathBuf },
    #[error("network {name} still has {n} connected endpoint(s); disconnect them first")]
    InUse { name: String, n: usize },
    #[error("{step} {path}: {err}")]
    Io {
        step: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("{path}: not a netbr conflist: {why}")]
    BadConf { path: PathBuf, why: String },
    #[error(transparent)]
    Ipam(#[from] ipam::allocation::Error),
    #[error(transparent)]
    Pools(#[from] ipam::pools::Error),
    #[error(transparent)]
    Netlink(#[from] netlink::Error),
    #[error(transparent)]
    Iptables(#[from] iptables::Error),
    #[error(transparent)]
    Plugin(#[from] plugin::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Bad input (exit 2) as opposed to a failed operation (exit 1).
    pub fn is_usage(&self) -> bool {
        match self {
            Error::Usage { .. } => true,
            Error::Plugin(p) => p.to_cni().exit_code() == 2,
            _ => false,
        }
    }
}

fn usage(what: impl Into<String>) -> Error {
    Error::Usage { what: what.into() }
}

fn dir(root: &Path) -> PathBuf {
    root.join("networks")
}

fn conf_path(root: &Path, name: &str) -> PathBuf {
    dir(root).join(format!("{name}.json"))
}

/// Default bridge of a network: `br-` + 12 hex of sha256(name) (15 chars).
pub fn default_bridge(name: &str) -> String {
    let h = Sha256::digest(name.as_bytes());
    let hex: String = h.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("br-{hex}")
}

/// The summary of a conflist we wrote.
#[derive(Debug, Clone)]
pub struct Info {
    pub name: String,
    /// The first subnet (IPv4 when there is one) and its gateway.
    pub subnet: String,
    pub gateway: Option<String>,
    /// Every subnet, and the gateway of each (in the same order).
    pub subnets: Vec<String>,
    pub gateways: Vec<Option<String>>,
    pub bridge: String,
    pub data_dir: PathBuf,
    pub conflist: Value,
}

impl Info {
    fn summary(&self) -> Value {
        json!({"name": self.name, "subnet": self.subnet, "gateway": self.gateway,
               "subnets": self.subnets, "gateways": self.gateways, "bridge": self.bridge})
    }
}

fn read(path: &Path) -> Result<Info> {
    let text = std::fs::read(path).map_err(|err| Error::Io {
        step: "read",
        path: path.into(),
        err,
    })?;
    let bad = |why: &str| Error::BadConf {
        path: path.into(),
        why: why.into(),
    };
    let v: Value = serde_json::from_slice(&text).map_err(|e| bad(&e.to_string()))?;
    let p = v
        .pointer("/plugins/0")
        .ok_or_else(|| bad("no plugins[0]"))?;
    let s = |ptr: &str| p.pointer(ptr).and_then(Value::as_str).map(String::from);
    // `subnet` (one range) and `ranges` (range sets), as ipam reads them.
    let mut ranges: Vec<(String, Option<String>)> = Vec::new();
    if let Some(sub) = s("/ipam/subnet") {
        ranges.push((sub, s("/ipam/gateway")));
    }
    for r in p
        .pointer("/ipam/ranges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
    {
        if let Some(sub) = r["subnet"].as_str() {
            ranges.push((sub.into(), r["gateway"].as_str().map(String::from)));
        }
    }
    let first = ranges
        .iter()
        .find(|r| !r.0.contains(':'))
        .or(ranges.first())
        .cloned()
        .ok_or_else(|| bad("no ipam.subnet or ipam.ranges"))?;
    Ok(Info {
        name: v["name"].as_str().ok_or_else(|| bad("no name"))?.into(),
        subnet: first.0,
        gateway: first.1,
        subnets: ranges.iter().map(|r| r.0.clone()).collect(),
        gateways: ranges.iter().map(|r| r.1.clone()).collect(),
        bridge: s("/bridge").unwrap_or_else(|| plugin::DEFAULT_BRIDGE.into()),
        data_dir: s("/ipam/dataDir")
            .map(PathBuf::from)
            .unwrap_or_else(ipam::cni::default_data_dir),
        conflist: v,
    })
}

fn all(root: &Path) -> Result<Vec<Info>> {
    let d = dir(root);
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(err) => {
            return Err(Error::Io {
                step: "list",
                path: d,
                err,
            })
        }
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            out.push(read(&p)?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// flock on `<root>/networks/.lock` so create/rm never race.
fn lock(root: &Path) -> Result<atomicfile::Lock> {
    let d = dir(root);
    atomicfile::private_dir(&d).map_err(|err| Error::Io {
        step: "create",
        path: d.clone(),
        err,
    })?;
    let path = d.join(".lock");
    atomicfile::lock(&path).map_err(|err| Error::Io {
        step: "lock",
        path,
        err,
    })
}

/// One subnet of a network being created, checked.
enum NewSubnet {
    V4(bitmap::Subnet, Ipv4Addr),
    V6(Subnet6, Ipv6Addr),
}

impl NewSubnet {
    fn cidr(&self) -> String {
        match self {
            NewSubnet::V4(s, _) => s.to_string(),
            NewSubnet::V6(s, _) => s.to_string(),
        }
    }
    fn gateway(&self) -> String {
        match self {
            NewSubnet::V4(_, g) => g.to_string(),
            NewSubnet::V6(_, g) => g.to_string(),
        }
    }
    fn overlaps(&self, other: &str) -> bool {
        match self {
            NewSubnet::V4(s, _) => parse_subnet(other).is_some_and(|o| o.overlaps(*s)),
            NewSubnet::V6(s, _) => Subnet6::parse(other).is_some_and(|o| o.overlaps(s)),
        }
    }
}

/// Checks `--subnet`s (one IPv4 at most, one IPv6 at most) and their
/// `--gateway`s (matched by family).
fn new_subnets(subnets: &[String], gateways: &[IpAddr]) -> Result<Vec<NewSubnet>> {
    if subnets.is_empty() {
        return Err(usage("--subnet is required"));
    }
    let mut out: Vec<NewSubnet> = Vec::new();
    for subnet in subnets {
        let n = if let Some(sub) = parse_subnet(subnet) {
            if bitmap::check_prefix(sub).is_err() {
                return Err(usage(format!(
                    "--subnet {subnet}: prefix must be /8 to /30"
                )));
            }
            let gw = gateways
                .iter()
                .find_map(|g| match g {
                    IpAddr::V4(g) => Some(*g),
                    _ => None,
                })
                .unwrap_or_else(|| host(sub, 1));
            match offset(sub, gw) {
                Some(o) if o != 0 && o != sub.size() - 1 => {}
                _ => {
                    return Err(usage(format!(
                        "--gateway {gw} is not a host address of {sub}"
                    )))
                }
            }
            NewSubnet::V4(sub, gw)
        } else if let Some(sub) = Subnet6::parse(subnet) {
            if sub.check_prefix().is_err() {
                return Err(usage(format!(
                    "--subnet {subnet}: IPv6 prefix must be /{} to /{}",
                    ipam::v6::MIN_PREFIX,
                    ipam::v6::MAX_PREFIX
                )));
            }
            let gw = gateways
                .iter()
                .find_map(|g| match g {
                    IpAddr::V6(g) => Some(*g),
                    _ => None,
                })
                .unwrap_or_else(|| sub.host(1));
            match sub.offset(gw) {
                Some(o) if o != 0 => {}
                _ => {
                    return Err(usage(format!(
                        "--gateway {gw} is not a host address of {sub}"
                    )))
                }
            }
            NewSubnet::V6(sub, gw)
        } else {
            return Err(usage(format!("--subnet {subnet:?} is not a CIDR")));
        };
        let same = out
            .iter()
            .any(|o| matches!(o, NewSubnet::V4(..)) == matches!(n, NewSubnet::V4(..)));
        if same {
            return Err(usage(format!(
                "--subnet {subnet}: one subnet per address family"
            )));
        }
        out.push(n);
    }
    // IPv4 first: its pool keeps the network's own file name.
    out.sort_by_key(|n| matches!(n, NewSubnet::V6(..)));
    Ok(out)
}

/// Writes a new network's conflist. The bridge appears on the first connect.
pub fn create(
    root: &Path,
    name: &str,
    subnets: &[String],
    gateways: &[IpAddr],
    bridge: Option<String>,
) -> Result<Value> {
    ipam::store::check_name(name).map_err(|e| usage(e.to_string()))?;
    let subs = new_subnets(subnets, gateways)?;
    let bridge = bridge.unwrap_or_else(|| default_bridge(name));
    if !plugin::valid_ifname(&bridge) {
        return Err(usage(format!(
            "--bridge {bridge:?} is not a valid interface name (1-15 chars)"
        )));
    }
    let _l = lock(root)?;
    let path = conf_path(root, name);
    for other in all(root)? {
        if other.name == name {
            return Err(Error::Exists {
                name: name.into(),
                path,
            });
        }
        for os in &other.subnets {
            if let Some(s) = subs.iter().find(|s| s.overlaps(os)) {
                return Err(Error::Overlap {
                    subnet: s.cidr(),
                    other: other.name,
                    other_subnet: os.clone(),
                });
            }
        }
        if other.bridge == bridge {
            return Err(usage(format!(
                "bridge {bridge} is already used by network {}",
                other.name
            )));
        }
    }
    // One IPv4 subnet keeps the single-range shape; IPv6 makes range sets.
    let ipam = match subs.as_slice() {
        [NewSubnet::V4(..)] => json!({
            "type": "ipam",
            "subnet": subs[0].cidr(),
            "gateway": subs[0].gateway(),
            "dataDir": root.join("ipam"),
        }),
        _ => json!({
            "type": "ipam",
            "ranges": subs.iter().map(|s| json!([{"subnet": s.cidr(), "gateway": s.gateway()}])).collect::<Vec<_>>(),
            "dataDir": root.join("ipam"),
        }),
    };
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [{
            "type": "netbr",
            "bridge": bridge,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": ipam,
            "capabilities": {"portMappings": true, "ips": true},
        }],
    });
    let text = serde_json::to_string_pretty(&conf).expect("json");
    atomicfile::write(&path, text.as_bytes()).map_err(|err| Error::Io {
        step: "write",
        path: path.clone(),
        err,
    })?;
    Ok(read(&path)?.summary())
}

fn get(root: &Path, name: &str) -> Result<Info> {
    ipam::store::check_name(name).map_err(|e| usage(e.to_string()))?;
    let path = conf_path(root, name);
    if !path.exists() {
        return Err(Error::NotFound {
            name: name.into(),
            dir: dir(root),
        });
    }
    read(&path)
}

fn allocations(info: &Info) -> Result<Vec<ipam::pools::Entry>> {
    Ok(ipam::pools::list(&info.data_dir, &info.name)?)
}

/// Deletes the network: rules, bridge, ipam state, conflist. Gone already is
/// success. Refused while addresses are allocated, unless `force`.
pub fn rm(root: &Path, name: &str, force: bool) -> Result<Value> {
    ipam::store::check_name(name).map_err(|e| usage(e.to_string()))?;
    let _l = lock(root)?;
    let path = conf_path(root, name);
    if !path.exists() {
        // A network used through raw CNI configs: its rules, found by the
        // bridge aliases naming it (crate::marks), are all there is to remove.
        let mut nl = Netlink::open()?;
        let mut removed = false;
        for l in nl.links()? {
            let Some((net, subnet)) = l.alias.as_deref().and_then(marks::parse_net) else {
                continue;
            };
            if net == name {
                let subnets: Vec<String> = subnet.split(',').map(String::from).collect();
                removed |= iptables::del_network(name, &l.name, &subnets)?;
                nl.set_alias(l.index, "")?;
            }
        }
        return Ok(json!({"name": name, "removed": removed}));
    }
    let info = read(&path)?;
    let n = allocations(&info)?.len();
    if n > 0 && !force {
        return Err(Error::InUse {
            name: name.into(),
            n,
        });
    }
    iptables::del_network(name, &info.bridge, &info.subnets)?;
    Netlink::open()?.del_link(&info.bridge)?;
    ipam::pools::remove(&info.data_dir, name)?;
    std::fs::remove_file(&path).map_err(|err| Error::Io {
        step: "remove",
        path,
        err,
    })?;
    Ok(json!({"name": name, "removed": true}))
}

pub fn ls(root: &Path) -> Result<Value> {
    Ok(Value::Array(all(root)?.iter().map(Info::summary).collect()))
}

pub fn inspect(root: &Path, name: &str) -> Result<Value> {
    let info = get(root, name)?;
    let mut v = info.summary();
    v["allocations"] = serde_json::to_value(allocations(&info)?).expect("json");
    v["config"] = info.conflist.clone();
    Ok(v)
}

/// The single plugin's config as a CNI runtime would pass it.
fn plugin_conf(info: &Info, maps: &[PortMapping]) -> Vec<u8> {
    let mut p = info.conflist["plugins"][0].clone();
    p["cniVersion"] = info.conflist["cniVersion"].clone();
    p["name"] = json!(info.name);
    if !maps.is_empty() {
        p["runtimeConfig"] = json!({"portMappings": maps});
    }
    serde_json::to_vec(&p).expect("json")
}

fn env_for(command: &str, id: &str, netns: &Path, ifname: &str, ips: &[IpAddr]) -> Env {
    let ips: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
    Env {
        command: command.into(),
        container_id: Some(id.into()),
        netns: Some(netns.into()),
        ifname: Some(ifname.into()),
        args: (!ips.is_empty()).then(|| format!("IP={}", ips.join(","))),
        path: std::env::var("CNI_PATH").ok().filter(|p| !p.is_empty()),
    }
}

/// CNI ADD of `id` (namespace file `netns`) to the network; prints the CNI result.
#[allow(clippy::too_many_arguments)]
pub fn connect(
    root: &Path,
    name: &str,
    id: &str,
    netns: &Path,
    ifname: &str,
    ips: &[IpAddr],
    mac: Option<&str>,
    publish: Option<&str>,
) -> Result<Value> {
    let maps: Vec<PortMapping> = match publish {
        Some(p) => serde_json::from_str(p).map_err(|e| {
            usage(format!(
                "--publish: expected a JSON array of port mappings: {e}"
            ))
        })?,
        None => vec![],
    };
    let info = get(root, name)?;
    let mut env = env_for("ADD", id, netns, ifname, ips);
    if let Some(m) = mac {
        let mac = format!("MAC={m}");
        env.args = Some(match env.args {
            Some(a) => format!("{a};{mac}"),
            None => mac,
        });
    }
    let res = cni_plugin::dispatch(&Netbr, &env, &plugin_conf(&info, &maps))?;
    Ok(res.unwrap_or(Value::Null))
}

/// CNI DEL of `id` from the network; gone already is success.
pub fn disconnect(root: &Path, name: &str, id: &str, netns: &Path, ifname: &str) -> Result<Value> {
    let info = get(root, name)?;
    let env = env_for("DEL", id, netns, ifname, &[]);
    cni_plugin::dispatch(&Netbr, &env, &plugin_conf(&info, &[]))?;
    Ok(json!({"name": name, "id": id, "disconnected": true}))
}
