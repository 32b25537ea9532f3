//! A runner for tests without root: it records each step (a call as the
//! printed script has it) and fails at the step it is told to.

use super::build::Plan;
use super::print::shell;
use super::runner::Runner;
use super::step::{Action, Mounted, Output, Outputs, Step, StepId};
use crate::error::{Error, Result};

#[derive(Default)]
pub struct Fake {
    /// What ran, in order: a call's shell line, or a local step's name.
    pub log: Vec<String>,
    /// The step ids started, in order.
    pub started: Vec<StepId>,
    /// Fail this step (its call is logged first, as a real failure is).
    pub fail: Option<StepId>,
    /// ("start" | "finish", step), in order: what ran side by side.
    pub events: Vec<(&'static str, StepId)>,
}

impl Fake {
    pub fn failing(at: StepId) -> Fake {
        Fake {
            fail: Some(at),
            ..Default::default()
        }
    }
    /// Only the tool calls of the log.
    pub fn calls(&self) -> Vec<String> {
        self.log
            .iter()
            .filter(|l| !l.starts_with('<'))
            .cloned()
            .collect()
    }
}

impl Fake {
    /// How a step shows in the log.
    pub fn line(step: &Step) -> String {
        match &step.action {
            Action::Call(c) => shell(c),
            Action::EnsureNetwork(n) => format!("<network {n}>"),
            Action::EtcFiles => "<etc files>".into(),
            Action::Config => "<config.json>".into(),
            Action::Leave(n) => format!("<leave {n}>"),
        }
    }
}

impl Runner for Fake {
    type Pending = Result<Output>;

    fn start(&mut self, _: &Plan, step: &Step, _: &Outputs) -> Result<Result<Output>> {
        self.started.push(step.id.clone());
        self.events.push(("start", step.id.clone()));
        self.log.push(Fake::line(step));
        if self.fail.as_ref() == Some(&step.id) {
            return Ok(Err(Error::Daemon(format!(
                "injected failure at {:?}",
                step.id
            ))));
        }
        Ok(Ok(match &step.id {
            StepId::Reserve => {
                let mut r: ctrstate::record::Record =
                    serde_json::from_value(serde_json::json!({})).expect("defaults");
                r.id = "f".repeat(64);
                Output::Record(Box::new(r))
            }
            StepId::Mount => Output::Mounted(Mounted {
                rootfs: "/fake/rootfs".into(),
            }),
            StepId::Netns => Output::Netns("/fake/netns".into()),
            StepId::Connect(_) => Output::Cni(Default::default()),
            _ => Output::Done,
        }))
    }

    fn finish(&mut self, step: &Step, p: Result<Output>) -> Result<Output> {
        self.events.push(("finish", step.id.clone()));
        p
    }
}
