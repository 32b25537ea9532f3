//! The plans, built without any I/O: the launch of a container and the
//! teardown of one. The undo steps are the teardown's own steps, so a
//! failed launch, `stop`, `rm -f`, `--rm` and the reconcile pass release
//! things the same way.

use super::step::{json_ref, Action, Ref, Step, StepId};
use crate::context::Ctx;
use crate::network::{self, Mode};
use crate::runconfig::RunConfig;
use ctrstate::record::{Record, Status};
use ctrstate::RecordPatch;
use serde_json::{json, Value};

/// An ordered list of steps; `cfg` is what the local steps (the /etc
/// files, config.json) are built from.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub cfg: RunConfig,
    /// `--network container:X`: X's hostname and /etc files, found at
    /// launch (`nsjoin::at_launch`); the EtcFiles step binds them.
    pub join: Option<crate::nsjoin::NetJoin>,
}

/// What a teardown keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The writable layer and the record (a stopped container).
    Layer,
    /// Nothing (`rm`, `--rm`).
    Nothing,
}

/// How the container is networked, as the plan sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum NetMode {
    /// A namespace with only lo (nsrun makes it).
    None,
    /// The host's namespace.
    Host,
    /// A netns file of its own, joined to these networks in order (eth0, eth1, ...).
    Networks(Vec<String>),
    /// `--network container:X`: X's namespace (config.json's path, from
    /// `nsjoin`), so no Netns or Connect steps of its own.
    Container(String),
}

impl NetMode {
    pub fn of(cfg: &RunConfig) -> NetMode {
        if let Some(t) = crate::nsjoin::net_target(&cfg.network) {
            return NetMode::Container(t.to_string());
        }
        match network::parse_mode(&cfg.network) {
            Mode::None => NetMode::None,
            Mode::Host => NetMode::Host,
            Mode::Named(n) => NetMode::Networks(vec![n]),
        }
    }
    pub fn networks(&self) -> &[String] {
        match self {
            NetMode::Networks(n) => n,
            _ => &[],
        }
    }
}

impl Plan {
    /// The run of a container: from `ctrstate create` to running. A
    /// `start` of an existing record runs it `without(Reserve)`.
    pub fn launch(ctx: &Ctx, cfg: &RunConfig, name: &str) -> Plan {
        Plan::launch_on(ctx, cfg, name, &NetMode::of(cfg))
    }

    /// The launch on the networks of `mode` (docker takes several
    /// `--network`s; the first gets `-p` and the addresses).
    pub fn launch_on(ctx: &Ctx, cfg: &RunConfig, name: &str, mode: &NetMode) -> Plan {
        Plan::launch_as(ctx, cfg, name, mode, Status::Created)
    }

    /// The relaunch of container `cfg` by its restart policy (no Reserve):
    /// the record stays `restarting` until it runs, as docker's, instead
    /// of passing through `created`.
    pub fn relaunch(ctx: &Ctx, cfg: &RunConfig) -> Plan {
        Plan::launch_as(ctx, cfg, "", &NetMode::of(cfg), Status::Restarting)
            .without(&StepId::Reserve)
    }

    /// The launch, the record `launching` (created, or restarting) until
    /// the Running step.
    fn launch_as(
        ctx: &Ctx,
        cfg: &RunConfig,
        name: &str,
        mode: &NetMode,
        launching: Status,
    ) -> Plan {
        let id = &Ref::Id.token();
        let dir = ctx.container_dir(id);
        let nets = mode.networks();
        let mut steps = vec![];

        let record_in = json!({
            "name": name,
            "image": cfg.image,
            "imageId": cfg.image_id,
            "command": cfg.args(),
            "config": serde_json::to_value(cfg).expect("json"),
        });
        // The record's dir lists the volumes it uses: it goes first.
        let mut forget = vec![self::forget(ctx, id)];
        for m in cfg.mounts.iter().filter(|m| m.anonymous) {
            forget.push(
                Step::call(
                    StepId::VolumeRm(m.source.clone()),
                    ctx.layerfs().args(["volume", "rm", &m.source]),
                )
                .needs(&[StepId::Forget]),
            );
        }
        steps.push(
            Step::call(
                StepId::Reserve,
                ctx.ctrstate().arg("create").stdin_json(&record_in),
            )
            .undo(forget),
        );

        // 1 (launch.rs): the launch and its networks, before any of them.
        let joined: serde_json::Map<String, Value> =
            nets.iter().map(|n| (n.clone(), json!({}))).collect();
        let mut p = RecordPatch {
            status: Some(launching),
            pid: Some(0),
            pid_start_time: Some(0),
            network: Some(Some(json!({ "Networks": joined }))),
            error: Some(None),
            ..Default::default()
        }
        .to_json();
        p["supervisorPid"] = json_ref(Ref::SupervisorPid);
        steps.push(update(ctx, StepId::Launching, &p).needs(&[StepId::Reserve]));

        for n in nets {
            steps.push(
                Step::new(StepId::Network(n.clone()), Action::EnsureNetwork(n.clone()))
                    .needs(&[StepId::Launching]),
            );
        }
        steps.push(
            Step::call(
                StepId::Mount,
                ctx.layerfs().args(["mount", &cfg.image_id, id]),
            )
            .needs(&[StepId::Launching])
            .partial()
            .undo(vec![umount(ctx, id, Keep::Layer)]),
        );
        let mut config_needs = vec![StepId::Mount, StepId::EtcFiles];
        if !cfg.mounts.is_empty() {
            // Volumes are seeded from the image through the container's mount.
            steps.push(
                Step::call(
                    StepId::Volumes,
                    ctx.layerfs()
                        .args(["volume", "resolve", id])
                        .stdin_json(&json!(cfg.mounts)),
                )
                .needs(&[StepId::Launching, StepId::Mount]),
            );
            config_needs.push(StepId::Volumes);
        }
        let mut etc_needs = vec![StepId::Launching];
        if !nets.is_empty() {
            steps.push(
                Step::call(
                    StepId::Netns,
                    ctx.netbr()
                        .args(["netns", "add", id, "--dir"])
                        .arg(ctx.run.join("netns")),
                )
                .needs(&[StepId::Launching])
                .partial()
                .undo(vec![netns_del(ctx, id)]),
            );
            config_needs.push(StepId::Netns);
            for (i, n) in nets.iter().enumerate() {
                let ifname = format!("eth{i}");
                let mut call = ctx.netbr().args(["connect", n, id, "--netns"]);
                call = call.arg(Ref::Netns.token());
                if i > 0 {
                    call = call.args(["--ifname", &ifname]);
                } else {
                    // -p and the addresses belong to the first network.
                    call = call.args(["--publish", &serde_json::to_string(&cfg.ports).unwrap()]);
                    if let Some(ip) = cfg.net.ip {
                        call = call.args(["--ip", &ip.to_string()]);
                    }
                    if let Some(ip) = cfg.net.ip6 {
                        call = call.args(["--ip6", &ip.to_string()]);
                    }
                    if let Some(mac) = &cfg.net.mac {
                        call = call.args(["--mac", mac]);
                    }
                }
                steps.push(
                    Step::call(StepId::Connect(n.clone()), call)
                        .needs(&[StepId::Network(n.clone()), StepId::Netns])
                        .partial()
                        .undo(vec![disconnect(ctx, id, n, &ifname)]),
                );
                etc_needs.push(StepId::Connect(n.clone()));
            }
        }
        steps.push(
            Step::new(StepId::EtcFiles, Action::EtcFiles)
                .needs(&etc_needs)
                .partial()
                .undo(
                    nets.iter()
                        .filter(|n| crate::names::named(n))
                        .map(|n| leave(n))
                        .collect(),
                ),
        );
        steps.push(Step::new(StepId::Config, Action::Config).needs(&config_needs));

        let mut create = ctx
            .nsrun()
            .args(["create", "--bundle"])
            .arg(&dir)
            .arg("--pid-file")
            .arg(dir.join("init.pid"));
        if cfg.tty {
            create = create
                .arg("--console-socket")
                .arg(console_socket(ctx, &Ref::ShortId.token()));
        }
        steps.push(
            Step::call(StepId::Create, create.arg(id))
                .needs(&[StepId::Config])
                .partial()
                .undo(vec![delete(ctx, id)]),
        );

        // 4 (launch.rs): the pid, still created, before the command runs.
        let mut p = RecordPatch {
            mounts: Some(array(crate::volumes::docker_mounts(ctx, &cfg.mounts))),
            ports: Some(array(json!(cfg.ports))),
            status: Some(launching),
            finished_at: Some(ctrstate::time::ZERO_TIME.into()),
            exit_code: Some(0),
            oom_killed: Some(false),
            error: Some(None),
            ..Default::default()
        }
        .to_json();
        p["pid"] = json_ref(Ref::Pid);
        p["pidStartTime"] = json_ref(Ref::PidStartTime);
        p["supervisorPid"] = json_ref(Ref::SupervisorPid);
        p["network"] = json_ref(Ref::Settings);
        let mut recorded_needs = vec![StepId::Create];
        recorded_needs.extend(nets.iter().map(|n| StepId::Connect(n.clone())));
        steps.push(update(ctx, StepId::Recorded, &p).needs(&recorded_needs));
        steps.push(
            Step::call(StepId::Start, ctx.nsrun().args(["start", id])).needs(&[StepId::Recorded]),
        );
        let mut p = RecordPatch {
            status: Some(Status::Running),
            ..Default::default()
        }
        .to_json();
        p["startedAt"] = json_ref(Ref::Now);
        steps.push(update(ctx, StepId::Running, &p).needs(&[StepId::Start]));
        Plan {
            steps,
            cfg: cfg.clone(),
            join: None,
        }
    }

    /// Releases what container `id` holds once its process is gone, by id
    /// alone and from its record (every network it is on, `network
    /// connect`ed ones too). Every step is idempotent; with
    /// `Keep::Nothing` the record goes last, and only when every release
    /// succeeded, so `rm -f` again can redo them.
    pub fn teardown(ctx: &Ctx, id: &str, rec: Option<&Record>, keep: Keep) -> Plan {
        let mut steps = vec![delete(ctx, id), umount(ctx, id, keep)];
        let settings = rec.map(|r| r.network.clone()).unwrap_or(Value::Null);
        let nets: Vec<(String, String)> = settings["Networks"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(n, e)| {
                let ifname = e["IfName"].as_str().unwrap_or("eth0").to_string();
                (n.clone(), ifname)
            })
            .collect();
        for (n, _) in nets.iter().filter(|(n, _)| crate::names::named(n)) {
            steps.push(leave(n));
        }
        for (n, ifname) in &nets {
            steps.push(disconnect(ctx, id, n, ifname));
        }
        // `--network none|host` made no netns file (an empty Networks says
        // so); a record without settings (a crash before they were
        // written) may have one.
        if !settings["Networks"]
            .as_object()
            .is_some_and(|n| n.is_empty())
        {
            let after: Vec<StepId> = nets
                .iter()
                .map(|(n, _)| StepId::Disconnect(n.clone()))
                .collect();
            steps.push(netns_del(ctx, id).needs(&after));
        }
        if keep == Keep::Nothing {
            let all: Vec<StepId> = steps.iter().map(|s| s.id.clone()).collect();
            let mut f = forget(ctx, id).needs(&all);
            f.only_if_ok = true;
            steps.push(f);
        }
        Plan {
            steps,
            cfg: rec
                .and_then(|r| serde_json::from_value(Value::Object(r.config.clone())).ok())
                .unwrap_or_default(),
            join: None,
        }
    }

    /// The plan without `id` (a `start` has its record already).
    pub fn without(mut self, id: &StepId) -> Plan {
        self.steps.retain(|s| &s.id != id);
        for s in &mut self.steps {
            s.needs.retain(|n| n != id);
        }
        self
    }

    /// Just the step `id` (the Reserve of a `run`, before it forks).
    pub fn only(mut self, id: &StepId) -> Plan {
        self.steps.retain(|s| &s.id == id);
        self
    }

    /// The undo of step `id` as a plan of its own.
    pub fn undo_of(&self, id: &StepId) -> Plan {
        Plan {
            steps: self
                .steps
                .iter()
                .filter(|s| &s.id == id)
                .flat_map(|s| s.undo.clone())
                .collect(),
            cfg: self.cfg.clone(),
            join: self.join.clone(),
        }
    }

    pub fn ids(&self) -> Vec<StepId> {
        self.steps.iter().map(|s| s.id.clone()).collect()
    }
}

/// The patch of a `start` whose launch failed (and undid its steps): not
/// running, and why.
pub fn failed_start(error: &str, exit_code: i32) -> RecordPatch {
    RecordPatch {
        // docker's: the container never ran, so it stays created, with
        // the code its start would have given.
        status: Some(Status::Created),
        exit_code: Some(exit_code),
        pid: Some(0),
        pid_start_time: Some(0),
        supervisor_pid: Some(None),
        error: Some(Some(error.to_string())),
        ..Default::default()
    }
}

/// Where nsrun sends a tty container's terminal.
pub fn console_socket(ctx: &Ctx, short_id: &str) -> std::path::PathBuf {
    ctx.run.join(format!("console-{short_id}.sock"))
}

fn update(ctx: &Ctx, id: StepId, patch: &Value) -> Step {
    Step::call(
        id,
        ctx.ctrstate()
            .args(["update", &Ref::Id.token()])
            .stdin_json(patch),
    )
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        _ => vec![],
    }
}

// The undo steps, shared by the launch (rollback) and the teardown.

fn delete(ctx: &Ctx, id: &str) -> Step {
    Step::call(StepId::Delete, ctx.nsrun().args(["delete", "--force", id]))
}

fn umount(ctx: &Ctx, id: &str, keep: Keep) -> Step {
    match keep {
        Keep::Layer => Step::call(StepId::Umount, ctx.layerfs().args(["umount", id])),
        Keep::Nothing => Step::call(StepId::Remove, ctx.layerfs().args(["remove", id])),
    }
}

fn leave(net: &str) -> Step {
    Step::new(StepId::Leave(net.into()), Action::Leave(net.into()))
}

/// CNI DEL of one interface; a network removed under us has nothing left to undo.
fn disconnect(ctx: &Ctx, id: &str, net: &str, ifname: &str) -> Step {
    Step::call(
        StepId::Disconnect(net.into()),
        ctx.netbr()
            .args(["disconnect", net, id, "--ifname", ifname, "--netns"])
            .arg(ctx.run.join("netns").join(id)),
    )
    .ok_if("not found")
}

fn netns_del(ctx: &Ctx, id: &str) -> Step {
    Step::call(
        StepId::NetnsDel,
        ctx.netbr()
            .args(["netns", "del", id, "--dir"])
            .arg(ctx.run.join("netns")),
    )
}

fn forget(ctx: &Ctx, id: &str) -> Step {
    Step::call(StepId::Forget, ctx.ctrstate().args(["rm", "--force", id]))
}
