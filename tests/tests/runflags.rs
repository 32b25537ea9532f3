//! End-to-end: the run flags of issue 14 that join or borrow from another
//! container (`--network/--pid/--ipc container:X`, `--volumes-from`),
//! `--init`, `attach` and `-a`/`--sig-proxy`/`--detach-keys`, `--pull`,
//! `--platform`, `--annotation`, `--oom-kill-disable`, checked against
//! docker's documented behaviour; bad input exits 125 with one line and
//! creates nothing.

use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, require_root};
use std::io::{Read, Write};
use std::process::Stdio;

/// `run` with `args`: exit 125, one line on stderr containing `want`, and
/// no container more than before.
fn refused(d: &Docker, args: &[&str], want: &str) {
    let before = d.ok(&["ps", "-aq"]).lines().count();
    let out = d.run(args);
    assert_exit_code(&out, 125);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: want {want:?}, got {err}");
    assert_eq!(
        d.ok(&["ps", "-aq"]).lines().count(),
        before,
        "{args:?} left a container"
    );
}

fn sleeper(d: &Docker, name: &str, extra: &[&str]) -> String {
    let mut a = vec!["run", "-d", "--name", name];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["busybox", "sleep", "600"]);
    d.ok(&a)
}

fn ns(pid: u64, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .to_string()
}

#[test]
fn network_container_shares_netns_and_files() {
    require_root!();
    let d = Docker::new();
    let id = sleeper(&d, "target", &["--network", "none", "-h", "tgt"]);
    let pid = d.inspect("target")["State"]["Pid"].as_u64().unwrap();
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "container:target",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; hostname; cat /etc/hosts",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), ns(pid, "net"), "{out}");
    // docker: the joiner's hostname and /etc files are the target's.
    assert_eq!(lines.next().unwrap(), "tgt", "{out}");
    assert!(out.contains("\ttgt"), "{out}");
    // Inspect names the target by id.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "joiner",
        "--network",
        "container:target",
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(
        d.inspect("joiner")["HostConfig"]["NetworkMode"],
        format!("container:{id}")
    );
    let jpid = d.inspect("joiner")["State"]["Pid"].as_u64().unwrap();
    assert_eq!(ns(jpid, "net"), ns(pid, "net"));
    // On a bridge network the joiner has the target's interface and address.
    sleeper(&d, "web", &[]);
    let ip = d.inspect("web")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!ip.is_empty());
    let addr = d.ok(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        "busybox",
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(addr.contains(&format!("inet {ip}/")), "{addr}");
    // docker's conflicts, and targets that are not there or not running.
    refused(
        &d,
        &[
            "run",
            "--network",
            "container:target",
            "-p",
            "80:80",
            "busybox",
            "true",
        ],
        "conflicting options: port publishing and the container type network mode",
    );
    refused(
        &d,
        &[
            "run",
            "--network",
            "container:target",
            "-h",
            "x",
            "busybox",
            "true",
        ],
        "conflicting options: hostname and the network mode",
    );
    refused(
        &d,
        &["run", "--network", "container:nosuch", "busybox", "true"],
        "No such container: nosuch",
    );
    d.ok(&["create", "--name", "stopped", "busybox", "true"]);
    refused(
        &d,
        &["run", "--network", "container:stopped", "busybox", "true"],
        "cannot join network of a non running container: stopped",
    );
    // A created joiner whose target is gone at start: refused, not run.
    d.ok(&[
        "create",
        "--name",
        "late",
        "--network",
        "container:stopped",
        "busybox",
        "true",
    ]);
    let out = d.run(&["start", "late"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("non running container"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pid_and_ipc_container_join_the_targets_namespaces() {
    require_root!();
    let d = Docker::new();
    sleeper(&d, "target", &["--network", "none"]);
    let pid = d.inspect("target")["State"]["Pid"].as_u64().unwrap();
    // docker: with --pid container:X, X's processes are visible.
    let ps = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        "container:target",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; ps -o args",
    ]);
    assert_eq!(ps.lines().next().unwrap(), ns(pid, "pid"), "{ps}");
    assert!(ps.contains("sleep 600"), "{ps}");
    // IPC: the target's namespace (its /dev/shm is not shared: see nsjoin).
    let ipc = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ipc",
        "container:target",
        "busybox",
        "readlink",
        "/proc/self/ns/ipc",
    ]);
    assert_eq!(ipc, ns(pid, "ipc"));
    let id = d.inspect("target")["Id"].as_str().unwrap().to_string();
    d.ok(&[
        "create",
        "--name",
        "joined",
        "--pid",
        "container:target",
        "--ipc",
        "container:target",
        "busybox",
        "true",
    ]);
    let h = &d.inspect("joined")["HostConfig"];
    assert_eq!(h["PidMode"], format!("container:{id}"));
    assert_eq!(h["IpcMode"], format!("container:{id}"));
    refused(
        &d,
        &["run", "--pid", "container:nosuch", "busybox", "true"],
        "No such container: nosuch",
    );
    d.ok(&["stop", "-t", "0", "target"]);
    refused(
        &d,
        &["run", "--ipc", "container:target", "busybox", "true"],
        "cannot join IPC of a non running container: target",
    );
    refused(
        &d,
        &["run", "--uts", "container:target", "busybox", "true"],
        "invalid --uts: container:target",
    );
}

#[test]
fn volumes_from_copies_volumes_and_binds() {
    require_root!();
    let d = Docker::new();
    let host = e2e::TempDir::new("vfrom");
    std::fs::write(host.path().join("f"), "from host").unwrap();
    let bind = format!("{}:/bind", host.path().display());
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "src",
        "-v",
        "data:/data",
        "-v",
        &bind,
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo in-volume > /data/v",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "src",
        "busybox",
        "sh",
        "-c",
        "cat /data/v /bind/f; echo; touch /data/w && echo rw; mountpoint -q /scratch || echo no-tmpfs",
    ]);
    assert_eq!(out, "in-volume\nfrom host\nrw\nno-tmpfs");
    // :ro makes every copied mount read-only.
    let out = d.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "src:ro",
        "busybox",
        "touch",
        "/data/x",
    ]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("Read-only"), "{}", stderr(&out));
    d.ok(&[
        "create",
        "--name",
        "user",
        "--volumes-from",
        "src:ro",
        "busybox",
        "true",
    ]);
    let v = d.inspect("user");
    assert_eq!(v["HostConfig"]["VolumesFrom"][0], "src:ro");
    refused(
        &d,
        &["run", "--volumes-from", "nosuch", "busybox", "true"],
        "No such container: nosuch",
    );
    refused(
        &d,
        &["run", "--volumes-from", "src:xx", "busybox", "true"],
        "invalid mode: xx",
    );
    d.ok(&["rm", "-f", "user", "src"]);
    d.ok(&["volume", "rm", "data"]);
}

#[test]
fn init_is_pid1_forwards_signals_and_reaps() {
    require_root!();
    e2e::skip_unless!(
        std::path::Path::new("/usr/bin/tini-static").exists(),
        "no /usr/bin/tini-static (scripts/deps.sh installs tini)"
    );
    let d = Docker::new();
    let cmdline = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--init",
        "busybox",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline",
    ]);
    assert_eq!(
        cmdline.trim(),
        "/sbin/docker-init -- sh -c tr '\\0' ' ' < /proc/1/cmdline"
    );
    // A signal reaches the child: the shell's trap runs and exits 42.
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--init",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 42' TERM; while :; do sleep 0.1; done",
    ]);
    assert_eq!(d.inspect(&id)["HostConfig"]["Init"], true);
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.ok(&["kill", "-s", "TERM", &id]);
    assert_eq!(d.wait_status(&id, "exited")["State"]["ExitCode"], 42);
    // Zombies are reaped: an orphan is reparented to PID 1, which must
    // wait for it. `exec sleep` as PID 1 never does (the control run);
    // docker-init does.
    let sh = "sh -c 'sleep 0.1 &'; exec sleep 600";
    let zombies_with = |init: bool| {
        let mut a = vec!["run", "-d", "--network", "none"];
        if init {
            a.push("--init");
        }
        a.extend_from_slice(&["busybox", "sh", "-c", sh]);
        let id = d.ok(&a);
        let pid = d.inspect(&id)["State"]["Pid"].as_u64().unwrap();
        let pidns = ns(pid, "pid");
        // Long enough for the orphan to exit and be reaped (or not).
        std::thread::sleep(std::time::Duration::from_millis(800));
        let mut n = 0;
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let p = e.path();
            let same = std::fs::read_link(p.join("ns/pid"))
                .map(|l| l.to_string_lossy() == pidns)
                .unwrap_or(false);
            let zombie = std::fs::read_to_string(p.join("stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false);
            if same && zombie {
                n += 1;
            }
        }
        d.ok(&["rm", "-f", &id]);
        n
    };
    assert_eq!(
        zombies_with(false),
        1,
        "the control run should leave a zombie"
    );
    assert_eq!(zombies_with(true), 0, "docker-init left a zombie");
    // Without --init the shell is PID 1 (cost measured in BENCHMARKS).
    let p1 = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/proc/1/comm",
    ]);
    assert_eq!(p1, "cat");
}

#[test]
fn attach_follows_a_detached_container() {
    require_root!();
    let d = Docker::new();
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo out; echo err >&2; exit 7",
    ]);
    let sock = d
        .root
        .path()
        .join("containers")
        .join(&id)
        .join("attach.sock");
    e2e::wait_for("the supervisor's attach socket", 10, || sock.exists());
    let mut child = d
        .cmd(&["attach", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give attach a moment to connect before the output comes.
    std::thread::sleep(std::time::Duration::from_millis(500));
    d.ok(&["exec", &id, "touch", "/tmp/go"]);
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(out, "out\n");
    assert!(err.contains("err\n"), "{err}");
    // docker attach exits with the container's code.
    assert_eq!(status.code(), Some(7));
    assert!(!sock.exists(), "the attach socket outlived the container");
    // stdin: a container started with -i reads what attach sends.
    let id = d.ok(&[
        "run",
        "-d",
        "-i",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "read l; echo got $l; exit 5",
    ]);
    let sock = d
        .root
        .path()
        .join("containers")
        .join(&id)
        .join("attach.sock");
    e2e::wait_for("the supervisor's attach socket", 10, || sock.exists());
    // The detach keys (here ctrl-x,y) leave it running; the rest is input.
    let out = e2e::pipe(
        &mut d.cmd(&["attach", "--detach-keys", "ctrl-x,y", &id]),
        "\x18y",
    );
    assert_exit_code(&out, 0);
    assert_eq!(d.inspect(&id)["State"]["Status"], "running");
    let out = e2e::pipe(&mut d.cmd(&["attach", &id]), "hello\n");
    assert_eq!(
        (stdout(&out).as_str(), out.status.code()),
        ("got hello\n", Some(5)),
        "{}",
        stderr(&out)
    );
    let out = d.run(&["attach", &id]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("You cannot attach to a stopped container, start it first"),
        "{}",
        stderr(&out)
    );
    let out = d.run(&["attach", "--detach-keys", "ctrl-1", &id]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("Invalid detach keys"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn attach_gives_a_terminal_its_size() {
    require_root!();
    let d = Docker::new();
    let id = d.ok(&[
        "run",
        "-d",
        "-t",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "while true; do stty size; sleep 0.1; done",
    ]);
    let sock = d
        .root
        .path()
        .join("containers")
        .join(&id)
        .join("attach.sock");
    e2e::wait_for("the supervisor's attach socket", 10, || sock.exists());
    // The protocol's resize hello, as `attach` sends it after a SIGWINCH.
    let mut c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    c.write_all(b"{\"height\":33,\"width\":99}\n").unwrap();
    e2e::wait_for("the container to see 33 rows, 99 columns", 10, || {
        d.ok(&["logs", &id]).contains("33 99")
    });
    d.ok(&["rm", "-f", &id]);
}

#[test]
fn run_attach_streams_and_sig_proxy() {
    require_root!();
    let d = Docker::new();
    let sh = "echo out; echo err >&2";
    let out = d.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-a",
        "stdout",
        "busybox",
        "sh",
        "-c",
        sh,
    ]);
    assert_exit_code(&out, 0);
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("out\n", "")
    );
    let out = d.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-a",
        "STDERR",
        "busybox",
        "sh",
        "-c",
        sh,
    ]);
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("", "err\n")
    );
    refused(
        &d,
        &["run", "-a", "stdfoo", "busybox", "true"],
        "valid streams are STDIN, STDOUT and STDERR",
    );
    refused(
        &d,
        &["run", "-d", "-a", "stdout", "busybox", "true"],
        "Conflicting options: -a and -d",
    );
    refused(
        &d,
        &["run", "--detach-keys", "ctrl-", "busybox", "true"],
        "Invalid detach keys (ctrl-) provided",
    );
    // --sig-proxy=false: a SIGTERM to the foreground run does not reach the container.
    let mut child = d
        .cmd(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--sig-proxy=false",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got; exit 3' TERM; sleep 1; echo done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!((out.as_str(), status.code()), ("done\n", Some(0)));
}

#[test]
fn pull_platform_annotation_and_oom_kill_disable() {
    require_root!();
    let d = Docker::new();
    // No registry: --pull never and missing work for a loaded image ...
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "never",
        "busybox",
        "true",
    ]);
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "missing",
        "busybox",
        "true",
    ]);
    // ... and say why they cannot pull.
    refused(
        &d,
        &["run", "--pull", "always", "busybox", "true"],
        "no registry is reachable",
    );
    refused(
        &d,
        &["run", "--pull", "missing", "nosuch", "true"],
        "Unable to find image 'nosuch:latest' locally, and no registry is reachable",
    );
    refused(
        &d,
        &["run", "--pull", "never", "nosuch", "true"],
        "No such image: nosuch:latest",
    );
    refused(
        &d,
        &["run", "--pull", "sometimes", "busybox", "true"],
        "invalid pull option: 'sometimes'",
    );
    // --platform against the image's os/arch.
    let img = &d.inspect("busybox");
    let arch = img["Architecture"].as_str().unwrap_or("amd64").to_string();
    let os = img["Os"].as_str().unwrap_or("linux").to_string();
    let here = format!("{os}/{arch}");
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--platform",
        &here,
        "busybox",
        "true",
    ]);
    let other = if arch == "arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    refused(
        &d,
        &["run", "--platform", other, "busybox", "true"],
        &format!("image with reference busybox was found but its platform ({here}) does not match the specified platform ({other})"),
    );
    refused(
        &d,
        &["run", "--platform", "a/b/c/d", "busybox", "true"],
        "--platform",
    );
    // --annotation: in the OCI config and inspect.
    let id = d.ok(&[
        "create",
        "--annotation",
        "org.example.k=v",
        "--annotation",
        "x=",
        "busybox",
        "true",
    ]);
    assert_eq!(
        d.inspect(&id)["HostConfig"]["Annotations"]["org.example.k"],
        "v"
    );
    d.ok(&["start", &id]);
    let cfg: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            d.root
                .path()
                .join("containers")
                .join(&id)
                .join("config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["annotations"]["org.example.k"], "v");
    assert_eq!(cfg["annotations"]["x"], "");
    refused(
        &d,
        &["run", "--annotation", "novalue", "busybox", "true"],
        "--annotation",
    );
    // --oom-kill-disable: memory.oom_control on v1; docker's warning on v2.
    let out = d.run(&[
        "run",
        "-d",
        "--network",
        "none",
        "-m",
        "32m",
        "--oom-kill-disable",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_exit_code(&out, 0);
    let id = stdout(&out).trim().to_string();
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists();
    assert_eq!(d.inspect(&id)["HostConfig"]["OomKillDisable"], v1);
    if v1 {
        let cfg: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                d.root
                    .path()
                    .join("containers")
                    .join(&id)
                    .join("config.json"),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            cfg["linux"]["resources"]["memory"]["disableOOMKiller"],
            true
        );
        let found = std::process::Command::new("find")
            .args([
                "/sys/fs/cgroup/memory",
                "-type",
                "d",
                "-name",
                &format!("*{id}*"),
            ])
            .output()
            .unwrap();
        let dir = stdout(&found).lines().next().unwrap_or("").to_string();
        assert!(!dir.is_empty(), "no memory cgroup for {id}");
        let ctl = std::fs::read_to_string(format!("{dir}/memory.oom_control")).unwrap();
        assert!(ctl.contains("oom_kill_disable 1"), "{ctl}");
    } else {
        assert!(
            stderr(&out).contains("OomKillDisable discarded"),
            "{}",
            stderr(&out)
        );
    }
}
