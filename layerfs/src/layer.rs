//! The content-addressed layer store: `layers/sha256/<diff id hex>/`.

use crate::digest;
use crate::extract::{self, ExtractError};
use crate::layout::Layout;
use crate::split::{Recorder, SharedSplit, Split};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {layer}: {source}")]
    Extract { layer: String, source: ExtractError },
    #[error("layer {layer}: digest mismatch: the config says {expected}, the content is {actual}")]
    Mismatch {
        layer: String,
        expected: String,
        actual: String,
    },
    #[error("layer {layer}: {what} compressed layers are not supported")]
    Compression { layer: String, what: &'static str },
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, LayerError>;

/// A stored layer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerInfo {
    /// `sha256:<hex>` of the uncompressed layer tar.
    pub diff_id: String,
    /// Bytes of the uncompressed layer tar.
    pub size: u64,
}

/// True when the layer `hex` is already in the store.
pub fn exists(layout: &Layout, hex: &str) -> bool {
    layout.layer(hex).is_dir()
}

/// The recorded size of a stored layer (0 when its meta is missing).
pub fn size(layout: &Layout, hex: &str) -> u64 {
    std::fs::read(layout.layer_meta(hex))
        .ok()
        .and_then(|b| serde_json::from_slice::<LayerInfo>(&b).ok())
        .map(|i| i.size)
        .unwrap_or(0)
}

/// A temp dir under `layers/tmp` removed on drop unless kept.
pub struct TempLayer {
    path: PathBuf,
    keep: bool,
}

impl TempLayer {
    pub fn new(layout: &Layout) -> Result<TempLayer> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let tmp = layout.layers_tmp();
        std::fs::create_dir_all(&tmp).map_err(|e| io_err("mkdir", &tmp, e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = tmp.join(format!(
            "{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            nanos
        ));
        std::fs::create_dir(&path).map_err(|e| io_err("mkdir", &path, e))?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| io_err("chmod", &path, e))?;
        Ok(TempLayer { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tar-split record being written beside the temp dir.
    pub fn split_path(&self) -> PathBuf {
        self.path.with_extension("split")
    }
}

impl Drop for TempLayer {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
        let _ = std::fs::remove_file(self.split_path());
    }
}

/// Extracts a layer stream (a tar, plain or compressed) into the store, hashing the
/// uncompressed bytes on the way. With `expected` (a `sha256:` diff id) a
/// mismatch stores nothing; without it the layer is stored under whatever
/// digest it has. Returns whether it was newly stored.
///
/// Crash story: the layer is extracted in `layers/tmp/<pid>-...` and
/// renamed into `layers/sha256/` only once whole, after its meta (fsynced)
/// and split record; the extracted files themselves are not fsynced (tar
/// and docker do not either), so a crash can leave a layer whose recent
/// files lost data: `save` notices (the rebuilt digest must match). A
/// crash mid-extraction leaves a tmp entry the next load sweeps
/// (`sweep_tmp`: its writer pid is gone).
pub fn ensure<R: Read + Send>(
    layout: &Layout,
    reader: R,
    expected: Option<&str>,
    label: &str,
) -> Result<(LayerInfo, bool)> {
    let mut raw = BufReader::with_capacity(1 << 20, reader);
    let head = raw
        .fill_buf()
        .map_err(|e| io_err("read", Path::new(label), e))?;
    // Layers come plain, gzip or zstd (OCI), or bzip2 / xz (docker's
    // DecompressStream takes those too).
    let decoded: Box<dyn Read + Send> = crate::input::Compression::detect(head)
        .decoder(raw)
        .map_err(|e| io_err("decompress", Path::new(label), e))?;
    let tmp = TempLayer::new(layout)?;
    let split_path = tmp.split_path();
    let split = Split::create(&split_path).map_err(|e| io_err("create", &split_path, e))?;
    // Reading, decompressing and hashing run on a second thread, ahead of
    // the extraction (which is mostly the kernel creating files).
    let (diff_id, size) = std::thread::scope(|sc| {
        let (ahead, hasher) = digest::read_ahead(sc, decoded);
        let mut rec = Recorder::new(ahead, split.clone());
        let unpacked = unpack_all(&mut rec, &tmp, &split, label);
        // Dropping the reader stops a thread still reading ahead.
        drop(rec);
        let digest = hasher.join();
        unpacked?;
        match digest {
            Ok(Some(d)) => Ok(d),
            _ => Err(io_err(
                "read",
                Path::new(label),
                io::Error::other("the hashing thread stopped before the end"),
            )),
        }
    })?;
    store(layout, tmp, &split, diff_id, size, expected, label)
}

/// Extracts the tar read from `rec` into `tmp`, then reads the rest of
/// the stream (a tar's trailing padding), which counts toward the digest
/// and belongs in the split record.
fn unpack_all<R: Read>(
    rec: &mut Recorder<R>,
    tmp: &TempLayer,
    split: &SharedSplit,
    label: &str,
) -> Result<()> {
    extract::unpack(&mut *rec, tmp.path(), Some(split.clone())).map_err(|source| {
        LayerError::Extract {
            layer: label.into(),
            source,
        }
    })?;
    io::copy(rec, &mut io::sink()).map_err(|e| io_err("read", Path::new(label), e))?;
    Ok(())
}

/// Checks the digest, then moves the extracted layer and its records into
/// the store (or leaves them when the layer is there already).
fn store(
    layout: &Layout,
    tmp: TempLayer,
    split: &SharedSplit,
    diff_id: String,
    size: u64,
    expected: Option<&str>,
    label: &str,
) -> Result<(LayerInfo, bool)> {
    let split_path = tmp.split_path();
    split
        .borrow_mut()
        .finish()
        .map_err(|e| io_err("write", &split_path, e))?;
    if let Some(expected) = expected {
        if expected != diff_id {
            return Err(LayerError::Mismatch {
                layer: label.into(),
                expected: expected.into(),
                actual: diff_id,
            });
        }
    }
    let info = LayerInfo { diff_id, size };
    let hex = &info.diff_id["sha256:".len()..];
    let dest = layout.layer(hex);
    if dest.is_dir() {
        return Ok((info, false));
    }
    std::fs::create_dir_all(layout.layers_dir())
        .map_err(|e| io_err("mkdir", &layout.layers_dir(), e))?;
    let meta = layout.layer_meta(hex);
    crate::atomic::write_atomic(&meta, &serde_json::to_vec(&info).unwrap_or_default())
        .map_err(|e| io_err("write", &meta, e))?;
    let split_dest = layout.layer_split(hex);
    std::fs::rename(&split_path, &split_dest).map_err(|e| io_err("rename", &split_dest, e))?;
    match std::fs::rename(tmp.path(), &dest) {
        Ok(()) => {}
        // Stored meanwhile by someone else: theirs is as good as ours.
        Err(e) if dest.is_dir() => {
            let _ = e;
            return Ok((info, false));
        }
        Err(e) => return Err(io_err("rename", &dest, e)),
    }
    let mut tmp = tmp;
    tmp.keep = true;
    Ok((info, true))
}

/// Removes what crashed writers left in `layers/tmp`: entries whose
/// writer pid (in the name) is gone. The caller holds the store lock.
pub fn sweep_tmp(layout: &Layout) {
    let Ok(rd) = std::fs::read_dir(layout.layers_tmp()) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .split(['-', '.'])
            .find_map(|p| p.parse::<i32>().ok().filter(|p| *p > 0));
        let Some(pid) = pid else { continue };
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let p = e.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// Removes a layer and its meta; already gone succeeds.
pub fn remove(layout: &Layout, hex: &str) -> Result<()> {
    let dir = layout.layer(hex);
    // Rename first so a half-deleted layer is never visible under its name.
    let tmp = layout
        .layers_tmp()
        .join(format!("rm-{hex}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(layout.layers_tmp());
    match std::fs::rename(&dir, &tmp) {
        Ok(()) => std::fs::remove_dir_all(&tmp).map_err(|e| io_err("remove", &tmp, e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("rename", &dir, e)),
    }
    let _ = std::fs::remove_file(layout.layer_split(hex));
    match std::fs::remove_file(layout.layer_meta(hex)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(io_err("remove", &layout.layer_meta(hex), e))
        }
        _ => Ok(()),
    }
}

fn io_err(step: &'static str, path: &Path, source: io::Error) -> LayerError {
    LayerError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}
