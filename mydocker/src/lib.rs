//! mydocker: the docker command line over the tools. It validates the
//! user's flags, then runs `ctrstate`, `layerfs`, `netbr` (which runs
//! `ipam`), `cgctl` and `nsrun` as processes, the way a person could at a
//! shell (`launch` for the pipeline, `teardown` for its undo), and
//! supervises each container as its parent (`supervise`).
//!
//! Exit codes are docker's: `run` exits 125 when mydocker itself fails
//! (unknown image, taken name, bad flag), 126 when the command cannot be
//! invoked, 127 when it is not found, otherwise with the container's status
//! (128+N after signal N). Other commands exit 1 when an operation fails and
//! 125 on a bad flag. `--format` (ps, images, inspect, network ls, volume
//! ls, version, info) takes docker's Go templates (`gotmpl`); a template
//! that does not parse or names an unknown field exits 1 with Go's
//! `template: ...` message, as docker does (`history` takes `--format`
//! too). `cp` and `diff` go through layerfs (`cpdiff`): container paths
//! are resolved inside the container's rootfs, never through a symlink
//! out of it. `image prune` asks unless `-f` (a closed stdin is no).
//! Image references are docker's (`docker.io/library/x` = `x`). A detached container (`run -d`, `start`)
//! is watched by `mydocker-supervisor` (the `supervisor` crate), exec'd in
//! the launching process once the container runs: it keeps the json-file
//! log and the health-check timer, and execs the hidden `mydocker _exited`
//! when the container exits, which records it and carries out `--restart`
//! (`_restart` after the backoff, the record `restarting` meanwhile); a
//! `stop` ends it. `MYDOCKER_LOG=debug` prints every tool call with its
//! JSON; `run --print-pipeline` prints the run as a script of tool calls.
//!
//! `system service` serves the Docker Engine API (1.41) on a unix socket
//! over the same store, for the docker CLI and the SDKs (see `api`).
//!
//! # Next: the run as one plan (design note; not built yet)
//!
//! Today `launch` runs the steps, `pipeline` prints a hand-kept copy of
//! them, and undo lives in `launch::Undo`, `run::forget` and `teardown`.
//! The shape that replaces the three (module `plan`):
//!
//! - `Step { id: StepId, call: Call, needs: Vec<StepId>, undo: Option<Call> }`
//!   with `StepId` one of Reserve, Mount, Volumes, Netns, Connect(net),
//!   EtcFiles, Config, Create, Recorded, Start, Running. An input that
//!   depends on an earlier output names it (`Ref::Rootfs`, `Ref::Netns`,
//!   `Ref::Settings`) instead of holding a value; outputs are the
//!   producers' types (ctrstate `Record`, layerfs' mount answer, the CNI
//!   result); record writes are `ctrstate::RecordPatch`es.
//! - `Plan::launch(&Ctx, &RunConfig) -> Plan` and `Plan::teardown(id,
//!   &Record, Keep::Layer | Keep::Nothing) -> Plan` are pure (no I/O). The
//!   teardown plan is the launch plan's undos in reverse (nsrun delete
//!   --force, CNI DEL per network in the record, netns del, layerfs
//!   umount/remove, ctrstate rm), so failure at step k, `stop`, `rm -f`,
//!   `--rm` and the reconcile pass all walk the same undo list.
//! - `trait Runner { fn call(&mut self, step: &Step, refs: &Outputs) ->
//!   Result<Output> }`: `Real` spawns (steps whose `needs` are met run side
//!   by side: Mount with Netns, the teardown's undos; nsrun create gets the
//!   container's stdio from the supervisor); `Print` writes the shell
//!   script of `--print-pipeline` (refs become shell variables captured
//!   from each tool's one-line JSON, so the script cannot drift); `Fake`
//!   records calls and fails at step k, for unit tests without root:
//!   the steps for typical flag sets, rollback = undos of steps < k in
//!   reverse, printed calls == executed calls, the teardown plans.
//! - Needed first from code others own: `network::attach` split into its
//!   two calls plus a pure `settings(cni_result, cfg)`; `Deserialize` on
//!   layerfs' `mount::Mounted` (read here through a local twin for now).

pub mod api;
pub mod cli;
pub mod cmds;
pub mod context;
pub mod control;
pub mod cpdiff;
pub mod error;
pub mod exec;
pub mod gotmpl;
pub mod health;
pub mod humanize;
pub mod images;
pub mod inspect;
pub mod launch;
pub mod listings;
pub mod logfile;
pub mod logs;
pub mod names;
pub mod netargs;
pub mod network;
pub mod pipeline;
pub mod ps;
pub mod records;
pub mod resources;
pub mod run;
pub mod runconfig;
pub mod runflags;
pub mod seccomp;
pub mod security;
pub mod spec;
pub mod stats;
pub mod supervise;
pub mod teardown;
pub mod tools;
pub mod trim;
pub mod volumes;

use cli::{Cli, Cmd};
use context::Ctx;

/// Runs one command; returns the process exit code.
pub fn main_with(cli: Cli) -> u8 {
    let ctx = Ctx::new(&cli.root);
    // Crash recovery: a record claiming a process that is gone becomes exited.
    // (The supervisor's internal commands act on their own record only.)
    if !matches!(
        cli.cmd,
        Cmd::Load(_)
            | Cmd::Images(_)
            | Cmd::Version { .. }
            | Cmd::Exited { .. }
            | Cmd::RestartAfterBackoff { .. }
            | Cmd::Health { .. }
    ) {
        records::reconcile(&ctx);
    }
    let is_run = matches!(cli.cmd, Cmd::Run(_) | Cmd::Create(_));
    let r = match &cli.cmd {
        Cmd::Run(a) => run::run(&ctx, a),
        Cmd::Ps(a) => ps::ps(&ctx, a),
        Cmd::Logs(a) => logs::logs(&ctx, a),
        Cmd::Exec(a) => exec::exec(&ctx, a),
        Cmd::Stop(a) => control::stop(&ctx, a),
        Cmd::Kill(a) => control::kill(&ctx, a),
        Cmd::Start(a) => run::start(&ctx, &a.containers, a.attach),
        Cmd::Restart(a) => control::restart(&ctx, a),
        Cmd::Rm(a) => control::rm(&ctx, a),
        Cmd::Inspect(a) => inspect::inspect(&ctx, a),
        Cmd::Wait(a) => control::wait(&ctx, &a.containers),
        Cmd::Images(a) => images::images(&ctx, a),
        Cmd::Load(a) => images::load(&ctx, a),
        Cmd::Rmi(a) => images::rmi(&ctx, a),
        Cmd::Stats(a) => stats::stats(&ctx, a),
        Cmd::Pause(a) => stats::pause(&ctx, &a.containers, true),
        Cmd::Unpause(a) => stats::pause(&ctx, &a.containers, false),
        Cmd::Top(a) => stats::top(&ctx, &a.containers[0]),
        Cmd::Update(a) => stats::update(&ctx, a),
        Cmd::Network(a) => network::command(&ctx, a),
        Cmd::Volume(a) => volumes::command(&ctx, a),
        Cmd::Commit(a) => images::commit(&ctx, a),
        Cmd::Export(a) => images::export(&ctx, a),
        Cmd::Import(a) => images::import(&ctx, a),
        Cmd::Save(a) => images::save(&ctx, a),
        Cmd::Tag { source, target } => images::tag(&ctx, source, target),
        Cmd::History(a) => images::history(&ctx, a),
        Cmd::Cp(a) => cpdiff::cp(&ctx, a),
        Cmd::Diff { container } => cpdiff::diff(&ctx, container),
        Cmd::Image(cli::ImageCmd::Ls(a)) => images::images(&ctx, a),
        Cmd::Image(cli::ImageCmd::Prune { all, force }) => images::prune(&ctx, *all, *force),
        Cmd::System(cli::SystemCmd::Df) => images::system_df(&ctx),
        Cmd::Image(cli::ImageCmd::Inspect { format, images }) => {
            inspect::image_inspect(&ctx, images, format.as_deref())
        }
        Cmd::Create(a) => run::create(&ctx, a),
        Cmd::Rename {
            container,
            new_name,
        } => cmds::rename(&ctx, container, new_name),
        Cmd::Port { container, port } => cmds::port(&ctx, container, port.as_deref()),
        Cmd::Version { format } => cmds::version(format.as_deref()),
        Cmd::Info { format } => cmds::info(&ctx, format.as_deref()),
        Cmd::Container(cli::ContainerCmd::Ls(a)) => ps::ps(&ctx, a),
        Cmd::Container(cli::ContainerCmd::Inspect(a)) => inspect::inspect(&ctx, a),
        Cmd::Container(cli::ContainerCmd::Prune { force }) => cmds::container_prune(&ctx, *force),
        Cmd::System(cli::SystemCmd::Service(a)) => api::serve(Ctx::new(&cli.root), a),
        Cmd::Exited { delay_ms, id, code } => run::exited(&ctx, id, *code, *delay_ms),
        Cmd::RestartAfterBackoff { delay_ms, id } => {
            run::restart_after_backoff(&ctx, id, *delay_ms)
        }
        Cmd::Health { id } => health::check(&ctx, id),
    };
    match r {
        Ok(code) => code.clamp(0, 255) as u8,
        Err(e) => {
            if is_run {
                eprintln!("mydocker: {e}");
                e.exit_code()
            } else {
                eprintln!("Error response from daemon: {e}");
                1
            }
        }
    }
}
