//! The container's cgroup, through cgctl's library (the project's one cgroup
//! implementation): `linux.cgroupsPath` resolved, `linux.resources` (limits
//! and device rules) validated with the config, the directories made before
//! the init exists, the init placed in them before it runs anything, and
//! everything removed by `delete`.
//!
//! The directories are written to `<state dir>/cgroup.json` before they are
//! made, so a `delete` after a crash at any point still finds them.

use crate::config::ConfigError;
use crate::state::Dir;
use cgctl::runtime::{Cgroup, Saved};
use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType, Spec};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: {0}")]
    Cgctl(#[from] cgctl::Error),
    #[error("cgroup: {step} {path}: {err}")]
    Io {
        step: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
}

/// The container's cgroup before it is made: where, and with what.
pub struct Plan {
    pub cgroup: Cgroup,
    pub resources: cgctl::resources::Resources,
}

fn invalid(field: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        why: why.to_string(),
    }
}

/// `--systemd-cgroup`'s `slice:prefix:name` cgroupsPath as the cgroupfs path
/// systemd would give it (what crun does without systemd): the slice
/// expanded (`a-b.slice` -> `/a.slice/a-b.slice`, default `system.slice`),
/// then `prefix-name.scope` (a name that is itself a `.slice` is used as is).
/// A host run by systemd is refused: its manager owns that tree.
pub fn systemd_path(p: &str) -> Result<String, ConfigError> {
    let field = "linux.cgroupsPath";
    let parts: Vec<&str> = p.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(invalid(
            field,
            format!("{p:?}: --systemd-cgroup wants slice:prefix:name"),
        ));
    };
    if name.is_empty() || [slice, prefix, name].iter().any(|s| s.contains('/')) {
        return Err(invalid(field, format!("{p:?}: bad slice:prefix:name")));
    }
    if std::path::Path::new("/run/systemd/system").exists() {
        return Err(invalid(
            field,
            "--systemd-cgroup: this host runs systemd, and nsrun has no systemd cgroup driver (run without --systemd-cgroup)",
        ));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(invalid(field, format!("{p:?}: {slice:?} is not a .slice")));
    };
    let mut path = String::new();
    if slice != "-.slice" {
        let mut acc = String::new();
        for part in stem.split('-') {
            if part.is_empty() {
                return Err(invalid(field, format!("{p:?}: bad slice name {slice:?}")));
            }
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(part);
            path.push_str(&format!("/{acc}.slice"));
        }
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(format!("{path}/{unit}"))
}

/// Validates `linux.cgroupsPath` and `linux.resources` (pure: touches nothing).
pub fn plan(spec: &Spec, id: &str) -> Result<Plan, ConfigError> {
    let linux = spec.linux().as_ref();
    let path = linux.and_then(|l| l.cgroups_path().as_ref());
    let path = path.map(|p| p.to_string_lossy().to_string());
    let cgroup =
        Cgroup::resolve(path.as_deref(), id).map_err(|e| invalid("linux.cgroupsPath", e))?;
    let mut res = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    // As runc: deny by default, then the config's rules, then the nodes of
    // `linux.devices`, then the devices every container gets (null, zero,
    // tty, pts, ... and mknod of any). A config that allows all still does.
    let mut rules = vec![LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(|e| invalid("linux.resources.devices", e))?];
    rules.extend(res.devices().clone().unwrap_or_default());
    for d in linux.and_then(|l| l.devices().clone()).unwrap_or_default() {
        let typ = match d.typ() {
            LinuxDeviceType::B => LinuxDeviceType::B,
            _ => LinuxDeviceType::C,
        };
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(typ)
                .major(d.major())
                .minor(d.minor())
                .access("rwm")
                .build()
                .map_err(|e| invalid("linux.devices", e))?,
        );
    }
    rules.extend(
        cgctl::devices::docker_default()
            .iter()
            .filter(|r| r.allow)
            .map(|r| r.to_oci()),
    );
    res.set_devices(Some(rules));
    let resources = cgctl::resources::from_oci(&res).map_err(|e| invalid("linux.resources", e))?;
    Ok(Plan { cgroup, resources })
}

impl Plan {
    /// Records the directories in the state dir, then makes them with the
    /// limits and device rules (cgctl undoes its own half-made work).
    pub fn make(&self, dir: &Dir) -> Result<(), CgroupError> {
        save(dir, &self.cgroup)?;
        self.cgroup.create(&self.resources)?;
        Ok(())
    }
}

fn save(dir: &Dir, cg: &Cgroup) -> Result<(), CgroupError> {
    let p = dir.cgroup_file();
    let data = serde_json::to_vec(&cg.saved()).expect("cgroup paths serialize");
    crate::sys::write_replace(&p, &data).map_err(|err| CgroupError::Io {
        step: "write",
        path: p,
        err,
    })
}

/// The container's cgroup as recorded in its state dir (None: it has none,
/// or the dir is gone).
pub fn load(dir: &Dir) -> Option<Cgroup> {
    let data = std::fs::read(dir.cgroup_file()).ok()?;
    let s: Saved = serde_json::from_slice(&data).ok()?;
    Cgroup::from_saved(s).ok()
}

/// Kills what is left in the container's cgroup and removes it; nothing
/// recorded or already gone is fine.
pub fn remove(dir: &Dir) -> Result<Vec<i32>, CgroupError> {
    match load(dir) {
        Some(cg) => Ok(cg.delete()?),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::systemd_path;

    #[test]
    fn systemd_paths_map_like_crun() {
        if std::path::Path::new("/run/systemd/system").exists() {
            return; // refused on a systemd host, by design
        }
        assert_eq!(
            systemd_path("machine-libpod.slice:libpod:abc").unwrap(),
            "/machine.slice/machine-libpod.slice/libpod-abc.scope"
        );
        assert_eq!(systemd_path(":cri:x").unwrap(), "/system.slice/cri-x.scope");
        assert_eq!(systemd_path("-.slice::x").unwrap(), "/x.scope");
        assert!(systemd_path("/a/b")
            .unwrap_err()
            .to_string()
            .contains("slice:prefix:name"));
    }
}
