//! `create` (and the first half of `run`): validate, make the state dir and
//! exec fifo, join `path` namespaces, clone the init, relay its setup result,
//! record the state.

use crate::config::{self, Loaded};
use crate::process::Proc;
use crate::state::{Dir, Record};
use crate::sync::{Channel, Msg};
use crate::{cgroup, init, sys, tty};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{step} {path}: {err}")]
    Io {
        step: &'static str,
        path: PathBuf,
        err: String,
    },
    #[error("{step}: {err}")]
    Step { step: &'static str, err: String },
    #[error("container init: {0}")]
    Init(String),
    #[error("process.terminal is true: --console-socket is required")]
    NeedConsole,
    /// args[0] is missing (127) or not executable (126) in the container.
    #[error("container init: {msg}")]
    NoCommand { code: u8, msg: String },
}

pub struct Opts {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub config: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    /// `--systemd-cgroup`: cgroupsPath is `slice:prefix:name`.
    pub systemd_cgroup: bool,
    /// `run`: nsrun stays the parent and takes the pty master itself.
    pub run: bool,
    /// `--no-pivot`: MS_MOVE the rootfs onto `/` and chroot (ramfs roots).
    pub no_pivot: bool,
}

pub struct Created {
    pub pid: i32,
    pub dir: Dir,
    pub master: Option<OwnedFd>,
}

/// Undoes a half-made container: kills the init, reaps it, removes the dir.
struct Undo<'a> {
    dir: &'a Dir,
    pid: Option<i32>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            tty::kill_and_reap(pid);
        }
        let _ = cgroup::remove(self.dir);
        let _ = self.dir.remove();
    }
}

fn last_err(step: &'static str) -> CreateError {
    CreateError::Step {
        step,
        err: sys::errstr(&std::io::Error::last_os_error()),
    }
}

pub fn create(o: &Opts) -> crate::Result<Created> {
    crate::id::validate(&o.id)?;
    let Loaded {
        mut spec,
        raw,
        bundle,
        rootfs,
        seccomp,
    } = config::load(
        &o.bundle,
        o.config.as_deref(),
        Some(&o.root.join(crate::seccomp::CACHE_DIR)),
    )?;
    if o.systemd_cgroup {
        if let Some(l) = spec.linux_mut() {
            // Without a path, runc's default unit: system.slice:nsrun:<id>.
            let p = l
                .cgroups_path()
                .as_ref()
                .map(|p| p.to_string_lossy().to_string())
                .unwrap_or_else(|| format!(":nsrun:{}", o.id));
            l.set_cgroups_path(Some(cgroup::systemd_path(&p)?.into()));
        }
    }
    let cgroup = cgroup::plan(&spec, &o.id)?;
    let mut proc_ = Proc::from_spec(spec.process().as_ref().expect("validated")).map_err(|e| {
        config::ConfigError::Invalid {
            field: "process".into(),
            why: e.to_string(),
        }
    })?;
    proc_.seccomp = seccomp;
    // The execution domain is the container's, set by its init only.
    proc_.sched.persona = crate::sched::Sched::from_spec(
        spec.process().as_ref().expect("validated"),
        spec.linux().as_ref().and_then(|l| l.personality().as_ref()),
    )
    .ok()
    .and_then(|s| s.persona);
    if proc_.terminal && !o.run && o.console_socket.is_none() {
        return Err(CreateError::NeedConsole.into());
    }
    let console = match (&o.console_socket, proc_.terminal && !o.run) {
        (Some(p), true) => Some(UnixStream::connect(p).map_err(|e| CreateError::Io {
            step: "connect console socket",
            path: p.clone(),
            err: e.to_string(),
        })?),
        _ => None,
    };
    // Connected now, before joining a mount namespace by path changes what
    // the listener's path means.
    let listener = match proc_.seccomp.as_ref().and_then(|p| p.listener.as_ref()) {
        Some(l) => Some((
            l.clone(),
            l.connect().map_err(|e| CreateError::Step {
                step: "seccomp listener",
                err: e.to_string(),
            })?,
        )),
        None => None,
    };
    let ns = config::namespaces(&spec);
    // Open every namespace to join before anything is made.
    let mut joins = Vec::new();
    for (t, path) in &ns {
        if let Some(p) = path {
            let fd = sys::open(p, libc::O_RDONLY, 0).map_err(|e| CreateError::Io {
                step: "open namespace",
                path: p.clone(),
                err: sys::errstr(&e),
            })?;
            joins.push((*t, p.clone(), fd));
        }
    }
    // A mount namespace given by path is never nsrun's own for longer than
    // the clone: every path below (state dir, cgroups, /proc, pid file)
    // means the host's. Without a new user namespace the init joins it
    // itself (as runc's child does); with one, the init must be born in it
    // (it would have no capability over it once in its own user namespace),
    // so nsrun joins it around the clone only and comes back.
    let mnt_join = joins
        .iter()
        .position(|(t, _, _)| *t == LinuxNamespaceType::Mount)
        .map(|i| joins.remove(i));
    let new_userns = ns
        .iter()
        .any(|(t, p)| *t == LinuxNamespaceType::User && p.is_none());
    let home = match (&mnt_join, new_userns) {
        (Some(_), true) => Some(Home::open()?),
        _ => None,
    };

    let dir = Dir::new(&o.root, &o.id);
    dir.create()?;
    let mut undo = Undo {
        dir: &dir,
        pid: None,
        armed: true,
    };
    sys::write_replace(&dir.config_file(), &raw).map_err(|e| CreateError::Io {
        step: "write config copy",
        path: dir.config_file(),
        err: e.to_string(),
    })?;
    let fifo_path = dir.fifo();
    nix::sys::stat::umask(Mode::empty());
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622)).map_err(|e| {
        CreateError::Io {
            step: "mkfifo",
            path: fifo_path.clone(),
            err: e.to_string(),
        }
    })?;
    let fifo =
        sys::open(&dir.path, libc::O_PATH | libc::O_DIRECTORY, 0).map_err(|e| CreateError::Io {
            step: "open state dir",
            path: dir.path.clone(),
            err: sys::errstr(&e),
        })?;

    // The cgroup exists, with its limits and device rules, before the init.
    cgroup.make(&dir)?;
    let (parent_sock, child_sock) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| CreateError::Step {
        step: "socketpair",
        err: e.to_string(),
    })?;
    let parent = Channel::new(parent_sock);

    for (t, p, fd) in &joins {
        sys::setns(fd, config::ns_flag(*t)).map_err(|e| CreateError::Io {
            step: "setns",
            path: p.clone(),
            err: sys::errstr(&e),
        })?;
    }
    let mut flags: libc::c_int = 0;
    for (t, path) in &ns {
        if path.is_none() {
            flags |= config::ns_flag(*t);
        }
    }
    // A new cgroup namespace is made by the init itself once it is in its
    // cgroup, so that the cgroup is the namespace's root.
    let new_cgroupns = flags & libc::CLONE_NEWCGROUP != 0;
    flags &= !libc::CLONE_NEWCGROUP;
    let userns = flags & libc::CLONE_NEWUSER != 0;
    if o.run {
        tty::block_forwarded();
    }
    let hook_state = serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "id": o.id,
        "status": "creating",
        "pid": 0,
        "bundle": bundle,
        "annotations": spec.annotations().clone().unwrap_or_default(),
    });
    let _ = std::io::Write::flush(&mut std::io::stdout());
    if let (Some((_, p, fd)), Some(_)) = (&mnt_join, &home) {
        sys::setns(fd, libc::CLONE_NEWNS).map_err(|e| CreateError::Io {
            step: "setns",
            path: p.clone(),
            err: sys::errstr(&e),
        })?;
    }
    // A fork-like clone (no new stack): the child continues here with a copy
    // of this (single-threaded) process. nix's clone needs a new stack.
    // SAFETY: without CLONE_VM or a stack the child gets its own copy of
    // memory, as after fork; nsrun is single-threaded, so no lock is held
    // by a thread that would not exist in the child, and init::run never
    // returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    let clone_err = (pid < 0).then(|| last_err("clone"));
    if pid != 0 {
        if let Some(h) = &home {
            h.back()?;
        }
    }
    if let Some(e) = clone_err {
        return Err(e.into());
    }
    if pid == 0 {
        drop(parent);
        init::run(init::Ctx {
            spec: &spec,
            rootfs,
            proc_,
            sync: Channel::new(child_sock),
            new_cgroupns,
            fifo: fifo.as_raw_fd(),
            console: console.as_ref().map(|c| c.as_raw_fd()),
            master_to_parent: o.run,
            userns,
            preserve_fds: o.preserve_fds,
            hook_state: hook_state.clone(),
            join_mnt: match (&mnt_join, &home) {
                (Some((_, _, fd)), None) => Some(fd.as_raw_fd()),
                _ => None,
            },
            mount_joined: mnt_join.is_some(),
            no_pivot: o.no_pivot,
        });
    }
    let pid = pid as i32;
    undo.pid = Some(pid);
    drop(child_sock);
    drop(mnt_join);
    drop(fifo);
    drop(console);
    if userns {
        write_id_maps(pid, &spec)?;
    }
    // In its cgroup before it does anything (its children are born there).
    cgroup
        .cgroup
        .add_pid(pid)
        .map_err(cgroup::CgroupError::from)?;
    parent.send(&Msg::Go)?;
    let mut master = None;
    loop {
        match parent.recv("ready") {
            Ok(Msg::Pty(fd)) => master = Some(fd),
            Ok(Msg::SeccompFd(fd)) => {
                to_listener(listener.as_ref(), fd, pid, &o.id, &bundle, &spec)?
            }
            Ok(Msg::Ready) => break,
            Ok(Msg::Hooks) => {
                let mut st = hook_state.clone();
                st["pid"] = pid.into();
                for stage in [
                    crate::hooks::Stage::Prestart,
                    crate::hooks::Stage::CreateRuntime,
                ] {
                    crate::hooks::run(&spec, stage, &st)
                        .map_err(|err| CreateError::Step { step: "hooks", err })?;
                }
                parent.send(&Msg::Go)?;
            }
            Ok(Msg::Failed(msg)) => return Err(CreateError::Init(msg).into()),
            Ok(Msg::NoCommand(code, msg)) => {
                return Err(CreateError::NoCommand { code, msg }.into())
            }
            Ok(other) => {
                return Err(crate::sync::SyncError::Unexpected {
                    expected: "ready",
                    got: other.name().into(),
                }
                .into())
            }
            Err(crate::sync::SyncError::Closed { .. }) => {
                let status = tty::reap(pid);
                undo.pid = None;
                return Err(
                    CreateError::Init(format!("died during setup (status {status})")).into(),
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    let start = ctrstate::pid_start_time(pid as u32)
        .ok_or_else(|| CreateError::Init("exited during setup".into()))?;
    let record = Record {
        id: o.id.clone(),
        pid,
        pid_start_time: start,
        bundle,
        rootfs: dir_path(&spec, &o.bundle),
        created: ctrstate::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
    };
    dir.save(&record)?;
    if let Some(pf) = &o.pid_file {
        sys::write_replace(pf, pid.to_string().as_bytes()).map_err(|e| CreateError::Io {
            step: "write pid file",
            path: pf.clone(),
            err: e.to_string(),
        })?;
    }
    undo.armed = false;
    drop(undo);
    Ok(Created { pid, dir, master })
}

/// nsrun's own mount namespace, root and cwd, to come back to after
/// joining a mount namespace for the clone only.
struct Home {
    mnt: OwnedFd,
    root: OwnedFd,
    cwd: OwnedFd,
}

impl Home {
    fn open() -> Result<Home, CreateError> {
        let open = |p: &str, flags| {
            sys::open(Path::new(p), flags, 0).map_err(|e| CreateError::Io {
                step: "open",
                path: p.into(),
                err: sys::errstr(&e),
            })
        };
        Ok(Home {
            mnt: open("/proc/self/ns/mnt", libc::O_RDONLY)?,
            root: open("/", libc::O_RDONLY | libc::O_DIRECTORY)?,
            cwd: open(".", libc::O_RDONLY | libc::O_DIRECTORY)?,
        })
    }

    /// setns resets root and cwd to the namespace's: restore both.
    fn back(&self) -> Result<(), CreateError> {
        sys::setns(&self.mnt, libc::CLONE_NEWNS)
            .map_err(|e| e.to_string())
            .and_then(|()| nix::unistd::fchdir(&self.root).map_err(|e| e.to_string()))
            .and_then(|()| nix::unistd::chroot(".").map_err(|e| e.to_string()))
            .and_then(|()| nix::unistd::fchdir(&self.cwd).map_err(|e| e.to_string()))
            .map_err(|err| CreateError::Step {
                step: "return to nsrun's mount namespace",
                err,
            })
    }
}

/// Hands the init's seccomp notify fd to `listenerPath` (runc's
/// syncParentSeccomp): the container is `creating` until the init is ready.
fn to_listener(
    listener: Option<&(crate::seccomp::Listener, UnixStream)>,
    fd: OwnedFd,
    pid: i32,
    id: &str,
    bundle: &Path,
    spec: &oci_spec::runtime::Spec,
) -> Result<(), CreateError> {
    let (l, sock) =
        listener.ok_or_else(|| CreateError::Init("sent a seccomp fd without a listener".into()))?;
    let state = serde_json::json!({
        "ociVersion": spec.version(),
        "id": id,
        "status": "creating",
        "pid": pid,
        "bundle": bundle,
        "annotations": spec.annotations().clone().unwrap_or_default(),
    });
    crate::seccomp::send_to_listener(sock, l, fd.as_fd(), pid, &state).map_err(|e| {
        CreateError::Step {
            step: "seccomp listener",
            err: e.to_string(),
        }
    })
}

fn dir_path(spec: &oci_spec::runtime::Spec, bundle: &Path) -> PathBuf {
    let b = std::path::absolute(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    spec.root().as_ref().map(|r| b.join(r.path())).unwrap_or(b)
}

fn write_id_maps(pid: i32, spec: &oci_spec::runtime::Spec) -> Result<(), CreateError> {
    let linux = spec.linux().as_ref().expect("validated");
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let text: String = maps
            .iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, text).map_err(|e| CreateError::Io {
            step: "write id map",
            path,
            err: e.to_string(),
        })?;
    }
    Ok(())
}
