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
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|source| HierarchyError::Read {
                path: p.into(),
                source,
            })
        };
        Host::from_texts(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?)
    }

    /// The pure part of `detect`.
    pub fn from_texts(mountinfo: &str, self_cgroup: &str) -> Result<Host, HierarchyError> {
        let mounts: Vec<Mount> = mountinfo.lines().filter_map(Mount::parse).collect();
        let mut v1 = Vec::new();
        let mut unified = None;
        for line in self_cgroup.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(_id), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let path = path.trim_end_matches(" (deleted)");
            if ctrls.is_empty() {
                if let Some(m) = mounts.iter().find(|m| m.fstype == "cgroup2") {
                    unified = Some(V2 {
                        mountpoint: m.mountpoint.clone(),
                        base: m.dir_for(path),
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
                m.fstype == "cgroup"
                    && controllers
                        .iter()
                        .all(|c| m.superopts.iter().any(|o| o == c))
            });
            if let Some(m) = found {
                v1.push(V1 {
                    controllers,
                    mountpoint: m.mountpoint.clone(),
                    base: m.dir_for(path),
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

struct Mount {
    root: String,
    mountpoint: PathBuf,
    fstype: String,
    superopts: Vec<String>,
}

impl Mount {
    fn parse(line: &str) -> Option<Mount> {
        let (pre, post) = line.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let mut post = post.split(' ');
        let fstype = post.next()?.to_string();
        if fstype != "cgroup" && fstype != "cgroup2" {
            return None;
        }
        let _source = post.next()?;
        let superopts = post
            .next()
            .unwrap_or("")
            .split(',')
            .map(String::from)
            .collect();
        Some(Mount {
            root: unescape(pre.get(3)?),
            mountpoint: PathBuf::from(unescape(pre.get(4)?)),
            fstype,
            superopts,
        })
    }

    /// The directory of cgroup `path` under this mount: the mount shows the
    /// hierarchy from `root` down, so that prefix is dropped.
    fn dir_for(&self, path: &str) -> PathBuf {
        let rel = if self.root == "/" {
            path
        } else {
            path.strip_prefix(self.root.as_str()).unwrap_or("/")
        };
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            self.mountpoint.clone()
        } else {
            self.mountpoint.join(rel)
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
}
