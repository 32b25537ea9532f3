//! Usage numbers of a cgroup, from whichever hierarchy holds each controller.

use crate::cgfile::{self, CgFileError};
use crate::cgroup::dir_with;
use crate::hierarchy::is_v2_dir;
use serde::Serialize;
use std::path::PathBuf;

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
    } else if let Some(d) = dir_with(paths, "memory.current") {
        s.memory.usage = cgfile::read_limit(d, "memory.current")?.unwrap_or(0);
        s.memory.max_usage = cgfile::read_limit(d, "memory.peak").ok().flatten();
        s.memory.limit = cgfile::read_limit(d, "memory.max")?;
        s.memory.oom_kill_count = cgfile::read_key(d, "memory.events", "oom_kill")?.unwrap_or(0);
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
