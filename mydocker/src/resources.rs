//! docker's resource flags (`-m 64m`, `--cpus 0.5`, ...) as OCI
//! `linux.resources` JSON for cgctl. Parsed and checked before anything runs.

use crate::error::{fail, Result};
use clap::Args;
use serde_json::{json, Map, Value};

#[derive(Args, Debug, Clone, Default)]
pub struct ResourceArgs {
    /// Memory limit (b, k, m, g).
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long = "cpus")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds.
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes in which to allow execution.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Tune the container's pids limit (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
}

/// docker's RAMInBytes: "64m", "1g", "512k", "100b", "1024".
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|r| r.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('b') => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    match num.parse::<f64>() {
        Ok(n) if n >= 0.0 && n.is_finite() => Ok((n * mult as f64) as i64),
        _ => fail(format!("invalid size: '{s}'")),
    }
}

impl ResourceArgs {
    pub fn is_empty(&self) -> bool {
        self.to_oci()
            .map(|v| v.as_object().is_none_or(|o| o.is_empty()))
            .unwrap_or(false)
    }

    pub fn to_oci(&self) -> Result<Value> {
        let mut mem = Map::new();
        let limit = self.memory.as_deref().map(parse_size).transpose()?;
        if let Some(l) = limit {
            if l < 6 * 1024 * 1024 {
                return fail("Minimum memory limit allowed is 6MB");
            }
            mem.insert("limit".into(), json!(l));
        }
        if let Some(r) = self
            .memory_reservation
            .as_deref()
            .map(parse_size)
            .transpose()?
        {
            mem.insert("reservation".into(), json!(r));
        }
        if let Some(s) = &self.memory_swap {
            let swap = if s.trim() == "-1" { -1 } else { parse_size(s)? };
            match limit {
                None => {
                    return fail(
                        "You should always set the Memory limit when using Memoryswap limit",
                    )
                }
                Some(l) if swap != -1 && swap < l => {
                    return fail(
                        "Minimum memoryswap limit should be larger than memory limit, see usage",
                    )
                }
                _ => {}
            }
            mem.insert("swap".into(), json!(swap));
        }
        let mut cpu = Map::new();
        if let Some(c) = &self.cpus {
            let n: f64 = c.parse().map_err(|_| {
                crate::error::Error::Daemon(format!("invalid argument \"{c}\" for \"--cpus\" flag"))
            })?;
            let ncpu = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1) as f64;
            if n <= 0.0 || n > ncpu {
                return fail(format!("range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"));
            }
            if self.cpu_quota.is_some() || self.cpu_period.is_some() {
                return fail(
                    "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
                );
            }
            cpu.insert("period".into(), json!(100_000));
            cpu.insert("quota".into(), json!((n * 100_000.0).round() as i64));
        }
        if let Some(s) = self.cpu_shares {
            cpu.insert("shares".into(), json!(s));
        }
        if let Some(p) = self.cpu_period {
            if !(1000..=1_000_000).contains(&p) {
                return fail("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
            }
            cpu.insert("period".into(), json!(p));
        }
        if let Some(q) = self.cpu_quota {
            if q != -1 && q < 1000 {
                return fail("CPU cfs quota can not be less than 1ms (i.e. 1000)");
            }
            cpu.insert("quota".into(), json!(q));
        }
        if let Some(c) = &self.cpuset_cpus {
            cpu.insert("cpus".into(), json!(c));
        }
        if let Some(m) = &self.cpuset_mems {
            cpu.insert("mems".into(), json!(m));
        }
        let mut out = Map::new();
        if !mem.is_empty() {
            out.insert("memory".into(), Value::Object(mem));
        }
        if !cpu.is_empty() {
            out.insert("cpu".into(), Value::Object(cpu));
        }
        if let Some(p) = self.pids_limit {
            out.insert("pids".into(), json!({"limit": if p <= 0 { -1 } else { p }}));
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("100b").unwrap(), 100);
        assert_eq!(parse_size("64MB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("-5m").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn flags_become_oci_resources() {
        let a = ResourceArgs {
            memory: Some("64m".into()),
            cpus: Some("0.5".into()),
            pids_limit: Some(20),
            ..Default::default()
        };
        let v = a.to_oci().unwrap();
        assert_eq!(v["memory"]["limit"], 64 << 20);
        assert_eq!(v["cpu"]["quota"], 50_000);
        assert_eq!(v["cpu"]["period"], 100_000);
        assert_eq!(v["pids"]["limit"], 20);
        let bad = ResourceArgs {
            memory: Some("1k".into()),
            ..Default::default()
        };
        assert!(bad.to_oci().is_err());
        let bad = ResourceArgs {
            memory_swap: Some("1g".into()),
            ..Default::default()
        };
        assert!(bad.to_oci().is_err());
    }
}
