//! docker's security flags (`--privileged`, `--cap-add/--cap-drop`,
//! `--security-opt seccomp=|no-new-privileges`, `--device`,
//! `--device-cgroup-rule`, `--cgroupns`, `--cgroup-parent`) parsed and
//! checked before anything runs, kept in the container's record so `start`
//! applies the same, and turned into the OCI config: capabilities, seccomp,
//! device nodes and device cgroup rules, the cgroup namespace and path.

use crate::error::{fail, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

#[derive(Args, Debug, Clone, Default)]
pub struct SecurityArgs {
    /// Give extended privileges: all capabilities, all devices, no seccomp.
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities (NAME, CAP_NAME or ALL).
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities (NAME, CAP_NAME or ALL).
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Security options: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false].
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Add a host device: HOST[:CONTAINER[:PERMISSIONS]].
    #[arg(long = "device")]
    pub device: Vec<String>,
    /// Add a rule to the device allowlist: 'c|b|a MAJOR|*:MINOR|* [rwm]'.
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rule: Vec<String>,
    /// Cgroup namespace: host or private (default: private on cgroup v2, host on v1).
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Parent cgroup of the container's cgroup.
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
}

/// A `--device` mapping, resolved on the host at `run`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// The container's security settings, as the record keeps them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Security {
    pub privileged: bool,
    /// Normalized (`CAP_X` or `ALL`), as given.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// The `--security-opt` values as given (for inspect).
    pub security_opt: Vec<String>,
    pub no_new_privileges: bool,
    pub seccomp_unconfined: bool,
    /// A `seccomp=PROFILE` file's content, read at `run` (docker keeps it too).
    pub seccomp_profile: Option<String>,
    pub devices: Vec<DeviceMapping>,
    pub device_cgroup_rules: Vec<String>,
    /// `host` or `private`; empty: the host's default.
    pub cgroupns: String,
    pub cgroup_parent: String,
}

/// `net_admin`, `CAP_NET_ADMIN` -> `CAP_NET_ADMIN`; `all` -> `ALL`.
fn normalize_cap(name: &str) -> Result<String> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if nsrun::caps::number(&full).is_err() {
        return fail(format!("invalid capability: {name}"));
    }
    Ok(full)
}

fn parse_device(spec: &str) -> Result<DeviceMapping> {
    let parts: Vec<&str> = spec.split(':').collect();
    let perms_ok = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, cont, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if perms_ok(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => return fail(format!("invalid device specification: {spec}")),
    };
    if !perms_ok(perms) {
        return fail(format!("invalid device mode: {perms}"));
    }
    if !host.starts_with('/') || !cont.starts_with('/') {
        return fail(format!(
            "invalid device specification: {spec} (paths must be absolute)"
        ));
    }
    device_node(Path::new(host))?;
    Ok(DeviceMapping {
        path_on_host: host.into(),
        path_in_container: cont.into(),
        cgroup_permissions: perms.into(),
    })
}

/// A host device node: (type "c"|"b", major, minor, mode).
fn device_node(path: &Path) -> Result<(&'static str, u64, u64, u32)> {
    let m = std::fs::metadata(path).map_err(|e| {
        crate::error::Error::Daemon(format!(
            "error gathering device information while adding custom device {:?}: {e}",
            path.display().to_string()
        ))
    })?;
    let ft = m.file_type();
    let typ = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return fail(format!("{} is not a device node", path.display()));
    };
    let rdev = m.rdev();
    Ok((
        typ,
        libc::major(rdev) as u64,
        libc::minor(rdev) as u64,
        m.mode() & 0o7777,
    ))
}

impl SecurityArgs {
    /// Validates every flag (reading a seccomp profile file and the host's
    /// device nodes); touches nothing.
    pub fn parse(&self) -> Result<Security> {
        let mut s = Security {
            privileged: self.privileged,
            security_opt: self.security_opt.clone(),
            ..Default::default()
        };
        for c in &self.cap_add {
            s.cap_add.push(normalize_cap(c)?);
        }
        for c in &self.cap_drop {
            s.cap_drop.push(normalize_cap(c)?);
        }
        for o in &self.security_opt {
            let (k, v) = o
                .split_once('=')
                .or_else(|| o.split_once(':'))
                .unwrap_or((o.as_str(), ""));
            match k {
                "seccomp" if v == "unconfined" => s.seccomp_unconfined = true,
                "seccomp" if !v.is_empty() => {
                    let text = std::fs::read_to_string(v).map_err(|e| {
                        crate::error::Error::Daemon(format!(
                            "opening seccomp profile ({v}) failed: {e}"
                        ))
                    })?;
                    // Checked now (with the default caps), so a bad file fails run.
                    crate::seccomp::from_text(&text, v, &default_caps())?;
                    s.seccomp_profile = Some(text);
                }
                "no-new-privileges" => {
                    s.no_new_privileges = match v {
                        "" | "true" => true,
                        "false" => false,
                        _ => return fail(format!("invalid --security-opt 2: {o:?}")),
                    }
                }
                _ => return fail(format!("invalid --security-opt: {o:?} (supported: seccomp=unconfined|PROFILE, no-new-privileges)")),
            }
        }
        for d in &self.device {
            s.devices.push(parse_device(d)?);
        }
        for r in &self.device_cgroup_rule {
            cgctl::devices::parse_rule(r, true).map_err(|e| {
                crate::error::Error::Daemon(format!("invalid device cgroup rule {r:?}: {e}"))
            })?;
            s.device_cgroup_rules.push(r.clone());
        }
        if let Some(ns) = &self.cgroupns {
            if ns != "host" && ns != "private" {
                return fail(format!("invalid --cgroupns: {ns:?} (host or private)"));
            }
            s.cgroupns = ns.clone();
        }
        if let Some(p) = &self.cgroup_parent {
            if p.split('/').any(|c| c == "..") || p.is_empty() {
                return fail(format!("invalid --cgroup-parent: {p:?}"));
            }
            s.cgroup_parent = p.clone();
        }
        Ok(s)
    }
}

fn default_caps() -> Vec<String> {
    nsrun::caps::DOCKER_DEFAULT
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The capabilities this process may hand on (its bounding set): what
/// `--privileged` and `--cap-add ALL` mean on a host that withholds some.
fn host_caps() -> Vec<String> {
    let bnd = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    nsrun::caps::NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bnd & (1u64 << i) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn cgroup_v2_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

impl Security {
    /// The container's capability set, as docker computes it.
    pub fn caps(&self) -> Vec<String> {
        if self.privileged {
            return host_caps();
        }
        let all = host_caps();
        let mut caps = if self.cap_drop.iter().any(|c| c == "ALL") {
            vec![]
        } else {
            default_caps()
        };
        caps.retain(|c| !self.cap_drop.contains(c));
        if self.cap_add.iter().any(|c| c == "ALL") {
            caps = all.clone();
            caps.retain(|c| !self.cap_drop.contains(c) || self.cap_add.contains(c));
        }
        for c in &self.cap_add {
            if c != "ALL" && !caps.contains(c) {
                caps.push(c.clone());
            }
        }
        caps
    }

    /// The OCI `linux.seccomp`, or None for none (unconfined, privileged).
    pub fn seccomp(&self, caps: &[String]) -> Result<Option<Value>> {
        if self.privileged && self.seccomp_profile.is_none() || self.seccomp_unconfined {
            return Ok(None);
        }
        let oci = match &self.seccomp_profile {
            Some(text) => crate::seccomp::from_text(text, "(from run)", caps)?,
            None => crate::seccomp::docker_default(caps)?,
        };
        Ok((!oci.is_null()).then_some(oci))
    }

    /// Whether the container gets a cgroup namespace of its own.
    pub fn private_cgroupns(&self) -> bool {
        match self.cgroupns.as_str() {
            "private" => true,
            "host" => false,
            _ => cgroup_v2_host(),
        }
    }

    /// `linux.cgroupsPath`: `PARENT/<id>` with `--cgroup-parent`, else
    /// `mydocker/<id>` under the caller's own cgroup.
    pub fn cgroups_path(&self, id: &str) -> String {
        if self.cgroup_parent.is_empty() {
            format!("mydocker/{id}")
        } else {
            format!("{}/{id}", self.cgroup_parent.trim_end_matches('/'))
        }
    }

    /// `linux.devices` (nodes made in the container) and the device cgroup
    /// rules (`linux.resources.devices`), docker's defaults first.
    pub fn devices(&self) -> Result<(Vec<Value>, Vec<Value>)> {
        let mut nodes = vec![];
        let mut rules: Vec<Value> = if self.privileged {
            vec![json!({"allow": true, "access": "rwm"})]
        } else {
            cgctl::devices::docker_default()
                .iter()
                .map(|r| serde_json::to_value(r.to_oci()).unwrap_or_default())
                .collect()
        };
        let mut add = |host: &Path, cont: &str, perms: &str| -> Result<()> {
            let (typ, major, minor, mode) = device_node(host)?;
            nodes.push(
                json!({"path": cont, "type": typ, "major": major, "minor": minor,
                "fileMode": mode, "uid": 0, "gid": 0}),
            );
            rules.push(json!({"allow": true, "type": typ, "major": major, "minor": minor, "access": perms}));
            Ok(())
        };
        if self.privileged {
            for (host, cont) in host_devices() {
                add(&host, &cont, "rwm")?;
            }
        }
        for d in &self.devices {
            add(
                Path::new(&d.path_on_host),
                &d.path_in_container,
                &d.cgroup_permissions,
            )?;
        }
        for r in &self.device_cgroup_rules {
            let rule = cgctl::devices::parse_rule(r, true).map_err(|e| {
                crate::error::Error::Daemon(format!("invalid device cgroup rule {r:?}: {e}"))
            })?;
            rules.push(serde_json::to_value(rule.to_oci()).unwrap_or_default());
        }
        Ok((nodes, rules))
    }

    /// inspect's HostConfig fields for these settings (docker's names).
    pub fn host_config(&self) -> Value {
        json!({
            "Privileged": self.privileged,
            "CapAdd": if self.cap_add.is_empty() { Value::Null } else { json!(self.cap_add) },
            "CapDrop": if self.cap_drop.is_empty() { Value::Null } else { json!(self.cap_drop) },
            "SecurityOpt": if self.security_opt.is_empty() { Value::Null } else { json!(self.security_opt) },
            "Devices": self.devices,
            "DeviceCgroupRules": if self.device_cgroup_rules.is_empty() { Value::Null } else { json!(self.device_cgroup_rules) },
            "CgroupnsMode": if self.private_cgroupns() { "private" } else { "host" },
            "CgroupParent": self.cgroup_parent,
        })
    }
}

/// The host's device nodes for `--privileged` (docker's walk of /dev: not
/// pts, shm, mqueue or fd; the nodes nsrun makes anyway are left to it).
fn host_devices() -> Vec<(std::path::PathBuf, String)> {
    const SKIP_DIRS: [&str; 6] = ["pts", "shm", "fd", "mqueue", ".lxc", ".udev"];
    const NSRUN_MAKES: [&str; 8] = [
        "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx",
    ];
    let mut out = vec![];
    let mut stack = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !(dir == Path::new("/dev") && SKIP_DIRS.contains(&name.as_str())) {
                    stack.push(p);
                }
            } else if (ft.is_char_device() || ft.is_block_device())
                && !(dir == Path::new("/dev") && NSRUN_MAKES.contains(&name.as_str()))
            {
                let cont = p.to_string_lossy().to_string();
                out.push((p, cont));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut SecurityArgs)) -> Result<Security> {
        let mut a = SecurityArgs::default();
        f(&mut a);
        a.parse()
    }

    #[test]
    fn capability_names_are_normalized_and_checked() {
        let s = args(|a| {
            a.cap_add = vec!["net_admin".into(), "CAP_SYS_TIME".into()];
            a.cap_drop = vec!["chown".into()];
        })
        .unwrap();
        let caps = s.caps();
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_SYS_TIME".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(caps.contains(&"CAP_KILL".to_string()));
        let e = args(|a| a.cap_add = vec!["NOT_A_CAP".into()]).unwrap_err();
        assert_eq!(e.to_string(), "invalid capability: NOT_A_CAP");
    }

    #[test]
    fn drop_all_then_add_one() {
        let s = args(|a| {
            a.cap_drop = vec!["ALL".into()];
            a.cap_add = vec!["NET_BIND_SERVICE".into()];
        })
        .unwrap();
        assert_eq!(s.caps(), vec!["CAP_NET_BIND_SERVICE".to_string()]);
        let s = args(|a| a.cap_drop = vec!["all".into()]).unwrap();
        assert!(s.caps().is_empty());
    }

    #[test]
    fn security_opts_are_parsed() {
        let s = args(|a| {
            a.security_opt = vec!["seccomp=unconfined".into(), "no-new-privileges".into()]
        })
        .unwrap();
        assert!(s.seccomp_unconfined && s.no_new_privileges);
        assert!(s.seccomp(&s.caps()).unwrap().is_none());
        assert!(args(|a| a.security_opt = vec!["apparmor=x".into()]).is_err());
        let e = args(|a| a.security_opt = vec!["seccomp=/nonexistent.json".into()]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent.json"), "{e}");
    }

    #[test]
    fn devices_are_checked() {
        let s = args(|a| a.device = vec!["/dev/null:/dev/mynull:rw".into()]).unwrap();
        assert_eq!(s.devices[0].path_in_container, "/dev/mynull");
        assert_eq!(s.devices[0].cgroup_permissions, "rw");
        let (nodes, rules) = s.devices().unwrap();
        assert_eq!(nodes[0]["major"], 1);
        assert_eq!(nodes[0]["minor"], 3);
        assert_eq!(rules.last().unwrap()["access"], "rw");
        assert!(args(|a| a.device = vec!["/etc/passwd".into()]).is_err());
        assert!(args(|a| a.device = vec!["/dev/null:/x:rwz".into()]).is_err());
        assert!(args(|a| a.device_cgroup_rule = vec!["q 1:2 rw".into()]).is_err());
        assert!(args(|a| a.cgroupns = Some("shared".into())).is_err());
    }
}
