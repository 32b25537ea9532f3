//! netbr: bridge networking for containers, as a CNI main plugin and as a
//! small CLI.
//!
//! # CNI plugin
//!
//! Run with no arguments and `CNI_COMMAND` set, it is a CNI 1.0/1.1 main
//! plugin (`CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`,
//! `CNI_PATH`; the config on stdin):
//!
//! ```json
//! {"cniVersion":"1.0.0","name":"net1","type":"netbr","bridge":"mydocker0",
//!  "isGateway":true,"ipMasq":true,"mtu":1500,"hairpinMode":true,
//!  "ipam":{"type":"ipam","subnet":"10.22.0.0/16","dataDir":"/var/lib/mydocker/ipam"},
//!  "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":""}]}}
//! ```
//!
//! Defaults: `bridge` `mydocker0`, `isGateway` true, `ipMasq` false,
//! `hairpinMode` false, `mtu` the kernel's. `protocol` tcp (udp, sctp);
//! `hostIP` empty or 0.0.0.0 means every local address.
//!
//! - ADD: ensures the bridge (up), runs the IPAM plugin `<CNI_PATH dir>/<ipam.type>`
//!   (without CNI_PATH: the directory of this executable) with the same
//!   config and env; puts the gateway address on the bridge (isGateway) and
//!   sets `route_localnet=1` on it; sets `net.ipv4.ip_forward=1` (left on);
//!   creates the veth pair with the host end `veth<8 hex of sha256(id:ifname)>`
//!   on the bridge and the peer created directly in CNI_NETNS as CNI_IFNAME;
//!   inside: the address, lo up, the ipam routes (default route via the
//!   gateway); then the iptables rules (see [`iptables`]): the network's
//!   (MASQUERADE, FORWARD) on the first ADD of the bridge, the container's
//!   DNAT/hairpin per port mapping. An ADD without port mappings on a network
//!   whose rules are in place runs no iptables command: the bridge's alias
//!   says they are (see [`marks`]). Any failure after
//!   the address was allocated undoes the veth and the allocation. Prints a CNI
//!   result: interfaces `[bridge, host veth, container if (sandbox = netns path)]`,
//!   `ips` (interface 2), `routes`, `dns`.
//! - DEL: deletes the host veth (its peer goes with it), returning once it
//!   is gone from the namespace while the kernel's final teardown of the
//!   device (an rcu_barrier, 15-40 ms) finishes in a detached helper,
//!   `netbr link-del INDEX` (see [`linkdel`]); runs ipam DEL; deletes the
//!   container's rules (no iptables command when its veth's alias says it
//!   had none). For a network `netbr create` made (its conflist is
//!   `<dataDir>/../networks/NAME.json`) the network's rules and the bridge
//!   stay: they go with `netbr rm NAME`. For any other network (plugin mode:
//!   podman, a raw conflist; nobody calls `netbr rm`, and podman deletes
//!   only a `bridge` plugin's bridge) the DEL that leaves the bridge without
//!   ports removes the network whole: its rules (both families), the
//!   bridge (only when its alias names this network: a host's own bridge
//!   stays) and, with `ipam` as the IPAM plugin and no address held, its
//!   ipam state files; the next ADD makes them again. Plugin-mode ADDs hold
//!   a shared flock on `/run/mydocker/netbr-plugin.lock` and that removal
//!   an exclusive one, so they never interleave. Gone already is success.
//! - CHECK: bridge up, host veth on it, ipam CHECK, container if up with the
//!   prevResult addresses, default route, one DNAT rule per port mapping.
//! - GC (CNI 1.1): runs the ipam plugin's GC (addresses of attachments not
//!   in `cni.dev/valid-attachments` released), deletes the rules of
//!   containers not listed, and in plugin mode removes the network as the
//!   last DEL does when the bridge has no port left.
//! - STATUS (CNI 1.1): the ipam plugin's STATUS.
//! - VERSION: supported versions (up to 1.1.0).
//!
//! Errors are CNI error JSON on stdout (`{"cniVersion","code","msg","details"}`)
//! and one line on stderr. Codes: 1 version, 4 invalid env, 5 I/O (netns,
//! sysctl), 6 undecodable config, 7 invalid config; ipam's 100-102 passed
//! through; 110 netlink, 111 iptables, 112 the ipam plugin could not run,
//! 113 CHECK found a difference. Exit 2 for codes 1, 2, 4, 6, 7; 1 otherwise.
//!
//! # Human subcommands
//!
//! Global `--root DIR` (env `MYDOCKER_ROOT`, default `/var/lib/mydocker`).
//!
//! - `netbr netns add ID [--dir D]`: creates `D/ID` (default
//!   `$MYDOCKER_RUN/netns`, `/run/mydocker/netns`) bound to a new network
//!   namespace; prints `{"path": ".."}`. Existing is success.
//! - `netbr netns del ID [--dir D]`: unmounts and removes it; prints
//!   `{"path": ".."}`; gone already is success.
//! - `netbr create NAME --subnet CIDR [--subnet CIDR6] [--gateway IP]...
//!   [--bridge BR]`: writes `<root>/networks/NAME.json`, a conflist with one
//!   netbr plugin (`isGateway`, `ipMasq`, `hairpinMode` true; ipam `{type:
//!   ipam, subnet, gateway, dataDir: <root>/ipam}`, or with an IPv6 subnet
//!   (dual stack: one of each family) `{type: ipam, ranges: [[v4], [v6]],
//!   dataDir}`; gateways matched by family, default the first host). Bridge default `br-<12 hex of
//!   sha256(NAME)>`; created on the first connect. Refuses an existing name,
//!   an overlapping subnet or a bridge in use (exit 1 / 2). Prints
//!   `{"name","subnet","gateway","bridge"}`.
//! - `netbr rm NAME [--force]`: refuses while addresses are allocated (unless
//!   `--force`: then the containers' rules go too); else deletes
//!   the network's rules (those of its bridge and subnet only: another
//!   `--root` may have a network of the same name), the bridge, the ipam
//!   state and the conflist. Prints `{"name","removed":true}` (`false` when
//!   there was nothing). A network used only through raw CNI configs (no
//!   conflist) has its rules removed too, found by the bridge alias naming
//!   it (`mydocker-rules NAME SUBNET ..`, see [`marks`]), and the alias
//!   cleared; its bridge and ipam state are the caller's to remove.
//! - `netbr ls`: `[{"name","subnet","gateway","subnets","gateways","bridge"}]`
//!   (`subnet`/`gateway`: the IPv4 ones when there are).
//! - `netbr inspect NAME`: the summary plus `allocations` `[{"ip","id","ifname"}]`
//!   and `config` (the conflist).
//! - `netbr connect NAME ID --netns PATH [--ifname eth0] [--ip IP] [--ip6 IP6] [--publish JSON]`:
//!   CNI ADD with the network's config (`--publish` is the portMappings
//!   array, `--ip`/`--ip6` become `CNI_ARGS=IP=a,b`); prints the CNI result.
//! - `netbr disconnect NAME ID --netns PATH [--ifname eth0]`: CNI DEL; prints
//!   `{"name","id","disconnected":true}`.
//! - `netbr link-del INDEX` (hidden, DEL's helper): deletes link INDEX of
//!   the current namespace; prints `{"index","deleted"}` (`false`: gone
//!   already).
//!
//! Exit codes: 0 ok, 1 the operation failed, 2 bad usage or input. Errors:
//! one line `netbr: message` on stderr.

pub mod iptables;
pub mod linkdel;
pub mod marks;
pub mod netlink;
pub mod netns;
pub mod network;
pub mod plugin;
