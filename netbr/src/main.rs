use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ipam::cni::CniError;
use netbr::{netns, network, plugin};

#[derive(Parser)]
#[command(
    name = "netbr",
    about = "bridge networks for containers; a CNI plugin when CNI_COMMAND is set"
)]
struct Cli {
    /// State root: networks in <root>/networks, addresses in <root>/ipam.
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
    /// Persistent network namespace files.
    Netns {
        #[command(subcommand)]
        cmd: NetnsCmd,
    },
    /// Define a network (a CNI conflist under <root>/networks).
    Create {
        name: String,
        #[arg(long)]
        subnet: String,
        #[arg(long)]
        gateway: Option<Ipv4Addr>,
        /// Bridge name (default br-<12 hex of sha256(name)>).
        #[arg(long)]
        bridge: Option<String>,
    },
    /// Delete a network: its rules, bridge, address state and conflist.
    Rm {
        name: String,
        /// Even while addresses are still allocated.
        #[arg(long)]
        force: bool,
    },
    /// List networks.
    Ls,
    /// Show a network, its config and its allocations.
    Inspect { name: String },
    /// Attach a container's netns to a network (CNI ADD).
    Connect {
        name: String,
        id: String,
        #[arg(long)]
        netns: PathBuf,
        #[arg(long, default_value = "eth0")]
        ifname: String,
        #[arg(long)]
        ip: Option<Ipv4Addr>,
        /// Port mappings: '[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":""}]'.
        #[arg(long)]
        publish: Option<String>,
    },
    /// Detach a container from a network (CNI DEL).
    Disconnect {
        name: String,
        id: String,
        #[arg(long)]
        netns: PathBuf,
        #[arg(long, default_value = "eth0")]
        ifname: String,
    },
    /// Internal (DEL's helper): delete link INDEX of this namespace.
    #[command(hide = true)]
    LinkDel { index: u32 },
}

#[derive(Subcommand)]
enum NetnsCmd {
    /// Create <dir>/<id> holding a new network namespace.
    Add {
        id: String,
        /// Default $MYDOCKER_RUN/netns (/run/mydocker/netns).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Unmount and remove <dir>/<id> (gone already is fine).
    Del {
        id: String,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Errors are one line on stderr, whatever a tool we ran printed.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn print(v: &serde_json::Value) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{v}").and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe downstream is the reader's choice, not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netbr: write stdout: {e}");
            ExitCode::from(1)
        }
    }
}

fn cni_main() -> ExitCode {
    let env = plugin::Env::from_process();
    let mut stdin = Vec::new();
    let res = if env.command == "VERSION" {
        plugin::run(&env, b"").map_err(|e| e.to_cni())
    } else {
        match std::io::stdin().read_to_end(&mut stdin) {
            Ok(_) => plugin::run(&env, &stdin).map_err(|e| e.to_cni()),
            Err(e) => Err(CniError::new(5, "read stdin", e.to_string())),
        }
    };
    match res {
        Ok(Some(v)) => print(&v),
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netbr: {}", one_line(&e.to_string()));
            let code = e.exit_code();
            print(&serde_json::to_value(&e).expect("serializable"));
            ExitCode::from(code)
        }
    }
}

fn main() -> ExitCode {
    if std::env::var_os("CNI_COMMAND").is_some() && std::env::args_os().len() == 1 {
        return cni_main();
    }
    let cli = Cli::parse();
    let root = cli.root;
    let res = match cli.cmd {
        Cmd::Netns { cmd } => {
            let r = match cmd {
                NetnsCmd::Add { id, dir } => {
                    netns::add(&dir.unwrap_or_else(netns::default_dir), &id)
                }
                NetnsCmd::Del { id, dir } => {
                    netns::del(&dir.unwrap_or_else(netns::default_dir), &id)
                }
            };
            match r {
                Ok(p) => return print(&serde_json::json!({"path": p})),
                Err(e) => {
                    eprintln!("netbr: {}", one_line(&e.to_string()));
                    return ExitCode::from(if matches!(e, netns::Error::Id { .. }) {
                        2
                    } else {
                        1
                    });
                }
            }
        }
        Cmd::Create {
            name,
            subnet,
            gateway,
            bridge,
        } => network::create(&root, &name, &subnet, gateway, bridge),
        Cmd::Rm { name, force } => network::rm(&root, &name, force),
        Cmd::Ls => network::ls(&root),
        Cmd::Inspect { name } => network::inspect(&root, &name),
        Cmd::Connect {
            name,
            id,
            netns,
            ifname,
            ip,
            publish,
        } => network::connect(&root, &name, &id, &netns, &ifname, ip, publish.as_deref()),
        Cmd::Disconnect {
            name,
            id,
            netns,
            ifname,
        } => network::disconnect(&root, &name, &id, &netns, &ifname),
        Cmd::LinkDel { index } => netbr::netlink::Netlink::open()
            .and_then(|mut nl| nl.del_link_index(index))
            .map(|deleted| serde_json::json!({"index": index, "deleted": deleted}))
            .map_err(network::Error::Netlink),
    };
    match res {
        Ok(v) => print(&v),
        Err(e) => {
            eprintln!("netbr: {}", one_line(&e.to_string()));
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}
