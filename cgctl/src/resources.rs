//! Resource limits: the OCI `linux.resources` JSON in, validated typed values
//! out. Pure: no I/O, so every refusal happens before anything is created.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error)]
pub enum ResourcesError {
    #[error("resources JSON on stdin: {0}")]
    Json(#[from] serde_json::Error),
    #[error("resources {field}: {value} is invalid: {why}")]
    Invalid {
        field: &'static str,
        value: String,
        why: String,
    },
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

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    pub limit: Option<Limit>,
    pub reservation: Option<Limit>,
    /// OCI semantics: memory + swap together (v1 `memory.memsw.limit_in_bytes`).
    pub swap: Option<Limit>,
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
    pub cpus: Option<IdSet>,
    pub mems: Option<IdSet>,
}

impl Cpu {
    /// cgroup v2 `cpu.weight` from v1 shares: the standard conversion used by
    /// runc and crun (2..262144 onto 1..10000).
    pub fn weight(&self) -> Option<u64> {
        self.shares.map(|s| 1 + ((s - 2) * 9999) / 262142)
    }
}

/// Validated resources. Everything is optional: `{}` sets nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub memory: Memory,
    pub cpu: Cpu,
    pub pids: Option<Limit>,
    /// v1 `blkio.weight` range, 10..=1000.
    pub blkio_weight: Option<u64>,
}

impl Resources {
    /// v2 `io.weight` (1..10000) from a v1 blkio weight (10..1000), as runc does.
    pub fn io_weight(&self) -> Option<u64> {
        self.blkio_weight.map(|w| 1 + (w - 10) * 9999 / 990)
    }

    /// Checks cpus/mems against what the parent cgroup may use.
    pub fn check_cpuset(&self, host_cpus: &IdSet, host_mems: &IdSet) -> Result<()> {
        for (field, set, host) in [
            ("cpu.cpus", &self.cpu.cpus, host_cpus),
            ("cpu.mems", &self.cpu.mems, host_mems),
        ] {
            if let Some(set) = set {
                if let Some(bad) = set.ids.iter().find(|i| !host.ids.contains(i)) {
                    return Err(ResourcesError::Invalid {
                        field,
                        value: format!("{:?}", set.text),
                        why: format!("{bad} is not among the available {:?}", host.text),
                    });
                }
            }
        }
        Ok(())
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Raw {
    memory: Option<RawMemory>,
    cpu: Option<RawCpu>,
    pids: Option<RawPids>,
    #[serde(rename = "blockIO")]
    block_io: Option<RawBlockIo>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMemory {
    limit: Option<Value>,
    reservation: Option<Value>,
    swap: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCpu {
    shares: Option<Value>,
    quota: Option<Value>,
    period: Option<Value>,
    cpus: Option<Value>,
    mems: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawPids {
    limit: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawBlockIo {
    weight: Option<Value>,
}

fn invalid(field: &'static str, v: &Value, why: impl Into<String>) -> ResourcesError {
    ResourcesError::Invalid {
        field,
        value: v.to_string(),
        why: why.into(),
    }
}

/// An integer field; `null` counts as absent.
fn int(field: &'static str, v: &Option<Value>) -> Result<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(field, v.as_ref().unwrap(), "not a 64-bit integer")),
        Some(other) => Err(invalid(field, other, "expected an integer")),
    }
}

/// A byte size: an integer, or a string such as "64m", "1G", "512k", "max".
fn size(field: &'static str, v: &Option<Value>) -> Result<Option<i64>> {
    match v {
        Some(Value::String(s)) => parse_size(s).map(Some).ok_or_else(|| {
            invalid(
                field,
                v.as_ref().unwrap(),
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

/// `-1` -> Max, a positive number -> Value; zero and other negatives refused.
fn limit(
    field: &'static str,
    raw: &Option<Value>,
    n: Option<i64>,
    min: i64,
) -> Result<Option<Limit>> {
    match n {
        None => Ok(None),
        Some(-1) => Ok(Some(Limit::Max)),
        Some(n) if n >= min && n > 0 => Ok(Some(Limit::Value(n as u64))),
        Some(_) => Err(invalid(
            field,
            raw.as_ref().unwrap(),
            format!("must be -1 (unlimited) or at least {}", min.max(1)),
        )),
    }
}

fn idset(field: &'static str, v: &Option<Value>) -> Result<Option<IdSet>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => IdSet::parse(s)
            .map(Some)
            .map_err(|why| invalid(field, v.as_ref().unwrap(), why)),
        Some(other) => Err(invalid(field, other, "expected a string such as \"0-1,3\"")),
    }
}

/// Parses and validates resources JSON (empty input or `{}` = no limits).
/// Unknown fields (devices, hugepageLimits, ...) are tolerated and ignored.
pub fn parse(input: &str) -> Result<Resources> {
    if input.trim().is_empty() {
        return Ok(Resources::default());
    }
    let raw: Raw = serde_json::from_str(input)?;
    let mut r = Resources::default();

    if let Some(m) = &raw.memory {
        r.memory.limit = limit("memory.limit", &m.limit, size("memory.limit", &m.limit)?, 1)?;
        r.memory.reservation = match size("memory.reservation", &m.reservation)? {
            None => None,
            Some(-1) => Some(Limit::Max),
            Some(n) if n >= 0 => Some(Limit::Value(n as u64)),
            Some(_) => {
                return Err(invalid(
                    "memory.reservation",
                    m.reservation.as_ref().unwrap(),
                    "must be -1 or >= 0",
                ))
            }
        };
        r.memory.swap = limit("memory.swap", &m.swap, size("memory.swap", &m.swap)?, 1)?;
        if let Some(Limit::Value(s)) = r.memory.swap {
            let v = m.swap.as_ref().unwrap();
            match r.memory.limit {
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
    }

    if let Some(c) = &raw.cpu {
        if let Some(s) = int("cpu.shares", &c.shares)? {
            if !(2..=262144).contains(&s) {
                return Err(invalid(
                    "cpu.shares",
                    c.shares.as_ref().unwrap(),
                    "must be 2..=262144",
                ));
            }
            r.cpu.shares = Some(s as u64);
        }
        r.cpu.quota = limit("cpu.quota", &c.quota, int("cpu.quota", &c.quota)?, 1000)?;
        if let Some(p) = int("cpu.period", &c.period)? {
            if !(1000..=1_000_000).contains(&p) {
                return Err(invalid(
                    "cpu.period",
                    c.period.as_ref().unwrap(),
                    "must be 1000..=1000000 (microseconds)",
                ));
            }
            r.cpu.period = Some(p as u64);
        }
        r.cpu.cpus = idset("cpu.cpus", &c.cpus)?;
        r.cpu.mems = idset("cpu.mems", &c.mems)?;
    }

    if let Some(p) = &raw.pids {
        r.pids = limit("pids.limit", &p.limit, int("pids.limit", &p.limit)?, 1)?;
    }

    if let Some(b) = &raw.block_io {
        if let Some(w) = int("blockIO.weight", &b.weight)? {
            if !(10..=1000).contains(&w) {
                return Err(invalid(
                    "blockIO.weight",
                    b.weight.as_ref().unwrap(),
                    "must be 10..=1000",
                ));
            }
            r.blkio_weight = Some(w as u64);
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
        assert_eq!(
            parse(r#"{"memory":null,"devices":[{"allow":false}]}"#).unwrap(),
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
        assert_eq!(r.blkio_weight, Some(500));
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
    }

    #[test]
    fn invalid_values_refused() {
        for bad in [
            r#"{"memory":{"limit":0}}"#,
            r#"{"memory":{"limit":-5}}"#,
            r#"{"memory":{"limit":"12q"}}"#,
            r#"{"memory":{"limit":1.5}}"#,
            r#"{"memory":{"swap":1000}}"#,
            r#"{"memory":{"limit":2000,"swap":1000}}"#,
            r#"{"cpu":{"shares":0}}"#,
            r#"{"cpu":{"shares":-1}}"#,
            r#"{"cpu":{"quota":0}}"#,
            r#"{"cpu":{"period":0}}"#,
            r#"{"cpu":{"cpus":"1-0"}}"#,
            r#"{"cpu":{"cpus":"a"}}"#,
            r#"{"pids":{"limit":0}}"#,
            r#"{"pids":{"limit":"10"}}"#,
            r#"{"blockIO":{"weight":5}}"#,
            "not json",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
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
