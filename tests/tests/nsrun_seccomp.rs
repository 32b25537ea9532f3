//! End-to-end tests of nsrun's `linux.seccomp`: real containers from the
//! busybox rootfs with a `runc spec` config, the static probe
//! (tests/probe/probe.c) at /probe asking the kernel what is allowed.
//! Each test has its own bundle and state root in a TempDir and a guard that
//! force-deletes its containers, reaps their inits and checks nothing is left.

use e2e::bundle::{processes_in, read_pid, stderr, stdout, Bundle};
use e2e::{assert_exit_code, require_root};
use serde_json::{json, Value};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::process::Output;
use std::time::{Duration, Instant};

fn docker_caps() -> Vec<String> {
    mydocker::spec::DEFAULT_CAPS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Docker's default profile for docker's default capabilities.
fn docker_profile() -> Value {
    mydocker::seccomp::docker_default(&docker_caps()).unwrap()
}

/// A bundle with the probe at /probe, docker's capabilities and `seccomp`.
fn bundle(args: &[&str], seccomp: Value) -> Bundle {
    let mut b = Bundle::new(args);
    e2e::probe::install(&b.rootfs());
    b.set(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = json!(docker_caps());
        }
        c["linux"]["seccomp"] = seccomp;
    });
    b
}

/// A shell script that runs each probe line and prints `<probe args>: <result>`.
fn probes(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| format!("echo \"{l}: $(/probe {l})\""))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The `<probe args>: <result>` lines of a run, as a map.
fn results(out: &Output) -> std::collections::HashMap<String, String> {
    stdout(out)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

const BLOCKED: [&str; 6] = [
    "add-key",
    "keyctl",
    "unshare-user",
    "perf-event-open",
    "userfaultfd",
    "io-uring-setup",
];

#[test]
fn dockers_default_profile_blocks_what_docker_blocks() {
    require_root!();
    let mut all = vec!["seccomp", "getpid", "mkdir /dev/d"];
    all.extend(BLOCKED);
    let script = format!("rm -rf /dev/d; {}", probes(&all));
    let mut b = bundle(&["sh", "-c", &script], docker_profile());
    // With noNewPrivileges (the filter loads right before execve) and
    // without (it loads before the capability drop): the same filter.
    for nnp in [true, false] {
        b.set(|c| c["process"]["noNewPrivileges"] = json!(nnp));
        let out = b.run();
        assert_exit_code(&out, 0);
        let r = results(&out);
        assert_eq!(r["seccomp"], "2", "nnp={nnp}: {}", stdout(&out));
        assert_eq!(r["getpid"], "ok", "{}", stdout(&out));
        assert_eq!(r["mkdir /dev/d"], "ok", "{}", stdout(&out));
        for p in BLOCKED {
            assert_eq!(r[p], "errno EPERM", "nnp={nnp} {p}: {}", stdout(&out));
        }
    }
    // The second run loaded the filter the first compiled (one cache entry);
    // a damaged entry is a miss, not a weaker filter.
    let cache = b.root().join(nsrun::seccomp::CACHE_DIR);
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    std::fs::write(entries[0].path(), b"garbage").unwrap();
    let r = results(&b.run());
    assert_eq!(r["seccomp"], "2");
    assert_eq!(r["unshare-user"], "errno EPERM");
}

#[test]
fn the_default_errno_is_honoured() {
    require_root!();
    let mut profile = docker_profile();
    profile["defaultErrnoRet"] = json!(libc::EDQUOT);
    let mut all = vec!["seccomp", "getpid"];
    all.extend(BLOCKED);
    let mut b = bundle(&["sh", "-c", &probes(&all)], profile);
    let out = b.run();
    assert_exit_code(&out, 0);
    let r = results(&out);
    assert_eq!(r["getpid"], "ok");
    // EDQUOT comes from the filter's default action only: these calls were
    // refused by seccomp, not by the kernel's own checks.
    for p in BLOCKED {
        assert_eq!(r[p], "errno EDQUOT", "{p}: {}", stdout(&out));
    }
}

#[test]
fn a_custom_profile_blocks_only_its_rules() {
    require_root!();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat", "not_a_syscall_anywhere"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["io_uring_setup"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_GT"}]}
        ]
    });
    let script = probes(&[
        "seccomp",
        "mkdir /dev/d",
        "getpid",
        "unshare-user",
        "personality 8",
        "personality 0xffffffff",
    ]);
    let mut b = bundle(&["sh", "-c", &script], profile);
    let out = b.run();
    assert_exit_code(&out, 0);
    let r = results(&out);
    assert_eq!(r["seccomp"], "2");
    assert_eq!(r["mkdir /dev/d"], "errno EPERM", "{}", stdout(&out));
    assert_eq!(r["getpid"], "ok");
    assert_ne!(r["unshare-user"], "errno EPERM", "not in the profile");
    assert_eq!(r["personality 8"], "errno EACCES", "the args rule matches");
    assert_eq!(
        r["personality 0xffffffff"], "ok",
        "and only with that argument"
    );
}

#[test]
fn exec_gets_the_containers_filter() {
    require_root!();
    let mut b = bundle(&["sleep", "30"], docker_profile());
    let id = b.id();
    assert_exit_code(&b.create_out(&id, &[]), 0);
    assert_exit_code(&b.out(&["start", &id]), 0);
    for nnp in [true, false] {
        b.set(|c| c["process"]["noNewPrivileges"] = json!(nnp));
        // exec reads the config copy in the state dir: patch that one too.
        let copy = b.root().join(&id).join("config.json");
        std::fs::write(&copy, serde_json::to_vec(&b.config).unwrap()).unwrap();
        let out = b.out(&["exec", &id, "--", "/probe", "seccomp"]);
        assert_exit_code(&out, 0);
        assert_eq!(stdout(&out), "2\n", "nnp={nnp}");
        let out = b.out(&["exec", &id, "--", "/probe", "unshare-user"]);
        assert_eq!(stdout(&out), "errno EPERM\n", "nnp={nnp}");
    }
}

/// Accepts one connection on the listener and receives one message and one
/// fd from it, failing after 10 s (a runtime that never sends must not hang the test).
fn accept_and_recv(l: &UnixListener) -> (Vec<u8>, OwnedFd) {
    l.set_nonblocking(true).unwrap();
    let t = Instant::now();
    let conn = loop {
        match l.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "no connection to the listener"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    recv_with_fd(conn.as_raw_fd())
}

/// Receives one message and one fd from a connected stream socket.
fn recv_with_fd(sock: RawFd) -> (Vec<u8>, OwnedFd) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 65536];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .expect("the state and fd within 10 s");
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
        }
    }
    let n = msg.bytes;
    (buf[..n].to_vec(), fd.expect("an fd with the state"))
}

#[test]
fn notify_hands_the_fd_and_state_to_the_listener() {
    require_root!();
    let mut b = bundle(&["sleep", "30"], Value::Null);
    let sock_path = b.path().join("listener.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    b.set(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock_path,
            "listenerMetadata": "probe-meta",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        })
    });
    for nnp in [true, false] {
        b.set(|c| c["process"]["noNewPrivileges"] = json!(nnp));
        let id = b.id();
        let out = b.create_out(&id, &[]);
        assert_exit_code(&out, 0);
        let pid = b.pid(&id);
        let (msg, fd) = accept_and_recv(&listener);
        let st: Value = serde_json::from_slice(&msg).unwrap();
        assert_eq!(st["fds"], json!(["seccompFd"]), "{st}");
        assert_eq!(st["pid"], pid, "{st}");
        assert_eq!(st["metadata"], "probe-meta");
        assert_eq!(st["state"]["id"], id.as_str());
        assert_eq!(st["state"]["pid"], pid);
        assert_eq!(st["state"]["status"], "creating");
        assert_eq!(st["state"]["bundle"], b.path().to_str().unwrap());
        let what = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(what.to_string_lossy(), "anon_inode:seccomp notify");
        // The container keeps no copy of its own listener fd.
        let theirs: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .map(|p| p.to_string_lossy().to_string())
            .collect();
        assert!(
            !theirs.iter().any(|p| p.contains("seccomp")),
            "nnp={nnp}: {theirs:?}"
        );
        // An exec'd process sends its own fd, with its host pid and the
        // container's state.
        assert_exit_code(&b.out(&["start", &id]), 0);
        let pf = b.path().join("exec.pid");
        let ex = b.out(&[
            "exec",
            "-d",
            "--pid-file",
            pf.to_str().unwrap(),
            &id,
            "--",
            "sleep",
            "1",
        ]);
        assert_exit_code(&ex, 0);
        // -d leaves the process to us, the subreaper
        let xpid = read_pid(&pf);
        b.pids.push(xpid);
        let (msg, fd) = accept_and_recv(&listener);
        let st: Value = serde_json::from_slice(&msg).unwrap();
        assert_eq!(st["pid"], xpid, "{st}");
        assert_eq!(st["metadata"], "probe-meta");
        assert_eq!(st["state"]["id"], id.as_str());
        assert_eq!(st["state"]["pid"], pid);
        assert_eq!(st["state"]["status"], "running");
        let what = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(what.to_string_lossy(), "anon_inode:seccomp notify");
        // ours to reap (a dying init waits for every process of its pid
        // namespace to be reaped)
        assert_eq!(b.reap(xpid), 0);
        assert_exit_code(&b.out(&["delete", "--force", &id]), 0);
    }
}

#[test]
fn bad_profiles_fail_create_with_one_line_and_leave_nothing() {
    require_root!();
    let mut b = bundle(&["true"], Value::Null);
    let good = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    type Patch = fn(&mut Value);
    let cases: [(Patch, &str); 5] = [
        (
            |v| v["syscalls"][1]["action"] = json!("SCMP_ACT_FOO"),
            "nsrun: config: linux.seccomp.syscalls[1].action: unknown action \"SCMP_ACT_FOO\"",
        ),
        (
            |v| v["syscalls"][1]["args"][0]["op"] = json!("SCMP_CMP_SOMETIMES"),
            "nsrun: config: linux.seccomp.syscalls[1].args[0].op: unknown operator \"SCMP_CMP_SOMETIMES\"",
        ),
        (
            |v| v["architectures"] = json!(["SCMP_ARCH_PDP11"]),
            "nsrun: config: linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_PDP11\"",
        ),
        (
            |v| v["syscalls"][1]["args"][0]["index"] = json!(6),
            "nsrun: config: linux.seccomp.syscalls[1].args[0].index: 6 is not a syscall argument (0-5)",
        ),
        (
            |v| v["syscalls"][1]["action"] = json!("SCMP_ACT_NOTIFY"),
            "nsrun: config: linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY",
        ),
    ];
    for (patch, want) in cases {
        let mut s = good.clone();
        patch(&mut s);
        b.set(|c| c["linux"]["seccomp"] = s);
        let id = b.id();
        let out = b.create_out(&id, &[]);
        assert_exit_code(&out, 2);
        let lines: Vec<String> = stderr(&out)
            .lines()
            .filter(|l| !l.starts_with("nsrun: warning:"))
            .map(String::from)
            .collect();
        assert_eq!(lines, vec![want.to_string()]);
        let left = std::fs::read_dir(b.root()).map(|r| r.count()).unwrap_or(0);
        assert_eq!(left, 0, "state left after a failed create");
        assert!(processes_in(&b.path().join("rootfs")).is_empty());
    }
    // And the good one works.
    b.set(|c| c["linux"]["seccomp"] = good);
    assert_exit_code(&b.run(), 0);
}
