//! cgctl CLI: parse, call the library, print one JSON document. The contract
//! is in lib.rs.
use cgctl::{Cgctl, Host};
use clap::{Parser, Subcommand};
use serde_json::json;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cgctl",
    about = "cgroups (v1, v2, hybrid): limits, attach, stats, freeze, delete"
)]
struct Cli {
    /// State directory (records under DIR/cgroups)
    #[arg(
        long,
        global = true,
        env = "MYDOCKER_ROOT",
        default_value = "/var/lib/mydocker"
    )]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create (or ensure) NAME with resources JSON from stdin
    Create { name: String },
    /// Update the limits of NAME from resources JSON on stdin
    Set { name: String },
    /// Move PID into NAME
    Attach { name: String, pid: String },
    /// List the pids in NAME
    Procs { name: String },
    /// Freeze every process in NAME
    Freeze { name: String },
    /// Thaw NAME
    Thaw { name: String },
    /// Memory, cpu and pids usage of NAME
    Stats { name: String },
    /// Remove NAME (idempotent)
    Delete {
        /// Kill what is left and wait until it is gone
        #[arg(long, short)]
        force: bool,
        name: String,
    },
    /// The host's cgroup mode and hierarchies
    Mode,
}

/// The most bytes of resources JSON read from stdin (a config is
/// kilobytes; more is refused, exit 2, before anything is done).
const MAX_STDIN: u64 = 1 << 20;

fn stdin() -> Result<String, cgctl::Error> {
    let bad = |e: std::io::Error| {
        cgctl::Error::Resources(cgctl::resources::ResourcesError::Json(
            serde_json::Error::io(e),
        ))
    };
    let mut s = String::new();
    std::io::stdin()
        .take(MAX_STDIN + 1)
        .read_to_string(&mut s)
        .map_err(bad)?;
    if s.len() as u64 > MAX_STDIN {
        return Err(bad(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_STDIN} bytes"),
        )));
    }
    Ok(s)
}

fn run(cli: Cli) -> Result<serde_json::Value, cgctl::Error> {
    let c = Cgctl::new(&cli.root);
    Ok(match cli.cmd {
        Cmd::Create { name } => json!(c.create(&name, &stdin()?)?),
        Cmd::Set { name } => json!(c.set(&name, &stdin()?)?),
        Cmd::Attach { name, pid } => {
            let paths = c.attach(&name, &pid)?;
            json!({"name": name, "pid": pid.trim().parse::<i32>().unwrap_or(0), "paths": paths})
        }
        Cmd::Procs { name } => json!(c.procs(&name)?),
        Cmd::Freeze { name } => json!({"name": name, "state": c.freeze(&name)?}),
        Cmd::Thaw { name } => json!({"name": name, "state": c.thaw(&name)?}),
        Cmd::Stats { name } => json!(c.stats(&name)?),
        Cmd::Delete { force, name } => json!(c.delete(&name, force)?),
        Cmd::Mode => json!(Host::detect().map_err(cgctl::Error::from)?),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(v) => {
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{v}").and_then(|_| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("cgctl: write stdout: {e}");
                    ExitCode::from(1)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("cgctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
