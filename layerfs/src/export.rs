//! `export ID -o FILE`: a container's merged rootfs as one flat tar.

use crate::layout::Layout;
use crate::mount::{self, MountError};
use crate::pack::{self, PackError};
use serde::Serialize;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("container {0} has no rootfs made by layerfs (no layerfs.json)")]
    NoContainer(String),
    #[error(transparent)]
    Pack(#[from] PackError),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// What `export` prints.
#[derive(Debug, Serialize)]
pub struct Exported {
    pub id: String,
    pub output: PathBuf,
    pub size: u64,
}

/// Writes the merged rootfs of container `id` to `out`: a temp file in the
/// same dir renamed into place, so `out` is whole or absent. Like `docker
/// export`, the data is not fsynced unless `sync` (then the file and its
/// dir are). A rootfs that is not mounted is mounted for the export and
/// unmounted after.
pub fn export(layout: &Layout, id: &str, out: &Path, sync: bool) -> Result<Exported, ExportError> {
    mount::check_id(id)?;
    let dir = layout.container(id);
    let rec = mount::read_record(&dir).map_err(|_| ExportError::NoContainer(id.into()))?;
    let rootfs = dir.join("rootfs");
    let was_mounted = mount::is_mounted(&rootfs);
    if !was_mounted {
        mount::mount_rootfs(layout, &rec.image, id)?;
    }
    let res = write(&rootfs, out, sync);
    if !was_mounted {
        mount::umount_rootfs(layout, id)?;
    }
    let size = res?;
    Ok(Exported {
        id: id.into(),
        output: std::path::absolute(out).unwrap_or(out.into()),
        size,
    })
}

fn write(rootfs: &Path, out: &Path, sync: bool) -> Result<u64, ExportError> {
    let io_err = |step, source| ExportError::Io {
        step,
        path: out.to_path_buf(),
        source,
    };
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| {
        let f = File::create(&tmp).map_err(|e| io_err("create", e))?;
        let f = pack::pack_file(rootfs, f, false)?;
        if sync {
            f.sync_all().map_err(|e| io_err("fsync", e))?;
        }
        let size = f.metadata().map_err(|e| io_err("stat", e))?.len();
        std::fs::rename(&tmp, out).map_err(|e| io_err("rename", e))?;
        if sync {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err("fsync dir of", e))?;
        }
        Ok(size)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}
