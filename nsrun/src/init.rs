//! The container init: runs in the cloned child, sets up the rootfs and the
//! process, reports ready (or the failed step) to its parent over the sync
//! socket, blocks on the exec fifo until `start`, then execs.

use crate::process::{self, Proc, SeccompAt};
use crate::sync::{Channel, Msg};
use crate::{rootfs, sys, tty};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::Spec;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

/// What the init gets from its parent (a copy of its memory: it is a fork).
pub struct Ctx<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub proc_: Proc,
    /// The init's end of the sync channel.
    pub sync: Channel,
    /// Unshare a cgroup namespace once in the cgroup.
    pub new_cgroupns: bool,
    /// O_PATH fd of the state dir holding the exec fifo, opened before
    /// any namespace is joined: no path (nor /proc, which a joined mount
    /// namespace may have from another pid namespace) is needed to reach it.
    pub fifo: RawFd,
    /// A connected `--console-socket` for the pty master (create mode).
    pub console: Option<RawFd>,
    /// With a terminal and no console socket (run mode), the master goes to
    /// the parent over the sync socket.
    pub master_to_parent: bool,
    pub userns: bool,
    pub preserve_fds: u32,
    /// The state given to hooks (status and pid are filled in).
    pub hook_state: serde_json::Value,
    /// A mount namespace (by path) the init joins itself, first thing.
    pub join_mnt: Option<RawFd>,
    /// The mount namespace is joined (by the init or at birth): it is
    /// assumed set up, so no rootfs setup of our own (as runc).
    pub mount_joined: bool,
    /// `--no-pivot`: MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
}

/// The hook state with `status` and the init's host pid.
fn state_of(base: &serde_json::Value, status: &str, pid: i32) -> serde_json::Value {
    let mut s = base.clone();
    s["status"] = status.into();
    s["pid"] = pid.into();
    s
}

/// Entry point of the cloned child. Never returns.
pub fn run(ctx: Ctx) -> ! {
    // Our host pid, while /proc is still the host's (hooks get it).
    let host_pid: i32 = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or(0);
    if let Err(msg) = setup(&ctx, host_pid) {
        let _ = ctx.sync.send(&Msg::Failed(msg));
        sys::exit_now(1);
    }
    // As runc: a command that is not there fails `create`, with a message.
    if let Err((code, msg)) = ctx.proc_.lookup() {
        let _ = ctx.sync.send(&Msg::NoCommand(code, msg));
        sys::exit_now(code as i32);
    }
    if ctx.sync.send(&Msg::Ready).is_err() {
        // The parent is gone: nobody would start us.
        sys::exit_now(1);
    }
    drop(ctx.sync);
    // Blocks until `start` opens the read side.
    let w = match nix::fcntl::openat(
        // SAFETY: the fd is the parent's O_PATH fd of the state dir, copied
        // into this process by the clone, closed only below.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(ctx.fifo) },
        crate::state::FIFO,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("nsrun: open exec fifo: {e}");
            sys::exit_now(1);
        }
    };
    let _ = nix::unistd::write(&w, b"0");
    // Kept open (close-on-exec): `start` reads until EOF, so it returns
    // only once this process has exec'd (or died).
    std::mem::forget(w);
    let _ = nix::unistd::close(ctx.fifo);
    let start_hooks = crate::hooks::Stage::StartContainer;
    if let Err(e) = crate::hooks::run(
        ctx.spec,
        start_hooks,
        &state_of(&ctx.hook_state, "created", host_pid),
    ) {
        eprintln!("nsrun: {e}");
        sys::exit_now(1);
    }
    if let Err(e) = sys::cloexec_from(3 + ctx.preserve_fds) {
        eprintln!("nsrun: close_range: {}", sys::errstr(&e));
        sys::exit_now(1);
    }
    process::reset_signals();
    let (code, msg) = ctx.proc_.exec();
    eprintln!("nsrun: {msg}");
    sys::exit_now(code as i32);
}

fn setup(ctx: &Ctx, host_pid: i32) -> Result<(), String> {
    // Nothing in the container may open /proc/1/exe (the nsrun binary)
    // while this process still runs it; exec of the user's command resets it.
    let _ = nix::sys::prctl::set_dumpable(false);
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    if let Some(fd) = ctx.join_mnt {
        // SAFETY: the fd is the parent's open namespace fd, copied into
        // this process by the clone and used by nothing else here.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        sys::setns(fd, libc::CLONE_NEWNS)
            .map_err(|e| format!("setns mount namespace: {}", sys::errstr(&e)))?;
    }
    // The parent writes our uid/gid maps and puts us in the cgroup first.
    ctx.sync.wait_go().map_err(|e| e.to_string())?;
    if ctx.userns {
        let root = (Gid::from_raw(0), Uid::from_raw(0));
        nix::unistd::setresgid(root.0, root.0, root.0)
            .and_then(|()| nix::unistd::setresuid(root.1, root.1, root.1))
            .map_err(|e| format!("become root in the user namespace: {e}"))?;
    }
    if ctx.new_cgroupns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| format!("unshare cgroup namespace: {e}"))?;
    }
    let new_netns = crate::config::namespaces(ctx.spec)
        .iter()
        .any(|(t, p)| *t == oci_spec::runtime::LinuxNamespaceType::Network && p.is_none());
    if new_netns {
        loopback_up()?;
    }
    if !ctx.mount_joined {
        rootfs::prepare(ctx.spec, &ctx.rootfs, ctx.userns).map_err(|e| e.to_string())?;
    }
    // Hooks see the mounts made and the old root still there (as runc).
    use crate::hooks::{self, Stage};
    if !hooks::of(ctx.spec, Stage::Prestart).is_empty()
        || !hooks::of(ctx.spec, Stage::CreateRuntime).is_empty()
    {
        ctx.sync.send(&Msg::Hooks).map_err(|e| e.to_string())?;
        ctx.sync.wait_go().map_err(|e| e.to_string())?;
    }
    hooks::run(
        ctx.spec,
        Stage::CreateContainer,
        &state_of(&ctx.hook_state, "creating", host_pid),
    )?;
    if ctx.mount_joined {
        rootfs::sysctls(ctx.spec).map_err(|e| e.to_string())?;
    } else {
        if ctx.no_pivot {
            rootfs::move_root(&ctx.rootfs).map_err(|e| e.to_string())?;
        } else {
            rootfs::pivot(&ctx.rootfs).map_err(|e| e.to_string())?;
        }
        rootfs::root_propagation(ctx.spec).map_err(|e| e.to_string())?;
        rootfs::finish(ctx.spec).map_err(|e| e.to_string())?;
    }
    if let Some(h) = ctx.spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| format!("sethostname {h:?}: {e}"))?;
    }
    if let Some(d) = ctx.spec.domainname().as_ref().filter(|d| !d.is_empty()) {
        let c = sys::cstring(d).map_err(|e| e.to_string())?;
        // SAFETY: the pointer is a live NUL-terminated string of d.len()
        // bytes (nix has no setdomainname).
        if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } != 0 {
            return Err(format!(
                "setdomainname {d:?}: {}",
                sys::errstr(&std::io::Error::last_os_error())
            ));
        }
    }
    ctx.proc_.set_limits().map_err(|e| e.to_string())?;
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    if ctx.proc_.terminal {
        let (master, slave) = tty::open_pty().map_err(|e| e.to_string())?;
        if let Some(b) = ctx.spec.process().as_ref().and_then(|p| p.console_size()) {
            tty::set_winsize(&slave, b.height() as u16, b.width() as u16);
        }
        tty::attach_slave(&slave).map_err(|e| e.to_string())?;
        tty::bind_console(&master).map_err(|e| e.to_string())?;
        if let Some(sock) = ctx.console {
            tty::send_fd(sock, b"/dev/ptmx", master.as_raw_fd())
                .map_err(|e| format!("console socket: {e}"))?;
        } else if ctx.master_to_parent {
            ctx.sync
                .send(&Msg::Pty(
                    master
                        .try_clone()
                        .map_err(|e| format!("dup pty master: {e}"))?,
                ))
                .map_err(|e| e.to_string())?;
        }
    }
    if let Some(sock) = ctx.console {
        let _ = nix::unistd::close(sock);
    }
    // The seccomp filter goes on at one of three moments (process::SeccompAt);
    // a notify fd goes to the parent (`S`+fd), which hands it to the listener.
    let early = ctx
        .proc_
        .load_seccomp(SeccompAt::BeforeUserSwitch)
        .map_err(|e| e.to_string())?;
    send_notify_fd(&ctx.sync, early)?;
    ctx.proc_.switch_user().map_err(|e| e.to_string())?;
    ctx.proc_.enter_cwd().map_err(|e| e.to_string())?;
    let late = ctx
        .proc_
        .load_seccomp(SeccompAt::BeforeReady)
        .map_err(|e| e.to_string())?;
    send_notify_fd(&ctx.sync, late)?;
    Ok(())
}

/// Hands a seccomp notify fd to the parent and closes ours: the container
/// must not hold its own listener.
fn send_notify_fd(sync: &Channel, fd: Option<std::os::fd::OwnedFd>) -> Result<(), String> {
    match fd {
        Some(fd) => sync
            .send(&Msg::SeccompFd(fd))
            .map_err(|e| format!("send seccomp notify fd to the parent: {e}")),
        None => Ok(()),
    }
}

/// A network namespace made for the container gets its loopback up, as
/// docker's `--network none` has it: 127.0.0.1 works, nothing else exists.
/// (A joined namespace is its maker's to set up.)
fn loopback_up() -> Result<(), String> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let err = |step: &str| format!("{step}: {}", sys::errstr(&std::io::Error::last_os_error()));
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("loopback: socket: {e}"))?;
    let fd = sock.as_raw_fd();
    // SAFETY: ifreq is plain data, valid zeroed; the name "lo" is
    // NUL-terminated by the zeroes after it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of the live
    // ifreq; the fd is our socket.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(err("loopback: SIOCGIFFLAGS lo"));
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the live ifreq.
    if unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(err("loopback: SIOCSIFFLAGS lo up"));
    }
    Ok(())
}
