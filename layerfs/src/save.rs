//! `save IMAGE... -o FILE`: images as a `docker save` tarball whose layer
//! tars are rebuilt byte for byte from their tar-split records, so `load`
//! reads back the same image ids and diff ids.
//!
//! The archive is laid out as docker >= 25 saves: every blob once under
//! `blobs/sha256/<hex>` (layer tars, configs, manifests), `manifest.json`
//! and `repositories` naming them for older loaders, and an OCI layout
//! (`oci-layout`, `index.json`) with one image manifest per image, so
//! the image has a manifest digest: `load` records it as
//! `NAME@sha256:...` in RepoDigests. The manifest is serialized the same
//! way every time (Go's field order, compact), so a save of what such a
//! load gave has the same digest: RepoDigests survive save/load round
//! trips. (An image first loaded with compressed layers had a manifest
//! that named those blobs; they are not kept, so its first save gets a
//! new digest, as docker's own classic store loses it altogether.)

use crate::beneath;
use crate::digest::HashReader;
use crate::index::{ImageRecord, Index, IndexError};
use crate::layout::Layout;
use crate::output::{Output, OutputError};
use crate::reference;
use crate::split::{self, Segment};
use nix::fcntl::OFlag;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("layer {layer}: cannot rebuild its tar: {why}")]
    Rebuild { layer: String, why: String },
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, SaveError>;

/// What `save` prints.
#[derive(Debug, Serialize)]
pub struct Saved {
    pub output: PathBuf,
    pub ids: Vec<String>,
    pub size: u64,
}

/// Writes `images` (any reference form) to `out` (see `output`: stdout
/// when `None` or `-`; a new or regular file whole or not at all; any
/// other path written through).
pub fn save(layout: &Layout, images: &[String], out: Option<&Path>) -> Result<Saved> {
    let index = Index::load(layout)?;
    // Resolve everything before writing anything.
    let mut picked: Vec<(ImageRecord, Vec<String>)> = Vec::new();
    for r in images {
        let img = index.resolve(r)?.clone();
        let tags = match reference::normalize(r)
            .ok()
            .filter(|t| img.repo_tags.contains(t))
        {
            Some(t) => vec![t],
            None => img.repo_tags.clone(),
        };
        match picked.iter_mut().find(|(i, _)| i.id == img.id) {
            Some((_, ts)) => ts.extend(
                tags.into_iter()
                    .filter(|t| !ts.contains(t))
                    .collect::<Vec<_>>(),
            ),
            None => picked.push((img, tags)),
        }
    }
    let target = Output::open(out)?;
    let shown = target.name();
    let io_err = |step, source| SaveError::Io {
        step,
        path: shown.clone(),
        source,
    };
    let f = target.file().map_err(|e| io_err("dup", e))?;
    let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, Counted { w: f, n: 0 }));
    let mut written = HashSet::new();
    let mut manifest = Vec::new();
    let mut index = Vec::new();
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (img, tags) in &picked {
        let hex = &img.id["sha256:".len()..];
        let mut paths = Vec::new();
        for l in img.layer_hexes() {
            let p = format!("blobs/sha256/{l}");
            if written.insert(l.to_string()) {
                let n = layer_tar(layout, l, &p, &mut b, &shown)?;
                sizes.insert(l.to_string(), n);
            }
            paths.push(p);
        }
        let blob = layout.config_blob(hex);
        let config = std::fs::read(&blob).map_err(|source| SaveError::Io {
            step: "read",
            path: blob,
            source,
        })?;
        let config_path = format!("blobs/sha256/{hex}");
        if written.insert(hex.to_string()) {
            append(&mut b, &config_path, &config).map_err(|e| io_err("write", e))?;
        }
        let layers: Vec<(&str, u64)> = img
            .layer_hexes()
            .into_iter()
            .map(|l| (l, sizes.get(l).copied().unwrap_or(0)))
            .collect();
        let m = oci_manifest(hex, config.len() as u64, &layers);
        let m_hex = crate::digest::sha256_of(m.as_bytes());
        let m_hex = m_hex.trim_start_matches("sha256:").to_string();
        if written.insert(m_hex.clone()) {
            append(&mut b, &format!("blobs/sha256/{m_hex}"), m.as_bytes())
                .map_err(|e| io_err("write", e))?;
        }
        let desc = |ann: Option<serde_json::Value>| {
            let mut d = json!({"mediaType": MANIFEST, "digest": format!("sha256:{m_hex}"), "size": m.len()});
            if let Some(a) = ann {
                d["annotations"] = a;
            }
            d
        };
        if tags.is_empty() {
            index.push(desc(None));
        }
        for t in tags {
            let full = reference::qualified(t);
            let tag = t.rsplit_once(':').map_or("latest", |(_, tag)| tag);
            index.push(desc(Some(json!({
                "io.containerd.image.name": full,
                "org.opencontainers.image.ref.name": tag,
            }))));
        }
        manifest.push(json!({"Config": config_path, "RepoTags": tags, "Layers": paths}));
        for t in tags {
            if let (Some((n, tag)), Some(top)) = (t.rsplit_once(':'), img.layer_hexes().last()) {
                repos
                    .entry(n.into())
                    .or_default()
                    .insert(tag.into(), top.to_string());
            }
        }
    }
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(|e| io_err("write", e))?;
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": index});
    append(
        &mut b,
        "index.json",
        &serde_json::to_vec(&index).expect("json"),
    )
    .map_err(|e| io_err("write", e))?;
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    )
    .map_err(|e| io_err("write", e))?;
    append(
        &mut b,
        "repositories",
        &serde_json::to_vec(&repos).expect("json"),
    )
    .map_err(|e| io_err("write", e))?;
    let w = b.into_inner().map_err(|e| io_err("write", e))?;
    let size = w
        .into_inner()
        .map_err(|e| io_err("write", e.into_error()))?
        .n;
    // Dropping `target` on an error above removes a temp file.
    target.finish(true)?;
    Ok(Saved {
        output: shown,
        ids: picked.iter().map(|(i, _)| i.id.clone()).collect(),
        size,
    })
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The OCI image manifest of a saved image, written by hand in Go's field
/// order (what docker's `json.Marshal` gives), so the same image always
/// has the same manifest digest.
fn oci_manifest(config_hex: &str, config_size: u64, layers: &[(&str, u64)]) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(hex, size)| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{hex}","size":{size}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config_hex}","size":{config_size}}},"layers":[{}]}}"#,
        layers.join(",")
    )
}

/// A writer that counts what it writes (a pipe has no size to stat).
struct Counted<W> {
    w: W,
    n: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let k = self.w.write(b)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

fn append<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    b.append_data(&mut h, path, data)
}

/// Appends layer `hex`'s rebuilt tar as `path`, checking its digest;
/// returns its size.
fn layer_tar<W: Write>(
    layout: &Layout,
    hex: &str,
    path: &str,
    b: &mut tar::Builder<W>,
    out: &Path,
) -> Result<u64> {
    let rebuild = |why: String| SaveError::Rebuild {
        layer: format!("sha256:{hex}"),
        why,
    };
    let segs = split::read(&layout.layer_split(hex))
        .map_err(|e| rebuild(format!("tar-split record: {e}")))?;
    let size: u64 = segs
        .iter()
        .map(|s| match s {
            Segment::Raw(b) => b.len() as u64,
            Segment::File { len, .. } => *len,
        })
        .sum();
    let root =
        File::open(layout.layer(hex)).map_err(|e| rebuild(format!("open layer dir: {e}")))?;
    let mut hashed = HashReader::new(Rebuilt {
        segs: segs.into_iter(),
        cur: None,
        root,
        err: None,
    });
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    b.append_data(&mut h, path, &mut hashed)
        .map_err(|e| match hashed_err(&e) {
            // The layer could not be read back: its content is the problem.
            true => rebuild(e.to_string()),
            false => SaveError::Io {
                step: "write",
                path: out.into(),
                source: e,
            },
        })?;
    let (digest, n) = hashed.finish().map_err(|e| rebuild(e.to_string()))?;
    if n != size || digest != format!("sha256:{hex}") {
        return Err(rebuild(format!(
            "content changed: rebuilt {digest} ({n} bytes)"
        )));
    }
    Ok(size)
}

/// Whether an error of `append_data` came from reading the layer (a
/// `Rebuilt` error is `Other`) rather than from writing the output.
fn hashed_err(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Other
}

/// The layer tar as a stream: raw segments from the record, file contents
/// from the layer dir (opened beneath it, never through a symlink).
struct Rebuilt {
    segs: std::vec::IntoIter<Segment>,
    cur: Option<Box<dyn Read>>,
    root: File,
    err: Option<String>,
}

impl Read for Rebuilt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(r) = &mut self.cur {
                let n = r.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.cur = None;
            }
            match self.segs.next() {
                None => return Ok(0),
                Some(Segment::Raw(b)) => self.cur = Some(Box::new(io::Cursor::new(b))),
                Some(Segment::File { path, len }) => {
                    let p = std::ffi::OsStr::from_bytes(&path);
                    let fd = beneath::open(self.root.as_fd(), p, OFlag::O_RDONLY).map_err(|e| {
                        let msg = format!("{}: {e}", Path::new(p).display());
                        self.err = Some(msg.clone());
                        io::Error::other(msg)
                    })?;
                    // A short file reads short: the length check catches it.
                    self.cur = Some(Box::new(File::from(fd).take(len)));
                }
            }
        }
    }
}
