//! The device allowlist of a cgroup (`linux.resources.devices` of the OCI
//! runtime spec): rules, their validation, and enforcement through the v1
//! `devices` controller or, on pure cgroup v2, a BPF_PROG_TYPE_CGROUP_DEVICE
//! program (see `bpf`).
//!
//! Semantics are those of the v1 controller, as runc defines them for both
//! versions: the ordered rules fold into a [`Policy`] (a default verdict plus
//! exceptions for exact `type major:minor` entries). `a` with `*:*` and `rwm`
//! resets the default and drops every exception; any other rule adds access
//! to its exception when its verdict differs from the default, and takes
//! access away from every exception it covers otherwise. A rule that would
//! take access away from part of a broader exception (deny `c 1:3` after
//! allowing `c *:*`) cannot be expressed by v1 and is refused instead of being
//! silently ignored as the kernel would. An open needs one exception covering
//! all the access it asks for (rw on a node allowed `r` by one rule and `w` by
//! another is denied, as in the kernel). No rules at all: everything denied.

use crate::bpf::{self, BpfError};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::fmt;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse {path}: unexpected line {line:?}")]
    Parse { path: PathBuf, line: String },
    #[error("write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no devices cgroup among {dirs:?} (no v1 dir with devices.allow, no v2 dir with cgroup.controllers)")]
    NoHierarchy { dirs: Vec<PathBuf> },
    #[error("{path}: {source}")]
    Bpf { path: PathBuf, source: BpfError },
}

pub type Result<T> = std::result::Result<T, DevicesError>;

fn invalid(field: impl Into<String>, why: impl Into<String>) -> DevicesError {
    DevicesError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    All,
    Char,
    Block,
}

impl Kind {
    pub fn as_char(self) -> char {
        match self {
            Kind::All => 'a',
            Kind::Char => 'c',
            Kind::Block => 'b',
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        match s {
            "a" => Some(Kind::All),
            "c" => Some(Kind::Char),
            "b" => Some(Kind::Block),
            _ => None,
        }
    }
}

/// A subset of `rwm`; the bits are the kernel's (BPF_DEVCG_ACC_* and v1's
/// ACC_*): mknod 1, read 2, write 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access(u8);

impl Access {
    pub const NONE: Access = Access(0);
    pub const MKNOD: Access = Access(1);
    pub const READ: Access = Access(2);
    pub const WRITE: Access = Access(4);
    pub const RWM: Access = Access(7);

    pub fn bits(self) -> u8 {
        self.0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn intersects(self, other: Access) -> bool {
        self.0 & other.0 != 0
    }
    pub fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }
    pub fn minus(self, other: Access) -> Access {
        Access(self.0 & !other.0)
    }

    /// `rwm` letters, each at most once; `""` is rwm (runc's old default).
    /// The error says what is wrong with the text.
    pub fn parse(s: &str) -> std::result::Result<Access, String> {
        if s.is_empty() {
            return Ok(Access::RWM);
        }
        let mut a = Access::NONE;
        for c in s.chars() {
            let bit = match c {
                'r' => Access::READ,
                'w' => Access::WRITE,
                'm' => Access::MKNOD,
                _ => return Err(format!("{s:?}: {c:?} is not one of r, w, m")),
            };
            if a.contains(bit) {
                return Err(format!("{s:?}: {c:?} given twice"));
            }
            a = a.union(bit);
        }
        Ok(a)
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [
            (Access::READ, 'r'),
            (Access::WRITE, 'w'),
            (Access::MKNOD, 'm'),
        ] {
            if self.contains(bit) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// One rule; `None` major/minor is the wildcard `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

fn num(n: Option<u32>) -> String {
    n.map_or("*".into(), |n| n.to_string())
}

/// The v1 file format without the verdict: `c 1:3 rwm`, `a *:* rwm`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}:{} {}",
            self.kind.as_char(),
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

impl Rule {
    pub fn allow(kind: Kind, major: Option<u32>, minor: Option<u32>, access: Access) -> Rule {
        Rule {
            allow: true,
            kind,
            major,
            minor,
            access,
        }
    }

    pub fn deny(kind: Kind, major: Option<u32>, minor: Option<u32>, access: Access) -> Rule {
        Rule {
            allow: false,
            kind,
            major,
            minor,
            access,
        }
    }

    /// `a *:* rwm`: the rule that resets the default.
    fn is_all(&self) -> bool {
        self.kind == Kind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == Access::RWM
    }

    /// The rule as an entry of config.json's `linux.resources.devices`.
    pub fn to_oci(&self) -> LinuxDeviceCgroup {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(self.allow)
            .set_typ(Some(match self.kind {
                Kind::All => LinuxDeviceType::A,
                Kind::Char => LinuxDeviceType::C,
                Kind::Block => LinuxDeviceType::B,
            }))
            .set_major(self.major.map(i64::from))
            .set_minor(self.minor.map(i64::from))
            .set_access(Some(self.access.to_string()));
        d
    }
}

fn oci_number(field: String, n: Option<i64>) -> Result<Option<u32>> {
    match n {
        None => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            invalid(
                field,
                format!("{n} is out of range (0..=4294967295, or absent for any)"),
            )
        }),
    }
}

/// Validates OCI rules: type a|c|b (absent = a), access a subset of `rwm`
/// (absent or empty = rwm), major/minor in u32 or absent (= `*`). Errors name
/// the field, e.g. `devices[2].access`.
pub fn from_oci(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    rules
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let kind = match d.typ() {
                None | Some(LinuxDeviceType::A) => Kind::All,
                Some(LinuxDeviceType::C) => Kind::Char,
                Some(LinuxDeviceType::B) => Kind::Block,
                Some(t) => {
                    return Err(invalid(
                        format!("devices[{i}].type"),
                        format!("{:?} is not a cgroup device type (a, b or c)", t.as_str()),
                    ))
                }
            };
            let access = Access::parse(d.access().as_deref().unwrap_or(""))
                .map_err(|why| invalid(format!("devices[{i}].access"), why))?;
            Ok(Rule {
                allow: d.allow(),
                kind,
                major: oci_number(format!("devices[{i}].major"), d.major())?,
                minor: oci_number(format!("devices[{i}].minor"), d.minor())?,
                access,
            })
        })
        .collect()
}

/// Parses docker's `--device-cgroup-rule` text: `TYPE MAJOR:MINOR ACCESS`
/// (`c 1:3 rwm`, `a *:* m`, `b 7:* r`).
pub fn parse_rule(text: &str, allow: bool) -> Result<Rule> {
    let field = |part: &str| format!("device cgroup rule {text:?}: {part}");
    let words: Vec<&str> = text.split_whitespace().collect();
    let [kind, majmin, access] = words[..] else {
        return Err(invalid(field("format"), "want TYPE MAJOR:MINOR ACCESS"));
    };
    let kind = Kind::parse(kind)
        .ok_or_else(|| invalid(field("type"), format!("{kind:?} is not a, b or c")))?;
    let (major, minor) = majmin
        .split_once(':')
        .ok_or_else(|| invalid(field("major:minor"), format!("{majmin:?} has no ':'")))?;
    let number = |part: &str, s: &str| -> Result<Option<u32>> {
        if s == "*" {
            return Ok(None);
        }
        // digits only: u32's parser would also take a leading '+'
        match s.bytes().all(|b| b.is_ascii_digit()) {
            true => s.parse().map(Some).ok(),
            false => None,
        }
        .ok_or_else(|| invalid(field(part), format!("{s:?} is not '*' or a number in u32")))
    };
    let access = if access.is_empty() {
        Err("empty".to_string())
    } else {
        Access::parse(access)
    }
    .map_err(|why| invalid(field("access"), why))?;
    Ok(Rule {
        allow,
        kind,
        major: number("major", major)?,
        minor: number("minor", minor)?,
        access,
    })
}

/// docker's rules for a default (unprivileged) container: moby's
/// oci.DefaultLinuxSpec list, then the AllowedDevices runc appends to it.
pub fn docker_default() -> Vec<Rule> {
    let c = |maj, min: Option<u32>| Rule::allow(Kind::Char, Some(maj), min, Access::RWM);
    let mut rules = vec![Rule::deny(Kind::All, None, None, Access::RWM)];
    // moby: zero, null, urandom, random, tty, console; then deny fuse
    for (maj, min) in [(1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1)] {
        rules.push(c(maj, Some(min)));
    }
    rules.push(Rule::deny(Kind::Char, Some(10), Some(229), Access::RWM));
    // runc: mknod of anything, null, random, full, tty, zero, urandom,
    // pts, ptmx, net/tun
    rules.push(Rule::allow(Kind::Char, None, None, Access::MKNOD));
    rules.push(Rule::allow(Kind::Block, None, None, Access::MKNOD));
    for (maj, min) in [(1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9)] {
        rules.push(c(maj, Some(min)));
    }
    rules.push(c(136, None));
    rules.push(c(5, Some(2)));
    rules.push(c(10, Some(200)));
    rules
}

/// One exception of a [`Policy`]: a char or block entry, never `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

impl Exception {
    fn same_node(&self, o: &Exception) -> bool {
        self.kind == o.kind && self.major == o.major && self.minor == o.minor
    }

    /// Every device `o` names is one `self` names.
    fn covers(&self, o: &Exception) -> bool {
        let dim = |a: Option<u32>, b: Option<u32>| a.is_none() || a == b;
        self.kind == o.kind && dim(self.major, o.major) && dim(self.minor, o.minor)
    }

    /// Some device is named by both.
    fn overlaps(&self, o: &Exception) -> bool {
        let dim = |a: Option<u32>, b: Option<u32>| a.is_none() || b.is_none() || a == b;
        self.kind == o.kind && dim(self.major, o.major) && dim(self.minor, o.minor)
    }

    pub fn matches(&self, kind: Kind, major: u32, minor: u32) -> bool {
        self.kind == kind
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }

    /// The v1 file format: `c 1:3 rwm`.
    pub fn line(&self) -> String {
        format!(
            "{} {}:{} {}",
            self.kind.as_char(),
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

/// What the ordered rules come to: the state of a v1 devices cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub default_allow: bool,
    /// Allowed entries when the default is deny, denied ones otherwise; in
    /// the order they were first made (the kernel's list order).
    pub exceptions: Vec<Exception>,
}

impl Policy {
    /// Folds the rules in order (see the module doc); refuses a rule v1
    /// cannot express, naming it as `rules[i]`.
    pub fn from_rules(rules: &[Rule]) -> Result<Policy> {
        let mut p = Policy {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for (i, r) in rules.iter().enumerate() {
            if r.is_all() {
                p = Policy {
                    default_allow: r.allow,
                    exceptions: Vec::new(),
                };
                continue;
            }
            if r.access.is_empty() {
                continue;
            }
            let kinds: &[Kind] = match r.kind {
                Kind::All => &[Kind::Char, Kind::Block],
                Kind::Char => &[Kind::Char],
                Kind::Block => &[Kind::Block],
            };
            for &kind in kinds {
                let ex = Exception {
                    kind,
                    major: r.major,
                    minor: r.minor,
                    access: r.access,
                };
                if r.allow != p.default_allow {
                    p.add(ex);
                } else {
                    p.remove(ex)
                        .map_err(|why| invalid(format!("rules[{i}] ({r})"), why))?;
                }
            }
        }
        Ok(p)
    }

    fn add(&mut self, ex: Exception) {
        match self.exceptions.iter_mut().find(|e| e.same_node(&ex)) {
            Some(e) => e.access = e.access.union(ex.access),
            None => self.exceptions.push(ex),
        }
    }

    fn remove(&mut self, ex: Exception) -> std::result::Result<(), String> {
        if let Some(e) = self
            .exceptions
            .iter()
            .find(|e| !ex.covers(e) && e.overlaps(&ex) && e.access.intersects(ex.access))
        {
            let (verdict, undo) = match self.default_allow {
                true => ("denied", "allow"),
                false => ("allowed", "deny"),
            };
            return Err(format!(
                "cannot {undo} part of the broader entry {} {verdict} before (cgroup v1 cannot punch holes into a wildcard rule)",
                e.line()
            ));
        }
        for e in self.exceptions.iter_mut().filter(|e| ex.covers(e)) {
            e.access = e.access.minus(ex.access);
        }
        self.exceptions.retain(|e| !e.access.is_empty());
        Ok(())
    }

    /// The verdict for an access to a device node, as the kernel decides it
    /// (v1 and the generated BPF program alike).
    pub fn allows(&self, kind: Kind, major: u32, minor: u32, access: Access) -> bool {
        let mut hit = self
            .exceptions
            .iter()
            .filter(|e| e.matches(kind, major, minor));
        if self.default_allow {
            // denied when any deny exception touches any requested bit
            !hit.any(|e| e.access.intersects(access))
        } else {
            // allowed when one allow exception holds every requested bit
            hit.any(|e| e.access.contains(access))
        }
    }

    /// Parses a v1 `devices.list`: `a *:* rwm` means default allow, whose
    /// deny exceptions the kernel does not show (None = unknown); otherwise
    /// default deny with the listed exceptions.
    fn from_list(path: &Path, text: &str) -> Result<(Policy, bool)> {
        let bad = |line: &str| DevicesError::Parse {
            path: path.to_path_buf(),
            line: line.to_string(),
        };
        let mut p = Policy {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r = parse_rule(line, true).map_err(|_| bad(line))?;
            if r.is_all() {
                return Ok((
                    Policy {
                        default_allow: true,
                        exceptions: Vec::new(),
                    },
                    false,
                ));
            }
            if r.kind == Kind::All {
                return Err(bad(line));
            }
            p.add(Exception {
                kind: r.kind,
                major: r.major,
                minor: r.minor,
                access: r.access,
            });
        }
        Ok((p, true))
    }

    /// The writes that turn `current` (from `from_list`; `known` false when
    /// its exceptions are hidden) into `self`, as (file, value) pairs: a reset
    /// only when the default changes or the old exceptions are unknown, then
    /// the access each exact entry loses, then what each gains, so access
    /// kept by both never lapses.
    fn transition(&self, current: &Policy, known: bool) -> Vec<(&'static str, String)> {
        let (grant, revoke) = match self.default_allow {
            false => ("devices.allow", "devices.deny"),
            true => ("devices.deny", "devices.allow"),
        };
        let mut writes = Vec::new();
        let mut old: &[Exception] = &current.exceptions;
        if !known || current.default_allow != self.default_allow {
            let file = if self.default_allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            writes.push((file, "a".to_string()));
            old = &[];
        }
        let access_of = |list: &[Exception], e: &Exception| {
            list.iter()
                .find(|x| x.same_node(e))
                .map_or(Access::NONE, |x| x.access)
        };
        for e in old {
            let lost = e.access.minus(access_of(&self.exceptions, e));
            if !lost.is_empty() {
                writes.push((revoke, Exception { access: lost, ..*e }.line()));
            }
        }
        for e in &self.exceptions {
            let gained = e.access.minus(access_of(old, e));
            if !gained.is_empty() {
                writes.push((
                    grant,
                    Exception {
                        access: gained,
                        ..*e
                    }
                    .line(),
                ));
            }
        }
        writes
    }
}

/// Enforces `rules` (ordered, see the module doc) on the cgroup whose
/// directories are `dirs`, one per hierarchy as cgctl records them. With a
/// v1 `devices` dir among them, v1 is used; otherwise the v2 dir gets a BPF
/// program (attached with BPF_F_ALLOW_MULTI; one attached by an earlier
/// apply is detached only after the new one is in, so the rules never
/// lapse). The rules are checked whole before anything is written.
pub fn apply(dirs: &[PathBuf], rules: &[Rule]) -> Result<()> {
    let policy = Policy::from_rules(rules)?;
    if let Some(dir) = dirs.iter().find(|d| d.join("devices.allow").exists()) {
        return apply_v1(dir, &policy);
    }
    if let Some(dir) = dirs.iter().find(|d| crate::hierarchy::is_v2_dir(d)) {
        return apply_v2(dir, &policy);
    }
    Err(DevicesError::NoHierarchy {
        dirs: dirs.to_vec(),
    })
}

fn apply_v1(dir: &Path, policy: &Policy) -> Result<()> {
    let list = dir.join("devices.list");
    let text = std::fs::read_to_string(&list).map_err(|source| DevicesError::Read {
        path: list.clone(),
        source,
    })?;
    let (current, known) = Policy::from_list(&list, &text)?;
    for (file, value) in policy.transition(&current, known) {
        let path = dir.join(file);
        // one write(2) per rule: the kernel parses each write as one rule
        std::fs::write(&path, &value).map_err(|source| DevicesError::Write {
            path,
            value,
            source,
        })?;
    }
    Ok(())
}

fn apply_v2(dir: &Path, policy: &Policy) -> Result<()> {
    let insns = bpf::program(policy);
    let cg = std::fs::File::open(dir).map_err(|source| DevicesError::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let err = |source| DevicesError::Bpf {
        path: dir.to_path_buf(),
        source,
    };
    // ours from an earlier apply; programs others attached stay
    let old = bpf::attached_ours(cg.as_fd()).map_err(err)?;
    let prog = bpf::load(&insns).map_err(err)?;
    bpf::attach(cg.as_fd(), prog.as_fd()).map_err(err)?;
    for id in old {
        bpf::detach_id(cg.as_fd(), id).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(json: serde_json::Value) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_value(json).unwrap()
    }

    fn err_text(r: Result<impl fmt::Debug>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn from_oci_reads_docker_shapes() {
        let rules = from_oci(&oci(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            {"allow": true, "type": "b", "major": 7},
            {"allow": true, "type": "a", "access": ""}
        ])))
        .unwrap();
        assert_eq!(
            rules,
            vec![
                Rule::deny(Kind::All, None, None, Access::RWM),
                Rule::allow(
                    Kind::Char,
                    Some(1),
                    Some(3),
                    Access::READ.union(Access::WRITE)
                ),
                Rule::allow(Kind::Block, Some(7), None, Access::RWM),
                Rule::allow(Kind::All, None, None, Access::RWM),
            ]
        );
    }

    #[test]
    fn from_oci_names_the_bad_field() {
        let e = err_text(from_oci(&oci(serde_json::json!([
            {"allow": true, "type": "c", "access": "rwm"},
            {"allow": true, "type": "c", "access": "rwx"}
        ]))));
        assert!(e.starts_with("devices[1].access: "), "{e}");
        assert!(e.contains("'x'"), "{e}");
        let e = err_text(from_oci(&oci(serde_json::json!([
            {"allow": true, "type": "p", "access": "r"}
        ]))));
        assert!(e.starts_with("devices[0].type: "), "{e}");
        let e = err_text(from_oci(&oci(serde_json::json!([
            {"allow": true, "type": "c", "major": -1, "access": "r"}
        ]))));
        assert!(e.starts_with("devices[0].major: -1 is out of range"), "{e}");
        let e = err_text(from_oci(&oci(serde_json::json!([
            {"allow": true, "type": "b", "major": 8, "minor": 4294967296u64, "access": "r"}
        ]))));
        assert!(e.starts_with("devices[0].minor: "), "{e}");
        let e = err_text(from_oci(&oci(serde_json::json!([
            {"allow": true, "type": "c", "access": "rr"}
        ]))));
        assert!(e.contains("given twice"), "{e}");
    }

    #[test]
    fn parse_rule_reads_docker_text() {
        assert_eq!(
            parse_rule("c 1:3 rwm", true).unwrap(),
            Rule::allow(Kind::Char, Some(1), Some(3), Access::RWM)
        );
        assert_eq!(
            parse_rule("a *:* m", true).unwrap(),
            Rule::allow(Kind::All, None, None, Access::MKNOD)
        );
        assert_eq!(
            parse_rule(" b 7:*  r ", false).unwrap(),
            Rule::deny(Kind::Block, Some(7), None, Access::READ)
        );
        for (text, part) in [
            ("x 1:3 r", "type"),
            ("c 1-3 r", "major:minor"),
            ("c q:3 r", "major"),
            ("c +1:3 r", "major"),
            ("c 1:-3 r", "minor"),
            ("c 1:3 rq", "access"),
            ("c 1:3", "format"),
        ] {
            let e = err_text(parse_rule(text, true));
            assert!(
                e.starts_with(&format!("device cgroup rule {text:?}: {part}: ")),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn to_oci_round_trips() {
        for r in docker_default() {
            assert_eq!(from_oci(&[r.to_oci()]).unwrap(), vec![r]);
        }
        let j = serde_json::to_value(parse_rule("b 7:* r", true).unwrap().to_oci()).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"allow": true, "type": "b", "major": 7, "access": "r"})
        );
    }

    fn lines(p: &Policy) -> Vec<String> {
        p.exceptions.iter().map(Exception::line).collect()
    }

    #[test]
    fn docker_default_is_an_allowlist() {
        let p = Policy::from_rules(&docker_default()).unwrap();
        assert!(!p.default_allow);
        assert_eq!(
            lines(&p),
            [
                "c 1:5 rwm",
                "c 1:3 rwm",
                "c 1:9 rwm",
                "c 1:8 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c *:* m",
                "b *:* m",
                "c 1:7 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm",
            ]
        );
        let rw = Access::READ.union(Access::WRITE);
        assert!(p.allows(Kind::Char, 1, 3, rw));
        assert!(p.allows(Kind::Char, 136, 7, rw));
        assert!(p.allows(Kind::Block, 7, 0, Access::MKNOD));
        assert!(!p.allows(Kind::Block, 7, 0, Access::READ));
        assert!(!p.allows(Kind::Char, 10, 229, Access::READ));
        assert!(p.allows(Kind::Char, 10, 229, Access::MKNOD));
    }

    #[test]
    fn later_rules_win() {
        let r = |t: &str, allow| parse_rule(t, allow).unwrap();
        // a wildcard deny takes access from the exact entries it covers
        let p = Policy::from_rules(&[
            Rule::deny(Kind::All, None, None, Access::RWM),
            r("c 1:3 rwm", true),
            r("c 1:5 rw", true),
            r("c *:* w", false),
        ])
        .unwrap();
        assert_eq!(lines(&p), ["c 1:3 rm", "c 1:5 r"]);
        // `a` with less than rwm expands to c and b entries
        let p = Policy::from_rules(&[r("a *:* rwm", false), r("a 8:* r", true)]).unwrap();
        assert_eq!(lines(&p), ["c 8:* r", "b 8:* r"]);
        // denylist
        let p = Policy::from_rules(&[
            r("a *:* rwm", true),
            r("b 8:* rw", false),
            r("b 8:* w", true),
        ])
        .unwrap();
        assert!(p.default_allow);
        assert_eq!(lines(&p), ["b 8:* r"]);
        assert!(!p.allows(Kind::Block, 8, 1, Access::READ.union(Access::WRITE)));
        assert!(p.allows(Kind::Block, 8, 1, Access::WRITE));
        // an allow-all at the end wins over everything before
        let p = Policy::from_rules(&[r("c 1:3 r", true), r("a *:* rwm", true)]).unwrap();
        assert_eq!(
            p,
            Policy {
                default_allow: true,
                exceptions: vec![]
            }
        );
        // no rules: nothing allowed
        assert!(!Policy::from_rules(&[])
            .unwrap()
            .allows(Kind::Char, 1, 3, Access::READ));
    }

    #[test]
    fn hole_in_a_wildcard_is_refused() {
        let rules = [
            Rule::deny(Kind::All, None, None, Access::RWM),
            parse_rule("c *:* m", true).unwrap(),
            parse_rule("c 1:3 m", false).unwrap(),
        ];
        let e = err_text(Policy::from_rules(&rules));
        assert!(
            e.starts_with("rules[2] (c 1:3 m): cannot deny part of"),
            "{e}"
        );
        // no overlap in access: fine
        let rules = [rules[0], rules[1], parse_rule("c 1:3 r", false).unwrap()];
        assert!(Policy::from_rules(&rules).is_ok());
    }

    #[test]
    fn list_and_transition() {
        let path = Path::new("devices.list");
        let (cur, known) = Policy::from_list(path, "a *:* rwm\n").unwrap();
        assert!(cur.default_allow && !known);
        let target = Policy::from_rules(&docker_default()).unwrap();
        let w = target.transition(&cur, known);
        assert_eq!(w[0], ("devices.deny", "a".to_string()));
        assert_eq!(w[1], ("devices.allow", "c 1:5 rwm".to_string()));
        assert_eq!(w.len(), 13);
        // the same again: nothing to write
        let text: String = lines(&target).iter().map(|l| format!("{l}\n")).collect();
        let (cur, known) = Policy::from_list(path, &text).unwrap();
        assert_eq!(cur, target);
        assert!(target.transition(&cur, known).is_empty());
        // an update: drop 1:7's w, add 7:0 r, no reset
        let mut rules = docker_default();
        rules.push(parse_rule("c 1:7 w", false).unwrap());
        rules.push(parse_rule("b 7:0 r", true).unwrap());
        let next = Policy::from_rules(&rules).unwrap();
        assert_eq!(
            next.transition(&cur, known),
            [
                ("devices.deny", "c 1:7 w".to_string()),
                ("devices.allow", "b 7:0 r".to_string())
            ]
        );
        assert!(Policy::from_list(path, "x 1:3 rwm\n").is_err());
    }
}
