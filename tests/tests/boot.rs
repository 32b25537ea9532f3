//! End-to-end: restart policies across a host reboot without a daemon
//! (`mydocker system boot`, issue 14), `top CONTAINER [ps OPTIONS]` and
//! `system prune --filter`. The reboot is simulated: every supervisor and
//! container process SIGKILLed, the mounts under the root and the
//! root's runtime dir (`<root>/run`: nsrun state, netns files) gone, the
//! network's bridge deleted.

use e2e::docker::{assert_no_cgroup, stderr, stdout, Docker};
use e2e::{assert_exit_code, process_runs, require_root, unique, wait_for, TempDir};
use std::process::Command;

fn inspect_f(d: &Docker, r: &str, template: &str) -> String {
    d.ok(&["inspect", "-f", template, r])
}

/// The parent of `pid` (for a detached container's init: its supervisor).
fn parent(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn pid_of(d: &Docker, r: &str) -> i32 {
    inspect_f(d, r, "{{.State.Pid}}").parse().unwrap()
}

/// Asserts `r` runs under a `mydocker-supervisor`, with RestartCount `n`.
fn assert_up(d: &Docker, r: &str, restarts: u32) {
    let v = d.inspect(r);
    assert_eq!(v["State"]["Status"], "running", "{r}: {v}");
    let pid = v["State"]["Pid"].as_i64().unwrap() as i32;
    assert!(process_runs(pid), "{r}: pid {pid} is not running");
    let exe = std::fs::read_link(format!("/proc/{}/exe", parent(pid))).unwrap();
    assert!(exe.ends_with("mydocker-supervisor"), "{r}: parent {exe:?}");
    assert_eq!(v["RestartCount"], restarts, "{r}: {v}");
}

/// A host reboot as far as mydocker can tell: the processes die without
/// anyone recording it, mounts and the runtime dir go, the bridge goes.
fn crash(d: &Docker, running: &[&str], bridge: &str) {
    // (no mydocker command from the kill on: its reconcile pass would
    // clean up before the "reboot" does)
    let pids: Vec<(i32, i32, String)> = running
        .iter()
        .map(|r| {
            let p = pid_of(d, r);
            (parent(p), p, inspect_f(d, r, "{{.Id}}"))
        })
        .collect();
    for (sup, ctr, _) in &pids {
        let (sup, ctr) = (*sup, *ctr);
        // SAFETY: signals to processes this test started (through mydocker).
        unsafe {
            libc::kill(sup, libc::SIGKILL);
            libc::kill(ctr, libc::SIGKILL);
        }
    }
    // Reaped, not only dead: after a reboot no pid of theirs is left
    // (a zombie still has a start time, and would count as alive).
    let gone = |p: i32| !std::path::Path::new(&format!("/proc/{p}")).exists();
    for &(sup, ctr, _) in &pids {
        wait_for("the supervisor to be reaped", 10, || gone(sup));
        wait_for("the container to be reaped", 10, || gone(ctr));
    }
    // A reboot empties the cgroup hierarchies too (the dead containers'
    // cgroups, made by this test's containers, are empty now).
    for (_, _, id) in &pids {
        let found = Command::new("find")
            .args(["/sys/fs/cgroup", "-depth", "-type", "d", "-path"])
            .arg(format!("*/{id}*"))
            .output()
            .unwrap();
        for dir in stdout(&found).lines() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    let root = d.root.path();
    let mounts = mountinfo::mounts_under(root).unwrap();
    assert!(
        !mounts.is_empty(),
        "no rootfs or netns mounted under the root"
    );
    for m in mounts.iter().rev() {
        let st = Command::new("umount").arg("-l").arg(m).status().unwrap();
        assert!(st.success(), "umount {}", m.display());
    }
    let run = root.join("run");
    assert!(
        run.join("nsrun").is_dir(),
        "no nsrun state in {}",
        run.display()
    );
    std::fs::remove_dir_all(&run).unwrap();
    let del = Command::new("ip")
        .args(["link", "del", bridge])
        .status()
        .unwrap();
    assert!(del.success(), "ip link del {bridge}");
}

fn names(out: &std::process::Output) -> Vec<String> {
    stdout(out).lines().map(str::to_string).collect()
}

#[test]
fn boot_starts_always_and_unless_stopped_after_a_crash_and_only_once() {
    require_root!();
    let d = Docker::new();
    let x = std::process::id() % 200;
    let subnet = format!("10.{}.{}.0/24", 100 + x % 50, x);
    let net = unique("boot");
    d.ok(&["network", "create", "--subnet", &subnet, &net]);
    let bridge = inspect_f_net(&d, &net);
    let gone_dir = TempDir::new("bootvol");
    let run = |name: &str, extra: &[&str]| {
        let mut a = vec!["run", "-d", "--name", name];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["busybox", "sleep", "600"]);
        d.ok(&a)
    };
    let policies = [
        ("always", "always", "none"),
        ("always-net", "always", net.as_str()),
        ("us-up", "unless-stopped", "none"),
        ("us-stopped", "unless-stopped", "none"),
        ("onfail", "on-failure", "none"),
        ("never", "no", "none"),
    ];
    let mut ids: Vec<String> = policies
        .iter()
        .map(|(name, policy, network)| run(name, &["--restart", policy, "--network", network]))
        .collect();
    // One whose program lives on a host dir the reboot loses: it cannot
    // start again (`-v` recreates the dir empty, as docker's does).
    let sleep = gone_dir.path().join("sleep");
    d.ok(&["cp", "-L", "always:/bin/sleep", sleep.to_str().unwrap()]);
    let vol = format!("{}:/data", gone_dir.path().display());
    let mut a = vec!["run", "-d", "--name", "badvol", "--restart", "always"];
    a.extend_from_slice(&[
        "--network",
        "none",
        "-v",
        &vol,
        "busybox",
        "/data/sleep",
        "600",
    ]);
    ids.push(d.ok(&a));
    run("autorm", &["--rm", "--network", "none"]);
    d.ok(&["stop", "-t", "1", "us-stopped"]);
    let ip_before = inspect_f(
        &d,
        "always-net",
        &format!("{{{{.NetworkSettings.Networks.{net}.IPAddress}}}}"),
    );
    assert!(!ip_before.is_empty());
    // The unless-stopped one stopped by the user stays stopped through a
    // restart policy's own decisions too: its exit was not restarted.
    assert_eq!(inspect_f(&d, "us-stopped", "{{.State.Status}}"), "exited");

    let up = [
        "always",
        "always-net",
        "us-up",
        "onfail",
        "never",
        "badvol",
        "autorm",
    ];
    crash(&d, &up, &bridge);
    std::fs::remove_dir_all(gone_dir.path()).unwrap();

    let out = d.run(&["system", "boot"]);
    assert_exit_code(&out, 1);
    assert_eq!(
        names(&out),
        ["always", "always-net", "us-up"],
        "{}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("badvol"), "{err}");
    assert!(
        err.lines()
            .last()
            .unwrap()
            .contains("failed to start containers: badvol"),
        "{err}"
    );
    for r in ["always", "always-net", "us-up"] {
        assert_up(&d, r, 0);
    }
    for r in ["us-stopped", "onfail", "never"] {
        assert_eq!(inspect_f(&d, r, "{{.State.Status}}"), "exited", "{r}");
    }
    // A failed start: created again, with docker's exit code for a
    // program not found.
    let bad = d.inspect("badvol");
    assert_eq!(bad["State"]["Status"], "created", "{bad}");
    assert_eq!(bad["State"]["ExitCode"], 127, "{bad}");
    // docker's daemon removes an auto-remove container it finds stopped.
    assert!(!stdout(&d.run(&["ps", "-a", "--format", "{{.Names}}"])).contains("autorm"));
    // The network came back: an address on the subnet, inside the
    // container, and the bridge up again.
    let ip = inspect_f(
        &d,
        "always-net",
        &format!("{{{{.NetworkSettings.Networks.{net}.IPAddress}}}}"),
    );
    let prefix = subnet.trim_end_matches("0/24");
    assert!(ip.starts_with(prefix), "{ip} not in {subnet}");
    let addr = d.ok(&["exec", "always-net", "ip", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("{ip}/24")), "{addr}");
    let gw = format!("{prefix}1");
    d.ok(&["exec", "always-net", "ping", "-c", "1", "-W", "2", &gw]);

    // Idempotent: a second pass starts nothing; the one that failed is
    // tried again (as each start of docker's daemon would) and fails again.
    let again = d.run(&["system", "boot"]);
    assert_exit_code(&again, 1);
    assert_eq!(names(&again), Vec::<String>::new(), "{}", stderr(&again));
    assert!(stderr(&again).contains("failed to start containers: badvol"));
    for r in ["always", "always-net", "us-up"] {
        assert_up(&d, r, 0);
    }

    // The supervisor the boot started carries out the policy.
    let old = pid_of(&d, "always");
    unsafe { libc::kill(old, libc::SIGKILL) };
    wait_for("always to be restarted", 10, || {
        inspect_f(&d, "always", "{{.RestartCount}}") == "1"
            && inspect_f(&d, "always", "{{.State.Status}}") == "running"
    });
    assert_up(&d, "always", 1);

    // top with ps options, as docker: only the container's processes.
    let top = d.ok(&["top", "always", "-o", "pid,comm"]);
    let lines: Vec<&str> = top.lines().collect();
    assert_eq!(lines.len(), 2, "{top}");
    assert!(
        lines[0].starts_with("PID") && lines[0].contains("COMMAND"),
        "{top}"
    );
    assert!(lines[1].ends_with("sleep"), "{top}");
    assert_eq!(
        lines[1].split_whitespace().next().unwrap(),
        pid_of(&d, "always").to_string()
    );
    let aux = d.ok(&["top", "us-up", "aux"]);
    assert!(aux.starts_with("USER"), "{aux}");
    assert_eq!(aux.lines().count(), 2, "{aux}");
    assert!(aux.lines().nth(1).unwrap().ends_with("sleep 600"), "{aux}");
    let default = d.ok(&["top", "us-up"]);
    assert!(default.starts_with("UID "), "{default}");
    let nopid = d.run(&["top", "us-up", "-o", "comm"]);
    assert_exit_code(&nopid, 1);
    assert!(
        stderr(&nopid).contains("Couldn't find PID field"),
        "{}",
        stderr(&nopid)
    );
    let stopped = d.run(&["top", "never"]);
    assert_exit_code(&stopped, 1);
    assert!(stderr(&stopped).contains("is not running"));

    for r in ["always", "always-net", "us-up"] {
        d.ok(&["rm", "-f", r]);
    }
    for id in ids {
        let _ = d.run(&["rm", "-f", &id]);
        assert_no_cgroup(&id);
    }
}

fn inspect_f_net(d: &Docker, net: &str) -> String {
    d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{index .Options \"com.docker.network.bridge.name\"}}",
        net,
    ])
}

#[test]
fn system_prune_filters_by_label_and_until() {
    require_root!();
    let d = Docker::new();
    let c = |name: &str, label: &str| {
        d.ok(&[
            "create",
            "--name",
            name,
            "--label",
            label,
            "--network",
            "none",
            "busybox",
            "true",
        ])
    };
    c("keep", "keep=1");
    c("drop", "drop=1");
    let out = d.run(&["system", "prune", "-f", "--filter", "label=drop"]);
    assert_exit_code(&out, 0);
    let listed = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(listed, "keep", "{}", stdout(&out));
    // Created just now: not before an hour ago.
    d.ok(&["system", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "keep");
    d.ok(&["system", "prune", "-f", "--filter", "label!=drop"]);
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "");
    // docker's errors, nothing removed.
    let bad = d.run(&["system", "prune", "-f", "--filter", "color=red"]);
    assert_exit_code(&bad, 1);
    assert!(
        stderr(&bad).contains("invalid filter 'color'"),
        "{}",
        stderr(&bad)
    );
    let vols = d.run(&["system", "prune", "-f", "--volumes", "--filter", "until=1h"]);
    assert_exit_code(&vols, 1);
    assert!(stderr(&vols).contains("\"until\" filter is not supported with \"--volumes\""));
    // The question lists the filters (a closed stdin answers no).
    let ask = d.run(&["system", "prune", "--filter", "label=x"]);
    assert!(
        stdout(&ask).contains("Items to be pruned will be filtered with:\n  - label=x"),
        "{}",
        stdout(&ask)
    );
}
