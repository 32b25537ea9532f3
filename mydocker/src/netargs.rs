//! `docker run`'s network flags beyond `--network`/`-p`: addresses
//! (`--ip`, `--ip6`, `--mac-address`), names (`--network-alias`), the
//! resolver and hosts files (`--dns`, `--dns-search`, `--dns-option`,
//! `--add-host`, `--domainname`) and publishing (`-P`, port ranges). Parsed
//! and validated here into [`NetOpts`], which the container's record keeps.

use crate::error::{fail, Result};
use crate::network::Port;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct NetArgs {
    /// IPv4 address on the network (e.g. 172.30.100.104).
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address on the network (e.g. 2001:db8::33).
    #[arg(long)]
    pub ip6: Option<String>,
    /// Container MAC address (e.g. 92:d0:c6:0a:29:33).
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Add a network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip; ip may be host-gateway).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Container NIS domain name.
    #[arg(long)]
    pub domainname: Option<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
}

/// The validated options, as the record keeps them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct NetOpts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    pub aliases: Vec<String>,
    pub dns: Vec<IpAddr>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// (name, address or `host-gateway`).
    pub extra_hosts: Vec<(String, String)>,
    pub domainname: String,
}

/// A DNS name label set: letters, digits, '-', '.', '_'.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

/// `aa:bb:cc:dd:ee:ff`, unicast.
pub fn valid_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
        && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 0)
}

impl NetOpts {
    pub fn from_args(a: &NetArgs) -> Result<NetOpts> {
        let ip = match &a.ip {
            None => None,
            Some(s) => Some(
                s.parse::<Ipv4Addr>()
                    .or_else(|_| fail(format!("invalid IPv4 address: {s}")))?,
            ),
        };
        let ip6 = match &a.ip6 {
            None => None,
            Some(s) => Some(
                s.parse::<Ipv6Addr>()
                    .or_else(|_| fail(format!("invalid IPv6 address: {s}")))?,
            ),
        };
        if let Some(m) = &a.mac_address {
            if !valid_mac(m) {
                return fail(format!("invalid MAC address: {m}"));
            }
        }
        check_aliases(&a.network_alias)?;
        let mut dns = vec![];
        for d in &a.dns {
            dns.push(
                d.parse::<IpAddr>()
                    .or_else(|_| fail(format!("{d} is not an ip address")))?,
            );
        }
        for d in &a.dns_search {
            if d != "." && !valid_name(d) {
                return fail(format!("{d} is not a valid domain"));
            }
        }
        for o in &a.dns_option {
            if o.is_empty() || o.chars().any(char::is_whitespace) {
                return fail(format!("invalid DNS option: {o:?}"));
            }
        }
        let mut extra_hosts = vec![];
        for h in &a.add_host {
            // host:ip, where ip may be IPv6 (colons) or host-gateway; docker
            // also takes host=ip.
            let (name, addr) = h
                .split_once('=')
                .or_else(|| h.split_once(':'))
                .ok_or_else(|| bad_host(h))?;
            let addr = addr.trim_matches(|c| c == '[' || c == ']');
            if !valid_name(name) || (addr != "host-gateway" && addr.parse::<IpAddr>().is_err()) {
                return Err(bad_host(h));
            }
            extra_hosts.push((name.to_string(), addr.to_string()));
        }
        let domainname = a.domainname.clone().unwrap_or_default();
        if !domainname.is_empty() && !valid_name(&domainname) {
            return fail(format!("invalid domainname format: {domainname}"));
        }
        Ok(NetOpts {
            ip,
            ip6,
            mac: a.mac_address.as_ref().map(|m| m.to_ascii_lowercase()),
            aliases: a.network_alias.clone(),
            dns,
            dns_search: a.dns_search.clone(),
            dns_options: a.dns_option.clone(),
            extra_hosts,
            domainname,
        })
    }
}

/// `--network-alias` / `network connect --alias`: host names.
pub fn check_aliases(aliases: &[String]) -> Result<()> {
    for n in aliases {
        if !valid_name(n) {
            return fail(format!("invalid network alias: {n:?}"));
        }
    }
    Ok(())
}

fn bad_host(h: &str) -> crate::error::Error {
    crate::error::Error::Daemon(format!(
        "invalid argument \"{h}\" for \"--add-host\" flag: invalid IP address in add-host: {h:?}"
    ))
}

/// The port mappings of `-p` (ranges too: `8000-8010:8000-8010`) and of
/// `-P` (every port the image exposes, each to a free host port).
pub fn ports(publish: &[String], publish_all: bool, image_cfg: &Value) -> Result<Vec<Port>> {
    let mut out: Vec<Port> = vec![];
    for p in publish {
        out.extend(crate::network::parse_publish_range(p)?);
    }
    if publish_all {
        let mut exposed: Vec<&String> = image_cfg["ExposedPorts"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        exposed.sort();
        for e in exposed {
            let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
            let already = out
                .iter()
                .any(|o| o.container_port.to_string() == port && o.protocol == proto);
            if !already {
                out.extend(crate::network::parse_publish_range(&format!(
                    "{port}/{proto}"
                ))?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> NetArgs {
        NetArgs::default()
    }

    #[test]
    fn options_validate_like_docker() {
        let mut a = args();
        a.ip6 = Some("fd00::5".into());
        a.add_host = vec![
            "db:10.0.0.5".into(),
            "gw:host-gateway".into(),
            "v6:fd00::7".into(),
        ];
        a.dns = vec!["9.9.9.9".into()];
        a.mac_address = Some("92:D0:C6:0A:29:33".into());
        let o = NetOpts::from_args(&a).unwrap();
        assert_eq!(o.extra_hosts[2], ("v6".into(), "fd00::7".into()));
        assert_eq!(o.mac.as_deref(), Some("92:d0:c6:0a:29:33"));
        for bad in [
            NetArgs {
                ip: Some("300.1.1.1".into()),
                ..args()
            },
            NetArgs {
                add_host: vec!["nohost".into()],
                ..args()
            },
            NetArgs {
                add_host: vec!["h:notanip".into()],
                ..args()
            },
            NetArgs {
                dns: vec!["x".into()],
                ..args()
            },
            NetArgs {
                mac_address: Some("01:00:00:00:00:01".into()),
                ..args()
            },
            NetArgs {
                network_alias: vec!["a b".into()],
                ..args()
            },
        ] {
            assert!(NetOpts::from_args(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn publish_all_takes_the_exposed_ports() {
        let img = serde_json::json!({"ExposedPorts": {"80/tcp": {}, "53/udp": {}}});
        let p = ports(&["8080:80".into()], true, &img).unwrap();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p
            .iter()
            .any(|x| x.container_port == 53 && x.protocol == "udp"));
        assert_eq!(
            p.iter().find(|x| x.container_port == 80).unwrap().host_port,
            8080
        );
    }
}
