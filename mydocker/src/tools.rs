//! Runs the other tools as processes, the way a person would at a shell, so
//! every step mydocker takes can be repeated by hand. `MYDOCKER_LOG=debug`
//! prints each call (command line and JSON in and out) on stderr.

use crate::error::{Error, Result};
use serde_json::Value;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the tools are: beside this executable first (a build dir or an
/// install dir), then $PATH.
pub fn tool_path(name: &str) -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join(name);
            if p.exists() {
                return p;
            }
        }
    }
    PathBuf::from(name)
}

pub fn debug_enabled() -> bool {
    matches!(
        std::env::var("MYDOCKER_LOG").as_deref(),
        Ok("debug") | Ok("trace")
    )
}

/// One call of a tool: `tool --root ROOT ARGS...`, optionally with JSON on stdin.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    tool: String,
    args: Vec<OsString>,
    stdin: Option<String>,
    /// Let the tool write to our stderr (a progress line on the terminal).
    stderr_through: bool,
}

impl Call {
    pub fn new(tool: &str, root: &Path) -> Call {
        Call {
            tool: tool.to_string(),
            args: vec!["--root".into(), root.into()],
            stdin: None,
            stderr_through: false,
        }
    }
    /// A call without the `--root` flag (CNI plugins take their config instead).
    pub fn bare(tool: &str) -> Call {
        Call {
            tool: tool.to_string(),
            args: vec![],
            stdin: None,
            stderr_through: false,
        }
    }
    pub fn arg(mut self, a: impl Into<OsString>) -> Call {
        self.args.push(a.into());
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, a: I) -> Call {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }
    /// The tool's stderr goes to ours (for progress on a terminal); its
    /// error line is then the user's to read, not part of our error.
    pub fn stderr_through(mut self) -> Call {
        self.stderr_through = true;
        self
    }
    pub fn stdin_json(mut self, v: &Value) -> Call {
        self.stdin = Some(v.to_string());
        self
    }

    pub fn tool(&self) -> &str {
        &self.tool
    }
    /// The JSON the call writes to the tool's stdin, if any.
    pub fn stdin(&self) -> Option<&str> {
        self.stdin.as_deref()
    }
    /// The same call with `f` applied to each argument and to its stdin
    /// (the plan fills its references in this way).
    pub fn map_words(&self, f: &mut dyn FnMut(&str, bool) -> Result<String>) -> Result<Call> {
        let mut args = Vec::with_capacity(self.args.len());
        for a in &self.args {
            args.push(match a.to_str() {
                Some(s) => f(s, false)?.into(),
                None => a.clone(),
            });
        }
        let stdin = match &self.stdin {
            Some(i) => Some(f(i, true)?),
            None => None,
        };
        Ok(Call {
            tool: self.tool.clone(),
            args,
            stdin,
            stderr_through: self.stderr_through,
        })
    }

    /// The call as a shell command line (for logs and --print-pipeline).
    pub fn shell(&self) -> String {
        let mut s = String::new();
        if let Some(i) = &self.stdin {
            s.push_str(&format!("echo {} | ", shell_quote(i)));
        }
        s.push_str(&self.tool);
        for a in &self.args {
            s.push(' ');
            s.push_str(&shell_quote(&a.to_string_lossy()));
        }
        s
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(tool_path(&self.tool));
        c.args(&self.args);
        c
    }

    /// Runs the call to completion; stdout parsed as the producer's type.
    pub fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T> {
        let out = self.output()?;
        serde_json::from_str(&out).map_err(|e| self.error(format!("bad output: {e}")))
    }

    /// Runs the call to completion; stdout parsed as JSON (null when empty).
    /// A failure becomes an error naming the tool, its step and its message.
    pub fn json(self) -> Result<Value> {
        let out = self.output()?;
        if out.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&out).map_err(|e| self.error(format!("bad JSON output: {e}")))
    }

    /// Runs the call to completion and returns its stdout.
    pub fn output(&self) -> Result<String> {
        self.spawn()?.finish()
    }

    /// `spawn` for a call the caller does not keep (the plan's runner
    /// holds the started processes, not the calls).
    pub fn spawn_owned(self) -> Result<Running<'static>> {
        let r = self.spawn()?;
        let (child, started) = (r.child, r.started);
        Ok(Running {
            call: std::borrow::Cow::Owned(self),
            child,
            started,
        })
    }

    /// Starts the call; `Running::finish` waits for it. Independent steps
    /// of the pipeline run side by side this way.
    pub fn spawn(&self) -> Result<Running<'_>> {
        if debug_enabled() {
            eprintln!("mydocker: + {}", self.shell());
        }
        let mut cmd = self.command();
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(if self.stderr_through {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
        let started = std::time::Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| self.error(format!("cannot run {}: {e}", self.tool)))?;
        if let Some(input) = &self.stdin {
            // A tool that fails early may not read its input: not our error.
            let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        }
        Ok(Running {
            call: std::borrow::Cow::Borrowed(self),
            child,
            started,
        })
    }

    fn error(&self, msg: String) -> Error {
        let step = self
            .args
            .iter()
            .skip(2)
            .find(|a| !a.to_string_lossy().starts_with('-'))
            .map(|a| a.to_string_lossy().to_string())
            .unwrap_or_default();
        Error::Tool {
            tool: self.tool.clone(),
            step,
            msg,
        }
    }
}

/// Quotes a word for sh when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A started tool call.
pub struct Running<'a> {
    call: std::borrow::Cow<'a, Call>,
    child: std::process::Child,
    started: std::time::Instant,
}

impl Running<'_> {
    /// Waits for the call; its stdout, or an error naming the tool, its step
    /// and the last line it printed on stderr.
    pub fn finish(self) -> Result<String> {
        let call = &self.call;
        let out = self
            .child
            .wait_with_output()
            .map_err(|e| call.error(e.to_string()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if debug_enabled() {
            let ms = self.started.elapsed().as_secs_f64() * 1000.0;
            eprintln!("mydocker:   -> ({ms:.1} ms) {} {stdout}", call.tool);
        }
        if !out.status.success() {
            return Err(call.error(tool_error(&call.tool, &out.stderr)));
        }
        Ok(stdout)
    }
}

/// A failed tool's message: its last non-empty stderr line without the
/// `tool: ` prefix every tool prints ("failed" when it printed nothing).
pub fn tool_error(tool: &str, stderr: &[u8]) -> String {
    let err = String::from_utf8_lossy(stderr);
    let line = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed");
    line.strip_prefix(&format!("{tool}: "))
        .unwrap_or(line)
        .to_string()
}
