//! The docker-style command line: argument structs only, no logic.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "mydocker",
    version,
    about = "A docker-compatible container CLI over nsrun, cgctl, layerfs, netbr, ipam and ctrstate"
)]
pub struct Cli {
    /// Store root (images, containers, volumes, networks).
    #[arg(
        long,
        global = true,
        env = "MYDOCKER_ROOT",
        default_value = "/var/lib/mydocker"
    )]
    pub root: PathBuf,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create and run a container from an image.
    Run(Box<RunArgs>),
    /// List containers.
    Ps(PsArgs),
    /// Print a container's logs.
    Logs(LogsArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Stop running containers (SIGTERM, then SIGKILL after a grace period).
    Stop(StopArgs),
    /// Send a signal to running containers.
    Kill(KillArgs),
    /// Start stopped containers.
    Start(StartArgs),
    /// Restart containers.
    Restart(StopArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Show low-level information on containers.
    Inspect(InspectArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(RefsArgs),
    /// List images.
    Images(ImagesArgs),
    /// Load an image from a tar archive (docker save format).
    Load(LoadArgs),
    /// Remove images.
    Rmi(RmiArgs),
    /// Live resource usage of containers.
    Stats(StatsArgs),
    /// Pause all processes within containers.
    Pause(RefsArgs),
    /// Unpause all processes within containers.
    Unpause(RefsArgs),
    /// Display the running processes of a container.
    Top(TopArgs),
    /// Update the resource limits of containers.
    Update(UpdateArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Create a new image from a container's changes.
    Commit(CommitArgs),
    /// Export a container's filesystem as a tar archive.
    Export(ExportArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Save one or more images to a tar archive.
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag { source: String, target: String },
    /// Show the history of an image.
    History(HistoryArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(CpArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff { container: String },
    /// Manage images (`image prune`, `image ls`).
    #[command(subcommand)]
    Image(ImageCmd),
    /// Docker-style system information (`system df`).
    #[command(subcommand)]
    System(SystemCmd),
    /// Create a new container (not started: `start` runs it).
    Create(Box<RunArgs>),
    /// Rename a container.
    Rename { container: String, new_name: String },
    /// List port mappings or a specific mapping for the container.
    Port {
        container: String,
        /// PRIVATE_PORT[/PROTO]
        port: Option<String>,
    },
    /// Show the version information.
    Version {
        /// Format output using a Go template.
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Display system-wide information.
    Info {
        /// Format output using a Go template.
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Attach local standard input, output, and error streams to a running container.
    Attach(crate::attach::AttachArgs),
    /// Get real time events from the journal the tools write.
    Events(crate::events::EventsArgs),
    /// Manage containers (`container ls`, `container prune`, `container inspect`).
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Generate the autocompletion script for the specified shell.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Internal: write the man pages (mydocker.1, mydocker-SUB.1, ...) into DIR.
    #[command(name = "_man", hide = true)]
    Man { dir: PathBuf },
    /// Internal (the supervisor's): record the exit of container ID, then
    /// tear down, or restart per its policy after DELAY_MS of backoff.
    #[command(name = "_exited", hide = true)]
    Exited {
        #[arg(long = "delay-ms", default_value_t = 100)]
        delay_ms: u64,
        id: String,
        code: i32,
    },
    /// Internal: launch container ID again once its restart backoff ended.
    #[command(name = "_restart", hide = true)]
    RestartAfterBackoff {
        #[arg(long = "delay-ms", default_value_t = 100)]
        delay_ms: u64,
        id: String,
    },
    /// Internal: run one health check of container ID and record it.
    #[command(name = "_health", hide = true)]
    Health { id: String },
}

#[derive(Subcommand, Debug)]
pub enum ContainerCmd {
    /// List containers.
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Display detailed information on containers.
    Inspect(InspectArgs),
    /// Remove all stopped containers.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short = 'f', long)]
        force: bool,
        /// Provide filter values (until=<timestamp>, label=<key>[=<value>], label!=...).
        #[arg(long)]
        filter: Vec<String>,
    },
}

#[derive(Args, Debug, Clone, Default)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (docker's -h is --hostname here).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Keep STDIN open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run in the background and print the container ID.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Container name.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from this environment).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container hostname.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Overwrite the image's entrypoint.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Print the run as a shell script of tool calls instead of running it.
    #[arg(long = "print-pipeline")]
    pub print_pipeline: bool,
    /// Connect the container to a network: a name, `bridge` (default), `none` or `host`.
    #[arg(long = "network", alias = "net", default_value = "bridge")]
    pub network: String,
    /// Publish a container's port to the host: [IP:][HOST:]CONTAINER[/PROTO].
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Bind mount a volume: NAME:/path[:ro], /host/path:/path[:ro], or /path.
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount: type=bind|volume|tmpfs,source=..,target=..[,readonly].
    #[arg(long = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory: /path[:options].
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    #[command(flatten)]
    pub extra: crate::runflags::RunFlags,
    #[command(flatten)]
    pub log: crate::logfile::LogArgs,
    #[command(flatten)]
    pub health: crate::health::HealthArgs,
    #[command(flatten)]
    pub resources: crate::resources::ResourceArgs,
    #[command(flatten)]
    pub security: crate::security::SecurityArgs,
    #[command(flatten)]
    pub net: crate::netargs::NetArgs,
    /// Image to run.
    pub image: String,
    /// Command and arguments (default: the image's Cmd).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output using a Go template (`table ...`, `json`, `{{.ID}}`).
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output (id, name, label, status, exited, ancestor, before, since, network, volume).
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long, default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states).
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes.
    #[arg(short = 's', long)]
    pub size: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs (or "all").
    #[arg(long, short = 'n')]
    pub tail: Option<String>,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m).
    #[arg(long)]
    pub until: Option<String>,
    /// Show extra details provided to logs (the attributes of --log-opt labels/env).
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Keep STDIN open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Detached mode: run the command in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container (default: its --stop-timeout, else 10).
    #[arg(short = 't', long = "time", allow_negative_numbers = true)]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it.
    #[arg(short = 'a', long)]
    pub attach: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Kill and remove a running container.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the anonymous volumes of the container.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template (`{{.State.Status}}`, `{{json .Config}}`).
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Return JSON for the specified type (container or image).
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container (SizeRw, SizeRootFs).
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RefsArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `top CONTAINER [ps OPTIONS]`.
#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// Options for ps (default -ef), as docker takes them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_options: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Only show image IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a Go template (`table ...`, `json`, `{{.Repository}}`).
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output (dangling=true|false, reference=PATTERN, before, since).
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Show all images (there are no intermediate images here).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only images of this REPOSITORY[:TAG].
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from a tar archive file (plain or compressed), instead of STDIN.
    #[arg(short = 'i', long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image.
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Print one sample and exit.
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Format output: `table`, `table TEMPLATE`, `json` or a Go template ({{.Name}} {{.CPUPerc}} ...).
    #[arg(long)]
    pub format: Option<String>,
    /// Containers (default: all running).
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub resources: crate::resources::ResourceArgs,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a bridge network.
    Create {
        /// Driver (only `bridge`).
        #[arg(short = 'd', long, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR form, IPv4 and/or IPv6 (picked when absent).
        #[arg(long)]
        subnet: Vec<String>,
        /// Gateway address per subnet (default: the subnet's first).
        #[arg(long)]
        gateway: Vec<String>,
        /// Enable IPv6 (dual stack; a ULA /64 unless an IPv6 --subnet is given).
        #[arg(long)]
        ipv6: bool,
        /// Set metadata on a network (KEY=VALUE).
        #[arg(long)]
        label: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only display network names.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Format output using a Go template.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show networks in detail.
    Inspect {
        /// Format output using a Go template.
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (refused while containers use them).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Connect a running container to a network.
    Connect {
        network: String,
        container: String,
        /// Add network-scoped alias for the container.
        #[arg(long)]
        alias: Vec<String>,
    },
    /// Disconnect a container from a network.
    Disconnect { network: String, container: String },
    /// Remove all custom networks not used by at least one container.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short = 'f', long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume (a random name when none is given).
    Create {
        name: Option<String>,
        /// Set metadata for a volume (KEY=VALUE).
        #[arg(long)]
        label: Vec<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Format output using a Go template.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show volumes in detail.
    Inspect {
        /// Format output using a Go template.
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (refused while a container uses them).
    #[command(alias = "remove")]
    Rm {
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused local volumes (anonymous ones unless -a).
    Prune {
        /// Remove all unused volumes, not just anonymous ones.
        #[arg(short = 'a', long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short = 'f', long)]
        force: bool,
        /// Provide filter values (label=<key>[=<value>], label!=..., all=true).
        #[arg(long)]
        filter: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on images.
    Inspect {
        /// Format output using a Go template.
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove untagged images that no container uses.
    Prune {
        #[arg(short = 'f', long)]
        force: bool,
        /// Remove every image no container uses, not just untagged ones.
        #[arg(short = 'a', long)]
        all: bool,
        /// Provide filter values (until=<timestamp>, label=<key>[=<value>], label!=..., dangling=).
        #[arg(long)]
        filter: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (ownership kept; what layerfs does anyway).
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow a symbolic link in SRC_PATH.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH, a local path, or `-` (a tar on stdin).
    pub src: String,
    /// CONTAINER:DEST_PATH, a local path, or `-` (a tar on stdout).
    pub dest: String,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

#[derive(Subcommand, Debug)]
pub enum SystemCmd {
    /// Show disk usage.
    Df,
    /// Serve the Docker Engine API on a unix socket.
    Service(crate::api::ServiceArgs),
    /// Remove unused data: stopped containers, unused networks, dangling images.
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short = 'a', long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short = 'f', long)]
        force: bool,
        /// Prune anonymous volumes too.
        #[arg(long)]
        volumes: bool,
        /// Provide filter values (until=<timestamp>, label=<key>[=<value>], label!=...).
        #[arg(long)]
        filter: Vec<String>,
    },
    /// Start the containers whose restart policy brings them back after a
    /// host reboot (always; unless-stopped unless stopped by the user).
    Boot,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Commit message.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Dockerfile instructions to apply (CMD, ENTRYPOINT, ENV, WORKDIR, USER).
    #[arg(short = 'c', long)]
    pub change: Vec<String>,
    pub container: String,
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short = 'o', long)]
    pub output: Option<std::path::PathBuf>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Dockerfile instructions to apply to the image.
    #[arg(short = 'c', long)]
    pub change: Vec<String>,
    /// A tarball (plain or compressed), or `-` for STDIN.
    pub file: std::path::PathBuf,
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short = 'o', long)]
    pub output: Option<std::path::PathBuf>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
