//! Named volumes (`DIR/volumes/<name>/_data` + `meta.json`) and the
//! resolution of a container's `-v` / `--mount` / `--tmpfs` specs into OCI
//! mount entries.

use crate::atomic::{write_atomic, Lock};
use crate::extract;
use crate::layout::Layout;
use crate::mount::{self, MountError};
use crate::pack;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 255 characters")]
    BadName(String),
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    #[error("volume {volume} is in use by container {container} (use --force)")]
    InUse { volume: String, container: String },
    #[error("bad mount spec #{index}: {why}")]
    BadSpec { index: usize, why: String },
    #[error("the mount specs must be a JSON array: {0}")]
    BadJson(String),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("seed volume {volume} from the image's {target}: {why}")]
    Seed {
        volume: String,
        target: String,
        why: String,
    },
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, VolumeError>;

/// `volumes/<name>/meta.json`, and what `volume ls` / `inspect` print.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    #[serde(default)]
    pub mountpoint: PathBuf,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub driver: String,
    /// `volume create --label K=V` (docker's volume labels).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Containers whose `layerfs-volumes.json` names this volume.
    #[serde(default, skip_deserializing)]
    pub in_use_by: Vec<String>,
}

/// One `-v` / `--mount` / `--tmpfs` request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub source: Option<String>,
    pub target: String,
    #[serde(default, alias = "readOnly")]
    pub readonly: bool,
}

/// One OCI runtime-spec mount entry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OciMount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// `containers/<ID>/layerfs-volumes.json`: the volumes a container uses.
pub const RECORD: &str = "layerfs-volumes.json";

pub fn check_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(VolumeError::BadName(name.into()))
    }
}

fn lock(layout: &Layout) -> Result<Lock> {
    let p = layout.volumes().join(".lock");
    crate::atomic::take_lock(&p, true).map_err(|source| VolumeError::Io {
        step: "lock",
        path: p,
        source,
    })
}

/// Creates volume `name` (random 64-hex when None); existing: returned as is.
/// The bool says whether it was created now.
fn ensure(layout: &Layout, name: Option<&str>) -> Result<(Volume, bool)> {
    ensure_labeled(layout, name, Default::default())
}

fn ensure_labeled(
    layout: &Layout,
    name: Option<&str>,
    labels: std::collections::BTreeMap<String, String>,
) -> Result<(Volume, bool)> {
    let name = match name {
        Some(n) => n.to_string(),
        None => random_name()?,
    };
    check_name(&name)?;
    let dir = layout.volumes().join(&name);
    if let Ok(v) = read(layout, &name) {
        return Ok((v, false));
    }
    let data = dir.join("_data");
    std::fs::create_dir_all(&data).map_err(|source| VolumeError::Io {
        step: "mkdir",
        path: data.clone(),
        source,
    })?;
    let v = Volume {
        name: name.clone(),
        mountpoint: data,
        created_at: crate::commit::now_rfc3339(),
        driver: "local".into(),
        labels,
        in_use_by: vec![],
    };
    let meta = dir.join("meta.json");
    write_atomic(&meta, &serde_json::to_vec_pretty(&v).expect("json")).map_err(|source| {
        VolumeError::Io {
            step: "write",
            path: meta,
            source,
        }
    })?;
    Ok((v, true))
}

fn random_name() -> Result<String> {
    randid::id().map_err(|e| VolumeError::Io {
        step: "getrandom",
        path: "a volume name".into(),
        source: e.into(),
    })
}

fn read(layout: &Layout, name: &str) -> Result<Volume> {
    check_name(name)?;
    let meta = layout.volumes().join(name).join("meta.json");
    let b = std::fs::read(&meta).map_err(|_| VolumeError::NoSuchVolume(name.into()))?;
    let mut v: Volume =
        serde_json::from_slice(&b).map_err(|_| VolumeError::NoSuchVolume(name.into()))?;
    v.in_use_by = users(layout)
        .into_iter()
        .filter(|(_, vs)| vs.contains(name))
        .map(|(c, _)| c)
        .collect();
    Ok(v)
}

/// (container id, volumes it uses) for every container with a record.
fn users(layout: &Layout) -> Vec<(String, BTreeSet<String>)> {
    let Ok(rd) = std::fs::read_dir(layout.containers()) else {
        return vec![];
    };
    let mut out: Vec<_> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let b = std::fs::read(e.path().join(RECORD)).ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                serde_json::from_slice(&b).ok()?,
            ))
        })
        .collect();
    out.sort();
    out
}

/// `volume create [NAME] [--label K=V]...` (an existing volume keeps its labels).
pub fn create(
    layout: &Layout,
    name: Option<&str>,
    labels: std::collections::BTreeMap<String, String>,
) -> Result<Volume> {
    if let Some(n) = name {
        check_name(n)?;
    }
    let _l = lock(layout)?;
    Ok(ensure_labeled(layout, name, labels)?.0)
}

/// `volume inspect NAME`.
pub fn inspect(layout: &Layout, name: &str) -> Result<Volume> {
    read(layout, name)
}

/// `volume ls`, sorted by name.
pub fn list(layout: &Layout) -> Result<Vec<Volume>> {
    let Ok(rd) = std::fs::read_dir(layout.volumes()) else {
        return Ok(vec![]);
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| check_name(n).is_ok())
        .collect();
    names.sort();
    Ok(names.iter().filter_map(|n| read(layout, n).ok()).collect())
}

/// `volume rm NAME [--force]`: refused while a container uses it, unless
/// forced. Already gone: success.
pub fn remove(layout: &Layout, name: &str, force: bool) -> Result<()> {
    check_name(name)?;
    let _l = lock(layout)?;
    remove_locked(layout, name, force)
}

fn remove_locked(layout: &Layout, name: &str, force: bool) -> Result<()> {
    if !force {
        if let Some((c, _)) = users(layout).into_iter().find(|(_, vs)| vs.contains(name)) {
            return Err(VolumeError::InUse {
                volume: name.into(),
                container: c,
            });
        }
    }
    let dir = layout.volumes().join(name);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(VolumeError::Io {
            step: "remove",
            path: dir,
            source: e,
        }),
        _ => Ok(()),
    }
}

/// `volume prune`: removes every volume no container uses.
pub fn prune(layout: &Layout) -> Result<Vec<String>> {
    let _l = lock(layout)?;
    let used: BTreeSet<String> = users(layout).into_iter().flat_map(|(_, v)| v).collect();
    let mut removed = Vec::new();
    for v in list(layout)? {
        if !used.contains(&v.name) {
            remove_locked(layout, &v.name, true)?;
            removed.push(v.name);
        }
    }
    Ok(removed)
}

/// A normalized absolute container path: `/a/./b/` -> `/a/b`; `..` refused.
fn clean_target(t: &str) -> std::result::Result<String, String> {
    if !t.starts_with('/') {
        return Err(format!("target {t:?} is not an absolute path"));
    }
    let mut parts = Vec::new();
    for c in Path::new(t).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => return Err(format!("target {t:?} contains '..'")),
            _ => {}
        }
    }
    if parts.is_empty() {
        return Err("target cannot be /".into());
    }
    Ok(format!("/{}", parts.join("/")))
}

/// `volume resolve ID`: specs (JSON array) -> OCI mounts. Named volumes are
/// created on first use, and a volume created now is seeded with the
/// image's content at the target (as docker does); the container's record
/// lists the volumes it uses. On failure, volumes created here are removed.
pub fn resolve(layout: &Layout, id: &str, specs_json: &str) -> Result<Vec<OciMount>> {
    mount::check_id(id)?;
    let specs: Vec<Spec> =
        serde_json::from_str(specs_json).map_err(|e| VolumeError::BadJson(e.to_string()))?;
    // Validate everything first.
    let mut targets = BTreeSet::new();
    let mut cleaned = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let bad = |why: String| VolumeError::BadSpec { index: i, why };
        let target = clean_target(&s.target).map_err(bad)?;
        if !targets.insert(target.clone()) {
            return Err(bad(format!("duplicate mount point {target}")));
        }
        let src = s.source.as_deref().filter(|x| !x.is_empty());
        match s.kind.as_str() {
            "volume" => {
                if let Some(n) = src {
                    check_name(n).map_err(|e| bad(e.to_string()))?;
                }
            }
            "bind" => {
                let p = src.ok_or_else(|| bad("bind needs a source".into()))?;
                if !p.starts_with('/') {
                    return Err(bad(format!("bind source {p:?} is not an absolute path")));
                }
            }
            "tmpfs" => {}
            k => return Err(bad(format!("unknown type {k:?} (volume, bind or tmpfs)"))),
        }
        cleaned.push(target);
    }
    let _l = lock(layout)?;
    let mut created: Vec<String> = Vec::new();
    let res = (|| {
        let mut out = Vec::new();
        let mut used = BTreeSet::new();
        for (s, target) in specs.iter().zip(&cleaned) {
            let mut opts: Vec<String> = Vec::new();
            let src = s.source.as_deref().filter(|x| !x.is_empty());
            let (kind, source) = match s.kind.as_str() {
                "volume" => {
                    let (v, new) = ensure(layout, src)?;
                    if new {
                        created.push(v.name.clone());
                        seed(layout, id, target, &v)?;
                    }
                    used.insert(v.name.clone());
                    opts.extend(["rbind".into(), "rprivate".into()]);
                    ("bind", v.mountpoint.to_string_lossy().into_owned())
                }
                "bind" => {
                    let p = src.expect("validated");
                    // `-v /host:/ctr` creates a missing host dir, as docker does.
                    if std::fs::symlink_metadata(p).is_err() {
                        std::fs::create_dir_all(p).map_err(|source| VolumeError::Io {
                            step: "mkdir",
                            path: p.into(),
                            source,
                        })?;
                    }
                    opts.extend(["rbind".into(), "rprivate".into()]);
                    ("bind", p.to_string())
                }
                _ => {
                    opts.extend([
                        "nosuid".into(),
                        "nodev".into(),
                        "noexec".into(),
                        "mode=1777".into(),
                    ]);
                    ("tmpfs", "tmpfs".to_string())
                }
            };
            if s.readonly {
                opts.push("ro".into());
            }
            out.push(OciMount {
                destination: target.clone(),
                kind: kind.into(),
                source,
                options: opts,
            });
        }
        let dir = layout.container(id);
        let rec = dir.join(RECORD);
        let mut all: BTreeSet<String> = std::fs::read(&rec)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        all.extend(used);
        write_atomic(&rec, &serde_json::to_vec(&all).expect("json")).map_err(|source| {
            VolumeError::Io {
                step: "write",
                path: rec,
                source,
            }
        })?;
        Ok(out)
    })();
    if res.is_err() {
        for n in &created {
            let _ = remove_locked(layout, n, true);
        }
    }
    res
}

/// Copies the image's directory at `target` (resolved inside the rootfs,
/// never out of it) into a new volume, with owners, modes and xattrs. A
/// rootfs that is not mounted is mounted for the copy.
fn seed(layout: &Layout, id: &str, target: &str, v: &Volume) -> Result<()> {
    let dir = layout.container(id);
    let Ok(rec) = mount::read_record(&dir) else {
        return Ok(());
    };
    let rootfs = dir.join("rootfs");
    let was_mounted = mount::is_mounted(&rootfs);
    if !was_mounted {
        mount::mount_rootfs(layout, &rec.image, id)?;
    }
    let res = copy_in(&rootfs, target, &v.mountpoint);
    if !was_mounted {
        mount::umount_rootfs(layout, id)?;
    }
    res.map_err(|why| VolumeError::Seed {
        volume: v.name.clone(),
        target: target.into(),
        why,
    })
}

fn copy_in(rootfs: &Path, target: &str, data: &Path) -> std::result::Result<(), String> {
    let root = std::fs::File::open(rootfs).map_err(|e| format!("open rootfs: {e}"))?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let src = match openat2(&root, target.trim_start_matches('/'), how) {
        Ok(fd) => fd,
        // Nothing there (or not a dir) in the image: an empty volume.
        Err(_) => return Ok(()),
    };
    let src_path = PathBuf::from(format!("/proc/self/fd/{}", src.as_raw_fd()));
    let m = std::fs::metadata(&src_path).map_err(|e| e.to_string())?;
    std::os::unix::fs::chown(data, Some(m.uid()), Some(m.gid())).map_err(|e| e.to_string())?;
    std::fs::set_permissions(
        data,
        std::os::unix::fs::PermissionsExt::from_mode(m.mode() & 0o7777),
    )
    .map_err(|e| e.to_string())?;
    // pack | unpack through a pipe: the same safe code paths as layers.
    let (r, w) = io::pipe().map_err(|e| e.to_string())?;
    let packer = std::thread::spawn(move || {
        let res = pack::pack(&src_path, w, false).map(|_| ());
        drop(src);
        res
    });
    let unpacked = extract::unpack(r, data, None);
    let packed = packer
        .join()
        .map_err(|_| "copy thread panicked".to_string())?;
    packed.map_err(|e| e.to_string())?;
    unpacked.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_targets() {
        assert!(check_name("data").is_ok());
        assert!(check_name("a.b_c-1").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b", ".."] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(clean_target("/a/./b/").unwrap(), "/a/b");
        assert!(clean_target("a").is_err());
        assert!(clean_target("/").is_err());
        assert!(clean_target("/a/../b").is_err());
    }
}
