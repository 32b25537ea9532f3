//! Terminals and supervision: a pty opened inside the container, passing its
//! master over a unix socket (SCM_RIGHTS, runc's console-socket protocol),
//! raw mode on nsrun's own terminal, and the loop that copies between the
//! two, forwards signals and waits for the container process.

use crate::sys;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    #[error("{step}: {err}")]
    Step { step: &'static str, err: String },
}

fn fail(step: &'static str) -> TtyError {
    TtyError::Step {
        step,
        err: sys::errstr(&std::io::Error::last_os_error()),
    }
}

fn nix_fail(step: &'static str) -> impl FnOnce(Errno) -> TtyError {
    move |e| TtyError::Step {
        step,
        err: e.to_string(),
    }
}

/// Opens a pty pair from `/dev/ptmx` of the current root (the container's
/// devpts instance); returns master and slave.
pub fn open_pty() -> Result<(OwnedFd, OwnedFd), TtyError> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = nix::pty::posix_openpt(flags).map_err(nix_fail("open /dev/ptmx"))?;
    nix::pty::unlockpt(&master).map_err(nix_fail("unlockpt"))?;
    let master = OwnedFd::from(master);
    // TIOCGPTPEER opens the slave through the master, without a path lookup.
    // SAFETY: an ioctl on an fd we own whose argument is an integer.
    let fd = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(fail("TIOCGPTPEER"));
    }
    // SAFETY: TIOCGPTPEER returned a new fd that nothing else owns.
    Ok((master, unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The slave's path (`/dev/pts/N`) from the master.
pub fn slave_path(master: &OwnedFd) -> Result<std::path::PathBuf, TtyError> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one c_uint to the pointer, a live local.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } != 0 {
        return Err(fail("TIOCGPTN"));
    }
    Ok(std::path::PathBuf::from(format!("/dev/pts/{n}")))
}

/// Bind-mounts the pty slave onto /dev/console (what runc does), when the
/// container has a /dev to put it in.
pub fn bind_console(master: &OwnedFd) -> Result<(), TtyError> {
    let console = Path::new("/dev/console");
    if !Path::new("/dev").is_dir() {
        return Ok(());
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(console)
    {
        return Err(TtyError::Step {
            step: "create /dev/console",
            err: e.to_string(),
        });
    }
    let slave = slave_path(master)?;
    sys::mount(Some(&slave), console, None, libc::MS_BIND, None).map_err(|e| TtyError::Step {
        step: "bind pty onto /dev/console",
        err: sys::errstr(&e),
    })
}

/// Makes `slave` the controlling terminal and stdio of this process (which
/// must be a session leader).
pub fn attach_slave(slave: &OwnedFd) -> Result<(), TtyError> {
    // SAFETY: an ioctl on an fd we borrow whose argument is an integer.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(fail("TIOCSCTTY"));
    }
    nix::unistd::dup2_stdin(slave)
        .and_then(|()| nix::unistd::dup2_stdout(slave))
        .and_then(|()| nix::unistd::dup2_stderr(slave))
        .map_err(nix_fail("dup2 pty slave"))
}

pub fn set_winsize(fd: impl AsFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, a live local.
    unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// Copies the window size of our terminal (stdin) to `to` (a pty master).
fn copy_winsize(to: impl AsFd) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer, a live local.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
        set_winsize(to, ws.ws_row, ws.ws_col);
    }
}

/// Sends `fd` with `payload` over a unix socket (SCM_RIGHTS).
pub fn send_fd(sock: RawFd, payload: &[u8], fd: RawFd) -> Result<(), TtyError> {
    let fds = [fd];
    sendmsg::<()>(
        sock,
        &[IoSlice::new(payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| TtyError::Step {
        step: "send pty master (SCM_RIGHTS)",
        err: e.to_string(),
    })?;
    Ok(())
}

/// Receives one message and, if any, one fd.
pub fn recv_msg(sock: RawFd) -> Result<(Vec<u8>, Option<OwnedFd>), TtyError> {
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 2]);
    let (n, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
            .map_err(|e| TtyError::Step {
                step: "recvmsg",
                err: e.to_string(),
            })?;
        let mut fd = None;
        if let Ok(cm) = msg.cmsgs() {
            for c in cm {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for f in fds {
                        // SAFETY: SCM_RIGHTS installed these fds in this
                        // process for us alone; each is owned once here.
                        let o = unsafe { OwnedFd::from_raw_fd(f) };
                        if fd.is_none() {
                            fd = Some(o);
                        }
                    }
                }
            }
        }
        (msg.bytes, fd)
    };
    buf.truncate(n);
    Ok((buf, fd))
}

/// Puts our terminal (stdin) in raw mode; restores it on drop.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// `None` when stdin is not a terminal.
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut t = saved.clone();
        cfmakeraw(&mut t);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &t);
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

/// The signals nsrun forwards (and SIGCHLD); blocked before the child is
/// made so none is lost, unblocked in the child before exec.
pub fn forward_set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ] {
        s.add(sig);
    }
    s
}

pub fn block_forwarded() {
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forward_set()), None);
}

/// An exit status in the shell's convention: code, or 128+signal.
pub fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 1,
    }
}

/// Waits for child `pid` to end; its exit code as [`exit_code`] (1 when
/// the wait fails).
pub fn reap(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Err(Errno::EINTR) => continue,
            Ok(st) => return exit_code(st),
            Err(_) => return 1,
        }
    }
}

/// SIGKILLs child `pid` and reaps it (undoing a half-made process).
pub fn kill_and_reap(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    reap(pid);
}

fn write_all(fd: impl AsFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        match nix::unistd::write(fd.as_fd(), buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => continue,
            Err(_) => return, // a closed reader (broken pipe) just ends the copy
        }
    }
}

/// Waits for child `pid`, forwarding SIGINT/SIGTERM/SIGHUP to it and, with a
/// pty `master`, copying stdin to it and it to stdout (SIGWINCH resizes).
/// The forwarded signals must already be blocked. Returns the exit status.
pub fn supervise(pid: i32, master: Option<&OwnedFd>) -> Result<i32, TtyError> {
    let sfd = SignalFd::with_flags(&forward_set(), SfdFlags::SFD_CLOEXEC)
        .map_err(nix_fail("signalfd"))?;
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    let _raw = master.and_then(|m| {
        copy_winsize(m);
        RawMode::enter()
    });
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    let status;
    loop {
        // Which of signalfd, master and stdin are ready.
        let mut ready = [false; 3];
        {
            let mut pfds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            let mut which = vec![0];
            if let (Some(m), true) = (master, master_open) {
                pfds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
                which.push(1);
            }
            if stdin_open {
                pfds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                which.push(2);
            }
            // Poll with a timeout as a safety net against a missed SIGCHLD.
            match poll(&mut pfds, PollTimeout::from(1000u16)) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(nix_fail("poll")(e)),
            }
            for (p, w) in pfds.iter().zip(which) {
                ready[w] = p.revents().is_some_and(|r| !r.is_empty());
            }
        }
        if ready[0] {
            if let Ok(Some(si)) = sfd.read_signal() {
                match Signal::try_from(si.ssi_signo as libc::c_int) {
                    Ok(Signal::SIGWINCH) => {
                        if let Some(m) = master {
                            copy_winsize(m);
                        }
                    }
                    Ok(Signal::SIGCHLD) | Err(_) => {}
                    Ok(s) => {
                        let _ = kill(Pid::from_raw(pid), s);
                    }
                }
            }
        }
        if let (Some(m), true) = (master, ready[1]) {
            match nix::unistd::read(m, &mut buf) {
                Ok(n) if n > 0 => write_all(&stdout, &buf[..n]),
                _ => master_open = false,
            }
        }
        if ready[2] {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(n) if n > 0 => {
                    if let Some(m) = master {
                        write_all(m, &buf[..n]);
                    }
                }
                _ => stdin_open = false,
            }
        }
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                status = exit_code(st);
                break;
            }
            Ok(_) => {}
            Err(e) => return Err(nix_fail("waitpid")(e)),
        }
    }
    // Drain what the process wrote before it exited.
    if let (Some(m), true) = (master, master_open) {
        if let Ok(fl) = fcntl(m, FcntlArg::F_GETFL) {
            let fl = OFlag::from_bits_retain(fl) | OFlag::O_NONBLOCK;
            let _ = fcntl(m, FcntlArg::F_SETFL(fl));
        }
        while let Ok(n) = nix::unistd::read(m, &mut buf) {
            if n == 0 {
                break;
            }
            write_all(&stdout, &buf[..n]);
        }
    }
    Ok(status)
}
