//! `export ID [-o FILE]`: a container's merged rootfs as one flat tar.

use crate::layout::Layout;
use crate::mount::{self, MountError};
use crate::output::{Output, OutputError};
use crate::pack::{self, PackError};
use serde::Serialize;
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
    #[error(transparent)]
    Output(#[from] OutputError),
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

/// Writes the merged rootfs of container `id` to `out` (see `output`:
/// stdout when `None` or `-`; a new or regular file whole or not at all,
/// through a temp file in its dir; any other path written through). Like
/// `docker export`, the data is not fsynced unless `sync`. A rootfs that
/// is not mounted is mounted for the export and unmounted after.
pub fn export(
    layout: &Layout,
    id: &str,
    out: Option<&Path>,
    sync: bool,
) -> Result<Exported, ExportError> {
    mount::check_id(id)?;
    let dir = layout.container(id);
    let rec = mount::read_record(&dir).map_err(|_| ExportError::NoContainer(id.into()))?;
    // The output is opened (a terminal refused) before anything is mounted.
    let target = Output::open(out)?;
    let rootfs = dir.join("rootfs");
    let was_mounted = mount::is_mounted(&rootfs);
    if !was_mounted {
        mount::mount_rootfs(layout, &rec.image, id)?;
    }
    let res = write(&rootfs, &target);
    if !was_mounted {
        mount::umount_rootfs(layout, id)?;
    }
    let size = res?;
    let output = target.name();
    target.finish(sync)?;
    Ok(Exported {
        id: id.into(),
        output,
        size,
    })
}

fn write(rootfs: &Path, target: &Output) -> Result<u64, ExportError> {
    let f = target.file().map_err(|source| ExportError::Io {
        step: "dup",
        path: target.name(),
        source,
    })?;
    let (_, size) = pack::pack_file_counted(rootfs, f, false)?;
    Ok(size)
}
