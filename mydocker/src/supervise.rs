//! Step 10: the supervisor. It is the container's parent (subreaper) for as
//! long as the container runs: it copies the container's output into the
//! json-file log (and to the user's terminal in the foreground), forwards
//! signals and window sizes, reaps the container, records its exit, and
//! releases what it held (all of it with --rm).
//!
//! In the foreground (`run` without `-d`, `start -a`) that is this process,
//! [`supervise`]. A detached container gets the small resident
//! `mydocker-supervisor` instead ([`exec_supervisor`], same process and
//! pid), which execs `mydocker _exited` for [`finish_as`] once it is over.

use crate::context::Ctx;
use crate::launch::{Io, Launched};
use crate::logfile::{LineSplitter, Writer};
use crate::runconfig::RunConfig;
use crate::teardown;
use ctrstate::{RecordPatch, Status};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// The signals the supervisor handles itself, through a signalfd.
pub fn handled_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        s.add(sig);
    }
    s
}

/// Becomes the subreaper and blocks the handled signals (so none is lost
/// between now and the loop). Call before `launch`.
pub fn prepare() -> nix::Result<SignalFd> {
    nix::sys::prctl::set_child_subreaper(true)?;
    let set = handled_signals();
    set.thread_block()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

/// Where the supervisor's copy of the output goes besides the log.
pub struct Attached {
    /// Copy the user's stdin into the container.
    pub stdin: bool,
}

/// Supervises a launched container until it exits; returns its exit code
/// (128+N when killed by signal N).
pub fn supervise(
    ctx: &Ctx,
    id: &str,
    cfg: &RunConfig,
    l: Launched,
    sfd: SignalFd,
    attached: Option<Attached>,
) -> i32 {
    let mut log = open_log(ctx, id, cfg);
    let foreground = attached.is_some();
    // `run -a`: the streams the user sees (stdin with -i); the log gets all.
    let (a_in, a_out, a_err) = crate::attach::streams(cfg);
    let user_stdin = attached.as_ref().map(|a| a.stdin).unwrap_or(false) && a_in;
    let _raw = match (&l.io, foreground) {
        (Io::Pty { master }, true) => {
            copy_winsize(master.as_fd());
            RawMode::enter()
        }
        _ => None,
    };
    let (mut stdin_w, out, err) = match l.io {
        Io::Pipes {
            stdin,
            stdout,
            stderr,
        } => (stdin, Some(stdout), Some(stderr)),
        Io::Pty { master } => (None, Some(master), None),
    };
    let pty = err.is_none();
    let mut out = out;
    let mut err = err;
    let mut stdin_open = user_stdin;
    let mut splitters = [LineSplitter::default(), LineSplitter::default()];
    let mut status: Option<i32> = None;
    let mut buf = vec![0u8; 32 * 1024];
    let mut drain_deadline: Option<std::time::Instant> = None;
    loop {
        if status.is_some() && out.is_none() && err.is_none() {
            break;
        }
        if let Some(d) = drain_deadline {
            // The init is gone; a process that escaped with our pipe must not
            // keep the supervisor (and `docker wait`) hanging.
            if std::time::Instant::now() > d {
                break;
            }
        }
        let stdin_fd = unsafe { BorrowedFd::borrow_raw(0) };
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let mut which = vec![0u8];
        if let Some(o) = &out {
            fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
            which.push(1);
        }
        if let Some(e) = &err {
            fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
            which.push(2);
        }
        if stdin_open {
            fds.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
            which.push(3);
        }
        let timeout = if drain_deadline.is_some() {
            PollTimeout::from(100u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<(u8, PollFlags)> = fds
            .iter()
            .zip(&which)
            .map(|(f, &w)| (w, f.revents().unwrap_or(PollFlags::empty())))
            .collect();
        drop(fds);
        for (w, rev) in ready {
            if rev.is_empty() {
                continue;
            }
            match w {
                0 => {
                    while let Ok(Some(si)) = sfd.read_signal() {
                        let sig = si.ssi_signo as i32;
                        if sig == libc::SIGCHLD {
                            if let Some(code) = reap(l.pid) {
                                status = Some(code);
                                drain_deadline = Some(
                                    std::time::Instant::now() + std::time::Duration::from_secs(2),
                                );
                            }
                        } else if sig == libc::SIGWINCH {
                            if let (true, Some(m)) = (pty && foreground, &out) {
                                copy_winsize(m.as_fd());
                            }
                        } else if foreground && status.is_none() && crate::attach::sig_proxy(cfg) {
                            // docker's sig-proxy: the container gets the signal.
                            if let Ok(s) = Signal::try_from(sig) {
                                let _ = kill(Pid::from_raw(l.pid), s);
                            }
                        }
                    }
                }
                1 | 2 => {
                    let fd = if w == 1 {
                        out.as_ref().unwrap()
                    } else {
                        err.as_ref().unwrap()
                    };
                    match nix::unistd::read(fd.as_fd(), &mut buf) {
                        Ok(0) | Err(nix::errno::Errno::EIO) => {
                            let i = (w - 1) as usize;
                            let stream = if w == 1 { "stdout" } else { "stderr" };
                            splitters[i].flush(|line| {
                                if let Some(lg) = log.as_mut() {
                                    lg.write(stream, line)
                                }
                            });
                            if w == 1 {
                                out = None;
                            } else {
                                err = None;
                            }
                        }
                        Ok(n) => {
                            let data = &buf[..n];
                            let stream = if w == 1 { "stdout" } else { "stderr" };
                            if foreground && (if w == 1 { a_out } else { a_err }) {
                                write_all(if w == 1 { 1 } else { 2 }, data);
                            }
                            splitters[(w - 1) as usize].push(data, |line| {
                                if let Some(lg) = log.as_mut() {
                                    lg.write(stream, line)
                                }
                            });
                        }
                        Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                        Err(_) => {
                            if w == 1 {
                                out = None;
                            } else {
                                err = None;
                            }
                        }
                    }
                }
                3 => match nix::unistd::read(stdin_fd, &mut buf) {
                    Ok(0) | Err(_) => {
                        stdin_open = false;
                        // EOF on our stdin closes the container's (not a pty's).
                        stdin_w = None;
                    }
                    Ok(n) => {
                        if pty {
                            if let Some(m) = &out {
                                write_all(m.as_raw_fd(), &buf[..n]);
                            }
                        } else if let Some(w) = &stdin_w {
                            write_all(w.as_raw_fd(), &buf[..n]);
                        }
                    }
                },
                _ => {}
            }
        }
    }
    drop(_raw);
    let code = status.unwrap_or_else(|| wait_blocking(l.pid));
    finish(ctx, id, cfg, code);
    code
}

/// The container's json-file log as its options say (None: driver none).
fn open_log(ctx: &Ctx, id: &str, cfg: &RunConfig) -> Option<Writer> {
    if !cfg.log_config.enabled() {
        return None;
    }
    let rotation = cfg.log_config.rotation().unwrap_or_default();
    Writer::open(&crate::logfile::path(&ctx.container_dir(id), id), rotation).ok()
}

/// Replaces this process (the launcher of a detached container, its
/// subreaper parent, its recorded `supervisorPid`) with
/// `mydocker-supervisor`, handing it the container's output fds and the
/// attach socket's listener; once the container is over it execs
/// `mydocker _exited --delay-ms DELAY_MS ID CODE`. Returns only on failure.
pub fn exec_supervisor(
    ctx: &Ctx,
    id: &str,
    cfg: &RunConfig,
    l: &Launched,
    attach: Option<BorrowedFd>,
    delay_ms: u64,
) -> std::io::Error {
    let mut argv: Vec<std::ffi::OsString> = vec![
        crate::tools::tool_path("mydocker-supervisor").into(),
        "--pid".into(),
        l.pid.to_string().into(),
    ];
    let mut inherit = |flag: &str, fd: BorrowedFd| {
        // The fd crosses the exec: clear its close-on-exec flag.
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        );
        argv.push(flag.into());
        argv.push(fd.as_raw_fd().to_string().into());
    };
    match &l.io {
        Io::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            inherit("--stdout", stdout.as_fd());
            inherit("--stderr", stderr.as_fd());
            if let Some(w) = stdin {
                // `-d -i`: the container's stdin stays open, as docker's.
                inherit("--hold", w.as_fd());
            }
        }
        Io::Pty { master } => inherit("--pty", master.as_fd()),
    }
    if let Some(fd) = attach {
        inherit("--attach", fd);
    }
    if cfg.log_config.enabled() {
        let r = cfg.log_config.rotation().unwrap_or_default();
        argv.push("--log".into());
        argv.push(crate::logfile::path(&ctx.container_dir(id), id).into());
        argv.extend([
            "--log-max-size".into(),
            r.max_size.to_string().into(),
            "--log-max-file".into(),
            r.max_file.to_string().into(),
        ]);
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| "mydocker".into());
    let me = |args: &[&str]| -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> =
            vec![exe.clone().into(), "--root".into(), ctx.root.clone().into()];
        v.extend(args.iter().map(Into::into));
        v
    };
    if let Some(h) = crate::health::of(cfg) {
        argv.push("--health-interval-ms".into());
        argv.push(h.interval().as_millis().max(1).to_string().into());
        for a in me(&["_health", id]) {
            argv.push("--health".into());
            argv.push(a);
        }
    }
    argv.push("--".into());
    argv.extend(me(&["_exited", "--delay-ms", &delay_ms.to_string(), id]));
    exec(&argv)
}

/// execv; returns the error when it fails. Not std's `Command::exec`: that
/// unblocks every signal first, and a SIGTERM in that window would kill
/// the container's supervisor; a blocked SIGCHLD stays pending across
/// execv for the next program to read.
pub fn exec(argv: &[std::ffi::OsString]) -> std::io::Error {
    use std::os::unix::ffi::OsStrExt;
    let c: Vec<std::ffi::CString> = argv
        .iter()
        .filter_map(|a| std::ffi::CString::new(a.as_bytes()).ok())
        .collect();
    if c.len() != argv.len() {
        return std::io::Error::from_raw_os_error(libc::EINVAL);
    }
    let mut p: Vec<*const libc::c_char> = c.iter().map(|s| s.as_ptr()).collect();
    p.push(std::ptr::null());
    // SAFETY: a NULL-terminated array of valid C strings that outlive the call.
    // (execvp: a supervisor not beside mydocker is looked up in $PATH.)
    unsafe { libc::execvp(p[0], p.as_ptr()) };
    std::io::Error::last_os_error()
}

/// Records the exit and releases what the container held.
pub fn finish(ctx: &Ctx, id: &str, cfg: &RunConfig, code: i32) {
    finish_as(ctx, id, cfg, code, false)
}

/// [`finish`], the record left `restarting` instead of `exited` when its
/// restart policy will start it again.
pub fn finish_as(ctx: &Ctx, id: &str, cfg: &RunConfig, code: i32, restarting: bool) {
    // The cgroup's OOM count says whether the kernel killed it (read before
    // the cgroup goes); only a container with a memory limit can hit its own.
    let limited = !cfg.resources["memory"].is_null();
    let oom = limited
        && ctx
            .cgctl()
            .args(["stats", &cfg.security.cgroups_path(id)])
            .json()
            .map(|s| s["memory"]["oomKillCount"].as_u64().unwrap_or(0) > 0)
            .unwrap_or(false);
    if cfg.auto_remove {
        crate::events::died(ctx, id, code, oom);
        // --rm: straight to removal; the record outlives it only on failure.
        let errs = teardown::remove_teardown(ctx, id);
        teardown::remove_anonymous_volumes(ctx, cfg);
        if errs.is_empty() {
            return;
        }
        record_exit(ctx, id, code, oom, &errs, false);
        return;
    }
    let errs = teardown::stop_teardown(ctx, id);
    record_exit(ctx, id, code, oom, &errs, restarting);
}

fn record_exit(
    ctx: &Ctx,
    id: &str,
    code: i32,
    oom: bool,
    errs: &[crate::error::Error],
    restarting: bool,
) {
    let patch = RecordPatch {
        status: Some(if restarting {
            Status::Restarting
        } else {
            Status::Exited
        }),
        // The stop teardown detached it from its networks (docker clears these too).
        network: Some(None),
        exit_code: Some(code),
        finished_at: Some(ctrstate::time::now_rfc3339()),
        pid: Some(0),
        oom_killed: Some(oom),
        error: Some(errs.first().map(|e| e.to_string())),
        ..Default::default()
    };
    let _ = crate::records::update(ctx, id, &patch);
}

/// Reaps every exited child; returns the container's code if it was one.
fn reap(pid: i32) -> Option<i32> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == pid => found = Some(c),
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => found = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(_) => {}
        }
    }
}

fn wait_blocking(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
            Ok(_) => continue,
        }
    }
}

fn write_all(fd: i32, mut data: &[u8]) {
    let f = unsafe { BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(f, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

/// Gives the pty the size of the user's terminal.
fn copy_winsize(master: BorrowedFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: plain ioctls on valid fds with a properly sized struct.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// The user's terminal in raw mode, restored on drop (or by
/// [`RawMode::restore`] before an exit that skips the drop).
pub struct RawMode;

/// The terminal's settings before raw mode.
static SAVED: std::sync::Mutex<Option<termios::Termios>> = std::sync::Mutex::new(None);

impl RawMode {
    pub fn enter() -> Option<RawMode> {
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        if !nix::unistd::isatty(stdin).unwrap_or(false) {
            return None;
        }
        let saved = termios::tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin, termios::SetArg::TCSANOW, &raw).ok()?;
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        Some(RawMode)
    }

    /// Puts the terminal back as it was, if raw mode changed it.
    pub fn restore() {
        let saved = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(saved) = saved {
            let stdin = unsafe { BorrowedFd::borrow_raw(0) };
            let _ = termios::tcsetattr(stdin, termios::SetArg::TCSANOW, &saved);
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        RawMode::restore();
    }
}
