//! Resolving a path inside a root directory, creating what is missing, so a
//! symlink in an image (`/evil -> /`, `../..`) can never send a mount target
//! outside the rootfs: every lookup is `openat2(rootfd, .., RESOLVE_IN_ROOT)`,
//! and every creation happens relative to an fd already resolved inside.

use crate::sys;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

#[derive(Debug, thiserror::Error)]
#[error("resolve {path} in rootfs: {step}: {err}")]
pub struct ResolveError {
    pub path: PathBuf,
    pub step: &'static str,
    pub err: String,
}

fn fail(path: &Path, step: &'static str, e: io::Error) -> ResolveError {
    ResolveError {
        path: path.to_path_buf(),
        step,
        err: sys::errstr(&e),
    }
}

fn lookup(root: &OwnedFd, p: &Path) -> io::Result<OwnedFd> {
    let rel = if p.as_os_str().is_empty() {
        Path::new(".")
    } else {
        p
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, rel, how).map_err(io::Error::from)
}

/// Opens `path` inside `root` as an O_PATH fd if it exists (creating nothing).
pub fn find(root: &OwnedFd, path: &Path) -> Option<OwnedFd> {
    lookup(root, path).ok()
}

/// Opens `path` (absolute or relative, taken inside `root`) as an O_PATH fd,
/// creating missing directories, and the last component as `kind`.
pub fn ensure(root: &OwnedFd, path: &Path, kind: Kind) -> Result<OwnedFd, ResolveError> {
    if let Ok(fd) = lookup(root, path) {
        return Ok(fd);
    }
    let comps: Vec<Component> = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    let mut cur = lookup(root, Path::new("")).map_err(|e| fail(path, "open rootfs", e))?;
    let mut prefix = PathBuf::new();
    for (i, c) in comps.iter().enumerate() {
        prefix.push(c.as_os_str());
        match lookup(root, &prefix) {
            Ok(fd) => cur = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let Component::Normal(name) = c else {
                    return Err(fail(path, "lookup", e));
                };
                let last = i + 1 == comps.len();
                let r = if last && kind == Kind::File {
                    let flags =
                        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                    // The new file is only made here; the fd closes at once.
                    nix::fcntl::openat(&cur, *name, flags, Mode::from_bits_retain(0o644)).map(drop)
                } else {
                    nix::sys::stat::mkdirat(&cur, *name, Mode::from_bits_retain(0o755))
                };
                if let Err(e) = r {
                    let e = io::Error::from(e);
                    // EEXIST here is a dangling symlink: its target resolves
                    // (inside the root) to something missing.
                    let step = if e.raw_os_error() == Some(libc::EEXIST) {
                        "dangling symlink"
                    } else {
                        "create"
                    };
                    return Err(fail(path, step, e));
                }
                cur = lookup(root, &prefix).map_err(|e| fail(path, "reopen", e))?;
            }
            Err(e) => return Err(fail(path, "lookup", e)),
        }
    }
    Ok(cur)
}

/// The path that names an fd for mount(2) and friends.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("nsrun-resolve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn symlinks_stay_inside_root() {
        let root = tmp("sym");
        std::os::unix::fs::symlink("/", root.join("evil")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("up")).unwrap();
        let rfd = sys::open(&root, libc::O_PATH | libc::O_DIRECTORY, 0).unwrap();
        let name = format!("nsrun-resolve-escape-{}", std::process::id());
        ensure(&rfd, &Path::new("/evil").join(&name), Kind::Dir).unwrap();
        ensure(&rfd, &Path::new("up/x").join(&name), Kind::File).unwrap();
        assert!(root.join(&name).is_dir());
        assert!(root.join("x").join(&name).is_file());
        assert!(!Path::new("/").join(&name).exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
