//! What a container takes from another one: `--network container:X`,
//! `--pid container:X`, `--ipc container:X` (its namespaces) and
//! `--volumes-from X[:ro|rw]` (its volumes and binds, at the same paths).
//!
//! Two moments, as docker has them:
//! - [`resolve`], before the record exists (`run`, `create`): the names
//!   become full ids in the stored config (`network` = `container:<id>`,
//!   `extra.pid_container`/`ipc_container`), the other container's mounts
//!   are copied, and docker's conflicts are refused (`-p`, `-h`, `--dns`,
//!   `--add-host`, `--mac-address` with a container network). `run` also
//!   wants the targets running, so a refused run creates nothing.
//! - [`at_launch`], at every (re)start: the targets must be running; their
//!   inits' `/proc/PID/ns/X` become the config's namespace paths
//!   (`extra.ns_paths`, which `spec::build` reads), and a container network
//!   brings the target's hostname, /etc/hosts and /etc/resolv.conf (docker
//!   shares the files) instead of a netns, CNI ADD and files of its own.
//!   `--ipc container:X` shares X's IPC namespace (SysV IPC, mqueue) but
//!   not its /dev/shm: that is a tmpfs inside X's mount namespace, which
//!   cannot be bind-mounted from outside it (docker keeps every
//!   container's shm on the host for this; mydocker does not yet).
//!
//! What the launch does with [`Joined`] (one place, see `launch::prepare`):
//! run with `joined.cfg`; when `joined.net` is Some, treat the network as
//! `none` for the record and make no netns file and no CNI ADD, take
//! `net.hostname` and bind `net.files` instead of `spec::write_etc_files`.

use crate::cli::RunArgs;
use crate::context::Ctx;
use crate::error::{fail, Error, Result};
use crate::records;
use crate::runconfig::RunConfig;
use ctrstate::record::{Record, Status};
use std::path::PathBuf;

/// The `container:` prefix of `--network`, `--pid` and `--ipc`.
const PREFIX: &str = "container:";

/// The target of `--network container:X` (a name before [`resolve`], the
/// full id after).
pub fn net_target(network: &str) -> Option<&str> {
    network.strip_prefix(PREFIX)
}

/// `CONTAINER[:ro|rw]` as (container, Some(readonly)) or (container, None)
/// when no mode is given (each mount keeps its own).
pub fn parse_volumes_from(v: &str) -> Result<(String, Option<bool>)> {
    let (c, mode) = match v.rsplit_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (v, None),
    };
    if c.is_empty() {
        return fail(format!("invalid --volumes-from: '{v}': no container"));
    }
    let ro = match mode {
        None => None,
        Some("ro") => Some(true),
        Some("rw") => Some(false),
        Some(m) => return fail(format!("invalid mode: {m}")),
    };
    Ok((c.to_string(), ro))
}

/// The other container, by name or id; docker's message when unknown.
fn target(ctx: &Ctx, r: &str) -> Result<Record> {
    records::get(ctx, r).map_err(|_| Error::Daemon(format!("No such container: {r}")))
}

fn running(r: &Record) -> bool {
    r.status == Status::Running && r.pid > 0 && records::alive(r.pid, r.pid_start_time)
}

/// The names in `cfg` become the targets' ids; `--volumes-from` mounts are
/// added; docker's conflicts are refused. `must_run`: the targets of
/// namespaces must be running now (`run`; `create` checks at start).
/// Reads records only; touches nothing.
pub fn resolve(ctx: &Ctx, a: &RunArgs, cfg: &mut RunConfig, must_run: bool) -> Result<()> {
    if let Some(t) = net_target(&cfg.network) {
        let n = &a.net;
        let conflict = if !a.publish.is_empty() || n.publish_all {
            Some("port publishing and the container type network mode")
        } else if a.hostname.is_some() {
            Some("hostname and the network mode")
        } else if !n.dns.is_empty() {
            Some("dns and the network mode")
        } else if !n.add_host.is_empty() {
            Some("custom host-to-IP mapping and the network mode")
        } else if n.mac_address.is_some() {
            Some("mac-address and the network mode")
        } else {
            None
        };
        if let Some(c) = conflict {
            return fail(format!("conflicting options: {c}"));
        }
        if t.is_empty() {
            return fail("invalid --network: container: needs a container name or id");
        }
        let rec = target(ctx, t)?;
        if must_run && !running(&rec) {
            return fail(format!(
                "cannot join network of a non running container: {t}"
            ));
        }
        cfg.network = format!("{PREFIX}{}", rec.id);
        // The target's ports are the target's: nothing is published here.
        cfg.ports.clear();
    }
    for (what, name) in [
        ("PID", &mut cfg.extra.pid_container),
        ("IPC", &mut cfg.extra.ipc_container),
    ] {
        if name.is_empty() {
            continue;
        }
        let rec = target(ctx, name)?;
        if must_run && !running(&rec) {
            return fail(format!(
                "cannot join {what} of a non running container: {name}"
            ));
        }
        *name = rec.id;
    }
    let own: Vec<String> = cfg.mounts.iter().map(|m| m.target.clone()).collect();
    for v in cfg.extra.volumes_from.clone() {
        let (c, ro) = parse_volumes_from(&v)?;
        let rec = target(ctx, &c)?;
        let theirs: RunConfig = serde_json::from_value(serde_json::Value::Object(rec.config))
            .map_err(|e| Error::Daemon(format!("container {c}: bad stored config: {e}")))?;
        for mut m in theirs.mounts {
            // tmpfs mounts are not volumes (docker copies mount points only);
            // this container's own -v/--mount for a path wins.
            if m.kind == "tmpfs"
                || own.contains(&m.target)
                || cfg.mounts.iter().any(|x| x.target == m.target)
            {
                continue;
            }
            if let Some(ro) = ro {
                m.readonly = ro;
            }
            // Shared, not this container's to remove with `rm -v`.
            m.anonymous = false;
            cfg.mounts.push(m);
        }
    }
    Ok(())
}

/// What a launch takes from the containers it joins.
pub struct Joined {
    /// The config to run: the stored one with `extra.ns_paths` filled.
    pub cfg: RunConfig,
    /// `--network container:X`: no network of its own.
    pub net: Option<NetJoin>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NetJoin {
    /// The target's hostname (docker: the joiner's is the target's).
    pub hostname: String,
    /// The target's /etc/hostname, hosts and resolv.conf as (source on
    /// the host, target inside) bind mounts.
    pub files: Vec<(String, String)>,
}

/// The targets' namespaces, at launch: each must be running. Reads
/// records and /proc only.
pub fn at_launch(ctx: &Ctx, cfg: &RunConfig) -> Result<Joined> {
    let mut cfg = cfg.clone();
    let mut net = None;
    let mut paths = std::collections::BTreeMap::new();
    let joins = [
        ("network", "net", "network", net_target(&cfg.network)),
        (
            "pid",
            "pid",
            "PID",
            Some(cfg.extra.pid_container.as_str()).filter(|s| !s.is_empty()),
        ),
        (
            "ipc",
            "ipc",
            "IPC",
            Some(cfg.extra.ipc_container.as_str()).filter(|s| !s.is_empty()),
        ),
    ];
    for (kind, ns, what, t) in joins {
        let Some(t) = t else { continue };
        let rec = target(ctx, t)?;
        if !running(&rec) {
            return fail(format!(
                "cannot join {what} of a non running container: {}",
                &rec.id[..12.min(rec.id.len())]
            ));
        }
        paths.insert(kind.to_string(), format!("/proc/{}/ns/{ns}", rec.pid));
        if kind == "network" {
            net = Some(net_files(ctx, &rec));
        }
    }
    cfg.extra.ns_paths = paths;
    Ok(Joined { cfg, net })
}

/// The files of the container whose network `rec` has (following a chain
/// of `container:` networks to the one that made them).
fn net_files(ctx: &Ctx, rec: &Record) -> NetJoin {
    let mut id = rec.id.clone();
    for _ in 0..8 {
        let Some(r) = records::peek(ctx, &id) else {
            break;
        };
        let c: RunConfig =
            serde_json::from_value(serde_json::Value::Object(r.config)).unwrap_or_default();
        match net_target(&c.network) {
            Some(next) => id = next.to_string(),
            None => break,
        }
    }
    let dir: PathBuf = ctx.container_dir(&id);
    let hostname = std::fs::read_to_string(dir.join("hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| id[..12.min(id.len())].to_string());
    let files = ["hostname", "hosts", "resolv.conf"]
        .iter()
        .filter(|f| dir.join(f).is_file())
        .map(|f| {
            (
                dir.join(f).to_string_lossy().to_string(),
                format!("/etc/{f}"),
            )
        })
        .collect();
    NetJoin { hostname, files }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_from_modes() {
        assert_eq!(parse_volumes_from("a").unwrap(), ("a".into(), None));
        assert_eq!(
            parse_volumes_from("a:ro").unwrap(),
            ("a".into(), Some(true))
        );
        assert_eq!(
            parse_volumes_from("a:rw").unwrap(),
            ("a".into(), Some(false))
        );
        assert!(parse_volumes_from("a:xx").is_err());
        assert!(parse_volumes_from(":ro").is_err());
        assert_eq!(net_target("container:web"), Some("web"));
        assert_eq!(net_target("bridge"), None);
    }
}
