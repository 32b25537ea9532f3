//! `stop`, `kill`, `restart`, `rm`, `wait`: signals through `nsrun kill`, then
//! waiting for the supervisor to record the exit. When the supervisor is gone
//! (killed with -9), these commands record the exit and clean up themselves.

use crate::cli::{KillArgs, RmArgs, StopArgs};
use crate::context::Ctx;
use crate::error::{fail, Error, Result};
use crate::records;
use crate::runconfig::RunConfig;
use crate::teardown;
use ctrstate::record::{Record, Status};
use ctrstate::RecordPatch;
use std::time::{Duration, Instant};

pub fn stop(ctx: &Ctx, a: &StopArgs) -> Result<i32> {
    each(&a.containers, |r| {
        let rec = records::get(ctx, r)?;
        stop_one(ctx, &rec, crate::runflags::stop_grace(&rec, a.time))?;
        crate::events::container(ctx, &rec, "stop", &[]);
        println!("{r}");
        Ok(())
    })
}

pub fn kill(ctx: &Ctx, a: &KillArgs) -> Result<i32> {
    let sig = a.signal.trim_start_matches("SIG").to_string();
    each(&a.containers, |r| {
        let rec = records::get(ctx, r)?;
        if !is_live(&rec) {
            return fail(format!(
                "cannot kill container: {r}: container {} is not running",
                rec.id
            ));
        }
        ctx.nsrun().args(["kill", &rec.id, &sig]).output()?;
        crate::events::container(
            ctx,
            &rec,
            "kill",
            &[("signal", crate::events::signum(&sig))],
        );
        println!("{r}");
        Ok(())
    })
}

pub fn restart(ctx: &Ctx, a: &StopArgs) -> Result<i32> {
    each(&a.containers, |r| {
        let rec = records::get(ctx, r)?;
        stop_one(ctx, &rec, crate::runflags::stop_grace(&rec, a.time))?;
        let cfg: RunConfig = serde_json::from_value(serde_json::Value::Object(rec.config.clone()))
            .map_err(|e| Error::Daemon(format!("container {r}: bad stored config: {e}")))?;
        let _ = teardown::stop_teardown(ctx, &rec.id);
        crate::run::start_detached(ctx, &rec.id, &cfg)?;
        let _ = records::update(
            ctx,
            &rec.id,
            &RecordPatch {
                restart_count: Some(rec.restart_count + 1),
                ..Default::default()
            },
        );
        crate::events::container(ctx, &rec, "restart", &[]);
        println!("{r}");
        Ok(())
    })
}

pub fn rm(ctx: &Ctx, a: &RmArgs) -> Result<i32> {
    each(&a.containers, |r| {
        let rec = match records::get(ctx, r) {
            Ok(rec) => rec,
            Err(e) if a.force => {
                // docker rm -f of a missing container is not an error.
                let _ = e;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        // In its restart backoff it has no process, but its supervisor
        // sleeps until the relaunch: docker counts it as running.
        let restarting = rec.status == Status::Restarting;
        if is_live(&rec) || restarting {
            if !a.force {
                return fail(format!(
                    "cannot remove container \"/{}\": container is {}: stop the container before removing or force remove",
                    rec.name,
                    if restarting { "restarting" } else { "running" }
                ));
            }
            // (wakes a sleeping supervisor: it records the exit and ends)
            stop_one(ctx, &rec, Duration::ZERO)?;
        }
        let errs = teardown::remove_teardown(ctx, &rec.id);
        if let Some(e) = errs.into_iter().next() {
            return Err(e);
        }
        if a.volumes {
            // docker rm -v: the container's anonymous volumes go with it.
            let cfg: RunConfig =
                serde_json::from_value(serde_json::Value::Object(rec.config.clone()))
                    .unwrap_or_default();
            teardown::remove_anonymous_volumes(ctx, &cfg);
        }
        println!("{r}");
        Ok(())
    })
}

pub fn wait(ctx: &Ctx, refs: &[String]) -> Result<i32> {
    each(refs, |r| {
        let rec = records::get(ctx, r)?;
        let code = wait_exit(ctx, &rec, None, true).unwrap_or(rec.exit_code);
        println!("{code}");
        Ok(())
    })
}

/// Runs `f` for every ref, reporting each failure on stderr as docker does;
/// exit 1 if any failed.
fn each(refs: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    let mut code = 0;
    for r in refs {
        if let Err(e) = f(r) {
            eprintln!("Error response from daemon: {e}");
            code = 1;
        }
    }
    Ok(code)
}

fn is_live(rec: &Record) -> bool {
    matches!(
        rec.status,
        Status::Running | Status::Paused | Status::Created
    ) && records::alive(rec.pid, rec.pid_start_time)
}

/// SIGTERM, then SIGKILL after `grace`; returns once the exit is recorded.
pub fn stop_one(ctx: &Ctx, rec: &Record, grace: Duration) -> Result<()> {
    crate::run::mark_stopped(ctx, &rec.id);
    if !is_live(rec) {
        return Ok(());
    }
    if rec.status == Status::Paused {
        // A frozen process cannot act on a signal: thaw it first.
        let _ = ctx.cgctl().args(["thaw", &ctx.cgroup(rec)]).output();
    }
    if !grace.is_zero() {
        let sig = crate::runflags::stop_signal(rec);
        let _ = ctx.nsrun().args(["kill", &rec.id, &sig]).output();
        crate::events::container(ctx, rec, "kill", &[("signal", crate::events::signum(&sig))]);
        if wait_gone(rec, grace) {
            return settle(ctx, rec, 128 + libc::SIGTERM);
        }
    }
    let _ = ctx.nsrun().args(["kill", &rec.id, "KILL"]).output();
    crate::events::container(ctx, rec, "kill", &[("signal", "9".into())]);
    if !wait_gone(rec, Duration::from_secs(10)) {
        return fail(format!("container {} did not die after SIGKILL", rec.id));
    }
    settle(ctx, rec, 128 + libc::SIGKILL)
}

fn wait_gone(rec: &Record, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        if !records::alive(rec.pid, rec.pid_start_time) || zombie(rec.pid) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Dead but not reaped (state Z): as good as gone for a stop or kill.
fn zombie(pid: u32) -> bool {
    ctrstate::procfs::stat(pid).is_some_and(|s| s.state == 'Z')
}

/// After the process died: give its supervisor a moment to record the exit;
/// if the supervisor is gone, record `guess` and release resources here.
fn settle(ctx: &Ctx, rec: &Record, guess: i32) -> Result<()> {
    if wait_exit(ctx, rec, Some(Duration::from_secs(5)), false).is_some() {
        return Ok(());
    }
    let _ = teardown::stop_teardown(ctx, &rec.id);
    records::update(
        ctx,
        &rec.id,
        &RecordPatch {
            status: Some(Status::Exited),
            network: Some(None),
            exit_code: Some(guess),
            finished_at: Some(ctrstate::time::now_rfc3339()),
            pid: Some(0),
            ..Default::default()
        },
    )?;
    Ok(())
}

/// Polls the record until it says exited; None on timeout, or when nobody is
/// left to record the exit (no live supervisor and no live process).
/// `first_exit` (`wait`): an exit its restart policy follows with a restart
/// counts too, as docker's wait returns when the container exits; a
/// container in its backoff already is waited for until its next exit.
fn wait_exit(ctx: &Ctx, rec: &Record, limit: Option<Duration>, first_exit: bool) -> Option<i32> {
    let until = limit.map(|l| Instant::now() + l);
    loop {
        let cur = records::peek(ctx, &rec.id)?;
        if matches!(cur.status, Status::Exited | Status::Dead) {
            return Some(cur.exit_code);
        }
        if first_exit {
            // Restarting since we looked, or again after a relaunch (the
            // backoff is 100 ms or more: the 20 ms polls see it).
            let again = cur.restart_count > rec.restart_count;
            if cur.status == Status::Restarting && (rec.status != Status::Restarting || again) {
                return Some(cur.exit_code);
            }
        }
        // (a supervisor orphaned to a pid 1 that never reaps stays a zombie)
        let supervised = cur
            .supervisor_pid
            .is_some_and(|p| ctrstate::procfs::stat(p).is_some_and(|st| st.state != 'Z'));
        if !supervised && (!records::alive(cur.pid, cur.pid_start_time) || zombie(cur.pid)) {
            if cur.status == Status::Created && cur.pid == 0 {
                // Never started: nothing to wait for.
                return Some(cur.exit_code);
            }
            return None;
        }
        if until.is_some_and(|u| Instant::now() >= u) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exited_unreaped_child_is_a_zombie_until_reaped() {
        assert!(!zombie(std::process::id()));
        assert!(!zombie(0));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let until = Instant::now() + Duration::from_secs(10);
        while !zombie(pid) {
            assert!(Instant::now() < until, "pid {pid} never became a zombie");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait().unwrap();
        // (reaped: gone, barring a recycled pid that is a zombie already)
        assert!(!zombie(pid));
    }
}
