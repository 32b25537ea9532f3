//! The CNI main plugin: ADD, DEL, CHECK, VERSION for `"type": "netbr"`.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cni_plugin::{CniError, CniResult, Env, Interface, Plugin};
use ipam::cni::IpamConf;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::iptables::{self, Fam, Mapping, Net};
use crate::linkdel;
use crate::marks;
use crate::netlink::{self, Netlink};
use crate::netns;

pub const DEFAULT_BRIDGE: &str = "mydocker0";

/// CNI error codes of netbr beyond the spec's 1-7 (ipam's own codes,
/// 100-102, are passed through unchanged).
pub mod code {
    pub use cni_plugin::code::*;
    pub const NETLINK: u32 = 110;
    pub const IPTABLES: u32 = 111;
    pub const IPAM_EXEC: u32 = 112;
    pub const CHECK_FAILED: u32 = 113;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Cni(CniError),
    #[error(transparent)]
    Netlink(#[from] netlink::Error),
    #[error(transparent)]
    Netns(#[from] netns::Error),
    #[error(transparent)]
    Iptables(#[from] iptables::Error),
    #[error("ipam plugin {path}: {err}")]
    IpamExec { path: PathBuf, err: std::io::Error },
    #[error("ipam plugin {kind:?} not found in CNI_PATH {search}")]
    IpamNotFound { kind: String, search: String },
    #[error("sysctl {path}: {err}")]
    Sysctl { path: PathBuf, err: std::io::Error },
    #[error("check: {0}")]
    Check(String),
    #[error("lock {path}: {err}")]
    Lock { path: PathBuf, err: std::io::Error },
    #[error(transparent)]
    Pools(#[from] ipam::pools::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn to_cni(&self) -> CniError {
        match self {
            Error::Cni(e) => e.clone(),
            Error::Netlink(_) => CniError::new(code::NETLINK, self.to_string(), ""),
            Error::Netns(_) | Error::Sysctl { .. } | Error::Lock { .. } | Error::Pools(_) => {
                CniError::new(code::IO, self.to_string(), "")
            }
            Error::Iptables(_) => CniError::new(code::IPTABLES, self.to_string(), ""),
            Error::IpamExec { .. } | Error::IpamNotFound { .. } => {
                CniError::new(code::IPAM_EXEC, self.to_string(), "")
            }
            Error::Check(_) => CniError::new(code::CHECK_FAILED, self.to_string(), ""),
        }
    }
}

impl From<CniError> for Error {
    fn from(e: CniError) -> Error {
        Error::Cni(e)
    }
}

impl From<Error> for CniError {
    fn from(e: Error) -> CniError {
        e.to_cni()
    }
}

fn bad(code: u32, msg: impl Into<String>) -> Error {
    Error::Cni(CniError::new(code, msg, ""))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u32,
    pub container_port: u32,
    #[serde(default)]
    pub protocol: String,
    #[serde(default, rename = "hostIP")]
    pub host_ip: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// The `mac` capability.
    #[serde(default)]
    pub mac: Option<String>,
}

/// `aa:bb:cc:dd:ee:ff`, unicast, as bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| {
            (p.len() == 2)
                .then(|| u8::from_str_radix(p, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    let m: [u8; 6] = v.try_into().ok()?;
    (m[0] & 1 == 0).then_some(m)
}

/// The plugin's network config (unknown fields tolerated).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    #[serde(default)]
    pub cni_version: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub bridge: Option<String>,
    #[serde(default)]
    pub is_gateway: Option<bool>,
    #[serde(default)]
    pub ip_masq: Option<bool>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub hairpin_mode: Option<bool>,
    #[serde(default)]
    pub ipam: Option<IpamConf>,
    #[serde(default)]
    pub runtime_config: Option<RuntimeConfig>,
    #[serde(default)]
    pub prev_result: Option<CniResult>,
}

/// Interface names: 1-15 bytes, no '/', whitespace or ':'.
pub fn valid_ifname(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n != "."
        && n != ".."
        && !n
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Host end of a container's veth: `veth` + 8 hex of sha256(id:ifname).
pub fn veth_name(id: &str, ifname: &str) -> String {
    let h = Sha256::digest(format!("{id}:{ifname}").as_bytes());
    format!("veth{:02x}{:02x}{:02x}{:02x}", h[0], h[1], h[2], h[3])
}

/// Everything ADD/DEL/CHECK needs, validated before any side effect.
#[derive(Debug)]
struct Call {
    version: String,
    name: String,
    bridge: String,
    is_gateway: bool,
    ip_masq: bool,
    mtu: Option<u32>,
    hairpin: bool,
    ipam_kind: String,
    /// Whether `netbr create` made this network (its conflist sits beside
    /// the ipam data dir): its rules then live until `netbr rm`, else they
    /// go with the network's last DEL.
    managed: bool,
    /// ipam's `dataDir` (its default when absent).
    data_dir: PathBuf,
    maps: Vec<Mapping>,
    /// The container interface's MAC (`runtimeConfig.mac` or CNI_ARGS `MAC=`).
    mac: Option<[u8; 6]>,
    id: String,
    ifname: String,
    netns: Option<PathBuf>,
    prev: Option<CniResult>,
}

fn parse(stdin: &[u8], env: &Env) -> Result<Call> {
    let cni_plugin::Config {
        version,
        name,
        conf,
    } = cni_plugin::decode_config::<Conf>(stdin)?;
    ipam::store::check_name(&name).map_err(|e| bad(code::INVALID_CONFIG, e.to_string()))?;
    let bridge = conf.bridge.clone().unwrap_or_else(|| DEFAULT_BRIDGE.into());
    if !valid_ifname(&bridge) {
        return Err(bad(
            code::INVALID_CONFIG,
            format!("bridge name {bridge:?} is not a valid interface name"),
        ));
    }
    if let Some(m) = conf.mtu {
        if !(68..=65535).contains(&m) {
            return Err(bad(
                code::INVALID_CONFIG,
                format!("mtu {m} is out of range 68-65535"),
            ));
        }
    }
    let ipam_kind = conf
        .ipam
        .as_ref()
        .map(|i| i.kind.clone())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad(code::INVALID_CONFIG, "network config has no ipam.type"))?;
    if ipam_kind.contains('/') {
        return Err(bad(
            code::INVALID_CONFIG,
            format!("ipam.type {ipam_kind:?} must be a plain name"),
        ));
    }
    let mut maps = Vec::new();
    for pm in conf
        .runtime_config
        .iter()
        .flat_map(|r| r.port_mappings.iter())
    {
        let proto = if pm.protocol.is_empty() {
            "tcp".to_string()
        } else {
            pm.protocol.to_lowercase()
        };
        if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
            return Err(bad(
                code::INVALID_CONFIG,
                format!(
                    "port mapping protocol {:?} is not tcp, udp or sctp",
                    pm.protocol
                ),
            ));
        }
        let port = |p: u32, what: &str| {
            u16::try_from(p).ok().filter(|p| *p != 0).ok_or_else(|| {
                bad(
                    code::INVALID_CONFIG,
                    format!("port mapping {what} {p} is out of range 1-65535"),
                )
            })
        };
        let host_ip = match pm.host_ip.trim_matches(|c| c == '[' || c == ']') {
            "" | "0.0.0.0" | "::" => None,
            s => Some(s.parse::<IpAddr>().map_err(|_| {
                bad(
                    code::INVALID_CONFIG,
                    format!("port mapping hostIP {s:?} is not an IP address"),
                )
            })?),
        };
        maps.push(Mapping {
            host_port: port(pm.host_port, "hostPort")?,
            container_port: port(pm.container_port, "containerPort")?,
            protocol: proto,
            host_ip,
        });
    }
    let id = env
        .container_id
        .clone()
        .ok_or_else(|| bad(code::INVALID_ENV, "CNI_CONTAINERID is not set"))?;
    if !valid_id(&id) {
        return Err(bad(
            code::INVALID_ENV,
            format!("CNI_CONTAINERID {id:?}: use letters, digits, '_', '.', '-'"),
        ));
    }
    let ifname = env
        .ifname
        .clone()
        .ok_or_else(|| bad(code::INVALID_ENV, "CNI_IFNAME is not set"))?;
    if !valid_ifname(&ifname) {
        return Err(bad(
            code::INVALID_ENV,
            format!("CNI_IFNAME {ifname:?} is not a valid interface name"),
        ));
    }
    let mac_str = conf
        .runtime_config
        .as_ref()
        .and_then(|r| r.mac.clone())
        .or(match &env.args {
            Some(a) => cni_plugin::parse_args(a)?.get("MAC").cloned(),
            None => None,
        });
    let mac = match mac_str {
        None => None,
        Some(m) => Some(parse_mac(&m).ok_or_else(|| {
            bad(
                code::INVALID_CONFIG,
                format!("mac {m:?} is not a unicast MAC address"),
            )
        })?),
    };
    let data_dir = conf
        .ipam
        .as_ref()
        .and_then(|i| i.data_dir.clone())
        .unwrap_or_else(ipam::cni::default_data_dir);
    let managed = data_dir
        .parent()
        .is_some_and(|root| root.join("networks").join(format!("{name}.json")).exists());
    Ok(Call {
        version,
        mac,
        managed,
        data_dir,
        name,
        bridge,
        is_gateway: conf.is_gateway.unwrap_or(true),
        ip_masq: conf.ip_masq.unwrap_or(false),
        mtu: conf.mtu,
        hairpin: conf.hairpin_mode.unwrap_or(false),
        ipam_kind,
        maps,
        id,
        ifname,
        netns: env.netns.clone(),
        prev: conf.prev_result,
    })
}

/// `<dir>/<kind>` for the first CNI_PATH dir holding it; without CNI_PATH,
/// the directory of this executable (where `ipam` is installed alongside).
fn find_plugin(kind: &str, path: Option<&str>) -> Result<PathBuf> {
    let dirs: Vec<PathBuf> = match path {
        Some(p) => std::env::split_paths(p).collect(),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
            .into_iter()
            .collect(),
    };
    dirs.iter()
        .map(|d| d.join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::IpamNotFound {
            kind: kind.into(),
            search: path.unwrap_or("(unset: next to netbr)").into(),
        })
}

/// A running IPAM plugin.
struct IpamRun {
    plugin: PathBuf,
    command: &'static str,
    child: std::process::Child,
}

/// Starts the IPAM plugin with the same config on stdin and the same env,
/// as the reference bridge plugin does.
fn spawn_ipam(call: &Call, env: &Env, command: &'static str, stdin: &[u8]) -> Result<IpamRun> {
    let plugin = find_plugin(&call.ipam_kind, env.path.as_deref())?;
    let mut cmd = Command::new(&plugin);
    cmd.env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &call.id)
        .env("CNI_IFNAME", &call.ifname)
        .env("CNI_NETNS", call.netns.as_deref().unwrap_or(Path::new("")))
        .env("CNI_ARGS", env.args.as_deref().unwrap_or(""))
        .env("CNI_PATH", env.path.as_deref().unwrap_or(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|err| Error::IpamExec {
        path: plugin.clone(),
        err,
    })?;
    // The config is far smaller than a pipe buffer: this never blocks.
    let _ = child.stdin.take().expect("piped").write_all(stdin);
    Ok(IpamRun {
        plugin,
        command,
        child,
    })
}

/// Waits for the IPAM plugin: its result for ADD, its CNI error on failure.
fn wait_ipam(run: IpamRun) -> Result<Option<CniResult>> {
    let plugin = run.plugin;
    let out = run
        .child
        .wait_with_output()
        .map_err(|err| Error::IpamExec {
            path: plugin.clone(),
            err,
        })?;
    if !out.status.success() {
        let e = serde_json::from_slice::<CniError>(&out.stdout).unwrap_or_else(|_| {
            CniError::new(
                code::IPAM_EXEC,
                format!("ipam plugin {} failed ({})", plugin.display(), out.status),
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            )
        });
        return Err(Error::Cni(e));
    }
    if run.command != "ADD" {
        return Ok(None);
    }
    serde_json::from_slice(&out.stdout).map(Some).map_err(|e| {
        Error::Cni(CniError::new(
            code::IPAM_EXEC,
            format!(
                "ipam plugin {} printed an undecodable result",
                plugin.display()
            ),
            e.to_string(),
        ))
    })
}

fn exec_ipam(
    call: &Call,
    env: &Env,
    command: &'static str,
    stdin: &[u8],
) -> Result<Option<CniResult>> {
    wait_ipam(spawn_ipam(call, env, command, stdin)?)
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    if std::fs::read_to_string(path)
        .map(|v| v.trim() == value)
        .unwrap_or(false)
    {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|err| Error::Sysctl {
        path: path.into(),
        err,
    })
}

/// `ip/prefix` -> (ip, prefix, subnet string), either family.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8, String)> {
    let ip: IpAddr = s.split('/').next()?.parse().ok()?;
    match ip {
        IpAddr::V4(_) => {
            let sub = ipam::bitmap::parse_subnet(s)?;
            Some((ip, sub.prefix(), sub.to_string()))
        }
        IpAddr::V6(_) => {
            let sub = ipam::v6::Subnet6::parse(s)?;
            Some((ip, sub.prefix, sub.to_string()))
        }
    }
}

/// One address of an ipam result: ip, prefix, subnet, gateway.
struct Addr {
    ip: IpAddr,
    prefix: u8,
    subnet: String,
    gw: Option<IpAddr>,
}

fn ipam_addresses(res: &CniResult) -> Result<Vec<Addr>> {
    let v: Vec<Addr> = res
        .ips
        .iter()
        .filter_map(|i| {
            let (ip, prefix, subnet) = parse_cidr(&i.address)?;
            let gw = i
                .gateway
                .as_deref()
                .and_then(|g| g.parse::<IpAddr>().ok())
                .filter(|g| g.is_ipv4() == ip.is_ipv4());
            Some(Addr {
                ip,
                prefix,
                subnet,
                gw,
            })
        })
        .collect();
    if v.is_empty() {
        return Err(bad(code::IPAM_EXEC, "ipam result holds no IP address"));
    }
    Ok(v)
}

/// A route's destination as (network, prefix), either family.
fn parse_dst(s: &str) -> Option<(IpAddr, u8)> {
    if let Some(d) = ipam::bitmap::parse_subnet(s) {
        return Some((d.network().into(), d.prefix()));
    }
    let d = ipam::v6::Subnet6::parse(s)?;
    Some((d.host(0).into(), d.prefix))
}

fn add(call: &Call, env: &Env, stdin: &[u8]) -> Result<CniResult> {
    // A network netbr did not create goes with its last DEL: no ADD of
    // such a network may run while that happens (see remove_if_unused).
    let _shared = if call.managed {
        None
    } else {
        Some(plugin_lock(false)?)
    };
    let ns_path = call
        .netns
        .clone()
        .ok_or_else(|| bad(code::INVALID_ENV, "CNI_NETNS is not set"))?;
    let ns = netns::open(&ns_path)?;
    let mut nl = Netlink::open()?;
    let host = veth_name(&call.id, &call.ifname);
    // The address is allocated while the links are made: both take a
    // process or a kernel round trip, neither needs the other.
    let ipam_run = spawn_ipam(call, env, "ADD", stdin)?;
    let links = add_links(call, &ns, &mut nl, &host);
    let ipam_res = wait_ipam(ipam_run);
    let res = match (links, ipam_res) {
        (Ok((br, leftover)), Ok(Some(ipam_res))) => add_addresses(
            call, &ns, &ns_path, &mut nl, &br, leftover, &ipam_res, &host,
        ),
        (Ok(_), Ok(None)) => Err(bad(code::IPAM_EXEC, "ipam plugin printed no result")),
        // The allocation's error says most (exhausted, taken).
        (_, Err(e)) => Err(e),
        (Err(e), Ok(_)) => Err(e),
    };
    if res.is_err() {
        // Undo what this ADD did; the bridge stays (the network owns it).
        let _ = nl.del_link(&host);
        let _ = exec_ipam(call, env, "DEL", stdin);
    }
    res
}

/// Bridge (ensured), and the veth pair: host end on the bridge, peer in the
/// netns. Also says whether a host veth of an earlier ADD was replaced.
fn add_links(
    call: &Call,
    ns: &std::fs::File,
    nl: &mut Netlink,
    host: &str,
) -> Result<(netlink::Link, bool)> {
    use std::os::fd::AsRawFd;
    let br = nl.ensure_bridge(&call.bridge, call.mtu)?;
    // A leftover of an earlier, interrupted ADD.
    let leftover = nl.del_link(host)?;
    nl.add_veth(host, &call.ifname, ns.as_raw_fd(), br.index, call.mtu)?;
    if call.hairpin {
        let path = format!("/sys/class/net/{host}/brport/hairpin_mode");
        std::fs::write(&path, "1").map_err(|err| Error::Sysctl {
            path: path.into(),
            err,
        })?;
    }
    Ok((br, leftover))
}

#[allow(clippy::too_many_arguments)]
fn add_addresses(
    call: &Call,
    ns: &std::fs::File,
    ns_path: &Path,
    nl: &mut Netlink,
    br: &netlink::Link,
    leftover: bool,
    ipam_res: &CniResult,
    host: &str,
) -> Result<CniResult> {
    let addrs = ipam_addresses(ipam_res)?;
    let has4 = addrs.iter().any(|a| a.ip.is_ipv4());
    let has6 = addrs.iter().any(|a| a.ip.is_ipv6());
    if has6 {
        // As docker with IPv6: the bridge speaks it, the host routes it.
        write_sysctl(
            &format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", call.bridge),
            "0",
        )?;
        write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
    }
    if call.is_gateway {
        for a in &addrs {
            if let Some(gw) = a.gw {
                nl.add_addr(br.index, gw, a.prefix)?;
            }
        }
        if has4 {
            // DNAT of 127.0.0.1 to the bridge needs localnet routing there.
            write_sysctl(
                &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", call.bridge),
                "1",
            )?;
        }
    }
    if has4 {
        // Left on afterwards: other networks may rely on it.
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    }
    let host_link = nl.link(host)?.unwrap_or_default();
    let mut cnl = netns::netlink_in(ns, ns_path)?;
    let c = cnl.link(&call.ifname)?.ok_or_else(|| {
        Error::Check(format!(
            "{} did not appear in {}",
            call.ifname,
            ns_path.display()
        ))
    })?;
    if let Some(mac) = &call.mac {
        cnl.set_mac(c.index, mac)?;
    }
    for a in &addrs {
        cnl.add_addr(c.index, a.ip, a.prefix)?;
    }
    cnl.set_up(c.index)?;
    if let Some(lo) = cnl.link("lo")? {
        if !lo.up {
            cnl.set_up(lo.index)?;
        }
    }
    for r in &ipam_res.routes {
        let Some((dst, prefix)) = parse_dst(&r.dst) else {
            continue;
        };
        let fam_gw = addrs
            .iter()
            .find(|a| a.ip.is_ipv4() == dst.is_ipv4())
            .and_then(|a| a.gw);
        // A route of a family the container has no address of cannot go in.
        if !addrs.iter().any(|a| a.ip.is_ipv4() == dst.is_ipv4()) {
            continue;
        }
        let via =
            r.gw.as_deref()
                .and_then(|g| g.parse::<IpAddr>().ok())
                .or(fam_gw);
        cnl.add_route(dst, prefix, via, c.index)?;
    }
    // The aliases say which rules are in place (see crate::marks): with the
    // network's in and no port mappings, iptables is not run at all. A
    // replaced leftover veth may have had rules: look then.
    let subnets: Vec<String> = addrs.iter().map(|a| a.subnet.clone()).collect();
    let sig = marks::net_sig(&call.name, &subnets.join(","), call.ip_masq);
    let net_in = br.alias.as_deref() == Some(sig.as_str());
    if !call.maps.is_empty() {
        // Before the rules: a crash in between leaves a mark, never rules without one.
        let mark = if has6 { marks::PORTS6 } else { marks::PORTS };
        nl.set_alias(host_link.index, mark)?;
    }
    if !net_in || !call.maps.is_empty() || leftover {
        // One call per family: the network's subnets of it, the
        // container's first address of it as the DNAT target.
        for fam in [Fam::V4, Fam::V6] {
            let Some(first) = addrs.iter().find(|a| Fam::of(a.ip) == fam) else {
                continue;
            };
            iptables::add(
                &Net {
                    name: &call.name,
                    bridge: &call.bridge,
                    subnets: addrs
                        .iter()
                        .filter(|a| Fam::of(a.ip) == fam)
                        .map(|a| a.subnet.clone())
                        .collect(),
                    masquerade: call.ip_masq,
                },
                &call.id,
                first.ip,
                &call.maps,
            )?;
        }
        if !net_in {
            nl.set_alias(br.index, &sig)?;
        }
    }
    let mut ips = ipam_res.ips.clone();
    for i in &mut ips {
        i.interface = Some(2);
    }
    Ok(CniResult {
        cni_version: call.version.clone(),
        interfaces: vec![
            Interface {
                name: call.bridge.clone(),
                mac: br.mac.clone(),
                ..Default::default()
            },
            Interface {
                name: host.into(),
                mac: host_link.mac,
                ..Default::default()
            },
            Interface {
                name: call.ifname.clone(),
                mac: call
                    .mac
                    .map(|m| {
                        m.iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<Vec<_>>()
                            .join(":")
                    })
                    .unwrap_or(c.mac),
                sandbox: ns_path.display().to_string(),
                ..Default::default()
            },
        ],
        ips,
        routes: ipam_res.routes.clone(),
        dns: ipam_res.dns.clone(),
    })
}

fn del(call: &Call, env: &Env, stdin: &[u8]) -> Result<()> {
    let host = veth_name(&call.id, &call.ifname);
    let mut nl = Netlink::open()?;
    let link = nl.link(&host)?;
    // The veth's alias says whether the container has rules of its own,
    // and in which families.
    let fams: &[Fam] = match link.as_ref().map(|l| l.alias.as_deref()) {
        Some(Some(marks::PORTS)) => &[Fam::V4],
        Some(Some(marks::PORTS6)) => &[Fam::V4, Fam::V6],
        Some(_) => &[],
        // Veth gone already: look the rules up.
        None => &[Fam::V4, Fam::V6],
    };
    // The deletion runs while the rules and the address go (see linkdel).
    let deletion = link.as_ref().map(|l| linkdel::start(l.index));
    // The network's rules stay (until `netbr rm`, or this network's last
    // DEL when netbr did not create it); only the container's go here.
    let rules = fams
        .iter()
        .try_for_each(|f| iptables::del_container(*f, &call.name, &call.id))
        .map_err(Error::from);
    // Like the reference bridge plugin, the address is released before the
    // link is gone: the link is on its way out already.
    let released = if rules.is_ok() {
        exec_ipam(call, env, "DEL", stdin).map(|_| ())
    } else {
        Ok(())
    };
    if let Some(d) = deletion {
        d.finish(&mut nl)?;
    }
    rules?;
    released?;
    if !call.managed {
        remove_if_unused(&mut nl, call)?;
    }
    Ok(())
}

/// Held shared by every plugin-mode ADD, exclusive by a plugin-mode
/// network's removal. Bridges are machine-wide: one fixed path.
pub const PLUGIN_LOCK: &str = "/run/mydocker/netbr-plugin.lock";

fn plugin_lock(exclusive: bool) -> Result<atomicfile::Lock> {
    let path = PathBuf::from(PLUGIN_LOCK);
    let err = |err| Error::Lock {
        path: path.clone(),
        err,
    };
    std::fs::create_dir_all(path.parent().expect("absolute")).map_err(err)?;
    if exclusive {
        atomicfile::lock(&path).map_err(err)
    } else {
        atomicfile::lock_shared(&path).map_err(err)
    }
}

/// A network netbr did not create (podman's, a raw conflist) has no `netbr
/// rm`, and its runtime knows nothing of netbr's bridge (podman removes
/// only a `bridge` plugin's): when its bridge has no port left (the last
/// DEL, or a GC), the network goes whole, as `netbr rm` would take it: its
/// rules (both families, found by the bridge's alias, see [`crate::marks`]),
/// the bridge, and (with our `ipam`) its state files once no address is
/// held. Only a bridge whose alias names this network is deleted: a bridge
/// the host set up stays. Under the exclusive [`PLUGIN_LOCK`], so no ADD
/// of a plugin-mode network is halfway meanwhile; the next ADD makes all
/// of it again.
fn remove_if_unused(nl: &mut Netlink, call: &Call) -> Result<()> {
    let unused = |nl: &mut Netlink| -> Result<Option<Option<netlink::Link>>> {
        let Some(br) = nl.link(&call.bridge)? else {
            return Ok(Some(None));
        };
        if nl.links()?.iter().any(|l| l.master == Some(br.index)) {
            return Ok(None);
        }
        Ok(Some(Some(br)))
    };
    // Most DELs leave ports on the bridge: no lock for them.
    if unused(nl)?.is_none() {
        return Ok(());
    }
    let _l = plugin_lock(true)?;
    let Some(br) = unused(nl)? else {
        return Ok(());
    };
    if let Some(br) = br {
        if let Some((net, subnets)) = br.alias.as_deref().and_then(marks::parse_net) {
            if net == call.name {
                let subnets: Vec<String> = subnets.split(',').map(String::from).collect();
                iptables::del_network(&call.name, &call.bridge, &subnets)?;
                nl.del_link(&call.bridge)?;
            }
        }
    }
    if call.ipam_kind == "ipam" && ipam::pools::list(&call.data_dir, &call.name)?.is_empty() {
        ipam::pools::remove(&call.data_dir, &call.name)?;
    }
    Ok(())
}

fn check(call: &Call, env: &Env, stdin: &[u8]) -> Result<()> {
    let ns_path = call
        .netns
        .clone()
        .ok_or_else(|| bad(code::INVALID_ENV, "CNI_NETNS is not set"))?;
    let ns = netns::open(&ns_path)?;
    let mut nl = Netlink::open()?;
    let br = nl
        .link(&call.bridge)?
        .ok_or_else(|| Error::Check(format!("bridge {} is missing", call.bridge)))?;
    if !br.up {
        return Err(Error::Check(format!("bridge {} is down", call.bridge)));
    }
    let host = veth_name(&call.id, &call.ifname);
    let h = nl
        .link(&host)?
        .ok_or_else(|| Error::Check(format!("host veth {host} is missing")))?;
    if h.master != Some(br.index) || !h.up {
        return Err(Error::Check(format!(
            "host veth {host} is down or not on {}",
            call.bridge
        )));
    }
    exec_ipam(call, env, "CHECK", stdin)?;
    let mut cnl = netns::netlink_in(&ns, &ns_path)?;
    let c = cnl.link(&call.ifname)?.ok_or_else(|| {
        Error::Check(format!(
            "{} is missing in {}",
            call.ifname,
            ns_path.display()
        ))
    })?;
    if !c.up {
        return Err(Error::Check(format!(
            "{} is down in {}",
            call.ifname,
            ns_path.display()
        )));
    }
    let link_local =
        |ip: &IpAddr| matches!(ip, IpAddr::V6(v) if (v.segments()[0] & 0xffc0) == 0xfe80);
    let have: Vec<(IpAddr, u8)> = cnl
        .addrs(c.index)?
        .into_iter()
        .filter(|(ip, _)| !link_local(ip))
        .collect();
    if let Some(prev) = &call.prev {
        for ipc in &prev.ips {
            if let Some((ip, prefix, _)) = parse_cidr(&ipc.address) {
                if !have.contains(&(ip, prefix)) {
                    return Err(Error::Check(format!(
                        "{} lacks address {}",
                        call.ifname, ipc.address
                    )));
                }
            }
        }
    } else if have.is_empty() {
        return Err(Error::Check(format!("{} has no IP address", call.ifname)));
    }
    let fams: Vec<Fam> = [Fam::V4, Fam::V6]
        .into_iter()
        .filter(|f| have.iter().any(|(ip, _)| Fam::of(*ip) == *f))
        .collect();
    let routes = cnl.routes()?;
    for f in &fams {
        if call.is_gateway && !routes.iter().any(|r| r.1 == 0 && Fam::of(r.0) == *f) {
            return Err(Error::Check(format!(
                "no {f:?} default route in {}",
                ns_path.display()
            )));
        }
    }
    let mut dnat = 0;
    let mut want = 0;
    for f in &fams {
        let rules = iptables::rules_of(*f, &call.name, Some(&call.id))?;
        dnat += rules.iter().filter(|r| r.contains(" -j DNAT ")).count();
        want += call.maps.iter().filter(|m| m.in_fam(*f)).count();
    }
    if dnat != want {
        return Err(Error::Check(format!(
            "{dnat} DNAT rules for {} but {want} wanted for its port mappings",
            call.id,
        )));
    }
    Ok(())
}

/// The bridge plugin: ADD, DEL and CHECK with a validated config.
pub struct Netbr;

impl Plugin for Netbr {
    type Error = Error;

    fn add(&self, env: &Env, stdin: &[u8]) -> Result<Value> {
        let r = add(&parse(stdin, env)?, env, stdin)?;
        Ok(serde_json::to_value(r).expect("serializable"))
    }

    fn del(&self, env: &Env, stdin: &[u8]) -> Result<()> {
        del(&parse(stdin, env)?, env, stdin)
    }

    fn check(&self, env: &Env, stdin: &[u8]) -> Result<()> {
        check(&parse(stdin, env)?, env, stdin)
    }

    /// GC: the ipam plugin releases the addresses of attachments not in
    /// `cni.dev/valid-attachments`; their containers' rules go here; a
    /// network netbr did not create loses its rules when no port is left.
    fn gc(&self, env: &Env, stdin: &[u8]) -> Result<()> {
        let call = parse(stdin, &gc_env(env))?;
        exec_ipam(&call, env, "GC", stdin)?;
        #[derive(Deserialize)]
        struct Valid {
            #[serde(default, rename = "cni.dev/valid-attachments")]
            valid: Vec<Value>,
        }
        let valid: Vec<String> = serde_json::from_slice::<Valid>(stdin)
            .map(|v| v.valid)
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a["containerID"].as_str().map(String::from))
            .collect();
        let prefix = format!("{}:", iptables::net_tag(&call.name));
        for fam in [Fam::V4, Fam::V6] {
            let rules = match iptables::rules_of(fam, &call.name, None) {
                Ok(r) => r,
                Err(_) if fam == Fam::V6 => continue,
                Err(e) => return Err(e.into()),
            };
            let mut stale: Vec<&str> = rules
                .iter()
                .filter_map(|r| iptables::comment_of(r)?.strip_prefix(&prefix))
                .filter(|id| !valid.iter().any(|v| v == id))
                .collect();
            stale.sort();
            stale.dedup();
            for id in stale {
                iptables::del_container(fam, &call.name, id)?;
            }
        }
        if !call.managed {
            remove_if_unused(&mut Netlink::open()?, &call)?;
        }
        Ok(())
    }

    /// STATUS: what the ipam plugin says.
    fn status(&self, env: &Env, stdin: &[u8]) -> Result<()> {
        let call = parse(stdin, &gc_env(env))?;
        exec_ipam(&call, env, "STATUS", stdin).map(|_| ())
    }
}

/// GC and STATUS come without a container: stand-ins that pass validation
/// and that the ipam plugin ignores for those commands.
fn gc_env(env: &Env) -> Env {
    Env {
        container_id: Some("gc".into()),
        ifname: Some("eth0".into()),
        ..env.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_and_differ() {
        let a = veth_name("c1", "eth0");
        assert_eq!(a.len(), 12);
        assert!(a.starts_with("veth"));
        assert_ne!(a, veth_name("c1", "eth1"));
        assert_eq!(a, veth_name("c1", "eth0"));
    }

    #[test]
    fn config_is_validated_before_anything() {
        let env = Env {
            command: "ADD".into(),
            container_id: Some("c".into()),
            ifname: Some("eth0".into()),
            ..Default::default()
        };
        let ok = br#"{"cniVersion":"1.0.0","name":"n","type":"netbr","ipam":{"type":"ipam"},"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80}]}}"#;
        let c = parse(ok, &env).unwrap();
        assert_eq!(c.maps[0].protocol, "tcp");
        assert_eq!(c.bridge, DEFAULT_BRIDGE);
        for bad in [
            &br#"{"name":"n","ipam":{"type":"ipam"},"bridge":"waytoolongbridgename"}"#[..],
            br#"{"name":"n"}"#,
            br#"{"name":"n","ipam":{"type":"ipam"},"runtimeConfig":{"portMappings":[{"hostPort":70000,"containerPort":80}]}}"#,
            br#"{"name":"n","ipam":{"type":"ipam"},"runtimeConfig":{"portMappings":[{"hostPort":1,"containerPort":80,"protocol":"icmp"}]}}"#,
        ] {
            let e = parse(bad, &env).unwrap_err().to_cni();
            assert_eq!(e.code, 7, "{}", String::from_utf8_lossy(bad));
        }
        let mut e2 = env.clone();
        e2.ifname = Some("a/b".into());
        assert_eq!(parse(ok, &e2).unwrap_err().to_cni().code, 4);
    }
}
