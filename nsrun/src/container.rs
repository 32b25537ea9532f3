//! The lifecycle commands on an existing container: start, state, kill,
//! delete, list.

use crate::state::{self, Dir, OciState, Status};
use crate::sys;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::AsFd;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container {id:?} is {status}: {what}")]
    WrongStatus {
        id: String,
        status: String,
        what: &'static str,
    },
    #[error("{step} {id:?}: {err}")]
    Step {
        step: &'static str,
        id: String,
        err: String,
    },
}

fn status_name(s: Status) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Releases a created init: opens the exec fifo's read side (which unblocks
/// the init's open), reads its byte, removes the fifo.
pub fn start(root: &Path, id: &str) -> crate::Result<()> {
    crate::id::validate(id)?;
    let dir = Dir::new(root, id);
    let rec = dir.load()?;
    let status = dir.status(&rec);
    if status != Status::Created {
        return Err(ContainerError::WrongStatus {
            id: id.into(),
            status: status_name(status),
            what: "only a created container can be started",
        }
        .into());
    }
    let fifo = dir.fifo();
    let fd = sys::open(&fifo, libc::O_RDONLY | libc::O_NONBLOCK, 0).map_err(|e| {
        ContainerError::Step {
            step: "open exec fifo",
            id: id.into(),
            err: sys::errstr(&e),
        }
    })?;
    // The init opens the write side right away, writes one byte, and keeps
    // it open until its exec (close-on-exec): read the byte, then up to EOF,
    // so that `running` means the command runs. Poll in slices so a dead
    // init is noticed instead of waiting forever.
    let mut b = [0u8; 1];
    let mut got = false;
    loop {
        let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut p, PollTimeout::from(100u8));
        // -1: nothing to read yet (EAGAIN) or an error; the checks below decide.
        let n = nix::unistd::read(&fd, &mut b).map_or(-1, |n| n as isize);
        if n == 1 {
            got = true;
            continue;
        }
        if n == 0 && got {
            break; // the init exec'd (or died trying: its status shows it)
        }
        if n == 0 && !fifo.exists() {
            // A concurrent `start` took the byte and removed the fifo.
            return Err(ContainerError::WrongStatus {
                id: id.into(),
                status: "running".into(),
                what: "already started",
            }
            .into());
        }
        if !state::alive(&rec) {
            if got {
                break;
            }
            return Err(ContainerError::Step {
                step: "start",
                id: id.into(),
                err: "the init exited before start".into(),
            }
            .into());
        }
    }
    std::fs::remove_file(&fifo).map_err(|e| ContainerError::Step {
        step: "remove exec fifo",
        id: id.into(),
        err: e.to_string(),
    })?;
    if let Some(spec) = spec_of(&dir) {
        let st = serde_json::to_value(dir.oci_state(&rec)).unwrap_or_default();
        crate::hooks::run_warn(&spec, crate::hooks::Stage::Poststart, &st);
    }
    Ok(())
}

/// The container's config copy, for its hooks (None: unreadable).
fn spec_of(dir: &Dir) -> Option<oci_spec::runtime::Spec> {
    let raw = std::fs::read(dir.config_file()).ok()?;
    crate::config::parse(&raw).ok()
}

pub fn state(root: &Path, id: &str) -> crate::Result<OciState> {
    crate::id::validate(id)?;
    let dir = Dir::new(root, id);
    let rec = dir.load()?;
    Ok(dir.oci_state(&rec))
}

/// Sends `sig` (None: only checks it is alive) to a created or running init.
pub fn kill(
    root: &Path,
    id: &str,
    sig: Option<nix::sys::signal::Signal>,
    all: bool,
) -> crate::Result<()> {
    crate::id::validate(id)?;
    let dir = Dir::new(root, id);
    let rec = dir.load()?;
    let status = dir.status(&rec);
    if status == Status::Stopped {
        if all {
            // What the init left in its cgroup (a background child) still
            // gets the signal; nothing left is not an error (as runc).
            signal_cgroup(&dir, sig, None);
            return Ok(());
        }
        return Err(ContainerError::WrongStatus {
            id: id.into(),
            status: status_name(status),
            what: "nothing to signal",
        }
        .into());
    }
    // A pidfd pins the process: the signal cannot hit a pid reused since the check.
    let pidfd = sys::pidfd_open(rec.pid).map_err(|e| ContainerError::Step {
        step: "pidfd_open",
        id: id.into(),
        err: sys::errstr(&e),
    })?;
    if !state::alive(&rec) {
        return Err(ContainerError::WrongStatus {
            id: id.into(),
            status: "stopped".into(),
            what: "nothing to signal",
        }
        .into());
    }
    let signo = sig.map_or(0, |s| s as libc::c_int);
    if all {
        // Every other process of the container's cgroup first (not of its
        // pid namespace: a pod may share that with other containers).
        signal_cgroup(&dir, sig, Some(rec.pid));
    }
    match sys::pidfd_send_signal(&pidfd, signo) {
        // With --all the init may have exited on its own meanwhile (a shell
        // whose child was just killed): everything was signalled, as runc.
        Err(e) if all && e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
        r => r,
    }
    .map_err(|e| {
        ContainerError::Step {
            step: "kill",
            id: id.into(),
            err: sys::errstr(&e),
        }
        .into()
    })
}

/// Signals every process of the container's cgroup but `except`.
fn signal_cgroup(dir: &Dir, sig: Option<nix::sys::signal::Signal>, except: Option<i32>) {
    if let Some(cg) = crate::cgroup::load(dir) {
        for p in cg.procs().unwrap_or_default() {
            if Some(p) != except {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
            }
        }
    }
}

/// Removes a container's state. Created: killed first. Running: only with
/// `force` (SIGKILL, then waits until it is dead). Unknown with `force`: ok.
pub fn delete(root: &Path, id: &str, force: bool) -> crate::Result<()> {
    crate::id::validate(id)?;
    let dir = Dir::new(root, id);
    let rec = match dir.load() {
        Ok(r) => r,
        // A create that died half-way: its cgroup is recorded first.
        Err(state::StateError::NotFound(_)) if force => return destroy(&dir),
        Err(state::StateError::NotFound(_)) if dir.exists() => {
            return Err(ContainerError::WrongStatus {
                id: id.into(),
                status: "creating".into(),
                what: "use --force to remove it",
            }
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    let status = dir.status(&rec);
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(ContainerError::WrongStatus {
            id: id.into(),
            status: status_name(status),
            what: "stop it or use --force",
        }
        .into());
    }
    if status == Status::Paused {
        // A frozen process keeps SIGKILL pending until it is thawed.
        if let Some(cg) = crate::cgroup::load(&dir) {
            let _ = cgctl::freezer::set(&cg.paths, false);
        }
    }
    if status != Status::Stopped {
        if let Ok(pidfd) = sys::pidfd_open(rec.pid) {
            if state::alive(&rec) {
                let _ = sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
                if !sys::pidfd_wait(&pidfd, 10_000) {
                    return Err(ContainerError::Step {
                        step: "wait for death after SIGKILL",
                        id: id.into(),
                        err: "timed out after 10s".into(),
                    }
                    .into());
                }
            }
        }
    }
    destroy(&dir)
}

/// Removes the cgroup (killing what the init left in it: daemons, exec'd
/// processes) and then the state dir.
/// Then the poststop hooks, with the last state (status stopped).
pub fn destroy(dir: &Dir) -> crate::Result<()> {
    let hooks = spec_of(dir)
        .filter(|s| !crate::hooks::of(s, crate::hooks::Stage::Poststop).is_empty())
        .and_then(|s| {
            let rec = dir.load().ok()?;
            let mut st = serde_json::to_value(dir.oci_state(&rec)).ok()?;
            st["status"] = "stopped".into();
            Some((s, st))
        });
    crate::cgroup::remove(dir)?;
    dir.remove()?;
    if let Some((spec, st)) = hooks {
        crate::hooks::run_warn(&spec, crate::hooks::Stage::Poststop, &st);
    }
    Ok(())
}

pub fn list(root: &Path) -> crate::Result<Vec<OciState>> {
    Ok(state::list(root)?)
}
