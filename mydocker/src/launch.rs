//! Steps 2-9 of the pipeline for one container: overlay rootfs, its /etc
//! files, config.json, `nsrun create` with the container's stdio, `nsrun
//! start`. Every step has its undo; a failure undoes the steps before it.
//! The caller must be the subreaper that will wait for the container.
//!
//! # Crash consistency: what is written first
//!
//! A SIGKILL of any process of the launch (this supervisor, the CLI, a
//! tool) at any moment leaves a record from which the next command (its
//! reconcile pass, `records::reconcile`) or `rm -f` finds and releases
//! everything taken, because each step is recorded before it acts:
//!
//! 1. `ctrstate update`: `status` created, `supervisorPid` = this process,
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
use crate::network;
use crate::records;
use crate::runconfig::RunConfig;
use crate::spec;
use crate::volumes;
use ctrstate::{RecordPatch, Status};
use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use serde_json::json;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
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

/// Runs the container described by `cfg` as container `id`.
pub fn launch(ctx: &Ctx, id: &str, cfg: &RunConfig) -> Result<Launched> {
    let mut undo = Undo::new(ctx, id);
    match launch_steps(ctx, id, cfg, &mut undo) {
        Ok(l) => {
            undo.disarm();
            Ok(l)
        }
        Err(e) => Err(e), // `undo` runs on drop
    }
}

fn launch_steps(ctx: &Ctx, id: &str, cfg: &RunConfig, undo: &mut Undo) -> Result<Launched> {
    let p = prepare(ctx, id, cfg, undo)?;
    start(ctx, id, cfg, undo, p)
}

/// What steps 2-5 made: the pieces of the container's config.
struct Prepared {
    config: serde_json::Value,
    network: serde_json::Value,
}

/// Steps 2-5 and the config: rootfs, volumes, network, /etc files, user.
fn prepare(ctx: &Ctx, id: &str, cfg: &RunConfig, undo: &mut Undo) -> Result<Prepared> {
    let dir = ctx.container_dir(id);
    // `container:X` namespaces: X running, its paths; with X's network no
    // network of its own (no netns, no CNI, X's /etc files).
    let joined = crate::nsjoin::at_launch(ctx, cfg)?;
    let cfg = &joined.cfg;
    let mode = match &joined.net {
        Some(_) => network::Mode::None,
        None => network::parse_mode(&cfg.network),
    };
    // 1 (see the module doc): the launch and its networks, before any of them.
    let networks = match mode.clone() {
        network::Mode::Named(name) => json!({ name: {} }),
        _ => json!({}),
    };
    records::update(
        ctx,
        id,
        &RecordPatch {
            status: Some(Status::Created),
            pid: Some(0),
            pid_start_time: Some(0),
            supervisor_pid: Some(Some(std::process::id())),
            network: Some(Some(json!({ "Networks": networks }))),
            error: Some(None),
            ..Default::default()
        },
    )?;
    // 2: the overlay rootfs.
    undo.mounted = true;
    let Mounted { rootfs } = ctx
        .layerfs()
        .arg("mount")
        .arg(&cfg.image_id)
        .arg(id)
        .parse()?;
    let hostname = match &joined.net {
        Some(n) => n.hostname.clone(),
        None if cfg.hostname.is_empty() => id[..12].to_string(),
        None => cfg.hostname.clone(),
    };
    // 3: volumes, binds and tmpfs as OCI mounts (new named volumes seeded
    // from the image).
    let extra_mounts = crate::volumes::resolve(ctx, id, &cfg.mounts)?;
    // 4, 5: the network namespace and its interface (CNI ADD).
    let (netns, _ip, network) = match mode.clone() {
        network::Mode::Named(name) => {
            network::ensure(ctx, &name)?;
            undo.network = Some(name.clone());
            let a = network::attach(ctx, id, &name, cfg)?;
            (Some(a.netns), a.ip, a.settings)
        }
        _ => (
            None,
            None,
            json!({"Networks": {}, "Ports": {}, "IPAddress": ""}),
        ),
    };
    let host_network = mode == network::Mode::Host;
    let files = match &joined.net {
        Some(n) => n.files.clone(),
        None => spec::write_etc_files(ctx, &dir, id, &hostname, cfg, &network)?,
    };
    let ids = spec::resolve_user(&rootfs, &cfg.user)?;
    let config = spec::build(&spec::SpecInput {
        id,
        cfg,
        rootfs: &rootfs,
        hostname: &hostname,
        ids,
        files,
        netns,
        host_network,
        extra_mounts,
    })?;
    Ok(Prepared { config, network })
}

/// Steps 7-9: config.json, `nsrun create` with the container's stdio, the
/// cgroup attach, the record, `nsrun start`.
fn start(ctx: &Ctx, id: &str, cfg: &RunConfig, undo: &mut Undo, p: Prepared) -> Result<Launched> {
    let dir = ctx.container_dir(id);
    let cfg_path = dir.join("config.json");
    std::fs::write(&cfg_path, serde_json::to_vec(&p.config).unwrap())
        .step(|| format!("write {}", cfg_path.display()))?;

    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).step(|| "pipe".into())?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).step(|| "pipe".into())?;
    let pid_file = dir.join("init.pid");
    let mut create = ctx
        .nsrun()
        .arg("create")
        .arg("--bundle")
        .arg(&dir)
        .arg("--pid-file")
        .arg(&pid_file);
    let console = if cfg.tty {
        let sock = ctx.run.join(format!("console-{}.sock", &id[..12]));
        let _ = std::fs::remove_file(&sock);
        std::fs::create_dir_all(&ctx.run).step(|| format!("mkdir {}", ctx.run.display()))?;
        let l = UnixListener::bind(&sock).step(|| format!("listen on {}", sock.display()))?;
        create = create.arg("--console-socket").arg(&sock);
        Some((l, sock))
    } else {
        None
    };
    let create = create.arg(id);
    let (stdin_child, stdin_ours) = if cfg.open_stdin && !cfg.tty {
        let (r, w) = pipe2(OFlag::O_CLOEXEC).step(|| "pipe".into())?;
        (Stdio::from(r), Some(w))
    } else {
        (Stdio::null(), None)
    };
    if crate::tools::debug_enabled() {
        eprintln!("mydocker: + {}", create.shell());
    }
    undo.created = true;
    let status = create
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
    // 8: nsrun put the init in its cgroup before it ran anything. The
    // record gets the pid (still created) before the command runs, so a
    // crash from here leaves a pid to kill.
    records::update(
        ctx,
        id,
        &created_patch(
            pid,
            &p.network,
            &cfg.ports,
            &volumes::docker_mounts(ctx, &cfg.mounts),
        ),
    )?;
    // 9: the init execs the user's command; then, and only then, running.
    ctx.nsrun().arg("start").arg(id).output()?;
    records::update(
        ctx,
        id,
        &RecordPatch {
            status: Some(Status::Running),
            started_at: Some(ctrstate::time::now_rfc3339()),
            ..Default::default()
        },
    )?;
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

/// Undo of a half-done launch, in reverse order, on drop.
struct Undo<'a> {
    ctx: &'a Ctx,
    id: String,
    mounted: bool,
    network: Option<String>,
    created: bool,
}

impl<'a> Undo<'a> {
    fn new(ctx: &'a Ctx, id: &str) -> Self {
        Undo {
            ctx,
            id: id.to_string(),
            mounted: false,
            network: None,
            created: false,
        }
    }
    fn disarm(&mut self) {
        self.mounted = false;
        self.network = None;
        self.created = false;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.created {
            let _ = self
                .ctx
                .nsrun()
                .args(["delete", "--force", &self.id])
                .output();
        }
        if let Some(n) = &self.network {
            let _ = network::detach(self.ctx, &self.id, n);
        }
        if self.mounted {
            let _ = self.ctx.layerfs().args(["umount", &self.id]).output();
        }
    }
}

/// What `layerfs mount` prints (layerfs' own `Mounted` is Serialize-only
/// and linking all of layerfs for it would pull its tar/zstd stack in).
#[derive(serde::Deserialize)]
struct Mounted {
    rootfs: PathBuf,
}

/// The patch that records a created container's init (its status stays
/// created until `nsrun start` has run).
fn created_patch(
    pid: i32,
    network: &serde_json::Value,
    ports: &[network::Port],
    mounts: &serde_json::Value,
) -> RecordPatch {
    let array = |v: serde_json::Value| match v {
        serde_json::Value::Array(a) => a,
        _ => vec![],
    };
    RecordPatch {
        mounts: Some(array(mounts.clone())),
        network: Some(Some(network.clone())),
        ports: Some(array(json!(ports))),
        status: Some(Status::Created),
        pid: Some(pid as u32),
        pid_start_time: Some(ctrstate::procfs::pid_start_time(pid as u32).unwrap_or(0)),
        supervisor_pid: Some(Some(std::process::id())),
        finished_at: Some(ctrstate::time::ZERO_TIME.into()),
        exit_code: Some(0),
        oom_killed: Some(false),
        error: Some(None),
        ..Default::default()
    }
}
