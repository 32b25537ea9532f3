//! Which cgroup hierarchies the host has (from /proc/self/mountinfo, never a
//! hard-coded path) and where the caller's own cgroup sits in each of them
//! (from /proc/self/cgroup), so new cgroups nest under the caller.

use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum HierarchyError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no cgroup hierarchy is mounted (nothing of type cgroup or cgroup2 in /proc/self/mountinfo)")]
    NoCgroups,
}

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    V1,
    V2,
    Hybrid,
}

/// One v1 hierarchy (one `cgroup` mount with its controllers).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct V1 {
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    /// The caller's cgroup directory in this hierarchy.
    pub base: PathBuf,
}

/// The v2 (unified) hierarchy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct V2 {
    pub mountpoint: PathBuf,
    pub base: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    pub mode: Mode,
    pub v1: Vec<V1>,
    pub unified: Option<V2>,
}

impl Host {
    /// Reads /proc/self/mountinfo and /proc/self/cgroup.
    pub fn detect() -> Result<Host, HierarchyError> {
        let read_err = |path: &str| {
            let path = PathBuf::from(path);
            move |source| HierarchyError::Read { path, source }
        };
        let mounts = mountinfo::own().map_err(read_err(mountinfo::SELF))?;
        let cgroup =
            std::fs::read_to_string("/proc/self/cgroup").map_err(read_err("/proc/self/cgroup"))?;
        Host::from_mounts(&mounts, &cgroup)
    }

    /// `from_mounts` over a mountinfo text (for tests and fixtures).
    pub fn from_texts(mountinfo: &str, self_cgroup: &str) -> Result<Host, HierarchyError> {
        Host::from_mounts(&mountinfo::parse(mountinfo), self_cgroup)
    }

    /// The pure part of `detect`: the mount table and a /proc/PID/cgroup text.
    pub fn from_mounts(
        mounts: &[mountinfo::Mount],
        self_cgroup: &str,
    ) -> Result<Host, HierarchyError> {
        let mut v1 = Vec::new();
        let mut unified = None;
        for line in self_cgroup.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(_id), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let path = path.trim_end_matches(" (deleted)");
            if ctrls.is_empty() {
                if let Some(m) = mounts.iter().find(|m| m.fs_type == "cgroup2") {
                    unified = Some(V2 {
                        mountpoint: m.mount_point.clone(),
                        base: dir_for(m, path),
                    });
                }
                continue;
            }
            // named hierarchies (name=systemd) carry no resource controllers
            let controllers: Vec<String> = ctrls
                .split(',')
                .filter(|c| !c.starts_with("name="))
                .map(String::from)
                .collect();
            if controllers.is_empty() {
                continue;
            }
            let found = mounts.iter().find(|m| {
                m.fs_type == "cgroup" && controllers.iter().all(|c| m.has_super_option(c))
            });
            if let Some(m) = found {
                v1.push(V1 {
                    controllers,
                    mountpoint: m.mount_point.clone(),
                    base: dir_for(m, path),
                });
            }
        }
        // /proc/self/cgroup lists hierarchies newest first; keep a stable order
        v1.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
        let mode = match (v1.is_empty(), unified.is_some()) {
            (false, true) => Mode::Hybrid,
            (false, false) => Mode::V1,
            (true, true) => Mode::V2,
            (true, false) => return Err(HierarchyError::NoCgroups),
        };
        Ok(Host { mode, v1, unified })
    }

    /// The v1 hierarchy holding `controller`, if mounted.
    pub fn v1_with(&self, controller: &str) -> Option<&V1> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }
}

/// The directory of cgroup `path` under mount `m`: the mount shows the
/// hierarchy from its root down, so that prefix is dropped (a path outside
/// the root, seen from another cgroup namespace, maps to the mount point).
fn dir_for(m: &mountinfo::Mount, path: &str) -> PathBuf {
    match Path::new(path).strip_prefix(&m.root) {
        // join("") would add a trailing slash
        Ok(rel) if !rel.as_os_str().is_empty() => m.mount_point.join(rel),
        _ => m.mount_point.clone(),
    }
}

/// True when `dir` is a cgroup v2 directory (only v2 has `cgroup.controllers`).
pub fn is_v2_dir(dir: &Path) -> bool {
    dir.join("cgroup.controllers").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MI: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CG: &str =
        "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn hybrid_detected_with_nested_memory_base() {
        let h = Host::from_texts(HYBRID_MI, HYBRID_CG).unwrap();
        assert_eq!(h.mode, Mode::Hybrid);
        assert_eq!(h.v1.len(), 3);
        assert_eq!(
            h.v1_with("memory").unwrap().base,
            Path::new("/sys/fs/cgroup/memory/process_api/abc")
        );
        assert_eq!(
            h.v1_with("cpu").unwrap().base,
            Path::new("/sys/fs/cgroup/cpu")
        );
        assert_eq!(h.unified.unwrap().base, Path::new("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn comounted_v1_and_pure_v2() {
        let mi = "32 31 0:29 / /cg/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let h = Host::from_texts(mi, "1:cpu,cpuacct:/a\n").unwrap();
        assert_eq!(h.mode, Mode::V1);
        assert_eq!(
            h.v1_with("cpuacct").unwrap().base,
            Path::new("/cg/cpu,cpuacct/a")
        );

        let mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = Host::from_texts(mi, "0::/user.slice/s.scope\n").unwrap();
        assert_eq!(h.mode, Mode::V2);
        assert_eq!(
            h.unified.unwrap().base,
            Path::new("/sys/fs/cgroup/user.slice/s.scope")
        );
    }

    #[test]
    fn mount_root_prefix_and_escapes() {
        let mi = "30 23 0:26 /docker/x /sys/fs/my\\040cg rw - cgroup2 cgroup2 rw\n";
        let h = Host::from_texts(mi, "0::/docker/x/inner\n").unwrap();
        assert_eq!(h.unified.unwrap().base, Path::new("/sys/fs/my cg/inner"));
        assert!(Host::from_texts("", "0::/\n").is_err());
    }

    #[test]
    fn a_cgroup_outside_the_mount_root_maps_to_the_mount_point() {
        // "/docker/xy" shares a string prefix with the root "/docker/x" but
        // is not beneath it: no stray "y" directory.
        let mi = "30 23 0:26 /docker/x /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        for cg in ["0::/docker/xy\n", "0::/elsewhere\n", "0::/docker/x\n"] {
            let h = Host::from_texts(mi, cg).unwrap();
            let base = h.unified.unwrap().base;
            assert_eq!(base.as_os_str(), "/sys/fs/cgroup", "{cg}");
        }
    }
}
