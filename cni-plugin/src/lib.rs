//! # cni-plugin: the skeleton of a CNI plugin binary
//!
//! What every CNI plugin (`ipam`, `netbr`) does the same way, per the CNI
//! spec (1.0/1.1, 0.3.x and 0.4.0 configs accepted):
//!
//! - [`is_plugin_call`]: `CNI_COMMAND` set and no arguments. A plugin
//!   binary is then a CNI plugin; otherwise it runs its human CLI.
//! - [`Env`]: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`,
//!   `CNI_ARGS`, `CNI_PATH` (empty counts as unset); [`parse_args`] reads
//!   `CNI_ARGS` (`K=V;K2=V2`).
//! - [`dispatch`]: ADD, DEL and CHECK go to the [`Plugin`]; VERSION is
//!   answered here (`{"cniVersion":"1.1.0","supportedVersions":[..]}`,
//!   stdin unread); GC and STATUS (CNI 1.1) go to the plugin too, whose
//!   default is success with no output; anything else is error code 4.
//! - [`negotiate`]: a config's `cniVersion` (default [`DEFAULT_VERSION`])
//!   must be one of [`SUPPORTED_VERSIONS`], else error code 1.
//! - [`decode_config`]: the network config on stdin into the plugin's own
//!   type (code 6 when it does not decode), its version negotiated and its
//!   `name` required (code 7).
//! - [`Env::validate`] (run by [`dispatch`] for ADD, DEL and CHECK, before
//!   the plugin sees anything): `CNI_CONTAINERID` is 1-256 bytes of
//!   `[A-Za-z0-9_.-]` starting alphanumeric, `CNI_IFNAME` 1-15 bytes, not
//!   `.`/`..`, without `/`, `:` or white space (as libcni checks them),
//!   else code 4 naming the variable; the config's `name` is 1-256 bytes
//!   of the container id's alphabet, else code 7.
//! - [`run`]: the whole CNI mode of a binary: stdin read (not for
//!   VERSION; more than [`MAX_STDIN`] bytes is code 6 and nothing is
//!   done), dispatch, the result JSON on stdout, or the error JSON
//!   (`{"cniVersion","code","msg","details"}`) on stdout plus one line
//!   `TOOL: msg` on stderr; exit 0, 2 for bad input (codes 1, 2, 4, 6, 7),
//!   else 1.
//! - The spec's result types ([`CniResult`], [`Interface`], [`IpConfig`],
//!   [`RouteConfig`], [`Dns`]) and [`CniError`] with the spec's codes in
//!   [`code`]; plugins add their own codes from 100 up.
//! - [`print_json`]: one JSON document and a newline on stdout, a closed
//!   stdout (broken pipe) not being an error: the output rule of the
//!   plugins' human subcommands too.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
/// What a config without `cniVersion` is taken to be, and errors carry.
pub const DEFAULT_VERSION: &str = "1.0.0";
/// The most bytes of stdin a call reads: a config is kilobytes.
pub const MAX_STDIN: u64 = 1 << 20;
/// The longest container id or network name taken.
pub const MAX_ID: usize = 256;

/// What VERSION reports as the plugin's own.
pub const LATEST_VERSION: &str = "1.1.0";

/// The spec's error codes.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO: u32 = 5;
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADD now (CNI 1.1).
    pub const NOT_AVAILABLE: u32 = 50;
}

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

impl std::error::Error for CniError {}

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

/// The CNI environment of one call.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub command: String,
    pub container_id: Option<String>,
    pub netns: Option<PathBuf>,
    pub ifname: Option<String>,
    pub args: Option<String>,
    pub path: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Env {
            command: get("CNI_COMMAND").unwrap_or_default(),
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS").map(PathBuf::from),
            ifname: get("CNI_IFNAME"),
            args: get("CNI_ARGS"),
            path: get("CNI_PATH"),
        }
    }
}

impl Env {
    /// Checks the ids a plugin stores or names things by (see the crate
    /// doc): code 4 naming the variable.
    pub fn validate(&self) -> Result<(), CniError> {
        let bad = |var: &str, why: &str, v: &str| {
            CniError::new(code::INVALID_ENV, format!("invalid {var}: {why}"), shown(v))
        };
        if let Some(id) = &self.container_id {
            if let Err(why) = check_id(id) {
                return Err(bad("CNI_CONTAINERID", why, id));
            }
        }
        if let Some(i) = &self.ifname {
            if let Err(why) = check_ifname(i) {
                return Err(bad("CNI_IFNAME", why, i));
            }
        }
        Ok(())
    }
}

/// A container id or network name: 1-[`MAX_ID`] bytes of `[A-Za-z0-9_.-]`,
/// the first alphanumeric (libcni's rule, with a length bound).
pub fn check_id(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err("empty");
    }
    if b.len() > MAX_ID {
        return Err("longer than 256 bytes");
    }
    if !b[0].is_ascii_alphanumeric()
        || !b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    {
        return Err("only [A-Za-z0-9_.-] allowed, starting alphanumeric");
    }
    Ok(())
}

/// An interface name the kernel takes: 1-15 bytes, not `.` or `..`, no
/// `/`, `:` or white space.
pub fn check_ifname(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 15 {
        return Err("must be 1-15 bytes");
    }
    if s == "."
        || s == ".."
        || s.bytes()
            .any(|c| c == b'/' || c == b':' || c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err("not a valid interface name");
    }
    Ok(())
}

/// A value as shown in an error: its start only, control bytes escaped.
fn shown(v: &str) -> String {
    let head: String = v.chars().take(64).collect();
    let more = if head.len() < v.len() { "..." } else { "" };
    format!("{:?}{more} ({} bytes)", head, v.len())
}

/// True when this process was started as a CNI plugin: `CNI_COMMAND` set
/// and no command-line arguments.
pub fn is_plugin_call() -> bool {
    std::env::var_os("CNI_COMMAND").is_some() && std::env::args_os().len() == 1
}

/// Parses `CNI_ARGS` (`K=V;K2=V2`); a pair without `=` is code 4.
pub fn parse_args(s: &str) -> Result<HashMap<String, String>, CniError> {
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

/// The version a config asks for (`cniVersion`, default
/// [`DEFAULT_VERSION`]), if supported; else code 1.
pub fn negotiate(cni_version: Option<&str>) -> Result<String, CniError> {
    let v = cni_version.unwrap_or(DEFAULT_VERSION);
    if !SUPPORTED_VERSIONS.contains(&v) {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!("unsupported cniVersion {v}"),
            format!("supported: {}", SUPPORTED_VERSIONS.join(", ")),
        ));
    }
    Ok(v.to_string())
}

/// A decoded network config with the fields every plugin checks.
#[derive(Debug, Clone)]
pub struct Config<T> {
    /// The negotiated `cniVersion`.
    pub version: String,
    /// `name`, never empty.
    pub name: String,
    /// The whole config as the plugin's own type.
    pub conf: T,
}

/// Decodes the network config `stdin` (see the crate doc for the codes).
pub fn decode_config<T: serde::de::DeserializeOwned>(stdin: &[u8]) -> Result<Config<T>, CniError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Common {
        #[serde(default)]
        cni_version: Option<String>,
        #[serde(default)]
        name: Option<String>,
    }
    let undecodable = |e: serde_json::Error| {
        CniError::new(
            code::DECODE,
            "cannot decode the network config",
            e.to_string(),
        )
    };
    let conf: T = serde_json::from_slice(stdin).map_err(undecodable)?;
    let common: Common = serde_json::from_slice(stdin).map_err(undecodable)?;
    let version = negotiate(common.cni_version.as_deref())?;
    let name = common
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| CniError::new(code::INVALID_CONFIG, "network config has no name", ""))?;
    check_id(&name).map_err(|why| {
        CniError::new(
            code::INVALID_CONFIG,
            format!("invalid network name: {why}"),
            shown(&name),
        )
    })?;
    Ok(Config {
        version,
        name,
        conf,
    })
}

/// The answer to VERSION.
pub fn version_result() -> Value {
    serde_json::json!({
        "cniVersion": LATEST_VERSION,
        "supportedVersions": SUPPORTED_VERSIONS,
    })
}

/// A plugin's three commands; the config is the raw stdin.
pub trait Plugin {
    /// Its errors: any type a CNI error can be made of, so that callers
    /// in-process (netbr's `connect`) keep a typed error.
    type Error: From<CniError>;
    /// ADD: the result to print.
    fn add(&self, env: &Env, stdin: &[u8]) -> Result<Value, Self::Error>;
    /// DEL: nothing held is success.
    fn del(&self, env: &Env, stdin: &[u8]) -> Result<(), Self::Error>;
    /// CHECK: success when what ADD made is in place.
    fn check(&self, env: &Env, stdin: &[u8]) -> Result<(), Self::Error>;
    /// GC (CNI 1.1): release what is not in the config's
    /// `cni.dev/valid-attachments`. By default there is nothing to collect.
    fn gc(&self, _env: &Env, _stdin: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }
    /// STATUS (CNI 1.1): success when ADD can be served.
    fn status(&self, _env: &Env, _stdin: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Runs `env.command`: `Ok(Some(json))` is printed, `Ok(None)` prints nothing.
pub fn dispatch<P: Plugin>(p: &P, env: &Env, stdin: &[u8]) -> Result<Option<Value>, P::Error> {
    if matches!(env.command.as_str(), "ADD" | "DEL" | "CHECK") {
        env.validate()?;
    }
    match env.command.as_str() {
        "VERSION" => Ok(Some(version_result())),
        "ADD" => p.add(env, stdin).map(Some),
        "DEL" => p.del(env, stdin).map(|()| None),
        "CHECK" => p.check(env, stdin).map(|()| None),
        "GC" => p.gc(env, stdin).map(|()| None),
        "STATUS" => p.status(env, stdin).map(|()| None),
        "" => Err(CniError::new(code::INVALID_ENV, "CNI_COMMAND is not set", "").into()),
        other => Err(CniError::new(
            code::INVALID_ENV,
            format!("unknown CNI_COMMAND {other:?}"),
            "expected ADD, DEL, CHECK, GC, STATUS or VERSION",
        )
        .into()),
    }
}

/// The CNI mode of a plugin binary named `tool`, from this process's
/// environment and stdin to its exit status.
pub fn run<P: Plugin>(tool: &str, p: &P) -> ExitCode
where
    CniError: From<P::Error>,
{
    let env = Env::from_process();
    let mut stdin = Vec::new();
    let res = if env.command == "VERSION" {
        dispatch(p, &env, b"").map_err(CniError::from)
    } else {
        match std::io::stdin().take(MAX_STDIN + 1).read_to_end(&mut stdin) {
            Ok(n) if n as u64 > MAX_STDIN => Err(CniError::new(
                code::DECODE,
                "network config on stdin is too large",
                format!("more than {MAX_STDIN} bytes"),
            )),
            Ok(_) => dispatch(p, &env, &stdin).map_err(CniError::from),
            Err(e) => Err(CniError::new(code::IO, "read stdin", e.to_string())),
        }
    };
    match res {
        Ok(Some(v)) => print_json(tool, &v),
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{tool}: {}", one_line(&e.to_string()));
            let status = e.exit_code();
            print_json(tool, &serde_json::to_value(&e).expect("serializable"));
            ExitCode::from(status)
        }
    }
}

/// Writes `v` and a newline to stdout. A closed pipe downstream is the
/// reader's choice, not a failure; any other write error is exit 1.
pub fn print_json(tool: &str, v: &Value) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{v}").and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{tool}: write stdout: {e}");
            ExitCode::from(1)
        }
    }
}

/// `s` on one line (errors are one line on stderr, whatever a tool we ran
/// printed).
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Plugin for Fake {
        type Error = CniError;
        fn add(&self, env: &Env, _: &[u8]) -> Result<Value, CniError> {
            Ok(serde_json::json!({"id": env.container_id}))
        }
        fn del(&self, _: &Env, _: &[u8]) -> Result<(), CniError> {
            Ok(())
        }
        fn check(&self, _: &Env, _: &[u8]) -> Result<(), CniError> {
            Err(CniError::new(code::UNKNOWN_CONTAINER, "nothing here", ""))
        }
    }

    fn env(cmd: &str) -> Env {
        Env {
            command: cmd.into(),
            container_id: Some("c1".into()),
            ..Env::default()
        }
    }

    #[test]
    fn dispatch_routes_commands_and_answers_version_itself() {
        let add = dispatch(&Fake, &env("ADD"), b"").unwrap().unwrap();
        assert_eq!(add["id"], "c1");
        assert_eq!(dispatch(&Fake, &env("DEL"), b"").unwrap(), None);
        assert_eq!(dispatch(&Fake, &env("CHECK"), b"").unwrap_err().code, 3);
        assert_eq!(dispatch(&Fake, &env("GC"), b"").unwrap(), None);
        let v = dispatch(&Fake, &env("VERSION"), b"").unwrap().unwrap();
        assert_eq!(v["cniVersion"], LATEST_VERSION);
        assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 5);
        for bad in ["", "ADDD"] {
            let e = dispatch(&Fake, &env(bad), b"").unwrap_err();
            assert_eq!((e.code, e.exit_code()), (4, 2), "{bad:?}");
        }
    }

    #[test]
    fn versions_are_negotiated() {
        assert_eq!(negotiate(None).unwrap(), DEFAULT_VERSION);
        assert_eq!(negotiate(Some("0.4.0")).unwrap(), "0.4.0");
        let e = negotiate(Some("9.9.9")).unwrap_err();
        assert_eq!((e.code, e.exit_code()), (1, 2));
        assert!(e.to_string().contains("supported: 0.3.0"), "{e}");
    }

    #[test]
    fn configs_decode_with_version_and_name_checked() {
        let c: Config<Value> = decode_config(br#"{"name":"n","x":1}"#).unwrap();
        assert_eq!(
            (c.version.as_str(), c.name.as_str()),
            (DEFAULT_VERSION, "n")
        );
        assert_eq!(c.conf["x"], 1);
        let code_of = |b: &[u8]| decode_config::<Value>(b).unwrap_err().code;
        assert_eq!(code_of(b"{"), code::DECODE);
        assert_eq!(
            code_of(br#"{"cniVersion":"2.0.0","name":"n"}"#),
            code::INCOMPATIBLE_VERSION
        );
        assert_eq!(code_of(br#"{"name":""}"#), code::INVALID_CONFIG);
        assert_eq!(code_of(br#"{"name":7}"#), code::DECODE);
    }

    #[test]
    fn bad_ids_are_refused_before_the_plugin_runs() {
        let mut e = env("ADD");
        e.container_id = Some("x".repeat(64 * 1024));
        let err = dispatch(&Fake, &e, b"{}").unwrap_err();
        assert_eq!(err.code, code::INVALID_ENV);
        assert!(err.msg.contains("CNI_CONTAINERID"), "{err}");
        assert!(err.details.len() < 200, "details carry the whole id");
        for bad in ["", "-lead", "a/b", "a b", "a\nb", "é"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "0abc", "a.b-c_d", &"f".repeat(256)] {
            assert!(check_id(good).is_ok(), "{good:?}");
        }
        let mut e = env("DEL");
        e.ifname = Some("eth0:1".into());
        assert!(dispatch(&Fake, &e, b"{}")
            .unwrap_err()
            .msg
            .contains("CNI_IFNAME"));
        e.ifname = Some("a-sixteen-bytes!".into());
        assert!(dispatch(&Fake, &e, b"{}").is_err());
        e.ifname = Some("eth0".into());
        assert!(dispatch(&Fake, &e, b"{}").is_ok());
        let err = decode_config::<Value>(br#"{"cniVersion":"1.0.0","name":"../x"}"#).unwrap_err();
        assert_eq!(err.code, code::INVALID_CONFIG);
    }

    #[test]
    fn args_parse_and_errors_serialize_as_the_spec_says() {
        let m = parse_args("IgnoreUnknown=1;IP=10.1.0.5").unwrap();
        assert_eq!(m["IP"], "10.1.0.5");
        assert_eq!(parse_args("junk").unwrap_err().code, 4);
        let e = CniError::new(code::IO, "read x", "");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"cniVersion":"1.0.0","code":5,"msg":"read x"}"#
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(one_line("a\n  b\tc\n"), "a b c");
    }
}
