//! The container process: rlimits, user and groups, capabilities,
//! noNewPrivileges, cwd, and the final exec with docker's exit codes
//! (127 not found, 126 not executable).

use crate::caps::{self, CapSets};
use crate::seccomp::Program;
use crate::sys;
use nix::errno::Errno;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{step}: {err}")]
    Step { step: String, err: String },
    #[error(transparent)]
    Caps(#[from] caps::CapsError),
}

fn fail(step: impl Into<String>) -> impl FnOnce(Errno) -> ProcessError {
    let step = step.into();
    move |e| ProcessError::Step {
        step,
        err: e.to_string(),
    }
}

/// One rlimit: resource number, name, soft, hard.
#[derive(Debug, Clone)]
pub struct Rlimit {
    pub resource: libc::c_int,
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Everything needed to finish and exec a container process.
#[derive(Debug, Clone)]
pub struct Proc {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub umask: Option<u32>,
    pub caps: CapSets,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privs: bool,
    pub oom_score_adj: Option<i32>,
    pub terminal: bool,
    /// The compiled `linux.seccomp` (set by the caller: it is in `linux`).
    pub seccomp: Option<Program>,
    /// ioPriority and scheduler (and, set by the caller for the init,
    /// `linux.personality`).
    pub sched: crate::sched::Sched,
}

/// When the process loads its seccomp filter. As runc: as late as possible,
/// so the filter need not allow nsrun's own setup syscalls; but loading
/// needs no_new_privs or CAP_SYS_ADMIN, so without noNewPrivileges it must
/// happen before the user switch and capability drop take CAP_SYS_ADMIN away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompAt {
    /// No noNewPrivileges: before `switch_user`.
    BeforeUserSwitch,
    /// noNewPrivileges and a notify fd to hand over: before reporting ready
    /// (the sync socket to the parent closes then).
    BeforeReady,
    /// noNewPrivileges: right before execve.
    BeforeExec,
}

const RLIMITS: [(&str, libc::c_int); 16] = [
    ("RLIMIT_CPU", 0),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_AS", 9),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_RTTIME", 15),
];

/// The resource number and name of a config rlimit type.
pub fn rlimit_resource(t: PosixRlimitType) -> Result<(libc::c_int, String), String> {
    let name = serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    RLIMITS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, r)| (*r, n.to_string()))
        .ok_or_else(|| format!("unknown rlimit {name:?}"))
}

impl Proc {
    pub fn from_spec(p: &Process) -> Result<Proc, ProcessError> {
        let mut rlimits = Vec::new();
        for r in p.rlimits().iter().flatten() {
            let (resource, name) = rlimit_resource(r.typ()).map_err(|err| ProcessError::Step {
                step: "rlimits".into(),
                err,
            })?;
            rlimits.push(Rlimit {
                resource,
                name,
                soft: r.soft(),
                hard: r.hard(),
            });
        }
        Ok(Proc {
            args: p.args().clone().unwrap_or_default(),
            env: p.env().clone().unwrap_or_default(),
            cwd: p.cwd().clone(),
            uid: p.user().uid(),
            gid: p.user().gid(),
            groups: p.user().additional_gids().clone().unwrap_or_default(),
            umask: p.user().umask(),
            caps: CapSets::from_spec(p.capabilities().as_ref())?,
            rlimits,
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            oom_score_adj: p.oom_score_adj(),
            terminal: p.terminal().unwrap_or(false),
            seccomp: None,
            sched: crate::sched::Sched::from_spec(p, None).map_err(|(field, err)| {
                ProcessError::Step {
                    step: field.into(),
                    err,
                }
            })?,
        })
    }

    /// When this process's filter is loaded (None: no filter).
    pub fn seccomp_at(&self) -> Option<SeccompAt> {
        let p = self.seccomp.as_ref()?;
        Some(match (self.no_new_privs, p.notify) {
            (false, _) => SeccompAt::BeforeUserSwitch,
            (true, true) => SeccompAt::BeforeReady,
            (true, false) => SeccompAt::BeforeExec,
        })
    }

    /// Loads the seccomp filter if `at` is its moment; returns the notify fd
    /// if it has one (the caller hands it to the listener, then closes it).
    pub fn load_seccomp(&self, at: SeccompAt) -> Result<Option<OwnedFd>, ProcessError> {
        match (&self.seccomp, self.seccomp_at()) {
            (Some(p), Some(when)) if when == at => p.load().map_err(|e| ProcessError::Step {
                step: "load seccomp filter".into(),
                err: sys::errstr(&e),
            }),
            _ => Ok(None),
        }
    }

    /// rlimits and the OOM score; lowering works, raising a hard limit needs
    /// CAP_SYS_RESOURCE, which this says.
    pub fn set_limits(&self) -> Result<(), ProcessError> {
        self.sched.apply().map_err(|err| ProcessError::Step {
            step: "scheduling".into(),
            err,
        })?;
        if let Some(adj) = self.oom_score_adj {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
                ProcessError::Step {
                    step: "write /proc/self/oom_score_adj".into(),
                    err: e.to_string(),
                }
            })?;
        }
        for r in &self.rlimits {
            let lim = libc::rlimit {
                rlim_cur: r.soft,
                rlim_max: r.hard,
            };
            // SAFETY: setrlimit reads the live rlimit; nix's wrapper takes
            // its own enum, not the resource number the config names.
            if unsafe { libc::setrlimit(r.resource as _, &lim) } != 0 {
                let e = std::io::Error::last_os_error();
                let mut old = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                // SAFETY: getrlimit writes one rlimit to the live local.
                unsafe { libc::getrlimit(r.resource as _, &mut old) };
                let why = if e.raw_os_error() == Some(libc::EPERM) && r.hard > old.rlim_max {
                    format!(
                        "{}: raising the hard limit from {} to {} needs CAP_SYS_RESOURCE",
                        sys::errstr(&e),
                        old.rlim_max,
                        r.hard
                    )
                } else {
                    sys::errstr(&e)
                };
                return Err(ProcessError::Step {
                    step: format!("setrlimit {} soft={} hard={}", r.name, r.soft, r.hard),
                    err: why,
                });
            }
        }
        Ok(())
    }

    /// Bounding set, then groups/gid/uid (keeping caps across the switch),
    /// then the other capability sets and noNewPrivileges.
    pub fn switch_user(&self) -> Result<(), ProcessError> {
        caps::drop_bounding(self.caps.bounding)?;
        nix::sys::prctl::set_keepcaps(true).map_err(fail("PR_SET_KEEPCAPS"))?;
        let groups: Vec<Gid> = self.groups.iter().map(|&g| Gid::from_raw(g)).collect();
        match nix::unistd::setgroups(&groups) {
            // In a user namespace with setgroups denied, no extra groups is fine.
            Err(Errno::EPERM) if groups.is_empty() => {}
            r => r.map_err(fail(format!("setgroups {:?}", self.groups)))?,
        }
        let (gid, uid) = (Gid::from_raw(self.gid), Uid::from_raw(self.uid));
        nix::unistd::setresgid(gid, gid, gid).map_err(fail(format!("setresgid {gid}")))?;
        nix::unistd::setresuid(uid, uid, uid).map_err(fail(format!("setresuid {uid}")))?;
        let _ = nix::sys::prctl::set_keepcaps(false);
        caps::apply(&self.caps)?;
        if self.no_new_privs {
            nix::sys::prctl::set_no_new_privs().map_err(fail("PR_SET_NO_NEW_PRIVS"))?;
        }
        Ok(())
    }

    /// chdir to the cwd and check it is reachable from the container root
    /// (CVE-2024-21626: a cwd left outside the root reads "(unreachable)").
    pub fn enter_cwd(&self) -> Result<(), ProcessError> {
        std::env::set_current_dir(&self.cwd).map_err(|e| ProcessError::Step {
            step: format!("chdir to cwd {}", self.cwd.display()),
            err: sys::errstr(&e),
        })?;
        // glibc fails with ENOENT where the kernel says "(unreachable)".
        if !nix::unistd::getcwd().is_ok_and(|p| p.is_absolute()) {
            return Err(ProcessError::Step {
                step: "check cwd".into(),
                err: "current directory is outside the container root".into(),
            });
        }
        Ok(())
    }

    /// The PATH of the process's own env (not nsrun's).
    fn path_var(&self) -> String {
        self.env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .to_string()
    }

    /// Checks that args[0] exists and is executable, as the process (after
    /// its cwd and user): runc's LookPath before `create` returns. Errors
    /// are (127, not found) or (126, not executable), with runc's wording.
    pub fn lookup(&self) -> Result<(), (u8, String)> {
        use nix::unistd::{access, AccessFlags};
        let cmd = &self.args[0];
        let runnable = |p: &Path| -> Result<(), Errno> {
            let md = std::fs::metadata(p)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
            if md.is_dir() {
                return Err(Errno::EISDIR);
            }
            access(p, AccessFlags::X_OK)
        };
        if cmd.contains('/') {
            return runnable(Path::new(cmd)).map_err(|e| match e {
                Errno::ENOENT | Errno::ENOTDIR => (
                    127,
                    format!("exec: {cmd:?}: stat {cmd}: no such file or directory"),
                ),
                Errno::EISDIR => (126, format!("exec: {cmd:?}: is a directory")),
                e => (126, format!("exec: {cmd:?}: {}", e.desc().to_lowercase())),
            });
        }
        let found = self
            .path_var()
            .split(':')
            .any(|d| runnable(&Path::new(if d.is_empty() { "." } else { d }).join(cmd)).is_ok());
        if found {
            Ok(())
        } else {
            Err((
                127,
                format!("exec: {cmd:?}: executable file not found in $PATH"),
            ))
        }
    }

    /// Execs args[0] (searched in the env's PATH), loading the seccomp filter
    /// first if its moment is `BeforeExec`. Only returns on failure: the exit
    /// code to use (127 not found, 126 cannot execute, 1 the filter could not
    /// be loaded) and a message.
    pub fn exec(&self) -> (u8, String) {
        let m = self.umask.map_or(0o022, |m| m as libc::mode_t);
        nix::sys::stat::umask(Mode::from_bits_truncate(m));
        let cmd = &self.args[0];
        let to_c = |s: &String| CString::new(s.as_bytes()).ok();
        let (Some(argv), Some(envp)) = (
            self.args.iter().map(to_c).collect::<Option<Vec<_>>>(),
            self.env.iter().map(to_c).collect::<Option<Vec<_>>>(),
        ) else {
            return (126, format!("exec {cmd:?}: argument or env contains NUL"));
        };
        if let Err(e) = self.load_seccomp(SeccompAt::BeforeExec) {
            return (1, e.to_string());
        }
        let candidates: Vec<PathBuf> = if cmd.contains('/') {
            vec![PathBuf::from(cmd)]
        } else {
            self.path_var()
                .split(':')
                .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(cmd))
                .collect()
        };
        let mut first_err: Option<std::io::Error> = None;
        for c in candidates {
            let Ok(cp) = sys::cpath(&c) else { continue };
            let Err(e) = nix::unistd::execve(&cp, &argv, &envp);
            let e = std::io::Error::from(e);
            let notfound = matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR));
            if !notfound && first_err.is_none() {
                first_err = Some(e);
            }
        }
        match first_err {
            // EACCES, ENOEXEC, EISDIR, EPERM...: found but not executable.
            Some(e) => {
                let msg = if e.raw_os_error() == Some(libc::EACCES) && Path::new(cmd).is_dir() {
                    "Is a directory".to_string()
                } else {
                    e.to_string()
                        .split(" (os error")
                        .next()
                        .unwrap_or_default()
                        .to_string()
                };
                (126, format!("exec {cmd:?}: {msg}"))
            }
            None => (127, format!("exec {cmd:?}: No such file or directory")),
        }
    }
}

/// Resets what the process must not inherit from nsrun: the blocked signal
/// mask (run/exec block signals to forward them) and Rust's ignored SIGPIPE.
pub fn reset_signals() {
    use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: SIG_DFL installs no handler of ours, so nothing can run in
    // signal context.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
