//! End-to-end: the container endpoints of `mydocker system service` beyond
//! run/stop/rm (exec, archive, top, stats, pause, rename, update, prune,
//! labels and filters, errors), driven by the real docker CLI and checked
//! against what the mydocker CLI shows.

use e2e::apisvc::{docker_cli_present, ApiService as Service};
use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, require_root, skip_unless, wait_for, TempDir};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

macro_rules! require_docker_cli {
    () => {
        require_root!();
        skip_unless!(
            docker_cli_present(),
            "no docker CLI (scripts/deps.sh installs docker.io)"
        );
    };
}

fn sleeper(svc: &Service, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "120"]);
    svc.docker_ok(&args)
}

#[test]
fn docker_exec_without_and_with_a_tty() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);
    sleeper(&svc, "apiexec", &[]);

    // Streams apart, the exit code the command's.
    let out = svc.docker(&[
        "exec",
        "apiexec",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 5",
    ]);
    assert_exit_code(&out, 5);
    assert_eq!(
        (stdout(&out), stderr(&out)),
        ("out\n".into(), "err\n".into())
    );
    let out = svc.docker_ok(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "apiexec",
        "sh",
        "-c",
        "echo $X $(pwd)",
    ]);
    assert_eq!(out, "1 /tmp");
    // -i: the client's stdin, to its end.
    let mut cat = svc.docker_cmd(&["exec", "-i", "apiexec", "cat"]);
    let out = e2e::pipe(&mut cat, "through exec\n");
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out), "through exec\n");
    // -d: runs on after the answer.
    svc.docker_ok(&["exec", "-d", "apiexec", "sh", "-c", "echo done > /tmp/d"]);
    wait_for("the detached exec", 10, || {
        d.run(&["exec", "apiexec", "cat", "/tmp/d"]).stdout == b"done\n"
    });
    let out = svc.docker(&["exec", "apiexec", "nosuchcmd"]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));

    // -it under a terminal: a tty inside, the size the client's terminal
    // has (the CLI resizes the exec once it runs), the code back.
    let inner = format!(
        "stty rows 33 cols 101; docker -H {} exec -it apiexec sh -c 'tty; sleep 1; stty size; exit 3'",
        svc.host()
    );
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env("DOCKER_CONFIG", svc.config.path())
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("33 101"), "{text}");
    assert_eq!(out.status.code(), Some(3), "{text}");

    // The exec's record, over the raw API.
    let (st, body) = svc.http(
        "POST",
        "/containers/apiexec/exec",
        r#"{"Cmd": ["true"], "AttachStdout": true}"#,
    );
    assert_eq!(st, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, body) = svc.http("GET", &format!("/exec/{id}/json"), "");
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Running"], false);
    assert_eq!(v["ExitCode"], Value::Null);
    assert_eq!(v["ProcessConfig"]["entrypoint"], "true");
    let (st, _) = svc.http("POST", &format!("/exec/{id}/start"), r#"{"Detach": true}"#);
    assert_eq!(st, 200);
    wait_for("the exit code", 10, || {
        let (_, b) = svc.http("GET", &format!("/exec/{id}/json"), "");
        serde_json::from_str::<Value>(&b).unwrap()["ExitCode"] == 0
    });
    let (st, m) = svc.message("POST", &format!("/exec/{id}/start"), "{}");
    assert_eq!(st, 409, "{m}");
    // A running one's Pid is its command's.
    let (_, body) = svc.http(
        "POST",
        "/containers/apiexec/exec",
        r#"{"Cmd": ["sleep", "7"]}"#,
    );
    let id = serde_json::from_str::<Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        svc.http("POST", &format!("/exec/{id}/start"), r#"{"Detach": true}"#)
            .0,
        200
    );
    wait_for("the exec's command", 10, || {
        let (_, b) = svc.http("GET", &format!("/exec/{id}/json"), "");
        let pid = serde_json::from_str::<Value>(&b).unwrap()["Pid"]
            .as_u64()
            .unwrap_or(0);
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x007\x00")
    });
    assert_eq!(svc.http("GET", "/exec/nosuch/json", "").0, 404);
    svc.docker_ok(&["rm", "-f", "apiexec"]);
}

#[test]
fn docker_run_it_ends_with_the_container_and_resizes_its_tty() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);
    // The client's terminal stays open: the container's end must end it.
    let inner = format!(
        "stty rows 33 cols 101; docker -H {} run -it --rm --network none busybox sh -c 'sleep 1; stty size; exit 4'",
        svc.host()
    );
    let mut c = Command::new("timeout");
    c.args(["30", "script", "-qec", &inner, "/dev/null"])
        .env("DOCKER_CONFIG", svc.config.path())
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null());
    let out = c.output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(text.contains("33 101"), "{text}");
    assert!(d.containers_dir_entries().is_empty());

    // A detached tty container: resize reaches its terminal.
    let id = svc.docker_ok(&["run", "-d", "-t", "--network", "none", "busybox", "sh"]);
    let (st, _) = svc.http("POST", &format!("/containers/{id}/resize?h=40&w=120"), "");
    assert_eq!(st, 200);
    assert_eq!(
        d.ok(&["exec", &id, "sh", "-c", "stty size < /proc/1/fd/0"]),
        "40 120"
    );
    let (st, _) = svc.http("POST", &format!("/containers/{id}/resize?h=x&w=1"), "");
    assert_eq!(st, 400);
    svc.docker_ok(&["rm", "-f", &id]);
}

#[test]
fn python_sdk_exec_run() {
    require_docker_cli!();
    skip_unless!(
        e2e::apisvc::python_sdk_present(),
        "no python3 docker SDK (python3-docker)"
    );
    let d = Docker::new();
    let svc = Service::start(&d);
    let script = format!(
        r#"
import docker
c = docker.DockerClient(base_url="unix://{}")
ct = c.containers.run("busybox", ["sleep", "60"], detach=True, network_mode="none", labels={{"app": "py"}})
r = ct.exec_run(["sh", "-c", "echo py; exit 2"])
print(r.exit_code, r.output.decode().strip())
r = ct.exec_run("cat /etc/hostname", demux=True)
print(len(r.output[0].decode().strip()))
print([x.id for x in c.containers.list(filters={{"label": "app=py"}})] == [ct.id])
ct.remove(force=True)
"#,
        svc.sock.display()
    );
    assert_eq!(e2e::apisvc::python(&script), "2 py\n12\nTrue\n");
}

#[test]
fn docker_cp_both_ways() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);
    sleeper(&svc, "apicp", &[]);
    let host = TempDir::new("apicp-host");
    let file = host.path().join("hello.txt");
    std::fs::write(&file, "hello\n").unwrap();
    std::fs::create_dir_all(host.path().join("tree/sub")).unwrap();
    std::fs::write(host.path().join("tree/sub/f"), "deep\n").unwrap();
    let p = |x: &PathBuf| x.to_str().unwrap().to_string();

    // In: into a directory, to a new name, a whole tree.
    svc.docker_ok(&["cp", &p(&file), "apicp:/tmp/"]);
    svc.docker_ok(&["cp", &p(&file), "apicp:/tmp/renamed"]);
    svc.docker_ok(&["cp", &p(&host.path().join("tree")), "apicp:/tmp/"]);
    assert_eq!(d.ok(&["exec", "apicp", "cat", "/tmp/hello.txt"]), "hello");
    assert_eq!(d.ok(&["exec", "apicp", "cat", "/tmp/renamed"]), "hello");
    assert_eq!(d.ok(&["exec", "apicp", "cat", "/tmp/tree/sub/f"]), "deep");

    // Out: a file the container made, a directory, a file bound over the rootfs.
    d.ok(&[
        "exec",
        "apicp",
        "sh",
        "-c",
        "mkdir -p /tmp/o/p && echo made > /tmp/o/p/x",
    ]);
    let back = host.path().join("back");
    svc.docker_ok(&["cp", "apicp:/tmp/o/p/x", &p(&back)]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "made\n");
    let dir_back = host.path().join("dir_back");
    svc.docker_ok(&["cp", "apicp:/tmp/o", &p(&dir_back)]);
    assert_eq!(
        std::fs::read_to_string(dir_back.join("p/x")).unwrap(),
        "made\n"
    );
    let hn = host.path().join("hn");
    svc.docker_ok(&["cp", "apicp:/etc/hostname", &p(&hn)]);
    assert_eq!(
        std::fs::read_to_string(&hn).unwrap().trim(),
        d.ok(&["exec", "apicp", "hostname"])
    );

    // A missing path is docker's error; a stopped container still copies.
    let out = svc.docker(&["cp", "apicp:/nope", &p(&host.path().join("x"))]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("Could not find the file /nope in container apicp"),
        "{}",
        stderr(&out)
    );
    // A read-only rootfs takes nothing in (docker's 403).
    sleeper(&svc, "apicpro", &["--read-only"]);
    let out = svc.docker(&["cp", &p(&file), "apicpro:/tmp/"]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    svc.docker_ok(&["rm", "-f", "apicpro"]);

    svc.docker_ok(&["stop", "-t", "0", "apicp"]);
    let stopped = host.path().join("stopped");
    svc.docker_ok(&["cp", "apicp:/tmp/renamed", &p(&stopped)]);
    assert_eq!(std::fs::read_to_string(&stopped).unwrap(), "hello\n");
    svc.docker_ok(&["rm", "apicp"]);
}

#[test]
fn top_stats_pause_rename_update_labels_and_prune() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);
    let id = sleeper(&svc, "apiops", &["-l", "tier=web", "--label", "team"]);

    let top = svc.docker_ok(&["top", "apiops"]);
    assert!(top.lines().next().unwrap().contains("PID"), "{top}");
    assert!(top.contains("sleep 120"), "{top}");
    let pid = d.inspect("apiops")["State"]["Pid"].to_string();
    assert!(
        top.lines()
            .skip(1)
            .any(|l| l.split_whitespace().any(|f| f == pid)),
        "{top}"
    );
    let top = svc.docker_ok(&["top", "apiops", "-o", "pid,comm"]);
    assert!(
        top.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [pid.as_str(), "sleep"]),
        "{top}"
    );

    let st = svc.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
        "apiops",
    ]);
    assert!(st.starts_with("apiops 1 "), "{st}");
    // memory.stat's counters and the block I/O counters, from cgctl.
    d.ok(&[
        "exec",
        "apiops",
        "sh",
        "-c",
        "dd if=/dev/zero of=/tmp/io bs=4k count=256 oflag=direct 2>/dev/null; sync",
    ]);
    let (code, body) = svc.http("GET", "/containers/apiops/stats?stream=false", "");
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let mem = v["memory_stats"]["stats"].as_object().unwrap();
    assert!(mem.contains_key("cache") || mem.contains_key("file"), "{v}");
    // Counted only where the container's files are on a block device.
    let dev = std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(d.root.path()).unwrap());
    if nix::sys::stat::major(dev) != 0 {
        let io = v["blkio_stats"]["io_service_bytes_recursive"]
            .as_array()
            .unwrap();
        assert!(
            io.iter()
                .any(|e| e["op"] == "write" && e["value"].as_u64() >= Some(1 << 20)),
            "{v}"
        );
        let out = svc.docker_ok(&["stats", "--no-stream", "--format", "{{.BlockIO}}", "apiops"]);
        assert!(!out.ends_with("/ 0B"), "{out}");
    }

    // Labels: in inspect, in the list, as filters.
    assert_eq!(
        svc.docker_ok(&["inspect", "-f", "{{.Config.Labels.tier}}", "apiops"]),
        "web"
    );
    assert_eq!(
        svc.docker_ok(&["ps", "-q", "--no-trunc", "--filter", "label=tier=web"]),
        id
    );
    assert_eq!(
        svc.docker_ok(&["ps", "-q", "--filter", "label=team"]),
        &id[..12]
    );
    assert_eq!(
        svc.docker_ok(&["ps", "-q", "--filter", "label=tier=db"]),
        ""
    );
    assert_eq!(
        svc.docker_ok(&[
            "ps",
            "-q",
            "--filter",
            "name=apiops",
            "--filter",
            "status=running"
        ]),
        &id[..12]
    );

    svc.docker_ok(&["pause", "apiops"]);
    assert_eq!(d.inspect("apiops")["State"]["Status"], "paused");
    let again = svc.docker(&["pause", "apiops"]);
    assert_exit_code(&again, 1);
    assert!(
        stderr(&again).contains("is already paused"),
        "{}",
        stderr(&again)
    );
    svc.docker_ok(&["unpause", "apiops"]);
    assert_eq!(d.inspect("apiops")["State"]["Status"], "running");

    svc.docker_ok(&["rename", "apiops", "apiops2"]);
    assert_eq!(d.inspect("apiops2")["Id"], id.as_str());
    assert_exit_code(&d.run(&["inspect", "apiops"]), 1);

    svc.docker_ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "apiops2",
    ]);
    let st = svc.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}",
        "apiops2",
    ]);
    assert!(st.ends_with("/ 64MiB"), "{st}");

    // Prune: the stopped ones only (a label filter narrows it).
    let done = svc.docker_ok(&[
        "create", "--name", "apidone", "-l", "keep=no", "busybox", "true",
    ]);
    let kept = svc.docker_ok(&["create", "--name", "apikept", "busybox", "true"]);
    let out = svc.docker_ok(&["container", "prune", "-f", "--filter", "label=keep=no"]);
    assert!(out.contains(&done), "{out}");
    assert!(!out.contains(&kept), "{out}");
    let out = svc.docker_ok(&["container", "prune", "-f"]);
    assert!(out.contains(&kept), "{out}");
    assert_eq!(svc.docker_ok(&["ps", "-aq", "--no-trunc"]), id);
    svc.docker_ok(&["rm", "-f", "apiops2"]);
}

#[test]
fn bad_requests_get_dockers_codes_and_a_client_that_leaves_harms_nothing() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);
    for (m, p) in [
        ("POST", "/containers/nope/exec"),
        ("GET", "/containers/nope/top"),
        ("GET", "/containers/nope/stats?stream=false"),
        ("GET", "/containers/nope/archive?path=/"),
        ("POST", "/containers/nope/pause"),
        ("POST", "/containers/nope/rename?name=x"),
        ("POST", "/containers/nope/update"),
    ] {
        let (st, msg) = svc.message(m, p, "{}");
        assert_eq!(
            (st, msg.as_str()),
            (404, "No such container: nope"),
            "{m} {p}"
        );
    }
    let out = svc.docker(&["exec", "nope", "true"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("No such container: nope"),
        "{}",
        stderr(&out)
    );

    sleeper(&svc, "apibad", &[]);
    let (st, _) = svc.http("POST", "/containers/apibad/exec", "{\"Cmd\": ");
    assert_eq!(st, 400);
    let (st, _) = svc.http("POST", "/containers/apibad/update", "[1");
    assert_eq!(st, 400);
    let (st, msg) = svc.message("POST", "/containers/apibad/exec", r#"{"Cmd": []}"#);
    assert_eq!((st, msg.as_str()), (400, "No exec command specified"));
    let (st, _) = svc.message(
        "POST",
        "/containers/apibad/update",
        r#"{"BlkioWeight": 10}"#,
    );
    assert_eq!(st, 400);
    let (st, msg) = svc.message("POST", "/containers/apibad/rename?name=apibad", "");
    assert_eq!(st, 400, "{msg}");
    let (st, msg) = svc.message(
        "POST",
        "/containers/create",
        r#"{"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "syslog"}}}"#,
    );
    assert_eq!(st, 400, "{msg}");
    assert!(msg.contains("no log driver named 'syslog'"), "{msg}");
    let out = svc.docker(&["run", "--log-driver", "syslog", "busybox", "true"]);
    assert_exit_code(&out, 125);
    assert!(
        stderr(&out).contains("no log driver named 'syslog' is registered"),
        "{}",
        stderr(&out)
    );

    // A stats stream and an exec whose clients die: the container and the
    // service go on.
    let mut stats = svc
        .docker_cmd(&["stats", "apibad"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut exec = svc
        .docker_cmd(&["exec", "apibad", "sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stats.kill().unwrap();
    exec.kill().unwrap();
    let _ = stats.wait();
    let _ = exec.wait();
    assert_eq!(d.inspect("apibad")["State"]["Status"], "running");
    assert_eq!(svc.docker_ok(&["exec", "apibad", "echo", "alive"]), "alive");

    svc.docker_ok(&["stop", "-t", "0", "apibad"]);
    let (st, msg) = svc.message("POST", "/containers/apibad/exec", r#"{"Cmd": ["true"]}"#);
    assert_eq!(st, 409, "{msg}");
    assert!(msg.contains("is not running"), "{msg}");
    let (st, _) = svc.message("GET", "/containers/apibad/top", "");
    assert_eq!(st, 409);
    svc.docker_ok(&["rm", "apibad"]);
}

#[test]
fn create_maps_log_config_healthchecks_and_container_modes() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);

    // --log-opt: json-file rotated at max-size, max-file files kept.
    let id = svc.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 300); do echo line-$i; done",
    ]);
    assert_eq!(svc.docker_ok(&["wait", &id]), "0");
    assert_eq!(
        svc.docker_ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", &id]),
        r#"{"Type":"json-file","Config":{"max-file":"2","max-size":"1k"}}"#
    );
    let dir = d.root.path().join("containers").join(&id);
    assert!(dir.join(format!("{id}-json.log.1")).exists());
    assert!(!dir.join(format!("{id}-json.log.2")).exists());
    let logs = svc.docker_ok(&["logs", &id]);
    assert!(logs.ends_with("line-300"), "{logs}");
    assert!(!logs.contains("line-1\n"), "{logs}");
    // --log-driver none: nothing to read, docker's error.
    let id = svc.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "hi",
    ]);
    assert_eq!(
        svc.docker_ok(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", &id]),
        "none"
    );
    let out = svc.docker(&["logs", &id]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&out)
    );
    let out = svc.docker(&["run", "--rm", "--log-opt", "max-size=x", "busybox", "true"]);
    assert_exit_code(&out, 125);
    assert!(stderr(&out).contains("max-size"), "{}", stderr(&out));

    // --health-*: State.Health in docker inspect, the status in ps.
    sleeper(
        &svc,
        "apihealth",
        &[
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "300ms",
            "--health-retries",
            "1",
        ],
    );
    let health =
        |svc: &Service| svc.docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", "apihealth"]);
    wait_for("unhealthy", 15, || health(&svc) == "unhealthy");
    d.ok(&["exec", "apihealth", "touch", "/tmp/ok"]);
    wait_for("healthy", 15, || health(&svc) == "healthy");
    let ins: Value = serde_json::from_str(&svc.docker_ok(&["inspect", "apihealth"])).unwrap();
    assert_eq!(ins[0]["Config"]["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(
        ins[0]["Config"]["Healthcheck"]["Test"][1],
        "test -f /tmp/ok"
    );
    assert!(ins[0]["State"]["Health"]["Log"]
        .as_array()
        .is_some_and(|l| !l.is_empty()));
    let ps = svc.docker_ok(&[
        "ps",
        "--filter",
        "name=apihealth",
        "--format",
        "{{.Status}}",
    ]);
    assert!(ps.ends_with("(healthy)"), "{ps}");

    // --volumes-from, --pid/--ipc/--network container:X.
    sleeper(&svc, "apivf", &["-v", "/shared"]);
    d.ok(&["exec", "apivf", "sh", "-c", "echo vf > /shared/f"]);
    let out = svc.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "apivf:ro",
        "busybox",
        "sh",
        "-c",
        "cat /shared/f; touch /shared/g 2>/dev/null || echo ro",
    ]);
    assert_eq!(out, "vf\nro");
    let ps = svc.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        "container:apivf",
        "--ipc",
        "container:apivf",
        "busybox",
        "ps",
        "-o",
        "comm",
    ]);
    assert!(ps.lines().any(|l| l.trim() == "sleep"), "{ps}");
    let vf_id = d.inspect("apivf")["Id"].as_str().unwrap().to_string();
    let joined = svc.docker_ok(&[
        "create",
        "--network",
        "container:apivf",
        "--pid",
        "container:apivf",
        "busybox",
        "true",
    ]);
    assert_eq!(
        svc.docker_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.NetworkMode}} {{.HostConfig.PidMode}}",
            &joined
        ]),
        format!("container:{vf_id} container:{vf_id}")
    );
    let host = svc.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "container:apivf",
        "busybox",
        "hostname",
    ]);
    assert_eq!(host, d.ok(&["exec", "apivf", "hostname"]));
    let out = svc.docker(&[
        "run",
        "--rm",
        "--pid",
        "container:apinope",
        "busybox",
        "true",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("No such container: apinope"),
        "{}",
        stderr(&out)
    );
    svc.docker_ok(&["rm", "-f", &joined, "apivf", "apihealth"]);
}
