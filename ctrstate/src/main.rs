//! ctrstate CLI: parse, call the library, print one JSON document. The
//! contract is documented in lib.rs.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ctrstate::{Store, StoreError};
use serde::Serialize;

const DEFAULT_ROOT: &str = "/var/lib/mydocker";

#[derive(Parser)]
#[command(
    name = "ctrstate",
    version,
    about = "Container records: ids, names, status, exit codes"
)]
struct Cli {
    /// State root [env: MYDOCKER_ROOT] [default: /var/lib/mydocker]
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a record from JSON on stdin; prints the full record
    Create,
    /// Print the record of a full id, name or unique id prefix
    Get { reference: String },
    /// Print all records, newest first
    Ls,
    /// Apply a JSON merge patch (RFC 7386) from stdin; prints the record
    Update { reference: String },
    /// Remove the container's directory (refused while anything is mounted in it)
    Rm {
        /// An unknown reference is not an error
        #[arg(short, long)]
        force: bool,
        reference: String,
    },
    /// Mark exited the records whose process is gone; prints those changed
    Reconcile,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli
        .root
        .or_else(|| {
            std::env::var_os("MYDOCKER_ROOT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    let store = Store::open(root);
    let res = match cli.cmd {
        Cmd::Create => stdin()
            .and_then(|t| ctrstate::record_from_json(&t))
            .and_then(|r| store.create(r))
            .and_then(print),
        Cmd::Get { reference } => store.get(&reference).and_then(print),
        Cmd::Ls => store.list().and_then(print),
        Cmd::Update { reference } => stdin()
            .and_then(|t| ctrstate::patch_from_json(&t))
            .and_then(|p| store.update(&reference, &p))
            .and_then(print),
        Cmd::Rm { force, reference } => store.remove(&reference, force).and_then(print),
        Cmd::Reconcile => store.reconcile().and_then(print),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctrstate: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The most bytes of a record or patch read from stdin (a record is
/// kilobytes; more is refused, exit 2, before anything is written).
const MAX_STDIN: u64 = 1 << 20;

fn stdin() -> Result<String, StoreError> {
    let mut s = String::new();
    io::stdin()
        .take(MAX_STDIN + 1)
        .read_to_string(&mut s)
        .map_err(|source| StoreError::Io {
            step: "read",
            path: PathBuf::from("stdin"),
            source,
        })?;
    if s.len() as u64 > MAX_STDIN {
        return Err(StoreError::BadInput {
            what: "stdin",
            source: serde_json::Error::io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {MAX_STDIN} bytes"),
            )),
        });
    }
    Ok(s)
}

fn print<T: Serialize>(v: T) -> Result<(), StoreError> {
    let mut out = io::stdout().lock();
    let res = serde_json::to_writer(&mut out, &v)
        .map_err(io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match res {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(StoreError::Io {
            step: "write",
            path: PathBuf::from("stdout"),
            source: e,
        }),
        _ => Ok(()),
    }
}
