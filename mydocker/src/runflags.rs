//! The `run`/`create` flags of docker's that shape the container's
//! process and lifecycle rather than its image, network or security:
//! labels, restart policy, stop signal and timeout, ulimits, /dev/shm
//! size, sysctls, extra groups, OOM score, `--init`, host pid/ipc/uts
//! namespaces and `container:X` ones (`joins`), `--volumes-from`,
//! `--pull`, `--platform`, `--annotation`, `--oom-kill-disable`, `-a`,
//! `--sig-proxy`, `--detach-keys`, `--cidfile`. Parsed and validated into [`Extra`] (stored in
//! the run config); `spec` applies it to config.json, `run` runs the
//! restart loop.

use crate::error::{fail, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug, Clone, Default)]
pub struct RunFlags {
    /// Set metadata on the container (KEY[=VALUE]).
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long = "label-file")]
    pub label_file: Vec<PathBuf>,
    /// Restart policy: no, on-failure[:max-retries], always, unless-stopped.
    #[arg(long)]
    pub restart: Option<String>,
    /// Signal to stop the container (default SIGTERM).
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container (-1: wait forever).
    #[arg(long = "stop-timeout", allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,
    /// Ulimit options (NAME=SOFT[:HARD]).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm (b, k, m, g).
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Sysctl options (namespaced only: kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Write the container ID to the file.
    #[arg(long)]
    pub cidfile: Option<PathBuf>,
    /// Add additional groups to join (names from the image's /etc/group, or gids).
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Tune the host's OOM preferences (-1000 to 1000).
    #[arg(long = "oom-score-adj", allow_negative_numbers = true)]
    pub oom_score_adj: Option<i32>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// PID namespace to use (`host`).
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use (`host`, `private`, `shareable`).
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use (`host`).
    #[arg(long)]
    pub uts: Option<String>,
    /// Mount volumes from the specified container(s): CONTAINER[:ro|rw].
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long)]
    pub pull: Option<String>,
    /// Set platform (os[/arch[/variant]]); checked against the image's.
    #[arg(long)]
    pub platform: Option<String>,
    /// Add an annotation to the container (passed through to the OCI runtime).
    #[arg(long)]
    pub annotation: Vec<String>,
    /// Disable OOM Killer (cgroup v1 only, as docker).
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short = 'a', long)]
    pub attach: Vec<String>,
    /// Proxy received signals to the process (default true).
    #[arg(long = "sig-proxy", num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: Option<bool>,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q).
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RestartPolicy {
    /// "no", "always", "on-failure" or "unless-stopped" (docker's names).
    pub name: String,
    pub maximum_retry_count: u32,
}

/// The parsed flags, as stored in the run config.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Extra {
    pub labels: BTreeMap<String, String>,
    pub restart: RestartPolicy,
    pub stop_signal: String,
    pub stop_timeout: Option<i64>,
    /// OCI `process.rlimits`.
    pub ulimits: Vec<Value>,
    /// Bytes; 0 = docker's default 64 MiB.
    pub shm_size: i64,
    pub sysctls: BTreeMap<String, String>,
    pub group_add: Vec<String>,
    pub oom_score_adj: Option<i32>,
    /// The host path of the init binary bind-mounted as /sbin/docker-init.
    pub init: Option<String>,
    pub pid_host: bool,
    pub ipc_host: bool,
    pub uts_host: bool,
    /// `--pid container:X` / `--ipc container:X`: the target's full id
    /// once `joins::resolve` ran (the name as given before).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pid_container: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ipc_container: String,
    /// `--volumes-from` as given (the mounts are copied into `mounts`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// OCI `annotations` of config.json (`--annotation`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub oom_kill_disable: bool,
    /// `-a`: the streams a foreground run attaches (empty: all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attach: Vec<String>,
    /// `--sig-proxy` (None: docker's default, true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_proxy: Option<bool>,
    /// `--detach-keys` as given (empty: docker's ctrl-p,ctrl-q).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detach_keys: String,
    /// Namespace paths to join, filled at launch from the targets' inits
    /// (`joins::at_launch`); never stored.
    #[serde(skip)]
    pub ns_paths: BTreeMap<String, String>,
}

const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Where a static docker-init (tini) may live on this host: it runs
/// inside the image, so a dynamically linked tini would not do.
/// `scripts/deps.sh` installs Debian's `tini` (`/usr/bin/tini-static`).
const INIT_PATHS: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/libexec/docker/docker-init",
    "/usr/sbin/docker-init",
    "/usr/bin/docker-init",
    "/usr/local/bin/docker-init",
];

impl RunFlags {
    /// Validates every flag; `auto_remove` and `hostname` for docker's
    /// conflicts. Touches nothing.
    pub fn parse(&self, auto_remove: bool, hostname: bool) -> Result<Extra> {
        let mut e = Extra::default();
        for f in &self.label_file {
            let text = std::fs::read_to_string(f).map_err(|err| {
                crate::error::Error::Daemon(format!("open {}: {err}", f.display()))
            })?;
            for l in text.lines().map(str::trim) {
                if !l.is_empty() && !l.starts_with('#') {
                    add_label(&mut e.labels, l)?;
                }
            }
        }
        for l in &self.label {
            add_label(&mut e.labels, l)?;
        }
        if let Some(r) = &self.restart {
            e.restart = parse_restart(r)?;
            if auto_remove && e.restart.name != "no" {
                return fail("Conflicting options: --restart and --rm");
            }
        }
        if let Some(s) = &self.stop_signal {
            signal_number(s)?;
            e.stop_signal = s.clone();
        }
        e.stop_timeout = self.stop_timeout;
        for u in &self.ulimit {
            e.ulimits.push(parse_ulimit(u)?);
        }
        if let Some(s) = &self.shm_size {
            let n = crate::resources::parse_size(s).map_err(|_| {
                crate::error::Error::Daemon(format!(
                    "invalid argument \"{s}\" for \"--shm-size\" flag"
                ))
            })?;
            if n <= 0 {
                return fail(format!(
                    "invalid argument \"{s}\" for \"--shm-size\" flag: size must be positive"
                ));
            }
            e.shm_size = n;
        }
        for s in &self.sysctl {
            let Some((k, v)) = s.split_once('=') else {
                return fail(format!("invalid argument \"{s}\" for \"--sysctl\" flag: sysctl must be in the format KEY=VALUE"));
            };
            if !namespaced_sysctl(k) {
                return fail(format!(
                    "sysctl '{k}' is not allowed: it is not in a separate kernel namespace"
                ));
            }
            e.sysctls.insert(k.to_string(), v.to_string());
        }
        for g in &self.group_add {
            if g.is_empty() || g.contains(':') || g.contains(char::is_whitespace) {
                return fail(format!("invalid argument \"{g}\" for \"--group-add\" flag"));
            }
            e.group_add.push(g.clone());
        }
        if let Some(n) = self.oom_score_adj {
            if !(-1000..=1000).contains(&n) {
                return fail(format!(
                    "Invalid value {n}, range for oom score adj is [-1000, 1000]"
                ));
            }
            e.oom_score_adj = Some(n);
        }
        if self.init {
            match INIT_PATHS.iter().find(|p| std::path::Path::new(p).is_file()) {
                Some(p) => e.init = Some(p.to_string()),
                None => {
                    return fail(
                        "--init: no init binary on this host (docker-init or tini-static; scripts/deps.sh installs Debian's tini)",
                    )
                }
            }
        }
        (e.pid_host, e.pid_container) = ns_mode("--pid", self.pid.as_deref(), &["", "private"])?;
        (e.ipc_host, e.ipc_container) = ns_mode(
            "--ipc",
            self.ipc.as_deref(),
            &["", "private", "shareable", "none"],
        )?;
        // docker: the UTS namespace is private or the host's, never another container's.
        e.uts_host = match self.uts.as_deref().unwrap_or("") {
            "host" => true,
            "" => false,
            v => return fail(format!("invalid --uts: {v}")),
        };
        for v in &self.volumes_from {
            crate::nsjoin::parse_volumes_from(v)?;
            e.volumes_from.push(v.clone());
        }
        if let Some(p) = &self.pull {
            parse_pull(p)?;
        }
        if let Some(p) = &self.platform {
            parse_platform(p)?;
        }
        for a in &self.annotation {
            match a.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    e.annotations.insert(k.to_string(), v.to_string());
                }
                _ => {
                    return fail(format!(
                        "invalid argument \"{a}\" for \"--annotation\" flag: must be in the format KEY=VALUE"
                    ))
                }
            }
        }
        e.oom_kill_disable = self.oom_kill_disable;
        for s in &self.attach {
            let s = s.to_lowercase();
            if !["stdin", "stdout", "stderr"].contains(&s.as_str()) {
                return fail(format!(
                    "invalid argument \"{s}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
                ));
            }
            if !e.attach.contains(&s) {
                e.attach.push(s);
            }
        }
        e.sig_proxy = self.sig_proxy;
        if let Some(k) = &self.detach_keys {
            crate::attach::parse_detach_keys(k)?;
            e.detach_keys = k.clone();
        }
        if e.uts_host && hostname {
            return fail("Conflicting options: hostname and the UTS mode");
        }
        if e.ipc_host && !e.sysctls.is_empty() && e.sysctls.keys().any(|k| !k.starts_with("net.")) {
            return fail("sysctls of the IPC namespace are not allowed with --ipc=host");
        }
        Ok(e)
    }
}

/// `host` as (true, ""); `container:NAME` as (false, NAME); the private
/// values as (false, ""); an error otherwise.
fn ns_mode(flag: &str, v: Option<&str>, private: &[&str]) -> Result<(bool, String)> {
    match v.unwrap_or("") {
        "host" => Ok((true, String::new())),
        v if private.contains(&v) => Ok((false, String::new())),
        v => match v.strip_prefix("container:") {
            Some(n) if !n.is_empty() => Ok((false, n.to_string())),
            _ => fail(format!("invalid {flag}: {v}")),
        },
    }
}

/// `--pull`: when to pull the image. No registry is reachable from
/// mydocker, so a pull is never possible; the modes decide what is refused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pull {
    Always,
    Missing,
    Never,
}

pub fn parse_pull(p: &str) -> Result<Pull> {
    match p {
        "always" => Ok(Pull::Always),
        "" | "missing" => Ok(Pull::Missing),
        "never" => Ok(Pull::Never),
        _ => fail(format!(
            "invalid pull option: '{p}': must be one of \"always\", \"missing\" or \"never\""
        )),
    }
}

/// `os[/arch[/variant]]` as OCI names (x86_64 is amd64, aarch64 arm64).
pub fn parse_platform(p: &str) -> Result<(String, String, String)> {
    let parts: Vec<&str> = p.split('/').collect();
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if parts.len() > 3 || !parts.iter().all(|s| ok(s)) {
        return fail(format!(
            "invalid argument \"{p}\" for \"--platform\" flag: \"{p}\": unknown operating system or architecture: invalid argument"
        ));
    }
    let arch = match parts.get(1).map(|a| a.to_lowercase()) {
        Some(a) if a == "x86_64" || a == "x86-64" => "amd64".to_string(),
        Some(a) if a == "aarch64" => "arm64".to_string(),
        Some(a) => a,
        None => String::new(),
    };
    Ok((
        parts[0].to_lowercase(),
        arch,
        parts.get(2).map(|v| v.to_lowercase()).unwrap_or_default(),
    ))
}

/// `run`/`create`'s image under `--pull` and `--platform`: `found` is
/// `layerfs inspect`'s answer (None: not in the store). No registry is
/// reachable, so `always`, and `missing` for an absent image, fail saying
/// so; `never` for an absent image is docker's "No such image".
pub fn check_image(f: &RunFlags, reference: &str, found: Option<Value>) -> Result<Value> {
    let pull = parse_pull(f.pull.as_deref().unwrap_or(""))?;
    let full = if reference.contains('@')
        || reference
            .rsplit('/')
            .next()
            .is_some_and(|l| l.contains(':'))
    {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    };
    let image = match (pull, found) {
        (Pull::Always, _) => {
            return fail(format!(
                "--pull always: cannot pull {full}: no registry is reachable (mydocker has no registry client; `mydocker load` the image and use --pull missing or never)"
            ))
        }
        (Pull::Never, None) => return fail(format!("No such image: {full}")),
        (Pull::Missing, None) => {
            return fail(format!(
                "Unable to find image '{full}' locally, and no registry is reachable to pull it (`mydocker load` it first)"
            ))
        }
        (_, Some(i)) => i,
    };
    if let Some(p) = &f.platform {
        let (os, arch, variant) = parse_platform(p)?;
        let c = &image["config"];
        let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
        let (ios, iarch, ivar) = (s("os"), s("architecture"), s("variant"));
        let matches = os == ios
            && (arch.is_empty() || arch == iarch)
            && (variant.is_empty() || ivar.is_empty() || variant == ivar);
        if !matches {
            let have = [ios.as_str(), iarch.as_str(), ivar.as_str()]
                .iter()
                .filter(|x| !x.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("/");
            let want = [os.as_str(), arch.as_str(), variant.as_str()]
                .iter()
                .filter(|x| !x.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("/");
            return fail(format!(
                "image with reference {reference} was found but its platform ({have}) does not match the specified platform ({want})"
            ));
        }
    }
    Ok(image)
}

/// `--oom-kill-disable`: `memory.disableOOMKiller` in the OCI resources
/// (cgroup v1's memory.oom_control). A cgroup v2 host has no such switch:
/// docker warns and discards it, and so do we. Returns the warnings.
pub fn oom_kill_disable(x: &mut Extra, resources: &mut Value) -> Vec<String> {
    let mut warn = vec![];
    if !x.oom_kill_disable {
        return warn;
    }
    let v1_memory = std::path::Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists();
    if !v1_memory {
        warn.push(
            "WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."
                .into(),
        );
        x.oom_kill_disable = false;
        return warn;
    }
    if !resources.is_object() {
        *resources = json!({});
    }
    if !resources["memory"].is_object() {
        resources["memory"] = json!({});
    }
    if resources["memory"]["limit"].as_i64().unwrap_or(0) <= 0 {
        warn.push("WARNING: Disabling the OOM killer on containers without setting a '-m/--memory' limit may be dangerous.".into());
    }
    resources["memory"]["disableOOMKiller"] = json!(true);
    warn
}

fn add_label(m: &mut BTreeMap<String, String>, l: &str) -> Result<()> {
    let (k, v) = l.split_once('=').unwrap_or((l, ""));
    if k.is_empty() {
        return fail(format!("invalid label '{l}': empty name"));
    }
    m.insert(k.to_string(), v.to_string());
    Ok(())
}

/// docker's restart policy syntax and messages.
pub fn parse_restart(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some(("", _)) => {
            return fail("invalid restart policy format: no policy provided before colon")
        }
        Some((n, c)) => match c.parse::<u32>() {
            Ok(c) => (n, Some(c)),
            Err(_) => {
                return fail(
                    "invalid restart policy format: maximum retry count must be an integer",
                )
            }
        },
        None => (s, None),
    };
    let name = match name {
        "" | "no" => "no",
        "always" | "unless-stopped" | "on-failure" => name,
        n => {
            return fail(format!(
                "invalid restart policy: unknown policy '{n}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ))
        }
    };
    if count.is_some() && name != "on-failure" {
        return fail(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        );
    }
    Ok(RestartPolicy {
        name: name.into(),
        maximum_retry_count: count.unwrap_or(0),
    })
}

/// `nofile=1024:2048` as an OCI rlimit.
fn parse_ulimit(u: &str) -> Result<Value> {
    let bad = |why: &str| {
        fail(format!(
            "invalid argument \"{u}\" for \"--ulimit\" flag: {why}"
        ))
    };
    let Some((name, vals)) = u.split_once('=') else {
        return bad("invalid ulimit argument");
    };
    if !ULIMITS.contains(&name) {
        return bad(&format!("invalid ulimit type: {name}"));
    }
    let num = |s: &str| -> Option<u64> {
        if s == "-1" || s == "unlimited" {
            Some(u64::MAX)
        } else {
            s.parse().ok()
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((s, h)) => (num(s), num(h)),
        None => (num(vals), num(vals)),
    };
    let (Some(soft), Some(hard)) = (soft, hard) else {
        return bad("invalid ulimit value");
    };
    if soft > hard {
        return bad(&format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(json!({"type": format!("RLIMIT_{}", name.to_uppercase()), "soft": soft, "hard": hard}))
}

/// docker's rule: only sysctls the container's own namespaces hold.
fn namespaced_sysctl(k: &str) -> bool {
    [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ]
    .contains(&k)
        || k.starts_with("fs.mqueue.")
        || k.starts_with("net.")
}

/// A signal name (`TERM`, `SIGTERM`) or number as its number.
pub fn signal_number(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .or_else(|_| fail(format!("Invalid signal: {s}")))
}

/// Whether the restart policy restarts a container that exited with
/// `code` after `restarts` restarts (a manual stop never restarts).
pub fn should_restart(p: &RestartPolicy, code: i32, restarts: u32) -> bool {
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            code != 0 && (p.maximum_retry_count == 0 || restarts < p.maximum_retry_count)
        }
        _ => false,
    }
}

/// The stored config of a record (default when unreadable).
pub fn extra_of(rec: &ctrstate::record::Record) -> Extra {
    serde_json::from_value(Value::Object(rec.config.clone())).unwrap_or_default()
}

/// `stop`'s grace: `-t`, else the container's `--stop-timeout`, else 10 s
/// (negative: wait forever).
pub fn stop_grace(rec: &ctrstate::record::Record, flag: Option<i64>) -> std::time::Duration {
    let secs = flag.or(extra_of(rec).stop_timeout).unwrap_or(10);
    if secs < 0 {
        std::time::Duration::from_secs(u64::MAX / 4)
    } else {
        std::time::Duration::from_secs(secs as u64)
    }
}

/// `stop`'s first signal: the container's `--stop-signal`, else TERM.
pub fn stop_signal(rec: &ctrstate::record::Record) -> String {
    let s = extra_of(rec).stop_signal;
    if s.is_empty() {
        "TERM".into()
    } else {
        s.trim_start_matches("SIG").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_like_docker() {
        assert_eq!(parse_restart("no").unwrap().name, "no");
        let p = parse_restart("on-failure:3").unwrap();
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 3));
        assert!(parse_restart("always:3").is_err());
        assert!(parse_restart("sometimes").is_err());
        assert!(parse_restart(":3").is_err());
        assert!(parse_restart("on-failure:x").is_err());
        assert!(should_restart(&p, 1, 2));
        assert!(!should_restart(&p, 1, 3));
        assert!(!should_restart(&p, 0, 0));
        assert!(should_restart(&parse_restart("always").unwrap(), 0, 99));
    }

    #[test]
    fn ulimits_sysctls_and_signals() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048})
        );
        assert!(parse_ulimit("nofile=10:5").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile").is_err());
        assert!(namespaced_sysctl("net.ipv4.ip_forward"));
        assert!(!namespaced_sysctl("vm.swappiness"));
        assert_eq!(signal_number("SIGUSR1").unwrap(), libc::SIGUSR1);
        assert_eq!(signal_number("usr1").unwrap(), libc::SIGUSR1);
        assert_eq!(signal_number("9").unwrap(), 9);
        assert!(signal_number("NOPE").is_err());
    }
}
