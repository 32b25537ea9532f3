//! `Docker`: a mydocker store root for one test, cleaned up on drop.

use crate::{assert_exit_code, bin, busybox_tar, TempDir};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A store root with the busybox image loaded; on drop, removes every
/// container it holds and asserts nothing is left mounted or running.
pub struct Docker {
    pub root: TempDir,
}

impl Docker {
    pub fn new() -> Docker {
        let d = Docker {
            root: TempDir::new("mdk"),
        };
        let out = d.run(&["load", "-i", busybox_tar().to_str().unwrap()]);
        assert_exit_code(&out, 0);
        assert!(
            stdout(&out).contains("Loaded image: busybox:latest"),
            "{}",
            stdout(&out)
        );
        d
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("mydocker"));
        c.arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null());
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    /// Runs and asserts success; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_exit_code(&out, 0);
        stdout(&out).trim().to_string()
    }
    pub fn inspect(&self, r: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", r])).unwrap();
        v[0].clone()
    }
    pub fn wait_status(&self, r: &str, status: &str) -> serde_json::Value {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.inspect(r);
            if v["State"]["Status"] == status {
                return v;
            }
            assert!(Instant::now() < until, "{r} never became {status}: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    pub fn containers_dir_entries(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path().join("containers"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Default for Docker {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-aq", "--no-trunc"]);
        for id in stdout(&ids).split_whitespace() {
            let _ = self.run(&["rm", "-f", id]);
        }
        let nets = self.run(&["network", "ls", "-q"]);
        for n in stdout(&nets).split_whitespace() {
            let out = self.run(&["network", "rm", n]);
            if !out.status.success() {
                // Never leave a bridge or rules on the machine, even when a
                // test failed half-way: force it through the tool below.
                let _ = Command::new(bin("netbr"))
                    .arg("--root")
                    .arg(self.root.path())
                    .args(["rm", "--force", n])
                    .output();
                assert!(std::thread::panicking(), "network rm {n}: {}", stderr(&out));
            }
        }
        let leaked = mountinfo::mounts_under(self.root.path()).unwrap();
        for m in leaked.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        if !std::thread::panicking() {
            assert!(leaked.is_empty(), "mounts left behind: {leaked:?}");
            assert!(
                self.containers_dir_entries().is_empty(),
                "container dirs left: {:?}",
                self.containers_dir_entries()
            );
        }
    }
}

/// Asserts no cgroup directory named for container `id` is left on any hierarchy.
pub fn assert_no_cgroup(id: &str) {
    let find = Command::new("find")
        .args(["/sys/fs/cgroup", "-name", id])
        .output()
        .unwrap();
    assert_eq!(stdout(&find), "", "cgroup left behind for {id}");
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}
