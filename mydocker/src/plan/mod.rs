//! The run of a container as one plan: an ordered list of typed steps,
//! each a tool call (or a local step: the /etc files, config.json) with
//! its undo and what it needs first (`step`); the launch and teardown
//! plans, built without I/O (`build`); the walk that runs a plan through
//! a runner, side by side where the needs allow, undoing on failure
//! (`runner`, with `Real`); a foreground run's Launching folded into its
//! Reserve (`fold`); the same plan printed as a shell script for
//! `--print-pipeline` (`print`); and a recording runner for tests (`fake`).

pub mod build;
pub mod fake;
mod fold;
pub mod print;
pub mod runner;
pub mod step;

pub use build::{Keep, NetMode, Plan};
pub use runner::{Real, Runner};
pub use step::{Action, Output, Outputs, Ref, Step, StepId};

#[cfg(test)]
mod tests;
