//! nsrun: the CLI. Parses arguments, calls the library, prints one JSON
//! document; the contract is in lib.rs.

use clap::{Args, Parser, Subcommand};
use nsrun::{container, create, exec};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nsrun",
    about = "OCI runtime: namespaces, pivot_root, mounts and the container process"
)]
struct Cli {
    /// State directory (one subdirectory per container).
    #[arg(
        long,
        global = true,
        env = "NSRUN_ROOT",
        default_value = "/run/mydocker/nsrun"
    )]
    root: PathBuf,
    /// Accepted for runc compatibility; ignored (diagnostics go to stderr).
    #[arg(long, global = true, hide = true)]
    log: Option<PathBuf>,
    #[arg(long = "log-format", global = true, hide = true)]
    log_format: Option<String>,
    #[arg(long, global = true, hide = true)]
    debug: bool,
    #[arg(long = "systemd-cgroup", global = true, hide = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct CreateArgs {
    /// The bundle directory (config.json and the rootfs).
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// The config file, `-` for stdin (default BUNDLE/config.json).
    #[arg(long)]
    config: Option<PathBuf>,
    /// File to write the init's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (process.terminal).
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Pass fds 3..3+N on to the container process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container whose init waits for `start`.
    Create(CreateArgs),
    /// Let a created container exec its process.
    Start { id: String },
    /// Print the OCI state of a container.
    State { id: String },
    /// Send a signal (name or number, default TERM) to the container's init.
    Kill {
        /// Signal every process of the container's pid namespace, not only the init.
        #[arg(long, short = 'a')]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Remove a container's state (`--force` kills a running one).
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// Create, start and wait for a container; exit with its status.
    Run(CreateArgs),
    /// Run a command in a running container.
    Exec {
        /// Allocate a pty.
        #[arg(long, short = 't')]
        tty: bool,
        /// Do not wait: print {"pid":N} and return.
        #[arg(long, short = 'd')]
        detach: bool,
        /// Extra environment K=V (repeatable; K alone takes nsrun's own K).
        #[arg(long = "env", short = 'e')]
        env: Vec<String>,
        /// A file of K=V lines (# comments), applied before -e.
        #[arg(long = "env-file")]
        env_file: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// uid[:gid] or name[:group] inside the container.
        #[arg(long, short = 'u')]
        user: Option<String>,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: u32,
        id: String,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// List containers as a JSON array of states.
    List,
}

fn opts(root: &std::path::Path, c: CreateArgs, run: bool) -> create::Opts {
    create::Opts {
        root: root.to_path_buf(),
        id: c.id,
        bundle: c.bundle,
        config: c.config,
        pid_file: c.pid_file,
        console_socket: c.console_socket,
        preserve_fds: c.preserve_fds,
        run,
    }
}

/// Prints one JSON document; a closed stdout (broken pipe) is not an error.
fn print(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn run(cli: Cli) -> nsrun::Result<u8> {
    let root = cli.root;
    match cli.cmd {
        Cmd::Create(c) => {
            let made = create::create(&opts(&root, c, false))?;
            print(serde_json::json!({ "pid": made.pid }));
        }
        Cmd::Start { id } => {
            container::start(&root, &id)?;
            print(serde_json::json!({ "id": id, "status": "running" }));
        }
        Cmd::State { id } => {
            print(serde_json::to_value(container::state(&root, &id)?).unwrap_or_default())
        }
        Cmd::Kill { all, id, signal } => {
            let sig = nsrun::signal::parse(signal.as_deref().unwrap_or("TERM"))?;
            container::kill(&root, &id, sig, all)?;
            print(serde_json::json!({ "id": id, "signal": sig.map_or(0, |s| s as i32) }));
        }
        Cmd::Delete { force, id } => {
            container::delete(&root, &id, force)?;
            print(serde_json::json!({ "id": id, "deleted": true }));
        }
        Cmd::Run(c) => {
            let made = create::create(&opts(&root, c, true))?;
            let status = container::start(&root, &made.dir.id)
                .and_then(|()| Ok(nsrun::tty::supervise(made.pid, made.master.as_ref())?));
            let status = match status {
                Ok(s) => s,
                Err(e) => {
                    unsafe {
                        libc::kill(made.pid, libc::SIGKILL);
                        libc::waitpid(made.pid, std::ptr::null_mut(), 0);
                    }
                    let _ = container::destroy(&made.dir);
                    return Err(e);
                }
            };
            container::destroy(&made.dir)?;
            return Ok(status.clamp(0, 255) as u8);
        }
        Cmd::Exec {
            tty,
            detach,
            mut env,
            env_file,
            cwd,
            user,
            console_socket,
            preserve_fds,
            id,
            cmd,
        } => {
            if let Some(f) = env_file {
                let mut all = nsrun::exec::read_env_file(&f)?;
                all.append(&mut env);
                env = all;
            }
            let o = exec::Opts {
                root,
                id,
                args: cmd,
                env,
                cwd,
                user,
                tty,
                detach,
                console_socket,
                preserve_fds,
            };
            match exec::exec(&o)? {
                exec::Outcome::Detached(pid) => print(serde_json::json!({ "pid": pid })),
                exec::Outcome::Exited(code) => return Ok(code.clamp(0, 255) as u8),
            }
        }
        Cmd::List => print(serde_json::to_value(container::list(&root)?).unwrap_or_default()),
    }
    Ok(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("nsrun: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
