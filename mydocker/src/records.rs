//! Container records, kept by `ctrstate`. Writes go through the tool;
//! reads use its library in-process (readers take no lock by ctrstate's
//! contract: records change by rename), which saves a process and a
//! JSON round trip on every `ps`, `inspect` and name lookup.

use crate::context::Ctx;
use crate::error::{Error, Result};
use ctrstate::record::Record;
use ctrstate::{RawRecord, RecordPatch, Store};

/// `ctrstate update ID` with a typed patch.
pub fn update(ctx: &Ctx, id: &str, patch: &RecordPatch) -> Result<()> {
    ctx.ctrstate()
        .args(["update", id])
        .stdin_json(&patch.to_json())
        .output()
        .map(drop)
}

fn store(ctx: &Ctx) -> Store {
    Store::open(&ctx.root)
}

/// The record of a full id, name or unique id prefix (as `ctrstate get`).
pub fn get(ctx: &Ctx, r: &str) -> Result<Record> {
    let rec = store(ctx)
        .get(r)
        .map_err(|e| Error::Daemon(e.to_string()))?;
    Ok(settled(ctx, rec))
}

/// Every record newest first, each parsed on demand (`parse_listed`).
pub fn list_raw(ctx: &Ctx) -> Result<Vec<RawRecord>> {
    store(ctx).list_raw().map_err(ls_error)
}

/// The record for a listing (`ps`): every field but the run config, of
/// which only `labels` is kept. The config is most of a record's bytes
/// and its Value tree most of the cost of parsing 1,000 of them; a
/// record that needs settling is read again whole (`settled`).
pub fn parse_listed(ctx: &Ctx, raw: &RawRecord) -> Result<Record> {
    let l: Listed = raw.parse_as().map_err(ls_error)?;
    let mut config = serde_json::Map::new();
    if let Some(labels) = l.config.labels {
        config.insert("labels".into(), labels);
    }
    let r = Record {
        id: l.id,
        name: l.name,
        image: l.image,
        image_id: l.image_id,
        command: l.command,
        created: l.created,
        status: l.status,
        pid: l.pid,
        pid_start_time: l.pid_start_time,
        supervisor_pid: l.supervisor_pid,
        started_at: l.started_at,
        finished_at: l.finished_at,
        exit_code: l.exit_code,
        oom_killed: l.oom_killed,
        restart_count: l.restart_count,
        ports: l.ports,
        mounts: l.mounts,
        network: l.network,
        config,
        error: l.error,
        health: l.health,
    };
    Ok(settled(ctx, r))
}

/// `Record`'s fields, its config but `labels` skipped unparsed.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Listed {
    id: String,
    name: String,
    image: String,
    image_id: String,
    command: Vec<String>,
    created: String,
    status: ctrstate::record::Status,
    pid: u32,
    pid_start_time: u64,
    supervisor_pid: Option<u32>,
    started_at: String,
    finished_at: String,
    exit_code: i32,
    oom_killed: bool,
    restart_count: u32,
    ports: Vec<serde_json::Value>,
    mounts: Vec<serde_json::Value>,
    network: serde_json::Value,
    config: ListedConfig,
    error: Option<String>,
    health: serde_json::Value,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct ListedConfig {
    labels: Option<serde_json::Value>,
}

impl Default for Listed {
    /// `Record::default()`'s values (its zero times).
    fn default() -> Self {
        let r = Record::default();
        Listed {
            id: r.id,
            name: r.name,
            image: r.image,
            image_id: r.image_id,
            command: r.command,
            created: r.created,
            status: r.status,
            pid: r.pid,
            pid_start_time: r.pid_start_time,
            supervisor_pid: r.supervisor_pid,
            started_at: r.started_at,
            finished_at: r.finished_at,
            exit_code: r.exit_code,
            oom_killed: r.oom_killed,
            restart_count: r.restart_count,
            ports: r.ports,
            mounts: r.mounts,
            network: r.network,
            config: ListedConfig::default(),
            error: r.error,
            health: r.health,
        }
    }
}

fn ls_error(e: ctrstate::StoreError) -> Error {
    Error::Tool {
        tool: "ctrstate".into(),
        step: "ls".into(),
        msg: e.to_string(),
    }
}

/// Every record, newest first (as `ctrstate ls`).
pub fn list(ctx: &Ctx) -> Result<Vec<Record>> {
    let all = store(ctx).list().map_err(ls_error)?;
    Ok(all.into_iter().map(|r| settled(ctx, r)).collect())
}

/// How long a read waits for a supervisor to record an exit.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `r`, or what its supervisor records next when `r` claims a process that
/// is gone (reaped) while its supervisor lives: the supervisor runs the
/// stop teardown and then records the exit (`supervise::finish`), and a
/// command in that window must not show the container running (an `exec`
/// right after would fail). Waits at most SETTLE_LIMIT; costs one
/// /proc read for a live record.
fn settled(ctx: &Ctx, r: Record) -> Record {
    use ctrstate::record::Status;
    let stale = |x: &Record| {
        matches!(x.status, Status::Running | Status::Paused)
            && x.pid != 0
            && !alive(x.pid, x.pid_start_time)
    };
    if !stale(&r) {
        return r;
    }
    let until = std::time::Instant::now() + SETTLE_LIMIT;
    let mut cur = r;
    while cur
        .supervisor_pid
        .is_some_and(|s| ctrstate::procfs::stat(s).is_some_and(|st| st.state != 'Z'))
        && std::time::Instant::now() < until
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
        match peek(ctx, &cur.id) {
            Some(n) if stale(&n) => cur = n,
            Some(n) => return n,
            None => break,
        }
    }
    cur
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
    // The usual answer is "nothing to do", found without a process: the
    // tool runs (and takes its lock) only when something changes.
    if !store(ctx).needs_reconcile().unwrap_or(true) {
        return;
    }
    let Ok(changed) = ctx.ctrstate().arg("reconcile").parse::<Vec<Record>>() else {
        return;
    };
    for r in changed {
        let abandoned = r.status == ctrstate::record::Status::Created;
        if abandoned && alive(r.pid, r.pid_start_time) {
            kill(r.pid, r.pid_start_time);
        }
        let _ = crate::teardown::stop_teardown(ctx, &r.id);
        if abandoned {
            let _ = update(
                ctx,
                &r.id,
                &RecordPatch {
                    pid: Some(0),
                    pid_start_time: Some(0),
                    ..Default::default()
                },
            );
        }
    }
}

/// Finishes the `rm` of every container whose record is gone but whose
/// directory is not: `ctrstate rm` moves the directory under `.removing`
/// and then deletes it, so a kill in the middle leaves it there (one
/// readdir finds them; a container directory never appears without its
/// record: `ctrstate create` renames it into place whole). `rm` releases
/// everything else before it removes the record; the teardown (which
/// ends with `ctrstate rm ID`, finishing the delete) is redone anyway,
/// being idempotent and cheap.
fn finish_removals(ctx: &Ctx) {
    for id in store(ctx).removing() {
        let _ = crate::teardown::remove_teardown(ctx, &id);
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
