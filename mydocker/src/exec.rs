//! `mydocker exec`: `nsrun exec` in the container's namespaces; the exit code
//! is the command's. docker's events go to the journal: `exec_create: CMD
//! ARGS` and `exec_start: CMD ARGS` (with `execID`), then `exec_die` with
//! `execID` and `exitCode` once the command ends. So nsrun runs as a child
//! that mydocker waits for; the signals sent to mydocker (not those the
//! terminal sends to the whole foreground group, which nsrun gets itself)
//! are passed on to it. A detached exec (`-d`) has no `exec_die`: nothing
//! waits for it.

use crate::cli::ExecArgs;
use crate::context::Ctx;
use crate::error::{fail, Error, Result};
use crate::records;
use crate::runconfig::RunConfig;
use ctrstate::record::Status;
use std::process::Stdio;

pub fn exec(ctx: &Ctx, a: &ExecArgs) -> Result<i32> {
    let rec = records::get(ctx, &a.container)?;
    if rec.status != Status::Running || !records::alive(rec.pid, rec.pid_start_time) {
        return fail(format!("container {} is not running", rec.id));
    }
    let cfg: RunConfig =
        serde_json::from_value(serde_json::Value::Object(rec.config.clone())).unwrap_or_default();
    let mut call = ctx.nsrun().arg("exec");
    if a.tty {
        call = call.arg("-t");
    }
    if a.detach {
        call = call.arg("--detach");
    }
    for e in &a.env {
        call = call.arg("-e").arg(e);
    }
    if let Some(w) = a
        .workdir
        .as_ref()
        .or(Some(&cfg.working_dir).filter(|w| !w.is_empty()))
    {
        call = call.arg("--cwd").arg(w);
    }
    let user = a.user.clone().unwrap_or(cfg.user.clone());
    if !user.is_empty() {
        // Names resolve against the running container's own /etc files.
        let ids = crate::spec::resolve_user(
            std::path::Path::new(&format!("/proc/{}/root", rec.pid)),
            &user,
        )?;
        call = call.arg("--user").arg(format!("{}:{}", ids.uid, ids.gid));
    }
    let call = call.arg(&rec.id).arg("--").args(&a.command);
    if crate::tools::debug_enabled() {
        eprintln!("mydocker: + {}", call.shell());
    }
    let mut cmd = call.command();
    if !a.interactive {
        cmd.stdin(Stdio::null());
    }
    let exec_id = randid::id().map_err(|e| Error::Daemon(format!("exec id: getrandom: {e}")))?;
    let what = a.command.join(" ");
    let id_attr = [("execID", exec_id.clone())];
    crate::events::container(ctx, &rec, &format!("exec_create: {what}"), &id_attr);
    crate::events::container(ctx, &rec, &format!("exec_start: {what}"), &id_attr);
    if a.detach {
        cmd.stdout(Stdio::null());
        let st = cmd
            .status()
            .map_err(|e| Error::Daemon(format!("nsrun exec: {e}")))?;
        return Ok(st.code().unwrap_or(1));
    }
    // Blocked before the child and the forwarding thread exist: the thread
    // inherits the mask and takes them; the child's mask is reset by spawn.
    let set = forwarded();
    let _ = set.thread_block();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = set.thread_unblock();
            return fail(format!("cannot run nsrun: {e}"));
        }
    };
    let pid = child.id() as i32;
    std::thread::spawn(move || forward(set, pid));
    let st = child
        .wait()
        .map_err(|e| Error::Daemon(format!("nsrun exec: {e}")))?;
    let code = match (
        st.code(),
        std::os::unix::process::ExitStatusExt::signal(&st),
    ) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    };
    let die = [("execID", exec_id), ("exitCode", code.to_string())];
    if let Some(now) = records::peek(ctx, &rec.id) {
        crate::events::container(ctx, &now, "exec_die", &die);
    } else {
        crate::events::container(ctx, &rec, "exec_die", &die);
    }
    Ok(code)
}

/// The signals a user sends to `mydocker exec` that go on to nsrun.
fn forwarded() -> nix::sys::signal::SigSet {
    use nix::sys::signal::Signal::*;
    let mut set = nix::sys::signal::SigSet::empty();
    for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2] {
        set.add(s);
    }
    set
}

/// Waits for the blocked signals and passes each on to `pid`; one the
/// kernel raised (a terminal's ^C or ^\, sent to the whole foreground
/// process group) already reached nsrun and is dropped.
fn forward(set: nix::sys::signal::SigSet, pid: i32) {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter; `set` is a
        // sigset_t the kernel reads.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let sig = unsafe { libc::sigwaitinfo(set.as_ref(), &mut info) };
        if sig < 0 {
            if nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                continue;
            }
            return;
        }
        if info.si_code == libc::SI_KERNEL {
            continue;
        }
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(pid, sig) };
    }
}
