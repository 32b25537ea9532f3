//! The CNI side: the `ipam` section of a network config and the
//! environment in, an address result out. The plumbing (env, dispatch,
//! versions, error JSON) is the `cni-plugin` crate's.

use std::net::IpAddr;
use std::path::PathBuf;

use cni_plugin::{CniError, CniResult, Dns, Env, IpConfig, Plugin, RouteConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::allocation::{self, code};
use crate::pools::{self, Range, Sets};

impl From<allocation::Error> for CniError {
    fn from(e: allocation::Error) -> CniError {
        CniError::new(e.cni_code(), e.to_string(), "")
    }
}

/// One range of a range set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RangeConf {
    pub subnet: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// The `ipam` section of a network config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpamConf {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_end: Option<String>,
    /// host-local's range sets: one address per set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<Vec<RangeConf>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteConfig>>,
}

impl IpamConf {
    /// The range sets: `ranges`, or the single range of `subnet` (with
    /// `rangeStart`, `rangeEnd`, `gateway`) as one set.
    pub fn range_sets(&self) -> Result<Vec<Vec<Range>>, CniError> {
        let bad = |e: pools::Error| bad_config(e.to_string());
        let mut sets = Vec::new();
        if let Some(s) = &self.subnet {
            if !s.is_empty() {
                sets.push(vec![Range::parse(
                    "ipam",
                    s,
                    self.range_start.as_deref(),
                    self.range_end.as_deref(),
                    self.gateway.as_deref(),
                )
                .map_err(bad)?]);
            }
        }
        for (i, set) in self.ranges.iter().flatten().enumerate() {
            let mut v = Vec::new();
            for (j, r) in set.iter().enumerate() {
                v.push(
                    Range::parse(
                        &format!("ipam.ranges[{i}][{j}]"),
                        &r.subnet,
                        r.range_start.as_deref(),
                        r.range_end.as_deref(),
                        r.gateway.as_deref(),
                    )
                    .map_err(bad)?,
                );
            }
            sets.push(v);
        }
        Ok(sets)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NetConf {
    #[serde(default)]
    ipam: Option<IpamConf>,
    #[serde(default)]
    runtime_config: Option<RuntimeConfig>,
    #[serde(default)]
    args: Option<Value>,
    /// CNI 1.1 GC: the attachments still in use.
    #[serde(default, rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<Attachment>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Attachment {
    #[serde(default, rename = "containerID")]
    container_id: String,
    #[serde(default)]
    ifname: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeConfig {
    #[serde(default)]
    ips: Vec<String>,
}

/// The data dir when the config names none: `$MYDOCKER_ROOT/ipam` or
/// `/var/lib/mydocker/ipam`.
pub fn default_data_dir() -> PathBuf {
    let root = std::env::var_os("MYDOCKER_ROOT")
        .filter(|r| !r.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/mydocker"));
    root.join("ipam")
}

fn bad_config(msg: impl Into<String>) -> CniError {
    CniError::new(code::INVALID_CONFIG, msg, "")
}

/// The requested addresses, from CNI_ARGS `IP=` (comma-separated),
/// `runtimeConfig.ips` or `args.cni.ips`.
fn requested_ips(conf: &NetConf, env: &Env) -> Result<Vec<IpAddr>, CniError> {
    let mut wanted: Vec<String> = Vec::new();
    if let Some(a) = &env.args {
        if let Some(ip) = cni_plugin::parse_args(a)?.get("IP") {
            wanted.extend(ip.split(',').map(String::from));
        }
    }
    if let Some(rc) = &conf.runtime_config {
        wanted.extend(rc.ips.iter().cloned());
    }
    if let Some(ips) = conf
        .args
        .as_ref()
        .and_then(|a| a.pointer("/cni/ips"))
        .and_then(|v| v.as_array())
    {
        wanted.extend(ips.iter().filter_map(|v| v.as_str().map(String::from)));
    }
    let mut out: Vec<IpAddr> = Vec::new();
    for w in wanted.iter().filter(|w| !w.is_empty()) {
        let ip: IpAddr = w
            .split('/')
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|_| {
                CniError::new(
                    code::INVALID_ENV,
                    format!("requested IP {w:?} is not an IP address"),
                    "",
                )
            })?;
        // One per family: the first asked for wins.
        if !out.iter().any(|o| o.is_ipv4() == ip.is_ipv4()) {
            out.push(ip);
        }
    }
    Ok(out)
}

/// A parsed ADD/DEL/CHECK/GC invocation.
struct Call {
    version: String,
    network: String,
    data_dir: PathBuf,
    ipam: IpamConf,
    conf: NetConf,
}

fn parse_call(stdin: &[u8]) -> Result<Call, CniError> {
    let cni_plugin::Config {
        version,
        name,
        conf,
    } = cni_plugin::decode_config::<NetConf>(stdin)?;
    let ipam = conf
        .ipam
        .clone()
        .ok_or_else(|| bad_config("network config has no ipam section"))?;
    crate::store::check_name(&name).map_err(|e| bad_config(e.to_string()))?;
    Ok(Call {
        version,
        network: name,
        data_dir: ipam.data_dir.clone().unwrap_or_else(default_data_dir),
        ipam,
        conf,
    })
}

fn owner(env: &Env) -> Result<(String, String), CniError> {
    let id = env
        .container_id
        .clone()
        .ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_CONTAINERID is not set", ""))?;
    let ifname = env
        .ifname
        .clone()
        .ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_IFNAME is not set", ""))?;
    Ok((id, ifname))
}

impl Call {
    fn sets(&self) -> Result<Sets, CniError> {
        let sets = self.ipam.range_sets()?;
        if sets.is_empty() {
            return Err(bad_config("ipam.subnet or ipam.ranges is required"));
        }
        Sets::new(&self.network, self.data_dir.clone(), sets).map_err(CniError::from)
    }
}

fn result_for(version: &str, addrs: &[pools::Address], routes: Vec<RouteConfig>) -> CniResult {
    let old = version.starts_with("0.");
    CniResult {
        cni_version: version.into(),
        interfaces: vec![],
        ips: addrs
            .iter()
            .map(|a| IpConfig {
                address: format!("{}/{}", a.ip, a.prefix),
                gateway: a.gateway.map(|g| g.to_string()),
                interface: None,
                version: old.then(|| if a.ip.is_ipv4() { "4" } else { "6" }.to_string()),
            })
            .collect(),
        routes,
        dns: Dns::default(),
    }
}

impl From<pools::Error> for CniError {
    fn from(e: pools::Error) -> CniError {
        CniError::new(e.cni_code(), e.to_string(), "")
    }
}

/// The IPAM plugin: ADD allocates, DEL releases, CHECK asks, GC releases
/// what is no longer attached, STATUS says the data dir is usable.
pub struct Ipam;

impl Plugin for Ipam {
    type Error = CniError;

    fn add(&self, env: &Env, stdin: &[u8]) -> Result<Value, CniError> {
        let call = parse_call(stdin)?;
        let sets = call.sets()?;
        let (id, ifname) = owner(env)?;
        let wanted = requested_ips(&call.conf, env)?;
        let addrs = sets.allocate(&id, &ifname, &wanted)?;
        // Without routes, a default route per family allocated.
        let routes = call.ipam.routes.clone().unwrap_or_else(|| {
            let mut r = vec![];
            if addrs.iter().any(|a| a.ip.is_ipv4()) {
                r.push(RouteConfig {
                    dst: "0.0.0.0/0".into(),
                    gw: None,
                });
            }
            if addrs.iter().any(|a| a.ip.is_ipv6()) {
                r.push(RouteConfig {
                    dst: "::/0".into(),
                    gw: None,
                });
            }
            r
        });
        let r = result_for(&call.version, &addrs, routes);
        Ok(serde_json::to_value(r).expect("serializable"))
    }

    fn del(&self, env: &Env, stdin: &[u8]) -> Result<(), CniError> {
        let call = parse_call(stdin)?;
        let (id, ifname) = owner(env)?;
        pools::release(&call.data_dir, &call.network, &id, &ifname)?;
        Ok(())
    }

    fn check(&self, env: &Env, stdin: &[u8]) -> Result<(), CniError> {
        let call = parse_call(stdin)?;
        let (id, ifname) = owner(env)?;
        let held = match call.ipam.range_sets()?.is_empty() {
            // Without a subnet: anything held in the network.
            true => pools::list(&call.data_dir, &call.network)?
                .iter()
                .any(|e| e.id == id && e.ifname == ifname),
            false => call.sets()?.held_in_all(&id, &ifname)?,
        };
        if held {
            return Ok(());
        }
        Err(CniError::new(
            code::UNKNOWN_CONTAINER,
            format!(
                "no address held by {id}/{ifname} in network {}",
                call.network
            ),
            "",
        ))
    }

    fn gc(&self, _env: &Env, stdin: &[u8]) -> Result<(), CniError> {
        let call = parse_call(stdin)?;
        let valid: Vec<(String, String)> = call
            .conf
            .valid_attachments
            .iter()
            .flatten()
            .map(|a| (a.container_id.clone(), a.ifname.clone()))
            .collect();
        pools::gc(&call.data_dir, &call.network, &valid)?;
        Ok(())
    }

    fn status(&self, _env: &Env, stdin: &[u8]) -> Result<(), CniError> {
        let call = parse_call(stdin)?;
        // Ready when the data dir can be made and written: ADD needs both.
        atomicfile::private_dir(&call.data_dir)
            .and_then(|_| {
                let probe = call.data_dir.join(".status");
                std::fs::write(&probe, b"")?;
                std::fs::remove_file(&probe)
            })
            .map_err(|e| {
                CniError::new(
                    cni_plugin::code::NOT_AVAILABLE,
                    format!("data dir {} is not writable", call.data_dir.display()),
                    e.to_string(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_version_is_code_1() {
        let env = Env {
            command: "ADD".into(),
            container_id: Some("c".into()),
            ifname: Some("eth0".into()),
            ..Env::default()
        };
        let e = cni_plugin::dispatch(
            &Ipam,
            &env,
            br#"{"cniVersion":"9.9.9","name":"n","ipam":{"subnet":"10.0.0.0/24"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(e.exit_code(), 2);
    }
}
