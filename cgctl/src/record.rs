//! The per-cgroup record `ROOT/cgroups/<NAME with / as %>.json`: which
//! directories a cgroup has in each hierarchy, so any later call (from any
//! process, in any cgroup) finds them. Written atomically, under a flock
//! (both from `atomicfile`).

use crate::hierarchy::Mode;
use crate::name::CgroupName;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("record {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

type Result<T> = std::result::Result<T, RecordError>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub name: String,
    pub mode: Mode,
    /// The cgroup's directory in each hierarchy, v1 ones first.
    pub paths: Vec<PathBuf>,
}

pub struct Store {
    dir: PathBuf,
}

fn io<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RecordError + 'a {
    move |source| RecordError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            dir: root.join("cgroups"),
        }
    }

    pub fn path(&self, name: &CgroupName) -> PathBuf {
        self.dir.join(format!("{}.json", name.file_stem()))
    }

    /// Serializes create/set/delete across processes sharing this root.
    pub fn lock(&self) -> Result<atomicfile::Lock> {
        atomicfile::private_dir(&self.dir).map_err(io("create", &self.dir))?;
        let path = self.dir.join(".lock");
        atomicfile::lock(&path).map_err(io("lock", &path))
    }

    /// The record, or None when the cgroup is unknown.
    pub fn load(&self, name: &CgroupName) -> Result<Option<Record>> {
        let path = self.path(name);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| RecordError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// Atomic (`atomicfile::write`): a reader sees the old record or the new.
    pub fn save(&self, rec: &Record, name: &CgroupName) -> Result<()> {
        atomicfile::private_dir(&self.dir).map_err(io("create", &self.dir))?;
        let path = self.path(name);
        let body = serde_json::to_vec_pretty(rec).expect("record serializes");
        atomicfile::write(&path, &body).map_err(io("write", &path))
    }

    /// Removes the record; already gone is fine.
    pub fn remove(&self, name: &CgroupName) -> Result<()> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &path)(e)),
            _ => Ok(()),
        }
    }
}
