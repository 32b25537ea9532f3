//! A foreground `run` is its container's supervisor from the start, so
//! the Launching patch (created, `supervisorPid`, the networks about to be
//! joined) can be part of the record `ctrstate create` writes: one
//! `ctrstate update` process (~2 ms) fewer per run. The order of launch.rs
//! holds: the record names the launch and its networks before anything is
//! taken. `run -d`, `create` and `start` keep both steps (the supervisor
//! that records itself is not the process that reserves).

use super::build::Plan;
use super::step::{Action, StepId};
use serde_json::Value;

impl Plan {
    /// The plan with Launching's patch merged into Reserve's record and
    /// the Launching step gone (what needed it needs the Reserve). A plan
    /// without both steps is returned as it is.
    pub fn folded(mut self) -> Plan {
        let find = |p: &Plan, id: &StepId| p.steps.iter().position(|s| &s.id == id);
        let (Some(r), Some(l)) = (
            find(&self, &StepId::Reserve),
            find(&self, &StepId::Launching),
        ) else {
            return self;
        };
        let stdin = |a: &Action| match a {
            Action::Call(c) => c
                .stdin()
                .and_then(|t| serde_json::from_str::<Value>(t).ok()),
            _ => None,
        };
        let (Some(Value::Object(mut record)), Some(Value::Object(patch))) =
            (stdin(&self.steps[r].action), stdin(&self.steps[l].action))
        else {
            return self;
        };
        // ctrstate create assigns the status (created, as the patch says)
        // and drops nulls (a patch's "no error").
        record.extend(
            patch
                .into_iter()
                .filter(|(k, v)| k != "status" && !v.is_null()),
        );
        if let Action::Call(c) = &mut self.steps[r].action {
            *c = c.clone().stdin_json(&Value::Object(record));
        }
        self.steps.remove(l);
        for s in &mut self.steps {
            if s.needs.contains(&StepId::Launching) {
                s.needs.retain(|n| n != &StepId::Launching);
                if !s.needs.contains(&StepId::Reserve) {
                    s.needs.push(StepId::Reserve);
                }
            }
        }
        self
    }
}
