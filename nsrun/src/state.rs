//! The state dir: `ROOT/<id>/state.json` per container, and the live status
//! computed from the recorded pid and its start time.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const OCI_VERSION: &str = "1.0.2";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("{step} {path}: {err}")]
    Io {
        step: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("read state {path}: {err}")]
    Parse { path: PathBuf, err: String },
}

/// What nsrun records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// Field 22 of /proc/PID/stat: a reused pid has another start time.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

/// The OCI state document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: &'static str,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub annotations: HashMap<String, String>,
}

/// A container's directory under the state root.
/// The exec fifo's name in a container's dir.
pub const FIFO: &str = "exec.fifo";

pub struct Dir {
    pub id: String,
    pub path: PathBuf,
}

impl Dir {
    pub fn new(root: &Path, id: &str) -> Dir {
        Dir {
            id: id.to_string(),
            path: root.join(id),
        }
    }
    pub fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }
    pub fn config_file(&self) -> PathBuf {
        self.path.join("config.json")
    }
    /// The container's cgroup directories (written before they are made).
    pub fn cgroup_file(&self) -> PathBuf {
        self.path.join("cgroup.json")
    }
    pub fn fifo(&self) -> PathBuf {
        self.path.join(FIFO)
    }

    /// Creates the directory; an existing one means a duplicate id.
    pub fn create(&self) -> Result<(), StateError> {
        let root = self.path.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(root).map_err(|err| StateError::Io {
            step: "create state root",
            path: root.into(),
            err,
        })?;
        match std::fs::create_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StateError::Exists(self.id.clone()))
            }
            Err(err) => Err(StateError::Io {
                step: "create state dir",
                path: self.path.clone(),
                err,
            }),
        }
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    pub fn load(&self) -> Result<Record, StateError> {
        let p = self.state_file();
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(self.id.clone()))
            }
            Err(err) => {
                return Err(StateError::Io {
                    step: "read state",
                    path: p,
                    err,
                })
            }
        };
        serde_json::from_slice(&data).map_err(|e| StateError::Parse {
            path: p,
            err: e.to_string(),
        })
    }

    pub fn save(&self, r: &Record) -> Result<(), StateError> {
        let p = self.state_file();
        let data = serde_json::to_vec(r).expect("state serializes");
        crate::sys::write_replace(&p, &data).map_err(|err| StateError::Io {
            step: "write state",
            path: p,
            err,
        })
    }

    /// Removes the directory; already gone is fine.
    pub fn remove(&self) -> Result<(), StateError> {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(StateError::Io {
                step: "remove state dir",
                path: self.path.clone(),
                err,
            }),
        }
    }

    /// The live status of a recorded container.
    pub fn status(&self, r: &Record) -> Status {
        if !alive(r) {
            return Status::Stopped;
        }
        if self.fifo().exists() {
            Status::Created
        } else if crate::manage::is_paused(self) {
            Status::Paused
        } else {
            Status::Running
        }
    }

    pub fn oci_state(&self, r: &Record) -> OciState {
        let status = self.status(r);
        OciState {
            oci_version: OCI_VERSION,
            id: r.id.clone(),
            status,
            pid: if status == Status::Stopped { 0 } else { r.pid },
            bundle: r.bundle.clone(),
            rootfs: r.rootfs.clone(),
            created: r.created.clone(),
            annotations: r.annotations.clone(),
        }
    }
}

/// True when the recorded pid is the same process and not a zombie.
pub fn alive(r: &Record) -> bool {
    matches!(ctrstate::procfs::stat(r.pid as u32), Some(s) if s.start_time == r.pid_start_time && s.state != 'Z' && s.state != 'X')
}

/// Every container in `root` (ids whose state is unreadable are skipped; a
/// directory without state yet is being created).
pub fn list(root: &Path) -> Result<Vec<OciState>, StateError> {
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(StateError::Io {
                step: "read state root",
                path: root.into(),
                err,
            })
        }
    };
    let mut out = Vec::new();
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    for id in names {
        if crate::id::validate(&id).is_err() {
            continue;
        }
        let d = Dir::new(root, &id);
        match d.load() {
            Ok(r) => out.push(d.oci_state(&r)),
            Err(StateError::NotFound(_)) => out.push(OciState {
                oci_version: OCI_VERSION,
                id: id.clone(),
                status: Status::Creating,
                pid: 0,
                bundle: PathBuf::new(),
                rootfs: PathBuf::new(),
                created: String::new(),
                annotations: HashMap::new(),
            }),
            Err(_) => continue,
        }
    }
    Ok(out)
}
