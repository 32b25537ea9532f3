//! Writing validated resources into a cgroup's directories. Which files a
//! directory has decides what is written there (v1 `memory.limit_in_bytes`,
//! v2 `memory.max`, ...), so the same code serves v1, v2 and hybrid hosts.
//!
//! Two steps: `plan` turns resources into the exact control-file writes,
//! looking only at which files exist (and, for write order, at a current
//! value), and refuses a setting no directory can hold, naming the field;
//! `apply` then does the writes in order. A refusal therefore writes nothing.

use crate::cgfile::{self, CgFileError};
use crate::hierarchy::is_v2_dir;
use crate::resources::{BlockIo, Limit, Resources};
use oci_spec::runtime::LinuxDeviceCgroup;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error(transparent)]
    File(#[from] CgFileError),
    #[error("resources {field}: not supported on this host (no {files})")]
    Unsupported { field: String, files: String },
    #[error(transparent)]
    Devices(#[from] crate::devices::DevicesError),
}

type Result<T> = std::result::Result<T, LimitsError>;

/// One write of `value` to `dir/file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub dir: PathBuf,
    pub file: String,
    pub value: String,
}

/// What `plan` may look at: the real cgroupfs, or a fake in tests.
pub trait Files {
    fn has(&self, dir: &Path, file: &str) -> bool;
    fn read(&self, dir: &Path, file: &str) -> Option<String>;
    fn is_v2(&self, dir: &Path) -> bool {
        self.has(dir, "cgroup.controllers")
    }
}

/// The live cgroupfs.
pub struct Real;

impl Files for Real {
    fn has(&self, dir: &Path, file: &str) -> bool {
        cgfile::exists(dir, file)
    }
    fn read(&self, dir: &Path, file: &str) -> Option<String> {
        cgfile::read(dir, file).ok()
    }
    fn is_v2(&self, dir: &Path) -> bool {
        is_v2_dir(dir)
    }
}

/// Plans and applies `r` to the directories (v1 ones answer first). Device
/// rules go between the plan and the writes, so a refusal of either leaves
/// every limit as it was.
pub fn apply(r: &Resources, dirs: &[PathBuf]) -> Result<()> {
    let writes = plan(r, dirs, &Real)?;
    apply_devices(dirs, &r.devices)?;
    for w in &writes {
        cgfile::write(&w.dir, &w.file, &w.value)?;
    }
    Ok(())
}

/// The device allowlist, when the resources have one (no rules: the
/// cgroup's device access is left as it is).
fn apply_devices(dirs: &[PathBuf], devices: &[LinuxDeviceCgroup]) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    crate::devices::apply(dirs, &crate::devices::from_oci(devices)?)?;
    Ok(())
}

struct Planner<'a, F: Files> {
    dirs: &'a [PathBuf],
    fs: &'a F,
    out: Vec<Write>,
}

/// Where a setting goes: the v1 file, the v2 file, or neither.
#[derive(Clone, Copy)]
enum At<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl<'a, F: Files> Planner<'a, F> {
    /// The first v1 directory with `v1`, else the first v2 one with `v2`.
    fn find(&self, v1: Option<&str>, v2: Option<&str>) -> Option<At<'a>> {
        let dirs: &'a [PathBuf] = self.dirs;
        if let Some(f) = v1 {
            if let Some(d) = dirs.iter().find(|d| !self.fs.is_v2(d) && self.fs.has(d, f)) {
                return Some(At::V1(d));
            }
        }
        if let Some(f) = v2 {
            if let Some(d) = dirs.iter().find(|d| self.fs.is_v2(d) && self.fs.has(d, f)) {
                return Some(At::V2(d));
            }
        }
        None
    }

    /// Like `find`, or the error naming `field` and the files looked for.
    fn need(&self, field: &str, v1: Option<&str>, v2: Option<&str>) -> Result<At<'a>> {
        self.find(v1, v2).ok_or_else(|| LimitsError::Unsupported {
            field: field.to_string(),
            files: v1.into_iter().chain(v2).collect::<Vec<_>>().join(" or "),
        })
    }

    fn push(&mut self, dir: &Path, file: &str, value: impl Into<String>) {
        self.out.push(Write {
            dir: dir.to_path_buf(),
            file: file.to_string(),
            value: value.into(),
        });
    }

    /// A setting with one file per version and a value for each.
    fn simple(
        &mut self,
        field: &str,
        v1: Option<&str>,
        v2: Option<&str>,
        v1val: String,
        v2val: String,
    ) -> Result<()> {
        match self.need(field, v1, v2)? {
            At::V1(d) => self.push(d, v1.unwrap(), v1val),
            At::V2(d) => self.push(d, v2.unwrap(), v2val),
        }
        Ok(())
    }

    fn memory(&mut self, r: &Resources) -> Result<()> {
        let m = &r.memory;
        if let Some(res) = m.reservation {
            self.simple(
                "memory.reservation",
                Some("memory.soft_limit_in_bytes"),
                Some("memory.low"),
                res.v1(),
                res.v2(),
            )?;
        }
        let memsw = "memory.memsw.limit_in_bytes";
        if m.limit.is_some() || m.swap.is_some() {
            let field = if m.limit.is_some() {
                "memory.limit"
            } else {
                "memory.swap"
            };
            match self.need(field, Some("memory.limit_in_bytes"), Some("memory.max"))? {
                At::V1(d) => {
                    let has_memsw = self.fs.has(d, memsw);
                    // runc: lifting the memory limit lifts memory+swap too,
                    // or the kernel refuses memory > memsw
                    let swap = match (m.limit, m.swap) {
                        (Some(Limit::Max), None) if has_memsw => Some(Limit::Max),
                        (_, s) => s,
                    };
                    let swap = match swap {
                        Some(s) if has_memsw => Some(s),
                        // unlimited swap is what a host without swap accounting has
                        Some(Limit::Max) | None => None,
                        Some(Limit::Value(_)) => {
                            return Err(LimitsError::Unsupported {
                                field: "memory.swap".into(),
                                files: memsw.into(),
                            })
                        }
                    };
                    match (m.limit, swap) {
                        (Some(l), Some(s)) => {
                            // memory <= memory+swap at every moment: raise
                            // memsw first when it grows, else memory first
                            let cur = self
                                .fs
                                .read(d, memsw)
                                .and_then(|v| v.trim().parse::<u64>().ok())
                                .unwrap_or(u64::MAX);
                            let swap_first = match s {
                                Limit::Max => true,
                                Limit::Value(v) => v > cur,
                            };
                            if swap_first {
                                self.push(d, memsw, s.v1());
                                self.push(d, "memory.limit_in_bytes", l.v1());
                            } else {
                                self.push(d, "memory.limit_in_bytes", l.v1());
                                self.push(d, memsw, s.v1());
                            }
                        }
                        (Some(l), None) => self.push(d, "memory.limit_in_bytes", l.v1()),
                        (None, Some(s)) => self.push(d, memsw, s.v1()),
                        (None, None) => {}
                    }
                }
                At::V2(d) => {
                    if let Some(s) = m.v2_swap() {
                        if self.fs.has(d, "memory.swap.max") {
                            self.push(d, "memory.swap.max", s.v2());
                        } else if s != Limit::Max {
                            return Err(LimitsError::Unsupported {
                                field: "memory.swap".into(),
                                files: "memory.swap.max".into(),
                            });
                        }
                    }
                    if let Some(l) = m.limit {
                        self.push(d, "memory.max", l.v2());
                    }
                }
            }
        }
        if let Some(s) = m.swappiness {
            // v2 has no swappiness (crun refuses it there too)
            self.simple(
                "memory.swappiness",
                Some("memory.swappiness"),
                None,
                s.to_string(),
                String::new(),
            )?;
        }
        match m.disable_oom_killer {
            Some(true) => {
                self.simple(
                    "memory.disableOOMKiller",
                    Some("memory.oom_control"),
                    None,
                    "1".into(),
                    String::new(),
                )?;
            }
            Some(false) => {
                if let Some(At::V1(d)) = self.find(Some("memory.oom_control"), None) {
                    self.push(d, "memory.oom_control", "0");
                }
            }
            None => {}
        }
        Ok(())
    }

    fn cpu(&mut self, r: &Resources) -> Result<()> {
        let c = &r.cpu;
        if let (Some(s), Some(w)) = (c.shares, c.weight()) {
            self.simple(
                "cpu.shares",
                Some("cpu.shares"),
                Some("cpu.weight"),
                s.to_string(),
                w.to_string(),
            )?;
        }
        if c.quota.is_some() || c.period.is_some() {
            let field = if c.quota.is_some() {
                "cpu.quota"
            } else {
                "cpu.period"
            };
            match self.need(field, Some("cpu.cfs_quota_us"), Some("cpu.max"))? {
                At::V1(d) => {
                    if let Some(p) = c.period {
                        self.push(d, "cpu.cfs_period_us", p.to_string());
                    }
                    if let Some(q) = c.quota {
                        self.push(d, "cpu.cfs_quota_us", q.v1());
                    }
                }
                At::V2(d) => {
                    let v = match (c.quota, c.period) {
                        (Some(q), Some(p)) => format!("{} {p}", q.v2()),
                        (Some(q), None) => q.v2(),
                        (None, Some(p)) => {
                            // cpu.max takes "quota period": keep the quota there
                            let cur = self.fs.read(d, "cpu.max").unwrap_or_default();
                            let q = cur.split_whitespace().next().unwrap_or("max").to_string();
                            format!("{q} {p}")
                        }
                        (None, None) => unreachable!(),
                    };
                    self.push(d, "cpu.max", v);
                }
            }
        }
        if let Some(b) = c.burst {
            self.simple(
                "cpu.burst",
                Some("cpu.cfs_burst_us"),
                Some("cpu.max.burst"),
                b.to_string(),
                b.to_string(),
            )?;
        }
        // period before runtime, as runc: a runtime is checked against it
        if let Some(p) = c.realtime_period {
            self.simple(
                "cpu.realtimePeriod",
                Some("cpu.rt_period_us"),
                None,
                p.to_string(),
                String::new(),
            )?;
        }
        if let Some(rt) = c.realtime_runtime {
            self.simple(
                "cpu.realtimeRuntime",
                Some("cpu.rt_runtime_us"),
                None,
                rt.to_string(),
                String::new(),
            )?;
        }
        if let Some(i) = c.idle {
            self.simple(
                "cpu.idle",
                Some("cpu.idle"),
                Some("cpu.idle"),
                i.to_string(),
                i.to_string(),
            )?;
        }
        if let Some(s) = &c.cpus {
            self.simple(
                "cpu.cpus",
                Some("cpuset.cpus"),
                Some("cpuset.cpus"),
                s.text.clone(),
                s.text.clone(),
            )?;
        }
        if let Some(s) = &c.mems {
            self.simple(
                "cpu.mems",
                Some("cpuset.mems"),
                Some("cpuset.mems"),
                s.text.clone(),
                s.text.clone(),
            )?;
        }
        Ok(())
    }

    /// Where a block I/O weight goes: the first of the two v1 files (CFQ,
    /// BFQ), else v2's `io.bfq.weight` (v1's scale) or the generic
    /// `io.weight` (the 1..10000 scale).
    fn weight_file(&self, v1: [&'static str; 2], w: u64) -> Option<(&'a Path, &'static str, u64)> {
        let dir = |a: At<'a>| match a {
            At::V1(d) | At::V2(d) => d,
        };
        v1.iter()
            .find_map(|f| self.find(Some(f), None).map(|a| (dir(a), *f, w)))
            .or_else(|| {
                self.find(None, Some("io.bfq.weight"))
                    .map(|a| (dir(a), "io.bfq.weight", w))
            })
            .or_else(|| {
                self.find(None, Some("io.weight"))
                    .map(|a| (dir(a), "io.weight", BlockIo::io_weight(w)))
            })
    }

    fn block_io(&mut self, r: &Resources) -> Result<()> {
        let b = &r.block_io;
        if let Some(w) = b.weight {
            match self.weight_file(["blkio.weight", "blkio.bfq.weight"], w) {
                Some((d, f, v)) => self.push(d, f, v.to_string()),
                None => {
                    return Err(LimitsError::Unsupported {
                        field: "blockIO.weight".into(),
                        files: "blkio.weight, blkio.bfq.weight, io.bfq.weight or io.weight".into(),
                    })
                }
            }
        }
        if let Some(w) = b.leaf_weight {
            self.simple(
                "blockIO.leafWeight",
                Some("blkio.leaf_weight"),
                None,
                w.to_string(),
                String::new(),
            )?;
        }
        for (i, wd) in b.weight_device.iter().enumerate() {
            let field = format!("blockIO.weightDevice[{i}]");
            if let Some(w) = wd.weight {
                let files = ["blkio.weight_device", "blkio.bfq.weight_device"];
                match self.weight_file(files, w) {
                    Some((d, f, v)) => self.push(d, f, format!("{} {v}", wd.dev)),
                    None => {
                        return Err(LimitsError::Unsupported {
                            field: format!("{field}.weight"),
                            files: "blkio.weight_device, blkio.bfq.weight_device, io.bfq.weight or io.weight".into(),
                        })
                    }
                }
            }
            if let Some(w) = wd.leaf_weight {
                self.simple(
                    &format!("{field}.leafWeight"),
                    Some("blkio.leaf_weight_device"),
                    None,
                    format!("{} {w}", wd.dev),
                    String::new(),
                )?;
            }
        }
        for t in &b.throttle {
            let field = format!("blockIO.{}", t.kind.field());
            let v2 = match t.rate {
                0 => format!("{} {}=max", t.dev, t.kind.v2_key()),
                n => format!("{} {}={n}", t.dev, t.kind.v2_key()),
            };
            self.simple(
                &field,
                Some(t.kind.v1_file()),
                Some("io.max"),
                format!("{} {}", t.dev, t.rate),
                v2,
            )?;
        }
        Ok(())
    }

    fn rest(&mut self, r: &Resources) -> Result<()> {
        if let Some(p) = r.pids {
            self.simple(
                "pids.limit",
                Some("pids.max"),
                Some("pids.max"),
                p.v2(),
                p.v2(),
            )?;
        }
        for h in &r.hugepage_limits {
            let v1 = format!("hugetlb.{}.limit_in_bytes", h.page_size);
            let v2 = format!("hugetlb.{}.max", h.page_size);
            self.simple(
                &format!("hugepageLimits({})", h.page_size),
                Some(&v1),
                Some(&v2),
                h.limit.to_string(),
                h.limit.to_string(),
            )?;
        }
        if let Some(id) = r.network.class_id {
            self.simple(
                "network.classID",
                Some("net_cls.classid"),
                None,
                id.to_string(),
                String::new(),
            )?;
        }
        for (name, prio) in &r.network.priorities {
            self.simple(
                "network.priorities",
                Some("net_prio.ifpriomap"),
                None,
                format!("{name} {prio}"),
                String::new(),
            )?;
        }
        for rd in &r.rdma {
            self.simple(
                &format!("rdma.{}", rd.device),
                Some("rdma.max"),
                Some("rdma.max"),
                rd.line(),
                rd.line(),
            )?;
        }
        for (k, v) in &r.unified {
            let field = format!("unified.{k:?}");
            match self.find(None, Some(k)) {
                Some(At::V2(d)) => self.push(d, k, v.clone()),
                _ => {
                    return Err(LimitsError::Unsupported {
                        field,
                        files: format!("{k} in a cgroup v2 directory"),
                    })
                }
            }
        }
        Ok(())
    }
}

/// The writes that apply `r` to `dirs`, in order; an error names the first
/// field that no directory can hold.
pub fn plan<F: Files>(r: &Resources, dirs: &[PathBuf], fs: &F) -> Result<Vec<Write>> {
    let mut p = Planner {
        dirs,
        fs,
        out: Vec::new(),
    };
    p.cpu(r)?;
    p.memory(r)?;
    p.block_io(r)?;
    p.rest(r)?;
    Ok(p.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::parse;
    use std::collections::HashMap;

    /// Directories with the files they hold (and some contents).
    struct Fake(HashMap<PathBuf, HashMap<String, String>>);

    impl Fake {
        fn new(dirs: &[(&str, &[&str])]) -> Fake {
            Fake(
                dirs.iter()
                    .map(|(d, fs)| {
                        (
                            PathBuf::from(d),
                            fs.iter().map(|f| (f.to_string(), String::new())).collect(),
                        )
                    })
                    .collect(),
            )
        }
        fn dirs(&self) -> Vec<PathBuf> {
            let mut d: Vec<PathBuf> = self.0.keys().cloned().collect();
            d.sort();
            d
        }
    }

    impl Files for Fake {
        fn has(&self, dir: &Path, file: &str) -> bool {
            self.0.get(dir).is_some_and(|m| m.contains_key(file))
        }
        fn read(&self, dir: &Path, file: &str) -> Option<String> {
            self.0.get(dir)?.get(file).cloned()
        }
    }

    const V1_MEM: &[&str] = &[
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes",
        "memory.swappiness",
        "memory.oom_control",
    ];
    const V1_CPU: &[&str] = &[
        "cpu.shares",
        "cpu.cfs_quota_us",
        "cpu.cfs_period_us",
        "cpu.cfs_burst_us",
        "cpu.rt_period_us",
        "cpu.rt_runtime_us",
        "cpu.idle",
    ];
    const V1_BLKIO: &[&str] = &[
        "blkio.weight",
        "blkio.leaf_weight",
        "blkio.weight_device",
        "blkio.leaf_weight_device",
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_bps_device",
        "blkio.throttle.read_iops_device",
        "blkio.throttle.write_iops_device",
    ];
    const V2: &[&str] = &[
        "cgroup.controllers",
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "cpu.max",
        "cpu.weight",
        "cpu.idle",
        "cpu.max.burst",
        "io.weight",
        "io.max",
        "pids.max",
        "hugetlb.2MB.max",
        "rdma.max",
        "memory.high",
    ];

    fn writes(json: &str, fs: &Fake) -> Result<Vec<(String, String, String)>> {
        let r = parse(json).unwrap();
        Ok(plan(&r, &fs.dirs(), fs)?
            .into_iter()
            .map(|w| (w.dir.display().to_string(), w.file, w.value))
            .collect())
    }

    fn w(d: &str, f: &str, v: &str) -> (String, String, String) {
        (d.into(), f.into(), v.into())
    }

    fn v1_host() -> Fake {
        Fake::new(&[
            ("/cg/blkio/x", V1_BLKIO),
            ("/cg/cpu/x", V1_CPU),
            ("/cg/hugetlb/x", &["hugetlb.2MB.limit_in_bytes"]),
            ("/cg/memory/x", V1_MEM),
            ("/cg/net_cls/x", &["net_cls.classid"]),
            ("/cg/net_prio/x", &["net_prio.ifpriomap"]),
            ("/cg/rdma/x", &["rdma.max"]),
        ])
    }

    #[test]
    fn v1_memory_files() {
        let fs = v1_host();
        let m = "/cg/memory/x";
        assert_eq!(
            writes(r#"{"memory":{"limit":"64m","swap":"128m","reservation":"16m","swappiness":0,"disableOOMKiller":true}}"#, &fs).unwrap(),
            vec![
                w(m, "memory.soft_limit_in_bytes", "16777216"),
                // no current memsw known: memory first
                w(m, "memory.limit_in_bytes", "67108864"),
                w(m, "memory.memsw.limit_in_bytes", "134217728"),
                w(m, "memory.swappiness", "0"),
                w(m, "memory.oom_control", "1"),
            ]
        );
        // lifting the limit lifts memsw first
        assert_eq!(
            writes(r#"{"memory":{"limit":-1}}"#, &fs).unwrap(),
            vec![
                w(m, "memory.memsw.limit_in_bytes", "-1"),
                w(m, "memory.limit_in_bytes", "-1")
            ]
        );
        assert_eq!(
            writes(r#"{"memory":{"disableOOMKiller":false}}"#, &fs).unwrap(),
            vec![w(m, "memory.oom_control", "0")]
        );
        // kernel, kernelTCP, useHierarchy: ignored as runc 1.1 does
        assert_eq!(
            writes(
                r#"{"memory":{"kernel":1000000,"kernelTCP":1000000,"useHierarchy":false}}"#,
                &fs
            )
            .unwrap(),
            vec![]
        );
    }

    #[test]
    fn v1_memsw_order_follows_the_current_value() {
        let mut fs = v1_host();
        let m = PathBuf::from("/cg/memory/x");
        fs.0.get_mut(&m)
            .unwrap()
            .insert("memory.memsw.limit_in_bytes".into(), "100000000\n".into());
        let got = writes(r#"{"memory":{"limit":"256m","swap":"512m"}}"#, &fs).unwrap();
        assert_eq!(got[0].1, "memory.memsw.limit_in_bytes");
        let got = writes(r#"{"memory":{"limit":"16m","swap":"32m"}}"#, &fs).unwrap();
        assert_eq!(got[0].1, "memory.limit_in_bytes");
    }

    #[test]
    fn v1_cpu_files() {
        let fs = v1_host();
        let c = "/cg/cpu/x";
        assert_eq!(
            writes(r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"burst":1000,"realtimePeriod":100000,"realtimeRuntime":5000,"idle":1}}"#, &fs).unwrap(),
            vec![
                w(c, "cpu.shares", "512"),
                w(c, "cpu.cfs_period_us", "100000"),
                w(c, "cpu.cfs_quota_us", "50000"),
                w(c, "cpu.cfs_burst_us", "1000"),
                w(c, "cpu.rt_period_us", "100000"),
                w(c, "cpu.rt_runtime_us", "5000"),
                w(c, "cpu.idle", "1"),
            ]
        );
    }

    #[test]
    fn v1_blkio_hugetlb_net_rdma_files() {
        let fs = v1_host();
        let b = "/cg/blkio/x";
        assert_eq!(
            writes(r#"{"blockIO":{"weight":500,"leafWeight":300,
                "weightDevice":[{"major":8,"minor":0,"weight":200,"leafWeight":100}],
                "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576},{"major":7,"minor":1,"rate":0}],
                "throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":2}],
                "throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":3}],
                "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":4}]}}"#, &fs).unwrap(),
            vec![
                w(b, "blkio.weight", "500"),
                w(b, "blkio.leaf_weight", "300"),
                w(b, "blkio.weight_device", "8:0 200"),
                w(b, "blkio.leaf_weight_device", "8:0 100"),
                w(b, "blkio.throttle.read_bps_device", "8:0 1048576"),
                w(b, "blkio.throttle.read_bps_device", "7:1 0"),
                w(b, "blkio.throttle.write_bps_device", "8:0 2"),
                w(b, "blkio.throttle.read_iops_device", "8:0 3"),
                w(b, "blkio.throttle.write_iops_device", "8:0 4"),
            ]
        );
        assert_eq!(
            writes(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":"4m"}],
                "network":{"classID":65537,"priorities":[{"name":"eth0","priority":3},{"name":"lo","priority":1}]},
                "rdma":{"mlx4_0":{"hcaHandles":2,"hcaObjects":9}}}"#, &fs).unwrap(),
            vec![
                w("/cg/hugetlb/x", "hugetlb.2MB.limit_in_bytes", "4194304"),
                w("/cg/net_cls/x", "net_cls.classid", "65537"),
                w("/cg/net_prio/x", "net_prio.ifpriomap", "eth0 3"),
                w("/cg/net_prio/x", "net_prio.ifpriomap", "lo 1"),
                w("/cg/rdma/x", "rdma.max", "mlx4_0 hca_handle=2 hca_object=9"),
            ]
        );
    }

    #[test]
    fn v2_files() {
        let fs = Fake::new(&[("/cg/x", V2)]);
        let d = "/cg/x";
        assert_eq!(
            writes(
                r#"{"memory":{"limit":"64m","swap":"96m","reservation":"1m"},
                "cpu":{"shares":1024,"quota":-1,"period":50000,"burst":10,"idle":0},
                "pids":{"limit":9},
                "blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":10}],
                  "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":100}],
                  "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":0}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":2097152}],
                "rdma":{"mlx":{"hcaObjects":5}},
                "unified":{"memory.high":"max"}}"#,
                &fs
            )
            .unwrap(),
            vec![
                w(d, "cpu.weight", "39"),
                w(d, "cpu.max", "max 50000"),
                w(d, "cpu.max.burst", "10"),
                w(d, "cpu.idle", "0"),
                w(d, "memory.low", "1048576"),
                w(d, "memory.swap.max", "33554432"),
                w(d, "memory.max", "67108864"),
                w(d, "io.weight", "4950"),
                w(d, "io.weight", "8:0 1"),
                w(d, "io.max", "8:0 rbps=100"),
                w(d, "io.max", "8:0 wiops=max"),
                w(d, "pids.max", "9"),
                w(d, "hugetlb.2MB.max", "2097152"),
                w(d, "rdma.max", "mlx hca_object=5"),
                w(d, "memory.high", "max"),
            ]
        );
        let mut fs = fs;
        fs.0.get_mut(Path::new(d))
            .unwrap()
            .insert("cpu.max".into(), "20000 100000\n".into());
        assert_eq!(
            writes(r#"{"cpu":{"period":50000}}"#, &fs).unwrap(),
            vec![w(d, "cpu.max", "20000 50000")]
        );
    }

    #[test]
    fn bfq_weights_keep_the_v1_scale() {
        let json =
            r#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":20}]}}"#;
        let v1 = Fake::new(&[(
            "/cg/blkio/x",
            &["blkio.bfq.weight", "blkio.bfq.weight_device"],
        )]);
        assert_eq!(
            writes(json, &v1).unwrap(),
            vec![
                w("/cg/blkio/x", "blkio.bfq.weight", "500"),
                w("/cg/blkio/x", "blkio.bfq.weight_device", "8:0 20"),
            ]
        );
        let v2 = Fake::new(&[(
            "/cg/x",
            &["cgroup.controllers", "io.bfq.weight", "io.weight"],
        )]);
        assert_eq!(
            writes(json, &v2).unwrap(),
            vec![
                w("/cg/x", "io.bfq.weight", "500"),
                w("/cg/x", "io.bfq.weight", "8:0 20"),
            ]
        );
    }

    #[test]
    fn v2_refuses_what_only_v1_has() {
        let fs = Fake::new(&[("/cg/x", V2)]);
        for (json, field, file) in [
            (
                r#"{"memory":{"swappiness":10}}"#,
                "memory.swappiness",
                "memory.swappiness",
            ),
            (
                r#"{"memory":{"disableOOMKiller":true}}"#,
                "memory.disableOOMKiller",
                "memory.oom_control",
            ),
            (
                r#"{"cpu":{"realtimeRuntime":10}}"#,
                "cpu.realtimeRuntime",
                "cpu.rt_runtime_us",
            ),
            (
                r#"{"cpu":{"realtimePeriod":10}}"#,
                "cpu.realtimePeriod",
                "cpu.rt_period_us",
            ),
            (
                r#"{"blockIO":{"leafWeight":10}}"#,
                "blockIO.leafWeight",
                "blkio.leaf_weight",
            ),
            (
                r#"{"network":{"classID":1}}"#,
                "network.classID",
                "net_cls.classid",
            ),
            (
                r#"{"hugepageLimits":[{"pageSize":"1GB","limit":0}]}"#,
                "hugepageLimits(1GB)",
                "hugetlb.1GB.max",
            ),
            (
                r#"{"unified":{"memory.nonexistent":"1"}}"#,
                "unified.\"memory.nonexistent\"",
                "memory.nonexistent",
            ),
        ] {
            let e = writes(json, &fs).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "resources {field}: not supported on this host (no "
                )),
                "{json}: {e}"
            );
            assert!(e.contains(file), "{json}: {e}");
        }
        // no memory.oom_control: false is what v2 does anyway
        assert_eq!(
            writes(r#"{"memory":{"disableOOMKiller":false}}"#, &fs).unwrap(),
            vec![]
        );
    }

    #[test]
    fn hybrid_missing_knobs_are_errors_and_nothing_is_planned() {
        // this host's shape: v1 without weight, hugetlb only in v2
        let fs = Fake::new(&[
            ("/cg/blkio/x", &["blkio.throttle.read_bps_device"]),
            ("/cg/memory/x", &["memory.limit_in_bytes"]),
            ("/cg/unified/x", &["cgroup.controllers", "hugetlb.2MB.max"]),
        ]);
        let e = writes(r#"{"blockIO":{"weight":100}}"#, &fs)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("resources blockIO.weight: not supported on this host (no blkio.weight"),
            "{e}"
        );
        let e = writes(r#"{"memory":{"limit":"8m","swap":"16m"}}"#, &fs)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "resources memory.swap: not supported on this host (no memory.memsw.limit_in_bytes)"
        );
        let e = writes(
            r#"{"blockIO":{"throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":1}]}}"#,
            &fs,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "resources blockIO.throttleWriteBpsDevice: not supported on this host (no blkio.throttle.write_bps_device or io.max)");
        // unlimited swap needs no swap accounting
        assert_eq!(
            writes(r#"{"memory":{"limit":"8m","swap":-1}}"#, &fs).unwrap(),
            vec![w("/cg/memory/x", "memory.limit_in_bytes", "8388608")]
        );
        // hugetlb goes to the v2 dir, the rest to v1
        assert_eq!(
            writes(
                r#"{"memory":{"limit":"8m"},"hugepageLimits":[{"pageSize":"2MB","limit":0}]}"#,
                &fs
            )
            .unwrap(),
            vec![
                w("/cg/memory/x", "memory.limit_in_bytes", "8388608"),
                w("/cg/unified/x", "hugetlb.2MB.max", "0"),
            ]
        );
        // unified keys only ever land in the v2 dir
        let e = writes(r#"{"unified":{"memory.limit_in_bytes":"1"}}"#, &fs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unified.\"memory.limit_in_bytes\""), "{e}");
    }
}
