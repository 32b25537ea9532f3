//! cgctl: cgroups for mydocker on v1, v2 and hybrid hosts: create with
//! limits, attach, update, stats, freeze/thaw, procs, delete.
//!
//! # CLI contract
//!
//! `cgctl [--root DIR] SUBCOMMAND`; `--root` defaults to `$MYDOCKER_ROOT`, else
//! `/var/lib/mydocker`. Every subcommand prints one JSON document on stdout.
//!
//! - `create NAME` reads resources JSON on stdin in the OCI `linux.resources`
//!   shape: `memory` {limit, reservation, swap, swappiness, disableOOMKiller;
//!   kernel, kernelTCP and useHierarchy are accepted and ignored, as runc 1.1
//!   does}, `cpu` {shares, quota, period, burst, realtimeRuntime,
//!   realtimePeriod, cpus, mems, idle}, `pids` {limit}, `blockIO` {weight,
//!   leafWeight, weightDevice, throttle{Read,Write}{Bps,IOPS}Device},
//!   `hugepageLimits`, `network` {classID, priorities}, `rdma`, `unified`
//!   (v2 file -> value; keys are file names, never paths), `devices` (device
//!   rules). Byte sizes may also be strings like `"64m"`; `-1` or `"max"` =
//!   unlimited; empty stdin or `{}` = no limits; unknown fields ignored. It
//!   makes the cgroup under the CALLER's own cgroup in every mounted
//!   hierarchy and prints `{"name","paths":[...],"mode":"v1"|"v2"|"hybrid"}`.
//!   Already there: applies the limits again. Invalid values (negative, zero,
//!   out of range, a cpuset outside the caller's cpus, a malformed size, a
//!   `unified` key with `/` or `..`) are refused with exit 2 before anything
//!   is made. A setting this host cannot hold (no directory has its file,
//!   e.g. `blockIO.weight` without a weight file, `memory.swappiness` on v2)
//!   fails with exit 1 naming the field and the file, before any limit is
//!   written; a failure removes what this call made.
//! - `set NAME` (resources JSON on stdin): applies limits to an existing
//!   cgroup; prints the same object as create.
//! - `attach NAME PID`: writes PID to `cgroup.procs` in every directory;
//!   prints `{"name","pid","paths"}`.
//! - `procs NAME`: prints a JSON array of pids.
//! - `freeze NAME` / `thaw NAME`: waits until the kernel reports it done;
//!   prints `{"name","state":"frozen"|"thawed"}`.
//! - `stats NAME`: prints `{"memory":{"usage","maxUsage","limit",
//!   "oomKillCount","stat":{memory.stat's KEY: N}},"cpu":{"usageNs",
//!   "throttledPeriods","throttledNs"},"pids":{"current","limit"},
//!   "io":{"serviceBytes","serviced":[{"major","minor","op","value"}]}}`;
//!   `maxUsage` and both `limit`s are null when unknown/unlimited; `op` is
//!   `read` or `write` (v1 blkio or v2 io.stat).
//! - `delete [--force] NAME`: removes every directory and the record; with
//!   processes left, fails naming them, or with `--force` SIGKILLs them
//!   (`cgroup.kill` on v2, thawing a frozen cgroup) and waits up to 5 s.
//!   Also removes NAME's parent components (`mydocker` of `mydocker/<id>`)
//!   when empty. Unknown NAME succeeds. Prints `{"name","removed","killed"}`.
//! - `mode`: prints `{"mode","v1":[{"controllers","mountpoint","base"}],
//!   "unified":{"mountpoint","base"}|null}`.
//!
//! NAME is a relative path (`mydocker/<id>`) of `[A-Za-z0-9_.-]+` components.
//! The record `ROOT/cgroups/<NAME with / as %>.json` lists the directories
//! (`{"name","mode","paths"}`), written atomically under a flock on
//! `ROOT/cgroups/.lock`, so any later call from any cgroup finds them.
//!
//! Cgroups cgctl did not record (nsrun's, made through `runtime::Cgroup`):
//! `set`, `attach`, `procs`, `freeze`, `thaw`, `stats` and `delete` with a
//! NAME that has no record read NAME as an OCI cgroupsPath (components
//! `[A-Za-z0-9_.:-]+`): relative = under the caller's own cgroup in each
//! hierarchy (on pure v2 under the nearest ancestor holding no processes, as
//! create does), `/abs` = from each hierarchy's mount point; and use those
//! of its directories that exist. None exists: NotFound (exit 1), or for
//! `delete` success with nothing removed. `delete` of such a cgroup removes
//! the empty parent components of a relative NAME, never of an absolute one.
//! So `cgctl stats nsrun/<id>` reaches a container nsrun made with the
//! default cgroupsPath, when called from the same cgroup as nsrun.
//!
//! Hierarchies: every v1 hierarchy with controllers (named ones like
//! `name=systemd` are skipped), plus the v2 one. On hybrid hosts the v2
//! directory is made too (no controllers are enabled there unless no v1
//! hierarchy has them: this host's `hugepageLimits` go there, with hugetlb
//! enabled from the caller's v2 cgroup down) and skipped if not writable and
//! not needed. On pure v2 the needed controllers (hugetlb and rdma only when
//! asked for) are enabled in `cgroup.subtree_control` from the base down; if
//! the caller's cgroup holds processes (the v2 "no internal processes" rule),
//! the cgroup is made under the nearest ancestor that holds none.
//! v1 cpuset directories get cpus/mems from their parent before any task.
//! v2 `cpu.weight` = 1 + (shares - 2) * 9999 / 262142; `memory.swap.max` =
//! swap - limit; `io.weight` = 1 + (weight - 10) * 9999 / 990 (`io.bfq.weight`
//! takes the v1 value); a throttle rate 0 lifts the limit (`max` in io.max).
//! Realtime runtime on a nested v1 cgroup needs its parents to have some:
//! cgctl does not hand runtime down.
//!
//! The library's runtime API is `runtime::Cgroup` (resolve an OCI
//! cgroupsPath, create with `resources::from_oci`, add_pid, update, freeze,
//! stats, delete): the same mechanism, with no record.
//!
//! Exit codes: 0 ok; 1 the operation failed (cgroup not found, kernel
//! refused a value, timeout, processes left without --force); 2 bad usage or
//! input (flags, NAME, PID, resources JSON). Errors are one line
//! `cgctl: ...` on stderr.

pub mod bpf;
mod cgfile;
pub mod cgroup;
pub mod devices;
pub mod freezer;
pub mod hierarchy;
mod limits;
pub mod name;
pub mod record;
pub mod resources;
pub mod runtime;
pub mod stats;

pub use cgroup::{Created, Deleted};
pub use freezer::State;
pub use hierarchy::{Host, Mode};
pub use name::CgroupName;
pub use resources::Resources;
pub use runtime::Cgroup;
pub use stats::Stats;

use cgroup::CgroupError;
use record::Store;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Name(#[from] name::NameError),
    #[error(transparent)]
    Resources(#[from] resources::ResourcesError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Freezer(#[from] freezer::FreezerError),
    #[error(transparent)]
    Stats(#[from] stats::StatsError),
    #[error(transparent)]
    Hierarchy(#[from] hierarchy::HierarchyError),
}

impl Error {
    /// 2 for bad input, 1 for a failed operation.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Name(_) | Error::Resources(_) => 2,
            Error::Cgroup(CgroupError::Resources(_) | CgroupError::BadPid { .. }) => 2,
            _ => 1,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The host's cgroup mode, from /proc/self/mountinfo.
pub fn mode() -> Result<Mode> {
    Ok(Host::detect()?.mode)
}

/// The library behind the CLI: one value per `--root`.
pub struct Cgctl {
    store: Store,
}

impl Cgctl {
    pub fn new(root: &Path) -> Cgctl {
        Cgctl {
            store: Store::new(root),
        }
    }

    pub fn create(&self, name: &str, resources_json: &str) -> Result<Created> {
        let name = CgroupName::parse(name)?;
        let res = resources::parse(resources_json)?;
        Ok(cgroup::create(&self.store, &name, &res)?)
    }

    /// NAME's directories: recorded, or found by resolving NAME as a
    /// cgroupsPath (a cgroup nsrun made).
    fn paths(&self, name: &str) -> Result<Vec<PathBuf>> {
        Ok(cgroup::find_or_fail(&self.store, name)?.0)
    }

    pub fn set(&self, name: &str, resources_json: &str) -> Result<Created> {
        let res = resources::parse(resources_json)?;
        let host = Host::detect()?;
        cgroup::check(&host, &res)?;
        let _lock = self.store.lock().map_err(CgroupError::from)?;
        let (paths, mode, _) = cgroup::find_or_fail(&self.store, name)?;
        limits::apply(&res, &paths).map_err(CgroupError::from)?;
        Ok(Created {
            name: name.to_string(),
            paths,
            mode,
        })
    }

    pub fn attach(&self, name: &str, pid: &str) -> Result<Vec<PathBuf>> {
        let paths = self.paths(name)?;
        let pid = cgroup::parse_pid(pid)?;
        cgroup::attach_to(&paths, pid)?;
        Ok(paths)
    }

    pub fn procs(&self, name: &str) -> Result<Vec<i32>> {
        Ok(cgroup::procs_in(&self.paths(name)?)?)
    }

    pub fn freeze(&self, name: &str) -> Result<State> {
        Ok(freezer::set(&self.paths(name)?, true)?)
    }

    pub fn thaw(&self, name: &str) -> Result<State> {
        Ok(freezer::set(&self.paths(name)?, false)?)
    }

    pub fn freezer_state(&self, name: &str) -> Result<State> {
        Ok(freezer::state(&self.paths(name)?)?)
    }

    pub fn stats(&self, name: &str) -> Result<Stats> {
        Ok(stats::collect(&self.paths(name)?)?)
    }

    /// True once the kernel's OOM killer has killed something in the cgroup.
    pub fn oom_killed(&self, name: &str) -> Result<bool> {
        Ok(self.stats(name)?.memory.oom_kill_count > 0)
    }

    /// Recorded: the record's directories and the record. Otherwise NAME's
    /// directories as a cgroupsPath, if any exist. Unknown NAME succeeds.
    pub fn delete(&self, name: &str, force: bool) -> Result<Deleted> {
        if let Ok(n) = CgroupName::parse(name) {
            if let Some(d) = cgroup::delete_recorded(&self.store, &n, force)? {
                return Ok(d);
            }
        }
        let (removed, killed) = match cgroup::find(&self.store, name)? {
            Some((paths, _, target)) => cgroup::remove(name, &paths, target.prunable(), force)?,
            None => (Vec::new(), Vec::new()),
        };
        Ok(Deleted {
            name: name.to_string(),
            removed,
            killed,
        })
    }
}
