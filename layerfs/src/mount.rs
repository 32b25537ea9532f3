//! Container rootfs: an overlay of the image layers (lowerdirs, top first)
//! with a per-container upper and work dir, at `containers/<ID>/rootfs`.

use crate::atomic::write_atomic;
use crate::index::{Index, IndexError};
use crate::layout::Layout;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("invalid container id {0:?}: use 1 to 128 letters, digits, '_', '.', '-'")]
    BadId(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("container {id} is already mounted with image {image}")]
    OtherImage { id: String, image: String },
    #[error("layer {0} of the image is missing from the store")]
    MissingLayer(String),
    #[error("store path {0} contains ',' or ':' which overlay options cannot carry")]
    BadRoot(PathBuf),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, MountError>;

/// `containers/<ID>/layerfs.json`: which image a container's rootfs uses,
/// read by `rmi` and by layer garbage collection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerLayers {
    pub image: String,
    #[serde(default)]
    pub layers: Vec<String>,
    #[serde(default)]
    pub rootfs: PathBuf,
}

/// What `mount` prints.
#[derive(Debug, Serialize)]
pub struct Mounted {
    pub rootfs: PathBuf,
}

pub const RECORD: &str = "layerfs.json";

/// Container ids become path components: keep them to a safe alphabet.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(MountError::BadId(id.into()))
    }
}

/// Mounts (or finds mounted) the rootfs of container `id` from `image`.
pub fn mount_rootfs(layout: &Layout, image: &str, id: &str) -> Result<Mounted> {
    check_id(id)?;
    let root_s = layout.root().to_string_lossy();
    if root_s.contains(',') || root_s.contains(':') {
        return Err(MountError::BadRoot(layout.root().into()));
    }
    // Shared: rmi (exclusive) cannot delete the layers between resolve and mount.
    let _lock = crate::atomic::take_lock(&layout.lock(), false)
        .map_err(|e| io_err("lock", &layout.lock(), e))?;
    let index = Index::load(layout)?;
    let img = index.resolve(image)?.clone();
    for hex in img.layer_hexes() {
        if !layout.layer(hex).is_dir() {
            return Err(MountError::MissingLayer(format!("sha256:{hex}")));
        }
    }
    let dir = layout.container(id);
    let rootfs = dir.join("rootfs");
    let record_path = dir.join(RECORD);
    if is_mounted(&rootfs) {
        if let Ok(rec) = read_record(&dir) {
            if rec.image != img.id {
                return Err(MountError::OtherImage {
                    id: id.into(),
                    image: rec.image,
                });
            }
        }
        return Ok(Mounted { rootfs });
    }
    let existed = dir.join("upper").exists();
    for sub in ["upper", "work", "rootfs"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|e| io_err("mkdir", &p, e))?;
    }
    let rec = ContainerLayers {
        image: img.id.clone(),
        layers: img.layers.clone(),
        rootfs: rootfs.clone(),
    };
    write_atomic(
        &record_path,
        &serde_json::to_vec_pretty(&rec).expect("record serializes"),
    )
    .map_err(|e| io_err("write", &record_path, e))?;
    if let Err(e) = overlay(layout, &img.layer_hexes(), &dir) {
        // Undo: the record, and the dirs when this call made them.
        let _ = std::fs::remove_file(&record_path);
        if !existed {
            for sub in ["upper", "work", "rootfs"] {
                let _ = std::fs::remove_dir_all(dir.join(sub));
            }
        }
        return Err(e);
    }
    Ok(Mounted { rootfs })
}

/// The overlay mount itself. Options that do not fit in one page (many
/// layers) go through the new mount API, one `lowerdir+` per layer; on a
/// kernel without it (< 6.8), through paths relative to the layer dir.
fn overlay(layout: &Layout, hexes: &[&str], dir: &Path) -> Result<()> {
    let rootfs = dir.join("rootfs");
    let upper = dir.join("upper");
    let work = dir.join("work");
    let layers = layout.layers_dir();
    let lower: Vec<PathBuf> = hexes.iter().rev().map(|h| layers.join(h)).collect();
    let joined: Vec<String> = lower
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        joined.join(":"),
        upper.display(),
        work.display()
    );
    let mount_err = |e: io::Error| io_err("mount overlay on", &rootfs, e);
    if data.len() < 4000 {
        return mount(
            Some("overlay"),
            &rootfs,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| mount_err(e.into()));
    }
    if overlay_fsconfig(&lower, &upper, &work, &rootfs).is_ok() {
        return Ok(());
    }
    let rel: Vec<&str> = hexes.iter().rev().copied().collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        rel.join(":"),
        upper.display(),
        work.display()
    );
    let cwd = std::env::current_dir().map_err(|e| io_err("getcwd", Path::new("."), e))?;
    std::env::set_current_dir(&layers).map_err(|e| io_err("chdir", &layers, e))?;
    let res = mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    );
    let _ = std::env::set_current_dir(cwd);
    res.map_err(|e| mount_err(e.into()))
}

/// fsopen + fsconfig(`lowerdir+` per layer) + fsmount + move_mount.
fn overlay_fsconfig(lower: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
    let cstr = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let check = |r: libc::c_long| {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    };
    // SAFETY: raw syscalls with NUL-terminated strings that outlive the
    // calls; returned fds are owned right away.
    unsafe {
        let fs = check(libc::syscall(
            libc::SYS_fsopen,
            c"overlay".as_ptr(),
            FSOPEN_CLOEXEC,
        ))?;
        let fs = OwnedFd::from_raw_fd(fs as i32);
        let set = |key: &std::ffi::CStr, val: &CString| {
            check(libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                val.as_ptr(),
                0,
            ))
        };
        for l in lower {
            set(c"lowerdir+", &cstr(l)?)?;
        }
        set(c"upperdir", &cstr(upper)?)?;
        set(c"workdir", &cstr(work)?)?;
        check(libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        ))?;
        let m = check(libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            0,
        ))?;
        let m = OwnedFd::from_raw_fd(m as i32);
        let t = cstr(target)?;
        check(libc::syscall(
            libc::SYS_move_mount,
            m.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        ))?;
    }
    Ok(())
}

/// Unmounts the rootfs of `id` (every stacked mount), keeping its upper dir.
/// Not mounted, or no such container: success.
pub fn umount_rootfs(layout: &Layout, id: &str) -> Result<()> {
    check_id(id)?;
    let rootfs = layout.container(id).join("rootfs");
    for _ in 0..16 {
        if !is_mounted(&rootfs) {
            return Ok(());
        }
        match umount2(&rootfs, MntFlags::empty()) {
            Ok(()) => {}
            Err(nix::errno::Errno::EBUSY) => {
                // Still in use (a process cwd, a bind): detach it instead.
                umount2(&rootfs, MntFlags::MNT_DETACH)
                    .map_err(|e| io_err("umount", &rootfs, e.into()))?
            }
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(io_err("umount", &rootfs, e.into())),
        }
    }
    Ok(())
}

/// Unmounts and deletes upper, work, rootfs and layerfs.json of `id`;
/// the container dir itself stays (other tools keep files there).
pub fn remove_rootfs(layout: &Layout, id: &str) -> Result<()> {
    umount_rootfs(layout, id)?;
    let dir = layout.container(id);
    for sub in ["rootfs", "work", "upper"] {
        let p = dir.join(sub);
        match std::fs::remove_dir_all(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err("remove", &p, e)),
            _ => {}
        }
    }
    let _ = std::fs::remove_file(dir.join(crate::volume::RECORD));
    let rec = dir.join(RECORD);
    match std::fs::remove_file(&rec) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &rec, e)),
        _ => Ok(()),
    }
}

/// The record of container dir `dir`.
pub fn read_record(dir: &Path) -> io::Result<ContainerLayers> {
    let b = std::fs::read(dir.join(RECORD))?;
    serde_json::from_slice(&b).map_err(io::Error::other)
}

/// Every container record in the store: (container id, record).
pub fn records(layout: &Layout) -> Vec<(String, ContainerLayers)> {
    let Ok(rd) = std::fs::read_dir(layout.containers()) else {
        return vec![];
    };
    let mut out: Vec<_> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            Some((
                e.file_name().to_string_lossy().into_owned(),
                read_record(&e.path()).ok()?,
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// True when `path` is a mount point in this mount namespace (an unreadable
/// mount table counts as not mounted, as a missing rootfs does).
pub fn is_mounted(path: &Path) -> bool {
    mountinfo::is_mount_point(path).unwrap_or(false)
}

fn io_err(step: &'static str, path: &Path, source: io::Error) -> MountError {
    MountError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_path_safe() {
        assert!(check_id("abc-1_2.3").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(129)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
