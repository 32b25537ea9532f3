//! Reading and writing cgroup control files, with errors that name the file
//! and the value.

use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CgFileError {
    #[error("write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },
}

type Result<T> = std::result::Result<T, CgFileError>;

/// Writes `value` with one write(2), as cgroupfs wants (no O_TRUNC games,
/// no buffering that could split it).
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    let err = |source| CgFileError::Write {
        path: path.clone(),
        value: value.to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

pub fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| CgFileError::Read { path, source })
}

/// Reads a file holding one number or `max` (None).
pub fn read_limit(dir: &Path, file: &str) -> Result<Option<u64>> {
    let s = read(dir, file)?;
    let t = s.trim();
    if t == "max" {
        return Ok(None);
    }
    t.parse().map(Some).map_err(|_| CgFileError::Parse {
        path: dir.join(file),
        content: s.clone(),
    })
}

/// The value of `key` in a flat-keyed file (`key value` lines: memory.events,
/// cpu.stat, memory.oom_control).
pub fn read_key(dir: &Path, file: &str, key: &str) -> Result<Option<u64>> {
    let s = read(dir, file)?;
    Ok(s.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    }))
}

/// The pids in a `cgroup.procs` file (empty when the directory is gone).
pub fn procs(dir: &Path) -> Result<Vec<i32>> {
    match read(dir, "cgroup.procs") {
        Ok(s) => Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(CgFileError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

pub fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}
