//! Usage numbers of a cgroup, from whichever hierarchy holds each controller.

use crate::cgfile::{self, CgFileError};
use crate::cgroup::dir_with;
use crate::hierarchy::is_v2_dir;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub type StatsError = CgFileError;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    /// Bytes in use now.
    pub usage: u64,
    /// Peak bytes (v1 max_usage_in_bytes, v2 memory.peak); null if unknown.
    pub max_usage: Option<u64>,
    /// Bytes; null when unlimited.
    pub limit: Option<u64>,
    pub oom_kill_count: u64,
    /// memory.stat's counters under the kernel's names (v1's or v2's).
    pub stat: BTreeMap<String, u64>,
}

/// One block I/O counter of one device.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IoEntry {
    pub major: u64,
    pub minor: u64,
    /// `read` or `write` (docker's lower-case ops of cgroup v2).
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IoStats {
    /// Bytes per device and op.
    pub service_bytes: Vec<IoEntry>,
    /// Operations per device and op.
    pub serviced: Vec<IoEntry>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    pub usage_ns: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PidsStats {
    pub current: u64,
    /// null when unlimited.
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub memory: MemoryStats,
    pub cpu: CpuStats,
    pub pids: PidsStats,
    pub io: IoStats,
}

/// `KEY VALUE` lines (memory.stat).
fn key_values(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// `MAJ:MIN`.
fn device(d: &str) -> Option<(u64, u64)> {
    let (a, b) = d.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// v1 `blkio.*` lines `MAJ:MIN Read|Write|... N` (the Total line dropped),
/// reads and writes only.
fn blkio_v1(text: &str) -> Vec<IoEntry> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (major, minor) = device(w.next()?)?;
            let op = w.next()?.to_ascii_lowercase();
            let value = w.next()?.parse().ok()?;
            matches!(op.as_str(), "read" | "write").then_some(IoEntry {
                major,
                minor,
                op,
                value,
            })
        })
        .collect()
}

/// v2 `io.stat` lines `MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...`:
/// (bytes, operations).
fn io_v2(text: &str) -> (Vec<IoEntry>, Vec<IoEntry>) {
    let (mut bytes, mut ios) = (vec![], vec![]);
    for l in text.lines() {
        let mut w = l.split_whitespace();
        let Some((major, minor)) = w.next().and_then(device) else {
            continue;
        };
        for kv in w {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "read"),
                "wbytes" => (&mut bytes, "write"),
                "rios" => (&mut ios, "read"),
                "wios" => (&mut ios, "write"),
                _ => continue,
            };
            list.push(IoEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    (bytes, ios)
}

/// The first of `files` in `d` with any entry (v1's CFQ counters are
/// empty without CFQ: the throttle ones count then).
fn first_blkio(d: &Path, files: &[&str]) -> Vec<IoEntry> {
    files
        .iter()
        .map(|f| blkio_v1(&cgfile::read(d, f).unwrap_or_default()))
        .find(|v| !v.is_empty())
        .unwrap_or_default()
}

/// v1 reports "unlimited" as a huge page-aligned number (PAGE_COUNTER_MAX).
fn unlimited_v1(n: Option<u64>) -> Option<u64> {
    n.filter(|&n| n < (1 << 62))
}

pub fn collect(paths: &[PathBuf]) -> Result<Stats, StatsError> {
    let mut s = Stats::default();
    if let Some(d) = dir_with(paths, "memory.usage_in_bytes") {
        s.memory.usage = cgfile::read_limit(d, "memory.usage_in_bytes")?.unwrap_or(0);
        s.memory.max_usage = cgfile::read_limit(d, "memory.max_usage_in_bytes")
            .ok()
            .flatten();
        s.memory.limit = unlimited_v1(cgfile::read_limit(d, "memory.limit_in_bytes")?);
        s.memory.oom_kill_count =
            cgfile::read_key(d, "memory.oom_control", "oom_kill")?.unwrap_or(0);
        s.memory.stat = key_values(&cgfile::read(d, "memory.stat").unwrap_or_default());
    } else if let Some(d) = dir_with(paths, "memory.current") {
        s.memory.usage = cgfile::read_limit(d, "memory.current")?.unwrap_or(0);
        s.memory.max_usage = cgfile::read_limit(d, "memory.peak").ok().flatten();
        s.memory.limit = cgfile::read_limit(d, "memory.max")?;
        s.memory.oom_kill_count = cgfile::read_key(d, "memory.events", "oom_kill")?.unwrap_or(0);
        s.memory.stat = key_values(&cgfile::read(d, "memory.stat").unwrap_or_default());
    }
    if let Some(d) = dir_with(paths, "blkio.throttle.io_service_bytes_recursive") {
        s.io.service_bytes = first_blkio(
            d,
            &[
                "blkio.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes_recursive",
            ],
        );
        s.io.serviced = first_blkio(
            d,
            &[
                "blkio.io_serviced_recursive",
                "blkio.throttle.io_serviced_recursive",
            ],
        );
    } else if let Some(d) = dir_with(paths, "io.stat") {
        (s.io.service_bytes, s.io.serviced) =
            io_v2(&cgfile::read(d, "io.stat").unwrap_or_default());
    }
    if let Some(d) = dir_with(paths, "cpuacct.usage") {
        s.cpu.usage_ns = cgfile::read_limit(d, "cpuacct.usage")?.unwrap_or(0);
    }
    if let Some(d) = dir_with(paths, "cpu.stat") {
        if is_v2_dir(d) {
            let us = |k| cgfile::read_key(d, "cpu.stat", k).map(|v| v.unwrap_or(0));
            if s.cpu.usage_ns == 0 {
                s.cpu.usage_ns = us("usage_usec")? * 1000;
            }
            s.cpu.throttled_periods = us("nr_throttled")?;
            s.cpu.throttled_ns = us("throttled_usec")? * 1000;
        } else {
            s.cpu.throttled_periods = cgfile::read_key(d, "cpu.stat", "nr_throttled")?.unwrap_or(0);
            s.cpu.throttled_ns = cgfile::read_key(d, "cpu.stat", "throttled_time")?.unwrap_or(0);
        }
    }
    if let Some(d) = dir_with(paths, "pids.current") {
        s.pids.current = cgfile::read_limit(d, "pids.current")?.unwrap_or(0);
        s.pids.limit = cgfile::read_limit(d, "pids.max")?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_and_io_stat_lines_become_entries() {
        let v1 = blkio_v1("8:0 Read 4096\n8:0 Write 512\n8:0 Sync 1\n8:0 Total 4608\nTotal 4608\n");
        assert_eq!(
            v1.iter()
                .map(|e| (e.major, e.minor, e.op.as_str(), e.value))
                .collect::<Vec<_>>(),
            [(8, 0, "read", 4096), (8, 0, "write", 512)]
        );
        let (b, n) = io_v2("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            (b[0].value, b[1].op.as_str(), b[1].value),
            (10, "write", 20)
        );
        assert_eq!((n[0].op.as_str(), n[0].value, n[1].value), ("read", 1, 2));
        assert_eq!(key_values("cache 4096\nrss 8192\n")["rss"], 8192);
    }
}
