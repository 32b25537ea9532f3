//! End-to-end: containerd 1.6 with its io.containerd.runc.v2 shim drives
//! nsrun (`ctr run --runc-binary`). Each test starts its own containerd with a
//! private config (root, state, socket in a temp dir, the cri plugin off) and
//! its own namespace, and removes on drop, also when it fails: its
//! containers and tasks, the daemon and any shim of its socket, the cgroups
//! `/<namespace>/<id>` containerd put at each hierarchy's root, the mounts
//! under its temp dir, and the shim's socket dir if the test made it.

use e2e::docker::{stderr, stdout};
use e2e::{assert_exit_code, require_root, unique, TempDir};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const IMAGE: &str = "docker.io/library/busybox:latest";
/// The shim's socket dir (fixed in containerd 1.6, not under our state).
const SHIM_SOCKETS: &str = "/run/containerd/s";

/// One containerd at a time: the shims share /run/containerd/s, which a test
/// that made it removes at the end.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Containerd {
    tmp: TempDir,
    /// The containerd namespace: unique, so its cgroups are ours.
    ns: String,
    daemon: Child,
    /// /run/containerd and its `s` did not exist before: ours to remove.
    made_run_dirs: Vec<PathBuf>,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Containerd {
    fn start() -> Option<Containerd> {
        let conf = Command::new("containerd")
            .args(["config", "default"])
            .output()
            .ok()?;
        if !conf.status.success() || Command::new("ctr").arg("--version").output().is_err() {
            return None;
        }
        let serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let made_run_dirs = ["/run/containerd", SHIM_SOCKETS]
            .iter()
            .map(PathBuf::from)
            .filter(|p| !p.exists())
            .collect();
        let tmp = TempDir::new("ctd");
        let t = tmp.path();
        let mut cfg = String::from_utf8_lossy(&conf.stdout).to_string();
        for (from, to) in [
            // opt would make /opt/containerd
            (
                "disabled_plugins = []",
                r#"disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt"]"#
                    .to_string(),
            ),
            (
                r#"root = "/var/lib/containerd""#,
                format!("root = {:?}", t.join("root")),
            ),
            (
                r#"state = "/run/containerd""#,
                format!("state = {:?}", t.join("state")),
            ),
            (
                r#"address = "/run/containerd/containerd.sock""#,
                format!("address = {:?}", t.join("c.sock")),
            ),
        ] {
            assert!(cfg.contains(from), "containerd's default config lacks {from}");
            cfg = cfg.replacen(from, &to, 1);
        }
        std::fs::write(t.join("config.toml"), cfg).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(t.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(t.join("containerd.log")).unwrap())
            .spawn()
            .unwrap();
        let c = Containerd {
            ns: unique("ctd"),
            tmp,
            daemon,
            made_run_dirs,
            _serial: serial,
        };
        let t0 = Instant::now();
        while !c.ctr(&["version"]).status.success() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "containerd did not come up: {}",
                std::fs::read_to_string(c.tmp.path().join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let tar = e2e::busybox_tar();
        let out = c.ctr(&["images", "import", tar.to_str().unwrap()]);
        assert_exit_code(&out, 0);
        Some(c)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.tmp.path().join("c.sock"))
            .arg("-n")
            .arg(&self.ns)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `ctr run` on nsrun: its state and ctr's fifos under our temp dir.
    fn run(&self, flags: &[&str], id: &str, args: &[&str]) -> Output {
        let t = self.tmp.path();
        let mut a: Vec<String> = vec!["run".into()];
        a.extend(flags.iter().map(|s| s.to_string()));
        a.extend([
            "--runc-binary".into(),
            e2e::bin("nsrun").to_string_lossy().to_string(),
            "--runc-root".into(),
            t.join("nsrun").to_string_lossy().to_string(),
            "--fifo-dir".into(),
            t.join("fifo").to_string_lossy().to_string(),
            IMAGE.into(),
            id.into(),
        ]);
        a.extend(args.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        self.ctr(&a)
    }

    /// `ctr task exec`, with a terminal from script(1) when `tty` (ctr wants
    /// its own stdin to be one).
    fn exec(&self, id: &str, exec_id: &str, tty: bool, args: &[&str]) -> Output {
        let fifo = self.tmp.path().join("fifo");
        let mut a = vec!["task", "exec", "--fifo-dir", fifo.to_str().unwrap()];
        if tty {
            a.push("-t");
        }
        a.extend(["--exec-id", exec_id, id]);
        a.extend_from_slice(args);
        if !tty {
            return self.ctr(&a);
        }
        let line = self
            .cmd(&a)
            .get_args()
            .map(|s| shell_quote(&s.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ");
        Command::new("script")
            .args(["-qec", &format!("ctr {line}"), "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The STATUS column of `ctr task ls` for `id`.
    fn status(&self, id: &str) -> String {
        let out = self.ctr(&["task", "ls"]);
        stdout(&out)
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&id)).then(|| f.get(2).unwrap_or(&"").to_string())
            })
            .unwrap_or_default()
    }

    fn task_pid(&self, id: &str) -> i32 {
        let out = self.ctr(&["task", "ls"]);
        stdout(&out)
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&id)).then(|| f[1].parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no task {id}: {}", stdout(&out)))
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let ids = stdout(&self.ctr(&["containers", "ls", "-q"]));
        for id in ids.lines() {
            let _ = self.ctr(&["task", "kill", "-a", "-s", "SIGKILL", id]);
            let _ = self.ctr(&["task", "rm", "-f", id]);
            let _ = self.ctr(&["containers", "rm", id]);
        }
        // containerd, then any shim still serving our socket
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let _ = self.daemon.wait();
        let sock = self.tmp.path().join("c.sock").to_string_lossy().to_string();
        for pid in shims_of(&sock) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // what is left in our cgroups, then the cgroups
        e2e::engine::remove_cgroup_tree(&self.ns);
        e2e::engine::unmount_under(self.tmp.path());
        for d in self.made_run_dirs.iter().rev() {
            let _ = std::fs::remove_dir(d); // only if empty
        }
    }
}

/// Pids of containerd-shim processes started for our containerd (their
/// command line names its socket).
fn shims_of(sock: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            cmd.contains("containerd-shim") && cmd.split('\0').any(|a| a == sock)
        })
        .collect()
}

#[test]
fn containerd_runs_on_nsrun_output_limits_exec_pause_metrics() {
    require_root!();
    let c = Containerd::start();
    e2e::skip_unless!(
        c.is_some(),
        "containerd is not installed (scripts/deps.sh installs it)"
    );
    let c = c.unwrap();
    // the container's output, nothing of nsrun's; its exit code
    let out = c.run(
        &["--rm"],
        "hello",
        &["sh", "-c", "echo hello; echo err >&2; exit 3"],
    );
    assert_exit_code(&out, 3);
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(stderr(&out), "err\n");
    // --memory-limit enforced: the OOM killer's 137
    let hog = c.run(
        &["--rm", "--memory-limit", "16777216"],
        "hog",
        &["tail", "/dev/zero"],
    );
    assert_exit_code(&hog, 137);

    let out = c.run(
        &["-d", "--memory-limit", "33554432"],
        "box",
        &["sleep", "600"],
    );
    assert_exit_code(&out, 0);
    let pid = c.task_pid("box");
    // task ps: the container's processes by host pid
    let ps = stdout(&c.ctr(&["task", "ps", "box"]));
    let pids: Vec<&str> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(pids, [pid.to_string()], "{ps}");
    // task exec: output and exit code, with and without a terminal
    let ex = c.exec("box", "e1", false, &["sh", "-c", "echo in; exit 4"]);
    assert_exit_code(&ex, 4);
    assert_eq!(stdout(&ex), "in\n");
    let ex = c.exec("box", "e2", true, &["sh", "-c", "tty; exit 5"]);
    assert_exit_code(&ex, 5);
    assert!(stdout(&ex).contains("/dev/pts/"), "{}", stdout(&ex));
    // an unknown command: exec fails with the runtime's message
    let ex = c.exec("box", "e3", false, &["/no/such"]);
    assert_ne!(ex.status.code(), Some(0));
    // pause / resume
    assert_exit_code(&c.ctr(&["task", "pause", "box"]), 0);
    assert_eq!(c.status("box"), "PAUSED");
    assert_exit_code(&c.ctr(&["task", "resume", "box"]), 0);
    assert_eq!(c.status("box"), "RUNNING");
    // metrics from the container's own cgroup: its limit and its one process
    let m = stdout(&c.ctr(&["task", "metrics", "box"]));
    let value = |k: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {k} in metrics: {m}"))
    };
    if m.contains("memory.limit_in_bytes") {
        assert_eq!(value("memory.limit_in_bytes"), "33554432", "{m}");
        assert_eq!(value("pids.current"), "1", "{m}");
    } else {
        assert!(m.contains("33554432"), "{m}");
    }
    assert_exit_code(&c.ctr(&["task", "kill", "-s", "SIGKILL", "box"]), 0);
    let t0 = Instant::now();
    while c.status("box") != "STOPPED" {
        assert!(t0.elapsed() < Duration::from_secs(10), "box did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn containerd_shows_runtime_errors_and_kill_all_spares_the_pod_sandbox() {
    require_root!();
    let c = Containerd::start();
    e2e::skip_unless!(
        c.is_some(),
        "containerd is not installed (scripts/deps.sh installs it)"
    );
    let c = c.unwrap();
    // a runtime error reaches ctr with nsrun's message (read from log.json)
    let out = c.run(
        &[
            "--rm",
            "--mount",
            "type=bind,src=/nonexistent-nsrun-src,dst=/x,options=rbind:ro",
        ],
        "bad",
        &["true"],
    );
    assert_exit_code(&out, 1);
    assert!(
        stderr(&out).contains("bind mount source /nonexistent-nsrun-src: ENOENT"),
        "{}",
        stderr(&out)
    );
    // a pod: a member joins the sandbox's pid namespace; kill --all of the
    // member signals its cgroup only
    assert_exit_code(&c.run(&["-d"], "sandbox", &["sleep", "600"]), 0);
    let sp = c.task_pid("sandbox");
    let with = format!("pid:/proc/{sp}/ns/pid");
    assert_exit_code(
        &c.run(
            &["-d", "--with-ns", &with],
            "member",
            &["sh", "-c", "sleep 600 & sleep 601; true"],
        ),
        0,
    );
    let t0 = Instant::now();
    let member_pids = loop {
        let ps = stdout(&c.ctr(&["task", "ps", "member"]));
        let pids: Vec<i32> = ps
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        if pids.len() == 3 {
            break pids;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "member's processes: {ps}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_exit_code(
        &c.ctr(&["task", "kill", "-a", "-s", "SIGKILL", "member"]),
        0,
    );
    let t0 = Instant::now();
    while c.status("member") != "STOPPED" {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "member did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // (a SIGKILLed process takes a moment to die; a zombie counts as dead)
    for p in member_pids {
        e2e::wait_for(&format!("{p} of the member to die"), 10, || {
            !e2e::process_runs(p)
        });
    }
    assert_eq!(c.status("sandbox"), "RUNNING");
    assert!(e2e::process_runs(sp));
}
