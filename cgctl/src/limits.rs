//! Writing validated resources into a cgroup's directories. Which files a
//! directory has decides what is written there (v1 `memory.limit_in_bytes`,
//! v2 `memory.max`, ...), so the same code serves v1, v2 and hybrid hosts.

use crate::cgfile::{self, CgFileError};
use crate::hierarchy::is_v2_dir;
use crate::resources::{Limit, Resources};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error(transparent)]
    File(#[from] CgFileError),
    #[error("cannot apply {what}: no hierarchy with the {controller} controller among {dirs:?}")]
    NoController {
        what: &'static str,
        controller: &'static str,
        dirs: Vec<PathBuf>,
    },
}

type Result<T> = std::result::Result<T, LimitsError>;

#[derive(Default)]
struct Applied {
    memory: bool,
    cpu: bool,
    cpuset: bool,
    pids: bool,
    blkio: bool,
    swap: bool,
}

/// Applies `r` to every directory. Returns the settings the host cannot hold
/// and that were therefore skipped (`blockIO.weight` without a weight file,
/// `memory.swap` without swap accounting). A requested limit whose controller
/// exists nowhere is an error.
pub fn apply(r: &Resources, dirs: &[PathBuf]) -> Result<Vec<&'static str>> {
    let mut done = Applied::default();
    for d in dirs {
        if is_v2_dir(d) {
            apply_v2(r, d, &mut done)?;
        } else {
            apply_v1(r, d, &mut done)?;
        }
    }
    let m = &r.memory;
    let c = &r.cpu;
    let missing = |what, controller| LimitsError::NoController {
        what,
        controller,
        dirs: dirs.to_vec(),
    };
    if (m.limit.is_some() || m.reservation.is_some() || m.swap.is_some()) && !done.memory {
        return Err(missing("memory limits", "memory"));
    }
    if (c.shares.is_some() || c.quota.is_some() || c.period.is_some()) && !done.cpu {
        return Err(missing("cpu shares/quota/period", "cpu"));
    }
    if (c.cpus.is_some() || c.mems.is_some()) && !done.cpuset {
        return Err(missing("cpu.cpus/mems", "cpuset"));
    }
    if r.pids.is_some() && !done.pids {
        return Err(missing("pids.limit", "pids"));
    }
    let mut skipped = Vec::new();
    if r.blkio_weight.is_some() && !done.blkio {
        skipped.push("blockIO.weight");
    }
    if m.swap.is_some() && done.memory && !done.swap {
        skipped.push("memory.swap");
    }
    Ok(skipped)
}

fn apply_v1(r: &Resources, d: &Path, done: &mut Applied) -> Result<()> {
    let m = &r.memory;
    if cgfile::exists(d, "memory.limit_in_bytes") {
        done.memory = true;
        if let Some(res) = m.reservation {
            cgfile::write(d, "memory.soft_limit_in_bytes", &res.v1())?;
        }
        let memsw = "memory.memsw.limit_in_bytes";
        let has_memsw = cgfile::exists(d, memsw);
        match (m.limit, m.swap.filter(|_| has_memsw)) {
            (Some(l), Some(s)) => {
                // memory <= memory+swap at every moment: raise memsw first
                // when it grows, lower memory first when it shrinks
                let cur = cgfile::read_limit(d, memsw)?.unwrap_or(u64::MAX);
                let swap_first = match s {
                    Limit::Max => true,
                    Limit::Value(v) => v > cur,
                };
                if swap_first {
                    cgfile::write(d, memsw, &s.v1())?;
                    cgfile::write(d, "memory.limit_in_bytes", &l.v1())?;
                } else {
                    cgfile::write(d, "memory.limit_in_bytes", &l.v1())?;
                    cgfile::write(d, memsw, &s.v1())?;
                }
                done.swap = true;
            }
            (Some(l), None) => cgfile::write(d, "memory.limit_in_bytes", &l.v1())?,
            (None, Some(s)) => {
                cgfile::write(d, memsw, &s.v1())?;
                done.swap = true;
            }
            (None, None) => {}
        }
    }
    let c = &r.cpu;
    if cgfile::exists(d, "cpu.shares") {
        done.cpu = true;
        if let Some(s) = c.shares {
            cgfile::write(d, "cpu.shares", &s.to_string())?;
        }
        if let Some(p) = c.period {
            cgfile::write(d, "cpu.cfs_period_us", &p.to_string())?;
        }
        if let Some(q) = c.quota {
            cgfile::write(d, "cpu.cfs_quota_us", &q.v1())?;
        }
    }
    if cgfile::exists(d, "cpuset.cpus") {
        done.cpuset = true;
        if let Some(s) = &c.cpus {
            cgfile::write(d, "cpuset.cpus", &s.text)?;
        }
        if let Some(s) = &c.mems {
            cgfile::write(d, "cpuset.mems", &s.text)?;
        }
    }
    if cgfile::exists(d, "pids.max") {
        done.pids = true;
        if let Some(p) = r.pids {
            cgfile::write(d, "pids.max", &p.v2())?;
        }
    }
    if let Some(w) = r.blkio_weight {
        for f in ["blkio.weight", "blkio.bfq.weight"] {
            if cgfile::exists(d, f) {
                cgfile::write(d, f, &w.to_string())?;
                done.blkio = true;
                break;
            }
        }
    }
    Ok(())
}

fn apply_v2(r: &Resources, d: &Path, done: &mut Applied) -> Result<()> {
    let m = &r.memory;
    if cgfile::exists(d, "memory.max") {
        done.memory = true;
        if let Some(res) = m.reservation {
            cgfile::write(d, "memory.low", &res.v2())?;
        }
        if let Some(l) = m.limit {
            cgfile::write(d, "memory.max", &l.v2())?;
        }
        if let Some(s) = m.v2_swap() {
            if cgfile::exists(d, "memory.swap.max") {
                cgfile::write(d, "memory.swap.max", &s.v2())?;
                done.swap = true;
            }
        }
    }
    let c = &r.cpu;
    if cgfile::exists(d, "cpu.max") {
        done.cpu = true;
        if let Some(w) = c.weight() {
            cgfile::write(d, "cpu.weight", &w.to_string())?;
        }
        match (c.quota, c.period) {
            (Some(q), Some(p)) => cgfile::write(d, "cpu.max", &format!("{} {p}", q.v2()))?,
            (Some(q), None) => cgfile::write(d, "cpu.max", &q.v2())?,
            (None, Some(p)) => {
                // cpu.max takes "quota period": keep the quota that is there
                let cur = cgfile::read(d, "cpu.max")?;
                let q = cur.split_whitespace().next().unwrap_or("max").to_string();
                cgfile::write(d, "cpu.max", &format!("{q} {p}"))?
            }
            (None, None) => {}
        }
    }
    if cgfile::exists(d, "cpuset.cpus") {
        done.cpuset = true;
        if let Some(s) = &c.cpus {
            cgfile::write(d, "cpuset.cpus", &s.text)?;
        }
        if let Some(s) = &c.mems {
            cgfile::write(d, "cpuset.mems", &s.text)?;
        }
    }
    if cgfile::exists(d, "pids.max") {
        done.pids = true;
        if let Some(p) = r.pids {
            cgfile::write(d, "pids.max", &p.v2())?;
        }
    }
    if let (Some(w), Some(iow)) = (r.blkio_weight, r.io_weight()) {
        // BFQ takes the v1 scale; the generic io.weight the 1..10000 one
        if cgfile::exists(d, "io.bfq.weight") {
            cgfile::write(d, "io.bfq.weight", &w.to_string())?;
            done.blkio = true;
        } else if cgfile::exists(d, "io.weight") {
            cgfile::write(d, "io.weight", &iow.to_string())?;
            done.blkio = true;
        }
    }
    Ok(())
}
