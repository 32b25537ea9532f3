//! The CNI side: the `ipam` section of a network config and the
//! environment in, an address result out. The plumbing (env, dispatch,
//! versions, error JSON) is the `cni-plugin` crate's.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use cni_plugin::{CniError, CniResult, Dns, Env, IpConfig, Plugin, RouteConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::allocation::{self, code, Request};
use crate::bitmap::{parse_subnet, Subnet};

impl From<allocation::Error> for CniError {
    fn from(e: allocation::Error) -> CniError {
        CniError::new(e.cni_code(), e.to_string(), "")
    }
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteConfig>>,
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

fn parse_ip(field: &str, s: &Option<String>) -> Result<Option<Ipv4Addr>, CniError> {
    match s {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| bad_config(format!("ipam.{field}: {s:?} is not an IPv4 address"))),
    }
}

/// The requested address, from CNI_ARGS `IP=`, `runtimeConfig.ips` or `args.cni.ips`.
fn requested_ip(conf: &NetConf, env: &Env) -> Result<Option<Ipv4Addr>, CniError> {
    let mut wanted: Vec<String> = Vec::new();
    if let Some(a) = &env.args {
        if let Some(ip) = cni_plugin::parse_args(a)?.get("IP") {
            wanted.push(ip.clone());
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
    match wanted.first() {
        None => Ok(None),
        Some(w) => {
            let ip = w.split('/').next().unwrap_or_default();
            ip.parse().map(Some).map_err(|_| {
                CniError::new(
                    code::INVALID_ENV,
                    format!("requested IP {w:?} is not an IPv4 address"),
                    "",
                )
            })
        }
    }
}

/// A parsed ADD/DEL/CHECK invocation.
struct Call {
    version: String,
    req: Request,
    routes: Vec<RouteConfig>,
}

fn parse_call(stdin: &[u8], env: &Env, need_subnet: bool) -> Result<Call, CniError> {
    let cni_plugin::Config {
        version,
        name,
        conf,
    } = cni_plugin::decode_config::<NetConf>(stdin)?;
    let ipam = conf
        .ipam
        .clone()
        .ok_or_else(|| bad_config("network config has no ipam section"))?;
    let id = env
        .container_id
        .clone()
        .ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_CONTAINERID is not set", ""))?;
    let ifname = env
        .ifname
        .clone()
        .ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_IFNAME is not set", ""))?;
    let subnet = match &ipam.subnet {
        Some(s) => parse_subnet(s)
            .ok_or_else(|| bad_config(format!("ipam.subnet: {s:?} is not an IPv4 CIDR")))?,
        None if need_subnet => return Err(bad_config("ipam.subnet is required")),
        None => Subnet::new(Ipv4Addr::UNSPECIFIED, 0).expect("/0 is a prefix"),
    };
    let req = Request {
        data_dir: ipam.data_dir.clone().unwrap_or_else(default_data_dir),
        network: name,
        subnet,
        gateway: parse_ip("gateway", &ipam.gateway)?,
        range_start: parse_ip("rangeStart", &ipam.range_start)?,
        range_end: parse_ip("rangeEnd", &ipam.range_end)?,
        id,
        ifname,
        ip: requested_ip(&conf, env)?,
    };
    let routes = ipam.routes.clone().unwrap_or_else(|| {
        vec![RouteConfig {
            dst: "0.0.0.0/0".into(),
            gw: None,
        }]
    });
    Ok(Call {
        version,
        req,
        routes,
    })
}

fn result_for(
    version: &str,
    address: String,
    gateway: Option<Ipv4Addr>,
    routes: Vec<RouteConfig>,
) -> CniResult {
    let old = version.starts_with("0.");
    CniResult {
        cni_version: version.into(),
        interfaces: vec![],
        ips: vec![IpConfig {
            address,
            gateway: gateway.map(|g| g.to_string()),
            interface: None,
            version: old.then(|| "4".to_string()),
        }],
        routes,
        dns: Dns::default(),
    }
}

/// The IPAM plugin: ADD allocates, DEL releases, CHECK asks.
pub struct Ipam;

impl Plugin for Ipam {
    type Error = CniError;

    fn add(&self, env: &Env, stdin: &[u8]) -> Result<Value, CniError> {
        let call = parse_call(stdin, env, true)?;
        let a = allocation::allocate(&call.req)?;
        let r = result_for(&call.version, a.address, a.gateway, call.routes);
        Ok(serde_json::to_value(r).expect("serializable"))
    }

    fn del(&self, env: &Env, stdin: &[u8]) -> Result<(), CniError> {
        let call = parse_call(stdin, env, false)?;
        let r = &call.req;
        allocation::release(&r.data_dir, &r.network, &r.id, &r.ifname)?;
        Ok(())
    }

    fn check(&self, env: &Env, stdin: &[u8]) -> Result<(), CniError> {
        let call = parse_call(stdin, env, false)?;
        let r = &call.req;
        match allocation::held(&r.data_dir, &r.network, &r.id, &r.ifname)? {
            Some(_) => Ok(()),
            None => Err(CniError::new(
                code::UNKNOWN_CONTAINER,
                format!(
                    "no address held by {}/{} in network {}",
                    r.id, r.ifname, r.network
                ),
                "",
            )),
        }
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
