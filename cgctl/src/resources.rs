//! Resource limits: the OCI `linux.resources` JSON in, validated typed values
//! out. Pure: no I/O, so every refusal happens before anything is created.
//! One parser serves the CLI's permissive JSON (sizes like `"64m"`) and
//! nsrun's typed `oci_spec` value (`from_oci` goes through JSON).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, thiserror::Error)]
pub enum ResourcesError {
    #[error("resources JSON on stdin: {0}")]
    Json(#[from] serde_json::Error),
    #[error("resources {field}: {value} is invalid: {why}")]
    Invalid {
        field: String,
        value: String,
        why: String,
    },
    #[error("resources {0}")]
    Devices(String),
}

type Result<T> = std::result::Result<T, ResourcesError>;

/// A limit that may be lifted: OCI's `-1` (or the string `"max"`) is `Max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Max,
    Value(u64),
}

impl Limit {
    /// The v2 spelling: a number or `max`.
    pub fn v2(&self) -> String {
        match self {
            Limit::Max => "max".into(),
            Limit::Value(n) => n.to_string(),
        }
    }
    /// The v1 spelling: a number or `-1`.
    pub fn v1(&self) -> String {
        match self {
            Limit::Max => "-1".into(),
            Limit::Value(n) => n.to_string(),
        }
    }
}

/// `kernel`, `kernelTCP` and `useHierarchy` are accepted and ignored, as runc
/// 1.1 does (kernel memory accounting is deprecated upstream; runc never set
/// use_hierarchy). `checkBeforeUpdate` is ignored too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    pub limit: Option<Limit>,
    pub reservation: Option<Limit>,
    /// OCI semantics: memory + swap together (v1 `memory.memsw.limit_in_bytes`).
    pub swap: Option<Limit>,
    /// 0..=100; OCI's -1 (or any value > 100 that is really a -1 cast to
    /// u64) means "leave it".
    pub swappiness: Option<u64>,
    pub disable_oom_killer: Option<bool>,
}

impl Memory {
    /// v2 `memory.swap.max` is swap alone: OCI swap minus the memory limit
    /// (validation guarantees a limit when swap is a number).
    pub fn v2_swap(&self) -> Option<Limit> {
        match (self.swap?, self.limit) {
            (Limit::Max, _) => Some(Limit::Max),
            (Limit::Value(s), Some(Limit::Value(l))) => Some(Limit::Value(s - l)),
            _ => None,
        }
    }
}

/// A cpu or memory-node list such as `0-2,4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdSet {
    pub text: String,
    pub ids: BTreeSet<u32>,
}

impl IdSet {
    pub fn parse(text: &str) -> std::result::Result<IdSet, String> {
        let text = text.trim();
        let mut ids = BTreeSet::new();
        if text.is_empty() {
            return Ok(IdSet {
                text: String::new(),
                ids,
            });
        }
        for part in text.split(',') {
            let num = |s: &str| {
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("{s:?} is not a number"))
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b || b - a > 65536 {
                        return Err(format!("range {part:?} is backwards or too large"));
                    }
                    ids.extend(a..=b);
                }
                None => {
                    ids.insert(num(part)?);
                }
            }
        }
        Ok(IdSet {
            text: text.to_string(),
            ids,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cpu {
    pub shares: Option<u64>,
    pub quota: Option<Limit>,
    pub period: Option<u64>,
    /// Microseconds a period may overrun the quota (v1 cfs_burst_us, v2
    /// cpu.max.burst).
    pub burst: Option<u64>,
    /// -1 = unlimited (v1 `cpu.rt_runtime_us`).
    pub realtime_runtime: Option<i64>,
    pub realtime_period: Option<u64>,
    pub cpus: Option<IdSet>,
    pub mems: Option<IdSet>,
    /// 0 or 1 (SCHED_IDLE for the whole group).
    pub idle: Option<i64>,
}

impl Cpu {
    /// cgroup v2 `cpu.weight` from v1 shares: the standard conversion used by
    /// runc and crun (2..262144 onto 1..10000).
    pub fn weight(&self) -> Option<u64> {
        self.shares.map(|s| 1 + ((s - 2) * 9999) / 262142)
    }
}

/// A block device by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dev {
    pub major: u32,
    pub minor: u32,
}

impl std::fmt::Display for Dev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeightDevice {
    pub dev: Dev,
    pub weight: Option<u64>,
    pub leaf_weight: Option<u64>,
}

/// The four throttle lists of `blockIO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

impl Throttle {
    pub const ALL: [Throttle; 4] = [
        Throttle::ReadBps,
        Throttle::WriteBps,
        Throttle::ReadIops,
        Throttle::WriteIops,
    ];
    /// The OCI field name under `blockIO`.
    pub fn field(self) -> &'static str {
        match self {
            Throttle::ReadBps => "throttleReadBpsDevice",
            Throttle::WriteBps => "throttleWriteBpsDevice",
            Throttle::ReadIops => "throttleReadIOPSDevice",
            Throttle::WriteIops => "throttleWriteIOPSDevice",
        }
    }
    /// The v1 file.
    pub fn v1_file(self) -> &'static str {
        match self {
            Throttle::ReadBps => "blkio.throttle.read_bps_device",
            Throttle::WriteBps => "blkio.throttle.write_bps_device",
            Throttle::ReadIops => "blkio.throttle.read_iops_device",
            Throttle::WriteIops => "blkio.throttle.write_iops_device",
        }
    }
    /// The v2 `io.max` key.
    pub fn v2_key(self) -> &'static str {
        match self {
            Throttle::ReadBps => "rbps",
            Throttle::WriteBps => "wbps",
            Throttle::ReadIops => "riops",
            Throttle::WriteIops => "wiops",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleDevice {
    pub kind: Throttle,
    pub dev: Dev,
    /// Bytes or operations per second; 0 lifts the limit (v1's convention,
    /// written as `max` on v2).
    pub rate: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockIo {
    /// 10..=1000 (v1 scale).
    pub weight: Option<u64>,
    pub leaf_weight: Option<u64>,
    pub weight_device: Vec<WeightDevice>,
    pub throttle: Vec<ThrottleDevice>,
}

impl BlockIo {
    /// v2 `io.weight` (1..10000) from a v1 blkio weight (10..1000), as runc does.
    pub fn io_weight(w: u64) -> u64 {
        1 + (w - 10) * 9999 / 990
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hugepage {
    /// As the kernel names it in the file: `2MB`, `1GB`, `64KB`.
    pub page_size: String,
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Network {
    pub class_id: Option<u32>,
    /// (interface, priority) for `net_prio.ifpriomap`.
    pub priorities: Vec<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rdma {
    pub device: String,
    pub hca_handles: Option<u32>,
    pub hca_objects: Option<u32>,
}

impl Rdma {
    /// The `rdma.max` line: only the limits given.
    pub fn line(&self) -> String {
        let mut s = self.device.clone();
        if let Some(h) = self.hca_handles {
            s += &format!(" hca_handle={h}");
        }
        if let Some(o) = self.hca_objects {
            s += &format!(" hca_object={o}");
        }
        s
    }
}

/// Validated resources. Everything is optional: `{}` sets nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub memory: Memory,
    pub cpu: Cpu,
    pub pids: Option<Limit>,
    pub block_io: BlockIo,
    pub hugepage_limits: Vec<Hugepage>,
    pub network: Network,
    pub rdma: Vec<Rdma>,
    /// v2 file name -> value, written last (after the typed fields).
    pub unified: BTreeMap<String, String>,
    /// Raw device rules; validated and applied by the devices module.
    pub devices: Vec<LinuxDeviceCgroup>,
}

impl Resources {
    /// Checks cpus/mems against what the parent cgroup may use.
    pub fn check_cpuset(&self, host_cpus: &IdSet, host_mems: &IdSet) -> Result<()> {
        for (field, set, host) in [
            ("cpu.cpus", &self.cpu.cpus, host_cpus),
            ("cpu.mems", &self.cpu.mems, host_mems),
        ] {
            if let Some(set) = set {
                if let Some(bad) = set.ids.iter().find(|i| !host.ids.contains(i)) {
                    return Err(ResourcesError::Invalid {
                        field: field.into(),
                        value: format!("{:?}", set.text),
                        why: format!("{bad} is not among the available {:?}", host.text),
                    });
                }
            }
        }
        Ok(())
    }
}

fn invalid(field: &str, v: &Value, why: impl Into<String>) -> ResourcesError {
    ResourcesError::Invalid {
        field: field.to_string(),
        value: v.to_string(),
        why: why.into(),
    }
}

/// A sub-object; `null` or absent = None.
fn section<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(invalid(field, v, "expected an object")),
    }
}

/// A list; `null` or absent = empty.
fn list<'a>(o: &'a Map<String, Value>, key: &str, field: &str) -> Result<&'a [Value]> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(invalid(field, v, "expected a list")),
    }
}

fn obj<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| invalid(field, v, "expected an object"))
}

/// An integer field; `null` counts as absent.
fn int(field: &str, v: Option<&Value>) -> Result<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(field, v.unwrap(), "not a 64-bit integer")),
        Some(other) => Err(invalid(field, other, "expected an integer")),
    }
}

/// An integer in `range`.
fn ranged(
    field: &str,
    v: Option<&Value>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>> {
    match int(field, v)? {
        Some(n) if !range.contains(&n) => Err(invalid(
            field,
            v.unwrap(),
            format!("must be {}..={}", range.start(), range.end()),
        )),
        n => Ok(n),
    }
}

fn u32_field(field: &str, v: Option<&Value>) -> Result<Option<u32>> {
    Ok(ranged(field, v, 0..=u32::MAX as i64)?.map(|n| n as u32))
}

fn boolean(field: &str, v: Option<&Value>) -> Result<Option<bool>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(field, other, "expected true or false")),
    }
}

/// A byte size: an integer, or a string such as "64m", "1G", "512k", "max".
fn size(field: &str, v: Option<&Value>) -> Result<Option<i64>> {
    match v {
        Some(Value::String(s)) => parse_size(s).map(Some).ok_or_else(|| {
            invalid(
                field,
                v.unwrap(),
                "not a size (e.g. 67108864, \"64m\", \"1g\")",
            )
        }),
        _ => int(field, v),
    }
}

/// "64m" -> 67108864; "max" or "-1" -> -1. None when malformed.
pub fn parse_size(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "max" || t == "-1" {
        return Some(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, mult) = match t.char_indices().last()? {
        (i, 'k') => (&t[..i], 1i64 << 10),
        (i, 'm') => (&t[..i], 1 << 20),
        (i, 'g') => (&t[..i], 1 << 30),
        (i, 't') => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(mult)
}

/// `-1` -> Max, a number >= `min` (and > 0) -> Value; others refused.
fn limit(field: &str, v: Option<&Value>, n: Option<i64>, min: i64) -> Result<Option<Limit>> {
    match n {
        None => Ok(None),
        Some(-1) => Ok(Some(Limit::Max)),
        Some(n) if n >= min && n > 0 => Ok(Some(Limit::Value(n as u64))),
        Some(_) => Err(invalid(
            field,
            v.unwrap(),
            format!("must be -1 (unlimited) or at least {}", min.max(1)),
        )),
    }
}

fn idset(field: &str, v: Option<&Value>) -> Result<Option<IdSet>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => IdSet::parse(s)
            .map(Some)
            .map_err(|why| invalid(field, v.unwrap(), why)),
        Some(other) => Err(invalid(field, other, "expected a string such as \"0-1,3\"")),
    }
}

/// A name the kernel reads as one whitespace-free token (interface, rdma
/// device): no spaces or newlines that could smuggle a second line in.
fn token(field: &str, v: Option<&Value>, max: usize) -> Result<String> {
    match v {
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= max
                && !s.contains('/')
                && s.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(s.clone())
        }
        Some(v) => Err(invalid(
            field,
            v,
            format!("must be 1..={max} printable characters without spaces or '/'"),
        )),
        None => Err(invalid(field, &Value::Null, "is required")),
    }
}

fn dev(field: &str, o: &Map<String, Value>) -> Result<Dev> {
    let part = |k: &str| -> Result<u32> {
        let f = format!("{field}.{k}");
        u32_field(&f, o.get(k))?.ok_or_else(|| invalid(&f, &Value::Null, "is required"))
    };
    Ok(Dev {
        major: part("major")?,
        minor: part("minor")?,
    })
}

/// `2MB`, `1GB`, `64KB`: digits then a unit, as hugetlb's file names spell it.
fn page_size(field: &str, v: Option<&Value>) -> Result<String> {
    let ok = |s: &str| {
        ["KB", "MB", "GB"].iter().any(|u| {
            s.strip_suffix(u).is_some_and(|d| {
                !d.is_empty() && d.len() <= 6 && d.bytes().all(|b| b.is_ascii_digit())
            })
        })
    };
    match v {
        Some(Value::String(s)) if ok(s) => Ok(s.clone()),
        Some(v) => Err(invalid(
            field,
            v,
            "expected a page size such as \"2MB\" or \"1GB\"",
        )),
        None => Err(invalid(field, &Value::Null, "is required")),
    }
}

/// A `unified` key: one file name of the form `controller.knob`, never a path.
fn unified_key(k: &str) -> std::result::Result<(), &'static str> {
    if k.is_empty() || k.len() > 100 {
        return Err("must be a file name of 1..=100 bytes");
    }
    if k.contains('/') || k.contains("..") {
        return Err("must be a file name in the cgroup directory: no '/' or '..'");
    }
    if !k
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err("may hold only A-Z a-z 0-9 . _ -");
    }
    match k.split_once('.') {
        Some((c, f)) if !c.is_empty() && !f.is_empty() => {}
        _ => return Err("must be controller.knob, e.g. memory.high"),
    }
    if [
        "cgroup.procs",
        "cgroup.threads",
        "cgroup.kill",
        "cgroup.freeze",
        "cgroup.subtree_control",
    ]
    .contains(&k)
    {
        return Err("membership, freezing and delegation are not resource limits");
    }
    Ok(())
}

/// Converts nsrun's typed resources through the same parser as the CLI's.
pub fn from_oci(r: &LinuxResources) -> Result<Resources> {
    parse_value(&serde_json::to_value(r)?)
}

/// Parses and validates resources JSON (empty input or `{}` = no limits).
/// Unknown fields are tolerated and ignored.
pub fn parse(input: &str) -> Result<Resources> {
    if input.trim().is_empty() {
        return Ok(Resources::default());
    }
    parse_value(&serde_json::from_str(input)?)
}

fn parse_value(v: &Value) -> Result<Resources> {
    let root = match v {
        Value::Null => return Ok(Resources::default()),
        v => obj(v, "(top level)")?,
    };
    let mut r = Resources::default();
    if let Some(m) = section(root, "memory", "memory")? {
        r.memory = memory(m)?;
    }
    if let Some(c) = section(root, "cpu", "cpu")? {
        r.cpu = cpu(c)?;
    }
    if let Some(p) = section(root, "pids", "pids")? {
        let f = "pids.limit";
        r.pids = limit(f, p.get("limit"), int(f, p.get("limit"))?, 1)?;
    }
    if let Some(b) = section(root, "blockIO", "blockIO")? {
        r.block_io = block_io(b)?;
    }
    for (i, h) in list(root, "hugepageLimits", "hugepageLimits")?
        .iter()
        .enumerate()
    {
        let f = format!("hugepageLimits[{i}]");
        let h = obj(h, &f)?;
        let page_size = page_size(&format!("{f}.pageSize"), h.get("pageSize"))?;
        let lf = format!("{f}.limit");
        let limit = match size(&lf, h.get("limit"))? {
            Some(n) if n >= 0 => n as u64,
            Some(_) => return Err(invalid(&lf, h.get("limit").unwrap(), "must be >= 0")),
            None => return Err(invalid(&lf, &Value::Null, "is required")),
        };
        if r.hugepage_limits.iter().any(|x| x.page_size == page_size) {
            return Err(invalid(
                &f,
                h.get("pageSize").unwrap(),
                "page size given twice",
            ));
        }
        r.hugepage_limits.push(Hugepage { page_size, limit });
    }
    if let Some(n) = section(root, "network", "network")? {
        r.network.class_id = u32_field("network.classID", n.get("classID"))?;
        for (i, p) in list(n, "priorities", "network.priorities")?
            .iter()
            .enumerate()
        {
            let f = format!("network.priorities[{i}]");
            let p = obj(p, &f)?;
            let name = token(&format!("{f}.name"), p.get("name"), 15)?;
            let pf = format!("{f}.priority");
            let prio = u32_field(&pf, p.get("priority"))?
                .ok_or_else(|| invalid(&pf, &Value::Null, "is required"))?;
            r.network.priorities.push((name, prio));
        }
    }
    if let Some(rd) = section(root, "rdma", "rdma")? {
        for (device, lim) in rd {
            let f = format!("rdma.{device}");
            token(&f, Some(&Value::String(device.clone())), 64)?;
            let lim = obj(lim, &f)?;
            let hca_handles = u32_field(&format!("{f}.hcaHandles"), lim.get("hcaHandles"))?;
            let hca_objects = u32_field(&format!("{f}.hcaObjects"), lim.get("hcaObjects"))?;
            if hca_handles.is_none() && hca_objects.is_none() {
                return Err(invalid(
                    &f,
                    &Value::Object(lim.clone()),
                    "needs hcaHandles or hcaObjects",
                ));
            }
            r.rdma.push(Rdma {
                device: device.clone(),
                hca_handles,
                hca_objects,
            });
        }
    }
    if let Some(u) = section(root, "unified", "unified")? {
        for (k, v) in u {
            let f = format!("unified.{k:?}");
            unified_key(k).map_err(|why| invalid(&f, &Value::String(k.clone()), why))?;
            let v = v
                .as_str()
                .ok_or_else(|| invalid(&f, v, "expected a string value"))?;
            r.unified.insert(k.clone(), v.to_string());
        }
    }
    if let Some(d) = root.get("devices").filter(|d| !d.is_null()) {
        r.devices =
            serde_json::from_value(d.clone()).map_err(|e| invalid("devices", d, e.to_string()))?;
        // checked now, so a bad rule is refused before anything is made
        let rules = crate::devices::from_oci(&r.devices)
            .map_err(|e| ResourcesError::Devices(e.to_string()))?;
        crate::devices::Policy::from_rules(&rules)
            .map_err(|e| ResourcesError::Devices(e.to_string()))?;
    }
    Ok(r)
}

fn memory(m: &Map<String, Value>) -> Result<Memory> {
    let mut r = Memory::default();
    let g = |k: &str| m.get(k);
    r.limit = limit(
        "memory.limit",
        g("limit"),
        size("memory.limit", g("limit"))?,
        1,
    )?;
    r.reservation = match size("memory.reservation", g("reservation"))? {
        None => None,
        Some(-1) => Some(Limit::Max),
        Some(n) if n >= 0 => Some(Limit::Value(n as u64)),
        Some(_) => {
            return Err(invalid(
                "memory.reservation",
                g("reservation").unwrap(),
                "must be -1 or >= 0",
            ))
        }
    };
    r.swap = limit("memory.swap", g("swap"), size("memory.swap", g("swap"))?, 1)?;
    if let Some(Limit::Value(s)) = r.swap {
        let v = g("swap").unwrap();
        match r.limit {
            None => {
                return Err(invalid(
                    "memory.swap",
                    v,
                    "needs memory.limit (swap is memory+swap)",
                ))
            }
            Some(Limit::Max) => {
                return Err(invalid(
                    "memory.swap",
                    v,
                    "must be -1 when memory.limit is -1",
                ))
            }
            Some(Limit::Value(l)) if s < l => {
                return Err(invalid(
                    "memory.swap",
                    v,
                    format!("is memory+swap, so must be >= memory.limit {l}"),
                ))
            }
            _ => {}
        }
    }
    // -1 arrives as -1 from JSON, or as u64::MAX from a typed u64 field
    r.swappiness = match g("swappiness") {
        Some(Value::Number(n)) if n.as_i64() == Some(-1) || n.as_u64() == Some(u64::MAX) => None,
        v => ranged("memory.swappiness", v, 0..=100)?.map(|n| n as u64),
    };
    r.disable_oom_killer = boolean("memory.disableOOMKiller", g("disableOOMKiller"))?;
    // kernel, kernelTCP, useHierarchy, checkBeforeUpdate: type-checked, ignored
    size("memory.kernel", g("kernel"))?;
    size("memory.kernelTCP", g("kernelTCP"))?;
    boolean("memory.useHierarchy", g("useHierarchy"))?;
    Ok(r)
}

fn cpu(c: &Map<String, Value>) -> Result<Cpu> {
    let mut r = Cpu::default();
    let g = |k: &str| c.get(k);
    r.shares = ranged("cpu.shares", g("shares"), 2..=262144)?.map(|n| n as u64);
    r.quota = limit("cpu.quota", g("quota"), int("cpu.quota", g("quota"))?, 1000)?;
    r.period = ranged("cpu.period", g("period"), 1000..=1_000_000)?.map(|n| n as u64);
    r.burst = ranged("cpu.burst", g("burst"), 0..=1_000_000)?.map(|n| n as u64);
    r.realtime_period =
        ranged("cpu.realtimePeriod", g("realtimePeriod"), 1..=1_000_000)?.map(|n| n as u64);
    r.realtime_runtime = ranged("cpu.realtimeRuntime", g("realtimeRuntime"), -1..=1_000_000)?;
    if let (Some(rt), Some(p)) = (r.realtime_runtime, r.realtime_period) {
        if rt > p as i64 {
            return Err(invalid(
                "cpu.realtimeRuntime",
                g("realtimeRuntime").unwrap(),
                format!("must not exceed cpu.realtimePeriod {p}"),
            ));
        }
    }
    r.idle = ranged("cpu.idle", g("idle"), 0..=1)?;
    r.cpus = idset("cpu.cpus", g("cpus"))?;
    r.mems = idset("cpu.mems", g("mems"))?;
    Ok(r)
}

fn block_io(b: &Map<String, Value>) -> Result<BlockIo> {
    let mut r = BlockIo {
        weight: ranged("blockIO.weight", b.get("weight"), 10..=1000)?.map(|n| n as u64),
        leaf_weight: ranged("blockIO.leafWeight", b.get("leafWeight"), 10..=1000)?
            .map(|n| n as u64),
        ..Default::default()
    };
    for (i, w) in list(b, "weightDevice", "blockIO.weightDevice")?
        .iter()
        .enumerate()
    {
        let f = format!("blockIO.weightDevice[{i}]");
        let o = obj(w, &f)?;
        let wd = WeightDevice {
            dev: dev(&f, o)?,
            weight: ranged(&format!("{f}.weight"), o.get("weight"), 10..=1000)?.map(|n| n as u64),
            leaf_weight: ranged(&format!("{f}.leafWeight"), o.get("leafWeight"), 10..=1000)?
                .map(|n| n as u64),
        };
        if wd.weight.is_none() && wd.leaf_weight.is_none() {
            return Err(invalid(&f, w, "needs weight or leafWeight"));
        }
        r.weight_device.push(wd);
    }
    for kind in Throttle::ALL {
        let name = format!("blockIO.{}", kind.field());
        for (i, t) in list(b, kind.field(), &name)?.iter().enumerate() {
            let f = format!("{name}[{i}]");
            let o = obj(t, &f)?;
            let rf = format!("{f}.rate");
            let rate = match size(&rf, o.get("rate"))? {
                Some(n) if n >= 0 => n as u64,
                Some(_) => return Err(invalid(&rf, o.get("rate").unwrap(), "must be >= 0")),
                None => return Err(invalid(&rf, &Value::Null, "is required")),
            };
            r.throttle.push(ThrottleDevice {
                kind,
                dev: dev(&f, o)?,
                rate,
            });
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_no_limits() {
        assert_eq!(parse("").unwrap(), Resources::default());
        assert_eq!(parse("{}").unwrap(), Resources::default());
        assert_eq!(parse("null").unwrap(), Resources::default());
        assert_eq!(
            parse(r#"{"memory":null,"unknown":[1]}"#).unwrap(),
            Resources::default()
        );
    }

    #[test]
    fn full_oci_shape_parses() {
        let r = parse(
            r#"{"memory":{"limit":67108864,"reservation":1048576,"swap":134217728},
                "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0-1","mems":"0"},
                "pids":{"limit":20},"blockIO":{"weight":500},"unknown":1}"#,
        )
        .unwrap();
        assert_eq!(r.memory.limit, Some(Limit::Value(64 << 20)));
        assert_eq!(r.memory.v2_swap(), Some(Limit::Value(64 << 20)));
        assert_eq!(r.cpu.shares, Some(512));
        assert_eq!(r.cpu.cpus.as_ref().unwrap().ids.len(), 2);
        assert_eq!(r.pids, Some(Limit::Value(20)));
        assert_eq!(r.block_io.weight, Some(500));
    }

    #[test]
    fn every_new_field_parses() {
        let r = parse(
            r#"{"memory":{"swappiness":10,"disableOOMKiller":true,"kernel":1000,"kernelTCP":"1m","useHierarchy":true},
                "cpu":{"realtimeRuntime":5000,"realtimePeriod":100000,"idle":1,"burst":1000},
                "blockIO":{"leafWeight":20,
                  "weightDevice":[{"major":8,"minor":0,"weight":300,"leafWeight":40}],
                  "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":"1m"}],
                  "throttleWriteBpsDevice":[{"major":8,"minor":16,"rate":2048}],
                  "throttleReadIOPSDevice":[{"major":7,"minor":0,"rate":100}],
                  "throttleWriteIOPSDevice":[{"major":7,"minor":0,"rate":0}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":"4m"},{"pageSize":"1GB","limit":0}],
                "network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5}]},
                "rdma":{"mlx5_1":{"hcaHandles":3},"mlx4_0":{"hcaHandles":2,"hcaObjects":2000}},
                "unified":{"memory.high":"64m","io.latency":"8:0 target=10"},
                "devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]}"#,
        )
        .unwrap();
        assert_eq!(r.memory.swappiness, Some(10));
        assert_eq!(r.memory.disable_oom_killer, Some(true));
        assert_eq!(r.cpu.realtime_runtime, Some(5000));
        assert_eq!(r.cpu.realtime_period, Some(100000));
        assert_eq!(r.cpu.idle, Some(1));
        assert_eq!(r.cpu.burst, Some(1000));
        let b = &r.block_io;
        assert_eq!(b.leaf_weight, Some(20));
        assert_eq!(b.weight_device[0].dev, Dev { major: 8, minor: 0 });
        assert_eq!(b.weight_device[0].leaf_weight, Some(40));
        assert_eq!(b.throttle.len(), 4);
        assert_eq!(b.throttle[0].kind, Throttle::ReadBps);
        assert_eq!(b.throttle[0].rate, 1 << 20);
        assert_eq!(b.throttle[3].kind, Throttle::WriteIops);
        assert_eq!(b.throttle[3].rate, 0);
        assert_eq!(r.hugepage_limits[0].page_size, "2MB");
        assert_eq!(r.hugepage_limits[0].limit, 4 << 20);
        assert_eq!(r.network.class_id, Some(0x100001));
        assert_eq!(r.network.priorities, vec![("eth0".to_string(), 5)]);
        // sorted by device name
        assert_eq!(r.rdma[0].line(), "mlx4_0 hca_handle=2 hca_object=2000");
        assert_eq!(r.rdma[1].line(), "mlx5_1 hca_handle=3");
        assert_eq!(r.unified["memory.high"], "64m");
        assert_eq!(r.devices.len(), 2);
        assert!(!r.devices[0].allow());
    }

    #[test]
    fn from_oci_goes_through_the_same_parser() {
        let typed: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":33554432,"swappiness":18446744073709551615},
                "cpu":{"shares":1024,"realtimePeriod":1000},
                "blockIO":{"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":100}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":2097152}],
                "unified":{"pids.max":"9"}}"#,
        )
        .unwrap();
        let r = from_oci(&typed).unwrap();
        assert_eq!(r.memory.limit, Some(Limit::Value(32 << 20)));
        assert_eq!(r.memory.swappiness, None, "u64::MAX is OCI's -1");
        assert_eq!(r.cpu.shares, Some(1024));
        assert_eq!(r.block_io.throttle[0].rate, 100);
        assert_eq!(r.hugepage_limits[0].limit, 2 << 20);
        assert_eq!(r.unified["pids.max"], "9");
        // the typed path refuses what the JSON path refuses
        let bad: LinuxResources =
            serde_json::from_str(r#"{"cpu":{"shares":1},"pids":{"limit":0}}"#).unwrap();
        assert!(from_oci(&bad).is_err());
        let bad: LinuxResources = serde_json::from_str(r#"{"unified":{"../x":"1"}}"#).unwrap();
        let e = from_oci(&bad).unwrap_err().to_string();
        assert!(e.contains("unified") && e.contains(".."), "{e}");
        assert_eq!(
            from_oci(&LinuxResources::default()).unwrap(),
            Resources::default()
        );
    }

    #[test]
    fn sizes_and_unlimited() {
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("512kb"), Some(512 << 10));
        assert_eq!(parse_size("max"), Some(-1));
        for bad in ["", "m", "12x", "-5m", "1.5g", "99999999999999t"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
        let r = parse(r#"{"memory":{"limit":"32m","swap":-1},"pids":{"limit":-1}}"#).unwrap();
        assert_eq!(r.memory.limit, Some(Limit::Value(32 << 20)));
        assert_eq!(r.memory.v2_swap(), Some(Limit::Max));
        assert_eq!(r.pids.unwrap().v2(), "max");
    }

    #[test]
    fn shares_to_weight_standard_formula() {
        let w = |s| {
            Cpu {
                shares: Some(s),
                ..Default::default()
            }
            .weight()
            .unwrap()
        };
        assert_eq!(w(2), 1);
        assert_eq!(w(1024), 39);
        assert_eq!(w(262144), 10000);
        assert_eq!(BlockIo::io_weight(10), 1);
        assert_eq!(BlockIo::io_weight(500), 4950);
        assert_eq!(BlockIo::io_weight(1000), 10000);
    }

    #[test]
    fn invalid_values_refused_naming_the_field() {
        for (bad, field) in [
            (r#"{"memory":{"limit":0}}"#, "memory.limit"),
            (r#"{"memory":{"limit":-5}}"#, "memory.limit"),
            (r#"{"memory":{"limit":"12q"}}"#, "memory.limit"),
            (r#"{"memory":{"limit":1.5}}"#, "memory.limit"),
            (r#"{"memory":{"swap":1000}}"#, "memory.swap"),
            (r#"{"memory":{"limit":2000,"swap":1000}}"#, "memory.swap"),
            (r#"{"memory":{"swappiness":101}}"#, "memory.swappiness"),
            (
                r#"{"memory":{"disableOOMKiller":1}}"#,
                "memory.disableOOMKiller",
            ),
            (r#"{"memory":{"kernel":"lots"}}"#, "memory.kernel"),
            (r#"{"memory":7}"#, "memory"),
            (r#"{"cpu":{"shares":0}}"#, "cpu.shares"),
            (r#"{"cpu":{"shares":-1}}"#, "cpu.shares"),
            (r#"{"cpu":{"quota":0}}"#, "cpu.quota"),
            (r#"{"cpu":{"period":0}}"#, "cpu.period"),
            (r#"{"cpu":{"idle":2}}"#, "cpu.idle"),
            (r#"{"cpu":{"realtimeRuntime":-2}}"#, "cpu.realtimeRuntime"),
            (r#"{"cpu":{"realtimePeriod":0}}"#, "cpu.realtimePeriod"),
            (
                r#"{"cpu":{"realtimeRuntime":2000,"realtimePeriod":1000}}"#,
                "cpu.realtimeRuntime",
            ),
            (r#"{"cpu":{"cpus":"1-0"}}"#, "cpu.cpus"),
            (r#"{"cpu":{"cpus":"a"}}"#, "cpu.cpus"),
            (r#"{"pids":{"limit":0}}"#, "pids.limit"),
            (r#"{"pids":{"limit":"10"}}"#, "pids.limit"),
            (r#"{"blockIO":{"weight":5}}"#, "blockIO.weight"),
            (r#"{"blockIO":{"leafWeight":1001}}"#, "blockIO.leafWeight"),
            (
                r#"{"blockIO":{"weightDevice":[{"major":8,"minor":0}]}}"#,
                "blockIO.weightDevice[0]",
            ),
            (
                r#"{"blockIO":{"weightDevice":[{"major":8,"weight":100}]}}"#,
                "blockIO.weightDevice[0].minor",
            ),
            (
                r#"{"blockIO":{"throttleReadBpsDevice":[{"major":-1,"minor":0,"rate":1}]}}"#,
                "blockIO.throttleReadBpsDevice[0].major",
            ),
            (
                r#"{"blockIO":{"throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":-1}]}}"#,
                "blockIO.throttleWriteIOPSDevice[0].rate",
            ),
            (
                r#"{"blockIO":{"throttleWriteBpsDevice":[{"major":8,"minor":0}]}}"#,
                "blockIO.throttleWriteBpsDevice[0].rate",
            ),
            (
                r#"{"blockIO":{"throttleReadIOPSDevice":{"major":8}}}"#,
                "blockIO.throttleReadIOPSDevice",
            ),
            (
                r#"{"hugepageLimits":[{"pageSize":"2M","limit":1}]}"#,
                "hugepageLimits[0].pageSize",
            ),
            (
                r#"{"hugepageLimits":[{"pageSize":"../2MB","limit":1}]}"#,
                "hugepageLimits[0].pageSize",
            ),
            (
                r#"{"hugepageLimits":[{"pageSize":"2MB","limit":-1}]}"#,
                "hugepageLimits[0].limit",
            ),
            (
                r#"{"hugepageLimits":[{"pageSize":"2MB"}]}"#,
                "hugepageLimits[0].limit",
            ),
            (
                r#"{"hugepageLimits":[{"pageSize":"2MB","limit":1},{"pageSize":"2MB","limit":2}]}"#,
                "hugepageLimits[1]",
            ),
            (r#"{"network":{"classID":-1}}"#, "network.classID"),
            (
                r#"{"network":{"priorities":[{"name":"eth0 1\nlo","priority":1}]}}"#,
                "network.priorities[0].name",
            ),
            (
                r#"{"network":{"priorities":[{"name":"eth0"}]}}"#,
                "network.priorities[0].priority",
            ),
            (r#"{"rdma":{"mlx":{}}}"#, "rdma.mlx"),
            (r#"{"rdma":{"a b":{"hcaHandles":1}}}"#, "rdma.a b"),
            (
                r#"{"rdma":{"mlx":{"hcaObjects":-3}}}"#,
                "rdma.mlx.hcaObjects",
            ),
            (r#"{"unified":{"../memory.max":"1"}}"#, "unified"),
            (r#"{"unified":{"a/memory.max":"1"}}"#, "unified"),
            (r#"{"unified":{"memory..max":"1"}}"#, "unified"),
            (r#"{"unified":{"nodot":"1"}}"#, "unified"),
            (r#"{"unified":{"cgroup.procs":"1"}}"#, "unified"),
            (r#"{"unified":{"memory.max":1}}"#, "unified"),
            (r#"{"devices":[{"allow":"yes"}]}"#, "devices"),
        ] {
            let e = parse(bad).expect_err(bad).to_string();
            assert!(e.contains(&format!("resources {field}")), "{bad}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        assert!(parse("not json").is_err());
    }

    #[test]
    fn cpuset_checked_against_host() {
        let host = IdSet::parse("0-1").unwrap();
        let mems = IdSet::parse("0").unwrap();
        assert!(parse(r#"{"cpu":{"cpus":"1"}}"#)
            .unwrap()
            .check_cpuset(&host, &mems)
            .is_ok());
        assert!(parse(r#"{"cpu":{"cpus":"0-2"}}"#)
            .unwrap()
            .check_cpuset(&host, &mems)
            .is_err());
        assert!(parse(r#"{"cpu":{"mems":"1"}}"#)
            .unwrap()
            .check_cpuset(&host, &mems)
            .is_err());
    }
}
