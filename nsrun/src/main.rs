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
    version,
    long_version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.0.2"),
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
    /// Also write errors to this file (engines read it), one entry a line.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of the --log entries: text or json.
    #[arg(long = "log-format", global = true)]
    log_format: Option<String>,
    /// Accepted for runc compatibility.
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
    /// Accepted for runc compatibility (no session keyring is made).
    #[arg(long = "no-new-keyring", hide = true)]
    no_new_keyring: bool,
    /// MS_MOVE the rootfs onto / and chroot instead of pivot_root (ramfs roots).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    id: String,
}

#[derive(Args)]
struct ExecArgs {
    /// Allocate a pty.
    #[arg(long, short = 't')]
    tty: bool,
    /// Return once the process runs (its pid to --pid-file); the caller's
    /// subreaper reaps it.
    #[arg(long, short = 'd')]
    detach: bool,
    /// The process as an OCI `process` JSON object (runc's; engines use it).
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    /// File to write the process's host pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
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
    /// A capability to add (repeatable).
    #[arg(long = "cap", short = 'c')]
    cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Exec into a paused container.
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for runc compatibility (no AppArmor, no SELinux here).
    #[arg(long = "apparmor", hide = true)]
    apparmor: Option<String>,
    #[arg(long = "process-label", hide = true)]
    process_label: Option<String>,
    id: String,
    /// The command (after the id, or after `--`); not with --process.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

#[derive(Args)]
struct UpdateArgs {
    /// linux.resources JSON from a file, `-` for stdin.
    #[arg(long, short = 'r')]
    resources: Option<PathBuf>,
    /// Memory limit (bytes or 64m).
    #[arg(long, short = 'm')]
    memory: Option<String>,
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    /// Memory plus swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    #[arg(long = "cpu-shares")]
    cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u64>,
    id: String,
}

impl UpdateArgs {
    /// The resources to apply: the file's JSON with the flags over it.
    fn resources(&self) -> nsrun::Result<serde_json::Value> {
        use serde_json::json;
        let bad = |why: String| nsrun::config::ConfigError::Invalid {
            field: "--resources".into(),
            why,
        };
        let mut v = match &self.resources {
            None => json!({}),
            Some(p) => {
                let text = if p.as_os_str() == "-" {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                        .map_err(|e| bad(e.to_string()))?;
                    s
                } else {
                    std::fs::read_to_string(p).map_err(|e| bad(format!("{}: {e}", p.display())))?
                };
                serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
            }
        };
        let mut set = |path: [&str; 2], val: serde_json::Value| {
            v[path[0]][path[1]] = val;
        };
        if let Some(m) = &self.memory {
            set(["memory", "limit"], json!(m));
        }
        if let Some(m) = &self.memory_reservation {
            set(["memory", "reservation"], json!(m));
        }
        if let Some(m) = &self.memory_swap {
            set(["memory", "swap"], json!(m));
        }
        if let Some(n) = self.cpu_shares {
            set(["cpu", "shares"], json!(n));
        }
        if let Some(n) = self.cpu_quota {
            set(["cpu", "quota"], json!(n));
        }
        if let Some(n) = self.cpu_period {
            set(["cpu", "period"], json!(n));
        }
        if let Some(c) = &self.cpuset_cpus {
            set(["cpu", "cpus"], json!(c));
        }
        if let Some(c) = &self.cpuset_mems {
            set(["cpu", "mems"], json!(c));
        }
        if let Some(n) = self.pids_limit {
            set(["pids", "limit"], json!(n));
        }
        if let Some(n) = self.blkio_weight {
            set(["blockIO", "weight"], json!(n));
        }
        Ok(v)
    }
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
    Exec(ExecArgs),
    /// List containers as a JSON array of states.
    List,
    /// The processes of a container's cgroup.
    Ps {
        /// table (ps -ef lines of the container's processes) or json (pids).
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        id: String,
        /// Options for ps(1) in table format (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change a container's cgroup limits.
    Update(UpdateArgs),
    /// What this runtime supports (OCI features JSON).
    Features,
}

fn opts(root: &std::path::Path, c: CreateArgs, run: bool, systemd: bool) -> create::Opts {
    let _ = c.no_new_keyring; // containers share the session keyring (seccomp blocks keyctl)
    create::Opts {
        root: root.to_path_buf(),
        id: c.id,
        bundle: c.bundle,
        config: c.config,
        pid_file: c.pid_file,
        console_socket: c.console_socket,
        preserve_fds: c.preserve_fds,
        systemd_cgroup: systemd,
        run,
        no_pivot: c.no_pivot,
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
    let systemd = cli.systemd_cgroup;
    match cli.cmd {
        // As runc: create, start, kill and delete print nothing on success
        // (create's stdout is the container's; the pid goes to --pid-file).
        Cmd::Create(c) => {
            create::create(&opts(&root, c, false, systemd))?;
        }
        Cmd::Start { id } => container::start(&root, &id)?,
        Cmd::State { id } => {
            print(serde_json::to_value(container::state(&root, &id)?).unwrap_or_default())
        }
        Cmd::Kill { all, id, signal } => {
            let sig = nsrun::signal::parse(signal.as_deref().unwrap_or("TERM"))?;
            container::kill(&root, &id, sig, all)?;
        }
        Cmd::Delete { force, id } => container::delete(&root, &id, force)?,
        Cmd::Run(c) => {
            let made = create::create(&opts(&root, c, true, systemd))?;
            let status = container::start(&root, &made.dir.id)
                .and_then(|()| Ok(nsrun::tty::supervise(made.pid, made.master.as_ref())?));
            let status = match status {
                Ok(s) => s,
                Err(e) => {
                    nsrun::tty::kill_and_reap(made.pid);
                    let _ = container::destroy(&made.dir);
                    return Err(e);
                }
            };
            container::destroy(&made.dir)?;
            return Ok(status.clamp(0, 255) as u8);
        }
        Cmd::Exec(x) => {
            let mut env = x.env;
            if let Some(f) = x.env_file {
                let mut all = nsrun::exec::read_env_file(&f)?;
                all.append(&mut env);
                env = all;
            }
            let _ = (x.apparmor, x.process_label);
            let o = exec::Opts {
                root,
                id: x.id,
                args: x.cmd,
                env,
                cwd: x.cwd,
                user: x.user,
                tty: x.tty,
                detach: x.detach,
                console_socket: x.console_socket,
                preserve_fds: x.preserve_fds,
                process: x.process,
                pid_file: x.pid_file,
                caps: x.cap,
                no_new_privs: x.no_new_privs,
                ignore_paused: x.ignore_paused,
            };
            // As runc, -d prints nothing: the pid goes to --pid-file.
            if let exec::Outcome::Exited(code) = exec::exec(&o)? {
                return Ok(code.clamp(0, 255) as u8);
            }
        }
        Cmd::List => print(serde_json::to_value(container::list(&root)?).unwrap_or_default()),
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => {
            let pids = nsrun::manage::pids(&root, &id)?;
            match format.as_str() {
                "json" => print(serde_json::json!(pids)),
                "table" => ps_table(&pids, &ps_args)?,
                f => {
                    return Err(nsrun::config::ConfigError::Invalid {
                        field: "--format".into(),
                        why: format!("{f:?}: expected table or json"),
                    }
                    .into())
                }
            }
        }
        Cmd::Pause { id } => nsrun::manage::freeze(&root, &id, true)?,
        Cmd::Resume { id } => nsrun::manage::freeze(&root, &id, false)?,
        Cmd::Update(u) => {
            let res = u.resources()?;
            nsrun::manage::update(&root, &u.id, &res.to_string())?;
        }
        Cmd::Features => print(nsrun::features::features()),
    }
    Ok(0)
}

/// runc's `ps` table: ps(1)'s header and the lines of the container's pids.
fn ps_table(pids: &[i32], args: &[String]) -> nsrun::Result<()> {
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| nsrun::container::ContainerError::Step {
            step: "run ps",
            id: String::new(),
            err: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .unwrap_or(1);
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{header}");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            let _ = writeln!(o, "{l}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = match nsrun::log::Log::new(cli.log.clone(), cli.log_format.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nsrun: {e}");
            return ExitCode::from(2);
        }
    };
    let (file, format) = (cli.log.clone(), cli.log_format.clone());
    if let Ok(l) = nsrun::log::Log::new(file, format.as_deref()) {
        nsrun::log::install(l);
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            log.write("error", &e.to_string());
            eprintln!("nsrun: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
