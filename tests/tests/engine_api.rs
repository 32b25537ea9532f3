//! End-to-end: `mydocker system service` driven by the real docker CLI
//! (DOCKER_HOST at the test's socket, `e2e::apisvc`) and the Python `docker` SDK, compared with
//! what the mydocker CLI shows for the same containers.

use e2e::apisvc::{docker_cli_present, ApiService as Service};
use e2e::docker::{stderr, stdout, Docker};
use e2e::{assert_exit_code, require_root, skip_unless, wait_for};
use serde_json::Value;
use std::process::Stdio;

macro_rules! require_docker_cli {
    () => {
        require_root!();
        skip_unless!(
            docker_cli_present(),
            "no docker CLI (scripts/deps.sh installs docker.io)"
        );
    };
}

fn mydocker_ids(d: &Docker) -> Vec<String> {
    let mut v: Vec<String> = d
        .ok(&["ps", "-a", "-q", "--no-trunc"])
        .split_whitespace()
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn docker_cli_runs_lists_logs_inspects_stops_and_removes() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);
    let v = svc.docker_ok(&["version"]);
    assert!(v.contains("Server: mydocker"), "{v}");
    assert!(v.contains("API version:       1.41"), "{v}");
    assert_eq!(svc.docker_ok(&["ps", "-a", "-q"]), "");
    let images = svc.docker_ok(&["images"]);
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("busybox ") && l.contains("latest")),
        "{images}"
    );

    let id = svc.docker_ok(&[
        "run",
        "-d",
        "--name",
        "apiweb",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exec sleep 60",
    ]);
    // The CLI sees the container the API made, under the same id and name.
    assert_eq!(mydocker_ids(&d), vec![id.clone()]);
    assert_eq!(d.inspect("apiweb")["Id"], id.as_str());
    let ps = svc.docker_ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Names}} {{.State}}",
    ]);
    assert_eq!(ps, format!("{id} apiweb running"));

    wait_for("the container's output", 10, || {
        svc.docker(&["logs", "apiweb"]).stderr.starts_with(b"err")
    });
    let logs = svc.docker(&["logs", "apiweb"]);
    assert_exit_code(&logs, 0);
    assert_eq!(stdout(&logs), "out\n");
    assert_eq!(stderr(&logs), "err\n");
    // The same as the CLI's.
    let mine = d.run(&["logs", "apiweb"]);
    assert_eq!(
        (stdout(&mine), stderr(&mine)),
        (stdout(&logs), stderr(&logs))
    );

    let ins: Value = serde_json::from_str(&svc.docker_ok(&["inspect", "apiweb"])).unwrap();
    assert_eq!(ins[0]["Id"], id.as_str());
    assert_eq!(ins[0]["State"]["Running"], true);
    assert_eq!(ins[0]["Config"]["Cmd"][0], "sh");
    assert_eq!(ins[0]["State"]["Pid"], d.inspect("apiweb")["State"]["Pid"]);
    assert_eq!(
        svc.docker_ok(&[
            "inspect",
            "--format",
            "{{.Name}} {{.State.Status}}",
            "apiweb"
        ]),
        "/apiweb running"
    );

    // A second run with the same name is docker's conflict.
    let dup = svc.docker(&[
        "run",
        "-d",
        "--name",
        "apiweb",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_exit_code(&dup, 125);
    assert!(
        stderr(&dup).contains("is already in use"),
        "{}",
        stderr(&dup)
    );

    assert_eq!(svc.docker_ok(&["stop", "-t", "1", "apiweb"]), "apiweb");
    let st = d.inspect("apiweb");
    assert_eq!(st["State"]["Status"], "exited");
    assert_eq!(st["State"]["ExitCode"], 137);
    let ps = svc.docker_ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(ps.starts_with("Exited (137)"), "{ps}");
    assert_eq!(svc.docker_ok(&["ps", "-q"]), "");
    assert_eq!(svc.docker_ok(&["rm", "apiweb"]), "apiweb");
    assert!(mydocker_ids(&d).is_empty());
    let gone = svc.docker(&["inspect", "apiweb"]);
    assert_exit_code(&gone, 1);
    assert!(
        stderr(&gone).contains("No such object: apiweb")
            || stderr(&gone).contains("No such container"),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn docker_run_attached_prints_output_and_gives_exit_codes() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);
    // The default network (the CLI sends NetworkMode "default": the bridge).
    let hi = svc.docker(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_exit_code(&hi, 0);
    assert_eq!(stdout(&hi), "hi\n");
    let three = svc.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo oops >&2; exit 3",
    ]);
    assert_exit_code(&three, 3);
    assert_eq!(stderr(&three), "oops\n");
    assert_eq!(stdout(&three), "");
    // -i: the client's stdin reaches the container.
    let mut cat = svc.docker_cmd(&["run", "-i", "--rm", "--network", "none", "busybox", "cat"]);
    let out = e2e::pipe(&mut cat, "through the socket\n");
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out), "through the socket\n");
    // Without --rm the container stays, exited with its code, for both CLIs.
    let kept = svc.docker(&[
        "run",
        "--name",
        "apikept",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_exit_code(&kept, 7);
    assert_eq!(d.inspect("apikept")["State"]["ExitCode"], 7);
    svc.docker_ok(&["rm", "apikept"]);
    assert!(mydocker_ids(&d).is_empty(), "{:?}", mydocker_ids(&d));

    // run's own codes: 127 a command not found, 126 one not executable,
    // 125 an error before the start; the daemon's error said once.
    for (cmd, code, words) in [
        ("nosuchcmd", 127, "executable file not found"),
        ("/etc/passwd", 126, "permission denied"),
    ] {
        let out = svc.docker(&["run", "--rm", "--network", "none", "busybox", cmd]);
        assert_exit_code(&out, code);
        let err = stderr(&out);
        assert_eq!(
            err.matches("Error response from daemon").count(),
            1,
            "{err}"
        );
        assert!(err.contains(words), "{err}");
        assert!(err.contains("Run 'docker run --help'"), "{err}");
    }
    let out = svc.docker(&["run", "--rm", "--name", "a b", "busybox", "true"]);
    assert_exit_code(&out, 125);
    assert!(
        stderr(&out)
            .contains("Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
        "{}",
        stderr(&out)
    );
    wait_for("the --rm containers gone", 10, || {
        mydocker_ids(&d).is_empty()
    });
}

#[test]
fn errors_are_dockers_and_versions_negotiate() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);
    let (st, head, body) = svc.http_full("HEAD", "/_ping", "");
    assert_eq!(st, 200);
    assert!(head.contains("API-Version: 1.41"), "{head}");
    assert!(head.contains("OSType: linux"), "{head}");
    assert_eq!(body, "");
    let (st, body) = svc.http("GET", "/v1.41/_ping", "");
    assert_eq!((st, body.as_str()), (200, "OK"));
    let (st, body) = svc.http("GET", "/v1.41/containers/nope/json", "");
    assert_eq!(st, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["message"],
        "No such container: nope"
    );
    let (st, body) = svc.http("POST", "/containers/create", "{\"Image\": ");
    assert_eq!(st, 400, "{body}");
    let (st, body) = svc.http("POST", "/containers/create", r#"{"Image": "nosuch"}"#);
    assert_eq!(st, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["message"],
        "No such image: nosuch:latest"
    );
    let (st, body) = svc.http(
        "POST",
        "/containers/create",
        r#"{"Image": "busybox", "HostConfig": {"Runtime": "runc"}}"#,
    );
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["message"],
        "HostConfig.Runtime is not supported by mydocker"
    );
    let (st, _) = svc.http("GET", "/v1.99/info", "");
    assert_eq!(st, 400);
    let (st, body) = svc.http("GET", "/info", "");
    assert_eq!(st, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["Images"], 1);
    let (st, body) = svc.http("GET", "/images/busybox/json", "");
    assert_eq!(st, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["RepoTags"][0],
        "busybox:latest"
    );
    // docker's own words for an image it cannot find anywhere.
    let out = svc.docker(&["run", "--rm", "nosuch"]);
    assert_exit_code(&out, 125);
    assert!(
        stderr(&out).contains("Unable to find image 'nosuch:latest' locally"),
        "{}",
        stderr(&out)
    );
    let out = svc.docker(&["stop", "nope"]);
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("No such container: nope"),
        "{}",
        stderr(&out)
    );
    assert!(mydocker_ids(&d).is_empty());
}

#[test]
fn stopping_the_service_stops_no_container_and_idle_timeout_ends_it() {
    require_docker_cli!();
    let d = Docker::new();
    let mut svc = Service::start(&d);
    let id = svc.docker_ok(&["run", "-d", "--network", "none", "busybox", "sleep", "60"]);
    let _ = svc.child.kill();
    let _ = svc.child.wait();
    assert_eq!(d.inspect(&id)["State"]["Status"], "running");
    // A new service sees it, and an idle one exits by itself, socket gone.
    let mut again = Service::start_with_timeout(&d, 1);
    assert_eq!(again.docker_ok(&["ps", "-q", "--no-trunc"]), id);
    wait_for("the idle service to exit", 15, || {
        again.child.try_wait().unwrap().is_some()
    });
    assert!(!again.sock.exists());
    assert_eq!(d.inspect(&id)["State"]["Status"], "running");
    d.ok(&["rm", "-f", &id]);
}

#[test]
fn docker_load_through_the_api() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);
    d.ok(&["tag", "busybox", "copy:v1"]);
    let saved = d.root.path().join("copy.tar");
    d.ok(&["save", "-o", saved.to_str().unwrap(), "copy:v1"]);
    d.ok(&["rmi", "copy:v1"]);
    let out = svc.docker_ok(&["load", "-i", saved.to_str().unwrap()]);
    assert!(out.contains("Loaded image: copy:v1"), "{out}");
    assert!(d.ok(&["images"]).contains("copy"));
    // `docker load < tar`: the archive on the client's stdin.
    d.ok(&["rmi", "copy:v1"]);
    let out = svc
        .docker_cmd(&["load"])
        .stdin(std::fs::File::open(&saved).unwrap())
        .output()
        .unwrap();
    assert_exit_code(&out, 0);
    assert!(
        stdout(&out).contains("Loaded image: copy:v1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        svc.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", "copy"]),
        "copy:v1"
    );
    let _ = std::fs::remove_file(saved);
}

#[test]
fn python_sdk_pings_runs_and_lists() {
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
assert c.ping()
ct = c.containers.run("busybox", ["sh", "-c", "echo py; exec sleep 60"], detach=True, name="apipy", network_mode="none")
print(ct.id)
print(",".join(x.name for x in c.containers.list()))
import time
for _ in range(100):
    if ct.logs() == b"py\n":
        break
    time.sleep(0.1)
print(ct.logs().decode().strip())
ct.stop(timeout=1)
print(ct.wait()["StatusCode"])
ct.remove()
print(c.containers.run("busybox", ["echo", "x"], remove=True, network_mode="none").decode().strip())
"#,
        svc.sock.display()
    );
    let text = e2e::apisvc::python(&script);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[1..], ["apipy", "py", "137", "x"], "{text}");
    assert_eq!(lines[0].len(), 64);
    assert!(mydocker_ids(&d).is_empty());
}

#[test]
fn logs_follow_ends_with_the_container_and_a_client_that_leaves_harms_nothing() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);
    let id = svc.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    // -f returns once the container has exited, with every line.
    let f = svc.docker(&["logs", "-f", &id]);
    assert_exit_code(&f, 0);
    assert_eq!(stdout(&f), "a\nb\n");
    assert_eq!(d.inspect(&id)["State"]["Status"], "exited");
    svc.docker_ok(&["rm", &id]);

    // -f on a running container follows until `docker stop` ends it.
    let id = svc.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo up; trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done",
    ]);
    let follower = svc
        .docker_cmd(&["logs", "-f", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the container's first line", 10, || {
        d.run(&["logs", &id]).stdout == b"up\n"
    });
    svc.docker_ok(&["stop", "-t", "5", &id]);
    let f = follower.wait_with_output().unwrap();
    assert_exit_code(&f, 0);
    assert_eq!(stdout(&f), "up\nbye\n");
    assert_eq!(d.inspect(&id)["State"]["ExitCode"], 0);
    svc.docker_ok(&["rm", &id]);

    // An attached `docker run` killed mid-stream: the container runs on.
    let mut attached = svc
        .docker_cmd(&[
            "run",
            "--name",
            "apiattached",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "while :; do echo tick; sleep 0.2; done",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the attached container", 10, || {
        d.run(&["logs", "apiattached"]).stdout.starts_with(b"tick")
    });
    attached.kill().unwrap();
    let _ = attached.wait();
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(d.inspect("apiattached")["State"]["Status"], "running");
    let before = d.run(&["logs", "apiattached"]).stdout.len();
    wait_for("more output after the client left", 10, || {
        d.run(&["logs", "apiattached"]).stdout.len() > before
    });
    svc.docker_ok(&["rm", "-f", "apiattached"]);

    // A follower and a waiter killed mid-stream: the container and the service go on.
    let id = svc.docker_ok(&["run", "-d", "--network", "none", "busybox", "sleep", "60"]);
    let mut follower = svc.docker_cmd(&["logs", "-f", &id]).spawn().unwrap();
    let mut waiter = svc
        .docker_cmd(&["wait", &id])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    follower.kill().unwrap();
    waiter.kill().unwrap();
    let _ = follower.wait();
    let _ = waiter.wait();
    assert_eq!(svc.docker_ok(&["ps", "-q", "--no-trunc"]), id);
    assert_eq!(d.inspect(&id)["State"]["Status"], "running");
    // `docker wait` gives the exit code once the container ends.
    svc.docker_ok(&["kill", &id]);
    assert_eq!(svc.docker_ok(&["wait", &id]), "137");
    svc.docker_ok(&["rm", "-f", &id]);
    assert!(mydocker_ids(&d).is_empty());
}

#[test]
fn a_start_that_fails_is_dockers_error_and_removes_an_auto_remove_container() {
    require_docker_cli!();
    let d = Docker::new();
    let svc = Service::start(&d);
    let out = svc
        .docker_cmd(&[
            "run",
            "--rm",
            "--network",
            "apinosuchnet",
            "busybox",
            "true",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = out;
    // A hang here would be the client waiting for a removal that never comes.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while out.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > until {
            let _ = out.kill();
            panic!("docker run hangs after a failed start");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = out.wait_with_output().unwrap();
    assert!(
        stderr(&out).contains("network apinosuchnet not found"),
        "{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(mydocker_ids(&d).is_empty());
    // Without --rm the container stays, created with the error.
    let out = svc.docker(&[
        "run",
        "-d",
        "--name",
        "apibad",
        "--network",
        "apinosuchnet",
        "busybox",
        "true",
    ]);
    assert_exit_code(&out, 125);
    assert!(
        stderr(&out).contains("network apinosuchnet not found"),
        "{}",
        stderr(&out)
    );
    assert_eq!(mydocker_ids(&d).len(), 1);
    svc.docker_ok(&["rm", "apibad"]);
}
