//! End-to-end tests of nsrun's `linux.seccomp`: real containers from the
//! busybox rootfs with a `runc spec` config, the static probe
//! (tests/probe/probe.c) at /probe asking the kernel what is allowed.
//! Each test has its own bundle and state root in a TempDir and a guard that
//! force-deletes its containers, reaps their inits and checks nothing is left.

use e2e::{assert_exit_code, require_root, unique, TempDir};
use serde_json::{json, Value};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn runc_spec() -> Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let d = TempDir::new("spec");
        let st = Command::new("runc")
            .arg("spec")
            .current_dir(d.path())
            .status()
            .expect("run `runc spec`");
        assert!(st.success(), "runc spec failed");
        serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap()
    })
    .clone()
}

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

fn subreaper() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    });
}

/// A bundle with the probe in its rootfs and docker's capabilities, cleaned up on drop.
struct Bundle {
    tmp: TempDir,
    config: Value,
    ids: Vec<String>,
    pids: Vec<i32>,
}

impl Bundle {
    fn new(args: &[&str], seccomp: Value) -> Bundle {
        subreaper();
        let tmp = TempDir::new("nss");
        e2e::unpack_busybox(&tmp.path().join("rootfs"));
        e2e::probe::install(&tmp.path().join("rootfs"));
        let mut config = runc_spec();
        config["process"]["args"] = json!(args);
        config["process"]["terminal"] = json!(false);
        for set in ["bounding", "effective", "permitted"] {
            config["process"]["capabilities"][set] = json!(docker_caps());
        }
        config["linux"]["seccomp"] = seccomp;
        let b = Bundle {
            tmp,
            config,
            ids: Vec::new(),
            pids: Vec::new(),
        };
        b.write();
        b
    }
    fn path(&self) -> &Path {
        self.tmp.path()
    }
    fn root(&self) -> PathBuf {
        self.tmp.path().join("state")
    }
    fn write(&self) {
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
    fn set(&mut self, f: impl FnOnce(&mut Value)) {
        f(&mut self.config);
        self.write();
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(e2e::bin("nsrun"));
        c.arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null());
        c
    }
    fn out(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    fn id(&mut self) -> String {
        let id = unique("sc");
        self.ids.push(id.clone());
        id
    }
    /// `run`: the container's output.
    fn run(&mut self) -> Output {
        let id = self.id();
        let b = self.path().to_str().unwrap().to_string();
        self.out(&["run", "--bundle", &b, &id])
    }
    /// `create` with stdio on files (the init keeps create's stdio).
    fn create(&mut self, id: &str) -> Output {
        let b = self.path().to_str().unwrap().to_string();
        let (o, e) = (
            self.path().join(format!("{id}.out")),
            self.path().join(format!("{id}.err")),
        );
        let status = self
            .cmd(&["create", "--bundle", &b, id])
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        let out = Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        };
        if status.success() {
            self.pids.push(pid_of(&out));
        }
        out
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.ids) {
            let _ = self.out(&["delete", "--force", &id]);
        }
        for pid in self.pids.clone() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let t = Instant::now();
        while !self.pids.is_empty() && t.elapsed() < Duration::from_secs(10) {
            self.pids
                .retain(|&p| unsafe { libc::waitpid(p, std::ptr::null_mut(), libc::WNOHANG) } == 0);
            std::thread::sleep(Duration::from_millis(5));
        }
        if !std::thread::panicking() {
            let left: Vec<_> = std::fs::read_dir(self.root())
                .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "state left behind: {left:?}");
            assert!(processes_in(&self.path().join("rootfs")).is_empty());
        }
    }
}

fn pid_of(out: &Output) -> i32 {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    v["pid"].as_i64().expect("pid in create output") as i32
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Processes whose root directory is `rootfs` (a container left running).
fn processes_in(rootfs: &Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| std::fs::read_link(format!("/proc/{p}/root")).is_ok_and(|r| r == rootfs))
        .collect()
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
    let mut b = Bundle::new(&["sh", "-c", &script], docker_profile());
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
}

#[test]
fn the_default_errno_is_honoured() {
    require_root!();
    let mut profile = docker_profile();
    profile["defaultErrnoRet"] = json!(libc::EDQUOT);
    let mut all = vec!["seccomp", "getpid"];
    all.extend(BLOCKED);
    let mut b = Bundle::new(&["sh", "-c", &probes(&all)], profile);
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
    let mut b = Bundle::new(&["sh", "-c", &script], profile);
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
    let mut b = Bundle::new(&["sleep", "30"], docker_profile());
    let id = b.id();
    assert_exit_code(&b.create(&id), 0);
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
    let mut b = Bundle::new(&["sleep", "30"], Value::Null);
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
        let out = b.create(&id);
        assert_exit_code(&out, 0);
        let pid = pid_of(&out);
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
        let ex = b.out(&["exec", "-d", &id, "--", "sleep", "1"]);
        assert_exit_code(&ex, 0);
        let (msg, fd) = accept_and_recv(&listener);
        let st: Value = serde_json::from_slice(&msg).unwrap();
        assert_eq!(st["pid"], pid_of(&ex), "{st}");
        assert_eq!(st["metadata"], "probe-meta");
        assert_eq!(st["state"]["id"], id.as_str());
        assert_eq!(st["state"]["pid"], pid);
        assert_eq!(st["state"]["status"], "running");
        let what = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(what.to_string_lossy(), "anon_inode:seccomp notify");
        assert_exit_code(&b.out(&["delete", "--force", &id]), 0);
    }
}

#[test]
fn bad_profiles_fail_create_with_one_line_and_leave_nothing() {
    require_root!();
    let mut b = Bundle::new(&["true"], Value::Null);
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
        let out = b.create(&id);
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
