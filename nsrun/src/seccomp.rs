//! `linux.seccomp`: validated and compiled to a BPF program in the parent
//! (libseccomp, once), loaded in the container process with a bare
//! seccomp(2) (no libseccomp after the fork), and, with SCMP_ACT_NOTIFY, the
//! listener fd handed to `listenerPath` with the container process state.
//!
//! Semantics follow runc: a rule whose action equals the default is skipped,
//! a syscall name unknown on this architecture is skipped, ERRNO and TRACE
//! return EPERM unless `errnoRet` says otherwise, conditions of one rule are
//! ANDed unless two name the same argument (then each is its own rule, ORed),
//! SCMP_CMP_MASKED_EQ takes `value` as the mask and `valueTwo` as the datum,
//! NOTIFY cannot be the default action nor apply to `write` (the init needs
//! write to hand the fd over).

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use serde_json::Value;
use std::io::{IoSlice, Read, Seek};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A bad `linux.seccomp`, naming the field (`linux.seccomp.syscalls[3].action`).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {why}")]
pub struct SeccompError {
    pub field: String,
    pub why: String,
}

fn bad(field: impl Into<String>, why: impl Into<String>) -> SeccompError {
    SeccompError {
        field: field.into(),
        why: why.into(),
    }
}

// seccomp(2) constants (linux/seccomp.h).
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_TSYNC_ESRCH: u32 = 16;

const ACTIONS: [&str; 9] = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
/// The flags the runtime-spec names that the config types (oci-spec 0.7) carry.
const FLAGS: [&str; 3] = [
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
];

/// Where the notify fd goes, and what to tell it.
#[derive(Debug, Clone)]
pub struct Listener {
    pub path: PathBuf,
    pub metadata: String,
}

/// A compiled filter, ready to load.
#[derive(Clone)]
pub struct Program {
    filter: Vec<libc::sock_filter>,
    flags: u32,
    /// Some rule has SCMP_ACT_NOTIFY: load with NEW_LISTENER.
    pub notify: bool,
    /// Set whenever `notify` is (compile requires it).
    pub listener: Option<Listener>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("instructions", &self.filter.len())
            .field("flags", &self.flags)
            .field("notify", &self.notify)
            .field("listener", &self.listener)
            .finish()
    }
}

/// Checks the names of actions, operators, architectures and flags in the
/// raw `linux.seccomp` JSON (`Value::Null` when absent). The config types
/// reject an unknown name too, but only with a line and column; this names
/// the field. Called before the typed parse.
pub fn check_json(s: &Value) -> Result<(), SeccompError> {
    if s.is_null() {
        return Ok(());
    }
    let name = |v: &Value, field: String, known: &[&str], what: &str| match v.as_str() {
        Some(n) if known.contains(&n) => Ok(()),
        Some(n) => Err(bad(field, format!("unknown {what} {n:?}"))),
        None => Err(bad(field, format!("not a string: {v}"))),
    };
    name(
        &s["defaultAction"],
        "linux.seccomp.defaultAction".into(),
        &ACTIONS,
        "action",
    )?;
    for (i, a) in s["architectures"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("linux.seccomp.architectures[{i}]");
        let n = a
            .as_str()
            .ok_or_else(|| bad(&field, format!("not a string: {a}")))?;
        arch(n).map_err(|why| bad(&field, why))?;
    }
    for (i, f) in s["flags"].as_array().into_iter().flatten().enumerate() {
        let field = format!("linux.seccomp.flags[{i}]");
        if f.as_str() == Some("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") {
            return Err(bad(
                field,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported by nsrun",
            ));
        }
        name(f, field, &FLAGS, "flag")?;
    }
    for (i, c) in s["syscalls"].as_array().into_iter().flatten().enumerate() {
        let at = format!("linux.seccomp.syscalls[{i}]");
        name(&c["action"], format!("{at}.action"), &ACTIONS, "action")?;
        for (j, a) in c["args"].as_array().into_iter().flatten().enumerate() {
            name(&a["op"], format!("{at}.args[{j}].op"), &OPS, "operator")?;
        }
    }
    Ok(())
}

/// `check_json`, the typed parse and `compile` of a `linux.seccomp` JSON.
pub fn compile_json(v: &Value) -> Result<Program, SeccompError> {
    check_json(v)?;
    let s: LinuxSeccomp =
        serde_json::from_value(v.clone()).map_err(|e| bad("linux.seccomp", e.to_string()))?;
    compile(&s)
}

/// libseccomp's architecture for an `SCMP_ARCH_*` name.
fn arch(name: &str) -> Result<ScmpArch, String> {
    ScmpArch::from_str(name).map_err(|_| format!("unknown architecture {name:?}"))
}

fn action(
    a: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
) -> Result<ScmpAction, SeccompError> {
    let ret = |what: &str| -> Result<u16, SeccompError> {
        match errno_ret {
            None => Ok(libc::EPERM as u16),
            Some(n) => u16::try_from(n)
                .map_err(|_| bad(field, format!("{what} {n} does not fit in 16 bits"))),
        }
    };
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(ret("errnoRet")? as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret("errnoRet")?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

fn op(o: LinuxSeccompOperator, value: u64) -> ScmpCompareOp {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value),
    }
}

/// The name an enum value has in the config (`SCMP_ARCH_X86`).
fn json_name<T: serde::Serialize>(t: &T) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Validates and compiles `linux.seccomp`. Runs in the parent, before any
/// side effect: an error here is bad input (nsrun exit 2).
pub fn compile(s: &LinuxSeccomp) -> Result<Program, SeccompError> {
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    if default == ScmpAction::Notify {
        return Err(bad(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action (the init could not hand the fd over)",
        ));
    }
    let lib =
        |field: &str, e: libseccomp::error::SeccompError| bad(field, format!("libseccomp: {e}"));
    let mut ctx =
        ScmpFilterContext::new(default).map_err(|e| lib("linux.seccomp.defaultAction", e))?;
    // The exported program never sets no_new_privs; NNP is the config's call.
    ctx.set_ctl_nnp(false)
        .map_err(|e| lib("linux.seccomp", e))?;
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.architectures[{i}]");
        let a = arch(&json_name(a)).map_err(|why| bad(&field, why))?;
        ctx.add_arch(a).map_err(|e| lib(&field, e))?;
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match json_name(f).as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => FLAG_TSYNC,
            "SECCOMP_FILTER_FLAG_LOG" => FLAG_LOG,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => FLAG_SPEC_ALLOW,
            other => {
                return Err(bad(
                    "linux.seccomp.flags",
                    format!("unknown flag {other:?}"),
                ))
            }
        };
    }
    let mut notify = false;
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        let at = format!("linux.seccomp.syscalls[{i}]");
        let act = action(call.action(), call.errno_ret(), &format!("{at}.errnoRet"))?;
        let args = call.args().clone().unwrap_or_default();
        let mut conds = Vec::new();
        let mut per_index = [0; 6];
        for (j, a) in args.iter().enumerate() {
            if a.index() >= 6 {
                return Err(bad(
                    format!("{at}.args[{j}].index"),
                    format!("{} is not a syscall argument (0-5)", a.index()),
                ));
            }
            per_index[a.index()] += 1;
            let c = if a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq {
                ScmpArgCompare::new(
                    a.index() as u32,
                    op(a.op(), a.value()),
                    a.value_two().unwrap_or(0),
                )
            } else {
                ScmpArgCompare::new(a.index() as u32, op(a.op(), 0), a.value())
            };
            conds.push(c);
        }
        if call.names().is_empty() {
            return Err(bad(format!("{at}.names"), "empty"));
        }
        for (k, name) in call.names().iter().enumerate() {
            if name.is_empty() {
                return Err(bad(format!("{at}.names[{k}]"), "empty syscall name"));
            }
            if act == ScmpAction::Notify && name == "write" {
                return Err(bad(
                    format!("{at}.action"),
                    "SCMP_ACT_NOTIFY cannot be used for write (the init needs it to hand the fd over)",
                ));
            }
        }
        if act == ScmpAction::Notify {
            notify = true;
        }
        if act == default {
            continue; // redundant, and libseccomp refuses it
        }
        for name in call.names() {
            // Unknown here (another architecture's, or newer than libseccomp): skipped, as runc does.
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let field = format!("{at} ({name})");
            if conds.is_empty() {
                ctx.add_rule(act, nr).map_err(|e| lib(&field, e))?;
            } else if per_index.iter().any(|n| *n > 1) {
                for c in &conds {
                    ctx.add_rule_conditional(act, nr, &[*c])
                        .map_err(|e| lib(&field, e))?;
                }
            } else {
                ctx.add_rule_conditional(act, nr, &conds)
                    .map_err(|e| lib(&field, e))?;
            }
        }
    }
    let listener = match s.listener_path() {
        Some(p) if !p.as_os_str().is_empty() => Some(Listener {
            path: p.clone(),
            metadata: s.listener_metadata().clone().unwrap_or_default(),
        }),
        _ => None,
    };
    if notify && listener.is_none() {
        return Err(bad(
            "linux.seccomp.listenerPath",
            "required when a rule uses SCMP_ACT_NOTIFY",
        ));
    }
    let filter = export(&ctx).map_err(|e| bad("linux.seccomp", format!("export BPF: {e}")))?;
    Ok(Program {
        filter,
        flags,
        notify,
        listener,
    })
}

/// The filter as kernel BPF: libseccomp 2.5 exports only to an fd.
fn export(ctx: &ScmpFilterContext) -> std::io::Result<Vec<libc::sock_filter>> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let fd = memfd_create(c"nsrun-seccomp", MFdFlags::MFD_CLOEXEC)?;
    let mut f = std::fs::File::from(fd);
    ctx.export_bpf(&f).map_err(std::io::Error::other)?;
    f.rewind()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    decode(&bytes)
}

/// Kernel BPF bytes (as libseccomp exports them) as instructions.
fn decode(bytes: &[u8]) -> std::io::Result<Vec<libc::sock_filter>> {
    let size = std::mem::size_of::<libc::sock_filter>();
    if bytes.is_empty()
        || !bytes.len().is_multiple_of(size)
        || bytes.len() / size > u16::MAX as usize
    {
        return Err(std::io::Error::other(format!(
            "{} bytes is not a BPF program",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(size)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// The compiled-filter cache, a directory of nsrun's state root (not a
/// container id: state listings skip it).
pub const CACHE_DIR: &str = ".seccomp-cache";

/// Compiling docker's profile with libseccomp costs ~10 ms (three
/// architectures, ~360 syscalls), most of `nsrun create`'s own time: the
/// BPF is kept in `dir` (root-only, under nsrun's state root), keyed by the
/// SHA-256 of the `linux.seccomp` JSON, the libseccomp version and this
/// architecture, so a profile is compiled once. Only successful compiles
/// are kept, so a hit is a profile that was valid; a cache that cannot be
/// read or written is just a miss.
pub fn compile_cached(s: &LinuxSeccomp, dir: Option<&Path>) -> Result<Program, SeccompError> {
    let Some(dir) = dir else {
        return compile(s);
    };
    let key = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(serde_json::to_vec(s).unwrap_or_default());
        h.update(format!("{:?}", libseccomp::ScmpVersion::current().ok()));
        h.update(std::env::consts::ARCH);
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let file = dir.join(format!("{key}.bpf"));
    if let Ok(b) = std::fs::read(&file) {
        if b.len() > 5 {
            if let Ok(filter) = decode(&b[5..]) {
                let flags = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                let notify = b[4] != 0;
                let listener = s
                    .listener_path()
                    .as_ref()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| Listener {
                        path: p.clone(),
                        metadata: s.listener_metadata().clone().unwrap_or_default(),
                    });
                return Ok(Program {
                    filter,
                    flags,
                    notify,
                    listener,
                });
            }
        }
    }
    let p = compile(s)?;
    let mut b = p.flags.to_ne_bytes().to_vec();
    b.push(p.notify as u8);
    for i in &p.filter {
        b.extend_from_slice(&i.code.to_ne_bytes());
        b.push(i.jt);
        b.push(i.jf);
        b.extend_from_slice(&i.k.to_ne_bytes());
    }
    if atomicfile::private_dir(dir).is_ok() {
        let _ = atomicfile::write(&file, &b);
    }
    Ok(p)
}

impl Program {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.filter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filter.is_empty()
    }

    /// Loads the filter into this process (and, with TSYNC, its threads).
    /// Needs no_new_privs or CAP_SYS_ADMIN. Async-signal-safe enough for a
    /// forked child: one syscall on memory prepared in the parent. Returns the
    /// notify fd when a rule has SCMP_ACT_NOTIFY.
    pub fn load(&self) -> std::io::Result<Option<OwnedFd>> {
        let mut flags = self.flags;
        if self.notify {
            flags |= FLAG_NEW_LISTENER;
            // The kernel refuses TSYNC with NEW_LISTENER unless TSYNC_ESRCH says
            // how to report a thread it could not sync.
            if flags & FLAG_TSYNC != 0 {
                flags |= FLAG_TSYNC_ESRCH;
            }
        }
        let prog = libc::sock_fprog {
            len: self.filter.len() as u16,
            filter: self.filter.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prog points at the live filter (len checked on export) for
        // the call; the kernel copies it. nix has no seccomp wrapper.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                flags as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(self
            .notify
            // SAFETY: with NEW_LISTENER the return is a new fd nothing else owns.
            .then(|| unsafe { OwnedFd::from_raw_fd(r as libc::c_int) }))
    }
}

impl Listener {
    /// Connects to `listenerPath` (done before entering the container's mount
    /// namespace, where the path would not resolve).
    pub fn connect(&self) -> std::io::Result<UnixStream> {
        UnixStream::connect(&self.path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("seccomp listener {}: connect: {e}", self.path.display()),
            )
        })
    }
}

/// Sends the notify fd to the listener with SCM_RIGHTS, in one message with
/// the runtime-spec's containerProcessState JSON: `{"ociVersion","fds":
/// ["seccompFd"],"pid","metadata","state"}`; `state` is the container's OCI
/// state and `pid` the host pid of the process the filter is in.
pub fn send_to_listener(
    sock: &UnixStream,
    l: &Listener,
    fd: BorrowedFd,
    pid: i32,
    state: &Value,
) -> std::io::Result<()> {
    let msg = serde_json::json!({
        "ociVersion": "1.0.2",
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": l.metadata,
        "state": state,
    });
    let bytes = serde_json::to_vec(&msg).map_err(std::io::Error::other)?;
    let fds = [fd.as_raw_fd()];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
        nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| {
        std::io::Error::other(format!(
            "seccomp listener {}: send the notify fd: {e}",
            l.path.display()
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    fn err(v: Value) -> String {
        if let Err(e) = check_json(&v) {
            return e.to_string();
        }
        compile(&parse(v)).unwrap_err().to_string()
    }

    #[test]
    fn a_profile_compiles_to_bpf() {
        let p = compile(&parse(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                {"names": ["read", "write", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}
            ]
        })))
        .unwrap();
        assert!(p.len() > 10, "{p:?}");
        assert_eq!(p.flags, FLAG_LOG);
        assert!(!p.notify);
    }

    #[test]
    fn bad_input_names_the_field() {
        let base = |f: &dyn Fn(&mut Value)| {
            let mut v = serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]
            });
            f(&mut v);
            err(v)
        };
        type Patch = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Patch, &str)> = vec![
            (
                Box::new(|v| v["syscalls"][0]["action"] = "SCMP_ACT_FOO".into()),
                "linux.seccomp.syscalls[0].action: unknown action \"SCMP_ACT_FOO\"",
            ),
            (
                Box::new(|v| v["defaultAction"] = "ALLOW".into()),
                "linux.seccomp.defaultAction: unknown action",
            ),
            (
                Box::new(|v| v["syscalls"][0]["args"][0]["op"] = "SCMP_CMP_XX".into()),
                "linux.seccomp.syscalls[0].args[0].op: unknown operator",
            ),
            (
                Box::new(|v| {
                    v["architectures"] = serde_json::json!(["SCMP_ARCH_X86", "SCMP_ARCH_VAX"])
                }),
                "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_VAX\"",
            ),
            (
                Box::new(|v| v["flags"] = serde_json::json!(["SECCOMP_FILTER_FLAG_NOPE"])),
                "linux.seccomp.flags[0]: unknown flag",
            ),
            (
                Box::new(|v| v["syscalls"][0]["args"][0]["index"] = 6.into()),
                "linux.seccomp.syscalls[0].args[0].index: 6 is not a syscall argument",
            ),
            (
                Box::new(|v| v["syscalls"][0]["errnoRet"] = 70000.into()),
                "linux.seccomp.syscalls[0].errnoRet",
            ),
            (
                Box::new(|v| v["defaultAction"] = "SCMP_ACT_NOTIFY".into()),
                "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default",
            ),
            (
                Box::new(|v| v["syscalls"][0]["action"] = "SCMP_ACT_NOTIFY".into()),
                "linux.seccomp.listenerPath: required",
            ),
            (
                Box::new(|v| {
                    v["listenerPath"] = "/x".into();
                    v["syscalls"][0]["action"] = "SCMP_ACT_NOTIFY".into();
                    v["syscalls"][0]["names"] = serde_json::json!(["read", "write"]);
                }),
                "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY cannot be used for write",
            ),
            (
                Box::new(|v| v["syscalls"][0]["names"] = serde_json::json!([])),
                "linux.seccomp.syscalls[0].names: empty",
            ),
        ];
        for (f, want) in cases {
            let got = base(&*f);
            assert!(got.starts_with(want), "want {want:?}, got {got:?}");
        }
    }

    #[test]
    fn notify_with_a_listener_is_flagged() {
        let p = compile(&parse(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/l.sock",
            "listenerMetadata": "m",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        })))
        .unwrap();
        assert!(p.notify);
        let l = p.listener.unwrap();
        assert_eq!(l.path, PathBuf::from("/run/l.sock"));
        assert_eq!(l.metadata, "m");
    }

    #[test]
    fn a_rule_equal_to_the_default_is_skipped() {
        let plain = compile(&parse(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}),
        ))
        .unwrap();
        let same = compile(&parse(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"}]
        })))
        .unwrap();
        assert_eq!(plain.len(), same.len());
    }
}
