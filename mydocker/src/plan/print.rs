//! `run --print-pipeline`: the plan walked by a runner that writes each
//! step as shell instead of doing it, so the script is the run's own list
//! of calls. References become shell variables, captured from the
//! one-line JSON of the tool that produces them.

use super::build::{Keep, NetMode, Plan};
use super::runner::{self, Runner};
use super::step::{Action, Output, Outputs, Ref, Step, StepId, REFS};
use crate::context::Ctx;
use crate::error::Result;
use crate::network;
use crate::runconfig::RunConfig;
use crate::spec;
use crate::tools::{shell_quote as q, Call};
use serde_json::json;

/// Placeholders in the printed config.json, replaced by sed with the
/// script's variables.
const PLACEHOLDERS: [(&str, Ref); 4] = [
    ("__ID__", Ref::Id),
    ("__HOSTNAME__", Ref::ShortId),
    ("__ROOTFS__", Ref::Rootfs),
    ("__NETNS__", Ref::Netns),
];

/// A call as one shell command line, its references as `"$VAR"`.
pub fn shell(call: &Call) -> String {
    let mut s = call.shell();
    for r in REFS {
        let var = format!("'\"${}\"'", r.name());
        s = s.replace(&r.token(), &var);
        let jt = format!("\\u0000{}\\u0000", r.name());
        if r.is_json() {
            s = s.replace(&format!("\"{jt}\""), &var);
        } else {
            s = s.replace(&jt, &var);
        }
    }
    // The empty quoted strings the replacement left around a variable.
    s.replace("''\"$", "\"$").replace("\"''", "\"")
}

/// Writes the shell of each step.
pub struct Print<'a> {
    ctx: &'a Ctx,
    pub script: String,
    /// The tool calls, in the order printed.
    pub calls: Vec<String>,
    defined: Vec<Ref>,
}

impl<'a> Print<'a> {
    pub fn new(ctx: &'a Ctx) -> Print<'a> {
        Print {
            ctx,
            script: String::new(),
            calls: vec![],
            defined: vec![],
        }
    }
    fn line(&mut self, l: impl AsRef<str>) {
        self.script.push_str(l.as_ref());
        self.script.push('\n');
    }
    /// Defines the references a step uses that no tool produces.
    fn define(&mut self, plan: &Plan, refs: &[Ref]) {
        for &r in refs {
            if self.defined.contains(&r) {
                continue;
            }
            let def = match r {
                Ref::SupervisorPid => "$$".to_string(),
                Ref::Now => "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)".to_string(),
                Ref::PidStartTime => "$(sed 's/.*) //' /proc/$PID/stat | cut -d' ' -f20)".into(),
                // docker's settings are made from the CNI results by
                // mydocker; the script records the networks joined.
                Ref::Settings => {
                    let nets: serde_json::Map<_, _> = NetMode::of(&plan.cfg)
                        .networks()
                        .iter()
                        .map(|n| (n.clone(), json!({})))
                        .collect();
                    q(&json!({ "Networks": nets }).to_string())
                }
                _ => continue,
            };
            self.line(format!("{}={def}", r.name()));
            self.defined.push(r);
        }
    }
    fn call(&mut self, plan: &Plan, step: &Step, c: &Call) {
        self.define(plan, &step.refs());
        let sh = shell(c);
        self.calls.push(sh.clone());
        let capture = |var: &str, pat: &str| format!("{var}=$({sh} | sed -n '{pat}')");
        match &step.id {
            StepId::Reserve => {
                self.line("# reserve the id and the name");
                self.line(capture("ID", "s/^{\"id\":\"\\([0-9a-f]*\\)\".*/\\1/p"));
                self.line("D=\"$R/containers/$ID\"; H=$(echo \"$ID\" | cut -c1-12)");
                self.defined.extend([Ref::Id, Ref::ShortId]);
            }
            StepId::Mount => {
                self.line("# the overlay rootfs from the image's layers");
                self.line(capture("ROOTFS", "s/.*\"rootfs\":\"\\([^\"]*\\)\".*/\\1/p"));
                self.defined.push(Ref::Rootfs);
            }
            StepId::Netns => {
                self.line("# a network namespace file");
                self.line(capture("NETNS", "s/.*\"path\":\"\\([^\"]*\\)\".*/\\1/p"));
                self.defined.push(Ref::Netns);
            }
            StepId::Create => {
                self.line(
                    "# create: nsrun makes the cgroup, the init joins it and waits for start",
                );
                if sh.contains("--console-socket") {
                    self.line("# (-t: nsrun sends the terminal over the console socket; something must listen there)");
                }
                self.line(format!("{sh} > \"$D/stdout\""));
                self.line("PID=$(cat \"$D/init.pid\")");
                self.defined.push(Ref::Pid);
            }
            id => {
                let note = match id {
                    StepId::Launching => "# the record names the launch and its networks first",
                    StepId::Volumes => "# volumes, binds and tmpfs as OCI mounts (mydocker adds them to config.json's \"mounts\")",
                    StepId::Connect(_) => "# CNI ADD into the network (bridge, veth, address, NAT)",
                    StepId::Recorded => "# the record gets the init's pid",
                    StepId::Start => "# the init execs the command; its output goes to $D/stdout",
                    StepId::Running => "# the record says running",
                    _ => "",
                };
                if !note.is_empty() {
                    self.line(note);
                }
                let quiet = matches!(c.tool(), "ctrstate");
                self.line(if quiet {
                    format!("{sh} > /dev/null")
                } else {
                    sh
                });
            }
        }
    }
}

impl Runner for Print<'_> {
    type Pending = ();

    fn start(&mut self, plan: &Plan, step: &Step, _: &Outputs) -> Result<()> {
        let ctx = self.ctx;
        match &step.action {
            Action::Call(c) => self.call(plan, step, c),
            Action::EnsureNetwork(n) => {
                let f = format!("\"$R\"/networks/{}.json", q(n));
                if n == network::DEFAULT {
                    let (bridge, subnet) = network::default_params(ctx)?;
                    let c = ctx
                        .netbr()
                        .args(["create", n, "--subnet", &subnet, "--bridge", &bridge]);
                    self.line("# the default network, made on first use");
                    self.line(format!("[ -e {f} ] || {}", c.shell()));
                } else {
                    self.line(format!(
                        "[ -e {f} ] || {{ echo 'network {n} not found' >&2; exit 1; }}"
                    ));
                }
            }
            Action::EtcFiles => {
                self.line("# the container's /etc files (mydocker also adds its addresses and, on user networks, the others' names)");
                self.line("echo \"$H\" > \"$D/hostname\"");
                self.line(
                    "printf '127.0.0.1\\tlocalhost\\n127.0.1.1\\t%s\\n' \"$H\" > \"$D/hosts\"",
                );
                self.line(
                    "grep -v '^nameserver 127\\.' /etc/resolv.conf > \"$D/resolv.conf\" || true",
                );
            }
            Action::Config => {
                self.line(
                    "# the OCI config: limits, device rules, seccomp, the cgroup nsrun makes",
                );
                let config = config(ctx, &plan.cfg)?;
                let sed: Vec<String> = PLACEHOLDERS
                    .iter()
                    .map(|(p, r)| format!("-e \"s|{p}|${}|g\"", r.name()))
                    .collect();
                self.line(format!(
                    "sed {} > \"$D/config.json\" <<'CONFIG'",
                    sed.join(" ")
                ));
                self.line(serde_json::to_string_pretty(&config).expect("json"));
                self.line("CONFIG");
            }
            Action::Leave(n) => {
                self.line(format!(
                    "rm -f \"$R\"/netnames/{}/\"$ID\".json  # its names on {n}",
                    q(n)
                ));
            }
        }
        Ok(())
    }

    fn finish(&mut self, _: &Step, _: ()) -> Result<Output> {
        Ok(Output::Done)
    }
}

/// config.json with placeholders for what only the run knows.
fn config(ctx: &Ctx, cfg: &RunConfig) -> Result<serde_json::Value> {
    let dir = ctx.container_dir("__ID__");
    let hostname = if cfg.hostname.is_empty() {
        "__HOSTNAME__".to_string()
    } else {
        cfg.hostname.clone()
    };
    // Numeric users as given; names resolve against the image at run time.
    let (u, g) = cfg.user.split_once(':').unwrap_or((&cfg.user, ""));
    let ids = spec::Ids {
        uid: u.parse().unwrap_or(0),
        gid: g.parse().unwrap_or(0),
        additional: vec![],
    };
    let files = ["hostname", "hosts", "resolv.conf"]
        .iter()
        .map(|f| (dir.join(f).to_string_lossy().into(), format!("/etc/{f}")))
        .collect();
    let mode = NetMode::of(cfg);
    spec::build(&spec::SpecInput {
        id: "__ID__",
        cfg,
        rootfs: std::path::Path::new("__ROOTFS__"),
        hostname: &hostname,
        ids,
        files,
        netns: (!mode.networks().is_empty()).then(|| "__NETNS__".to_string()),
        host_network: mode == NetMode::Host,
        extra_mounts: vec![],
    })
}

/// The whole run as a script: the launch plan, a wait for the command,
/// then the teardown plan (all of it with `--rm`).
pub fn script(ctx: &Ctx, cfg: &RunConfig, name: &str) -> Result<String> {
    Ok(printed(ctx, cfg, name)?.script)
}

/// The script's runner after the walk: the script and its calls.
pub fn printed<'a>(ctx: &'a Ctx, cfg: &RunConfig, name: &str) -> Result<Print<'a>> {
    // The script is its container's supervisor, as a foreground run.
    let plan = Plan::launch(ctx, cfg, name).folded();
    let mut p = Print::new(ctx);
    p.line("#!/bin/sh");
    p.line(format!(
        "# mydocker run {}, as the tool calls mydocker makes. Run it with sh, or line by line.",
        cfg.image
    ));
    p.line("set -e");
    p.line(format!("R={}", q(&ctx.root.to_string_lossy())));
    runner::launch(&plan, &mut p, &mut Outputs::default())?;
    let nsrun = shell(&ctx.nsrun().args(["state", &Ref::Id.token()]));
    p.line("# wait for it to stop (mydocker is its parent and reaps it; here we poll), then release it all");
    p.line(format!(
        "while {nsrun} | grep -q '\"running\"'; do sleep 0.05; done"
    ));
    p.line("cat \"$D/stdout\"");
    let keep = if cfg.auto_remove {
        Keep::Nothing
    } else {
        Keep::Layer
    };
    let down = Plan::teardown(ctx, &Ref::Id.token(), Some(&launched_record(cfg)), keep);
    if keep == Keep::Layer {
        p.line("echo '{\"status\":\"exited\",\"pid\":0}' | ctrstate --root \"$R\" update \"$ID\" > /dev/null");
    }
    runner::teardown(&down, &mut p, &mut Outputs::default());
    Ok(p)
}

/// The record a launch of `cfg` leaves, as far as its teardown reads it.
pub fn launched_record(cfg: &RunConfig) -> ctrstate::record::Record {
    let nets: serde_json::Map<_, _> = NetMode::of(cfg)
        .networks()
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), json!({ "IfName": format!("eth{i}") })))
        .collect();
    let mut rec: ctrstate::record::Record = serde_json::from_value(json!({})).expect("defaults");
    rec.network = json!({ "Networks": nets });
    rec.config = match serde_json::to_value(cfg).expect("json") {
        serde_json::Value::Object(o) => o,
        _ => Default::default(),
    };
    rec
}
