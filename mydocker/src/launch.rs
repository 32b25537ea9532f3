//! The launch of one container: its plan (`plan::Plan::launch`: overlay
//! rootfs, volumes, network, /etc files, config.json, `nsrun create`,
//! `nsrun start`, each recorded) run for real; a failure undoes the steps
//! before it. The Create step runs here: it hands the container's stdio
//! to the caller, which must be the subreaper that will wait for it.
//!
//! # Crash consistency: what is written first
//!
//! A SIGKILL of any process of the launch (this supervisor, the CLI, a
//! tool) at any moment leaves a record from which the next command (its
//! reconcile pass, `records::reconcile`) or `rm -f` finds and releases
//! everything taken, because each step is recorded before it acts:
//!
//! 1. `ctrstate update` (a foreground `run`: in the record `ctrstate
//!    create` writes, `Plan::folded`): `status` created, `supervisorPid` = this process,
//!    `network` = the networks about to be joined (`{"Networks":{NAME:{}}}`,
//!    or `{}` for none/host). From here a dead supervisor marks the launch
//!    abandoned, and the teardown knows which CNI DELs and netns file to
//!    undo, whatever of the attach happened.
//! 2. `layerfs mount`, volumes, `netbr netns add` + `connect`: each undone
//!    by id alone (`layerfs umount/remove ID`, CNI DEL of ID, `netns del
//!    ID`), all idempotent; anonymous volume names are in the record's
//!    config before the launch starts.
//! 3. `nsrun create`: nsrun records its state and `cgroup.json` before it
//!    makes the cgroup; `nsrun delete --force ID` kills and removes what
//!    exists of it. The init blocks on its exec fifo.
//! 4. `ctrstate update`: `pid`, `pidStartTime`, the network settings,
//!    ports, mounts; `status` still created.
//! 5. `nsrun start`: the command runs.
//! 6. `ctrstate update`: `status` running, `startedAt`. So no record says
//!    running before its command runs. A kill between 5 and 6 leaves a
//!    `created` record with a live pid and a dead supervisor: abandoned
//!    (nobody would ever collect its exit); the reconcile pass kills it.

use crate::context::Ctx;
use crate::error::{Error, IoContext, Result};
use crate::plan::{self, Outputs, Plan, Real, StepId};
use crate::runconfig::RunConfig;
use crate::tools::Call;
use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::Stdio;

/// The container's end of its stdio, held by the supervisor.
pub enum Io {
    Pipes {
        /// Write end of the container's stdin (None: stdin is /dev/null).
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Pty {
        master: OwnedFd,
    },
}

pub struct Launched {
    /// The container's init, as a host pid.
    pub pid: i32,
    pub io: Io,
}

/// Runs the container described by `cfg` as container `id` (its record
/// exists): the launch plan without its Reserve, run for real. A failure
/// has undone every step before it returns.
pub fn launch(ctx: &Ctx, id: &str, cfg: &RunConfig) -> Result<Launched> {
    launch_as(ctx, id, cfg, How::Fresh)
}

/// [`launch`] by the restart policy: the record stays `restarting` until
/// the container runs (`Plan::relaunch`).
pub fn relaunch(ctx: &Ctx, id: &str, cfg: &RunConfig) -> Result<Launched> {
    launch_as(ctx, id, cfg, How::Relaunch)
}

/// As [`launch`], for a record reserved by this process with the
/// Launching patch already in it (`Plan::folded`, a foreground `run`).
pub fn launch_reserved(ctx: &Ctx, id: &str, cfg: &RunConfig) -> Result<Launched> {
    launch_as(ctx, id, cfg, How::Reserved)
}

/// Which launch plan: a start's, a restart policy's, or the rest of a
/// foreground run whose Reserve carried the Launching patch.
enum How {
    Fresh,
    Relaunch,
    Reserved,
}

fn launch_as(ctx: &Ctx, id: &str, cfg: &RunConfig, how: How) -> Result<Launched> {
    // `container:X` namespaces: each X running, its namespace paths in the
    // config; with X's network, X's hostname and /etc files.
    let joined = crate::nsjoin::at_launch(ctx, cfg)?;
    let mut plan = match how {
        How::Relaunch => Plan::relaunch(ctx, &joined.cfg),
        How::Fresh => Plan::launch(ctx, &joined.cfg, "").without(&StepId::Reserve),
        How::Reserved => Plan::launch(ctx, &joined.cfg, "")
            .folded()
            .without(&StepId::Reserve),
    };
    plan.join = joined.net;
    let mut out = Outputs::for_id(id);
    plan::runner::launch(&plan, &mut Real::new(ctx), &mut out)?;
    out.launched
        .ok_or_else(|| Error::Daemon("the launch plan created no process".into()))
}

/// The Create step: `call` (`nsrun create ... ID`) run with the
/// container's stdio (pipes, or a terminal received over the console
/// socket the call names); the init waits on its exec fifo.
pub fn create(ctx: &Ctx, call: &Call, id: &str, cfg: &RunConfig) -> Result<Launched> {
    let dir = ctx.container_dir(id);
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).step(|| "pipe".into())?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).step(|| "pipe".into())?;
    let pid_file = dir.join("init.pid");
    let console = if cfg.tty {
        let sock = plan::build::console_socket(ctx, &id[..12]);
        let _ = std::fs::remove_file(&sock);
        std::fs::create_dir_all(&ctx.run).step(|| format!("mkdir {}", ctx.run.display()))?;
        let l = UnixListener::bind(&sock).step(|| format!("listen on {}", sock.display()))?;
        Some((l, sock))
    } else {
        None
    };
    let (stdin_child, stdin_ours) = if cfg.open_stdin && !cfg.tty {
        let (r, w) = pipe2(OFlag::O_CLOEXEC).step(|| "pipe".into())?;
        (Stdio::from(r), Some(w))
    } else {
        (Stdio::null(), None)
    };
    if crate::tools::debug_enabled() {
        eprintln!("mydocker: + {}", call.shell());
    }
    let status = call
        .command()
        .stdin(stdin_child)
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w))
        .status()
        .map_err(|e| Error::Tool {
            tool: "nsrun".into(),
            step: "create".into(),
            msg: e.to_string(),
        })?;
    if !status.success() {
        let msg = last_line(&err_r);
        // nsrun looks the command up in the container before create returns
        // (as runc): docker's 127 (not found) and 126 (cannot invoke).
        return Err(match status.code() {
            Some(127) => Error::NotFound(msg),
            Some(126) => Error::CannotInvoke(msg),
            _ => Error::Tool {
                tool: "nsrun".into(),
                step: "create".into(),
                msg,
            },
        });
    }
    let pid = read_pid_file(&pid_file)?;
    let io = match console {
        Some((l, sock)) => {
            let master = receive_pty(&l);
            let _ = std::fs::remove_file(&sock);
            Io::Pty { master: master? }
        }
        None => Io::Pipes {
            stdin: stdin_ours,
            stdout: out_r,
            stderr: err_r,
        },
    };
    Ok(Launched { pid, io })
}

fn read_pid_file(path: &std::path::Path) -> Result<i32> {
    let text = std::fs::read_to_string(path).step(|| format!("read {}", path.display()))?;
    text.trim().parse().map_err(|_| {
        Error::Daemon(format!(
            "nsrun create: pid file {} holds {:?}",
            path.display(),
            text.trim()
        ))
    })
}

/// What a failed tool wrote: its last line, read without blocking (the
/// container's init, if any, still holds the pipe open).
fn last_line(fd: &OwnedFd) -> String {
    let _ = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    let mut buf = vec![0u8; 8192];
    let n = nix::unistd::read(fd.as_fd(), &mut buf).unwrap_or(0);
    let s = String::from_utf8_lossy(&buf[..n]).to_string();
    let line = s
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed")
        .to_string();
    line.strip_prefix("nsrun: ").unwrap_or(&line).to_string()
}

/// Receives the pty master that nsrun sent over the console socket (runc's
/// protocol: one SCM_RIGHTS fd).
fn receive_pty(l: &UnixListener) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    l.set_nonblocking(true).step(|| "console socket".into())?;
    let (conn, _) = l
        .accept()
        .step(|| "accept on console socket (nsrun sent no terminal)".into())?;
    conn.set_nonblocking(false)
        .step(|| "console socket".into())?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .step(|| "recvmsg on console socket".into())?;
    for c in msg.cmsgs().step(|| "console socket message".into())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just gave us this fd; we own it now.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Daemon(
        "console socket: no terminal fd received".into(),
    ))
}
