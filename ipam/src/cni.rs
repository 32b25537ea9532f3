//! The CNI side: network config and environment in, result or error JSON
//! out. The result and error types are public so `netbr` reuses them.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::allocation::{self, code, Request};
use crate::bitmap::Subnet;

pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
pub const DEFAULT_VERSION: &str = "1.0.0";

/// A CNI error: `{"cniVersion","code","msg","details"}` on stdout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CniError {
    #[serde(default)]
    pub cni_version: String,
    pub code: u32,
    pub msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            cni_version: DEFAULT_VERSION.into(),
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }
    /// Exit status: 2 for bad input (config, env, version, decode), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self.code {
            1 | 2 | 4 | 6 | 7 => 2,
            _ => 1,
        }
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.msg)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

impl From<allocation::Error> for CniError {
    fn from(e: allocation::Error) -> CniError {
        CniError::new(e.cni_code(), e.to_string(), "")
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IpConfig {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    /// Only in 0.3.x/0.4.0 results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RouteConfig {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A CNI 1.0 success result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub dns: Dns,
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
    cni_version: Option<String>,
    #[serde(default)]
    name: Option<String>,
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

/// The environment variables the plugin reads.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub command: String,
    pub container_id: Option<String>,
    pub ifname: Option<String>,
    pub args: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Env {
            command: get("CNI_COMMAND").unwrap_or_default(),
            container_id: get("CNI_CONTAINERID"),
            ifname: get("CNI_IFNAME"),
            args: get("CNI_ARGS"),
        }
    }
}

/// Parses `CNI_ARGS` (`K=V;K2=V2`).
pub fn parse_cni_args(s: &str) -> Result<HashMap<String, String>, CniError> {
    let mut m = HashMap::new();
    for kv in s.split(';').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                "invalid CNI_ARGS",
                format!("{kv:?} is not K=V"),
            )
        })?;
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

fn version_of(conf: &NetConf) -> Result<String, CniError> {
    let v = conf
        .cni_version
        .clone()
        .unwrap_or_else(|| DEFAULT_VERSION.into());
    if !SUPPORTED_VERSIONS.contains(&v.as_str()) {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!("unsupported cniVersion {v}"),
            format!("supported: {}", SUPPORTED_VERSIONS.join(", ")),
        ));
    }
    Ok(v)
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
        if let Some(ip) = parse_cni_args(a)?.get("IP") {
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
    let conf: NetConf = serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(
            code::DECODE,
            "cannot decode the network config",
            e.to_string(),
        )
    })?;
    let version = version_of(&conf)?;
    let name = conf
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad_config("network config has no name"))?;
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
        Some(s) => Subnet::parse(s)
            .ok_or_else(|| bad_config(format!("ipam.subnet: {s:?} is not an IPv4 CIDR")))?,
        None if need_subnet => return Err(bad_config("ipam.subnet is required")),
        None => Subnet { base: 0, prefix: 0 },
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

/// Runs one CNI command; `Ok(Some(json))` is printed on stdout, `Ok(None)` prints nothing.
pub fn run(env: &Env, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    match env.command.as_str() {
        "VERSION" => Ok(Some(serde_json::json!({
            "cniVersion": "1.1.0",
            "supportedVersions": SUPPORTED_VERSIONS,
        }))),
        "ADD" => {
            let call = parse_call(stdin, env, true)?;
            let a = allocation::allocate(&call.req)?;
            let r = result_for(&call.version, a.address, a.gateway, call.routes);
            Ok(Some(serde_json::to_value(r).expect("serializable")))
        }
        "DEL" => {
            let call = parse_call(stdin, env, false)?;
            allocation::release(
                &call.req.data_dir,
                &call.req.network,
                &call.req.id,
                &call.req.ifname,
            )?;
            Ok(None)
        }
        "CHECK" => {
            let call = parse_call(stdin, env, false)?;
            let held = allocation::held(
                &call.req.data_dir,
                &call.req.network,
                &call.req.id,
                &call.req.ifname,
            )?;
            match held {
                Some(_) => Ok(None),
                None => Err(CniError::new(
                    code::UNKNOWN_CONTAINER,
                    format!(
                        "no address held by {}/{} in network {}",
                        call.req.id, call.req.ifname, call.req.network
                    ),
                    "",
                )),
            }
        }
        "GC" | "STATUS" => Ok(None),
        "" => Err(CniError::new(
            code::INVALID_ENV,
            "CNI_COMMAND is not set",
            "",
        )),
        other => Err(CniError::new(
            code::INVALID_ENV,
            format!("unknown CNI_COMMAND {other:?}"),
            "expected ADD, DEL, CHECK or VERSION",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cni_args_parse() {
        let m = parse_cni_args("IgnoreUnknown=1;IP=10.1.0.5").unwrap();
        assert_eq!(m["IP"], "10.1.0.5");
        assert!(parse_cni_args("junk").is_err());
    }

    #[test]
    fn unsupported_version_is_code_1() {
        let env = Env {
            command: "ADD".into(),
            container_id: Some("c".into()),
            ifname: Some("eth0".into()),
            args: None,
        };
        let e = run(
            &env,
            br#"{"cniVersion":"9.9.9","name":"n","ipam":{"subnet":"10.0.0.0/24"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(e.exit_code(), 2);
    }
}
