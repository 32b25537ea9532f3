use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ipam::allocation::{self, Request};
use ipam::bitmap::Subnet;
use ipam::cni::{self, CniError, Env};

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
            eprintln!("ipam: write stdout: {e}");
            ExitCode::from(1)
        }
    }
}

fn cni_main() -> ExitCode {
    let env = Env::from_process();
    let mut stdin = Vec::new();
    let res = if env.command == "VERSION" {
        cni::run(&env, b"")
    } else {
        match std::io::stdin().read_to_end(&mut stdin) {
            Ok(_) => cni::run(&env, &stdin),
            Err(e) => Err(CniError::new(5, "read stdin", e.to_string())),
        }
    };
    match res {
        Ok(Some(v)) => print(&v),
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipam: {}", one_line(&e.to_string()));
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
            let Some(subnet) = Subnet::parse(&subnet) else {
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
    };
    match res {
        Ok(v) => print(&v),
        Err(e) => {
            eprintln!("ipam: {}", one_line(&e.to_string()));
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}
