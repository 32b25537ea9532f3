//! Freezing and thawing: v1 `freezer.state` (FROZEN/THAWED, waiting through
//! FREEZING), v2 `cgroup.freeze` confirmed by `frozen 1` in `cgroup.events`.

use crate::cgfile::{self, CgFileError};
use crate::cgroup::{dir_with, WAIT};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum FreezerError {
    #[error(transparent)]
    File(#[from] CgFileError),
    #[error("no freezer among {0:?} (neither freezer.state nor cgroup.freeze)")]
    NoFreezer(Vec<PathBuf>),
    #[error("{path} did not reach {want} within {secs}s (still {got:?})")]
    Timeout {
        path: PathBuf,
        want: &'static str,
        got: String,
        secs: u64,
    },
}

type Result<T> = std::result::Result<T, FreezerError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Frozen,
    Thawed,
}

/// Freezes (`frozen = true`) or thaws the cgroup and waits until the kernel
/// says it is done.
pub fn set(paths: &[PathBuf], frozen: bool) -> Result<State> {
    let want = if frozen { State::Frozen } else { State::Thawed };
    if let Some(d) = dir_with(paths, "freezer.state") {
        let v = if frozen { "FROZEN" } else { "THAWED" };
        cgfile::write(d, "freezer.state", v)?;
        wait(d, "freezer.state", v, || {
            // a task in an uninterruptible sleep can stall FREEZING: ask again
            cgfile::write(d, "freezer.state", v)
        })?;
        return Ok(want);
    }
    if let Some(d) = dir_with(paths, "cgroup.freeze") {
        cgfile::write(d, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        let line = if frozen { "frozen 1" } else { "frozen 0" };
        wait(d, "cgroup.events", line, || Ok(()))?;
        return Ok(want);
    }
    Err(FreezerError::NoFreezer(paths.to_vec()))
}

/// The current state (v1 FREEZING counts as thawed: not yet frozen).
pub fn state(paths: &[PathBuf]) -> Result<State> {
    if let Some(d) = dir_with(paths, "freezer.state") {
        let s = cgfile::read(d, "freezer.state")?;
        return Ok(if s.trim() == "FROZEN" {
            State::Frozen
        } else {
            State::Thawed
        });
    }
    if let Some(d) = dir_with(paths, "cgroup.events") {
        let s = cgfile::read(d, "cgroup.events")?;
        return Ok(if s.lines().any(|l| l == "frozen 1") {
            State::Frozen
        } else {
            State::Thawed
        });
    }
    Err(FreezerError::NoFreezer(paths.to_vec()))
}

/// Polls `file` until it is `want` (v1) or has a line `want` (v2).
fn wait(
    d: &Path,
    file: &str,
    want: &'static str,
    mut retry: impl FnMut() -> std::result::Result<(), CgFileError>,
) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    let mut n = 0u32;
    loop {
        let got = cgfile::read(d, file)?;
        if got.trim() == want || got.lines().any(|l| l == want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(FreezerError::Timeout {
                path: d.join(file),
                want,
                got: got.trim().to_string(),
                secs: WAIT.as_secs(),
            });
        }
        n += 1;
        if n.is_multiple_of(50) {
            retry()?;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
