//! `Bundle`: an OCI bundle (the busybox rootfs + `runc spec`'s config) and an
//! nsrun state root for one test, cleaned up on drop: its containers are
//! force-deleted, their inits reaped (the test process is their subreaper),
//! and nothing may be left (state, mounts under the bundle, processes whose
//! root is its rootfs).

use crate::{assert_exit_code, unique, TempDir};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `runc spec`'s config, generated once per test process.
pub fn runc_spec() -> Value {
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

/// Created inits are reparented to us when `nsrun create` exits: be their
/// subreaper so they can be reaped (and their exit status seen), as mydocker does.
pub fn subreaper() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    });
}

/// A bundle (rootfs + config.json) and a state root, cleaned up on drop.
pub struct Bundle {
    pub tmp: TempDir,
    pub config: Value,
    pub ids: Vec<String>,
    pub pids: Vec<i32>,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        subreaper();
        let tmp = TempDir::new("nsr");
        crate::unpack_busybox(&tmp.path().join("rootfs"));
        let mut config = runc_spec();
        config["process"]["args"] = json!(args);
        config["process"]["terminal"] = json!(false);
        config["hostname"] = json!("nsrun-test");
        let b = Bundle {
            tmp,
            config,
            ids: Vec::new(),
            pids: Vec::new(),
        };
        b.write();
        b
    }
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("state")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.tmp.path().join("rootfs")
    }
    pub fn write(&self) {
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
    pub fn set(&mut self, f: impl FnOnce(&mut Value)) {
        f(&mut self.config);
        self.write();
    }
    /// An nsrun command with this bundle's --root.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(crate::bin("nsrun"));
        c.arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null());
        c
    }
    pub fn out(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    /// `create` with stdout and stderr on files `<id>.out` / `<id>.err` in the
    /// bundle: the init keeps create's stdio, so a pipe would never see EOF.
    pub fn create_out(&mut self, id: &str, extra: &[&str]) -> Output {
        let b = self.path().to_str().unwrap().to_string();
        let (o, e) = (
            self.path().join(format!("{id}.out")),
            self.path().join(format!("{id}.err")),
        );
        let pidfile = self.path().join(format!("{id}.pid"));
        let pidfile = pidfile.to_str().unwrap().to_string();
        let mut args = vec!["create", "--bundle", &b];
        if !extra.contains(&"--pid-file") {
            args.extend(["--pid-file", &pidfile]);
        }
        args.extend_from_slice(extra);
        args.push(id);
        let status = self
            .cmd(&args)
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
            let given = extra.iter().position(|a| *a == "--pid-file");
            let file = given.map_or(PathBuf::from(&pidfile), |i| PathBuf::from(extra[i + 1]));
            self.pids.push(read_pid(&file));
            // as runc: create prints nothing; its stdout is the container's
            assert_eq!(stdout(&out), "", "create wrote to the container's stdout");
        }
        out
    }
    /// The pid `create_out` wrote to `<bundle>/<id>.pid`.
    pub fn pid(&self, id: &str) -> i32 {
        read_pid(&self.path().join(format!("{id}.pid")))
    }
    /// A new id, remembered for cleanup.
    pub fn id(&mut self) -> String {
        let id = unique("ct");
        self.ids.push(id.clone());
        id
    }
    /// `run` with the bundle's config; returns the output.
    pub fn run(&mut self) -> Output {
        let id = self.id();
        let b = self.path().to_str().unwrap().to_string();
        self.out(&["run", "--bundle", &b, &id])
    }
    /// `create` + `start`; returns (id, pid).
    pub fn start(&mut self) -> (String, i32) {
        let id = self.id();
        let out = self.create_out(&id, &[]);
        assert_exit_code(&out, 0);
        let pid = self.pid(&id);
        assert_exit_code(&self.out(&["start", &id]), 0);
        (id, pid)
    }
    pub fn state(&self, id: &str) -> Value {
        let out = self.out(&["state", id]);
        assert_exit_code(&out, 0);
        serde_json::from_slice(&out.stdout).unwrap()
    }
    pub fn exec(&self, id: &str, args: &[&str]) -> Output {
        let mut a = vec!["exec", id, "--"];
        a.extend_from_slice(args);
        self.out(&a)
    }
    /// Reaps one of our created inits, returning its exit status (128+N for
    /// signal N). Polls every pid we know of: a dying init waits until the
    /// processes of its pid namespace that we parent (`exec -d` ones) are reaped.
    pub fn reap(&mut self, pid: i32) -> i32 {
        let t = Instant::now();
        loop {
            let mut got = None;
            for p in self.pids.clone() {
                let mut st = 0;
                let r = unsafe { libc::waitpid(p, &mut st, libc::WNOHANG) };
                if r == p || r < 0 {
                    self.pids.retain(|x| *x != p);
                    if p == pid {
                        assert_eq!(r, pid, "waitpid {pid}");
                        got = Some(if libc::WIFEXITED(st) {
                            libc::WEXITSTATUS(st)
                        } else {
                            128 + libc::WTERMSIG(st)
                        });
                    }
                }
            }
            if let Some(st) = got {
                return st;
            }
            assert!(self.pids.contains(&pid), "{pid} is not ours to reap");
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "timed out reaping {pid}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
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
            assert_no_mounts(self.path());
            let left = processes_in(&self.rootfs());
            assert!(left.is_empty(), "processes left in the rootfs: {left:?}");
            // (dot entries are nsrun's caches, not containers)
            let left: Vec<_> = std::fs::read_dir(self.root())
                .map(|r| {
                    r.filter_map(|e| e.ok())
                        .map(|e| e.file_name())
                        .filter(|n| !n.to_string_lossy().starts_with('.'))
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                left.is_empty(),
                "state left behind in {}: {left:?}",
                self.root().display()
            );
        }
    }
}

pub fn read_pid(file: &Path) -> i32 {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("pid file {}: {e}", file.display()))
        .trim()
        .parse()
        .unwrap()
}

pub fn pid_of(out: &Output) -> i32 {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    v["pid"].as_i64().expect("pid in create output") as i32
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// No mount of the host mount namespace lies under `dir`.
pub fn assert_no_mounts(dir: &Path) {
    let leaked = mountinfo::mounts_under(dir).unwrap();
    assert!(leaked.is_empty(), "mounts leaked to the host: {leaked:?}");
}

/// Processes whose root directory is `rootfs` (a container left running).
pub fn processes_in(rootfs: &Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| std::fs::read_link(format!("/proc/{p}/root")).is_ok_and(|r| r == rootfs))
        .collect()
}
