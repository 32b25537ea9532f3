//! Commands on a live container's cgroup, as runc has them: `pause`,
//! `resume`, `update` (new limits) and `ps` (its processes).

use crate::container::ContainerError;
use crate::state::{Dir, Status};
use cgctl::runtime::Cgroup;
use std::path::Path;

/// The recorded cgroup of a created, running or paused container.
fn live_cgroup(root: &Path, id: &str, what: &'static str) -> crate::Result<(Dir, Cgroup)> {
    crate::id::validate(id)?;
    let dir = Dir::new(root, id);
    let rec = dir.load()?;
    if dir.status(&rec) == Status::Stopped {
        return Err(ContainerError::WrongStatus {
            id: id.into(),
            status: "stopped".into(),
            what,
        }
        .into());
    }
    let cg = crate::cgroup::load(&dir).ok_or_else(|| ContainerError::Step {
        step: "find cgroup",
        id: id.into(),
        err: "the container has no cgroup record".into(),
    })?;
    Ok((dir, cg))
}

fn step(step: &'static str, id: &str, e: impl std::fmt::Display) -> crate::Error {
    ContainerError::Step {
        step,
        id: id.into(),
        err: e.to_string(),
    }
    .into()
}

/// Freezes (`pause`) or thaws (`resume`) every process of the container.
pub fn freeze(root: &Path, id: &str, frozen: bool) -> crate::Result<()> {
    let (_, cg) = live_cgroup(root, id, "nothing to pause or resume")?;
    cgctl::freezer::set(&cg.paths, frozen).map_err(|e| step("freeze", id, e))?;
    Ok(())
}

/// True when the container's cgroup is frozen.
pub fn is_paused(dir: &Dir) -> bool {
    crate::cgroup::load(dir)
        .and_then(|cg| cgctl::freezer::state(&cg.paths).ok())
        .is_some_and(|s| s == cgctl::State::Frozen)
}

/// Applies new limits (`linux.resources` JSON, sizes like "64m" allowed);
/// a bad value is refused before anything changes.
pub fn update(root: &Path, id: &str, resources_json: &str) -> crate::Result<()> {
    let res = cgctl::resources::parse(resources_json).map_err(|e| {
        crate::config::ConfigError::Invalid {
            field: "resources".into(),
            why: e.to_string(),
        }
    })?;
    let (_, cg) = live_cgroup(root, id, "nothing to update")?;
    cg.update(&res).map_err(|e| step("update", id, e))?;
    Ok(())
}

/// The pids of the container's cgroup, sorted.
pub fn pids(root: &Path, id: &str) -> crate::Result<Vec<i32>> {
    crate::id::validate(id)?;
    let dir = Dir::new(root, id);
    dir.load()?;
    match crate::cgroup::load(&dir) {
        Some(cg) => cg.procs().map_err(|e| step("list processes", id, e)),
        None => Ok(Vec::new()),
    }
}
