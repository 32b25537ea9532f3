//! Running a plan: the walk (order, side by side, rollback) is the same
//! for every runner; a `Runner` does one step. `Real` runs the tools.

use super::build::{NetMode, Plan};
use super::step::{fill, Action, Output, Outputs, Ref, Step, StepId};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::launch;
use crate::network;
use crate::spec;
use crate::tools::Running;
use serde_json::{json, Value};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;

/// Does the steps of a plan: `start` begins one (it may still be running
/// when it returns), `finish` waits for it and gives its output.
pub trait Runner {
    type Pending;
    fn start(&mut self, plan: &Plan, step: &Step, out: &Outputs) -> Result<Self::Pending>;
    fn finish(&mut self, step: &Step, p: Self::Pending) -> Result<Output>;
}

/// Runs a launch plan: each step once its needs are done (so steps whose
/// needs are met run side by side), stopping at the first failure. Then
/// every step done is undone in reverse, and the failed ones too when a
/// failure can leave part of their work (`Step::partial`).
pub fn launch<R: Runner>(plan: &Plan, r: &mut R, out: &mut Outputs) -> Result<()> {
    let w = walk(plan, &plan.steps, r, out, true, true);
    let Some(e) = w.first_error else {
        return Ok(());
    };
    let mut undo: Vec<usize> = w.done;
    undo.extend(w.failed.iter().filter(|&&k| plan.steps[k].partial));
    undo.sort_unstable();
    let steps: Vec<Step> = undo
        .iter()
        .rev()
        .flat_map(|&k| plan.steps[k].undo.clone())
        .collect();
    // One at a time: a rollback is rare, and its order is the safe one.
    let _ = walk(plan, &steps, r, out, false, false);
    Err(e)
}

/// Runs every step of a teardown plan whatever fails (each is
/// idempotent); returns the errors.
pub fn teardown<R: Runner>(plan: &Plan, r: &mut R, out: &mut Outputs) -> Vec<Error> {
    walk(plan, &plan.steps, r, out, false, true).errors
}

struct Walk {
    /// Indices of the steps that succeeded, in the order they finished.
    done: Vec<usize>,
    failed: Vec<usize>,
    first_error: Option<Error>,
    errors: Vec<Error>,
}

fn walk<R: Runner>(
    plan: &Plan,
    steps: &[Step],
    r: &mut R,
    out: &mut Outputs,
    stop: bool,
    side_by_side: bool,
) -> Walk {
    let mut w = Walk {
        done: vec![],
        failed: vec![],
        first_error: None,
        errors: vec![],
    };
    let mut pending: Vec<(usize, R::Pending)> = vec![];
    for (k, s) in steps.iter().enumerate() {
        // Wait for what it needs (all of it for a step that runs only if
        // all went well).
        let mut i = 0;
        while i < pending.len() {
            let sid = &steps[pending[i].0].id;
            if !side_by_side || s.only_if_ok || s.needs.contains(sid) {
                let (j, p) = pending.remove(i);
                let res = r.finish(&steps[j], p);
                settle(&mut w, steps, out, j, res);
            } else {
                i += 1;
            }
        }
        if stop && w.first_error.is_some() {
            break;
        }
        if s.only_if_ok && w.first_error.is_some() {
            continue;
        }
        match r.start(plan, s, out) {
            Ok(p) => pending.push((k, p)),
            Err(e) => settle(&mut w, steps, out, k, Err(e)),
        }
    }
    for (j, p) in pending {
        let res = r.finish(&steps[j], p);
        settle(&mut w, steps, out, j, res);
    }
    if let Some(e) = w.first_error.take() {
        if stop {
            w.first_error = Some(e);
        } else {
            w.errors.insert(0, e);
        }
    }
    w
}

fn settle(w: &mut Walk, steps: &[Step], out: &mut Outputs, k: usize, res: Result<Output>) {
    let s = &steps[k];
    match res {
        Ok(o) => {
            out.put(&s.id, o);
            w.done.push(k);
        }
        Err(e) if s.ok_if.is_some_and(|m| e.to_string().contains(m)) => w.done.push(k),
        Err(e) => {
            w.failed.push(k);
            if w.first_error.is_none() {
                w.first_error = Some(e);
            } else {
                w.errors.push(e);
            }
        }
    }
}

/// Runs the steps for real: tool calls as processes (started, then
/// waited for), the local steps in this process.
pub struct Real<'a> {
    pub ctx: &'a Ctx,
    /// The container of the step under way (for its network events).
    id: Option<String>,
}

impl<'a> Real<'a> {
    pub fn new(ctx: &'a Ctx) -> Real<'a> {
        Real { ctx, id: None }
    }
}

pub enum Pending {
    Running(Running<'static>),
    Done(Result<Output>),
}

impl Real<'_> {
    /// The value of a reference now.
    fn value(&self, plan: &Plan, out: &Outputs, r: Ref) -> Option<Value> {
        let id = out.id.as_deref();
        Some(match r {
            Ref::Id => json!(id?),
            Ref::ShortId => json!(&id?[..12.min(id?.len())]),
            Ref::Rootfs => json!(out.rootfs.as_ref()?),
            Ref::Netns => json!(out.netns.as_ref()?),
            Ref::Pid => json!(out.launched.as_ref()?.pid),
            Ref::PidStartTime => {
                let pid = out.launched.as_ref()?.pid as u32;
                json!(ctrstate::procfs::pid_start_time(pid).unwrap_or(0))
            }
            Ref::Settings => settings(plan, out),
            Ref::SupervisorPid => json!(std::process::id()),
            Ref::Now => json!(ctrstate::time::now_rfc3339()),
        })
    }

    fn local(&mut self, plan: &Plan, step: &Step, out: &Outputs) -> Result<Output> {
        let ctx = self.ctx;
        let cfg = &plan.cfg;
        let id = out
            .id
            .as_deref()
            .ok_or_else(|| Error::Daemon("plan: no container id".into()))?;
        let hostname = match &plan.join {
            Some(j) => j.hostname.clone(),
            None => hostname(cfg, id),
        };
        match &step.action {
            Action::Call(_) => unreachable!("a call is not local"),
            Action::EnsureNetwork(n) => network::ensure(ctx, n).map(|()| Output::Done),
            Action::EtcFiles if plan.join.is_some() => Ok(Output::Files(
                plan.join.as_ref().expect("join").files.clone(),
            )),
            Action::EtcFiles => {
                let s = settings(plan, out);
                spec::write_etc_files(ctx, &ctx.container_dir(id), id, &hostname, cfg, &s)
                    .map(Output::Files)
            }
            Action::Config => {
                let rootfs = out
                    .rootfs
                    .as_ref()
                    .ok_or_else(|| Error::Daemon("plan: no rootfs".into()))?;
                let ids = spec::resolve_user(rootfs, &cfg.user)?;
                let config = spec::build(&spec::SpecInput {
                    id,
                    cfg,
                    rootfs,
                    hostname: &hostname,
                    ids,
                    files: out.files.clone(),
                    netns: out.netns.clone(),
                    host_network: NetMode::of(cfg) == NetMode::Host,
                    extra_mounts: out.mounts.clone(),
                })?;
                let p = ctx.container_dir(id).join("config.json");
                // 0600 from the start (the environment is in it): the
                // store is not walked to tighten it afterwards.
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&p)
                    .and_then(|mut f| f.write_all(&serde_json::to_vec(&config).expect("json")))
                    .map_err(|e| Error::Daemon(format!("write {}: {e}", p.display())))?;
                Ok(Output::Done)
            }
            Action::Leave(n) => crate::names::leave(ctx, n, id).map(|()| Output::Done),
        }
    }
}

impl Runner for Real<'_> {
    type Pending = Pending;

    fn start(&mut self, plan: &Plan, step: &Step, out: &Outputs) -> Result<Pending> {
        let Action::Call(call) = &step.action else {
            return Ok(Pending::Done(self.local(plan, step, out)));
        };
        self.id = out.id.clone();
        let call =
            call.map_words(&mut |w, json| fill(w, json, &mut |r| self.value(plan, out, r)))?;
        if step.id == StepId::Create {
            // The container's stdio and terminal are the supervisor's.
            let id = out.id.as_deref().unwrap_or_default();
            return Ok(Pending::Done(
                launch::create(self.ctx, &call, id, &plan.cfg).map(Output::Created),
            ));
        }
        Ok(Pending::Running(call.spawn_owned()?))
    }

    fn finish(&mut self, step: &Step, p: Pending) -> Result<Output> {
        let r = match p {
            Pending::Done(r) => return r,
            Pending::Running(r) => r,
        };
        let text = r.finish()?;
        if let StepId::Connect(n) | StepId::Disconnect(n) = &step.id {
            let action = match step.id {
                StepId::Connect(_) => "connect",
                _ => "disconnect",
            };
            network::net_event(self.ctx, action, n, self.id.as_deref());
        }
        let bad = |e: serde_json::Error| Error::Tool {
            tool: "mydocker".into(),
            step: format!("{:?}", step.id),
            msg: format!("bad output: {e}"),
        };
        Ok(match &step.id {
            StepId::Reserve => Output::Record(Box::new(serde_json::from_str(&text).map_err(bad)?)),
            StepId::Mount => Output::Mounted(serde_json::from_str(&text).map_err(bad)?),
            StepId::Volumes => Output::Mounts(serde_json::from_str(&text).map_err(bad)?),
            StepId::Netns => {
                #[derive(serde::Deserialize)]
                struct Path {
                    path: String,
                }
                Output::Netns(serde_json::from_str::<Path>(&text).map_err(bad)?.path)
            }
            StepId::Connect(_) => Output::Cni(serde_json::from_str(&text).map_err(bad)?),
            _ => Output::Done,
        })
    }
}

/// The container's hostname: `--hostname` or its short id.
pub fn hostname(cfg: &crate::runconfig::RunConfig, id: &str) -> String {
    if cfg.hostname.is_empty() {
        id[..12.min(id.len())].to_string()
    } else {
        cfg.hostname.clone()
    }
}

/// docker's NetworkSettings from the CNI results so far.
fn settings(plan: &Plan, out: &Outputs) -> Value {
    network::settings(&out.cni, out.netns.as_deref().unwrap_or(""), &plan.cfg)
}
