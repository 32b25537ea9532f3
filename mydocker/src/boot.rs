//! `mydocker system boot`: what docker's daemon does for restart policies
//! when it starts, for a runtime without a daemon. A boot unit
//! (`scripts/mydocker-boot.service`) runs it once the host is up.
//!
//! The reconcile pass (`records::reconcile`, run before every command)
//! has already turned the records of processes the reboot took into
//! exited ones and released what they held. Then every container whose
//! policy says so is started through `run::start` (so its detached
//! supervisor watches it, as after `mydocker start`): `always`, and
//! `unless-stopped` unless the user stopped it (`run::stop_marker`, left
//! by `stop`); never `on-failure` or `no` (docker's documented rule), and
//! never a container that was created but never started (one that ran
//! before and whose last start failed is tried again). Its restart
//! count starts over, as docker's start does. Running ones are left
//! alone, so a second pass starts nothing. One container failing does not
//! stop the others; the pass exits 1 naming them. Exited `--rm`
//! containers are removed, as docker's daemon removes them at start.

use crate::context::Ctx;
use crate::error::{fail, Result};
use crate::records;
use crate::runconfig::RunConfig;
use ctrstate::record::{Record, Status};

/// What the pass does with one container.
#[derive(Debug, PartialEq)]
enum Action {
    Leave,
    Start,
    Remove,
}

/// docker's choice at daemon start (moby's restore: a stopped container
/// that was started before and whose policy restarts it, or an
/// auto-remove one to delete).
fn action(rec: &Record, cfg: &RunConfig, stopped_by_user: bool) -> Action {
    // A start that failed leaves the record created (with its start time
    // from before); one being launched right now has a live supervisor.
    let launching = rec.supervisor_pid.is_some_and(|p| records::alive(p, 0));
    let stopped = match rec.status {
        Status::Exited => true,
        Status::Created => !launching,
        _ => false,
    };
    if !stopped {
        return Action::Leave;
    }
    if cfg.auto_remove && rec.status == Status::Exited {
        return Action::Remove;
    }
    if ctrstate::time::is_zero(&rec.started_at) {
        return Action::Leave;
    }
    match cfg.extra.restart.name.as_str() {
        "always" => Action::Start,
        "unless-stopped" if !stopped_by_user => Action::Start,
        _ => Action::Leave,
    }
}

/// `mydocker system boot`: prints the name of each container it started.
pub fn boot(ctx: &Ctx) -> Result<i32> {
    records::reconcile(ctx);
    let mut failed = vec![];
    // Oldest first, as they were created.
    for rec in records::list(ctx)?.into_iter().rev() {
        let Ok(cfg) =
            serde_json::from_value::<RunConfig>(serde_json::Value::Object(rec.config.clone()))
        else {
            eprintln!(
                "Error response from daemon: container {}: bad stored config",
                rec.name
            );
            failed.push(rec.name);
            continue;
        };
        let stopped = crate::run::stop_marker(ctx, &rec.id).exists();
        let res = match action(&rec, &cfg, stopped) {
            Action::Leave => continue,
            Action::Remove => {
                let errs = crate::teardown::remove_teardown(ctx, &rec.id);
                errs.into_iter().next().map_or(Ok(()), Err)
            }
            Action::Start => start(ctx, &rec),
        };
        if let Err(e) = res {
            eprintln!("Error response from daemon: {}: {e}", rec.name);
            failed.push(rec.name);
        }
    }
    if !failed.is_empty() {
        return fail(format!("failed to start containers: {}", failed.join(", ")));
    }
    Ok(0)
}

fn start(ctx: &Ctx, rec: &Record) -> Result<()> {
    // `start` resets RestartCount, as docker's daemon start does (prints the name, as `start NAME` does)
    let code = crate::run::start(ctx, std::slice::from_ref(&rec.name), false)?;
    if code != 0 {
        return fail(format!("start exited {code}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(status: Status, policy: &str, started: bool, rm: bool, stopped: bool) -> Action {
        let mut rec = Record {
            status,
            ..Default::default()
        };
        if started {
            rec.started_at = "2026-11-28T22:00:00Z".into();
        }
        let mut cfg = RunConfig {
            auto_remove: rm,
            ..Default::default()
        };
        cfg.extra.restart.name = policy.into();
        action(&rec, &cfg, stopped)
    }

    #[test]
    fn the_policies_decide_as_dockers_daemon_start() {
        use Action::*;
        assert_eq!(case(Status::Exited, "always", true, false, false), Start);
        // `always` comes back at a daemon start even after a manual stop.
        assert_eq!(case(Status::Exited, "always", true, false, true), Start);
        assert_eq!(
            case(Status::Exited, "unless-stopped", true, false, false),
            Start
        );
        assert_eq!(
            case(Status::Exited, "unless-stopped", true, false, true),
            Leave
        );
        assert_eq!(
            case(Status::Exited, "on-failure", true, false, false),
            Leave
        );
        assert_eq!(case(Status::Exited, "no", true, false, false), Leave);
        assert_eq!(case(Status::Exited, "", true, false, false), Leave);
        // Never started (created): left as it is.
        assert_eq!(case(Status::Exited, "always", false, false, false), Leave);
        assert_eq!(case(Status::Created, "always", false, false, false), Leave);
        assert_eq!(case(Status::Created, "always", false, true, false), Leave);
        // Started before, its last start failed: tried again.
        assert_eq!(case(Status::Created, "always", true, false, false), Start);
        // Running, or in its backoff with a live supervisor: left alone.
        assert_eq!(case(Status::Running, "always", true, false, false), Leave);
        assert_eq!(
            case(Status::Restarting, "always", true, false, false),
            Leave
        );
        assert_eq!(case(Status::Exited, "no", true, true, false), Remove);
    }
}
