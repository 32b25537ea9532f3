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
//! 125 on a bad flag. `MYDOCKER_LOG=debug` prints every tool call with its
//! JSON; `run --print-pipeline` prints the run as a script of tool calls.
//!
//! `system service` serves the Docker Engine API (1.41) on a unix socket
//! over the same store, for the docker CLI and the SDKs (see `api`).

pub mod api;
pub mod cli;
pub mod context;
pub mod control;
pub mod error;
pub mod exec;
pub mod humanize;
pub mod images;
pub mod inspect;
pub mod launch;
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
    if !matches!(cli.cmd, Cmd::Load(_) | Cmd::Images(_)) {
        records::reconcile(&ctx);
    }
    let is_run = matches!(cli.cmd, Cmd::Run(_));
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
        Cmd::Inspect(a) => inspect::inspect(&ctx, &a.containers),
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
        Cmd::History { image } => images::history(&ctx, image),
        Cmd::Image(cli::ImageCmd::Ls(a)) => images::images(&ctx, a),
        Cmd::Image(cli::ImageCmd::Prune { all, .. }) => images::prune(&ctx, *all),
        Cmd::System(cli::SystemCmd::Df) => images::system_df(&ctx),
        Cmd::System(cli::SystemCmd::Service(a)) => api::serve(Ctx::new(&cli.root), a),
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
