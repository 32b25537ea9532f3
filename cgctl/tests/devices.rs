//! The device allowlist on real cgroups (as root): `v1_*` need a v1 `devices`
//! hierarchy (this machine), `v2_*` a pure cgroup v2 host (scripts/vm-test.sh
//! runs them in a qemu VM). Each makes its own cgroup under this process's
//! cgroup and forks a child into it that makes device nodes in a temp dir and
//! opens them: no host device is opened outside such a cgroup.

use cgctl::bpf;
use cgctl::devices::{self, docker_default, parse_rule, Rule};
use cgctl::hierarchy::{Host, Mode};
use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "cgctl-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// A cgroup directory this test made; Drop removes it.
struct TestCg(PathBuf);

impl TestCg {
    fn under(base: &Path) -> TestCg {
        let dir = base.join(unique("devtest"));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TestCg(dir)
    }
}

impl Drop for TestCg {
    fn drop(&mut self) {
        // the probe children are reaped before this runs; retry in case the
        // kernel still counts one as leaving
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("could not remove {}", self.0.display());
    }
}

/// A temp dir for device nodes; Drop removes it.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let d = std::env::temp_dir().join(unique("devnodes"));
        std::fs::create_dir(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The caller's directory in the v1 devices hierarchy, or why there is none.
fn v1_base() -> Result<PathBuf, String> {
    if !is_root() {
        return Err("not root".into());
    }
    let host = Host::detect().map_err(|e| e.to_string())?;
    host.v1
        .iter()
        .find(|h| h.controllers.iter().any(|c| c == "devices"))
        .map(|h| h.base.clone())
        .ok_or_else(|| "no v1 devices hierarchy".into())
}

/// The caller's v2 directory on a pure v2 host, or why not.
fn v2_base() -> Result<PathBuf, String> {
    if !is_root() {
        return Err("not root".into());
    }
    let host = Host::detect().map_err(|e| e.to_string())?;
    match (host.mode, host.unified) {
        (Mode::V2, Some(u)) => Ok(u.base),
        (mode, _) => Err(format!("host is {mode:?}, not pure cgroup v2")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Char(u32, u32),
    Block(u32, u32),
}

/// What happened to one node: mknod's and open's errno (0 = ok; open is -1
/// when mknod failed and it was not tried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    mknod: i32,
    open: i32,
}

const OK: Probe = Probe { mknod: 0, open: 0 };
const OPEN_EPERM: Probe = Probe {
    mknod: 0,
    open: libc::EPERM,
};

/// Forks a child that moves itself into `cg` (writes 0 to cgroup.procs),
/// then mknods each node in a temp dir and opens it read-only. The child
/// only makes raw syscalls on data prepared before the fork (the test
/// harness is multithreaded).
fn probe(cg: &Path, nodes: &[Node]) -> Vec<Probe> {
    assert!(nodes.len() <= 8);
    let tmp = TempDir::new();
    let cpath = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
    let procs = cpath(&cg.join("cgroup.procs"));
    let paths: Vec<CString> = (0..nodes.len())
        .map(|i| cpath(&tmp.0.join(format!("n{i}"))))
        .collect();
    let specs: Vec<(libc::mode_t, libc::dev_t)> = nodes
        .iter()
        .map(|n| match *n {
            Node::Char(ma, mi) => (libc::S_IFCHR | 0o600, libc::makedev(ma, mi)),
            Node::Block(ma, mi) => (libc::S_IFBLK | 0o600, libc::makedev(ma, mi)),
        })
        .collect();
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (rd, wr) = (fds[0], fds[1]);
    // SAFETY: the child below only makes async-signal-safe syscalls on
    // memory prepared before the fork, then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY (all calls in this block): raw syscalls on valid
        // NUL-terminated paths and local buffers; the child never returns.
        unsafe {
            let errno = || *libc::__errno_location();
            let mut out = [0i32; 16];
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                // not in the cgroup: open nothing
                libc::_exit(3);
            }
            libc::close(fd);
            for (i, (path, (mode, dev))) in paths.iter().zip(&specs).enumerate() {
                if libc::mknod(path.as_ptr(), *mode, *dev) != 0 {
                    out[2 * i] = errno();
                    out[2 * i + 1] = -1;
                    continue;
                }
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
                );
                if fd < 0 {
                    out[2 * i + 1] = errno();
                } else {
                    libc::close(fd);
                }
            }
            let n = std::mem::size_of_val(&out);
            let ok = libc::write(wr, out.as_ptr().cast(), n) == n as isize;
            libc::_exit(if ok { 0 } else { 4 });
        }
    }
    // SAFETY: wr is our copy of the pipe's write end, closed once.
    unsafe { libc::close(wr) };
    let mut out = [0i32; 16];
    // SAFETY: reads at most size_of(out) bytes into out.
    let n = unsafe { libc::read(rd, out.as_mut_ptr().cast(), std::mem::size_of_val(&out)) };
    // SAFETY: rd is ours, closed once.
    unsafe { libc::close(rd) };
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 0),
        "probe child (3: could not join {})",
        cg.display()
    );
    assert_eq!(n as usize, std::mem::size_of_val(&out));
    (0..nodes.len())
        .map(|i| Probe {
            mknod: out[2 * i],
            open: out[2 * i + 1],
        })
        .collect()
}

fn list(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("devices.list"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

const DOCKER_LIST: [&str; 12] = [
    "c 1:5 rwm",
    "c 1:3 rwm",
    "c 1:9 rwm",
    "c 1:8 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c *:* m",
    "b *:* m",
    "c 1:7 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

/// loop0 (a block device), null, fuse (denied by docker), zero.
const NODES: [Node; 4] = [
    Node::Block(7, 0),
    Node::Char(1, 3),
    Node::Char(10, 229),
    Node::Char(1, 5),
];

#[test]
fn v1_docker_default_denies_block_devices() {
    let base = v1_base();
    e2e::skip_unless!(base.is_ok(), base.as_ref().unwrap_err());
    let base = base.unwrap();
    let cg = TestCg::under(&base);
    // a fresh v1 devices cgroup inherits its parent's allow-all
    assert_eq!(list(&cg.0), ["a *:* rwm"]);
    // control: before the rules, the EPERM below is not there (fuse opens or
    // fails for its own reasons)
    let before = probe(&cg.0, &[Node::Char(10, 229)]);
    assert!(
        before[0].mknod == 0 && before[0].open != libc::EPERM,
        "{before:?}"
    );
    devices::apply(std::slice::from_ref(&cg.0), &docker_default()).unwrap();
    assert_eq!(list(&cg.0), DOCKER_LIST);
    assert_eq!(probe(&cg.0, &NODES), [OPEN_EPERM, OK, OPEN_EPERM, OK]);
}

#[test]
fn v1_update_takes_effect_without_a_reset() {
    let base = v1_base();
    e2e::skip_unless!(base.is_ok(), base.as_ref().unwrap_err());
    let base = base.unwrap();
    let cg = TestCg::under(&base);
    let dirs = [cg.0.clone()];
    devices::apply(&dirs, &docker_default()).unwrap();
    let mut rules = docker_default();
    // not m: that would punch a hole into `c *:* m`
    rules.push(parse_rule("c 1:5 rw", false).unwrap());
    rules.push(parse_rule("c 1:7 w", false).unwrap());
    devices::apply(&dirs, &rules).unwrap();
    let want: Vec<String> = DOCKER_LIST
        .iter()
        .map(|l| match *l {
            "c 1:5 rwm" => "c 1:5 m".to_string(),
            "c 1:7 rwm" => "c 1:7 rm".to_string(),
            l => l.to_string(),
        })
        .collect();
    assert_eq!(list(&cg.0), want);
    assert_eq!(
        probe(&cg.0, &NODES),
        [OPEN_EPERM, OK, OPEN_EPERM, OPEN_EPERM]
    );
    // back to allow-all
    devices::apply(&dirs, &[parse_rule("a *:* rwm", true).unwrap()]).unwrap();
    assert_eq!(list(&cg.0), ["a *:* rwm"]);
}

#[test]
fn v1_refused_rules_change_nothing() {
    let base = v1_base();
    e2e::skip_unless!(base.is_ok(), base.as_ref().unwrap_err());
    let base = base.unwrap();
    let cg = TestCg::under(&base);
    let mut rules = docker_default();
    // a hole in `c *:* m`: v1 cannot express it
    rules.push(parse_rule("c 1:3 m", false).unwrap());
    let e = devices::apply(std::slice::from_ref(&cg.0), &rules).unwrap_err();
    assert!(e.to_string().starts_with("rules[19] (c 1:3 m): "), "{e}");
    assert_eq!(list(&cg.0), ["a *:* rwm"]);
}

#[test]
fn apply_needs_a_devices_cgroup() {
    let tmp = TempDir::new();
    let e = devices::apply(std::slice::from_ref(&tmp.0), &docker_default()).unwrap_err();
    assert!(e.to_string().starts_with("no devices cgroup among"), "{e}");
}

fn ours(dir: &Path) -> (Vec<u32>, Vec<u32>) {
    let f = std::fs::File::open(dir).unwrap();
    (
        bpf::attached_ours(f.as_fd()).unwrap(),
        bpf::query(f.as_fd()).unwrap(),
    )
}

#[test]
fn v2_docker_default_attaches_a_filter() {
    let base = v2_base();
    e2e::skip_unless!(base.is_ok(), base.as_ref().unwrap_err());
    let base = base.unwrap();
    let cg = TestCg::under(&base);
    let dirs = [cg.0.clone()];
    assert_eq!(ours(&cg.0), (vec![], vec![]));
    let before = probe(&cg.0, &[Node::Char(10, 229)]);
    assert!(
        before[0].mknod == 0 && before[0].open != libc::EPERM,
        "{before:?}"
    );
    devices::apply(&dirs, &docker_default()).unwrap();
    let (first, all) = ours(&cg.0);
    assert_eq!(first.len(), 1, "ours {first:?}");
    assert_eq!(all, first);
    assert_eq!(probe(&cg.0, &NODES), [OPEN_EPERM, OK, OPEN_EPERM, OK]);
}

#[test]
fn v2_update_replaces_the_filter() {
    let base = v2_base();
    e2e::skip_unless!(base.is_ok(), base.as_ref().unwrap_err());
    let base = base.unwrap();
    let cg = TestCg::under(&base);
    let dirs = [cg.0.clone()];
    devices::apply(&dirs, &docker_default()).unwrap();
    let (first, _) = ours(&cg.0);
    let mut rules: Vec<Rule> = docker_default();
    rules.push(parse_rule("c 1:5 rw", false).unwrap());
    devices::apply(&dirs, &rules).unwrap();
    let (second, all) = ours(&cg.0);
    assert_eq!(second.len(), 1, "ours {second:?}");
    assert_ne!(second, first, "a new program replaced the first");
    assert_eq!(all, second);
    assert_eq!(
        probe(&cg.0, &NODES),
        [OPEN_EPERM, OK, OPEN_EPERM, OPEN_EPERM]
    );
    // refused rules leave the filter in place
    rules.push(parse_rule("c 1:3 m", false).unwrap());
    assert!(devices::apply(&dirs, &rules).is_err());
    assert_eq!(ours(&cg.0).0, second);
}
