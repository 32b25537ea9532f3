//! mydocker: the docker command line over the tools. It validates the
//! user's flags, then runs `ctrstate`, `layerfs`, `netbr` (which runs
//! `ipam`), `cgctl` and `nsrun` as processes, the way a person could at a
//! shell (one plan of steps, `plan`, run by `launch` and undone by
//! `teardown`), and
//! supervises each container as its parent (`supervise`).
//!
//! Exit codes are docker's: `run` exits 125 when mydocker itself fails
//! (unknown image, taken name, bad flag), 126 when the command cannot be
//! invoked, 127 when it is not found, otherwise with the container's status
//! (128+N after signal N). Other commands exit 1 when an operation fails and
//! 125 on a bad flag. `--format` (ps, images, inspect, network ls, volume
//! ls, version, info) takes docker's Go templates (`gotmpl`); a template
//! that does not parse or names an unknown field exits 1 with Go's
//! `template: ...` message, as docker does (`history`, `stats`, `network
//! inspect -f`, `volume inspect -f` and `events` take `--format` too).
//! `logs --details` prints the `--log-opt labels/env` attributes;
//! `container`, `image` and `volume prune` take docker's `--filter`s
//! (`volume prune` removes anonymous volumes only, unless `-a`); `exec`
//! journals `exec_create`, `exec_start` and `exec_die`. `cp CTR:/dir/.`
//! (and `cp dir/. CTR:/x`) copies the dir's contents. `cp` and `diff` go through layerfs (`cpdiff`): container paths
//! are resolved inside the container's rootfs, never through a symlink
//! out of it. `image prune` asks unless `-f` (a closed stdin is no).
//! Image references are docker's (`docker.io/library/x` = `x`). A detached container (`run -d`, `start`)
//! is watched by `mydocker-supervisor` (the `supervisor` crate), exec'd in
//! the launching process once the container runs: it keeps the json-file
//! log and the health-check timer, and execs the hidden `mydocker _exited`
//! when the container exits, which records it and carries out `--restart`
//! (`_restart` after the backoff, the record `restarting` meanwhile); a
//! `stop` ends it. `--network/--pid/--ipc container:X` and
//! `--volumes-from` take from another container (`nsjoin`); `attach`
//! reaches a detached container through its supervisor's `attach.sock`
//! (`attach`). No registry is reachable: `--pull always`, and an absent
//! image without `--pull never`, fail saying so. `MYDOCKER_LOG=debug` prints every tool call with its
//! JSON; `run --print-pipeline` prints the run as a script of tool calls.
//!
//! Events: ctrstate appends container events to `ROOT/events.jsonl` as
//! records change, mydocker appends image, network and volume events
//! (and `kill`, `stop`, `commit`); `events` reads and follows the file
//! (see `events` and `ctrstate::journal`). `network prune` and `system
//! prune` ask unless `-f` (`prune`). `cp` sees volumes and bind mounts.
//!
//! `completion SHELL` prints a completion script and the hidden `_man
//! DIR` writes man pages (`completion`; `scripts/setup.sh` installs them).
//!
//! `system boot` starts what docker's daemon would start when it starts
//! (`always`, `unless-stopped` not stopped by the user; `boot`), for a
//! boot unit to run (`scripts/mydocker-boot.service`). `top CTR [ps
//! OPTIONS]` runs the host's ps as docker does (`stats::top_table`, the
//! API's top too). `system prune` takes `--filter until=/label=`.
//!
//! `system service` serves the Docker Engine API (1.41) on a unix socket
//! over the same store, for the docker CLI and the SDKs (see `api`).
//!
//! # The run as one plan (module `plan`)
//!
//! `run`, `start`, `stop`, `rm -f`, `--rm` and the reconcile pass walk
//! one typed plan instead of hand-kept copies:
//!
//! - `plan::Step { id: StepId, action, needs, undo, partial, .. }`: a tool
//!   call (`tools::Call`) or one of the few local steps (EnsureNetwork,
//!   EtcFiles, Config, Leave). StepIds: Reserve, Launching, Network(net),
//!   Mount, Volumes, Netns, Connect(net), EtcFiles, Config, Create,
//!   Recorded, Start, Running; the undo/teardown ones Delete, Leave(net),
//!   Disconnect(net), NetnsDel, Umount, Remove, VolumeRm, Forget. An
//!   input known only after an earlier step is a `Ref` (Id, Rootfs,
//!   Netns, Pid, Settings, ...), a NUL-delimited token in the call's
//!   words that the runner fills. Outputs are the producers' types
//!   (ctrstate `Record`, layerfs' mount answer, cni-plugin's
//!   `CniResult`); record writes are `ctrstate::RecordPatch`es.
//! - `Plan::launch(&Ctx, &RunConfig, name)` and `Plan::teardown(&Ctx, id,
//!   Option<&Record>, Keep::Layer | Keep::Nothing)` are pure;
//!   `Plan::folded()` merges Launching's patch into the Reserve's record
//!   (a foreground `run` and `--print-pipeline`: one `ctrstate update`
//!   fewer; `run -d`, `create` and `start` keep both). The
//!   launch's undos are the teardown's steps (nsrun delete --force, names
//!   leave, CNI DEL per network, netns del, layerfs umount/remove,
//!   ctrstate rm): a failed launch, `stop`, `rm -f`, `--rm` and the
//!   reconcile pass release things the same way (`teardown.rs` runs the
//!   teardown plan from the record).
//! - `plan::runner::{launch, teardown}` walk a plan through a `Runner`: a
//!   step starts once its `needs` are done, so independent ones run side
//!   by side (the rootfs mount beside the netns and CNI ADD; nsrun delete
//!   beside layerfs umount and the network undo). A failure stops the
//!   launch; every step done is then undone in reverse plan order, one at
//!   a time (the failed step too when it may have done part of its work:
//!   mount, netns, connect, /etc files, create). Runners: `Real` spawns
//!   the tools (Create gets the container's stdio, `launch::create`);
//!   `print::Print` writes the script of `--print-pipeline` (refs become
//!   shell variables captured from each tool's one-line JSON); `fake::Fake`
//!   records the calls and fails at a chosen step, for the unit tests in
//!   `plan/tests.rs` (no root: the steps per flag set, rollback at every
//!   step, printed calls == run calls, teardown plans, what runs side by
//!   side).
//! - `run` runs the plan's Reserve in the CLI and the rest in the
//!   container's supervisor (`launch::launch`); a failed `run` then runs
//!   the Reserve's undo (the record, then its anonymous volumes).
//! - Still open: `--network container:X` (a `NetMode` with no Netns or
//!   Connect step, Config joining X's namespace); several `--network`s
//!   (`Plan::launch_on` builds them; the CLI takes one).

pub mod api;
pub mod attach;
pub mod boot;
pub mod cli;
pub mod cmds;
pub mod completion;
pub mod context;
pub mod control;
pub mod cpdiff;
pub mod error;
pub mod events;
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
pub mod nsjoin;
pub mod plan;
pub mod prune;
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
            | Cmd::Completion { .. }
            | Cmd::Man { .. }
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
        Cmd::Top(a) => stats::top(&ctx, &a.container, &a.ps_options),
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
        Cmd::Image(cli::ImageCmd::Prune { all, force, filter }) => {
            images::prune(&ctx, *all, *force, filter)
        }
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
        Cmd::Container(cli::ContainerCmd::Prune { force, filter }) => {
            prune::container_cmd(&ctx, *force, filter)
        }
        Cmd::System(cli::SystemCmd::Service(a)) => api::serve(Ctx::new(&cli.root), a),
        Cmd::Attach(a) => attach::attach(&ctx, a),
        Cmd::Events(a) => events::events(&ctx, a),
        Cmd::System(cli::SystemCmd::Prune {
            all,
            force,
            volumes,
            filter,
        }) => prune::system(&ctx, *all, *force, *volumes, filter),
        Cmd::System(cli::SystemCmd::Boot) => boot::boot(&ctx),
        Cmd::Exited { delay_ms, id, code } => run::exited(&ctx, id, *code, *delay_ms),
        Cmd::RestartAfterBackoff { delay_ms, id } => {
            run::restart_after_backoff(&ctx, id, *delay_ms)
        }
        Cmd::Health { id } => health::check(&ctx, id),
        Cmd::Completion { .. } | Cmd::Man { .. } => {
            Ok(completion::standalone(&cli).unwrap_or(0).into())
        }
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
