//! Loading and validating the OCI config: everything that can be wrong with
//! the input is found here, before the first side effect.

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read config {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("parse config {path}: {err}")]
    Parse { path: PathBuf, err: String },
    #[error("config: {field} is not supported by nsrun")]
    Unsupported { field: String },
    #[error("config: {field}: {why}")]
    Invalid { field: String, why: String },
    #[error("config: root.path {path}: {why}")]
    Rootfs { path: PathBuf, why: String },
}

fn invalid(field: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        why: why.into(),
    }
}

fn unsupported(field: &str) -> ConfigError {
    ConfigError::Unsupported {
        field: field.to_string(),
    }
}

/// A validated config and where it came from.
pub struct Loaded {
    pub spec: Spec,
    /// The config as read, copied into the state dir for `exec`.
    pub raw: Vec<u8>,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// `linux.seccomp` compiled (once, here in the parent).
    pub seccomp: Option<crate::seccomp::Program>,
}

/// Reads `config` (a path, `-` for stdin, or `None` for `bundle/config.json`)
/// and validates it. `bundle` is made absolute. `seccomp_cache`: where
/// compiled seccomp filters are kept (`seccomp::compile_cached`).
pub fn load(
    bundle: &Path,
    config: Option<&Path>,
    seccomp_cache: Option<&Path>,
) -> Result<Loaded, ConfigError> {
    let bundle = std::path::absolute(bundle).map_err(|err| ConfigError::Read {
        path: bundle.to_path_buf(),
        err,
    })?;
    let (path, raw) = match config {
        Some(p) if p == Path::new("-") => {
            let mut v = Vec::new();
            std::io::stdin()
                .read_to_end(&mut v)
                .map_err(|err| ConfigError::Read {
                    path: "-".into(),
                    err,
                })?;
            (PathBuf::from("<stdin>"), v)
        }
        Some(p) => (
            p.to_path_buf(),
            std::fs::read(p).map_err(|err| ConfigError::Read {
                path: p.to_path_buf(),
                err,
            })?,
        ),
        None => {
            let p = bundle.join("config.json");
            let v = std::fs::read(&p).map_err(|err| ConfigError::Read {
                path: p.clone(),
                err,
            })?;
            (p, v)
        }
    };
    // Names a bad seccomp enum value by its field (the typed parse below
    // would only give a line and column).
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&raw) {
        crate::seccomp::check_json(&v["linux"]["seccomp"]).map_err(seccomp_invalid)?;
    }
    let spec: Spec = serde_json::from_slice(&raw).map_err(|e| ConfigError::Parse {
        path: path.clone(),
        err: e.to_string(),
    })?;
    let seccomp = check(&spec, seccomp_cache)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let rootfs = bundle.join(root.path());
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(ConfigError::Rootfs {
                path: rootfs,
                why: "not a directory".into(),
            })
        }
        Err(e) => {
            return Err(ConfigError::Rootfs {
                path: rootfs,
                why: e.to_string(),
            })
        }
    }
    Ok(Loaded {
        spec,
        raw,
        bundle,
        rootfs,
        seccomp,
    })
}

fn seccomp_invalid(e: crate::seccomp::SeccompError) -> ConfigError {
    ConfigError::Invalid {
        field: e.field,
        why: e.why,
    }
}

/// Parses a config from bytes without touching the filesystem (used by `exec`
/// on the copy in the state dir).
pub fn parse(raw: &[u8]) -> Result<Spec, ConfigError> {
    serde_json::from_slice(raw).map_err(|e| ConfigError::Parse {
        path: "state config.json".into(),
        err: e.to_string(),
    })
}

/// The namespaces asked for, in the config's order.
pub fn namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .into_iter()
        .map(|n| (n.typ(), n.path().clone()))
        .collect()
}

/// The clone/setns flag of a namespace type.
pub fn ns_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

fn nonempty<T>(o: &Option<T>, empty: impl Fn(&T) -> bool) -> bool {
    o.as_ref().is_some_and(|v| !empty(v))
}

/// `ociVersion`: a semver of major version 1 (what this runtime speaks).
fn check_version(v: &str) -> Result<(), ConfigError> {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        return Err(invalid(
            "ociVersion",
            format!("{v:?} is not a semantic version"),
        ));
    }
    if parts[0] != "1" {
        return Err(invalid(
            "ociVersion",
            format!("{v:?}: nsrun speaks runtime-spec 1.x"),
        ));
    }
    Ok(())
}

/// Checks what nsrun cannot honour and what is inconsistent.
pub fn validate(spec: &Spec) -> Result<(), ConfigError> {
    check(spec, None).map(|_| ())
}

/// `validate`, keeping the compiled seccomp program.
fn check(
    spec: &Spec,
    seccomp_cache: Option<&Path>,
) -> Result<Option<crate::seccomp::Program>, ConfigError> {
    crate::hooks::validate(spec).map_err(|(field, why)| invalid(&field, why))?;
    check_version(spec.version())?;
    if spec.solaris().is_some() || spec.windows().is_some() || spec.vm().is_some() {
        return Err(unsupported("solaris/windows/vm"));
    }
    let p = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing"))?;
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(invalid("process.args", "empty: nothing to run"));
    }
    if !p.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} is not absolute", p.cwd()),
        ));
    }
    for e in p.env().iter().flatten() {
        if !e.contains('=') {
            return Err(invalid("process.env", format!("{e:?} is not KEY=VALUE")));
        }
    }
    if nonempty(p.apparmor_profile(), |s| s.is_empty()) {
        return Err(unsupported("process.apparmorProfile"));
    }
    if nonempty(p.selinux_label(), |s| s.is_empty()) {
        return Err(unsupported("process.selinuxLabel"));
    }
    if p.exec_cpu_affinity().is_some() {
        return Err(unsupported("process.execCPUAffinity"));
    }
    if p.command_line().is_some() {
        return Err(unsupported("process.commandLine"));
    }
    crate::caps::CapSets::from_spec(p.capabilities().as_ref())
        .map_err(|e| invalid("process.capabilities", e.to_string()))?;
    for r in p.rlimits().iter().flatten() {
        crate::process::rlimit_resource(r.typ()).map_err(|e| invalid("process.rlimits", e))?;
        if r.soft() > r.hard() {
            return Err(invalid(
                "process.rlimits",
                format!("{:?}: soft {} above hard {}", r.typ(), r.soft(), r.hard()),
            ));
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "missing"))?;
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(|s| crate::seccomp::compile_cached(s, seccomp_cache))
        .transpose()
        .map_err(seccomp_invalid)?;
    if linux.intel_rdt().is_some() {
        return Err(unsupported("linux.intelRdt"));
    }
    crate::sched::Sched::from_spec(p, linux.personality().as_ref())
        .map_err(|(field, why)| invalid(field, why))?;
    if nonempty(linux.mount_label(), |s| s.is_empty()) {
        return Err(unsupported("linux.mountLabel"));
    }
    if nonempty(linux.time_offsets(), |m| m.is_empty()) {
        return Err(unsupported("linux.timeOffsets"));
    }
    if let Some(prop) = linux.rootfs_propagation() {
        crate::rootfs::propagation_flag(prop)
            .ok_or_else(|| invalid("linux.rootfsPropagation", format!("unknown {prop:?}")))?;
    }
    let ns = namespaces(spec);
    let mut seen = Vec::new();
    for (t, path) in &ns {
        if seen.contains(t) {
            return Err(invalid("linux.namespaces", format!("{t} given twice")));
        }
        seen.push(*t);
        if *t == LinuxNamespaceType::Time {
            return Err(unsupported("linux.namespaces type time"));
        }
        if let Some(path) = path {
            if *t == LinuxNamespaceType::User {
                return Err(unsupported(
                    "linux.namespaces: joining a user namespace by path",
                ));
            }
            if !path.exists() {
                return Err(invalid(
                    "linux.namespaces",
                    format!("{t} path {} does not exist", path.display()),
                ));
            }
        }
    }
    let has = |t: LinuxNamespaceType| ns.iter().any(|(x, p)| *x == t && p.is_none());
    if !ns.iter().any(|(t, _)| *t == LinuxNamespaceType::Mount) {
        return Err(invalid("linux.namespaces", "a mount namespace is required"));
    }
    // As runc: a uts namespace of the container's own, new or joined by path.
    let uts = ns.iter().any(|(t, _)| *t == LinuxNamespaceType::Uts);
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !uts {
        return Err(invalid("hostname", "needs a uts namespace"));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !uts {
        return Err(invalid("domainname", "needs a uts namespace"));
    }
    let userns = has(LinuxNamespaceType::User);
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        && linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if userns && !maps {
        return Err(invalid(
            "linux.uidMappings",
            "a user namespace needs uidMappings and gidMappings",
        ));
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(invalid(
                "mounts",
                format!("destination {:?} is not absolute", m.destination()),
            ));
        }
        for o in m.options().iter().flatten() {
            if matches!(o.as_str(), "idmap" | "ridmap") {
                return Err(unsupported(&format!("mounts option {o:?}")));
            }
        }
    }
    for d in linux.devices().iter().flatten() {
        if !d.path().is_absolute() {
            return Err(invalid(
                "linux.devices",
                format!("path {:?} is not absolute", d.path()),
            ));
        }
    }
    Ok(seccomp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: impl FnOnce(&mut serde_json::Value)) -> Result<(), ConfigError> {
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "hostname": "h",
            "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["sh"], "env": ["PATH=/bin"]},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "uts"}, {"type": "pid"}]}
        });
        extra(&mut v);
        let s: Spec = serde_json::from_value(v).map_err(|e| ConfigError::Parse {
            path: "t".into(),
            err: e.to_string(),
        })?;
        validate(&s)
    }

    #[test]
    fn a_plain_config_is_valid() {
        spec(|_| {}).unwrap();
    }

    #[test]
    fn seccomp_is_compiled_and_its_errors_name_the_field() {
        spec(|v| v["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}))
            .unwrap();
        let e = spec(|v| {
            v["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]})
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "config: linux.seccomp.syscalls[0].args[0].index: 6 is not a syscall argument (0-5)"
        );
    }

    #[test]
    fn unsupported_fields_are_named() {
        let e = spec(|v| v["process"]["apparmorProfile"] = "p".into()).unwrap_err();
        assert!(e.to_string().contains("process.apparmorProfile"), "{e}");
    }

    type Patch = Box<dyn FnOnce(&mut serde_json::Value)>;

    #[test]
    fn inconsistent_configs_are_rejected() {
        let cases: Vec<(Patch, &str)> = vec![
            (
                Box::new(|v| v["process"]["args"] = serde_json::json!([])),
                "process.args",
            ),
            (
                Box::new(|v| v["process"]["cwd"] = "rel".into()),
                "process.cwd",
            ),
            (
                Box::new(|v| v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}])),
                "mount namespace",
            ),
            (
                Box::new(|v| v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}])),
                "hostname",
            ),
            (
                Box::new(|v| {
                    v["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(serde_json::json!({"type": "pid"}))
                }),
                "twice",
            ),
            (
                Box::new(|v| {
                    v["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(serde_json::json!({"type": "user"}))
                }),
                "uidMappings",
            ),
            (
                Box::new(|v| {
                    v["mounts"] = serde_json::json!([{"destination": "rel", "type": "tmpfs"}])
                }),
                "not absolute",
            ),
            (Box::new(|v| v["ociVersion"] = "2.0.0".into()), "ociVersion"),
            (Box::new(|v| v["ociVersion"] = "1.0".into()), "ociVersion"),
        ];
        for (f, needle) in cases {
            let e = spec(f).unwrap_err();
            assert!(e.to_string().contains(needle), "want {needle:?} in {e}");
        }
    }

    #[test]
    fn unknown_namespace_types_fail_to_parse() {
        let e = spec(|v| v["linux"]["namespaces"] = serde_json::json!([{"type": "bogus"}]))
            .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
