//! Persistent network namespace files (`<dir>/<id>`, a bind mount of a
//! namespace's nsfs inode), and netlink sockets opened inside a namespace.
//!
//! Both switch namespaces on a short-lived thread only: a network namespace
//! is per thread, so the thread's unshare/setns dies with it and the rest of
//! the process never moves.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::netlink::{self, Netlink};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid netns id {id:?}: use letters, digits, '.', '_', '-'")]
    Id { id: String },
    #[error("netns {step} {path}: {err}")]
    Io {
        step: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("netns {step} {path}: {err}")]
    Sys {
        step: &'static str,
        path: PathBuf,
        err: nix::Error,
    },
    #[error("netns {path}: {err}")]
    Netlink { path: PathBuf, err: netlink::Error },
    #[error("netns helper thread panicked")]
    Thread,
}

pub type Result<T> = std::result::Result<T, Error>;

/// The netns dir: `$MYDOCKER_RUN/netns`, default `/run/mydocker/netns`.
pub fn default_dir() -> PathBuf {
    run_dir().join("netns")
}

/// `$MYDOCKER_RUN` or `/run/mydocker`.
pub fn run_dir() -> PathBuf {
    std::env::var_os("MYDOCKER_RUN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/mydocker"))
}

fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Id { id: id.into() })
    }
}

/// Creates `<dir>/<id>` holding a new network namespace. Already present
/// (and mounted) is success: the same path is returned.
pub fn add(dir: &Path, id: &str) -> Result<PathBuf> {
    check_id(id)?;
    let path = dir.join(id);
    let io = |step, err| Error::Io {
        step,
        path: path.clone(),
        err,
    };
    std::fs::create_dir_all(dir).map_err(|e| io("create dir", e))?;
    // mountinfo shows resolved paths.
    let real = dir
        .canonicalize()
        .map_err(|e| io("resolve dir", e))?
        .join(id);
    if path.exists() && mountinfo::is_mount_point(&real).unwrap_or(false) {
        return Ok(path);
    }
    File::create(&path).map_err(|e| io("create file", e))?;
    let p = path.clone();
    let res = std::thread::spawn(move || -> Result<()> {
        let sys = |step, err| Error::Sys {
            step,
            path: p.clone(),
            err,
        };
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| sys("unshare", e))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| sys("bind mount", e))
    })
    .join()
    .map_err(|_| Error::Thread)
    .and_then(|r| r);
    if let Err(e) = res {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Unmounts and removes `<dir>/<id>`; already gone is success.
pub fn del(dir: &Path, id: &str) -> Result<PathBuf> {
    check_id(id)?;
    let path = dir.join(id);
    // Until nothing is mounted there (a file bound twice has two layers).
    for _ in 0..16 {
        match umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => break,
            Err(err) => {
                return Err(Error::Sys {
                    step: "unmount",
                    path,
                    err,
                })
            }
        }
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(path),
        Err(err) => Err(Error::Io {
            step: "remove",
            path,
            err,
        }),
    }
}

/// Opens the namespace file (for IFLA_NET_NS_FD and for setns).
pub fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|err| Error::Io {
        step: "open",
        path: path.into(),
        err,
    })
}

/// A netlink socket inside the namespace `ns`: a thread enters it, opens
/// the socket and exits; the socket keeps talking to that namespace.
pub fn netlink_in(ns: &File, path: &Path) -> Result<Netlink> {
    let ns = ns.try_clone().map_err(|err| Error::Io {
        step: "dup",
        path: path.into(),
        err,
    })?;
    let p = path.to_path_buf();
    std::thread::spawn(move || -> Result<Netlink> {
        setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|err| Error::Sys {
            step: "setns",
            path: p.clone(),
            err,
        })?;
        Netlink::open().map_err(|err| Error::Netlink { path: p, err })
    })
    .join()
    .map_err(|_| Error::Thread)?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Removes the netns file and its dir even when the test fails.
    struct Guard(PathBuf);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = del(&self.0, "ns1");
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn add_twice_in_a_dir_with_a_space_mounts_once() {
        e2e::require_root!();
        let dir = std::env::temp_dir().join(format!("netbr netns {}", std::process::id()));
        let g = Guard(dir.clone());
        let p = add(&dir, "ns1").unwrap();
        assert_eq!(add(&dir, "ns1").unwrap(), p);
        let real = p.canonicalize().unwrap();
        let n = mountinfo::own()
            .unwrap()
            .iter()
            .filter(|m| m.mount_point == real)
            .count();
        assert_eq!(n, 1, "the second add must find the first mount");
        del(&dir, "ns1").unwrap();
        assert!(!p.exists());
        drop(g);
    }
}
