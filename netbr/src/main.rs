use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cni_plugin::{one_line, print_json};
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
        /// One IPv4 and/or one IPv6 subnet (dual stack: both).
        #[arg(long, required = true)]
        subnet: Vec<String>,
        /// A gateway per family (default: the first host of its subnet).
        #[arg(long)]
        gateway: Vec<IpAddr>,
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
        /// An IPv6 address (dual-stack networks).
        #[arg(long)]
        ip6: Option<Ipv6Addr>,
        /// The container interface's MAC address.
        #[arg(long)]
        mac: Option<String>,
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

fn main() -> ExitCode {
    if cni_plugin::is_plugin_call() {
        return cni_plugin::run("netbr", &plugin::Netbr);
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
                Ok(p) => return print_json("netbr", &serde_json::json!({"path": p})),
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
        } => network::create(&root, &name, &subnet, &gateway, bridge),
        Cmd::Rm { name, force } => network::rm(&root, &name, force),
        Cmd::Ls => network::ls(&root),
        Cmd::Inspect { name } => network::inspect(&root, &name),
        Cmd::Connect {
            name,
            id,
            netns,
            ifname,
            ip,
            ip6,
            mac,
            publish,
        } => {
            let ips: Vec<IpAddr> = ip
                .map(IpAddr::V4)
                .into_iter()
                .chain(ip6.map(IpAddr::V6))
                .collect();
            network::connect(
                &root,
                &name,
                &id,
                &netns,
                &ifname,
                &ips,
                mac.as_deref(),
                publish.as_deref(),
            )
        }
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
        Ok(v) => print_json("netbr", &v),
        Err(e) => {
            eprintln!("netbr: {}", one_line(&e.to_string()));
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}
