//! OCI lifecycle hooks (runtime-spec config.md "POSIX-platform Hooks"): each
//! hook is run with the container's state JSON on its stdin, its own env
//! only, and an optional timeout (then killed and failed). Who runs which:
//! - `prestart`, `createRuntime`: `create` (the parent, runtime namespaces)
//!   once the init has made its mounts, before pivot_root; a failure fails
//!   `create`.
//! - `createContainer`: the init, in the container's namespaces, right after
//!   those, before pivot_root; a failure fails `create`.
//! - `startContainer`: the init after `start`, before exec (paths resolve in
//!   the container); a failure ends the init (exit 1) instead of the command.
//! - `poststart` (after `start`) and `poststop` (after `delete` removed the
//!   container): a failure is a warning (the `--log` file, else stderr).

use oci_spec::runtime::{Hook, Spec};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Prestart => "prestart",
            Stage::CreateRuntime => "createRuntime",
            Stage::CreateContainer => "createContainer",
            Stage::StartContainer => "startContainer",
            Stage::Poststart => "poststart",
            Stage::Poststop => "poststop",
        }
    }
}

/// The config's hooks of one stage (none: empty).
pub fn of(spec: &Spec, stage: Stage) -> Vec<Hook> {
    let Some(h) = spec.hooks() else {
        return Vec::new();
    };
    #[allow(deprecated)]
    let list = match stage {
        Stage::Prestart => h.prestart(),
        Stage::CreateRuntime => h.create_runtime(),
        Stage::CreateContainer => h.create_container(),
        Stage::StartContainer => h.start_container(),
        Stage::Poststart => h.poststart(),
        Stage::Poststop => h.poststop(),
    };
    list.clone().unwrap_or_default()
}

/// Checks every hook: an absolute path, a positive timeout.
pub fn validate(spec: &Spec) -> Result<(), (String, String)> {
    for stage in [
        Stage::Prestart,
        Stage::CreateRuntime,
        Stage::CreateContainer,
        Stage::StartContainer,
        Stage::Poststart,
        Stage::Poststop,
    ] {
        for (i, h) in of(spec, stage).iter().enumerate() {
            let field = format!("hooks.{}[{i}]", stage.name());
            if !h.path().is_absolute() {
                return Err((field, format!("path {:?} is not absolute", h.path())));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err((field, "timeout must be greater than zero".into()));
            }
        }
    }
    Ok(())
}

/// Runs the hooks of `stage` in order; the first failure stops them and is
/// returned as one line naming the stage, the hook and what it said.
pub fn run(spec: &Spec, stage: Stage, state: &serde_json::Value) -> Result<(), String> {
    for (i, h) in of(spec, stage).iter().enumerate() {
        run_one(h, state)
            .map_err(|e| format!("{} hook #{i} {}: {e}", stage.name(), h.path().display()))?;
    }
    Ok(())
}

/// Runs poststart/poststop hooks: a failure is a warning, the rest still run.
pub fn run_warn(spec: &Spec, stage: Stage, state: &serde_json::Value) {
    for (i, h) in of(spec, stage).iter().enumerate() {
        if let Err(e) = run_one(h, state) {
            crate::log::warn(&format!(
                "{} hook #{i} {}: {e}",
                stage.name(),
                h.path().display()
            ));
        }
    }
}

fn run_one(h: &Hook, state: &serde_json::Value) -> Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Output goes to a memfd (a pipe could fill up and stall the hook): kept
    // for the error message, never mixed into the container's stdio.
    let out = nix::sys::memfd::memfd_create(c"nsrun-hook", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("memfd_create: {e}"))?;
    let mut out = std::fs::File::from(out);
    let dup = |f: &std::fs::File| f.try_clone().map(Stdio::from).map_err(|e| e.to_string());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(dup(&out)?)
        .stderr(dup(&out)?)
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error (EPIPE).
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if status.success() {
        return Ok(());
    }
    let mut said = String::new();
    let _ = std::io::Seek::rewind(&mut out);
    let _ = out.read_to_string(&mut said);
    let said = said.trim().replace('\n', "; ");
    Err(if said.is_empty() {
        format!("{status}")
    } else {
        format!("{status}: {said}")
    })
}
