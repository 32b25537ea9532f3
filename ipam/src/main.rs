use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cni_plugin::{one_line, print_json};
use ipam::allocation::{self, Request};
use ipam::bitmap::parse_subnet;

#[derive(Parser)]
#[command(
    name = "ipam",
    about = "bitmap IP allocation; a CNI IPAM plugin when CNI_COMMAND is set"
)]
struct Cli {
    /// State root; the data dir defaults to <root>/ipam.
    #[arg(
        long,
        global = true,
        env = "MYDOCKER_ROOT",
        default_value = "/var/lib/mydocker"
    )]
    root: PathBuf,
    /// Data dir holding one state file per network (overrides <root>/ipam).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Allocate an address for a container interface.
    Alloc {
        #[arg(long)]
        network: String,
        #[arg(long)]
        subnet: String,
        #[arg(long)]
        gateway: Option<Ipv4Addr>,
        #[arg(long)]
        range_start: Option<Ipv4Addr>,
        #[arg(long)]
        range_end: Option<Ipv4Addr>,
        /// A specific address (refused if taken).
        #[arg(long)]
        ip: Option<Ipv4Addr>,
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "eth0")]
        ifname: String,
    },
    /// Release what a container interface holds (nothing held is fine).
    Release {
        #[arg(long)]
        network: String,
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "eth0")]
        ifname: String,
    },
    /// List a network's allocations.
    Ls { network: String },
    /// Salvage the network's corrupt state files: keeps every owner that
    /// reads back and a copy of each corrupt file beside it.
    Repair {
        network: String,
        /// The network's subnet, needed only when its state file's header
        /// is unreadable.
        #[arg(long)]
        subnet: Option<String>,
    },
}

fn main() -> ExitCode {
    if cni_plugin::is_plugin_call() {
        return cni_plugin::run("ipam", &ipam::cni::Ipam);
    }
    let cli = Cli::parse();
    let data_dir = cli.data_dir.unwrap_or_else(|| cli.root.join("ipam"));
    let res = match cli.cmd {
        Cmd::Alloc {
            network,
            subnet,
            gateway,
            range_start,
            range_end,
            ip,
            id,
            ifname,
        } => {
            let Some(subnet) = parse_subnet(&subnet) else {
                eprintln!("ipam: --subnet {subnet:?} is not an IPv4 CIDR");
                return ExitCode::from(2);
            };
            let req = Request {
                data_dir,
                network,
                subnet,
                gateway,
                range_start,
                range_end,
                id,
                ifname,
                ip,
            };
            allocation::allocate(&req).map(|a| serde_json::to_value(a).expect("serializable"))
        }
        Cmd::Release {
            network,
            id,
            ifname,
        } => allocation::release(&data_dir, &network, &id, &ifname)
            .map(|ips| serde_json::json!({"network": network, "released": ips})),
        Cmd::Ls { network } => allocation::list(&data_dir, &network)
            .map(|l| serde_json::to_value(l).expect("serializable")),
        Cmd::Repair { network, subnet } => {
            let subnet = match subnet.as_deref().map(|s| (s, parse_subnet(s))) {
                None => None,
                Some((_, Some(s))) => Some(s),
                Some((s, None)) => {
                    eprintln!("ipam: --subnet {s:?} is not an IPv4 CIDR");
                    return ExitCode::from(2);
                }
            };
            match ipam::repair::repair(&data_dir, &network, subnet) {
                Ok(r) if r.is_empty() => Err(allocation::Error::NotFound {
                    network: network.clone(),
                    data_dir,
                }),
                Ok(r) => Ok(serde_json::json!({"network": network, "pools": r})),
                Err(e) => Err(e.into()),
            }
        }
    };
    match res {
        Ok(v) => print_json("ipam", &v),
        Err(e) => {
            eprintln!("ipam: {}", one_line(&e.to_string()));
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}
