//! End-to-end: podman (with conmon) drives nsrun as its OCI runtime, side by
//! side with runc on the same podman store: podman's own config.json (its
//! seccomp profile, device rules, cgroupsPath and limits) is applied by
//! nsrun alone, with the same results as runc; and the matrix of podman
//! commands over nsrun (run -d, logs, exec [-it], ps, top, pause, update,
//! stop, rm, --read-only, --tmpfs, --sysctl, --pids-limit). Each test has its own podman
//! root, runroot and cgroup parent, all removed on drop.

use e2e::docker::{stderr, stdout};
use e2e::{assert_exit_code, require_root, unique, TempDir};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A private podman store (this host has no systemd: cgroupfs and a file
/// events log; podman as root raises rlimits it may not, so they are given).
struct Podman {
    tmp: TempDir,
    /// `--cgroup-parent` of every container: ours to remove.
    parent: String,
}

impl Podman {
    fn new() -> Option<Podman> {
        if Command::new("podman").arg("--version").output().is_err() {
            return None;
        }
        let p = Podman {
            tmp: TempDir::new("pod"),
            parent: format!("/{}", unique("mdpod")),
        };
        let out = p
            .cmd("runc")
            .args(["load", "-i"])
            .arg(e2e::busybox_tar())
            .output()
            .unwrap();
        assert_exit_code(&out, 0);
        Some(p)
    }

    fn cmd(&self, runtime: &str) -> Command {
        let t = self.tmp.path();
        let runtime = if runtime == "nsrun" {
            e2e::bin("nsrun")
        } else {
            PathBuf::from(runtime)
        };
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(t.join("root"))
            .arg("--runroot")
            .arg(t.join("run"))
            .arg("--tmpdir")
            .arg(t.join("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .arg("--runtime")
            .arg(runtime)
            .stdin(Stdio::null());
        // nsrun's state (and its seccomp cache) under our temp dir, not /run/mydocker/nsrun
        c.arg("--runtime-flag")
            .arg(format!("root={}", t.join("rt").display()));
        c
    }

    /// `podman run --rm` of `args` under `runtime` with the probe at /p.
    fn run(&self, runtime: &str, flags: &[&str], args: &[&str]) -> Output {
        let probe_dir = self.tmp.path().join("p");
        if !probe_dir.join("probe").exists() {
            std::fs::create_dir_all(&probe_dir).unwrap();
            std::fs::copy(e2e::probe::build(), probe_dir.join("probe")).unwrap();
        }
        let mut c = self.cmd(runtime);
        c.args(["run", "--rm", "--network", "none"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .arg("--cgroup-parent")
            .arg(&self.parent)
            .arg("-v")
            .arg(format!("{}:/p:ro", probe_dir.display()))
            .args(flags)
            .arg("busybox")
            .args(args);
        c.output().unwrap()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd("runc").args(["rm", "-af", "-t", "0"]).output();
        let _ = self.cmd("runc").args(["system", "reset", "-f"]).output();
        // what podman mounted under its store, then the cgroups it made
        e2e::engine::unmount_under(self.tmp.path());
        e2e::engine::remove_cgroup_tree(&self.parent);
    }
}

/// The same probe lines under runc and nsrun.
fn same_as_runc(p: &Podman, flags: &[&str], script: &str) -> String {
    let runc = p.run("runc", flags, &["sh", "-c", script]);
    let ours = p.run("nsrun", flags, &["sh", "-c", script]);
    assert_exit_code(&runc, 0);
    assert_exit_code(&ours, 0);
    assert_eq!(
        stdout(&ours),
        stdout(&runc),
        "nsrun and runc differ under podman for {flags:?} {script:?}\nnsrun stderr: {}",
        stderr(&ours)
    );
    stdout(&ours)
}

#[test]
fn podman_runs_on_nsrun_with_its_seccomp_devices_and_limits() {
    require_root!();
    let p = Podman::new();
    e2e::skip_unless!(
        p.is_some(),
        "podman is not installed (scripts/deps.sh installs it)"
    );
    let p = p.unwrap();
    let out = p.run("nsrun", &[], &["echo", "hello from podman"]);
    assert_exit_code(&out, 0);
    // nothing of nsrun's own in the container's output
    assert_eq!(stdout(&out), "hello from podman\n");
    // podman's seccomp profile, its device rules (mknod of a loop device is
    // refused: podman gives no CAP_MKNOD; with it, the open is refused by the
    // cgroup), its pids default and a memory limit, exactly as runc
    let lines = same_as_runc(
        &p,
        &["-m", "32m", "--cap-add", "MKNOD"],
        "/p/probe seccomp; /p/probe mknod-open b 7 0 /tmp/l; /p/probe mknod-open c 1 3 /tmp/n; \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
    );
    let l: Vec<&str> = lines.lines().collect();
    assert_eq!(l, ["2", "open errno EPERM", "ok", "33554432"], "{lines}");
    // the memory limit is enforced: the OOM killer's 137, as runc
    let hog = |rt| p.run(rt, &["-m", "16m"], &["tail", "/dev/zero"]);
    assert_exit_code(&hog("runc"), 137);
    assert_exit_code(&hog("nsrun"), 137);
    // exit codes come through
    assert_exit_code(&p.run("nsrun", &[], &["sh", "-c", "exit 7"]), 7);
}

impl Podman {
    /// `podman run -d` (detached, no --rm) of `args` under nsrun.
    fn run_detached(&self, flags: &[&str], args: &[&str]) -> Output {
        let mut c = self.cmd("nsrun");
        c.args(["run", "-d", "--network", "none"])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .arg("--cgroup-parent")
            .arg(&self.parent)
            .args(flags)
            .arg("busybox")
            .args(args);
        c.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd("nsrun").args(args).output().unwrap();
        assert_exit_code(&out, 0);
        stdout(&out)
    }

    fn status(&self, id: &str) -> String {
        self.ok(&["inspect", "-f", "{{.State.Status}}", id])
            .trim()
            .to_string()
    }

    /// `podman exec -it` under a terminal (script(1)): podman wants one.
    fn exec_tty(&self, id: &str, script: &str) -> Output {
        let line = self
            .cmd("nsrun")
            .args(["exec", "-it", id, "sh", "-c", script])
            .get_args()
            .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ");
        Command::new("script")
            .args(["-qec", &format!("podman {line}"), "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

#[test]
fn podman_detached_lifecycle_on_nsrun() {
    require_root!();
    let p = Podman::new();
    e2e::skip_unless!(
        p.is_some(),
        "podman is not installed (scripts/deps.sh installs it)"
    );
    let p = p.unwrap();
    // run -d prints exactly the id: nothing of nsrun's on podman's stdout
    let out = p.run_detached(&[], &["sh", "-c", "echo started; exec sleep 600"]);
    assert_exit_code(&out, 0);
    let id = stdout(&out).trim_end().to_string();
    assert_eq!(stdout(&out), format!("{id}\n"));
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{:?}",
        stdout(&out)
    );
    // logs: only the container's output
    e2e::wait_for("the container's first line", 10, || {
        p.ok(&["logs", &id]) == "started\n"
    });
    // exec, with and without a terminal: output and exit codes
    let ex = p
        .cmd("nsrun")
        .args(["exec", &id, "sh", "-c", "echo in; exit 3"])
        .output()
        .unwrap();
    assert_exit_code(&ex, 3);
    assert_eq!(stdout(&ex), "in\n");
    let ex = p.exec_tty(&id, "tty; exit 4");
    assert_exit_code(&ex, 4);
    assert!(stdout(&ex).contains("/dev/pts/"), "{}", stdout(&ex));
    assert_eq!(p.ok(&["logs", &id]), "started\n");
    // ps and top
    assert!(p.ok(&["ps", "-q", "--no-trunc"]).contains(&id));
    let top = p.ok(&["top", &id]);
    assert!(top.contains("sleep 600"), "{top}");
    // pause / unpause
    p.ok(&["pause", &id]);
    assert_eq!(p.status(&id), "paused");
    p.ok(&["unpause", &id]);
    assert_eq!(p.status(&id), "running");
    // update --memory reaches the live cgroup
    p.ok(&["update", "--memory", "64m", &id]);
    let lim = p.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
    ]);
    assert_eq!(lim, "67108864\n");
    // stop (sleep as pid 1 ignores TERM: killed after the timeout), rm
    p.ok(&["stop", "-t", "1", &id]);
    assert_eq!(p.status(&id), "exited");
    assert_eq!(
        p.ok(&["inspect", "-f", "{{.State.ExitCode}}", &id]).trim(),
        "137"
    );
    p.ok(&["rm", &id]);
    assert!(!p.ok(&["ps", "-aq", "--no-trunc"]).contains(&id));
}

#[test]
fn podman_read_only_tmpfs_sysctl_pids_limit_same_as_runc() {
    require_root!();
    let p = Podman::new();
    e2e::skip_unless!(
        p.is_some(),
        "podman is not installed (scripts/deps.sh installs it)"
    );
    let p = p.unwrap();
    let lines = same_as_runc(
        &p,
        &[
            "--read-only",
            "--tmpfs",
            "/x",
            "--tmpfs",
            "/etc:tmpcopyup",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--pids-limit",
            "50",
        ],
        "touch /x/a && echo x-ok; touch /b 2>/dev/null || echo root-ro; \
         ls -ld /x /tmp /etc /dev/shm | awk '{print $1, $NF}'; ls /etc; \
         cat /proc/sys/net/ipv4/ip_forward; \
         cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    );
    let l: Vec<&str> = lines.lines().collect();
    assert_eq!(l[..2], ["x-ok", "root-ro"], "{lines}");
    assert!(
        l.contains(&"passwd"),
        "tmpcopyup kept the image's /etc: {lines}"
    );
    assert_eq!(l[l.len() - 2..], ["1", "50"], "{lines}");
}
