//! NAT, port mappings and forwarding rules, in chains of our own:
//!
//! - nat `MYDOCKER`: DNAT per port mapping; jumped to from nat PREROUTING and
//!   nat OUTPUT for local destinations (`-m addrtype --dst-type LOCAL`, so
//!   127.0.0.1 and the host's own addresses both work).
//! - nat `MYDOCKER-POSTROUTING`: MASQUERADE of the subnet to the outside, of
//!   127.0.0.0/8 going out of the bridge (DNATed localhost traffic; needs
//!   `route_localnet` on the bridge) and of a container reaching its own
//!   published port (hairpin).
//! - filter `MYDOCKER-FORWARD`: ACCEPT in and out of the bridge; jumped to from FORWARD.
//!
//! IPv6 rules are the same in ip6tables's tables (same chains, `[ip]:port`
//! DNAT, `/128` hairpin), minus the loopback MASQUERADE: IPv6 never routes
//! `::1` out of the host, so a port published on `::1` is not reachable
//! (docker answers it with its userland proxy; we have none). A mapping
//! without a host address gets a rule in each family the container has an
//! address of.
//!
//! Every rule carries `-m comment --comment mydocker:<network>` (per
//! network) or `mydocker:<network>:<container>` (per container); jumps carry
//! `mydocker`. Deletion removes exactly the lines with the right comment, as
//! iptables-save prints them. A chain left empty loses its jump and is
//! removed. One `iptables-save` and at most one `iptables-restore --noflush`
//! per operation, under flock on `/run/mydocker/iptables.lock` (fixed: the
//! rules are machine-wide whatever `MYDOCKER_RUN` says).
//!
//! Lifetimes: the network's rules (MASQUERADE of the subnet and of
//! localhost, the FORWARD accepts) are put in by the first ADD and stay until
//! `netbr rm` ([`del_network`]); a container's rules (DNAT and hairpin per
//! port mapping) live from its ADD to its DEL. [`crate::marks`] remembers what
//! is in place, so an ADD or DEL without port mappings on a network whose
//! rules are in runs no iptables command at all.

use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub const DNAT_CHAIN: &str = "MYDOCKER";
pub const POST_CHAIN: &str = "MYDOCKER-POSTROUTING";
pub const FWD_CHAIN: &str = "MYDOCKER-FORWARD";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("iptables lock {path}: {err}")]
    Lock { path: PathBuf, err: std::io::Error },
    #[error("run {cmd}: {err}")]
    Spawn { cmd: String, err: std::io::Error },
    #[error("{cmd} failed: {stderr}")]
    Failed { cmd: String, stderr: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The rule set of one address family: `iptables` or `ip6tables`, which
/// hold the same chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fam {
    V4,
    V6,
}

impl Fam {
    pub fn of(ip: IpAddr) -> Fam {
        if ip.is_ipv4() {
            Fam::V4
        } else {
            Fam::V6
        }
    }
    fn save_cmd(self) -> &'static str {
        match self {
            Fam::V4 => "iptables-save",
            Fam::V6 => "ip6tables-save",
        }
    }
    fn restore_cmd(self) -> &'static str {
        match self {
            Fam::V4 => "iptables-restore",
            Fam::V6 => "ip6tables-restore",
        }
    }
    fn host_len(self) -> u8 {
        match self {
            Fam::V4 => 32,
            Fam::V6 => 128,
        }
    }
}

/// One port mapping, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    /// None: every local address of both families (docker publishes on
    /// 0.0.0.0 and ::).
    pub host_ip: Option<IpAddr>,
}

impl Mapping {
    /// Whether the mapping has a rule in family `fam`.
    pub fn in_fam(&self, fam: Fam) -> bool {
        self.host_ip.is_none_or(|h| Fam::of(h) == fam)
    }
}

/// The network-level facts the rules need.
#[derive(Debug, Clone)]
pub struct Net<'a> {
    pub name: &'a str,
    pub bridge: &'a str,
    /// `a.b.c.d/n` or `fd00::/64`, host bits clear: the network's subnets
    /// of the family the rules are for.
    pub subnets: Vec<String>,
    pub masquerade: bool,
}

pub fn net_tag(net: &str) -> String {
    format!("mydocker:{net}")
}
pub fn ctr_tag(net: &str, id: &str) -> String {
    format!("mydocker:{net}:{id}")
}

/// Held while we read and edit the rules.
pub struct Lock(#[allow(dead_code)] atomicfile::Lock);

/// The rules are one machine-wide resource, so the lock is at one fixed
/// path whatever `MYDOCKER_RUN` says.
pub const LOCK_PATH: &str = "/run/mydocker/iptables.lock";

pub fn lock() -> Result<Lock> {
    let path = PathBuf::from(LOCK_PATH);
    let dir = path.parent().expect("absolute").to_path_buf();
    let err = |err| Error::Lock {
        path: path.clone(),
        err,
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    atomicfile::lock(&path).map(Lock).map_err(err)
}

/// The rules of one table as iptables-save prints them.
#[derive(Debug, Default, Clone)]
pub struct Table {
    pub chains: HashSet<String>,
    /// `-A CHAIN ...` lines.
    pub rules: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub struct Tables {
    pub nat: Table,
    pub filter: Table,
}

/// Parses iptables-save output (nat and filter only).
pub fn parse_save(text: &str) -> Tables {
    let mut t = Tables::default();
    let mut cur: Option<&mut Table> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            cur = match name.trim() {
                "nat" => Some(&mut t.nat),
                "filter" => Some(&mut t.filter),
                _ => None,
            };
            continue;
        }
        let Some(tab) = cur.as_deref_mut() else {
            continue;
        };
        if let Some(c) = line.strip_prefix(':') {
            if let Some(name) = c.split_whitespace().next() {
                tab.chains.insert(name.to_string());
            }
        } else if line.starts_with("-A ") {
            tab.rules.push(line.to_string());
        }
    }
    t
}

fn load(fam: Fam) -> Result<Tables> {
    let out = Command::new(fam.save_cmd())
        .stdin(Stdio::null())
        .output()
        .map_err(|err| Error::Spawn {
            cmd: fam.save_cmd().into(),
            err,
        })?;
    if !out.status.success() {
        return Err(Error::Failed {
            cmd: fam.save_cmd().into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().into(),
        });
    }
    Ok(parse_save(&String::from_utf8_lossy(&out.stdout)))
}

fn restore(fam: Fam, batch: &str) -> Result<()> {
    let cmd = format!("{} -w --noflush", fam.restore_cmd());
    let cmd = cmd.as_str();
    let mut child = Command::new(fam.restore_cmd())
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| Error::Spawn {
            cmd: cmd.into(),
            err,
        })?;
    let _ = child
        .stdin
        .take()
        .expect("piped")
        .write_all(batch.as_bytes());
    let out = child.wait_with_output().map_err(|err| Error::Spawn {
        cmd: cmd.into(),
        err,
    })?;
    if !out.status.success() {
        return Err(Error::Failed {
            cmd: cmd.into(),
            stderr: format!(
                "{} (batch: {})",
                String::from_utf8_lossy(&out.stderr).trim(),
                batch.replace('\n', "; ")
            ),
        });
    }
    Ok(())
}

/// The chain a `-A CHAIN ...` line belongs to.
pub fn chain_of(rule: &str) -> Option<&str> {
    rule.strip_prefix("-A ")?.split_whitespace().next()
}

/// The `-j TARGET` of a rule.
fn target_of(rule: &str) -> Option<&str> {
    let mut it = rule.split_whitespace();
    while let Some(w) = it.next() {
        if w == "-j" {
            return it.next();
        }
    }
    None
}

/// The `--comment` of a rule, unquoted.
pub fn comment_of(rule: &str) -> Option<&str> {
    let rest = &rule[rule.find("--comment ")? + "--comment ".len()..];
    if let Some(q) = rest.strip_prefix('"') {
        q.split('"').next()
    } else {
        rest.split_whitespace().next()
    }
}

fn delete_line(rule: &str) -> String {
    format!("-D {}", &rule[3..])
}

/// The edits of one table, turned into restore lines.
#[derive(Default)]
struct Edit {
    lines: Vec<String>,
    removed: HashSet<String>,
}

impl Edit {
    fn remove(&mut self, rule: &str) {
        if self.removed.insert(rule.to_string()) {
            self.lines.push(delete_line(rule));
        }
    }
}

/// Removes the jumps to and the chain itself for each of `chains` left empty.
fn drop_empty_chains(tab: &Table, edit: &mut Edit, added: &[String], chains: &[&str]) {
    for chain in chains {
        if !tab.chains.contains(*chain) || added.iter().any(|r| chain_of(r) == Some(chain)) {
            continue;
        }
        let left = tab
            .rules
            .iter()
            .any(|r| chain_of(r) == Some(chain) && !edit.removed.contains(r));
        if left {
            continue;
        }
        for r in &tab.rules {
            if target_of(r) == Some(chain) {
                edit.remove(r);
            }
        }
        edit.lines.push(format!("-X {chain}"));
    }
}

fn batch(nat: Edit, filter: Edit) -> String {
    let mut s = String::new();
    for (name, e) in [("nat", nat), ("filter", filter)] {
        if e.lines.is_empty() {
            continue;
        }
        s.push_str(&format!("*{name}\n"));
        for l in e.lines {
            s.push_str(&l);
            s.push('\n');
        }
        s.push_str("COMMIT\n");
    }
    s
}

/// The rules ADD wants for a network and container, given what exists.
/// Returns the nat and filter edits. Pure, for tests.
fn plan_add(t: &Tables, net: &Net, id: &str, ip: IpAddr, maps: &[Mapping]) -> (Edit, Edit) {
    let fam = Fam::of(ip);
    let hl = fam.host_len();
    // ip6tables-save prints IPv6 destinations as [addr]:port.
    let to = match ip {
        IpAddr::V4(v) => v.to_string(),
        IpAddr::V6(v) => format!("[{v}]"),
    };
    let (ntag, ctag) = (net_tag(net.name), ctr_tag(net.name, id));
    let mut nat = Edit::default();
    let mut filter = Edit::default();
    // A retried ADD replaces the container's rules.
    for r in &t.nat.rules {
        if comment_of(r) == Some(ctag.as_str()) {
            nat.remove(r);
        }
    }
    let mut nat_adds: Vec<String> = Vec::new();
    let has = |tab: &Table, chain: &str, needle: &str| {
        tab.rules.iter().any(|r| {
            chain_of(r) == Some(chain) && comment_of(r) == Some(ntag.as_str()) && r.contains(needle)
        })
    };
    for s in &net.subnets {
        if net.masquerade && !has(&t.nat, POST_CHAIN, &format!("-s {s} ")) {
            nat_adds.push(format!(
                "-A {POST_CHAIN} -s {s} ! -d {s} -m comment --comment \"{ntag}\" -j MASQUERADE"
            ));
        }
    }
    // DNAT of loopback to the bridge: IPv4 only (IPv6 never routes ::1 out).
    if fam == Fam::V4 && !has(&t.nat, POST_CHAIN, &format!("-o {} ", net.bridge)) {
        nat_adds.push(format!(
            "-A {POST_CHAIN} -s 127.0.0.0/8 -o {} -m comment --comment \"{ntag}\" -j MASQUERADE",
            net.bridge
        ));
    }
    for m in maps.iter().filter(|m| m.in_fam(fam)) {
        let dst = m
            .host_ip
            .map(|h| format!("-d {h}/{hl} "))
            .unwrap_or_default();
        nat_adds.push(format!(
            "-A {DNAT_CHAIN} {dst}-p {p} -m {p} --dport {hp} -m comment --comment \"{ctag}\" -j DNAT --to-destination {to}:{cp}",
            p = m.protocol,
            hp = m.host_port,
            cp = m.container_port
        ));
        nat_adds.push(format!(
            "-A {POST_CHAIN} -s {ip}/{hl} -d {ip}/{hl} -p {p} -m {p} --dport {cp} -m comment --comment \"{ctag}\" -j MASQUERADE",
            p = m.protocol,
            cp = m.container_port
        ));
    }
    // Chains and jumps first, then the rules into them.
    let jump_exists = |tab: &Table, from: &str, to: &str| {
        tab.rules
            .iter()
            .any(|r| chain_of(r) == Some(from) && target_of(r) == Some(to))
    };
    let needs = |chain: &str| {
        nat_adds.iter().any(|r| chain_of(r) == Some(chain))
            || t.nat
                .rules
                .iter()
                .any(|r| chain_of(r) == Some(chain) && !nat.removed.contains(r))
    };
    let mut head = Vec::new();
    for (chain, froms, extra) in [
        (
            DNAT_CHAIN,
            &["PREROUTING", "OUTPUT"][..],
            "-m addrtype --dst-type LOCAL ",
        ),
        (POST_CHAIN, &["POSTROUTING"][..], ""),
    ] {
        if !needs(chain) {
            continue;
        }
        if !t.nat.chains.contains(chain) {
            head.push(format!(":{chain} - [0:0]"));
        }
        for from in froms {
            if !jump_exists(&t.nat, from, chain) {
                head.push(format!(
                    "-A {from} {extra}-m comment --comment \"mydocker\" -j {chain}"
                ));
            }
        }
    }
    let mut lines = head;
    lines.append(&mut nat.lines);
    lines.extend(nat_adds);
    nat.lines = lines;
    // If the container had mappings and now has none, its chain may be empty.
    let added: Vec<String> = nat
        .lines
        .iter()
        .filter(|l| l.starts_with("-A "))
        .cloned()
        .collect();
    drop_empty_chains(&t.nat, &mut nat, &added, &[DNAT_CHAIN]);

    let mut fadds = Vec::new();
    for dir in ["-i", "-o"] {
        if !has(&t.filter, FWD_CHAIN, &format!("{dir} {} ", net.bridge)) {
            fadds.push(format!(
                "-A {FWD_CHAIN} {dir} {} -m comment --comment \"{ntag}\" -j ACCEPT",
                net.bridge
            ));
        }
    }
    if !fadds.is_empty() {
        if !t.filter.chains.contains(FWD_CHAIN) {
            filter.lines.push(format!(":{FWD_CHAIN} - [0:0]"));
        }
        if !jump_exists(&t.filter, "FORWARD", FWD_CHAIN) {
            filter.lines.push(format!(
                "-I FORWARD 1 -m comment --comment \"mydocker\" -j {FWD_CHAIN}"
            ));
        }
        filter.lines.extend(fadds);
    }
    (nat, filter)
}

/// Installs the network's rules (if missing) and the container's (replacing
/// old ones).
pub fn add(net: &Net, id: &str, ip: IpAddr, maps: &[Mapping]) -> Result<()> {
    let fam = Fam::of(ip);
    let _l = lock()?;
    let t = load(fam)?;
    let (nat, filter) = plan_add(&t, net, id, ip, maps);
    let b = batch(nat, filter);
    if b.is_empty() {
        return Ok(());
    }
    restore(fam, &b)
}

/// Which rules to delete.
pub enum Scope<'a> {
    /// One container's rules.
    Container { id: &'a str },
    /// Everything of the network: its rules and its containers'. With the
    /// bridge and subnet known, only the rules of that bridge and subnet
    /// (network names are per `--root`, so another root's network of the
    /// same name keeps its rules); without, every rule carrying its name.
    Network {
        bridge: Option<&'a str>,
        /// The network's subnets of the family (empty: by name only).
        subnets: &'a [String],
    },
}

/// The container address a per-container rule points at: DNAT's
/// `--to-destination IP:PORT` (`[IP]:PORT` for IPv6) or the hairpin's
/// `-s IP/32` (`/128`).
fn ctr_ip(rule: &str) -> Option<IpAddr> {
    let mut it = rule.split_whitespace();
    while let Some(w) = it.next() {
        match w {
            "--to-destination" => {
                let d = it.next()?;
                if let Some(v6) = d.strip_prefix('[') {
                    return v6.split(']').next()?.parse().ok();
                }
                return d.split(':').next()?.parse().ok();
            }
            "-s" => {
                let a = it.next()?;
                if let Some(ip) = a.strip_suffix("/32").or_else(|| a.strip_suffix("/128")) {
                    return ip.parse().ok();
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `ip` is in the CIDR `subnet` (either family).
fn in_subnet(subnet: &str, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => ipam::bitmap::parse_subnet(subnet).is_some_and(|s| s.contains(v)),
        IpAddr::V6(v) => ipam::v6::Subnet6::parse(subnet).is_some_and(|s| s.offset(v).is_some()),
    }
}

fn plan_del(t: &Tables, net: &str, scope: &Scope) -> (Edit, Edit) {
    let ntag = net_tag(net);
    let prefix = format!("{ntag}:");
    let mut edits = [Edit::default(), Edit::default()];
    let tabs = [&t.nat, &t.filter];
    let is_ours = |r: &str| -> bool {
        let Some(c) = comment_of(r) else {
            return false;
        };
        match scope {
            Scope::Container { id } => c == ctr_tag(net, id),
            Scope::Network { bridge, subnets } => {
                let net_rule = c == ntag;
                let ctr_rule = c.starts_with(&prefix);
                let Some(bridge) = bridge.filter(|_| !subnets.is_empty()) else {
                    return net_rule || ctr_rule;
                };
                let padded = format!("{r} ");
                (net_rule
                    && (subnets
                        .iter()
                        .any(|s| padded.contains(&format!(" -s {s} ")))
                        || padded.contains(&format!(" -o {bridge} "))
                        || padded.contains(&format!(" -i {bridge} "))))
                    || (ctr_rule
                        && ctr_ip(r).is_some_and(|ip| subnets.iter().any(|s| in_subnet(s, ip))))
            }
        }
    };
    for (tab, edit) in tabs.iter().zip(edits.iter_mut()) {
        for r in &tab.rules {
            if is_ours(r) {
                edit.remove(r);
            }
        }
    }
    let [mut nat, mut filter] = edits;
    drop_empty_chains(&t.nat, &mut nat, &[], &[DNAT_CHAIN, POST_CHAIN]);
    drop_empty_chains(&t.filter, &mut filter, &[], &[FWD_CHAIN]);
    (nat, filter)
}

/// Deletes rules per `scope`; returns whether there were any. Nothing to
/// delete is success.
fn del(fam: Fam, net: &str, scope: Scope) -> Result<bool> {
    let _l = lock()?;
    let t = match load(fam) {
        Ok(t) => t,
        // A host without ip6tables has no IPv6 rules of ours either.
        Err(Error::Spawn { err, .. })
            if fam == Fam::V6 && err.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(false)
        }
        Err(e) => return Err(e),
    };
    let (nat, filter) = plan_del(&t, net, &scope);
    let b = batch(nat, filter);
    if b.is_empty() {
        return Ok(false);
    }
    restore(fam, &b)?;
    Ok(true)
}

/// Deletes a container's rules (DEL) in family `fam`.
pub fn del_container(fam: Fam, net: &str, id: &str) -> Result<()> {
    del(fam, net, Scope::Container { id }).map(|_| ())
}

/// Deletes the rules of a network, and of its containers, on `bridge` with
/// `subnets` (`netbr rm`, or the last DEL of a network netbr did not
/// create), in both families. Returns whether there were any.
pub fn del_network(net: &str, bridge: &str, subnets: &[String]) -> Result<bool> {
    let (v6, v4): (Vec<String>, Vec<String>) =
        subnets.iter().cloned().partition(|s| s.contains(':'));
    let mut any = del(
        Fam::V4,
        net,
        Scope::Network {
            bridge: Some(bridge),
            subnets: &v4,
        },
    )?;
    if !v6.is_empty() {
        any |= del(
            Fam::V6,
            net,
            Scope::Network {
                bridge: Some(bridge),
                subnets: &v6,
            },
        )?;
    }
    Ok(any)
}

/// The rules (nat and filter) of family `fam` carrying this network's or
/// container's comment.
pub fn rules_of(fam: Fam, net: &str, id: Option<&str>) -> Result<Vec<String>> {
    let t = load(fam)?;
    let want = |c: &str| match id {
        Some(id) => c == ctr_tag(net, id),
        None => c == net_tag(net) || c.starts_with(&format!("{}:", net_tag(net))),
    };
    Ok(t.nat
        .rules
        .iter()
        .chain(t.filter.rules.iter())
        .filter(|r| comment_of(r).is_some_and(want))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVE: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:MYDOCKER - [0:0]\n:MYDOCKER-POSTROUTING - [0:0]\n\
-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment mydocker -j MYDOCKER\n\
-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment mydocker -j MYDOCKER\n\
-A POSTROUTING -m comment --comment mydocker -j MYDOCKER-POSTROUTING\n\
-A MYDOCKER -p tcp -m tcp --dport 8080 -m comment --comment mydocker:n:c1 -j DNAT --to-destination 10.5.0.2:80\n\
-A MYDOCKER-POSTROUTING -s 10.5.0.0/24 ! -d 10.5.0.0/24 -m comment --comment mydocker:n -j MASQUERADE\n\
-A MYDOCKER-POSTROUTING -s 127.0.0.0/8 -o br0 -m comment --comment mydocker:n -j MASQUERADE\n\
-A MYDOCKER-POSTROUTING -s 10.5.0.2/32 -d 10.5.0.2/32 -p tcp -m tcp --dport 80 -m comment --comment mydocker:n:c1 -j MASQUERADE\n\
COMMIT\n*filter\n:FORWARD ACCEPT [0:0]\n";

    fn net() -> Net<'static> {
        Net {
            name: "n",
            bridge: "br0",
            subnets: vec!["10.5.0.0/24".into()],
            masquerade: true,
        }
    }

    #[test]
    fn comments_parse_quoted_or_not() {
        assert_eq!(
            comment_of("-A X -m comment --comment \"a:b\" -j Y"),
            Some("a:b")
        );
        assert_eq!(
            comment_of("-A X -m comment --comment a:b -j Y"),
            Some("a:b")
        );
        assert_eq!(comment_of("-A X -j Y"), None);
    }

    #[test]
    fn add_on_empty_creates_chains_jumps_and_rules() {
        let t = parse_save(
            "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n",
        );
        let maps = [Mapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: None,
        }];
        let (nat, filter) = plan_add(&t, &net(), "c1", "10.5.0.2".parse().unwrap(), &maps);
        let b6 = {
            let n6 = Net {
                subnets: vec!["fd05::/64".into()],
                ..net()
            };
            let (nat, filter) = plan_add(&t, &n6, "c1", "fd05::2".parse().unwrap(), &maps);
            batch(nat, filter)
        };
        assert!(
            b6.contains("-j DNAT --to-destination [fd05::2]:80")
                && b6.contains("-s fd05::2/128 -d fd05::2/128")
                && b6.contains("-s fd05::/64 ! -d fd05::/64")
                && !b6.contains("127.0.0.0/8"),
            "{b6}"
        );
        let b = batch(nat, filter);
        for want in [
            ":MYDOCKER - [0:0]",
            ":MYDOCKER-POSTROUTING - [0:0]",
            "-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment \"mydocker\" -j MYDOCKER",
            "-A MYDOCKER -p tcp -m tcp --dport 8080 -m comment --comment \"mydocker:n:c1\" -j DNAT --to-destination 10.5.0.2:80",
            "-s 10.5.0.0/24 ! -d 10.5.0.0/24 -m comment --comment \"mydocker:n\" -j MASQUERADE",
            ":MYDOCKER-FORWARD - [0:0]",
            "-I FORWARD 1",
        ] {
            assert!(b.contains(want), "missing {want:?} in\n{b}");
        }
    }

    #[test]
    fn add_again_replaces_container_rules_and_keeps_network_ones() {
        let t = parse_save(SAVE);
        let (nat, _) = plan_add(&t, &net(), "c1", "10.5.0.2".parse().unwrap(), &[]);
        let b = batch(nat, Edit::default());
        assert!(b.contains("-D MYDOCKER -p tcp -m tcp --dport 8080"));
        assert!(!b.contains(":MYDOCKER-POSTROUTING"));
        assert!(
            !b.contains("-j MASQUERADE\n-A"),
            "network masquerade is not re-added:\n{b}"
        );
        // MYDOCKER is now empty: its jumps and the chain go.
        assert!(b.contains("-D PREROUTING"));
        assert!(b.contains("-X MYDOCKER\n"));
    }

    #[test]
    fn del_container_keeps_network_rules() {
        let t = parse_save(SAVE);
        let (nat, _) = plan_del(&t, "n", &Scope::Container { id: "c1" });
        let b = batch(nat, Edit::default());
        assert!(b.contains("-D MYDOCKER -p tcp"));
        assert!(b.contains("-D MYDOCKER-POSTROUTING -s 10.5.0.2/32"));
        assert!(!b.contains("mydocker:n -j MASQUERADE"), "{b}");
        assert!(b.contains("-X MYDOCKER\n") && !b.contains("-X MYDOCKER-POSTROUTING"));
    }

    #[test]
    fn del_network_takes_only_its_bridge_and_subnet() {
        // Network "n" of another root: bridge br9, subnet 10.9.0.0/24, one container.
        let other = "-A MYDOCKER-POSTROUTING -s 10.9.0.0/24 ! -d 10.9.0.0/24 -m comment --comment mydocker:n -j MASQUERADE\n\
-A MYDOCKER -p tcp -m tcp --dport 9090 -m comment --comment mydocker:n:c9 -j DNAT --to-destination 10.9.0.2:80\n\
COMMIT\n";
        let t = parse_save(&SAVE.replace("COMMIT\n*filter", &format!("{other}*filter")));
        let subnets = ["10.5.0.0/24".to_string()];
        let scope = Scope::Network {
            bridge: Some("br0"),
            subnets: &subnets,
        };
        let (nat, _) = plan_del(&t, "n", &scope);
        let b = batch(nat, Edit::default());
        for gone in [
            "-s 10.5.0.0/24 ! -d",
            "-s 127.0.0.0/8 -o br0",
            "--dport 8080",
            "-s 10.5.0.2/32",
        ] {
            assert!(b.contains(gone), "{gone} not deleted:\n{b}");
        }
        assert!(
            !b.contains("10.9.0."),
            "the other network's rules stay:\n{b}"
        );
        assert!(!b.contains("-X "), "chains still in use stay:\n{b}");
        // By name alone: everything tagged n.
        let all = Scope::Network {
            bridge: None,
            subnets: &[],
        };
        let (nat, _) = plan_del(&t, "n", &all);
        let b = batch(nat, Edit::default());
        assert!(
            b.contains("10.9.0.2:80") && b.contains("-X MYDOCKER-POSTROUTING"),
            "{b}"
        );
    }

    #[test]
    fn ctr_ip_reads_dnat_and_hairpin() {
        assert_eq!(
            ctr_ip("-A MYDOCKER -p tcp -m tcp --dport 1 -j DNAT --to-destination 10.1.2.3:80"),
            "10.1.2.3".parse().ok()
        );
        assert_eq!(
            ctr_ip("-A P -s 10.1.2.4/32 -d 10.1.2.4/32 -j MASQUERADE"),
            "10.1.2.4".parse().ok()
        );
        assert_eq!(ctr_ip("-A P -s 10.1.2.0/24 -j MASQUERADE"), None);
        assert_eq!(
            ctr_ip("-A MYDOCKER -j DNAT --to-destination [fd00::5]:80"),
            "fd00::5".parse().ok()
        );
        assert_eq!(
            ctr_ip("-A P -s fd00::5/128 -d fd00::5/128 -j MASQUERADE"),
            "fd00::5".parse().ok()
        );
    }

    #[test]
    fn del_of_nothing_is_empty() {
        let t = parse_save("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n");
        let (nat, filter) = plan_del(&t, "n", &Scope::Container { id: "x" });
        assert!(batch(nat, filter).is_empty());
    }
}
