//! `mydocker run` and `mydocker start`: validate, reserve the record, then
//! launch and supervise the container in the foreground, or in a detached
//! supervisor process that reports back once the container has started.

use crate::cli::RunArgs;
use crate::context::Ctx;
use crate::error::{fail, Error, Result};
use crate::launch;
use crate::plan::{self, Outputs, Plan, Real, StepId};
use crate::records;
use crate::runconfig::RunConfig;
use crate::supervise::{self, Attached};
use crate::teardown;
use ctrstate::{Record, RecordPatch, Status};
use serde_json::Value;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

pub fn run(ctx: &Ctx, a: &RunArgs) -> Result<i32> {
    run_or_create(ctx, a, false)
}

/// `mydocker create`: the record and its config, not started (`start`
/// runs it); prints the full id.
pub fn create(ctx: &Ctx, a: &RunArgs) -> Result<i32> {
    run_or_create(ctx, a, true)
}

fn run_or_create(ctx: &Ctx, a: &RunArgs, create_only: bool) -> Result<i32> {
    // --pull and --platform decide over the local image (no registry).
    let found = ctx.layerfs().args(["inspect", &a.image]).json().ok();
    let image = crate::runflags::check_image(&a.extra, &a.image, found)?;
    let image_id = image["id"].as_str().unwrap_or_default().to_string();
    let mut cfg = RunConfig::from_run(a, &image_id, &image["config"]["config"])?;
    if a.detach && !a.extra.attach.is_empty() {
        return fail("Conflicting options: -a and -d");
    }
    // container:X namespaces and --volumes-from (a run wants X running).
    crate::nsjoin::resolve(ctx, a, &mut cfg, !create_only)?;
    for w in crate::runflags::oom_kill_disable(&mut cfg.extra, &mut cfg.resources) {
        eprintln!("{w}");
    }
    if let Some(n) = &a.name {
        if n.is_empty() {
            return fail(
                "invalid container name \"\": names must match [a-zA-Z0-9][a-zA-Z0-9_.-]+",
            );
        }
    }
    let name = a.name.clone().unwrap_or_default();
    if a.print_pipeline {
        print!("{}", plan::print::script(ctx, &cfg, &name)?);
        return Ok(0);
    }
    if let Some(f) = &a.extra.cidfile {
        if f.exists() {
            return fail(format!(
                "Container ID file found, make sure the other container isn't running or delete {}",
                f.display()
            ));
        }
    }
    // The plan's first step here; the rest runs where the container's
    // supervisor is (this process, or the detached one).
    // A foreground run supervises from here: its record says so at once.
    let mut reserve = Plan::launch(ctx, &cfg, &name);
    if !create_only && !a.detach {
        reserve = reserve.folded();
    }
    let reserve = reserve.only(&StepId::Reserve);
    let mut out = Outputs::default();
    plan::runner::launch(&reserve, &mut Real::new(ctx), &mut out)?;
    let id = out.id.unwrap_or_default();
    if let Some(f) = &a.extra.cidfile {
        if let Err(e) = std::fs::write(f, &id) {
            forget(ctx, &id, &cfg);
            return fail(format!("failed to write the container ID to the file: {e}"));
        }
    }
    if create_only {
        println!("{id}");
        return Ok(0);
    }
    if a.detach {
        match start_detached(ctx, &id, &cfg) {
            Ok(()) => {
                println!("{id}");
                Ok(0)
            }
            Err(e) => {
                // docker keeps a container whose start failed (created, with
                // the error and its exit code), unless it was --rm
                if cfg.auto_remove {
                    forget(ctx, &id, &cfg);
                }
                Err(e)
            }
        }
    } else {
        // docker keeps a container whose start failed, unless --rm
        run_foreground(ctx, &id, &cfg, a.interactive, cfg.auto_remove)
    }
}

/// Launches and supervises in this process; returns the container's exit code.
/// `remove_on_failure`: a failed launch also removes the record (a `run
/// --rm`); otherwise the record stays created with the error and docker's
/// exit code (`failed_start`).
pub fn run_foreground(
    ctx: &Ctx,
    id: &str,
    cfg: &RunConfig,
    stdin: bool,
    remove_on_failure: bool,
) -> Result<i32> {
    let sfd = supervise::prepare().map_err(|e| Error::Daemon(format!("supervisor: {e}")))?;
    let launched = if remove_on_failure {
        launch::launch_reserved(ctx, id, cfg)
    } else {
        launch::launch(ctx, id, cfg)
    };
    match launched {
        Ok(l) => Ok(supervise::supervise(
            ctx,
            id,
            cfg,
            l,
            sfd,
            Some(Attached { stdin }),
        )),
        Err(e) => {
            if remove_on_failure {
                forget(ctx, id, cfg);
            } else {
                failed_start(ctx, id, &e);
            }
            Err(e)
        }
    }
}

/// The record of a `start` whose launch failed (and undid its steps): not
/// running, and why.
fn failed_start(ctx: &Ctx, id: &str, e: &Error) {
    // docker's daemon: 127 not found, 126 cannot invoke, 128 any other.
    let code = match e.exit_code() {
        c @ (126 | 127) => c as i32,
        _ => 128,
    };
    let _ = records::update(ctx, id, &plan::build::failed_start(&e.to_string(), code));
}

/// Undo of a `run` whose launch failed (the launch undid its own steps):
/// the undo of its Reserve step (the record, then the anonymous volumes
/// it lists).
fn forget(ctx: &Ctx, id: &str, cfg: &RunConfig) {
    let undo = Plan::launch(ctx, cfg, "").undo_of(&StepId::Reserve);
    let _ = plan::runner::teardown(&undo, &mut Real::new(ctx), &mut Outputs::for_id(id));
}

/// Forks the process that launches the container and then becomes its
/// supervisor (`mydocker-supervisor`, exec'd in place: see
/// `supervise::exec_supervisor`); returns once it reports the container
/// started (or why it did not).
pub fn start_detached(ctx: &Ctx, id: &str, cfg: &RunConfig) -> Result<()> {
    // A start undoes an earlier `stop`: the restart policy applies again.
    let _ = std::fs::remove_file(stop_marker(ctx, id));
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::Daemon(format!("pipe: {e}")))?;
    // SAFETY: mydocker is single-threaded here; the child only runs our own
    // code and exits or execs, never returning into the caller.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::Daemon(format!("fork: {e}")))? {
        nix::unistd::ForkResult::Parent { .. } => {
            drop(w);
            let mut msg = String::new();
            let _ = std::fs::File::from(r).read_to_string(&mut msg);
            match msg.strip_prefix("ok") {
                Some(_) => Ok(()),
                None if msg.is_empty() => fail("supervisor died before the container started"),
                None => Err(match msg.split_once(' ') {
                    Some(("127", m)) => Error::NotFound(m.into()),
                    Some(("126", m)) => Error::CannotInvoke(m.into()),
                    Some(("125", m)) => Error::Daemon(m.into()),
                    _ => Error::Daemon(msg),
                }),
            }
        }
        nix::unistd::ForkResult::Child => {
            drop(r);
            let code = detached_supervisor(ctx, id, cfg, w);
            std::process::exit(code);
        }
    }
}

/// The first backoff of a restart policy (docker's: 100 ms, doubling up
/// to a minute, reset after 10 s of running).
const FIRST_DELAY_MS: u64 = 100;
const MAX_DELAY_MS: u64 = 60_000;

fn detached_supervisor(ctx: &Ctx, id: &str, cfg: &RunConfig, report: OwnedFd) -> i32 {
    // Leave the user's session and terminal: the container outlives mydocker.
    let _ = nix::unistd::setsid();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto our own stdio fds.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let mut report = std::fs::File::from(report);
    let sfd = match supervise::prepare() {
        Ok(s) => s,
        Err(e) => {
            let _ = write!(report, "supervisor: {e}");
            return 1;
        }
    };
    crate::health::reset(ctx, id, cfg);
    // Bound before the launch: once `run -d` returns, `attach` can connect.
    let attach = crate::attach::listen(ctx, id);
    match launch::launch(ctx, id, cfg) {
        Ok(l) => {
            let _ = report.write_all(b"ok");
            drop(report);
            kill_if_stopped(ctx, id);
            hand_over(ctx, id, cfg, l, attach, sfd, FIRST_DELAY_MS)
        }
        Err(e) => {
            drop(attach);
            let _ = std::fs::remove_file(crate::attach::socket_path(ctx, id));
            // Before the report: a `run` removes the record once told.
            failed_start(ctx, id, &e);
            // The kind travels with the message: docker's 126/127 for -d too.
            let _ = write!(report, "{} {e}", e.exit_code());
            1
        }
    }
}

/// A `stop` that came while we launched found no process to signal (see
/// `mark_stopped`): the container it meant goes now.
fn kill_if_stopped(ctx: &Ctx, id: &str) {
    if stop_marker(ctx, id).exists() {
        let _ = ctx.nsrun().args(["kill", id, "KILL"]).output();
    }
}

/// Becomes the resident supervisor of the launched container, serving its
/// attach socket; if that program cannot be run, supervises in this
/// process instead (without attach: `attach` then follows the log).
fn hand_over(
    ctx: &Ctx,
    id: &str,
    cfg: &RunConfig,
    l: launch::Launched,
    attach: Option<UnixListener>,
    sfd: nix::sys::signalfd::SignalFd,
    delay_ms: u64,
) -> i32 {
    use std::os::fd::AsFd;
    let fd = attach.as_ref().map(|a| a.as_fd());
    let err = supervise::exec_supervisor(ctx, id, cfg, &l, fd, delay_ms);
    // Nobody would accept on it: connecting must fail, not hang.
    drop(attach);
    let _ = std::fs::remove_file(crate::attach::socket_path(ctx, id));
    let _ = records::update(
        ctx,
        id,
        &RecordPatch {
            error: Some(Some(format!("mydocker-supervisor: {err}"))),
            ..Default::default()
        },
    );
    crate::trim::trim_resident();
    let code = supervise::supervise(ctx, id, cfg, l, sfd, None);
    exited(ctx, id, code, delay_ms).unwrap_or(1)
}

/// `mydocker _exited`: the supervisor saw the container exit with `code`.
/// Records it (releasing what it held, all of it with --rm); under a
/// restart policy that says so, leaves it `restarting` and sleeps the
/// backoff in the small supervisor, which then execs `_restart`.
pub fn exited(ctx: &Ctx, id: &str, code: i32, delay_ms: u64) -> Result<i32> {
    let attached = supervisor::attach::handed_over();
    // The supervisor closed the listener; new attaches fall back to the log.
    let _ = std::fs::remove_file(crate::attach::socket_path(ctx, id));
    let Some(rec) = records::peek(ctx, id) else {
        supervisor::attach::send_exit(attached, code);
        return Ok(0);
    };
    let cfg: RunConfig = match serde_json::from_value(Value::Object(rec.config.clone())) {
        Ok(c) => c,
        Err(e) => {
            supervisor::attach::send_exit(attached, code);
            return Err(Error::Daemon(format!(
                "container {id}: bad stored config: {e}"
            )));
        }
    };
    let restart = !stopped(ctx, id)
        && crate::runflags::should_restart(&cfg.extra.restart, code, rec.restart_count);
    supervise::finish_as(ctx, id, &cfg, code, restart);
    // The attach clients the supervisor handed over: the exit is recorded.
    supervisor::attach::send_exit(attached, code);
    if !restart {
        return Ok(0);
    }
    // A run of 10 s or more starts the backoff over.
    let ran = crate::humanize::parse_rfc3339(&rec.started_at)
        .map(|t| crate::humanize::now() - t)
        .unwrap_or(0.0);
    let delay = if ran >= 10.0 {
        FIRST_DELAY_MS
    } else {
        delay_ms
    };
    let next = (delay * 2).min(MAX_DELAY_MS);
    let argv: Vec<std::ffi::OsString> = vec![
        crate::tools::tool_path("mydocker-supervisor").into(),
        "--sleep-ms".into(),
        delay.to_string().into(),
        "--".into(),
        std::env::current_exe()
            .unwrap_or_else(|_| "mydocker".into())
            .into(),
        "--root".into(),
        ctx.root.clone().into(),
        "_restart".into(),
        "--delay-ms".into(),
        next.to_string().into(),
        id.into(),
    ];
    let _ = supervise::exec(&argv);
    // No small supervisor: sleep here.
    std::thread::sleep(std::time::Duration::from_millis(delay));
    restart_after_backoff(ctx, id, next)
}

/// `mydocker _restart`: the backoff is over; launches the container again
/// (as `start` does) unless `stop` or `rm` came first, counting the
/// restart, and becomes its supervisor again.
pub fn restart_after_backoff(ctx: &Ctx, id: &str, delay_ms: u64) -> Result<i32> {
    let Some(rec) = records::peek(ctx, id) else {
        return Ok(0);
    };
    if stopped(ctx, id) {
        let _ = records::update(
            ctx,
            id,
            &RecordPatch {
                status: Some(Status::Exited),
                ..Default::default()
            },
        );
        return Ok(0);
    }
    let cfg: RunConfig = serde_json::from_value(Value::Object(rec.config.clone()))
        .map_err(|e| Error::Daemon(format!("container {id}: bad stored config: {e}")))?;
    let _ = teardown::stop_teardown(ctx, id);
    records::update(
        ctx,
        id,
        &RecordPatch {
            network: Some(None),
            restart_count: Some(rec.restart_count + 1),
            ..Default::default()
        },
    )?;
    let sfd = supervise::prepare().map_err(|e| Error::Daemon(format!("supervisor: {e}")))?;
    crate::health::reset(ctx, id, &cfg);
    let attach = crate::attach::listen(ctx, id);
    match launch::relaunch(ctx, id, &cfg) {
        Ok(l) => {
            kill_if_stopped(ctx, id);
            Ok(hand_over(ctx, id, &cfg, l, attach, sfd, delay_ms))
        }
        Err(e) => {
            drop(attach);
            let _ = std::fs::remove_file(crate::attach::socket_path(ctx, id));
            failed_start(ctx, id, &e);
            Err(e)
        }
    }
}

/// `mydocker start`: runs stopped containers again, keeping their writable layer.
pub fn start(ctx: &Ctx, refs: &[String], attach: bool) -> Result<i32> {
    let mut code = 0;
    for r in refs {
        let rec = records::get(ctx, r)?;
        if rec.status == ctrstate::record::Status::Running {
            println!("{r}");
            continue;
        }
        let cfg: RunConfig = serde_json::from_value(Value::Object(rec.config.clone()))
            .map_err(|e| Error::Daemon(format!("container {r}: bad stored config: {e}")))?;
        // Whatever a crashed supervisor left behind goes before we start again.
        let _ = teardown::stop_teardown(ctx, &rec.id);
        let _ = records::update(
            ctx,
            &rec.id,
            &RecordPatch {
                network: Some(None),
                // docker's start resets the restart manager and its count
                restart_count: Some(0),
                ..Default::default()
            },
        );
        if attach {
            code = run_foreground(ctx, &rec.id, &cfg, cfg.open_stdin, false)?;
        } else {
            start_detached(ctx, &rec.id, &cfg)?;
            println!("{r}");
        }
    }
    Ok(code)
}

/// The file `stop` leaves in the container's dir so that its restart
/// policy does not bring it back (docker: a manual stop wins).
pub fn stop_marker(ctx: &Ctx, id: &str) -> std::path::PathBuf {
    ctx.container_dir(id).join("stop-requested")
}

/// Whether the restart policy must not bring the container back: removed,
/// or stopped by hand.
fn stopped(ctx: &Ctx, id: &str) -> bool {
    records::peek(ctx, id).is_none() || stop_marker(ctx, id).exists()
}

/// Called by `stop` before it signals the container. A container in its
/// restart backoff has no process to signal: its supervisor is woken
/// (SIGUSR1 ends the sleep), and `_restart` records it exited (or, if it
/// was launching already, kills what it launched); we wait for the exit
/// so that `stop` returns with the container stopped.
pub fn mark_stopped(ctx: &Ctx, id: &str) {
    let _ = std::fs::write(stop_marker(ctx, id), b"");
    // In the backoff, launching (a start or a restart: no process yet), or
    // its exit not recorded yet (the policy may be deciding to restart it).
    let pending = |r: &Record| {
        let exiting = r.status == Status::Running && !records::alive(r.pid, r.pid_start_time);
        (matches!(r.status, Status::Restarting | Status::Created) || exiting)
            && r.supervisor_pid.is_some_and(alive)
    };
    let Some(rec) = records::peek(ctx, id).filter(pending) else {
        return;
    };
    if let Some(p) = rec.supervisor_pid {
        // SAFETY: a signal to the container's supervisor, by pid.
        unsafe { libc::kill(p as i32, libc::SIGUSR1) };
    }
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < until {
        match records::peek(ctx, id) {
            Some(r) if r.status != Status::Exited && r.supervisor_pid.is_some_and(alive) => {}
            _ => return,
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A live process, not a zombie.
fn alive(pid: u32) -> bool {
    ctrstate::procfs::stat(pid).is_some_and(|s| s.state != 'Z')
}
