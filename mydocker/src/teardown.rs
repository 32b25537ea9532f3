//! Undo of a container's pipeline once its process is gone: the stop
//! teardown (process state and cgroup, networks, rootfs mount) and the removal
//! (plus the writable layer and the record). Every step is idempotent.
//!
//! # Crash consistency: what is written first
//!
//! A SIGKILL of `stop`, `rm -f` or `start` (the CLI and every tool it runs)
//! at any moment leaves state the next command finishes:
//!
//! - `stop`/`kill` only signal: the exit is recorded by the container's
//!   supervisor (a separate process), or, when that is gone too, by the
//!   next command's reconcile pass (`records::reconcile`), which also runs
//!   the stop teardown below. The record says exited only after the
//!   process is dead.
//! - `rm -f`: the process is killed and its exit recorded first (as
//!   `stop`); then every resource is released by id alone (nsrun state and
//!   cgroup, rootfs mount and writable layer, CNI DEL of each network in
//!   the record, netns file); the record goes last, with `ctrstate rm`, and
//!   only when every release succeeded. So a record outlives its
//!   resources, and `rm -f` again redoes the releases. `ctrstate rm`
//!   removes the directory entry by entry: a kill there leaves a directory
//!   without `state.json`, which the reconcile pass finishes removing.
//! - `start`: the launch of `launch.rs` (its module doc): the record names
//!   the supervisor and the networks before anything is taken.
//!
//! The steps are `plan::Plan::teardown`'s, the same undo steps a failed
//! launch runs.

use crate::context::Ctx;
use crate::error::Error;
use crate::plan::{self, Keep, Outputs, Plan, Real};
use crate::runconfig::RunConfig;

/// Releases what a stopped container holds (process state, networks,
/// rootfs mount), keeping its writable layer and record. Idempotent;
/// errors are returned together so the caller can report them after
/// trying every step.
pub fn stop_teardown(ctx: &Ctx, id: &str) -> Vec<Error> {
    release(ctx, id, Keep::Layer)
}

/// Removes everything of a container: what it holds, its writable layer
/// (`layerfs remove` unmounts too), then, only when all that succeeded,
/// its record.
pub fn remove_teardown(ctx: &Ctx, id: &str) -> Vec<Error> {
    release(ctx, id, Keep::Nothing)
}

/// The teardown plan of `id`, from its record (the networks it is on),
/// run for real; its independent steps run side by side.
fn release(ctx: &Ctx, id: &str, keep: Keep) -> Vec<Error> {
    let rec = crate::records::peek(ctx, id);
    let p = Plan::teardown(ctx, id, rec.as_ref(), keep);
    plan::runner::teardown(&p, &mut Real::new(ctx), &mut Outputs::for_id(id))
}

/// Removes the volumes made for this container alone (`-v /path`).
pub fn remove_anonymous_volumes(ctx: &Ctx, cfg: &RunConfig) {
    for m in cfg.mounts.iter().filter(|m| m.anonymous) {
        let _ = ctx.layerfs().args(["volume", "rm", &m.source]).output();
    }
}
