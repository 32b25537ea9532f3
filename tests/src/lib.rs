//! Helpers shared by the end-to-end tests: where the built binaries are, the
//! default busybox image, unique names, and temp dirs that clean up.

pub mod apisvc;
pub mod bundle;
pub mod docker;
pub mod engine;
pub mod probe;
pub mod skip;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The workspace root (the parent of `tests/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A built binary of the workspace, from the same profile as this test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/e2e-xxxx -> target/<profile>/<name>
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// True when running as root; tests that need root skip otherwise
/// (`require_root!`, see [`skip`]).
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Polls `done` every 10 ms until it holds; fails the test naming `what`
/// after `secs` seconds. Tests wait for a state this way, never by sleeping
/// a guessed time.
pub fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(
            std::time::Instant::now() < end,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// True while process `pid` runs: neither reaped nor a zombie.
pub fn process_runs(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && l.contains("Z (zombie)"))
        })
        .unwrap_or(false)
}

/// True while signal `sig` is pending for process `pid` (SigPnd or ShdPnd
/// of /proc/PID/status): once false, it was delivered or dropped.
pub fn signal_pending(pid: i32, sig: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .filter(|l| l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .any(|mask| mask & (1 << (sig - 1)) != 0)
}

/// The default image as a `docker save` tarball: `$MYDOCKER_TEST_IMAGE`, or
/// built once per test process by scripts/mkimage-busybox.sh.
pub fn busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        if let Ok(p) = std::env::var("MYDOCKER_TEST_IMAGE") {
            if Path::new(&p).exists() {
                return PathBuf::from(p);
            }
        }
        let out = workspace().join("build/busybox.tar");
        if !out.exists() {
            let st = Command::new(workspace().join("scripts/mkimage-busybox.sh"))
                .arg(&out)
                .stdout(Stdio::null())
                .status()
                .expect("run scripts/mkimage-busybox.sh");
            assert!(st.success(), "scripts/mkimage-busybox.sh failed");
        }
        out
    })
    .clone()
}

/// A temp dir removed on drop (even when the test panics). Refuses to remove
/// anything still mounted beneath it, so a leaked mount is loud, not deleted through.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let prefix = self.0.to_string_lossy().to_string();
        let leaked = mountinfo::mounts_under(&self.0).unwrap_or_default();
        if leaked.is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!(
                "TempDir: not removing {}: still mounted: {:?}",
                prefix, leaked
            );
        }
    }
}

/// A name unique to this process and call: `<tag>-<pid>-<n>`, short enough for
/// interface names when `tag` is at most 4 characters.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}{}x{}",
        tag,
        std::process::id() % 100000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Extracts the busybox image's single layer into `dir` (a plain rootfs for
/// nsrun tests that do not go through layerfs).
pub fn unpack_busybox(dir: &Path) {
    let tmp = TempDir::new("bbx");
    let st = Command::new("tar")
        .arg("-xf")
        .arg(busybox_tar())
        .arg("-C")
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(st.success());
    let layer = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("layer.tar"))
        .find(|p| p.exists())
        .expect("layer.tar in the busybox image");
    std::fs::create_dir_all(dir).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&layer)
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Runs `cmd` with `stdin` fed in, returning its output.
pub fn pipe(cmd: &mut Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Asserts the exit code, printing stdout and stderr when it differs.
pub fn assert_exit_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
