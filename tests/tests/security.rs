//! End-to-end: a default mydocker container is confined as docker's is
//! (seccomp filter, device allowlist, capabilities), and each security flag
//! changes exactly what docker's does. The probe (tests/probe/probe.c) runs
//! inside containers only; it writes only inside them.

use e2e::docker::{assert_no_cgroup, stderr, stdout, Docker};
use e2e::{assert_exit_code, require_root, TempDir};
use std::path::Path;

/// A dir holding the static probe, bound read-only at /p in containers.
fn probe_dir() -> TempDir {
    let d = TempDir::new("prb");
    std::fs::copy(e2e::probe::build(), d.path().join("probe")).unwrap();
    d
}

/// Runs `probe ARGS` in a new container with `flags`; returns its stdout line.
fn probe(d: &Docker, p: &Path, flags: &[&str], args: &[&str]) -> String {
    let bind = format!("{}:/p:ro", p.display());
    let mut a = vec!["run", "--rm", "--network", "none", "-v", &bind];
    a.extend_from_slice(flags);
    a.push("busybox");
    a.push("/p/probe");
    a.extend_from_slice(args);
    let out = d.run(&a);
    assert_exit_code_any(&out);
    stdout(&out).trim().to_string()
}

/// The probe exits 0 or 1 (refused); anything else is a broken run.
fn assert_exit_code_any(out: &std::process::Output) {
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "probe run failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// Runs every `probe ARGS` line in one container; returns `line -> result`.
fn probe_all(
    d: &Docker,
    p: &Path,
    flags: &[&str],
    lines: &[&str],
) -> std::collections::HashMap<String, String> {
    let script: Vec<String> = lines
        .iter()
        .map(|l| format!("echo \"{l}: $(/p/probe {l})\""))
        .collect();
    let bind = format!("{}:/p:ro", p.display());
    let mut a = vec!["run", "--rm", "--network", "none", "-v", &bind];
    a.extend_from_slice(flags);
    let script = script.join("; ");
    a.extend(["busybox", "sh", "-c", &script]);
    let out = d.run(&a);
    assert_exit_code(&out, 0);
    stdout(&out)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn a_default_container_has_docker_seccomp_and_device_rules() {
    require_root!();
    let d = Docker::new();
    let p = probe_dir();
    let blocked = [
        "unshare-user",
        "add-key",
        "keyctl",
        "perf-event-open",
        "userfaultfd",
        "io-uring-setup",
    ];
    let (loop0, fuse, null) = (
        "mknod-open b 7 0 /tmp/loop",
        "mknod-open c 10 229 /tmp/fuse",
        "mknod-open c 1 3 /tmp/null",
    );
    let mut lines = vec!["seccomp", "getpid", "caps", loop0, fuse, null];
    lines.extend(blocked);
    // one container (each costs seconds in the cgroup v2 VM)
    let r = probe_all(&d, p.path(), &[], &lines);
    assert_eq!(r["seccomp"], "2", "{r:?}");
    for call in blocked {
        assert_eq!(
            r[call], "errno EPERM",
            "{call} must be refused by the default profile: {r:?}"
        );
    }
    assert_eq!(r["getpid"], "ok");
    // mknod is allowed (docker's `m`), opening a node outside the list is not
    assert_eq!(r[loop0], "open errno EPERM");
    assert_eq!(r[fuse], "open errno EPERM");
    assert_eq!(r[null], "ok");
    // docker's 14 capabilities: 0x00000000a80425fb
    assert_eq!(r["caps"], "00000000a80425fb");
}

#[test]
fn security_flags_change_what_docker_changes() {
    require_root!();
    let d = Docker::new();
    let p = probe_dir();
    let pp = p.path();
    assert_eq!(
        probe(
            &d,
            pp,
            &["--security-opt", "seccomp=unconfined"],
            &["seccomp"]
        ),
        "0"
    );
    // a profile of our own: everything but mkdir
    let prof = p.path().join("nomkdir.json");
    std::fs::write(
        &prof,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", prof.display());
    assert_eq!(
        probe(&d, pp, &["--security-opt", &opt], &["mkdir", "/tmp/x"]),
        "errno EPERM"
    );
    assert_eq!(probe(&d, pp, &["--security-opt", &opt], &["getpid"]), "ok");
    assert_eq!(probe(&d, pp, &[], &["mkdir", "/tmp/x"]), "ok");
    // capabilities
    assert_eq!(
        probe(&d, pp, &["--cap-drop", "ALL"], &["caps"]),
        "0000000000000000"
    );
    let caps = probe(&d, pp, &["--cap-add", "NET_ADMIN"], &["caps"]);
    let v = u64::from_str_radix(&caps, 16).unwrap();
    assert_ne!(v & (1 << 12), 0, "CAP_NET_ADMIN in {caps}");
    // --device grants one device (kmsg, 1:11, outside docker's list; opening
    // it also needs CAP_SYSLOG, so that is given in all three), and no other
    let kmsg = ["mknod-open", "c", "1", "11", "/tmp/kmsg"];
    assert_eq!(
        probe(&d, pp, &["--cap-add", "SYSLOG"], &kmsg),
        "open errno EPERM"
    );
    let with_dev = ["--cap-add", "SYSLOG", "--device", "/dev/kmsg"];
    assert_eq!(probe(&d, pp, &with_dev, &kmsg), "ok");
    assert_eq!(
        probe(
            &d,
            pp,
            &with_dev,
            &["mknod-open", "b", "7", "0", "/tmp/loop"]
        ),
        "open errno EPERM"
    );
    assert_eq!(
        probe(
            &d,
            pp,
            &["--device-cgroup-rule", "b 7:* rw"],
            &["mknod-open", "b", "7", "0", "/tmp/loop"]
        ),
        "ok"
    );
    // --privileged: no filter, every device
    assert_eq!(probe(&d, pp, &["--privileged"], &["seccomp"]), "0");
    assert_eq!(probe(&d, pp, &["--privileged"], &kmsg), "ok");
    // inspect shows the settings with docker's names
    d.ok(&[
        "run",
        "-d",
        "--name",
        "sec",
        "--network",
        "none",
        "--cap-add",
        "net_admin",
        "--cap-drop",
        "CHOWN",
        "--security-opt",
        "no-new-privileges",
        "--device",
        "/dev/kmsg:/dev/f:r",
        "busybox",
        "sleep",
        "60",
    ]);
    let v = d.inspect("sec");
    let h = &v["HostConfig"];
    assert_eq!(h["CapAdd"], serde_json::json!(["CAP_NET_ADMIN"]), "{h}");
    assert_eq!(h["CapDrop"], serde_json::json!(["CAP_CHOWN"]), "{h}");
    assert_eq!(h["SecurityOpt"], serde_json::json!(["no-new-privileges"]));
    assert_eq!(h["Devices"][0]["PathInContainer"], "/dev/f");
    assert_eq!(h["Devices"][0]["CgroupPermissions"], "r");
    assert_eq!(h["Privileged"], false);
    assert_eq!(
        d.ok(&[
            "exec",
            "sec",
            "sh",
            "-c",
            "grep NoNewPrivs /proc/self/status"
        ])
        .split_whitespace()
        .last(),
        Some("1")
    );
    let id = v["Id"].as_str().unwrap().to_string();
    d.ok(&["rm", "-f", "sec"]);
    assert_no_cgroup(&id);
}

#[test]
fn bad_security_flags_fail_with_125_and_leave_nothing() {
    require_root!();
    let d = Docker::new();
    let tmp = TempDir::new("sbad");
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let unknown_action = tmp.path().join("act.json");
    std::fs::write(
        &unknown_action,
        r#"{"defaultAction":"SCMP_ACT_SOMETIMES","syscalls":[]}"#,
    )
    .unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--cap-add".into(), "NOT_A_CAP".into()], "NOT_A_CAP"),
        (vec!["--cap-drop".into(), "bogus".into()], "bogus"),
        (
            vec![
                "--security-opt".into(),
                "seccomp=/nonexistent/p.json".into(),
            ],
            "/nonexistent/p.json",
        ),
        (
            vec![
                "--security-opt".into(),
                format!("seccomp={}", bad.display()),
            ],
            "bad.json",
        ),
        (
            vec![
                "--security-opt".into(),
                format!("seccomp={}", unknown_action.display()),
            ],
            "SCMP_ACT_SOMETIMES",
        ),
        (vec!["--security-opt".into(), "label=x".into()], "label=x"),
        (vec!["--device".into(), "/etc/passwd".into()], "/etc/passwd"),
        (
            vec!["--device-cgroup-rule".into(), "x 1:2 rw".into()],
            "x 1:2 rw",
        ),
        (vec!["--cgroupns".into(), "shared".into()], "shared"),
    ];
    for (flags, needle) in cases {
        let mut a: Vec<&str> = vec!["run", "--rm", "--network", "none"];
        a.extend(flags.iter().map(|s| s.as_str()));
        a.extend(["busybox", "true"]);
        let out = d.run(&a);
        assert_exit_code(&out, 125);
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line for {flags:?}: {err}");
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
    }
    assert!(
        d.containers_dir_entries().is_empty(),
        "records left: {:?}",
        d.containers_dir_entries()
    );
}

#[test]
fn cgroup_parent_and_namespace() {
    require_root!();
    let d = Docker::new();
    let parent = e2e::unique("cgp");
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--cgroup-parent",
        &parent,
        "--cgroupns",
        "private",
        "busybox",
        "sleep",
        "60",
    ]);
    // nsrun made it under our own cgroup: PARENT/ID in the pids hierarchy
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let pids_base = own
        .lines()
        .find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_string()))
        .unwrap_or_else(|| "/".into());
    let dir = Path::new("/sys/fs/cgroup/pids")
        .join(pids_base.trim_start_matches('/'))
        .join(&parent)
        .join(&id);
    if Path::new("/sys/fs/cgroup/pids").exists() {
        assert!(dir.is_dir(), "{} missing", dir.display());
    }
    // private cgroup namespace: the container sees its cgroup as /
    let cg = d.ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert!(
        cg.lines().all(|l| l.ends_with(":/")),
        "cgroup paths not rooted at the container: {cg}"
    );
    assert_eq!(d.inspect(&id)["HostConfig"]["CgroupnsMode"], "private");
    d.ok(&["rm", "-f", &id]);
    assert_no_cgroup(&id);
    // /sys/fs/cgroup shows the container's own cgroup at its top, read-only,
    // with a cgroup namespace and without one (v1: a bind of its own cgroup)
    let read_pids_max =
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max";
    for ns in ["private", "host"] {
        let out = d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--pids-limit",
            "57",
            "--cgroupns",
            ns,
            "busybox",
            "sh",
            "-c",
            &format!("{read_pids_max}; mkdir /sys/fs/cgroup/x 2>&1 || true"),
        ]);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("57"), "cgroupns {ns}: {out}");
        assert!(
            out.contains("Read-only file system"),
            "cgroupns {ns}: {out}"
        );
    }
    assert!(!dir.exists());
}
