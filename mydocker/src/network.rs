//! Networks: `mydocker network ...` over `netbr`, the `--network`/`-p`
//! flags of `run`, and docker's settings from the CNI results of the
//! plan's Connect steps (`settings`).

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
    let mut v = parse_publish_range(spec)?;
    if v.len() != 1 {
        return Err(Error::Daemon(format!(
            "invalid port specification: \"{spec}\""
        )));
    }
    Ok(v.remove(0))
}

/// `-p` with port ranges: `[IP:][HOST[-HOST2]:]CONTAINER[-CONTAINER2][/PROTO]`,
/// one mapping per port (equal lengths, or no host ports: each a free one).
/// An IPv6 host address is bracketed: `[::1]:8080:80`.
pub fn parse_publish_range(spec: &str) -> Result<Vec<Port>> {
    let bad = || Error::Daemon(format!("invalid port specification: \"{spec}\""));
    let (addr, proto) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    let (ip, rest) = match addr.strip_prefix('[') {
        Some(r) => r.split_once("]:").ok_or_else(bad)?,
        None => match addr.matches(':').count() {
            2 => addr.split_once(':').unwrap(),
            0 | 1 => ("", addr),
            _ => return Err(bad()),
        },
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad());
    }
    let (host, ctr) = rest.split_once(':').unwrap_or(("", rest));
    let range = |s: &str| -> Result<(u16, u16)> {
        let p = |x: &str| x.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(bad);
        match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (p(a)?, p(b)?);
                if a > b {
                    return Err(bad());
                }
                Ok((a, b))
            }
            None => p(s).map(|a| (a, a)),
        }
    };
    let (c0, c1) = range(ctr)?;
    let hosts: Vec<u16> = if host.is_empty() {
        (c0..=c1)
            .map(|_| free_port(&proto))
            .collect::<Result<_>>()?
    } else {
        let (h0, h1) = range(host)?;
        if h1 - h0 != c1 - c0 {
            return Err(bad());
        }
        (h0..=h1).collect()
    };
    Ok((c0..=c1)
        .zip(hosts)
        .map(|(c, h)| Port {
            host_port: h,
            container_port: c,
            protocol: proto.clone(),
            host_ip: ip.to_string(),
        })
        .collect())
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

/// docker's NetworkSettings of a container from the CNI results of its
/// networks (in the order joined; the first one's addresses and `-p`
/// ports are the top-level ones). Pure: the plan's Connect steps make the
/// results (`plan::build`).
pub fn settings(
    cni: &[(String, cni_plugin::CniResult)],
    netns: &str,
    cfg: &crate::runconfig::RunConfig,
) -> Value {
    let Some((_, first)) = cni.first() else {
        return json!({"Networks": {}, "Ports": {}, "IPAddress": ""});
    };
    let mut networks = serde_json::Map::new();
    for (i, (name, res)) in cni.iter().enumerate() {
        let (_, mut entry) = endpoint(res, &format!("eth{i}"));
        entry["Aliases"] = json!(cfg.net.aliases);
        networks.insert(name.clone(), entry);
    }
    let (ip, entry) = endpoint(first, "eth0");
    let mut port_map = serde_json::Map::new();
    for p in &cfg.ports {
        port_map.insert(
            format!("{}/{}", p.container_port, p.protocol),
            json!([{"HostIp": if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip }, "HostPort": p.host_port.to_string()}]),
        );
    }
    json!({
        "IPAddress": ip, "Gateway": entry["Gateway"], "MacAddress": entry["MacAddress"],
        "GlobalIPv6Address": entry["GlobalIPv6Address"], "GlobalIPv6PrefixLen": entry["GlobalIPv6PrefixLen"],
        "IPv6Gateway": entry["IPv6Gateway"], "Ports": port_map,
        "SandboxKey": netns,
        "Networks": networks,
    })
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
        Err(_) => Ok(()),
        Ok(_) => {
            net_event(ctx, "disconnect", network, Some(id));
            Ok(())
        }
    }
}

/// A network event (the network's id is its name here).
pub fn net_event(ctx: &Ctx, action: &str, network: &str, container: Option<&str>) {
    let mut attrs = vec![("name", network), ("type", "bridge")];
    attrs.extend(container.map(|c| ("container", c)));
    crate::events::emit(ctx, "network", action, network, &attrs);
}

/// docker's entry for one network in NetworkSettings.Networks, from a CNI
/// result: the first IPv4 and the first IPv6 address with their gateways.
fn endpoint(res: &cni_plugin::CniResult, ifname: &str) -> (String, Value) {
    let of = |v6: bool| {
        res.ips
            .iter()
            .find(|i| i.address.contains(':') == v6)
            .map(|i| {
                let (ip, prefix) = i.address.split_once('/').unwrap_or((&i.address, ""));
                (
                    ip.to_string(),
                    prefix.parse::<u32>().unwrap_or(0),
                    i.gateway.clone().unwrap_or_default(),
                )
            })
            .unwrap_or_default()
    };
    let (ip, prefix, gateway) = of(false);
    let (ip6, prefix6, gateway6) = of(true);
    let mac = res
        .interfaces
        .iter()
        .find(|x| !x.sandbox.is_empty())
        .map(|x| x.mac.as_str())
        .unwrap_or("");
    (
        ip.clone(),
        json!({"IPAddress": ip, "IPPrefixLen": prefix, "Gateway": gateway,
               "GlobalIPv6Address": ip6, "GlobalIPv6PrefixLen": prefix6, "IPv6Gateway": gateway6,
               "MacAddress": mac, "IfName": ifname}),
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
            ipv6,
            label,
            name,
        } => {
            let labels = parse_labels(label)?;
            if driver != "bridge" {
                return fail(format!(
                    "plugin \"{driver}\" not found: only the bridge driver is supported"
                ));
            }
            let mut subnets = subnet.clone();
            let has6 = subnets.iter().any(|s| s.contains(':'));
            if has6 && !ipv6 {
                return fail("an IPv6 subnet needs --ipv6");
            }
            if !subnets.iter().any(|s| !s.contains(':')) {
                subnets.insert(0, pick_subnet(ctx, None)?);
            }
            if *ipv6 && !has6 {
                subnets.push(pick_subnet6(ctx, name)?);
            }
            let mut call = ctx.netbr().args(["create", name]);
            for s in &subnets {
                call = call.args(["--subnet", s]);
            }
            for g in gateway {
                call = call.args(["--gateway", g]);
            }
            call.output().map_err(plain)?;
            if let Err(e) = set_labels(ctx, name, &labels) {
                let _ = ctx.netbr().args(["rm", name]).output();
                return Err(e);
            }
            net_event(ctx, "create", name, None);
            // docker prints the network's id; ours is its name.
            println!("{name}");
        }
        N::Prune { force } => return crate::prune::network_cmd(ctx, *force),
        N::Ls { quiet, format } => {
            return crate::listings::networks(ctx, *quiet, format.as_deref())
        }
        N::Inspect { format, names } => {
            return crate::listings::inspect_objects(names, format.as_deref(), |n| {
                let v = ctx
                    .netbr()
                    .args(["inspect", n])
                    .json()
                    .map_err(|e| plain(e).to_string())?;
                let subnets: Vec<&str> = v["subnets"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let config: Vec<Value> = subnets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| json!({"Subnet": s, "Gateway": v["gateways"][i]}))
                    .collect();
                Ok(json!({
                    "Name": n, "Id": n, "Scope": "local", "Driver": "bridge",
                    "EnableIPv6": subnets.iter().any(|s| s.contains(':')),
                    "IPAM": {"Driver": "default", "Config": config},
                    "Options": {"com.docker.network.bridge.name": v["bridge"]},
                    "Labels": labels_of(&v["config"]),
                    "Containers": v["allocations"],
                }))
            });
        }
        N::Rm { names } => {
            let mut code = 0;
            for n in names {
                match ctx.netbr().args(["rm", n]).output() {
                    Ok(_) => {
                        net_event(ctx, "destroy", n, None);
                        println!("{n}")
                    }
                    Err(e) => {
                        eprintln!("Error response from daemon: {}", plain(e));
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        N::Connect {
            network,
            container,
            alias,
        } => {
            crate::netargs::check_aliases(alias)?;
            let rec = crate::records::get(ctx, container)?;
            if rec.status == ctrstate::record::Status::Created {
                return connect_created(ctx, &rec, network, alias);
            }
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
            let res: cni_plugin::CniResult = ctx
                .netbr()
                .args(["connect", network, &rec.id, "--netns"])
                .arg(&netns)
                .args(["--ifname", &ifname])
                .parse()
                .map_err(plain)?;
            net_event(ctx, "connect", network, Some(&rec.id));
            let (_, mut entry) = endpoint(&res, &ifname);
            entry["Aliases"] = json!(alias);
            crate::names::join(
                ctx,
                network,
                &name_endpoint(&rec.id, &rec.name, alias, &entry, ctx),
            )?;
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
            crate::names::leave(ctx, network, &rec.id)?;
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

/// `network connect` of a container not started yet (docker-compose
/// connects each container to its network between create and start): to
/// the network it was created with, the aliases join its config and take
/// effect at start; another network is refused (start attaches one).
fn connect_created(
    ctx: &Ctx,
    rec: &ctrstate::record::Record,
    network: &str,
    alias: &[String],
) -> Result<i32> {
    let cfg: crate::runconfig::RunConfig =
        serde_json::from_value(Value::Object(rec.config.clone())).unwrap_or_default();
    let own = match parse_mode(&cfg.network) {
        Mode::Named(n) => n,
        _ => cfg.network.clone(),
    };
    if own != network {
        return fail(format!(
            "container {} is not running: until it starts, a created container joins only the network it was created with ({own})",
            rec.id
        ));
    }
    ensure(ctx, network)?;
    let mut aliases = cfg.net.aliases.clone();
    for a in alias {
        if !aliases.contains(a) {
            aliases.push(a.clone());
        }
    }
    let patch = json!({"config": {"net": {"aliases": aliases}}});
    ctx.ctrstate()
        .args(["update", &rec.id])
        .stdin_json(&patch)
        .output()?;
    Ok(0)
}

/// `--label KEY[=VALUE]`s as a map (docker's: a bare key has an empty value).
pub fn parse_labels(label: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    label
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            if k.is_empty() {
                return fail(format!("invalid label '{l}': empty name"));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Puts a network's labels in its conflist under a top-level `labels` key:
/// CNI runtimes and netbr read only `plugins`, and the labels go with the
/// network when `netbr rm` deletes the file.
pub fn set_labels(
    ctx: &Ctx,
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let path = ctx.root.join("networks").join(format!("{name}.json"));
    let io = |e: std::io::Error| Error::Daemon(format!("network labels: {}: {e}", path.display()));
    let mut conf: Value = serde_json::from_slice(&std::fs::read(&path).map_err(io)?)
        .map_err(|e| Error::Daemon(format!("network labels: {}: {e}", path.display())))?;
    conf["labels"] = json!(labels);
    atomicfile::write(&path, &serde_json::to_vec_pretty(&conf).expect("json")).map_err(io)
}

/// The labels of a network from its conflist (`{}` when it has none).
pub fn labels_of(conflist: &Value) -> Value {
    match &conflist["labels"] {
        Value::Object(m) => Value::Object(m.clone()),
        _ => json!({}),
    }
}

/// The names endpoint of a container on a network: its name, aliases and
/// short id at the addresses of `entry` (an entry of NetworkSettings.Networks).
pub fn name_endpoint(
    id: &str,
    name: &str,
    aliases: &[String],
    entry: &Value,
    ctx: &Ctx,
) -> crate::names::Endpoint {
    let mut names = vec![name.to_string()];
    // The entry's own aliases when it has them: `--network-alias` belongs to
    // the network of `run`, `connect --alias` to the connected one.
    match entry["Aliases"].as_array() {
        Some(a) => names.extend(a.iter().filter_map(Value::as_str).map(String::from)),
        None => names.extend(aliases.iter().cloned()),
    }
    names.push(id[..12.min(id.len())].to_string());
    names.dedup();
    let ips = ["IPAddress", "GlobalIPv6Address"]
        .iter()
        .filter_map(|k| {
            entry[*k]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from)
        })
        .collect();
    crate::names::Endpoint {
        id: id.to_string(),
        names,
        ips,
        hosts: ctx.container_dir(id).join("hosts"),
    }
}

/// A ULA /64 for a network's IPv6 (docker picks from its pools too): from a
/// hash of the root and the name, clear of the host's IPv6 routes and this
/// root's networks.
fn pick_subnet6(ctx: &Ctx, name: &str) -> Result<String> {
    let mut taken: Vec<String> = std::fs::read_to_string("/proc/net/ipv6_route")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let hex = f.first()?;
            let len = u8::from_str_radix(f.get(1)?, 16).ok()?;
            let v = u128::from_str_radix(hex, 16).ok()?;
            (len > 0).then(|| format!("{}/{len}", std::net::Ipv6Addr::from(v)))
        })
        .collect();
    if let Ok(v) = ctx.netbr().arg("ls").json() {
        for n in v.as_array().into_iter().flatten() {
            for s in n["subnets"].as_array().into_iter().flatten() {
                taken.extend(s.as_str().map(String::from));
            }
        }
    }
    let h = fnv(format!("{}\0{name}", ctx.root.display()).as_bytes());
    for i in 0..64u64 {
        let x = h.wrapping_add(i.wrapping_mul(0x9e3779b97f4a7c15));
        let cand = format!(
            "fd{:02x}:{:x}:{:x}::/64",
            x & 0xff,
            (x >> 8) & 0xffff,
            (x >> 24) & 0xffff
        );
        let c = ipam_overlap_key(&cand);
        if !taken.iter().any(|t| overlaps6(c, ipam_overlap_key(t))) {
            return Ok(cand);
        }
    }
    fail("could not find an available IPv6 /64 among fd00::/8")
}

fn ipam_overlap_key(s: &str) -> Option<(u128, u8)> {
    let (ip, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    let v = u128::from(ip.parse::<std::net::Ipv6Addr>().ok()?);
    Some((v, len))
}

fn overlaps6(a: Option<(u128, u8)>, b: Option<(u128, u8)>) -> bool {
    let (Some((a, la)), Some((b, lb))) = (a, b) else {
        return false;
    };
    let p = la.min(lb);
    let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
    a & mask == b & mask
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
