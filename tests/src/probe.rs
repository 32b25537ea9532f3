//! The probe (tests/probe/probe.c): a static C program the tests copy into a
//! container rootfs to ask the kernel what the container may do. Built once
//! with `gcc -static`, cached under target/ by the hash of its source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The built probe binary (built on first use; later calls are free).
pub fn build() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = crate::workspace().join("tests/probe/probe.c");
        let text = std::fs::read(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
        // target/<profile>/deps/e2e-xxxx -> target/<profile>/
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap().parent().unwrap().join("probe");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join(format!("probe-{:016x}", fnv1a(&text)));
        if !out.exists() {
            compile(&src, &out);
        }
        out
    })
    .clone()
}

/// Copies the probe into `rootfs` as `/probe`; returns its path inside.
pub fn install(rootfs: &Path) -> &'static str {
    std::fs::copy(build(), rootfs.join("probe")).unwrap();
    "/probe"
}

fn compile(src: &Path, out: &Path) {
    // A temp name then rename: test binaries running side by side may both build.
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let res = Command::new("gcc")
        .args(["-static", "-O1", "-Wall", "-o"])
        .arg(&tmp)
        .arg(src)
        .output();
    let res = match res {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "gcc not found: the probe needs gcc and libc6-dev (scripts/deps.sh installs them)"
            )
        }
        Err(e) => panic!("run gcc: {e}"),
    };
    assert!(
        res.status.success(),
        "gcc -static {} failed (is libc6-dev installed?):\n{}",
        src.display(),
        String::from_utf8_lossy(&res.stderr)
    );
    std::fs::rename(&tmp, out).unwrap();
}

/// FNV-1a, 64 bits: a stable hash of the source (std's hasher is not stable).
fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325, |h, x| {
        (h ^ *x as u64).wrapping_mul(0x100000001b3)
    })
}
