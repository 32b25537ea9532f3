//! `exec`: run a command in a running container's namespaces and cgroups,
//! with the config's capabilities, rlimits and noNewPrivileges.

use crate::process::{self, Proc, SeccompAt};
use crate::state::{Dir, Status};
use crate::{config, sys, tty};
use nix::unistd::{fork, ForkResult};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{0}")]
    Usage(String),
    #[error("container {id:?} is {status}: cannot exec")]
    NotRunning { id: String, status: &'static str },
    #[error("{step} {path}: {err}")]
    Io {
        step: &'static str,
        path: PathBuf,
        err: String,
    },
    #[error("{0}")]
    Setup(String),
}

pub struct Opts {
    pub root: PathBuf,
    pub id: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<String>,
    pub tty: bool,
    pub detach: bool,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    /// runc's `--process F`: the whole process (an OCI `process` object);
    /// `args`, `env`, `cwd`, `user` and `-t` are then ignored but a
    /// terminal the file asks for.
    pub process: Option<PathBuf>,
    /// Where the host pid of the process goes once it has exec'd.
    pub pid_file: Option<PathBuf>,
    /// `--cap`: added to the bounding, effective and permitted sets (and
    /// ambient when inheritable has it), as runc.
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    /// Exec into a paused (frozen) container; without it that is an error.
    pub ignore_paused: bool,
}

pub enum Outcome {
    Detached(i32),
    Exited(i32),
}

fn io(step: &'static str, path: &Path, e: std::io::Error) -> ExecError {
    ExecError::Io {
        step,
        path: path.to_path_buf(),
        err: sys::errstr(&e),
    }
}

/// Namespaces in setns order: user first (it owns the others), mount last.
const NS: [(&str, libc::c_int); 7] = [
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

/// Merges `-e` entries over the init's env (`K` alone takes nsrun's own K).
pub fn merge_env(base: Vec<String>, extra: &[String]) -> Vec<String> {
    let mut env = base;
    for e in extra {
        let kv = if e.contains('=') {
            e.clone()
        } else {
            match std::env::var(e) {
                Ok(v) => format!("{e}={v}"),
                Err(_) => continue,
            }
        };
        let key = kv.split('=').next().unwrap_or_default().to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    env
}

/// `--env-file`: K=V lines; blank lines and `#` comments skipped.
pub fn read_env_file(path: &Path) -> Result<Vec<String>, ExecError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ExecError::Usage(format!("--env-file {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// The v1/v2 mount point of each cgroup hierarchy line of /proc/PID/cgroup.
fn cgroup_moves(pid: i32) -> Result<Vec<PathBuf>, ExecError> {
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| io("read cgroups", Path::new("/proc/PID/cgroup"), e))?;
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mounts = mountinfo::own().unwrap_or_default();
    let mut out = Vec::new();
    for line in theirs.lines() {
        if ours.lines().any(|l| l == line) {
            continue; // already there
        }
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let want: Vec<&str> = ctrls.split(',').filter(|c| !c.is_empty()).collect();
        let hit = |m: &&mountinfo::Mount| {
            let fs = if want.is_empty() {
                m.fs_type == "cgroup2"
            } else {
                m.fs_type == "cgroup" && want.iter().all(|c| m.has_super_option(c))
            };
            // Only a mount of the hierarchy's root maps paths one to one.
            fs && m.root == Path::new("/")
        };
        if let Some(m) = mounts.iter().find(hit) {
            out.push(
                m.mount_point
                    .join(path.trim_start_matches('/'))
                    .join("cgroup.procs"),
            );
        }
    }
    Ok(out)
}

/// uid/gid (and groups) of `--user U[:G]`, names looked up in the
/// container's /etc/passwd and /etc/group (call after chroot).
pub fn parse_user(spec: &str) -> Result<(u32, u32), ExecError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let find = |name: Option<&str>, uid: Option<u32>| -> Option<(u32, u32)> {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let (lu, lg) = (f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?);
            ((name.is_some() && name == f.first().copied()) || uid == Some(lu)).then_some((lu, lg))
        })
    };
    let (uid, pw_gid) = match u.parse::<u32>() {
        Ok(n) => (n, find(None, Some(n)).map(|x| x.1).unwrap_or(0)),
        Err(_) => find(Some(u), None).ok_or_else(|| {
            ExecError::Usage(format!(
                "--user {spec}: no user {u:?} in the container's /etc/passwd"
            ))
        })?,
    };
    let gid = match g {
        None => pw_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => std::fs::read_to_string("/etc/group")
                .unwrap_or_default()
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.first() == Some(&g))
                        .then(|| f.get(2).and_then(|x| x.parse().ok()))
                        .flatten()
                })
                .ok_or_else(|| {
                    ExecError::Usage(format!(
                        "--user {spec}: no group {g:?} in the container's /etc/group"
                    ))
                })?,
        },
    };
    Ok((uid, gid))
}

/// The `--process` file: an OCI process object, checked like the config's.
fn read_process(path: &Path) -> Result<oci_spec::runtime::Process, ExecError> {
    let bad = |why: String| ExecError::Usage(format!("--process {}: {why}", path.display()));
    let raw = std::fs::read(path).map_err(|e| bad(sys::errstr(&e)))?;
    let p: oci_spec::runtime::Process =
        serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))?;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(bad("args: empty".into()));
    }
    if !p.cwd().is_absolute() {
        return Err(bad(format!("cwd {}: not absolute", p.cwd().display())));
    }
    Ok(p)
}

/// A pid file written through a descriptor of its directory, opened before
/// nsrun enters the container (its path is the host's, out of reach then).
struct PidFile {
    dir: OwnedFd,
    name: std::ffi::OsString,
    path: PathBuf,
}

impl PidFile {
    fn open(path: &Path) -> Result<PidFile, ExecError> {
        let parent = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| {
                ExecError::Usage(format!("--pid-file {}: no file name", path.display()))
            })?
            .to_os_string();
        let dir = sys::open(parent, libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| io("open pid file directory", parent, e))?;
        Ok(PidFile {
            dir,
            name,
            path: path.to_path_buf(),
        })
    }

    /// Write then rename, so a reader never sees a partial pid.
    fn write(&self, pid: i32) -> Result<(), ExecError> {
        use nix::fcntl::{openat, renameat, OFlag};
        use nix::sys::stat::Mode;
        let mut tmp = std::ffi::OsString::from(".");
        tmp.push(&self.name);
        tmp.push(format!(".{}.tmp", std::process::id()));
        let fail = |e: nix::Error| io("write pid file", &self.path, e.into());
        let fd = openat(
            &self.dir,
            tmp.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(fail)?;
        nix::unistd::write(&fd, pid.to_string().as_bytes()).map_err(fail)?;
        drop(fd);
        renameat(&self.dir, tmp.as_os_str(), &self.dir, self.name.as_os_str()).map_err(fail)
    }
}

pub fn exec(o: &Opts) -> crate::Result<Outcome> {
    crate::id::validate(&o.id)?;
    let from_file = o.process.as_deref().map(read_process).transpose()?;
    if from_file.is_none() && o.args.is_empty() {
        return Err(
            ExecError::Usage("exec: no command given (nsrun exec ID -- CMD...)".into()).into(),
        );
    }
    let tty = o.tty
        || from_file
            .as_ref()
            .is_some_and(|p| p.terminal().unwrap_or(false));
    if o.console_socket.is_some() && !tty {
        return Err(ExecError::Usage("exec: --console-socket needs -t".into()).into());
    }
    if tty && o.detach && o.console_socket.is_none() {
        return Err(ExecError::Usage(
            "exec: -t with -d needs --console-socket (nothing would hold the terminal)".into(),
        )
        .into());
    }
    let pid_file = o.pid_file.as_deref().map(PidFile::open).transpose()?;
    let dir = Dir::new(&o.root, &o.id);
    let rec = dir.load()?;
    let created = match dir.status(&rec) {
        Status::Stopped => {
            return Err(ExecError::NotRunning {
                id: o.id.clone(),
                status: "stopped",
            }
            .into())
        }
        Status::Creating => {
            return Err(ExecError::NotRunning {
                id: o.id.clone(),
                status: "creating",
            }
            .into())
        }
        Status::Paused if !o.ignore_paused => {
            return Err(ExecError::NotRunning {
                id: o.id.clone(),
                status: "paused (--ignore-paused to exec anyway)",
            }
            .into())
        }
        s => s == Status::Created,
    };
    let raw = std::fs::read(dir.config_file())
        .map_err(|e| io("read config copy", &dir.config_file(), e))?;
    let spec = config::parse(&raw)?;
    let base_process = match &from_file {
        Some(p) => p,
        None => spec
            .process()
            .as_ref()
            .ok_or_else(|| ExecError::Setup("config has no process".into()))?,
    };
    let mut proc_ = Proc::from_spec(base_process).map_err(|e| match &o.process {
        Some(f) => ExecError::Usage(format!("--process {}: {e}", f.display())),
        None => ExecError::Setup(e.to_string()),
    })?;
    // The same filter as the init's, from the config copy.
    proc_.seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(|s| crate::seccomp::compile_cached(s, Some(&o.root.join(crate::seccomp::CACHE_DIR))))
        .transpose()
        .map_err(|e| ExecError::Setup(format!("config: {e}")))?;
    proc_.terminal = tty;
    proc_.no_new_privs |= o.no_new_privs;
    for c in &o.caps {
        let bit =
            1u64 << crate::caps::number(c).map_err(|e| ExecError::Usage(format!("--cap: {e}")))?;
        proc_.caps.bounding |= bit;
        proc_.caps.effective |= bit;
        proc_.caps.permitted |= bit;
        if proc_.caps.inheritable & bit != 0 {
            proc_.caps.ambient |= bit;
        }
    }
    if from_file.is_some() {
        // The engine's process object is whole: env, cwd and user as given.
        return enter(o, &dir, &rec, proc_, pid_file.as_ref());
    }
    let pid = rec.pid;
    // A created init still runs nsrun: its environ is not the container's yet.
    let base: Vec<String> = if created {
        proc_.env.clone()
    } else {
        let environ = std::fs::read(format!("/proc/{pid}/environ"))
            .map_err(|e| io("read environ", Path::new("/proc/PID/environ"), e))?;
        environ
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).to_string())
            .collect()
    };
    proc_.env = merge_env(base, &o.env);
    proc_.args = o.args.clone();
    if let Some(c) = &o.cwd {
        if !c.is_absolute() {
            return Err(ExecError::Usage(format!("--cwd {}: not absolute", c.display())).into());
        }
        proc_.cwd = c.clone();
    }
    enter(o, &dir, &rec, proc_, pid_file.as_ref())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ExecError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ExecError::Setup(format!("pipe: {e}")))
}

/// Enters the container and runs the process: everything with side effects.
/// With `-d`, nsrun returns once the process has exec'd and leaves no waiter
/// (as runc): the process is nsrun's child until nsrun exits, then the
/// caller's subreaper's (conmon, containerd's shim), which reaps it and sees
/// its exit status. Without `-d`, nsrun waits and exits with that status.
fn enter(
    o: &Opts,
    dir: &Dir,
    rec: &crate::state::Record,
    mut proc_: Proc,
    pid_file: Option<&PidFile>,
) -> crate::Result<Outcome> {
    let pid = rec.pid;
    let console = match &o.console_socket {
        Some(p) => Some(UnixStream::connect(p).map_err(|e| io("connect console socket", p, e))?),
        None => None,
    };
    // The seccomp listener too: its path is the host's. The child sends it
    // the notify fd itself, with the container's state.
    let listener = match proc_.seccomp.as_ref().and_then(|p| p.listener.as_ref()) {
        Some(l) => {
            let sock = l.connect().map_err(|e| ExecError::Setup(e.to_string()))?;
            let state = serde_json::to_value(dir.oci_state(rec)).unwrap_or_default();
            Some(Notify {
                listener: l.clone(),
                sock,
                state,
            })
        }
        None => None,
    };
    let mut ns_fds = Vec::new();
    for (name, flag) in NS {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let a = std::fs::read_link(&theirs).ok();
        let b = std::fs::read_link(format!("/proc/self/ns/{name}")).ok();
        if a.is_none() || a == b {
            continue;
        }
        let fd = sys::open(Path::new(&theirs), libc::O_RDONLY, 0)
            .map_err(|e| io("open namespace", Path::new(&theirs), e))?;
        ns_fds.push((name, flag, fd));
    }
    let root_path = PathBuf::from(format!("/proc/{pid}/root"));
    let rootfd = sys::open(&root_path, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(|e| io("open container root", &root_path, e))?;
    // The pid must still be the container's init now that its files are open.
    if dir.status(rec) == Status::Stopped {
        return Err(ExecError::NotRunning {
            id: o.id.clone(),
            status: "stopped",
        }
        .into());
    }
    // Opened now: the host's cgroupfs is out of reach once in the mount ns.
    // The process is moved in before it runs anything; nsrun itself stays out.
    let mut cg_files = Vec::new();
    for procs in cgroup_moves(pid)? {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&procs)
            .map_err(|e| io("open cgroup", &procs, e))?;
        cg_files.push((procs, f));
    }
    // CVE-2019-5736: from here on nothing inside may open /proc/<us>/exe.
    let _ = nix::sys::prctl::set_dumpable(false);
    for (name, flag, fd) in &ns_fds {
        sys::setns(fd, *flag)
            .map_err(|e| io("setns", Path::new(&format!("/proc/{pid}/ns/{name}")), e))?;
    }
    drop(ns_fds);
    if let Err(e) = nix::unistd::fchdir(&rootfd).and_then(|()| nix::unistd::chroot(".")) {
        return Err(io("chroot into container root", &root_path, e.into()).into());
    }
    drop(rootfd);
    std::env::set_current_dir("/").map_err(|e| io("chdir", Path::new("/"), e))?;
    if let Some(u) = o.user.as_ref().filter(|_| o.process.is_none()) {
        let (uid, gid) = parse_user(u)?;
        proc_.uid = uid;
        proc_.gid = gid;
        proc_.groups.clear();
    }
    let pty = if proc_.terminal {
        Some(tty::open_pty()?)
    } else {
        None
    };

    let (rd, wr) = pipe()?;
    let (go_r, go_w) = pipe()?;
    if !o.detach {
        tty::block_forwarded();
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: nsrun is single-threaded, so the child may allocate and take
    // locks freely; child_main ends with exec or _exit, never returning.
    let child = match unsafe { fork() }.map_err(|e| ExecError::Setup(format!("fork: {e}")))? {
        ForkResult::Parent { child } => child.as_raw(),
        ForkResult::Child => {
            drop(rd);
            drop(go_w);
            child_main(
                &proc_,
                listener.as_ref(),
                pty.as_ref().map(|p| &p.1),
                wr.as_fd(),
                go_r.as_fd(),
                o.preserve_fds,
            );
        }
    };
    drop(wr);
    drop(go_r);
    for (path, f) in &cg_files {
        if let Err(e) = std::io::Write::write_all(&mut &*f, child.to_string().as_bytes()) {
            tty::kill_and_reap(child);
            return Err(io("join cgroup", path, e).into());
        }
    }
    // "G" + the child's host pid (for the seccomp listener's state).
    let mut go = b"G".to_vec();
    go.extend_from_slice(&child.to_ne_bytes());
    let _ = nix::unistd::write(&go_w, &go);
    drop(go_w);
    let master = pty.map(|(m, _s)| m);
    let mut report = Vec::new();
    let _ = std::fs::File::from(rd).read_to_end(&mut report);
    if let Some((&code, msg)) = report.split_first() {
        tty::reap(child);
        let msg = String::from_utf8_lossy(msg).to_string();
        if code == 1 {
            return Err(ExecError::Setup(msg).into());
        }
        eprintln!("nsrun: {msg}");
        return Ok(Outcome::Exited(code as i32));
    }
    if let (Some(sock), Some(m)) = (&console, &master) {
        tty::send_fd(sock.as_raw_fd(), b"/dev/ptmx", m.as_raw_fd())?;
    }
    if let Some(pf) = pid_file {
        if let Err(e) = pf.write(child) {
            if o.detach {
                tty::kill_and_reap(child);
            }
            return Err(e.into());
        }
    }
    if o.detach {
        return Ok(Outcome::Detached(child));
    }
    let copy = if console.is_some() {
        None
    } else {
        master.as_ref()
    };
    Ok(Outcome::Exited(tty::supervise(child, copy)?))
}

/// Where an exec'd process's seccomp notify fd goes.
struct Notify {
    listener: crate::seccomp::Listener,
    sock: UnixStream,
    state: serde_json::Value,
}

/// The forked exec'd process. Setup failures are reported on `report` as
/// code 1 + message; exec failures as 126/127 + message.
fn child_main(
    p: &Proc,
    notify: Option<&Notify>,
    slave: Option<&OwnedFd>,
    report: BorrowedFd,
    go: BorrowedFd,
    preserve_fds: u32,
) -> ! {
    let fail = |code: u8, msg: String| -> ! {
        let mut m = vec![code];
        m.extend_from_slice(msg.as_bytes());
        let _ = nix::unistd::write(report, &m);
        sys::exit_now(code as i32);
    };
    // Wait until the parent has put us in the container's cgroups.
    let mut b = [0u8; 5];
    if nix::unistd::read(go, &mut b) != Ok(5) {
        sys::exit_now(1);
    }
    let host_pid = i32::from_ne_bytes([b[1], b[2], b[3], b[4]]);
    // The filter goes on as in the init (process::SeccompAt); a notify fd
    // goes straight to the listener, then is closed.
    let hand_over = |fd: Option<OwnedFd>| {
        if let (Some(fd), Some(n)) = (fd, notify) {
            let r = crate::seccomp::send_to_listener(
                &n.sock,
                &n.listener,
                std::os::fd::AsFd::as_fd(&fd),
                host_pid,
                &n.state,
            );
            if let Err(e) = r {
                fail(1, e.to_string());
            }
        }
    };
    let _ = nix::unistd::setsid();
    if let Some(s) = slave {
        if let Err(e) = tty::attach_slave(s) {
            fail(1, e.to_string());
        }
    }
    if let Err(e) = p.set_limits() {
        fail(1, e.to_string());
    }
    match p.load_seccomp(SeccompAt::BeforeUserSwitch) {
        Ok(fd) => hand_over(fd),
        Err(e) => fail(1, e.to_string()),
    }
    if let Err(e) = p.switch_user() {
        fail(1, e.to_string());
    }
    if let Err(e) = p.enter_cwd() {
        fail(1, e.to_string());
    }
    match p.load_seccomp(SeccompAt::BeforeReady) {
        Ok(fd) => hand_over(fd),
        Err(e) => fail(1, e.to_string()),
    }
    // CVE-2024-21626: no fd of nsrun's survives the exec.
    if let Err(e) = sys::cloexec_from(3 + preserve_fds) {
        fail(1, format!("close_range: {}", sys::errstr(&e)));
    }
    process::reset_signals();
    let (code, msg) = p.exec();
    fail(code, msg)
}

#[cfg(test)]
mod tests {
    use super::merge_env;

    #[test]
    fn env_merge_overrides_by_key() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let got = merge_env(base, &["A=2".into(), "B=x=y".into()]);
        assert_eq!(got, vec!["PATH=/bin", "A=2", "B=x=y"]);
    }
}
