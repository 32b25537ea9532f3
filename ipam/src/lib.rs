//! ipam: bitmap IP allocation per network, as a CNI IPAM plugin and as a
//! small CLI for debugging.
//!
//! # CNI plugin
//!
//! Run with no arguments and `CNI_COMMAND` set, it is a CNI 1.0/1.1 IPAM
//! plugin: the network config on stdin, `CNI_CONTAINERID`, `CNI_IFNAME` and
//! optionally `CNI_ARGS` in the environment.
//!
//! ```json
//! {"cniVersion":"1.0.0","name":"net1","ipam":{"type":"ipam","subnet":"10.22.0.0/16",
//!  "gateway":"10.22.0.1","rangeStart":"10.22.0.10","rangeEnd":"10.22.0.250",
//!  "dataDir":"/var/lib/mydocker/ipam","routes":[{"dst":"0.0.0.0/0"}]}}
//! ```
//!
//! - `ranges` (host-local's): a list of range sets, each a list of ranges
//!   `{"subnet","rangeStart","rangeEnd","gateway"}`, IPv4 or IPv6 (one
//!   family per set). ADD hands out one address per set, trying its ranges
//!   in order (the next when one is exhausted); `subnet` & co. at the top
//!   are one more set, first. Podman's default conflist
//!   (`"ranges":[[{"subnet":"10.88.0.0/16","gateway":"10.88.0.1"}],[{"subnet":"fd00::/64"}]]`)
//!   gets one address per family. `routes` defaults to a default route per
//!   family handed out.
//! - IPv6 pools (prefixes /8 to /126): offset 0 (the subnet-router anycast)
//!   and the gateway (default `::1`) are never handed out; the state is a
//!   next-fit cursor plus the sparse set of taken offsets ([`v6`]), so a /64
//!   costs bytes per owner, not a bitmap, and an allocation is O(1)
//!   expected.
//! - `gateway` defaults to the first host; `rangeStart`/`rangeEnd` default to
//!   the whole subnet. Network, broadcast and gateway are never handed out.
//!   Prefixes /8 to /30. `dataDir` defaults to `$MYDOCKER_ROOT/ipam`
//!   (`/var/lib/mydocker/ipam`). `routes` defaults to `[{"dst":"0.0.0.0/0"}]`.
//! - ADD: next-fit allocation after the address handed out last (like
//!   host-local). A requested address (`CNI_ARGS` `IP=a.b.c.d`, the `ips`
//!   capability `runtimeConfig.ips`, or `args.cni.ips`; `IP=` may list one
//!   per family, comma-separated) is honoured or refused, and must fall in
//!   some range (else code 100). A failed set releases what the ADD took. ADD again for the same container id + ifname returns the address
//!   it already holds. Prints `{"cniVersion":..,"ips":[{"address":"10.22.0.2/16",
//!   "gateway":"10.22.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}`.
//! - DEL: releases what container id + ifname holds; nothing held, or no state
//!   at all, is success. Prints nothing.
//! - CHECK: succeeds (prints nothing) when container id + ifname holds an
//!   address, else error code 3.
//! - GC (CNI 1.1): releases every owner in every pool of the network that is
//!   not in the config's `cni.dev/valid-attachments` (`[{"containerID","ifname"}]`).
//! - STATUS (CNI 1.1): success when the data dir can be made and written,
//!   else code 50.
//! - VERSION: `{"cniVersion":"1.1.0","supportedVersions":[...]}`.
//!
//! Errors are `{"cniVersion","code","msg","details"}` on stdout. Codes: 1
//! incompatible cniVersion, 3 nothing held (CHECK), 4 invalid environment, 5
//! I/O failure, 6 undecodable config, 7 invalid network config; ours: 100
//! requested address taken, reserved or outside the range, 101 no free address
//! left (exhausted), 102 corrupt state file. Exit status 2 for codes 1, 2, 4, 6,
//! 7 (bad input), 1 for the others.
//!
//! # Human subcommands
//!
//! Global `--root DIR` (env `MYDOCKER_ROOT`, default `/var/lib/mydocker`);
//! the data dir is `--data-dir D` or `<root>/ipam`.
//!
//! - `ipam alloc --network NAME --subnet CIDR [--gateway IP] [--range-start IP]
//!   [--range-end IP] [--ip IP] --id CID [--ifname eth0]` prints
//!   `{"network","ip","prefix","address":"ip/prefix","gateway","id","ifname"}`.
//! - `ipam release --network NAME --id CID [--ifname eth0]` prints
//!   `{"network","released":["10.22.0.2"]}` (empty when nothing was held).
//! - `ipam ls NAME` prints `{"network","subnet","gateway","allocations":[{"ip","id","ifname"}]}`;
//!   a network without state is an error (exit 1).
//! - `ipam repair NAME [--subnet CIDR]` salvages every pool file of the
//!   network that does not decode ([`repair`]): it keeps every owner record
//!   that reads back (their addresses stay taken), hard-links the corrupt
//!   file to `<file>.corrupt-<UTC time>` beside it and writes the rest by
//!   atomic rename; `--subnet` only when the first pool's header is
//!   unreadable. Prints `{"network","pools":[{"file","state":"ok"|"repaired",
//!   "owners","lost":[..],"backup"}]}`.
//!
//! A corrupt state file fails every command on the network with one line
//! naming the file and the repair command (CNI code 102). Nothing a caller
//! passes can make one: ids (1-1024 bytes, no control characters) and
//! interface names (the kernel's rule) are checked before anything is
//! written.
//!
//! Exit codes: 0 ok, 1 the operation failed (exhausted, taken, I/O), 2 bad
//! usage or bad input. Errors print one line `ipam: message` on stderr.
//!
//! # State
//!
//! Pools ([`pools`]): the network's first IPv4 subnet is `<dataDir>/<name>`;
//! any other subnet `<dataDir>/<name>+<cidr, / as _>` (IPv4: the format
//! below; IPv6: [`v6`]'s). DEL, GC and `netbr rm` walk every pool file of
//! the network, config or not.
//!
//! One file per network, `<dataDir>/<name>`, a compact binary bitmap plus the
//! owners of allocated addresses (format in [`store`]), under flock on
//! `<dataDir>/.<name>.lock`. ADD and DEL update it in place, a few bytes
//! each, not fsynced ([`update`]: crash safety and the durability trade-off,
//! the same as host-local's); a new network's first write, the repair of a
//! file a killed process left half-written, and the compaction of released
//! records rewrite it by atomic rename. A /16 costs the 8 KiB bitmap plus
//! 44 bytes per owner with a 64-hex container id (12.6 KB with 100 taken,
//! 2.6 MB with 60,000: who holds each address is the state). Beside it,
//! `<dataDir>/.<name>.idx` indexes the owners by id + interface ([`index`]:
//! derived, rebuilt whenever it does not match; 8 bytes a slot, at least
//! two slots per owner: 2 KB with 100 taken, 1 MB with 60,000), so an ADD or
//! DEL costs the same with 100 or 60,000 addresses taken.

pub mod allocation;
pub mod bitmap;
pub mod cni;
pub mod index;
pub mod owners;
pub mod pools;
pub mod repair;
pub mod store;
pub mod update;
pub mod v6;
