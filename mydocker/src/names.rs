//! Container names on user-defined networks, without a daemon.
//!
//! Docker answers names from an embedded DNS server (127.0.0.11) that
//! lives in its daemon. mydocker has no daemon, so names go in each
//! container's `/etc/hosts` instead: the file is `<container dir>/hosts`,
//! bind-mounted into the container, and every time a container joins or
//! leaves a user-defined network, the hosts file of every container on
//! that network is rewritten.
//!
//! - `$ROOT/netnames/<network>/<id>.json` is one endpoint: the container's
//!   addresses on the network, its names (name, `--network-alias`es, short
//!   id) and its hosts file. Written when it joins (run, start, `network
//!   connect`), removed when it leaves (stop, rm, `network disconnect`).
//! - [`refresh`] (under flock on `$ROOT/netnames/<network>/.lock`) rewrites
//!   every endpoint's hosts file: its own part (up to [`MARK`]), then one
//!   line per address of every other endpoint. The write goes through the
//!   file (same inode: the bind mount pins the inode, a rename would leave
//!   the container reading the old file): the new content at offset 0,
//!   then a truncate to its length. A reader racing the write may see a
//!   mix for the moment of one small `pwrite`; resolvers read it whole on
//!   each lookup, so the next lookup sees the new one.
//! - The default `bridge` network registers nothing: as in docker, its
//!   containers do not resolve each other by name.
//!
//! A container killed without its teardown leaves an endpoint file; the
//! next refresh drops endpoints whose container record is gone.

use crate::context::Ctx;
use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The line after which a hosts file is ours to rewrite.
pub const MARK: &str = "# mydocker: containers on the same networks\n";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub id: String,
    /// Name, aliases, short id.
    pub names: Vec<String>,
    pub ips: Vec<String>,
    pub hosts: PathBuf,
}

fn dir(ctx: &Ctx, network: &str) -> PathBuf {
    ctx.root.join("netnames").join(network)
}

/// Whether containers on `network` resolve each other by name.
pub fn named(network: &str) -> bool {
    network != crate::network::DEFAULT
}

/// Records the endpoint and rewrites the network's hosts files.
pub fn join(ctx: &Ctx, network: &str, ep: &Endpoint) -> Result<()> {
    if !named(network) {
        return Ok(());
    }
    let d = dir(ctx, network);
    std::fs::create_dir_all(&d).step(|| format!("create {}", d.display()))?;
    let p = d.join(format!("{}.json", ep.id));
    atomicfile::write(&p, &serde_json::to_vec(ep).expect("json"))
        .step(|| format!("write {}", p.display()))?;
    refresh(ctx, network)
}

/// Drops the endpoint (gone already is fine) and rewrites the others'.
pub fn leave(ctx: &Ctx, network: &str, id: &str) -> Result<()> {
    if !named(network) {
        return Ok(());
    }
    let p = dir(ctx, network).join(format!("{id}.json"));
    match std::fs::remove_file(&p) {
        Ok(()) => refresh(ctx, network),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Daemon(format!("remove {}: {e}", p.display()))),
    }
}

/// A renamed container answers to its new name on every network it is on
/// (its endpoint's old name replaced, then that network's hosts rewritten).
pub fn rename(ctx: &Ctx, id: &str, old: &str, new: &str) -> Result<()> {
    let root = ctx.root.join("netnames");
    let Ok(nets) = std::fs::read_dir(&root) else {
        return Ok(());
    };
    for net in nets.flatten() {
        let p = net.path().join(format!("{id}.json"));
        let Some(mut ep) = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Endpoint>(&b).ok())
        else {
            continue;
        };
        for n in ep.names.iter_mut().filter(|n| *n == old) {
            *n = new.to_string();
        }
        atomicfile::write(&p, &serde_json::to_vec(&ep).expect("json"))
            .step(|| format!("write {}", p.display()))?;
        refresh(ctx, &net.file_name().to_string_lossy())?;
    }
    Ok(())
}

/// Rewrites the hosts file of every endpoint of `network`.
pub fn refresh(ctx: &Ctx, network: &str) -> Result<()> {
    let d = dir(ctx, network);
    if !d.exists() {
        return Ok(());
    }
    let _lock = atomicfile::lock(&d.join(".lock"))
        .step(|| format!("lock {}", d.join(".lock").display()))?;
    let mut eps: Vec<Endpoint> = vec![];
    for e in std::fs::read_dir(&d)
        .step(|| format!("list {}", d.display()))?
        .flatten()
    {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Some(ep) = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Endpoint>(&b).ok())
        else {
            continue;
        };
        // A container gone without its teardown.
        if !ctx.container_dir(&ep.id).join("state.json").exists() {
            let _ = std::fs::remove_file(&p);
            continue;
        }
        eps.push(ep);
    }
    eps.sort_by(|a, b| a.id.cmp(&b.id));
    for ep in &eps {
        let lines: String = eps
            .iter()
            .filter(|o| o.id != ep.id)
            .flat_map(|o| {
                o.ips
                    .iter()
                    .map(move |ip| format!("{ip}\t{}\n", o.names.join(" ")))
            })
            .collect();
        rewrite(&ep.hosts, &lines)?;
    }
    Ok(())
}

/// Replaces what follows [`MARK`] in `hosts` by `lines`, in place.
/// A hosts file that is not there (the container is being torn down) is skipped.
fn rewrite(hosts: &Path, lines: &str) -> Result<()> {
    let old = match std::fs::read_to_string(hosts) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Daemon(format!("read {}: {e}", hosts.display()))),
    };
    let own = match old.find(MARK) {
        Some(i) => &old[..i],
        None => &old[..],
    };
    let new = format!("{own}{MARK}{lines}");
    if new == old {
        return Ok(());
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(hosts)
        .step(|| format!("open {}", hosts.display()))?;
    f.write_all_at(new.as_bytes(), 0)
        .and_then(|_| f.set_len(new.len() as u64))
        .step(|| format!("write {}", hosts.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn rewrite_keeps_the_own_part_and_the_inode() {
        let d = std::env::temp_dir().join(format!("names-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let h = d.join("hosts");
        std::fs::write(&h, "127.0.0.1\tlocalhost\n10.0.0.2\tme\n").unwrap();
        let ino = std::fs::metadata(&h).unwrap().ino();
        rewrite(&h, "10.0.0.3\tweb alias abc\n10.0.0.4\tdb\n").unwrap();
        rewrite(&h, "10.0.0.3\tweb alias abc\n").unwrap();
        let s = std::fs::read_to_string(&h).unwrap();
        assert_eq!(
            s,
            format!("127.0.0.1\tlocalhost\n10.0.0.2\tme\n{MARK}10.0.0.3\tweb alias abc\n")
        );
        assert_eq!(std::fs::metadata(&h).unwrap().ino(), ino);
        rewrite(&d.join("gone"), "x").unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
