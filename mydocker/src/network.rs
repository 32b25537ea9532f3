//! Networks: `mydocker network ...` over `netbr`, the `--network`/`-p`
//! flags of `run`, and the container's attach/detach steps of the pipeline
//! (`netbr netns add`, `netbr connect` = CNI ADD; `disconnect`, `netns del`).

use crate::context::Ctx;
use crate::error::{fail, Error, Result};
use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::Ipv4Addr;

/// The network docker users get when they name none.
pub const DEFAULT: &str = "bridge";

/// A `-p [IP:][HOST:]CONTAINER[/PROTO]` port mapping, as CNI's portMappings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    #[serde(rename = "hostIP")]
    pub host_ip: String,
}

pub fn parse_publish(spec: &str) -> Result<Port> {
    let bad = || Error::Daemon(format!("invalid port specification: \"{spec}\""));
    let (addr, proto) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    let parts: Vec<&str> = addr.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => return Err(bad()),
    };
    if !ip.is_empty() && ip.parse::<Ipv4Addr>().is_err() {
        return Err(bad());
    }
    let port = |s: &str| s.parse::<u16>().ok().filter(|&p| p > 0);
    let container_port = port(ctr).ok_or_else(bad)?;
    let host_port = if host.is_empty() {
        free_port(&proto)?
    } else {
        port(host).ok_or_else(bad)?
    };
    Ok(Port {
        host_port,
        container_port,
        protocol: proto,
        host_ip: ip.to_string(),
    })
}

/// An ephemeral port the kernel says is free now (docker picks one too).
fn free_port(proto: &str) -> Result<u16> {
    let p = if proto == "udp" {
        std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind("0.0.0.0:0").and_then(|s| s.local_addr())
    };
    p.map(|a| a.port())
        .map_err(|e| Error::Daemon(format!("no free host port: {e}")))
}

/// How a container is networked, resolved before anything is made.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// A network namespace with only lo.
    None,
    /// The host's own network namespace.
    Host,
    /// A named bridge network (`bridge` is the default one).
    Named(String),
}

pub fn parse_mode(s: &str) -> Mode {
    match s {
        "none" => Mode::None,
        "host" => Mode::Host,
        "" | "default" => Mode::Named(DEFAULT.into()),
        n => Mode::Named(n.into()),
    }
}

/// What the attach step made, recorded so detach can undo it.
pub struct Attached {
    pub netns: String,
    pub ip: Option<String>,
    pub settings: Value,
}

/// Steps 4 and 5: a netns file, then CNI ADD into the network.
pub fn attach(ctx: &Ctx, id: &str, network: &str, ports: &[Port]) -> Result<Attached> {
    let out = ctx
        .netbr()
        .args(["netns", "add", id, "--dir"])
        .arg(ctx.run.join("netns"))
        .json()?;
    let netns = out["path"].as_str().unwrap_or_default().to_string();
    let res = ctx
        .netbr()
        .args([
            "connect",
            network,
            id,
            "--netns",
            &netns,
            "--publish",
            &serde_json::to_string(ports).unwrap(),
        ])
        .json();
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            let _ = ctx
                .netbr()
                .args(["netns", "del", id, "--dir"])
                .arg(ctx.run.join("netns"))
                .output();
            return Err(e);
        }
    };
    let (ip, entry) = endpoint(&res, "eth0");
    let mut port_map = serde_json::Map::new();
    for p in ports {
        port_map.insert(
            format!("{}/{}", p.container_port, p.protocol),
            json!([{"HostIp": if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip }, "HostPort": p.host_port.to_string()}]),
        );
    }
    let settings = json!({
        "IPAddress": ip, "Gateway": entry["Gateway"], "MacAddress": entry["MacAddress"], "Ports": port_map,
        "SandboxKey": netns,
        "Networks": {network: entry},
    });
    Ok(Attached {
        netns,
        ip: Some(ip.to_string()).filter(|s| !s.is_empty()),
        settings,
    })
}

/// Undo of `attach`: CNI DEL and the netns file. Idempotent.
pub fn detach(ctx: &Ctx, id: &str, network: &str) -> Vec<Error> {
    let mut errs: Vec<Error> = disconnect(ctx, id, network, "eth0")
        .err()
        .into_iter()
        .collect();
    errs.extend(netns_del(ctx, id).err());
    errs
}

/// Detaches a container from every network its record lists (the one it
/// ran with and any `network connect`ed since), then drops its netns file.
pub fn detach_all(ctx: &Ctx, id: &str, settings: &Value) -> Vec<Error> {
    let mut errs = vec![];
    for (name, n) in settings["Networks"].as_object().into_iter().flatten() {
        let ifname = n["IfName"].as_str().unwrap_or("eth0");
        errs.extend(disconnect(ctx, id, name, ifname).err());
    }
    // `--network none|host` made no netns file (an empty Networks says so);
    // a record without settings (a crash before they were written) may have one.
    let none = settings["Networks"]
        .as_object()
        .is_some_and(|n| n.is_empty());
    if !none {
        errs.extend(netns_del(ctx, id).err());
    }
    errs
}

/// CNI DEL of one interface; a network removed under us has nothing left to undo.
fn disconnect(ctx: &Ctx, id: &str, network: &str, ifname: &str) -> Result<()> {
    let netns = ctx.run.join("netns").join(id);
    match ctx
        .netbr()
        .args(["disconnect", network, id, "--ifname", ifname, "--netns"])
        .arg(&netns)
        .output()
    {
        Err(e) if !e.to_string().contains("not found") => Err(e),
        _ => Ok(()),
    }
}

fn netns_del(ctx: &Ctx, id: &str) -> Result<()> {
    ctx.netbr()
        .args(["netns", "del", id, "--dir"])
        .arg(ctx.run.join("netns"))
        .output()
        .map(|_| ())
}

/// docker's entry for one network in NetworkSettings.Networks, from a CNI result.
fn endpoint(res: &Value, ifname: &str) -> (String, Value) {
    let addr = res["ips"][0]["address"].as_str().unwrap_or_default();
    let (ip, prefix) = addr.split_once('/').unwrap_or((addr, ""));
    let gateway = res["ips"][0]["gateway"].as_str().unwrap_or_default();
    let mac = res["interfaces"]
        .as_array()
        .and_then(|i| i.iter().find(|x| x["sandbox"].is_string()))
        .and_then(|x| x["mac"].as_str())
        .unwrap_or("");
    (
        ip.to_string(),
        json!({"IPAddress": ip, "IPPrefixLen": prefix.parse::<u32>().unwrap_or(0), "Gateway": gateway, "MacAddress": mac, "IfName": ifname}),
    )
}

/// Makes sure the named network exists; the default one is created on first use.
pub fn ensure(ctx: &Ctx, name: &str) -> Result<()> {
    if ctx
        .root
        .join("networks")
        .join(format!("{name}.json"))
        .exists()
    {
        return Ok(());
    }
    if name != DEFAULT {
        return fail(format!("network {name} not found"));
    }
    let (bridge, subnet) = default_params(ctx)?;
    match ctx
        .netbr()
        .args(["create", name, "--subnet", &subnet, "--bridge", &bridge])
        .output()
    {
        Ok(_) => Ok(()),
        // Another run created it at the same moment.
        Err(_)
            if ctx
                .root
                .join("networks")
                .join(format!("{name}.json"))
                .exists() =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The bridge and subnet of this root's default network. The default
/// install gets docker's names; any other root (tests, side by side
/// installs) a bridge and subnet of its own, so roots never clash.
pub fn default_params(ctx: &Ctx) -> Result<(String, String)> {
    if ctx.root == std::path::Path::new("/var/lib/mydocker") {
        return Ok((
            "mydocker0".to_string(),
            pick_subnet(ctx, Some("172.17.0.0/16"))?,
        ));
    }
    let h = fnv(ctx.root.to_string_lossy().as_bytes());
    let first = format!("10.{}.{}.0/24", 200 + (h >> 32) % 50, (h >> 40) % 256);
    Ok((
        format!("mdk{:08x}", h as u32),
        pick_subnet(ctx, Some(&first))?,
    ))
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// A subnet that overlaps neither the host's routes nor this root's
/// networks: `first` if free, else the first free of docker's pools.
pub fn pick_subnet(ctx: &Ctx, first: Option<&str>) -> Result<String> {
    let mut taken: Vec<Ipv4Network> = host_routes();
    if let Ok(v) = ctx.netbr().arg("ls").json() {
        for n in v.as_array().into_iter().flatten() {
            if let Some(c) = n["subnet"].as_str().and_then(parse_cidr) {
                taken.push(c);
            }
        }
    }
    let free = |c: Ipv4Network| !taken.iter().any(|&t| c.overlaps(t));
    if let Some(c) = first.and_then(parse_cidr) {
        if free(c) {
            return Ok(first.unwrap().to_string());
        }
    }
    for second in 18..32u32 {
        let c = net(Ipv4Addr::new(172, second as u8, 0, 0), 16);
        if free(c) {
            return Ok(format!("172.{second}.0.0/16"));
        }
    }
    for third in 0..=255u32 {
        let c = net(Ipv4Addr::new(192, 168, third as u8, 0), 24);
        if free(c) {
            return Ok(format!("192.168.{third}.0/24"));
        }
    }
    fail("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
}

fn parse_cidr(s: &str) -> Option<Ipv4Network> {
    s.parse().ok()
}

/// A pool candidate; the prefixes are constants, always valid.
fn net(ip: Ipv4Addr, prefix: u8) -> Ipv4Network {
    Ipv4Network::new(ip, prefix).expect("prefix <= 32")
}

/// The host's IPv4 routes (except the default route), from /proc/net/route.
fn host_routes() -> Vec<Ipv4Network> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // little-endian hex of the address and the mask
            let field = |i: usize| {
                Some(Ipv4Addr::from(
                    u32::from_str_radix(f.get(i)?, 16).ok()?.swap_bytes(),
                ))
            };
            let mask = field(7).filter(|m| !m.is_unspecified())?;
            Ipv4Network::with_netmask(field(1)?, mask).ok()
        })
        .collect()
}

/// `mydocker network create|ls|inspect|rm|connect|disconnect`.
pub fn command(ctx: &Ctx, a: &crate::cli::NetworkCmd) -> Result<i32> {
    use crate::cli::NetworkCmd as N;
    match a {
        N::Create {
            driver,
            subnet,
            gateway,
            name,
        } => {
            if driver != "bridge" {
                return fail(format!(
                    "plugin \"{driver}\" not found: only the bridge driver is supported"
                ));
            }
            let subnet = match subnet {
                Some(s) => s.clone(),
                None => pick_subnet(ctx, None)?,
            };
            let mut call = ctx.netbr().args(["create", name, "--subnet", &subnet]);
            if let Some(g) = gateway {
                call = call.args(["--gateway", g]);
            }
            call.output().map_err(plain)?;
            // docker prints the network's id; ours is its name.
            println!("{name}");
        }
        N::Ls => {
            let v = ctx.netbr().arg("ls").json()?;
            println!("{:<20}{:<10}{:<20}NAME", "NETWORK ID", "DRIVER", "SUBNET");
            for n in v.as_array().into_iter().flatten() {
                let s = |k: &str| n[k].as_str().unwrap_or("").to_string();
                println!(
                    "{:<20}{:<10}{:<20}{}",
                    s("bridge"),
                    "bridge",
                    s("subnet"),
                    s("name")
                );
            }
        }
        N::Inspect { names } => {
            let mut out = vec![];
            for n in names {
                let v = ctx.netbr().args(["inspect", n]).json().map_err(plain)?;
                out.push(json!({
                    "Name": n, "Driver": "bridge",
                    "IPAM": {"Config": [{"Subnet": v["subnet"], "Gateway": v["gateway"]}]},
                    "Options": {"com.docker.network.bridge.name": v["bridge"]},
                    "Containers": v["allocations"],
                }));
            }
            println!("{}", serde_json::to_string_pretty(&out).unwrap());
        }
        N::Rm { names } => {
            let mut code = 0;
            for n in names {
                match ctx.netbr().args(["rm", n]).output() {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {}", plain(e));
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        N::Connect { network, container } => {
            let rec = crate::records::get(ctx, container)?;
            if rec.status != ctrstate::record::Status::Running {
                return fail(format!("container {} is not running", rec.id));
            }
            let netns = ctx.run.join("netns").join(&rec.id);
            if !netns.exists() {
                return fail(format!(
                    "container {} has no network namespace of its own to connect",
                    rec.id
                ));
            }
            let nets = rec.network["Networks"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            if nets.contains_key(network) {
                return fail(format!(
                    "endpoint with name {} already exists in network {network}",
                    rec.name
                ));
            }
            // The first eth<N> no attached network uses.
            let used: Vec<&str> = nets.values().filter_map(|n| n["IfName"].as_str()).collect();
            let ifname = (0..)
                .map(|n| format!("eth{n}"))
                .find(|i| !used.contains(&i.as_str()))
                .unwrap();
            let res = ctx
                .netbr()
                .args(["connect", network, &rec.id, "--netns"])
                .arg(&netns)
                .args(["--ifname", &ifname])
                .json()
                .map_err(plain)?;
            let (_, entry) = endpoint(&res, &ifname);
            let patch = json!({"network": {"Networks": {network: entry}}});
            ctx.ctrstate()
                .args(["update", &rec.id])
                .stdin_json(&patch)
                .output()?;
        }
        N::Disconnect { network, container } => {
            let rec = crate::records::get(ctx, container)?;
            let Some(entry) = rec.network["Networks"].get(network) else {
                return fail(format!(
                    "container {} is not connected to network {network}",
                    rec.id
                ));
            };
            let ifname = entry["IfName"].as_str().unwrap_or("eth0").to_string();
            disconnect(ctx, &rec.id, network, &ifname).map_err(plain)?;
            let patch = json!({"network": {"Networks": {network: null}}});
            ctx.ctrstate()
                .args(["update", &rec.id])
                .stdin_json(&patch)
                .output()?;
        }
    }
    Ok(0)
}

/// A tool's error as the user should read it (without the tool's step).
fn plain(e: Error) -> Error {
    match e {
        Error::Tool { msg, .. } => Error::Daemon(msg),
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs_parse_like_docker() {
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            Port {
                host_port: 8080,
                container_port: 80,
                protocol: "tcp".into(),
                host_ip: "".into()
            }
        );
        assert_eq!(
            parse_publish("127.0.0.1:8080:80/udp").unwrap().host_ip,
            "127.0.0.1"
        );
        assert_eq!(
            parse_publish("127.0.0.1:8080:80/udp").unwrap().protocol,
            "udp"
        );
        assert!(parse_publish("80").unwrap().host_port > 0);
        for bad in [
            "0:80",
            "x:80",
            "8080:80/icmp",
            "1.2.3:1:2",
            "99999:80",
            "a:b:c:d",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs_overlap() {
        let a = parse_cidr("10.0.0.0/8").unwrap();
        let b = parse_cidr("10.200.3.0/24").unwrap();
        let c = parse_cidr("192.168.1.0/24").unwrap();
        assert!(a.overlaps(b) && b.overlaps(a));
        assert!(!a.overlaps(c) && !c.overlaps(a));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("fd00::/64").is_none());
    }
}
