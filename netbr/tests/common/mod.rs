//! What netbr's integration tests share: the binaries and JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_netbr");

/// The directory holding netbr and ipam (the CNI_PATH of these tests).
/// `cargo test -p netbr` does not build ipam's binary: build it once.
pub fn cni_path() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(BIN).parent().unwrap().to_path_buf();
        if !dir.join("ipam").exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = Command::new(cargo)
                .args(["build", "-p", "ipam", "--bin", "ipam"])
                .current_dir(e2e::workspace())
                .status()
                .unwrap();
            assert!(st.success(), "cargo build -p ipam failed");
        }
        assert!(dir.join("ipam").exists(), "ipam binary not next to netbr");
        dir
    })
    .clone()
}

/// A tool's stdout as JSON; the panic shows both streams.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
