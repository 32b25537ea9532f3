//! nsrun: an OCI runtime. It runs the process described by an OCI runtime-spec
//! `config.json` in new (or joined) namespaces on a pivot_root'ed rootfs, with
//! a runc-style command line so that a supervisor (mydocker, and later podman
//! or containerd) can drive it.
//!
//! # CLI contract
//!
//! Global flags: `--root DIR` (env `NSRUN_ROOT`, default `/run/mydocker/nsrun`)
//! is the state dir; `--log FILE` appends every error there too, one entry a
//! line, `--log-format text|json` (json: `{"level","msg","time"}`, what
//! containerd's shim reads); `--version`; runc's `--debug` is accepted;
//! `--systemd-cgroup` takes a `slice:prefix:name` cgroupsPath and, there
//! being no systemd cgroup driver, maps it onto cgroupfs as crun does
//! without systemd (`a-b.slice:p:n` -> `/a.slice/a-b.slice/p-n.scope`, the
//! slice defaults to `system.slice`; refused on a host run by systemd).
//! The state dir holds one directory per container, `DIR/<id>/` with
//! `state.json` (id, pid, pidStartTime, bundle, rootfs, created, annotations),
//! `config.json` (a copy of the config, used by `exec`), `cgroup.json` (the
//! container's cgroup directories, written before they are made) and, while
//! the container is created but not started, the `exec.fifo` the init blocks on.
//! Container ids match `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
//!
//! - `create [--bundle DIR] [--config FILE|-] [--pid-file F] [--console-socket S] [--preserve-fds N] [--no-pivot] ID`:
//!   makes the container's cgroup (below), starts the init in it, blocked
//!   before exec, writes its host pid to `--pid-file`, exits; prints nothing
//!   (as runc: its stdout is the container's). As runc, args[0] is looked up
//!   in the container (its PATH, cwd and user) before create returns: a
//!   missing command fails create with exit 127 (`exec: "x": executable file
//!   not found in $PATH`), one that cannot be executed with 126. The init
//!   keeps create's stdin/stdout/stderr (unless `process.terminal`, then the
//!   pty slave; the master goes to `--console-socket` by SCM_RIGHTS) and is
//!   reparented to the caller's subreaper. `--no-pivot` (runc's, for ramfs
//!   roots pivot_root refuses): the host's full proc and sysfs mounts
//!   outside the rootfs are detached, the rootfs is MS_MOVEd onto `/` and
//!   chrooted into. A mount namespace given by `path` is joined as it is:
//!   no rootfs setup (no mounts, pivot_root, masked or read-only paths;
//!   sysctls are still written), the namespace is its maker's.
//! - `start ID`: releases a created init and returns once it has exec'd the
//!   command (or failed to: then the init exits 126/127, seen by its
//!   subreaper); prints nothing. Only from `created`.
//! - `state ID`: OCI state `{"ociVersion","id","status","pid","bundle","rootfs","created","annotations"}`,
//!   status computed live: `created`, `running`, `paused` (cgroup frozen) or
//!   `stopped` (pid 0 when stopped).
//! - `kill [--all] ID [SIGNAL]`: signal by name (`TERM`, `SIGTERM`) or number,
//!   default TERM, to the init (`--all`: every process of its cgroup, not of
//!   its pid namespace, which a pod may share); prints nothing. A stopped
//!   container is an error (exit 1), except with `--all`, which signals what
//!   is left in its cgroup, if anything, and succeeds.
//! - `delete [--force] ID`: removes the state; a created container is killed;
//!   a running one only with `--force` (SIGKILL, then waits for its death).
//!   The cgroup goes too, killing what is left in it (a paused container is
//!   thawed first). `delete --force` of an unknown id succeeds. Prints nothing.
//! - `run [create's flags] ID`: create + start + wait, nsrun stays the parent;
//!   forwards SIGINT/SIGTERM/SIGHUP/SIGWINCH; exits with the container's status;
//!   removes the state at the end.
//! - `exec [-t] [-d] [--process F] [--pid-file P] [-e K=V].. [--env-file F] [--cwd D] [--user U[:G]] [--cap C].. [--no-new-privs] [--ignore-paused] [--console-socket S] [--preserve-fds N] ID [--] CMD..`:
//!   runs CMD in every namespace and cgroup of the container, with the config's
//!   capabilities (plus `--cap`), rlimits and noNewPrivileges, env = the init's
//!   environ merged with `-e` (the config's env while the container is still
//!   `created`). `--process F` (runc's, what conmon and containerd's shim
//!   pass) gives the whole process as an OCI `process` object instead: its
//!   args, env, cwd, user, capabilities, rlimits and terminal as written.
//!   `--user` takes numbers or names from the container's /etc/passwd and
//!   /etc/group. A paused container is refused unless `--ignore-paused`.
//!   `-t` copies between nsrun's stdio and a pty (raw mode when stdin is a
//!   terminal); with `--console-socket` the master is sent there (`-t -d`
//!   needs it). `--pid-file` gets the host pid once the command has exec'd.
//!   `-d` prints nothing and returns then, leaving no waiter (as runc): the
//!   process is reparented to the caller's subreaper, which reaps it.
//! - `list`: JSON array of state objects.
//! - `ps [--format table|json] ID [PS-ARGS..]`: the processes of the
//!   container's cgroup: json = an array of host pids; table = `ps -ef` (or
//!   PS-ARGS) lines of those pids under ps's header.
//! - `pause ID` / `resume ID`: freeze / thaw the container's cgroup.
//! - `update [--resources F|-] [-m|--memory ..] [--memory-reservation ..]
//!   [--memory-swap ..] [--cpu-shares ..] [--cpu-quota ..] [--cpu-period ..]
//!   [--cpuset-cpus ..] [--cpuset-mems ..] [--pids-limit ..] [--blkio-weight ..] ID`:
//!   new `linux.resources` (the file's JSON, flags over it) for a live container.
//! - `features`: the OCI features document (namespaces, capabilities,
//!   cgroup, seccomp actions/operators/architectures, mount options).
//!
//! Exit codes: 0 ok; 1 the operation failed (`nsrun: <step>: <error>` on
//! stderr); 2 bad usage or bad config (malformed JSON, an unsupported field,
//! a missing rootfs, an `ociVersion` other than 1.x); `create` and `run`
//! 127/126 when the command is missing / not executable. `run` and `exec` exit with the container process's
//! status: its exit code, 128+N when killed by signal N, 127 when the command
//! is not found, 126 when it cannot be executed.
//! Hooks (hooks.rs), as the runtime-spec has them: prestart and
//! createRuntime run by create's parent once the init's mounts are made,
//! before pivot_root; createContainer by the init then, in the container's
//! namespaces; startContainer by the init after `start`, before exec;
//! poststart after `start`, poststop after the state is removed. Each gets
//! the state JSON on stdin and only its own env; a `timeout` kills it. A
//! failure of the first four fails create (or ends the init); of the last
//! two, it is a warning (the `--log` file, else stderr).
//! Also honoured: mount options `tmpcopyup` (tmpfs) and `rro`/`rrw`
//! (mount_setattr, Linux 5.12), a tmpfs taking the mode of the directory it
//! covers; `linux.rootfsPropagation` applied to `/` after pivot_root;
//! `process.ioPriority`, `process.scheduler`, `process.oomScoreAdj`,
//! `linux.personality` (domain only); hostname/domainname in a uts
//! namespace joined by path.
//! `linux.seccomp` is honoured whole, as runc does: defaultAction,
//! defaultErrnoRet, architectures, flags (TSYNC, LOG, SPEC_ALLOW), syscalls
//! with errnoRet and args; a syscall name unknown here is skipped. With an
//! SCMP_ACT_NOTIFY rule, `listenerPath` is required: the listener gets the
//! notify fd (SCM_RIGHTS) with the runtime-spec's containerProcessState JSON
//! (status `creating` for the init, the container's status for `exec`).
//! A bad profile is a config error (exit 2) naming the field.
//!
//! Cgroups through cgctl's library (the project's one cgroup implementation),
//! on v1, v2 and hybrid hosts: `linux.cgroupsPath` absolute = from each
//! hierarchy's mount point; relative = under nsrun's own cgroup (on pure v2,
//! under the nearest ancestor that can delegate); empty = `nsrun/<id>`. Every
//! `linux.resources` field this kernel has is applied (an unsupported knob is
//! an error naming it); device rules as runc: deny all, the config's rules,
//! the nodes of `linux.devices`, then the devices every container gets
//! (v1 devices.allow/deny, v2 a BPF device program). The init is in its
//! cgroup before it runs anything; `delete` removes the cgroup.
//!
//! # Design
//!
//! Process tree: `nsrun create` (P) clones the init (I) with `CLONE_NEW*` for
//! each namespace to create; namespaces given by `path` are joined by P
//! (setns) before the clone, so I is born in them (a pid namespace applies to
//! children only, which is why P joins it rather than I). A mount namespace
//! is the exception, since P's paths (state dir, cgroups, /proc, pid file)
//! must keep meaning the host's: I joins it itself, first thing; with a new
//! user namespace (where I would lack the capability to) P joins it for the
//! clone only and returns to its own namespace, root and cwd. No intermediate
//! process: I's parent is P, and when P exits I is reparented to the caller's
//! subreaper. P makes the cgroup before the clone; after it, P writes I's
//! uid/gid maps (a new user namespace), puts I in the cgroup, then tells I
//! to go on. A new cgroup namespace is not cloned but unshared by I after
//! that, so its root is the container's own cgroup.
//!
//! Sync (sync.rs): P and I share a SOCK_SEQPACKET socketpair carrying typed
//! messages; a message other than the one a step expects is an error naming
//! both. P sends `Go` (maps written, cgroup joined); I sends `Pty`+fd (pty
//! master, `run` only) and `SeccompFd`+fd, then `Ready` or `Failed(step)`
//! (I exits 1) or `NoCommand(127|126, why)` (args[0] not runnable). After
//! `Ready`, I opens the
//! `exec.fifo` for writing relative to an O_PATH fd of the state dir
//! opened before any namespace is joined, which blocks until `start` opens the read side;
//! I writes one byte and keeps the fd open (close-on-exec); `start` reads the
//! byte, then waits for EOF (I exec'd or died) and removes the fifo.
//!
//! A network namespace I was born with (not one joined by `path`) gets its
//! loopback up first, as docker's `--network none` has it.
//!
//! Rootfs setup in I, in order: `/` made `MS_REC|MS_PRIVATE` (nothing leaks to
//! the host); rootfs bind-mounted onto itself; config mounts, each target
//! resolved inside the rootfs with `openat2(RESOLVE_IN_ROOT)` (missing parts
//! created inside it) and mounted through `/proc/self/fd/N`; device nodes and
//! `/dev` links when `/dev` is a tmpfs; the prestart/createRuntime hooks
//! (a `Hooks` message: the parent runs them, then sends `Go` again) and
//! createContainer; `pivot_root(".", ".")` then the old root detached and
//! rootfsPropagation; masked paths, read-only paths, sysctls, read-only root; the
//! hostname; then the process: rlimits, session and terminal, user and groups,
//! capabilities, noNewPrivileges, cwd. I is non-dumpable until it execs, and
//! every fd above stdio (and `--preserve-fds`) is close-on-exec at exec.
//!
//! Seccomp: P validates and compiles `linux.seccomp` with libseccomp once,
//! before any side effect, into a BPF program; I (and `exec`'s X) load it
//! with a bare seccomp(2), no libseccomp after the fork. When, as runc: with
//! noNewPrivileges, as late as possible (right before execve), so a profile
//! need not allow nsrun's own setup syscalls; without it, loading needs
//! CAP_SYS_ADMIN, so before the user switch and capability drop. With a
//! NOTIFY rule under noNewPrivileges, before `R`, since the fd must reach
//! the listener: I sends `S`+fd on the sync socket (runc's
//! syncParentSeccomp) and P, connected to `listenerPath` before it joins
//! any namespace, passes it on; `exec`'s X sends it itself on a socket P
//! connected before entering the container (P tells X its host pid).
//!
//! `exec`: P opens /proc/PID/ns/*, /proc/PID/root and the cgroup.procs of
//! each of the init's cgroups that differs from its own, turns non-dumpable
//! (CVE-2019-5736: nothing inside can open /proc/P/exe), setns into each
//! namespace (user first, mount last), chroots into the container root, then
//! forks the process X. P writes X's pid into those cgroup.procs, then lets
//! X go (a pipe): X finalizes like I and execs with every other fd closed
//! (CVE-2024-21626) after checking its cwd is inside the container. X reports
//! an exec failure (126/127) or setup failure on a close-on-exec pipe; EOF
//! means the exec succeeded. P then waits for X (forwarding signals, copying
//! the pty). With `-d`, P writes the pid file (through a descriptor of its
//! directory opened before the chroot) and exits: X's new parent is the
//! caller's subreaper, which must reap it (a dying init waits until every
//! process of its pid namespace is reaped).

pub mod caps;
pub mod cgroup;
pub mod config;
pub mod container;
pub mod create;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod id;
pub mod init;
pub mod log;
pub mod manage;
pub mod process;
pub mod resolve;
pub mod rootfs;
pub mod sched;
pub mod seccomp;
pub mod signal;
pub mod state;
pub mod sync;
pub mod sys;
pub mod tty;

/// Any failure of an nsrun command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Id(#[from] id::IdError),
    #[error(transparent)]
    Signal(#[from] signal::SignalError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error(transparent)]
    Create(#[from] create::CreateError),
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    #[error(transparent)]
    Tty(#[from] tty::TtyError),
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
}

impl Error {
    /// 2 for bad input (id, signal, config), 127/126 for a command that is
    /// missing / not executable, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Id(_) | Error::Signal(_) | Error::Config(_) => 2,
            Error::Exec(exec::ExecError::Usage(_)) => 2,
            Error::Create(create::CreateError::NeedConsole) => 2,
            Error::Create(create::CreateError::NoCommand { code, .. }) => *code,
            _ => 1,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
