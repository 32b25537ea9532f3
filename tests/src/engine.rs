//! Cleanup shared by the tests that start real engines (podman, containerd)
//! with a private store: what they mounted under it, and the cgroups they
//! made at each hierarchy's root.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Lazily unmounts every mount under `root`, innermost first.
pub fn unmount_under(root: &Path) {
    let mut ours = mountinfo::mounts_under(root).unwrap_or_default();
    ours.reverse();
    for m in ours {
        let _ = Command::new("umount").arg("-l").arg(&m).status();
    }
}

/// Each cgroup hierarchy's mount point (v1 controllers and the v2 one).
pub fn hierarchies() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.is_symlink() && p.join("cgroup.procs").exists())
        .collect()
}

/// Kills what is left in the cgroup tree `rel` (relative to each
/// hierarchy's root) and removes it, leaves first, retrying while the
/// killed processes exit. Only for trees the test itself made.
pub fn remove_cgroup_tree(rel: &str) {
    for h in hierarchies() {
        let dir = h.join(rel.trim_start_matches('/'));
        kill_tree(&dir);
        let t0 = Instant::now();
        while dir.exists() && t0.elapsed() < Duration::from_secs(5) {
            remove_once(&dir);
            if dir.exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn kill_tree(dir: &Path) {
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            kill_tree(&e.path());
        }
    }
}

fn remove_once(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_once(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}
