//! The pieces of a plan: steps, their names, the references between them,
//! and the outputs a run of them collects.

use crate::error::{Error, Result};
use crate::launch::Launched;
use crate::tools::Call;
use ctrstate::record::Record;
use serde_json::Value;
use std::path::PathBuf;

/// The name of a step; one plan holds each at most once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StepId {
    /// `ctrstate create`: the id and the name.
    Reserve,
    /// `ctrstate update`: created, this supervisor, the networks about to
    /// be joined, before anything is taken (crash consistency, launch.rs).
    Launching,
    /// The named network exists (the default one is made on first use).
    Network(String),
    /// `layerfs mount`: the overlay rootfs.
    Mount,
    /// `layerfs volume resolve`: volumes, binds and tmpfs as OCI mounts.
    Volumes,
    /// `netbr netns add`: the network namespace file.
    Netns,
    /// `netbr connect` (CNI ADD) into one network.
    Connect(String),
    /// hostname, hosts, resolv.conf (and the names on user networks).
    EtcFiles,
    /// config.json.
    Config,
    /// `nsrun create` with the container's stdio.
    Create,
    /// `ctrstate update`: the init's pid, settings, ports, mounts.
    Recorded,
    /// `nsrun start`: the command runs.
    Start,
    /// `ctrstate update`: running.
    Running,
    // The undo steps (and the teardown plans).
    /// `nsrun delete --force` (kills what is left, removes the cgroup).
    Delete,
    /// The container's names endpoint on a user network goes.
    Leave(String),
    /// `netbr disconnect` (CNI DEL) from one network.
    Disconnect(String),
    /// `netbr netns del`.
    NetnsDel,
    /// `layerfs umount` (the writable layer stays).
    Umount,
    /// `layerfs remove` (unmounts too).
    Remove,
    /// `layerfs volume rm` of an anonymous volume.
    VolumeRm(String),
    /// `ctrstate rm --force`: the record goes.
    Forget,
}

/// A value known only once an earlier step ran. In a call's arguments and
/// stdin it stands as its token (a NUL-delimited word no real argument can
/// hold: argv cannot carry NUL, and JSON escapes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ref {
    /// The container id (Reserve).
    Id,
    /// Its first 12 characters.
    ShortId,
    /// The rootfs path (Mount).
    Rootfs,
    /// The netns file (Netns).
    Netns,
    /// The init's host pid (Create).
    Pid,
    /// The init's start time (Create).
    PidStartTime,
    /// docker's NetworkSettings, from the CNI results (Connect).
    Settings,
    /// The pid of the process running the plan (the supervisor).
    SupervisorPid,
    /// The time the step runs, RFC 3339.
    Now,
}

pub const REFS: [Ref; 9] = [
    Ref::Id,
    Ref::ShortId,
    Ref::Rootfs,
    Ref::Netns,
    Ref::Pid,
    Ref::PidStartTime,
    Ref::Settings,
    Ref::SupervisorPid,
    Ref::Now,
];

impl Ref {
    pub fn name(self) -> &'static str {
        match self {
            Ref::Id => "ID",
            Ref::ShortId => "H",
            Ref::Rootfs => "ROOTFS",
            Ref::Netns => "NETNS",
            Ref::Pid => "PID",
            Ref::PidStartTime => "PID_START",
            Ref::Settings => "SETTINGS",
            Ref::SupervisorPid => "SUPERVISOR",
            Ref::Now => "NOW",
        }
    }
    /// The word that stands for it in a call.
    pub fn token(self) -> String {
        format!("\0{}\0", self.name())
    }
    /// The token as it appears in JSON text.
    fn json_token(self) -> String {
        format!("\\u0000{}\\u0000", self.name())
    }
    /// Whether its value is JSON (a number or an object) rather than a string.
    pub fn is_json(self) -> bool {
        matches!(
            self,
            Ref::Pid | Ref::PidStartTime | Ref::Settings | Ref::SupervisorPid
        )
    }
    /// The step whose output it is (None: known before any step).
    pub fn producer(self) -> Option<StepId> {
        match self {
            Ref::Id | Ref::ShortId => Some(StepId::Reserve),
            Ref::Rootfs => Some(StepId::Mount),
            Ref::Netns => Some(StepId::Netns),
            Ref::Pid | Ref::PidStartTime => Some(StepId::Create),
            // Settings are made of every Connect's result: a step using
            // them needs all of the plan's Connects.
            Ref::Settings | Ref::SupervisorPid | Ref::Now => None,
        }
    }
}

/// A JSON value holding `r` (in a patch sent on a call's stdin).
pub fn json_ref(r: Ref) -> Value {
    Value::String(r.token())
}

/// Replaces the references in one argument (`json`: the call's stdin)
/// with what `value` gives for them; an unknown one is an error.
pub fn fill(word: &str, json: bool, value: &mut dyn FnMut(Ref) -> Option<Value>) -> Result<String> {
    if !(word.contains('\0') || json && word.contains("\\u0000")) {
        return Ok(word.to_string());
    }
    let mut s = word.to_string();
    for r in REFS {
        let (tok, quoted) = if json {
            (r.json_token(), format!("\"{}\"", r.json_token()))
        } else {
            (r.token(), String::new())
        };
        if !s.contains(&tok) {
            continue;
        }
        let v = value(r)
            .ok_or_else(|| Error::Daemon(format!("plan: {} is not known yet", r.name())))?;
        if json && r.is_json() {
            s = s.replace(&quoted, &v.to_string());
        } else {
            let text = match &v {
                Value::String(t) => t.clone(),
                v => v.to_string(),
            };
            let text = if json {
                // inside a JSON string: escaped, without its quotes
                let q = serde_json::to_string(&text).expect("json");
                q[1..q.len() - 1].to_string()
            } else {
                text
            };
            s = s.replace(&tok, &text);
        }
    }
    Ok(s)
}

/// The references a call uses.
pub fn refs_of(call: &Call) -> Vec<Ref> {
    let mut seen = vec![];
    let mut note = |w: &str, json: bool| -> Result<String> {
        for r in REFS {
            let tok = if json { r.json_token() } else { r.token() };
            if w.contains(&tok) && !seen.contains(&r) {
                seen.push(r);
            }
        }
        Ok(String::new())
    };
    let _ = call.map_words(&mut note);
    seen
}

/// What a step does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A tool call; its words may hold references.
    Call(Call),
    /// The network exists (the default one is made on first use).
    EnsureNetwork(String),
    /// Writes the /etc files and joins the names of user networks.
    EtcFiles,
    /// Builds config.json from the outputs so far and writes it.
    Config,
    /// Drops the container's names endpoint on a user network.
    Leave(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub id: StepId,
    pub action: Action,
    /// Steps that must be done before this one starts (the producers of
    /// its references, and what must be recorded first); steps whose
    /// needs are met may run side by side.
    pub needs: Vec<StepId>,
    /// What undoes it, in order; every undo is idempotent.
    pub undo: Vec<Step>,
    /// A failed run of it may have done part of its work: its own undo
    /// runs too when it fails.
    pub partial: bool,
    /// Runs only when every earlier step of the plan succeeded (the
    /// record goes last in a teardown).
    pub only_if_ok: bool,
    /// An error containing this counts as success (gone already).
    pub ok_if: Option<&'static str>,
}

impl Step {
    pub fn new(id: StepId, action: Action) -> Step {
        Step {
            id,
            action,
            needs: vec![],
            undo: vec![],
            partial: false,
            only_if_ok: false,
            ok_if: None,
        }
    }
    pub fn call(id: StepId, call: Call) -> Step {
        Step::new(id, Action::Call(call))
    }
    pub fn needs(mut self, n: &[StepId]) -> Step {
        self.needs.extend(n.iter().cloned());
        self
    }
    pub fn undo(mut self, u: Vec<Step>) -> Step {
        self.undo = u;
        self
    }
    pub fn partial(mut self) -> Step {
        self.partial = true;
        self
    }
    pub fn ok_if(mut self, s: &'static str) -> Step {
        self.ok_if = Some(s);
        self
    }
    /// The references its action uses.
    pub fn refs(&self) -> Vec<Ref> {
        match &self.action {
            Action::Call(c) => refs_of(c),
            Action::EnsureNetwork(_) => vec![],
            Action::EtcFiles => vec![Ref::Id, Ref::ShortId, Ref::Settings],
            Action::Config => vec![Ref::Id, Ref::ShortId, Ref::Rootfs],
            Action::Leave(_) => vec![Ref::Id],
        }
    }
}

/// What one step made, in its producer's type.
pub enum Output {
    Done,
    Record(Box<Record>),
    Mounted(Mounted),
    /// OCI mounts.
    Mounts(Vec<Value>),
    Netns(String),
    Cni(cni_plugin::CniResult),
    /// The /etc files as (host source, container target).
    Files(Vec<(String, String)>),
    Created(Launched),
}

/// What `layerfs mount` prints (layerfs' own `Mounted` is Serialize-only
/// and linking all of layerfs for it would pull its tar/zstd stack in).
#[derive(serde::Deserialize, Clone, Debug, PartialEq)]
pub struct Mounted {
    pub rootfs: PathBuf,
}

/// The outputs of the steps run so far.
#[derive(Default)]
pub struct Outputs {
    /// The container id: from Reserve, or given (a `start`).
    pub id: Option<String>,
    pub record: Option<Record>,
    pub rootfs: Option<PathBuf>,
    pub mounts: Vec<Value>,
    pub netns: Option<String>,
    /// CNI results, per network, in the order joined.
    pub cni: Vec<(String, cni_plugin::CniResult)>,
    pub files: Vec<(String, String)>,
    pub launched: Option<Launched>,
}

impl Outputs {
    /// The outputs of a plan run for an existing container.
    pub fn for_id(id: &str) -> Outputs {
        Outputs {
            id: Some(id.to_string()),
            ..Default::default()
        }
    }
    pub fn put(&mut self, id: &StepId, o: Output) {
        match o {
            Output::Done => {}
            Output::Record(r) => {
                self.id = Some(r.id.clone());
                self.record = Some(*r);
            }
            Output::Mounted(m) => self.rootfs = Some(m.rootfs),
            Output::Mounts(m) => self.mounts = m,
            Output::Netns(p) => self.netns = Some(p),
            Output::Cni(r) => {
                if let StepId::Connect(n) = id {
                    self.cni.push((n.clone(), r));
                }
            }
            Output::Files(f) => self.files = f,
            Output::Created(l) => self.launched = Some(l),
        }
    }
}
