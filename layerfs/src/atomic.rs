//! The store's files and lock, through `atomicfile` (atomic replacement,
//! flock), with their directories made on demand: a fresh `--root` is
//! created by its first write.

use std::io;
use std::path::Path;

pub use atomicfile::Lock;

/// Writes `bytes` to `path` atomically (`atomicfile::write`), making the
/// directory first when missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    make_parent(path)?;
    atomicfile::write(path, bytes)
}

/// Takes the store lock at `path` (made if missing), exclusive or shared.
pub fn take_lock(path: &Path, exclusive: bool) -> io::Result<Lock> {
    make_parent(path)?;
    if exclusive {
        atomicfile::lock(path)
    } else {
        atomicfile::lock_shared(path)
    }
}

fn make_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => std::fs::create_dir_all(d),
        _ => Ok(()),
    }
}
