//! End-to-end: the `mydocker` binary driven the way a user types it, as root,
//! with a fresh store root per test.

use e2e::docker::{assert_no_cgroup, stderr, stdout, Docker};
use e2e::{assert_exit_code, bin, require_root};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn foreground_run_prints_and_exits_with_the_containers_code() {
    require_root!();
    let d = Docker::new();
    let out = d.run(&["run", "--rm", "busybox", "echo", "hello from a container"]);
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out), "hello from a container\n");
    assert_exit_code(&d.run(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]), 3);
    // stderr stays stderr
    let out = d.run(&["run", "--rm", "busybox", "sh", "-c", "echo oops >&2"]);
    assert_eq!(stderr(&out), "oops\n");
    assert_eq!(stdout(&out), "");
}

#[test]
fn docker_exit_codes_for_failures() {
    require_root!();
    let d = Docker::new();
    let out = d.run(&["run", "--rm", "nosuchimage", "true"]);
    assert_exit_code(&out, 125);
    assert!(stderr(&out).contains("nosuchimage"), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).lines().count(),
        1,
        "one-line error: {}",
        stderr(&out)
    );
    assert_exit_code(&d.run(&["run", "--rm", "busybox", "/etc/passwd"]), 126);
    assert_exit_code(&d.run(&["run", "--rm", "busybox", "nosuchcommand"]), 127);
    assert_exit_code(&d.run(&["run", "--bogus-flag", "busybox"]), 125);
    assert!(
        d.containers_dir_entries().is_empty(),
        "failed runs left records: {:?}",
        d.containers_dir_entries()
    );
}

#[test]
fn detached_lifecycle_ps_logs_exec_stop_start_rm() {
    require_root!();
    let d = Docker::new();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo started; while true; do sleep 0.1; done",
    ]);
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    let ps = d.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    let line = ps
        .lines()
        .find(|l| l.contains("web"))
        .unwrap_or_else(|| panic!("web not in ps: {ps}"));
    assert!(
        line.starts_with(&id[..12]) && line.contains(" Up "),
        "{line}"
    );
    // logs
    let until = Instant::now() + Duration::from_secs(5);
    while !d.ok(&["logs", "web"]).contains("started") {
        assert!(Instant::now() < until, "no log line");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(d.root.path().join(format!("containers/{id}/{id}-json.log")))
        .unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "started\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    // exec sees the container
    assert_eq!(d.ok(&["exec", "web", "hostname"]), id[..12]);
    assert_exit_code(
        &d.run(&["exec", "web", "sh", "-c", "echo hi > /tmp/f; exit 4"]),
        4,
    );
    // rm without -f refuses a running container
    let out = d.run(&["rm", "web"]);
    assert_exit_code(&out, 1);
    assert!(stderr(&out).contains("running"), "{}", stderr(&out));
    // stop: SIGTERM is ignored by a busy sh loop as pid 1, so SIGKILL after -t 1
    assert_eq!(d.ok(&["stop", "-t", "1", "web"]), "web");
    let v = d.inspect("web");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert!(d.ok(&["ps", "-a"]).contains("Exited (137)"));
    assert!(!d.ok(&["ps"]).contains("web"));
    // start keeps the writable layer
    assert_eq!(d.ok(&["start", "web"]), "web");
    d.wait_status("web", "running");
    assert_eq!(d.ok(&["exec", "web", "cat", "/tmp/f"]), "hi");
    assert_eq!(d.ok(&["rm", "-f", "web"]), "web");
    let out = d.run(&["inspect", "web"]);
    assert_exit_code(&out, 1);
}

#[test]
fn detached_container_that_exits_shows_exited_code() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run", "-d", "--name", "quick", "busybox", "sh", "-c", "exit 7",
    ]);
    let v = d.wait_status("quick", "exited");
    assert_eq!(v["State"]["ExitCode"], 7);
    let ps = d.ok(&["ps", "-a"]);
    assert!(
        ps.lines()
            .any(|l| l.contains("quick") && l.contains("Exited (7)")),
        "{ps}"
    );
    assert_eq!(d.ok(&["wait", "quick"]), "7");
}

#[test]
fn container_killed_from_the_host_shows_137() {
    require_root!();
    let d = Docker::new();
    d.ok(&["run", "-d", "--name", "victim", "busybox", "sleep", "1000"]);
    let v = d.wait_status("victim", "running");
    let pid = v["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let v = d.wait_status("victim", "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
}

#[test]
fn rm_flag_leaves_no_trace() {
    require_root!();
    let d = Docker::new();
    assert_eq!(d.ok(&["run", "--rm", "busybox", "true"]), "");
    assert!(d.containers_dir_entries().is_empty());
    d.ok(&["run", "-d", "--rm", "--name", "gone", "busybox", "true"]);
    let until = Instant::now() + Duration::from_secs(10);
    while !d.containers_dir_entries().is_empty() {
        assert!(
            Instant::now() < until,
            "--rm -d left {:?}",
            d.containers_dir_entries()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_exit_code(&d.run(&["inspect", "gone"]), 1);
}

#[test]
fn names_are_unique() {
    require_root!();
    let d = Docker::new();
    d.ok(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"]);
    let before = d.ok(&["ps", "-aq"]);
    let out = d.run(&["run", "-d", "--name", "web", "busybox", "true"]);
    assert_exit_code(&out, 125);
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    assert_eq!(
        d.ok(&["ps", "-aq"]),
        before,
        "a failed run changed the container list"
    );
}

#[test]
fn interactive_tty_under_a_real_pty() {
    require_root!();
    e2e::skip_unless!(
        Command::new("script").arg("--version").output().is_ok(),
        "util-linux `script` missing"
    );
    let d = Docker::new();
    let inner = format!(
        "{} --root {} run -it --rm busybox sh -c 'tty; [ -t 0 ] && echo stdin-is-a-tty; exit 5'",
        bin("mydocker").display(),
        d.root.path().display()
    );
    let out = Command::new("script")
        .args(["-qefc", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("stdin-is-a-tty"), "{text}");
    assert_eq!(out.status.code(), Some(5), "{text}");
    // and input typed at the terminal reaches the container
    let inner = format!(
        "{} --root {} run -i --rm busybox sh -c 'read x; echo got-$x'",
        bin("mydocker").display(),
        d.root.path().display()
    );
    let out = e2e::pipe(Command::new("sh").args(["-c", &inner]), "typed\n");
    assert_eq!(stdout(&out), "got-typed\n");
    // exec -it into a running container gets a terminal of its own too
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ttyhost",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    let inner = format!(
        "{} --root {} exec -it ttyhost sh -c 'tty; exit 6'",
        bin("mydocker").display(),
        d.root.path().display()
    );
    let out = Command::new("script")
        .args(["-qefc", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert!(stdout(&out).contains("/dev/pts/"), "{}", stdout(&out));
    assert_eq!(out.status.code(), Some(6), "{}", stdout(&out));
}

#[test]
fn containers_do_not_share_writes_with_the_image_or_each_other() {
    require_root!();
    let d = Docker::new();
    let script = "cat /bin/newfile 2>/dev/null || echo mine > /bin/newfile";
    assert_eq!(
        d.ok(&["run", "--name", "writer", "busybox", "sh", "-c", script]),
        ""
    );
    assert_exit_code(
        &d.run(&["run", "--rm", "busybox", "test", "-e", "/bin/newfile"]),
        1,
    );
    let found = Command::new("find")
        .arg(d.root.path().join("layers"))
        .args(["-name", "newfile"])
        .output()
        .unwrap();
    assert_eq!(stdout(&found), "", "the write reached an image layer");
    // started again, the same container still has its file
    assert_eq!(d.ok(&["start", "-a", "writer"]), "mine");
    d.ok(&["rm", "writer"]);
}

#[test]
fn twenty_containers_at_once_get_distinct_names() {
    require_root!();
    let d = Docker::new();
    let children: Vec<_> = (0..20)
        .map(|_| {
            d.cmd(&["run", "-d", "busybox", "sleep", "1000"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_exit_code(&out, 0);
        ids.insert(stdout(&out).trim().to_string());
    }
    assert_eq!(ids.len(), 20);
    let ps = d.ok(&["ps", "--format", "json"]);
    let names: std::collections::BTreeSet<String> = ps
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["Names"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names.len(), 20, "{ps}");
}

/// A /24 no other test process picks: 10.(150 + pid % 50).(n).0/24.
fn test_subnet(n: u8) -> String {
    format!("10.{}.{}.0/24", 150 + std::process::id() % 50, n)
}

/// A plain HTTP/1.0 GET from the host.
fn http_get(host: &str, port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = format!("{host}:{port}").parse().unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

fn host_ip() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    stdout(&out).split_whitespace().next().map(String::from)
}

#[test]
fn containers_on_a_network_reach_each_other_and_published_ports() {
    require_root!();
    let d = Docker::new();
    let net = e2e::unique("net");
    d.ok(&["network", "create", "--subnet", &test_subnet(1), &net]);
    let port = 20000 + (std::process::id() % 20000) as u16;
    let web = "mkdir -p /www; echo hello-web > /www/index.html; httpd -f -p 80 -h /www";
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        &net,
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        web,
    ]);
    let ip = d.inspect("web")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ip.starts_with(&test_subnet(1)[..test_subnet(1).len() - 4]),
        "{ip}"
    );
    // the other container reaches it by address
    // (busybox's static wget crashes on glibc's NSS inside a bare image: use nc)
    let get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {ip} 80");
    let out = d.run(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "sh",
        "-c",
        &get,
    ]);
    assert_exit_code(&out, 0);
    assert!(stdout(&out).ends_with("hello-web\n"), "{}", stdout(&out));
    // the host reaches the published port on 127.0.0.1 and on its own address
    let mut hosts = vec!["127.0.0.1".to_string()];
    hosts.extend(host_ip());
    for h in hosts {
        let url = format!("http://{h}:{port}/");
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let got = http_get(&h, port);
            if got.as_ref().is_ok_and(|b| b.ends_with("hello-web\n")) {
                break;
            }
            assert!(Instant::now() < until, "{url}: {got:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(d.ok(&["ps"]).contains(&format!("0.0.0.0:{port}->80/tcp")));
    // the container's /etc/hosts names it
    let hosts = d.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&ip), "{hosts}");
    // a network in use is not removed
    assert_exit_code(&d.run(&["network", "rm", &net]), 1);
    d.ok(&["rm", "-f", "web"]);
    d.ok(&["network", "rm", &net]);
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let nat = Command::new("iptables")
        .args(["-t", "nat", "-S"])
        .output()
        .unwrap();
    assert!(
        !stdout(&nat).contains(&format!("--dport {port}")),
        "DNAT rule left: {}",
        stdout(&nat)
    );
    let _ = links;
}

#[test]
fn network_none_and_host() {
    require_root!();
    let d = Docker::new();
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("lo") && out.contains(",UP"),
        "lo is up with --network none: {out}"
    );
    let host_links = stdout(&Command::new("ip").args(["-o", "link"]).output().unwrap())
        .lines()
        .count();
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert!(
        out.lines().count() >= 2 && out.lines().count() <= host_links + 5,
        "{out}"
    );
    assert_exit_code(
        &d.run(&["run", "--rm", "--network", "nosuchnet", "busybox", "true"]),
        125,
    );
    assert_exit_code(
        &d.run(&["run", "--rm", "-p", "notaport", "busybox", "true"]),
        125,
    );
}

#[test]
fn memory_limit_oom_kills_with_137_and_oomkilled() {
    require_root!();
    let d = Docker::new();
    let out = d.run(&[
        "run",
        "--name",
        "hog",
        "--network",
        "none",
        "-m",
        "16m",
        "busybox",
        "tail",
        "/dev/zero",
    ]);
    assert_exit_code(&out, 137);
    let v = d.inspect("hog");
    assert_eq!(v["State"]["OOMKilled"], true, "{v}");
    assert!(d.ok(&["ps", "-a"]).contains("Exited (137)"));
    // limits show in stats, and the cgroup goes with the container
    d.ok(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--network",
        "none",
        "-m",
        "32m",
        "--pids-limit",
        "10",
        "busybox",
        "sleep",
        "100",
    ]);
    let st: serde_json::Value =
        serde_json::from_str(&d.ok(&["stats", "--no-stream", "--format", "json", "lim"])).unwrap();
    assert!(
        st["MemUsage"].as_str().unwrap().ends_with("/ 32MiB"),
        "{st}"
    );
    let out = d.run(&[
        "exec",
        "lim",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; wait",
    ]);
    assert!(
        stderr(&out).contains("fork") || !out.status.success(),
        "pids limit did not stop forks: {}",
        stderr(&out)
    );
    d.ok(&["pause", "lim"]);
    assert!(d.ok(&["ps"]).contains("(Paused)"));
    d.ok(&["unpause", "lim"]);
    let id = d.inspect("lim")["Id"].as_str().unwrap().to_string();
    d.ok(&["rm", "-f", "lim"]);
    assert_no_cgroup(&id);
    assert_exit_code(
        &d.run(&["run", "--rm", "-m", "lots", "busybox", "true"]),
        125,
    );
}

#[test]
fn print_pipeline_is_a_script_that_runs_the_container() {
    require_root!();
    let d = Docker::new();
    let script = d.ok(&[
        "run",
        "--rm",
        "--print-pipeline",
        "-m",
        "32m",
        "busybox",
        "echo",
        "hello-from-the-script",
    ]);
    assert!(script.starts_with("#!/bin/sh"), "{script}");
    for tool in ["ctrstate", "layerfs", "netbr", "nsrun"] {
        assert!(
            script.contains(&format!("{tool} --root")),
            "no {tool} step: {script}"
        );
    }
    // nsrun makes the cgroup from the config: no cgctl step in a run
    assert!(!script.contains("cgctl"), "{script}");
    for field in [
        "\"cgroupsPath\"",
        "\"seccomp\"",
        "\"devices\"",
        "\"limit\": 33554432",
    ] {
        assert!(script.contains(field), "no {field} in the config: {script}");
    }
    assert!(
        d.containers_dir_entries().is_empty(),
        "printing the pipeline ran something"
    );
    let bin_dir = e2e::bin("mydocker").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PATH", path)
        .output()
        .unwrap();
    assert_exit_code(&out, 0);
    assert!(
        stdout(&out).contains("hello-from-the-script"),
        "{}",
        stdout(&out)
    );
    // the script's own teardown left nothing for the guard to clean
    assert!(
        d.containers_dir_entries().is_empty(),
        "{:?}",
        d.containers_dir_entries()
    );
}

#[test]
fn a_killed_supervisor_leaves_nothing_rm_cannot_clean() {
    require_root!();
    let d = Docker::new();
    let sup = |name: &str| -> i32 {
        let id = d.inspect(name)["Id"].as_str().unwrap().to_string();
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.root.path().join(format!("containers/{id}/state.json")))
                .unwrap(),
        )
        .unwrap();
        state["supervisorPid"].as_i64().unwrap() as i32
    };
    let kill9 = |pid: i32| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap()
    };
    // supervisor killed, container keeps running: ps still says Up, rm -f cleans
    d.ok(&["run", "-d", "--name", "orphan", "busybox", "sleep", "1000"]);
    let s = sup("orphan");
    kill9(s);
    e2e::wait_for("the killed supervisor to be gone", 10, || {
        !e2e::process_runs(s)
    });
    assert!(
        d.ok(&["ps"]).contains("orphan"),
        "a live container vanished from ps"
    );
    // supervisor killed, then the container dies: ps says it exited
    d.ok(&["run", "-d", "--name", "orphan2", "busybox", "sleep", "1000"]);
    let pid = d.inspect("orphan2")["State"]["Pid"].as_i64().unwrap() as i32;
    kill9(sup("orphan2"));
    kill9(pid);
    let v = d.wait_status("orphan2", "exited");
    assert_ne!(v["State"]["ExitCode"], 0);
    assert!(!d.ok(&["ps"]).contains("orphan2"));
    let ids = [d.inspect("orphan")["Id"].clone(), v["Id"].clone()];
    d.ok(&["rm", "-f", "orphan", "orphan2"]);
    // the guard checks mounts and dirs; check cgroups and netns files here
    for id in &ids {
        assert_no_cgroup(id.as_str().unwrap());
    }
    let netns = d.root.path().join("run/netns");
    let left: Vec<_> = std::fs::read_dir(&netns)
        .map(|r| r.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "netns files left: {left:?}");
}

#[test]
fn update_changes_the_limits_of_a_running_container() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "upd",
        "--network",
        "none",
        "-m",
        "32m",
        "busybox",
        "sleep",
        "100",
    ]);
    d.ok(&["update", "-m", "64m", "upd"]);
    let st: serde_json::Value =
        serde_json::from_str(&d.ok(&["stats", "--no-stream", "--format", "json", "upd"])).unwrap();
    assert!(
        st["MemUsage"].as_str().unwrap().ends_with("/ 64MiB"),
        "{st}"
    );
    let top = d.ok(&["top", "upd"]);
    assert!(top.lines().any(|l| l.ends_with("sleep 100")), "{top}");
    assert_exit_code(&d.run(&["update", "--cpus", "-1", "upd"]), 125);
}

#[test]
fn logs_tail_and_timestamps() {
    require_root!();
    let d = Docker::new();
    d.ok(&[
        "run",
        "--name",
        "talker",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two; echo three >&2",
    ]);
    let out = d.run(&["logs", "talker"]);
    assert_eq!(stdout(&out), "one\ntwo\n");
    assert_eq!(stderr(&out), "three\n");
    let out = d.run(&["logs", "--tail", "1", "talker"]);
    assert_eq!(stdout(&out) + &stderr(&out), "three\n");
    let ts = d.ok(&["logs", "-t", "--tail", "2", "talker"]);
    let first = ts.lines().next().unwrap();
    assert!(
        first.starts_with("20") && first.contains('T') && first.ends_with("Z two"),
        "{first}"
    );
    assert_exit_code(&d.run(&["logs", "--tail", "x", "talker"]), 1);
    assert_exit_code(&d.run(&["logs", "nosuchcontainer"]), 1);
}

#[test]
fn network_connect_adds_an_interface_to_a_running_container() {
    require_root!();
    let d = Docker::new();
    let (a, b) = (e2e::unique("na"), e2e::unique("nb"));
    d.ok(&["network", "create", "--subnet", &test_subnet(3), &a]);
    d.ok(&["network", "create", "--subnet", &test_subnet(4), &b]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "multi",
        "--network",
        &a,
        "busybox",
        "sleep",
        "100",
    ]);
    d.ok(&["network", "connect", &b, "multi"]);
    let links = d.ok(&["exec", "multi", "ip", "-o", "-4", "addr"]);
    assert!(links.contains("eth1"), "{links}");
    let prefix_b = &test_subnet(4)[..test_subnet(4).len() - 4];
    assert!(links.contains(prefix_b), "{links}");
    d.ok(&["network", "disconnect", &b, "multi"]);
    assert!(!d
        .ok(&["exec", "multi", "ip", "-o", "-4", "addr"])
        .contains("eth1"));
    let inspect = d.ok(&["network", "inspect", &a]);
    assert!(inspect.contains(&test_subnet(3)), "{inspect}");
    d.ok(&["rm", "-f", "multi"]);
    d.ok(&["network", "rm", &a, &b]);
}

#[test]
fn a_failure_mid_pipeline_undoes_every_step_before_it() {
    require_root!();
    let d = Docker::new();
    // The user is resolved after the rootfs, volume, network and cgroup
    // steps: its failure must undo all of them. The record stays, as
    // docker keeps a container whose start failed: created, with the
    // error and docker's exit code; `rm -v` then takes it and its volume.
    let out = d.run(&[
        "run",
        "--name",
        "halfway",
        "-v",
        "/anon",
        "-u",
        "nosuchuser",
        "busybox",
        "true",
    ]);
    assert_exit_code(&out, 125);
    assert!(stderr(&out).contains("nosuchuser"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let state = d.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}",
        "halfway",
    ]);
    assert_eq!(state, "created 128 0");
    assert!(mountinfo::mounts_under(d.root.path()).unwrap().is_empty());
    let netns = d.root.path().join("run/netns");
    let left: Vec<_> = std::fs::read_dir(&netns)
        .map(|r| r.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "netns files left: {left:?}");
    let cg = d.root.path().join("cgroups");
    let records: Vec<_> = std::fs::read_dir(&cg)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(records.is_empty(), "cgroup records left: {records:?}");
    d.ok(&["rm", "-v", "halfway"]);
    assert!(
        d.containers_dir_entries().is_empty(),
        "{:?}",
        d.containers_dir_entries()
    );
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]),
        "",
        "the anonymous volume outlived rm -v"
    );
}
