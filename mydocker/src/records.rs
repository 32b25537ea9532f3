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

/// Marks records whose process is gone as exited (a supervisor killed with -9).
pub fn reconcile(ctx: &Ctx) {
    let _ = ctx.ctrstate().arg("reconcile").output();
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
