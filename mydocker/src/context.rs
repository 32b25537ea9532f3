//! Where things live for one invocation: the store root, the runtime dir, and
//! the tool calls bound to them.

use crate::tools::Call;
use std::path::{Path, PathBuf};

pub struct Ctx {
    /// The store root (`--root`): images, containers, volumes, networks.
    pub root: PathBuf,
    /// Runtime state that dies with a reboot: nsrun's state, netns files.
    pub run: PathBuf,
}

impl Ctx {
    pub fn new(root: &Path) -> Ctx {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        // A non-default root (tests, side-by-side installs) keeps its runtime
        // state beside it, so two roots never share a runtime dir.
        let run = match std::env::var_os("MYDOCKER_RUN") {
            Some(r) => PathBuf::from(r),
            None if root == Path::new("/var/lib/mydocker") => PathBuf::from("/run/mydocker"),
            None => root.join("run"),
        };
        Ctx { root, run }
    }
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }
    pub fn nsrun_root(&self) -> PathBuf {
        self.run.join("nsrun")
    }
    pub fn ctrstate(&self) -> Call {
        Call::new("ctrstate", &self.root)
    }
    pub fn layerfs(&self) -> Call {
        Call::new("layerfs", &self.root)
    }
    pub fn netbr(&self) -> Call {
        Call::new("netbr", &self.root)
    }
    pub fn cgctl(&self) -> Call {
        Call::new("cgctl", &self.root)
    }
    /// The container's cgroup as nsrun made it and cgctl finds it (its
    /// `linux.cgroupsPath`, from the record's settings).
    pub fn cgroup(&self, rec: &ctrstate::record::Record) -> String {
        let sec: crate::security::Security = rec
            .config
            .get("security")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        sec.cgroups_path(&rec.id)
    }
    pub fn nsrun(&self) -> Call {
        Call::new("nsrun", &self.nsrun_root())
    }
}
