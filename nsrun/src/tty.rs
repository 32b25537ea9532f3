//! Terminals and supervision: a pty opened inside the container, passing its
//! master over a unix socket (SCM_RIGHTS, runc's console-socket protocol),
//! raw mode on nsrun's own terminal, and the loop that copies between the
//! two, forwards signals and waits for the container process.

use crate::sys;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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

/// Opens a pty pair from `/dev/ptmx` of the current root (the container's
/// devpts instance); returns master and slave.
pub fn open_pty() -> Result<(OwnedFd, OwnedFd), TtyError> {
    let master =
        sys::open(Path::new("/dev/ptmx"), libc::O_RDWR | libc::O_NOCTTY, 0).map_err(|e| {
            TtyError::Step {
                step: "open /dev/ptmx",
                err: sys::errstr(&e),
            }
        })?;
    if unsafe { libc::unlockpt(master.as_raw_fd()) } != 0 {
        return Err(fail("unlockpt"));
    }
    // TIOCGPTPEER opens the slave through the master, without a path lookup.
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
    Ok((master, unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The slave's path (`/dev/pts/N`) from the master.
pub fn slave_path(master: &OwnedFd) -> Result<std::path::PathBuf, TtyError> {
    let mut n: libc::c_uint = 0;
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
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(fail("TIOCSCTTY"));
    }
    for n in 0..3 {
        if unsafe { libc::dup2(slave.as_raw_fd(), n) } < 0 {
            return Err(fail("dup2 pty slave"));
        }
    }
    Ok(())
}

pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// Copies the window size of `from` (our terminal) to `to` (a pty master).
pub fn copy_winsize(from: RawFd, to: RawFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) } == 0 {
        unsafe { libc::ioctl(to, libc::TIOCSWINSZ, &ws) };
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

/// Puts a terminal in raw mode; restores it on drop.
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// `None` when `fd` is not a terminal.
    pub fn enter(fd: RawFd) -> Option<RawMode> {
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        unsafe {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
        }
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// The signals nsrun forwards (and SIGCHLD); blocked before the child is
/// made so none is lost, unblocked in the child before exec.
pub fn forward_set() -> libc::sigset_t {
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGWINCH,
            libc::SIGCHLD,
        ] {
            libc::sigaddset(&mut s, sig);
        }
        s
    }
}

pub fn block_forwarded() {
    let s = forward_set();
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &s, std::ptr::null_mut()) };
}

/// An exit status in the shell's convention: code, or 128+signal.
pub fn exit_status(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

fn write_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return; // a closed reader (broken pipe) just ends the copy
        }
        buf = &buf[n as usize..];
    }
}

/// Waits for child `pid`, forwarding SIGINT/SIGTERM/SIGHUP to it and, with a
/// pty `master`, copying stdin to it and it to stdout (SIGWINCH resizes).
/// The forwarded signals must already be blocked. Returns the exit status.
pub fn supervise(pid: i32, master: Option<&OwnedFd>) -> Result<i32, TtyError> {
    let set = forward_set();
    let sfd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    if sfd < 0 {
        return Err(fail("signalfd"));
    }
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd) };
    let mfd = master.map(|m| m.as_raw_fd());
    let _raw = match mfd {
        Some(m) => {
            copy_winsize(0, m);
            RawMode::enter(0)
        }
        None => None,
    };
    let mut stdin_open = mfd.is_some();
    let mut master_open = mfd.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    let status;
    'outer: loop {
        let mut pfds = vec![libc::pollfd {
            fd: sfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let (Some(m), true) = (mfd, master_open) {
            pfds.push(libc::pollfd {
                fd: m,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if stdin_open {
            pfds.push(libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // Poll with a timeout as a safety net against a missed SIGCHLD.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 1000) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(fail("poll"));
        }
        for p in &pfds {
            if p.revents == 0 {
                continue;
            }
            if p.fd == sfd.as_raw_fd() {
                let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
                let n = unsafe {
                    libc::read(
                        sfd.as_raw_fd(),
                        &mut si as *mut _ as *mut libc::c_void,
                        std::mem::size_of::<libc::signalfd_siginfo>(),
                    )
                };
                if n > 0 {
                    match si.ssi_signo as libc::c_int {
                        libc::SIGWINCH => {
                            if let Some(m) = mfd {
                                copy_winsize(0, m);
                            }
                        }
                        libc::SIGCHLD => {}
                        s => unsafe {
                            libc::kill(pid, s);
                        },
                    }
                }
            } else if Some(p.fd) == mfd {
                let n =
                    unsafe { libc::read(p.fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
                if n <= 0 {
                    master_open = false;
                } else {
                    write_all(1, &buf[..n as usize]);
                }
            } else if p.fd == 0 {
                let n = unsafe { libc::read(0, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
                if n <= 0 {
                    stdin_open = false;
                } else if let Some(m) = mfd {
                    write_all(m, &buf[..n as usize]);
                }
            }
        }
        let mut st = 0;
        let w = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if w == pid {
            status = exit_status(st);
            break 'outer;
        }
        if w < 0 {
            return Err(fail("waitpid"));
        }
    }
    // Drain what the process wrote before it exited.
    if let (Some(m), true) = (mfd, master_open) {
        unsafe {
            libc::fcntl(
                m,
                libc::F_SETFL,
                libc::fcntl(m, libc::F_GETFL) | libc::O_NONBLOCK,
            )
        };
        loop {
            let n = unsafe { libc::read(m, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n <= 0 {
                break;
            }
            write_all(1, &buf[..n as usize]);
        }
    }
    Ok(status)
}
