//! `mydocker exec`: `nsrun exec` in the container's namespaces; the exit code
//! is the command's.

use crate::cli::ExecArgs;
use crate::context::Ctx;
use crate::error::{fail, Error, Result};
use crate::records;
use crate::runconfig::RunConfig;
use ctrstate::record::Status;
use std::os::unix::process::CommandExt;
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
    if a.detach {
        cmd.stdout(Stdio::null());
        let st = cmd
            .status()
            .map_err(|e| Error::Daemon(format!("nsrun exec: {e}")))?;
        return Ok(st.code().unwrap_or(1));
    }
    // The terminal, signals and exit status are nsrun's from here on.
    let e = cmd.exec();
    fail(format!("cannot run nsrun: {e}"))
}
