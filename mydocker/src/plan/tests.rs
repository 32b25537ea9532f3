//! The plans and their walk, with the recording runner (no root, no tools).

use super::build::{Keep, NetMode, Plan};
use super::fake::Fake;
use super::print::{self, shell};
use super::runner;
use super::step::{fill, json_ref, Outputs, Ref, Step, StepId};
use crate::context::Ctx;
use crate::network::Port;
use crate::runconfig::RunConfig;
use crate::volumes::MountSpec;
use serde_json::{json, Value};
use StepId::*;

fn ctx() -> Ctx {
    Ctx::new(std::path::Path::new("/tmp/plan-test-root"))
}

fn cfg(network: &str) -> RunConfig {
    RunConfig {
        image: "busybox".into(),
        image_id: "sha256:abc".into(),
        cmd: vec!["true".into()],
        network: network.into(),
        ..Default::default()
    }
}

fn with_port(mut c: RunConfig) -> RunConfig {
    c.ports = vec![Port {
        host_port: 8080,
        container_port: 80,
        protocol: "tcp".into(),
        host_ip: String::new(),
    }];
    c
}

fn with_volumes(mut c: RunConfig) -> RunConfig {
    c.mounts = vec![
        MountSpec {
            kind: "volume".into(),
            source: "anon1".into(),
            target: "/data".into(),
            readonly: false,
            anonymous: true,
        },
        MountSpec {
            kind: "bind".into(),
            source: "/srv".into(),
            target: "/srv".into(),
            readonly: true,
            anonymous: false,
        },
    ];
    c
}

fn net(n: &str) -> StepId {
    Network(n.into())
}
fn connect(n: &str) -> StepId {
    Connect(n.into())
}

/// Every plan the tests look at, with a name.
fn plans() -> Vec<(&'static str, Plan)> {
    let c = ctx();
    let two = NetMode::Networks(vec!["front".into(), "back".into()]);
    let mut rm = cfg("none");
    rm.auto_remove = true;
    vec![
        ("none", Plan::launch(&c, &cfg("none"), "")),
        ("host", Plan::launch(&c, &cfg("host"), "")),
        ("bridge -p", Plan::launch(&c, &with_port(cfg("")), "web")),
        (
            "two networks",
            Plan::launch_on(&c, &with_port(cfg("front")), "", &two),
        ),
        ("volumes", Plan::launch(&c, &with_volumes(cfg("none")), "")),
        ("--rm", Plan::launch(&c, &rm, "")),
        ("tty", {
            let mut t = cfg("mynet");
            t.tty = true;
            Plan::launch(&c, &t, "")
        }),
        // A foreground run: the Launching patch in the Reserve.
        ("none, folded", Plan::launch(&c, &cfg("none"), "").folded()),
        (
            "bridge -p, folded",
            Plan::launch(&c, &with_port(cfg("")), "web").folded(),
        ),
        (
            "volumes, folded",
            Plan::launch(&c, &with_volumes(cfg("none")), "").folded(),
        ),
    ]
}

#[test]
fn the_steps_and_their_order_follow_the_flags() {
    let c = ctx();
    let base = |mid: &[StepId]| {
        let mut v = vec![Reserve, Launching];
        v.extend_from_slice(mid);
        v.extend([EtcFiles, Config, Create, Recorded, Start, Running]);
        v
    };
    assert_eq!(Plan::launch(&c, &cfg("none"), "").ids(), base(&[Mount]));
    assert_eq!(Plan::launch(&c, &cfg("host"), "").ids(), base(&[Mount]));
    let p = Plan::launch(&c, &with_port(cfg("")), "web");
    assert_eq!(
        p.ids(),
        base(&[net("bridge"), Mount, Netns, connect("bridge")])
    );
    let conn = shell(match &p.steps[5].action {
        super::Action::Call(c) => c,
        a => panic!("{a:?}"),
    });
    assert!(
        conn.contains("connect bridge \"$ID\" --netns \"$NETNS\" --publish"),
        "{conn}"
    );
    assert!(conn.contains("\"hostPort\":8080"), "{conn}");
    let two = NetMode::Networks(vec!["front".into(), "back".into()]);
    let p = Plan::launch_on(&c, &with_port(cfg("front")), "", &two);
    assert_eq!(
        p.ids(),
        base(&[
            net("front"),
            net("back"),
            Mount,
            Netns,
            connect("front"),
            connect("back")
        ])
    );
    // the second network: its own interface, no ports
    let back = p.steps.iter().find(|s| s.id == connect("back")).unwrap();
    let back = shell(match &back.action {
        super::Action::Call(c) => c,
        a => panic!("{a:?}"),
    });
    assert!(
        back.contains("--ifname eth1") && !back.contains("--publish"),
        "{back}"
    );
    let p = Plan::launch(&c, &with_volumes(cfg("none")), "");
    assert_eq!(p.ids(), base(&[Mount, Volumes]));
    // the anonymous volume goes with the record when a run fails
    let reserve_undo: Vec<StepId> = p.steps[0].undo.iter().map(|s| s.id.clone()).collect();
    assert_eq!(reserve_undo, vec![Forget, VolumeRm("anon1".into())]);
    // a start runs it all but the Reserve
    let s = Plan::launch(&c, &cfg("none"), "").without(&Reserve);
    assert_eq!(s.ids()[0], Launching);
    assert!(s.steps.iter().all(|st| !st.needs.contains(&Reserve)));
}

#[test]
fn a_foreground_run_records_its_launch_with_the_reserve() {
    let c = ctx();
    let p = Plan::launch(&c, &with_port(cfg("")), "web");
    let f = p.clone().folded();
    let mut want = p.ids();
    want.retain(|i| *i != Launching);
    assert_eq!(f.ids(), want);
    assert!(f.steps.iter().all(|s| !s.needs.contains(&Launching)));
    for s in &f.steps[1..] {
        let before = closure(&f, s);
        assert!(before.contains(&Reserve), "{:?}", s.id);
    }
    let stdin = |p: &Plan| match &p.steps[0].action {
        super::Action::Call(c) => serde_json::from_str::<Value>(c.stdin().unwrap()).unwrap(),
        a => panic!("{a:?}"),
    };
    let (r, before) = (stdin(&f), stdin(&p));
    assert_eq!(r["name"], "web");
    assert_eq!(r["config"], before["config"]);
    assert_eq!(r["network"], json!({"Networks": {"bridge": {}}}));
    assert_eq!(r["supervisorPid"], json_ref(Ref::SupervisorPid));
    assert_eq!(r["pid"], 0);
    assert!(r.get("status").is_none() && r.get("error").is_none(), "{r}");
    // the undo of the Reserve is unchanged; a start's plan (no Reserve) too
    assert_eq!(f.steps[0].undo, p.steps[0].undo);
    let s = p.without(&Reserve);
    assert_eq!(s.clone().folded(), s);
    // what the Reserve fills in at run time
    let mut fk = Fake::default();
    runner::launch(&f.only(&Reserve), &mut fk, &mut Outputs::default()).unwrap();
    assert_eq!(fk.calls().len(), 1);
    assert!(
        fk.calls()[0].contains("\"supervisorPid\":'\"$SUPERVISOR\"'"),
        "{}",
        fk.calls()[0]
    );
}

/// The steps a step needs, transitively.
fn closure(plan: &Plan, s: &Step) -> Vec<StepId> {
    let mut seen: Vec<StepId> = vec![];
    let mut todo = s.needs.clone();
    while let Some(n) = todo.pop() {
        if seen.contains(&n) {
            continue;
        }
        if let Some(st) = plan.steps.iter().find(|x| x.id == n) {
            todo.extend(st.needs.clone());
        }
        seen.push(n);
    }
    seen
}

#[test]
fn every_reference_is_made_by_a_step_it_needs() {
    for (name, p) in plans() {
        let connects: Vec<StepId> = p
            .ids()
            .into_iter()
            .filter(|i| matches!(i, Connect(_)))
            .collect();
        for (k, s) in p.steps.iter().enumerate() {
            let before = closure(&p, s);
            for n in &s.needs {
                let j = p.steps.iter().position(|x| &x.id == n).unwrap();
                assert!(j < k, "{name}: {:?} needs the later {n:?}", s.id);
            }
            for r in s.refs() {
                if let Some(prod) = r.producer() {
                    if prod != s.id {
                        assert!(
                            before.contains(&prod),
                            "{name}: {:?} uses {r:?} without {prod:?}",
                            s.id
                        );
                    }
                }
                if r == Ref::Settings {
                    for c in &connects {
                        assert!(before.contains(c), "{name}: {:?} without {c:?}", s.id);
                    }
                }
            }
            // Each step after the record names the launch is recorded
            // first (its own update, or the folded Reserve).
            let first = if p.ids().contains(&Launching) {
                Launching
            } else {
                Reserve
            };
            let at = p.ids().iter().position(|i| *i == first).unwrap();
            if k > at {
                assert!(before.contains(&first), "{name}: {:?}", s.id);
            }
        }
    }
}

#[test]
fn a_full_run_makes_every_call_once_in_plan_order() {
    for (name, p) in plans() {
        let mut f = Fake::default();
        runner::launch(&p, &mut f, &mut Outputs::default()).unwrap();
        assert_eq!(f.started, p.ids(), "{name}");
    }
}

/// The rollback the plan promises when `k` fails: the undos of the steps
/// that ran and succeeded (the ones before k, and any started beside it),
/// and k's own when it may have done part of its work, in reverse plan
/// order.
fn expected_rollback(p: &Plan, k: usize, started: &[StepId]) -> Vec<String> {
    let mut out = vec![];
    for (j, s) in p.steps.iter().enumerate().rev() {
        let ran = started.contains(&s.id) && (j != k || s.partial);
        if ran {
            out.extend(s.undo.iter().map(Fake::line));
        }
    }
    out
}

#[test]
fn a_failure_at_each_step_undoes_the_steps_before_it_in_reverse() {
    for (name, p) in plans() {
        for (k, s) in p.steps.iter().enumerate() {
            let mut f = Fake::failing(s.id.clone());
            let e = runner::launch(&p, &mut f, &mut Outputs::default()).unwrap_err();
            assert!(e.to_string().contains("injected"), "{name}: {e}");
            let at = f.started.iter().position(|x| x == &s.id).unwrap();
            // The plan's own steps come first in the log, then the undos.
            let plan_ids = p.ids();
            let n_started = f
                .started
                .iter()
                .take_while(|i| plan_ids.contains(i))
                .count();
            let started = &f.started[..n_started];
            // Nothing that needs the failed step started.
            for st in started {
                let step = p.steps.iter().find(|x| &x.id == st).unwrap();
                assert!(
                    !closure(&p, step).contains(&s.id),
                    "{name}: {st:?} started although {:?} failed",
                    s.id
                );
            }
            // Everything before k ran (the walk keeps plan order).
            for before in &p.steps[..k] {
                assert!(
                    f.started[..=at].contains(&before.id),
                    "{name}: {:?}",
                    before.id
                );
            }
            let want = expected_rollback(&p, k, started);
            let got = f.log[n_started..].to_vec();
            assert_eq!(got, want, "{name}: failing at {:?}", s.id);
            if k > 0 && p.steps[..k].iter().any(|s| !s.undo.is_empty()) {
                assert!(!got.is_empty(), "{name}: nothing undone at {:?}", s.id);
            }
        }
    }
}

#[test]
fn the_rollback_of_a_bridge_run_failing_at_create() {
    let p = Plan::launch(&ctx(), &with_port(cfg("web")), "");
    let mut f = Fake::failing(Create);
    runner::launch(&p, &mut f, &mut Outputs::default()).unwrap_err();
    let i = f
        .log
        .iter()
        .position(|l| l.contains("nsrun") && l.contains(" create "))
        .unwrap();
    let undo: Vec<&str> = f.log[i + 1..]
        .iter()
        .map(|l| l.split(" --root ").next().unwrap())
        .collect();
    // nsrun delete (create may have half made it), names, CNI DEL, netns, rootfs, the record
    assert_eq!(
        undo,
        vec![
            "nsrun",
            "<leave web>",
            "netbr",
            "netbr",
            "layerfs",
            "ctrstate"
        ]
    );
    assert!(f.log[i + 1].contains("delete --force \"$ID\""));
    assert!(f.log[i + 3].contains("disconnect web \"$ID\" --ifname eth0"));
    assert!(f.log[i + 4].contains("netns del"));
    assert!(f.log[i + 5].contains("umount \"$ID\""));
    assert!(f.log[i + 6].contains("rm --force \"$ID\""));
}

#[test]
fn the_printed_script_holds_exactly_the_calls_a_run_makes() {
    let c = ctx();
    for (name, cf) in [
        ("none", cfg("none")),
        ("bridge -p", with_port(cfg(""))),
        ("volumes --rm", {
            let mut v = with_volumes(cfg("mynet"));
            v.auto_remove = true;
            v
        }),
    ] {
        let printed = print::printed(&c, &cf, "x").unwrap();
        let mut f = Fake::default();
        let run = Plan::launch(&c, &cf, "x").folded();
        runner::launch(&run, &mut f, &mut Outputs::default()).unwrap();
        let keep = if cf.auto_remove {
            Keep::Nothing
        } else {
            Keep::Layer
        };
        let rec = print::launched_record(&cf);
        let down = Plan::teardown(&c, &Ref::Id.token(), Some(&rec), keep);
        runner::teardown(&down, &mut f, &mut Outputs::default());
        assert_eq!(printed.calls, f.calls(), "{name}");
        // in the script, in that order
        let mut at = 0;
        for call in f.calls() {
            let i = printed.script[at..]
                .find(&call)
                .unwrap_or_else(|| panic!("{name}: {call} not in\n{}", printed.script));
            at += i + call.len();
        }
        assert!(printed.script.starts_with("#!/bin/sh\n"));
        assert!(!printed.script.contains('\0'), "a token left in the script");
        assert!(
            !printed.script.contains("\\u0000"),
            "a token left in the script"
        );
    }
}

#[test]
fn a_printed_call_means_what_the_run_does_under_sh() {
    // stdin JSON with a number, a string and an object reference, an
    // argument with one inside a path
    let mut patch = json!({"a": "x'y"});
    patch["pid"] = super::step::json_ref(Ref::Pid);
    patch["net"] = super::step::json_ref(Ref::Settings);
    patch["id"] = Value::String(format!("pre-{}", Ref::Id.token()));
    let call = ctx()
        .ctrstate()
        .args([
            "update",
            &format!("/d/{}/x y", Ref::Id.token()),
            &Ref::Id.token(),
        ])
        .stdin_json(&patch);
    let line = shell(&call);
    let script = format!(
        "ctrstate() {{ cat; echo; for a in \"$@\"; do echo \"[$a]\"; done; }}\nID=abc; PID=42; SETTINGS='{{\"k\":1}}'\n{line}"
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let got: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        got,
        json!({"a": "x'y", "pid": 42, "net": {"k": 1}, "id": "pre-abc"})
    );
    let args: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    assert_eq!(args[2..], ["[update]", "[/d/abc/x y]", "[abc]"], "{line}");
    // the real runner fills the same call with the same values
    let filled = call
        .map_words(&mut |w, j| {
            fill(w, j, &mut |r| match r {
                Ref::Id => Some(json!("abc")),
                Ref::Pid => Some(json!(42)),
                Ref::Settings => Some(json!({"k": 1})),
                _ => None,
            })
        })
        .unwrap();
    let v: Value = serde_json::from_str(filled.stdin().unwrap()).unwrap();
    assert_eq!(v, got);
    assert!(
        filled.shell().ends_with("update '/d/abc/x y' abc"),
        "{}",
        filled.shell()
    );
    // an unknown reference is an error, not an empty word
    assert!(call
        .map_words(&mut |w, j| fill(w, j, &mut |_| None))
        .is_err());
}

fn rec(network: Value) -> ctrstate::record::Record {
    let mut r: ctrstate::record::Record = serde_json::from_value(json!({})).unwrap();
    r.network = network;
    r
}

#[test]
fn the_teardown_plans() {
    let c = ctx();
    let id = "a".repeat(64);
    let ids = |p: &Plan| p.ids();
    // none/host: no network steps at all
    let none = rec(json!({"Networks": {}}));
    assert_eq!(
        ids(&Plan::teardown(&c, &id, Some(&none), Keep::Layer)),
        vec![Delete, Umount]
    );
    // no record (or no settings yet): the netns file may exist
    assert_eq!(
        ids(&Plan::teardown(&c, &id, None, Keep::Nothing)),
        vec![Delete, Remove, NetnsDel, Forget]
    );
    // two networks, one connected later on eth1
    let two = rec(json!({"Networks": {"bridge": {"IfName": "eth0"}, "back": {"IfName": "eth1"}}}));
    let p = Plan::teardown(&c, &id, Some(&two), Keep::Nothing);
    assert_eq!(
        ids(&p),
        vec![
            Delete,
            Remove,
            Leave("back".into()),
            Disconnect("back".into()),
            Disconnect("bridge".into()),
            NetnsDel,
            Forget
        ]
    );
    let last = p.steps.last().unwrap();
    assert!(last.only_if_ok);
    let mut f = Fake::default();
    assert!(runner::teardown(&p, &mut f, &mut Outputs::default()).is_empty());
    assert!(f.log[3].contains("disconnect back") && f.log[3].contains("--ifname eth1"));
    assert!(f.log[4].contains("--ifname eth0"));
    // a failed release keeps the record (rm -f again redoes it), the
    // other releases still run
    let mut f = Fake::failing(Disconnect("back".into()));
    let errs = runner::teardown(&p, &mut f, &mut Outputs::default());
    assert_eq!(errs.len(), 1);
    assert!(f.started.contains(&NetnsDel) && !f.started.contains(&Forget));
    // the launch's undos are teardown steps: failure and stop release alike
    let l = Plan::launch(&c, &cfg("bridge"), "");
    let undos: Vec<StepId> = l
        .steps
        .iter()
        .rev()
        .flat_map(|s| s.undo.iter().map(|u| u.id.clone()))
        .collect();
    assert_eq!(
        undos,
        vec![
            Delete,
            Disconnect("bridge".into()),
            NetnsDel,
            Umount,
            Forget
        ]
    );
}

/// Where `what` of `id` is in the events.
fn event(f: &Fake, what: &str, id: &StepId) -> usize {
    f.events
        .iter()
        .position(|(w, i)| *w == what && i == id)
        .unwrap_or_else(|| panic!("no {what} {id:?} in {:?}", f.events))
}

#[test]
fn what_must_come_first_is_done_before_the_next_starts() {
    let c = ctx();
    // a failed run: the record (which lists its volumes) before the volume
    let p = Plan::launch(&c, &with_volumes(cfg("none")), "");
    let mut f = Fake::default();
    runner::teardown(&p.undo_of(&Reserve), &mut f, &mut Outputs::for_id("x"));
    assert!(event(&f, "finish", &Forget) < event(&f, "start", &VolumeRm("anon1".into())));
    // a teardown: CNI DEL before the netns goes; the record after all
    let two = rec(json!({"Networks": {"a": {}, "b": {"IfName": "eth1"}}}));
    let p = Plan::teardown(&c, "x", Some(&two), Keep::Nothing);
    let mut f = Fake::default();
    runner::teardown(&p, &mut f, &mut Outputs::for_id("x"));
    for n in ["a", "b"] {
        assert!(event(&f, "finish", &Disconnect(n.into())) < event(&f, "start", &NetnsDel));
    }
    for s in p.ids().iter().filter(|i| **i != Forget) {
        assert!(
            event(&f, "finish", s) < event(&f, "start", &Forget),
            "{s:?}"
        );
    }
    // ... while the releases that do not depend on each other overlap
    assert!(event(&f, "start", &Remove) < event(&f, "finish", &Delete));
    // a launch: the rootfs beside the network, the config after both
    let p = Plan::launch(&c, &cfg("bridge"), "");
    let mut f = Fake::default();
    runner::launch(&p, &mut f, &mut Outputs::default()).unwrap();
    assert!(event(&f, "start", &Netns) < event(&f, "finish", &Mount));
    assert!(event(&f, "finish", &Mount) < event(&f, "start", &Config));
    assert!(event(&f, "finish", &Launching) < event(&f, "start", &Mount));
}
