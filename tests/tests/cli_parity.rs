//! End-to-end: docker CLI parity (issue 14): `--format` templates, `ps`
//! and `images` filters, the missing commands and run flags, checked
//! against docker's documented output and exit codes.

use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, require_root};

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn ps_format_templates_and_tables() {
    require_root!();
    let d = Docker::new();
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "web",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_exit_code(
        &d.run(&[
            "run",
            "--network",
            "none",
            "--name",
            "three",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ]),
        3,
    );
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]), "web");
    assert_eq!(d.ok(&["ps", "--format", "{{.ID}}"]), &id[..12]);
    assert_eq!(d.ok(&["ps", "--no-trunc", "--format", "{{.ID}}"]), id);
    assert_eq!(
        d.ok(&["ps", "--format", "{{.State}} {{.Image}}"]),
        "running busybox"
    );
    // table: docker's header names, tabwriter alignment (min 10, pad 3)
    let t = d.ok(&["ps", "-a", "--format", "table {{.Names}}\\t{{.State}}"]);
    assert_eq!(
        lines(&t),
        vec!["NAMES     STATE", "three     exited", "web       running"],
        "{t}"
    );
    // json: one object per line with docker's keys
    let j = d.ok(&["ps", "--format", "{{json .}}"]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["Names"], "web");
    assert_eq!(v["State"], "running");
    assert_eq!(v["Command"], "\"sleep 60\"");
    for k in [
        "ID",
        "Image",
        "CreatedAt",
        "RunningFor",
        "Status",
        "Ports",
        "Labels",
        "Mounts",
    ] {
        assert!(v.get(k).is_some(), "{k} missing: {j}");
    }
    assert_eq!(d.ok(&["ps", "--format", "json"]), j);
    // an unknown field is docker's template error, exit 1, nothing printed
    let out = d.run(&["ps", "--format", "{{.Nope}}"]);
    assert_exit_code(&out, 1);
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out).trim(),
        "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
    );
    let out = d.run(&["ps", "--format", "{{.ID"]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("unclosed action"), "{}", stderr(&out));
    // the default table is docker's columns
    let ps = d.ok(&["ps"]);
    let head = ps.lines().next().unwrap();
    let cols: Vec<&str> = head
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        cols,
        vec![
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
}

#[test]
fn ps_filters_and_last() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "web1",
        "-l",
        "tier=front",
        "busybox",
        "sleep",
        "60",
    ]);
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "job0",
        "busybox",
        "true",
    ]);
    assert_exit_code(
        &d.run(&[
            "run",
            "--network",
            "none",
            "--name",
            "job3",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ]),
        3,
    );
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = d.ok(&a).lines().map(String::from).collect();
        v.sort();
        v.join(",")
    };
    assert_eq!(names(&[]), "web1");
    assert_eq!(names(&["-a"]), "job0,job3,web1");
    assert_eq!(names(&["-a", "-f", "name=job"]), "job0,job3");
    assert_eq!(names(&["-a", "-f", "name=^job0$"]), "job0");
    assert_eq!(
        names(&["-a", "-f", "name=job0", "-f", "name=web1"]),
        "job0,web1"
    );
    // status implies -a; keys combine with AND
    assert_eq!(names(&["-f", "status=exited"]), "job0,job3");
    assert_eq!(names(&["-a", "-f", "exited=3"]), "job3");
    assert_eq!(names(&["-f", "status=exited", "-f", "exited=0"]), "job0");
    assert_eq!(names(&["-a", "-f", "label=tier"]), "web1");
    assert_eq!(names(&["-a", "-f", "label=tier=front"]), "web1");
    assert_eq!(names(&["-a", "-f", "label=tier=back"]), "");
    assert_eq!(names(&["-a", "-f", "ancestor=busybox"]), "job0,job3,web1");
    assert_eq!(names(&["-a", "-f", "ancestor=alpine"]), "");
    let web_id = d.ok(&["ps", "-q", "-f", "name=web1"]);
    assert_eq!(names(&["-f", &format!("id={web_id}")]), "web1");
    // -n / -l: the newest, whatever their state
    assert_eq!(d.ok(&["ps", "-n", "1", "--format", "{{.Names}}"]), "job3");
    assert_eq!(d.ok(&["ps", "-l", "--format", "{{.Names}}"]), "job3");
    assert_eq!(names(&["-n", "2"]), "job0,job3");
    // bad filters: docker's daemon errors, exit 1
    let out = d.run(&["ps", "-f", "bogus=1"]);
    assert_exit_code(&out, 1);
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: invalid filter 'bogus'"
    );
    let out = d.run(&["ps", "-f", "status=sleepy"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("invalid filter 'status=sleepy'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn images_format_filters_and_no_trunc() {
    require_root!();
    let d = Docker::new();
    let img = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(img, "busybox:latest");
    let short = d.ok(&["images", "-q"]);
    assert_eq!(short.len(), 12, "{short}");
    let full = d.ok(&["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert!(
        full.starts_with("sha256:") && full.len() == 71 && full[7..].starts_with(&short),
        "{full}"
    );
    let t = d.ok(&["images"]);
    assert!(
        t.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{t}"
    );
    let t = d.ok(&["images", "--digests"]);
    assert!(t.lines().next().unwrap().contains("DIGEST"), "{t}");
    assert!(t.lines().nth(1).unwrap().contains("<none>"), "{t}");
    assert_eq!(d.ok(&["images", "-f", "dangling=true", "-q"]), "");
    assert_eq!(d.ok(&["images", "-f", "dangling=false", "-q"]), short);
    assert_eq!(d.ok(&["images", "-f", "reference=busy*", "-q"]), short);
    assert_eq!(d.ok(&["images", "-f", "reference=alp*", "-q"]), "");
    assert_eq!(d.ok(&["images", "-q", "busybox"]), short);
    assert_eq!(d.ok(&["images", "-q", "busybox:latest"]), short);
    assert_eq!(d.ok(&["images", "-q", "alpine"]), "");
    let j: serde_json::Value =
        serde_json::from_str(&d.ok(&["images", "--format", "json"])).unwrap();
    assert_eq!(j["Repository"], "busybox");
    assert_eq!(j["Tag"], "latest");
    let out = d.run(&["images", "-f", "dangling=maybe"]);
    assert_exit_code(&out, 1);
    let out = d.run(&["images", "--format", "{{.Nope}}"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("can't evaluate field Nope"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn inspect_format_and_image_fallback() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "web",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "web"]),
        "running"
    );
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.Name}} {{.State.Running}}", "web"]),
        "/web true"
    );
    let st: serde_json::Value =
        serde_json::from_str(&d.ok(&["inspect", "-f", "{{json .State}}", "web"])).unwrap();
    assert_eq!(st["Status"], "running");
    // a map: a missing key is <no value>, as docker's fallback prints
    assert_eq!(d.ok(&["inspect", "-f", "{{.Nope}}", "web"]), "<no value>");
    // docker indents inspect output by four spaces
    assert!(d.ok(&["inspect", "web"]).starts_with("[\n    {"));
    // images: `inspect` falls back to them, `image inspect` has docker's keys
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "busybox"])).unwrap();
    assert_eq!(v[0]["RepoTags"][0], "busybox:latest");
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["image", "inspect", "busybox"])).unwrap();
    for k in [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "RootFS",
        "Metadata",
    ] {
        assert!(v[0].get(k).is_some(), "{k} missing: {v}");
    }
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Os}}", "busybox"]),
        "linux"
    );
    let out = d.run(&["inspect", "--type", "container", "busybox"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("No such container: busybox"),
        "{}",
        stderr(&out)
    );
    let out = d.run(&["inspect", "nosuch"]);
    assert_exit_code(&out, 1);
    assert_eq!(stderr(&out).trim(), "Error: No such object: nosuch");
    assert_eq!(stdout(&out).trim(), "[]");
}

#[test]
fn network_and_volume_ls_formats() {
    require_root!();
    let d = Docker::new();
    d.ok(&["volume", "create", "vol1"]);
    assert_eq!(
        d.ok(&["volume", "ls", "--format", "{{.Name}} {{.Driver}}"]),
        "vol1 local"
    );
    assert_eq!(
        lines(&d.ok(&["volume", "ls"])),
        vec!["DRIVER    VOLUME NAME", "local     vol1"]
    );
    d.ok(&["volume", "rm", "vol1"]);
    let n = d.ok(&["network", "ls"]);
    assert!(n.starts_with("NETWORK ID"), "{n}");
    assert!(n.lines().next().unwrap().ends_with("SCOPE"), "{n}");
    d.ok(&["network", "create", "pnet"]);
    assert!(lines(&d.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}"
    ]))
    .contains(&"pnet bridge local"));
    assert!(lines(&d.ok(&["network", "ls", "-q"])).contains(&"pnet"));
    let out = d.run(&["network", "ls", "--format", "{{.Bogus}}"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("can't evaluate field Bogus"),
        "{}",
        stderr(&out)
    );
}

/// Polls `inspect -f TEMPLATE` until it prints `want` (10 s).
fn wait_for(d: &Docker, r: &str, template: &str, want: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = d.ok(&["inspect", "-f", template, r]);
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "{r}: {template} is {got}, never {want}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn create_start_rename_port_and_prune() {
    require_root!();
    let d = Docker::new();
    let id = d.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "c1",
        "busybox",
        "echo",
        "hi",
    ]);
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "c1"]),
        "created"
    );
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Status}}"]), "Created");
    // a bad flag creates nothing
    assert_exit_code(
        &d.run(&["create", "--restart", "sometimes", "busybox", "true"]),
        125,
    );
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 1);
    assert_eq!(d.ok(&["start", "-a", "c1"]), "hi");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "c1"
        ]),
        "exited 0"
    );
    // rename
    d.ok(&["rename", "c1", "c2"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.Name}}", &id]), "/c2");
    let out = d.run(&["rename", "c2", "c2"]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("same name"), "{}", stderr(&out));
    assert_exit_code(&d.run(&["rename", "nosuch", "x"]), 1);
    // port: nothing published
    assert_eq!(d.ok(&["port", "c2"]), "");
    let out = d.run(&["port", "c2", "80"]);
    assert_exit_code(&out, 1);
    assert_eq!(
        stderr(&out).trim(),
        "Error: No public port '80/tcp' published for c2"
    );
    // container prune asks, and a closed stdin is no
    let out = d.run(&["container", "prune"]);
    assert_exit_code(&out, 0);
    assert!(stdout(&out).contains("Are you sure you want to continue? [y/N]"));
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 1);
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "up",
        "busybox",
        "sleep",
        "60",
    ]);
    let out = d.ok(&["container", "prune", "-f"]);
    assert_eq!(
        out,
        format!("Deleted Containers:\n{id}\n\nTotal reclaimed space: 0B")
    );
    assert_eq!(
        d.ok(&["container", "ls", "-a", "--format", "{{.Names}}"]),
        "up"
    );
}

#[test]
fn version_info_and_log_windows() {
    require_root!();
    let d = Docker::new();
    let v = d.ok(&["version"]);
    assert!(
        v.starts_with("Client:\n Version:") && v.contains("\nServer:"),
        "{v}"
    );
    assert_eq!(
        d.ok(&["version", "-f", "{{.Client.Version}}"]),
        d.ok(&["version", "--format", "{{.Server.Version}}"])
    );
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "talk",
        "busybox",
        "echo",
        "said",
    ]);
    assert_eq!(
        d.ok(&[
            "info",
            "--format",
            "{{.Containers}} {{.ContainersStopped}} {{.Images}}"
        ]),
        "1 1 1"
    );
    let info = d.ok(&["info"]);
    assert!(
        info.contains("\n Containers: 1\n  Running: 0\n  Paused: 0\n  Stopped: 1\n Images: 1\n"),
        "{info}"
    );
    assert_exit_code(&d.run(&["info", "--format", "{{.Nope"]), 1);
    assert_eq!(d.ok(&["logs", "--since", "1h", "talk"]), "said");
    assert_eq!(d.ok(&["logs", "--until", "1h", "talk"]), "");
    assert_eq!(
        d.ok(&[
            "logs",
            "--since",
            "2000-01-01T00:00:00Z",
            "--until",
            "2100-01-01",
            "talk"
        ]),
        "said"
    );
    assert_eq!(d.ok(&["logs", "--since", "4102444800", "talk"]), "");
    assert_exit_code(&d.run(&["logs", "--since", "yesterday", "talk"]), 1);
}

#[test]
fn restart_policies_restart_and_stop_wins() {
    require_root!();
    let d = Docker::new();
    // on-failure:2: two restarts, then it stays exited
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    wait_for(
        &d,
        "flaky",
        "{{.RestartCount}} {{.State.Status}}",
        "2 exited",
    );
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.ExitCode}}",
            "flaky"
        ]),
        "2 1"
    );
    assert_eq!(d.ok(&["logs", "flaky"]), "run\nrun\nrun");
    // a start by the user begins counting again (docker resets the count)
    d.ok(&["start", "flaky"]);
    wait_for(
        &d,
        "flaky",
        "{{.RestartCount}} {{.State.Status}}",
        "2 exited",
    );
    assert_eq!(d.ok(&["logs", "flaky"]).lines().count(), 6);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "flaky"
        ]),
        "on-failure:2"
    );
    // on-failure does not restart a success
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ]);
    wait_for(&d, "fine", "{{.State.Status}}", "exited");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(d.ok(&["inspect", "-f", "{{.RestartCount}}", "fine"]), "0");
    // always: comes back until stopped; a stop is final
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "loop",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "0.2",
    ]);
    wait_for(&d, "loop", "{{gt .RestartCount 0}}", "true");
    d.ok(&["stop", "-t", "1", "loop"]);
    let n = d.ok(&["inspect", "-f", "{{.RestartCount}}", "loop"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.RestartCount}}",
            "loop"
        ]),
        format!("exited {n}")
    );
    // bad policies: 125, one line, nothing created
    for bad in ["sometimes", "always:3", "on-failure:x", ":2"] {
        let out = d.run(&["run", "--restart", bad, "busybox", "true"]);
        assert_exit_code(&out, 125);
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
    let out = d.run(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_exit_code(&out, 125);
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), 3);
}

#[test]
fn run_flags_reach_the_container() {
    require_root!();
    let d = Docker::new();
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(args);
        d.ok(&a)
    };
    let bad = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(args);
        let out = d.run(&a);
        assert_exit_code(&out, 125);
        assert_eq!(
            stderr(&out).lines().count(),
            1,
            "{args:?}: {}",
            stderr(&out)
        );
    };
    assert_eq!(
        run(&[
            "--ulimit",
            "nofile=512:1024",
            "busybox",
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn"
        ]),
        "512\n1024"
    );
    bad(&["--ulimit", "nofile=10:5", "busybox", "true"]);
    bad(&["--ulimit", "bogus=1", "busybox", "true"]);
    let df = run(&["--shm-size", "8m", "busybox", "df", "-k", "/dev/shm"]);
    assert!(df.contains(" 8192 "), "{df}");
    assert_eq!(
        run(&[
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "busybox",
            "cat",
            "/proc/sys/net/ipv4/ip_forward"
        ]),
        "1"
    );
    bad(&["--sysctl", "vm.swappiness=1", "busybox", "true"]);
    let gid_daemon = run(&[
        "busybox",
        "sh",
        "-c",
        "grep ^daemon: /etc/group | cut -d: -f3",
    ]);
    let groups = run(&[
        "--group-add",
        "1234",
        "--group-add",
        "daemon",
        "busybox",
        "id",
        "-G",
    ]);
    let groups: Vec<&str> = groups.split_whitespace().collect();
    assert!(
        groups.contains(&"1234") && groups.contains(&gid_daemon.as_str()),
        "{groups:?}"
    );
    bad(&["--group-add", "nosuchgroup", "busybox", "true"]);
    assert_eq!(
        run(&[
            "--oom-score-adj",
            "500",
            "busybox",
            "cat",
            "/proc/self/oom_score_adj"
        ]),
        "500"
    );
    bad(&["--oom-score-adj", "2000", "busybox", "true"]);
    // host namespaces: the same namespace as ours
    for (flag, ns) in [("--pid", "pid"), ("--ipc", "ipc"), ("--uts", "uts")] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let path = format!("/proc/self/ns/{ns}");
        assert_eq!(
            run(&[flag, "host", "busybox", "readlink", &path]),
            host.to_str().unwrap(),
            "{flag}"
        );
        assert_ne!(
            run(&["busybox", "readlink", &path]),
            host.to_str().unwrap(),
            "{flag} default"
        );
        bad(&[flag, "container:other", "busybox", "true"]);
    }
    bad(&["--uts", "host", "-h", "named", "busybox", "true"]);
    // labels
    let lf = e2e::TempDir::new("labels");
    let lpath = lf.path().join("labels");
    std::fs::write(&lpath, "# comment\nfrom=file\n").unwrap();
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "lab",
        "-l",
        "a=b",
        "--label",
        "flag",
        "--label-file",
        lpath.to_str().unwrap(),
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .Config.Labels}}", "lab"]),
        r#"{"a":"b","flag":"","from":"file"}"#
    );
    assert_eq!(
        d.ok(&["ps", "--format", "{{.Labels}}|{{.Label \"a\"}}"]),
        "a=b,flag=,from=file|b"
    );
    // cidfile: written, and a second run refuses to overwrite it
    let cid = lf.path().join("cid");
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--cidfile",
        cid.to_str().unwrap(),
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id);
    let out = d.run(&[
        "run",
        "-d",
        "--network",
        "none",
        "--cidfile",
        cid.to_str().unwrap(),
        "busybox",
        "true",
    ]);
    assert_exit_code(&out, 125);
    assert!(
        stderr(&out).contains("Container ID file found"),
        "{}",
        stderr(&out)
    );
    // --init: an init when the host has one, else a clear refusal
    let out = d.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--init",
        "busybox",
        "cat",
        "/proc/1/cmdline",
    ]);
    if out.status.success() {
        assert!(
            stdout(&out).starts_with("/sbin/docker-init"),
            "{}",
            stdout(&out)
        );
    } else {
        assert_exit_code(&out, 125);
        assert!(stderr(&out).contains("no init binary"), "{}", stderr(&out));
    }
    assert_eq!(
        d.ok(&["ps", "-aq"]).lines().count(),
        2,
        "refused runs left records"
    );
}

#[test]
fn stop_signal_and_stop_timeout() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "sig",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' USR1; while true; do sleep 0.1; done",
    ]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Config.StopSignal}}", "sig"]),
        "USR1"
    );
    d.ok(&["stop", "sig"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "sig"]), "7");
    // sleep as PID 1 ignores SIGTERM: the 1 s timeout, not docker's 10 s, ends it
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "slow",
        "--stop-timeout",
        "1",
        "busybox",
        "sleep",
        "60",
    ]);
    let t = std::time::Instant::now();
    d.ok(&["stop", "slow"]);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(6),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "slow"]),
        "137"
    );
    let out = d.run(&["run", "--rm", "--stop-signal", "NOPE", "busybox", "true"]);
    assert_exit_code(&out, 125);
}
