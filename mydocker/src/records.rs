//! Container records, read through `ctrstate`.

use crate::context::Ctx;
use crate::error::{Error, Result};
use ctrstate::record::Record;

pub fn get(ctx: &Ctx, r: &str) -> Result<Record> {
    let v = ctx
        .ctrstate()
        .args(["get", r])
        .json()
        .map_err(|e| match e {
            Error::Tool { msg, .. } => Error::Daemon(msg),
            e => e,
        })?;
    serde_json::from_value(v)
        .map_err(|e| Error::Daemon(format!("ctrstate get {r}: bad record: {e}")))
}

pub fn list(ctx: &Ctx) -> Result<Vec<Record>> {
    let v = ctx.ctrstate().arg("ls").json()?;
    serde_json::from_value(v).map_err(|e| Error::Daemon(format!("ctrstate ls: bad records: {e}")))
}

/// Crash recovery, at the start of every command: `ctrstate reconcile`
/// settles records whose supervisor or process is gone (see launch.rs's
/// module doc for why that is enough); each changed one then gets the
/// stop teardown its dead supervisor never ran (nsrun state and cgroup,
/// networks, netns file, rootfs mount), and an abandoned launch's init
/// (still blocked on its exec fifo, or running unwatched) is killed and
/// its pid cleared. Every step is idempotent: a crash here is redone by
/// the next command.
pub fn reconcile(ctx: &Ctx) {
    finish_removals(ctx);
    let Ok(out) = ctx.ctrstate().arg("reconcile").json() else {
        return;
    };
    let Ok(changed) = serde_json::from_value::<Vec<Record>>(out) else {
        return;
    };
    for r in changed {
        let abandoned = r.status == ctrstate::record::Status::Created;
        if abandoned && alive(r.pid, r.pid_start_time) {
            kill(r.pid, r.pid_start_time);
        }
        let _ = crate::teardown::stop_teardown(ctx, &r.id);
        if abandoned {
            let _ = ctx
                .ctrstate()
                .args(["update", &r.id])
                .stdin_json(&serde_json::json!({"pid": 0, "pidStartTime": 0}))
                .output();
        }
    }
}

/// Finishes the `rm` of every container whose record is gone but whose
/// directory is not: `ctrstate rm` removes the directory entry by entry, so
/// a kill in the middle leaves it without `state.json` (a container
/// directory never appears without one: `ctrstate create` renames it into
/// place whole). `rm` releases everything else before it removes the
/// record; the teardown is redone anyway, being idempotent and cheap.
fn finish_removals(ctx: &Ctx) {
    let Ok(dir) = std::fs::read_dir(ctx.container_dir("")) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let full_id = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if full_id && !e.path().join("state.json").exists() && e.path().is_dir() {
            let _ = crate::teardown::remove_teardown(ctx, &name);
        }
    }
}

/// SIGKILL to `pid` if it is still the process that started at
/// `start_time`, through a pidfd so that a pid reused in between is never hit.
fn kill(pid: u32, start_time: u64) {
    // SAFETY: plain syscalls on integers we own; the fd is closed below.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) as i32;
        if fd < 0 {
            return;
        }
        if alive(pid, start_time) {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd,
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
        libc::close(fd);
    }
}

/// True while `pid` is alive and is still the process that started at `start_time`.
pub fn alive(pid: u32, start_time: u64) -> bool {
    pid != 0
        && ctrstate::procfs::pid_start_time(pid).is_some_and(|t| start_time == 0 || t == start_time)
}

/// Reads the record straight from disk (cheap enough to poll): writes are
/// atomic renames, so a read never sees half a record.
pub fn peek(ctx: &Ctx, id: &str) -> Option<Record> {
    let data = std::fs::read(ctx.container_dir(id).join("state.json")).ok()?;
    serde_json::from_slice(&data).ok()
}
