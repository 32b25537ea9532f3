//! `load`: a `docker save` tarball into the store.
//!
//! The outer tar is scanned once for its member offsets (seeking over the
//! data); then each needed layer is streamed from its offset straight into
//! the extractor, hashed on the way.

use crate::digest::sha256_of;
use crate::index::{ImageRecord, Index, IndexError};
use crate::layer::{self, LayerError};
use crate::layout::Layout;
use crate::reference::{self, ReferenceError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: {why}")]
    Format { file: String, why: String },
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, LoadError>;

/// What `load` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Loaded {
    pub loaded: Vec<String>,
    pub ids: Vec<String>,
    /// Ids of the images loaded without any tag.
    pub untagged: Vec<String>,
}

#[derive(Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// A member of the outer tarball: where its data starts and how long it is.
#[derive(Clone, Copy)]
struct Member {
    offset: u64,
    size: u64,
}

/// The outer tarball's table of contents.
pub(crate) struct Archive {
    file: Option<File>,
    /// Set when the image is an unpacked directory instead of a tarball.
    dir: Option<PathBuf>,
    name: String,
    members: HashMap<String, Member>,
    links: HashMap<String, String>,
}

impl Archive {
    pub(crate) fn open(path: &Path) -> Result<Archive> {
        let name = path.display().to_string();
        if path.is_dir() {
            return Ok(Archive {
                file: None,
                dir: Some(path.to_path_buf()),
                name,
                members: HashMap::new(),
                links: HashMap::new(),
            });
        }
        let file = File::open(path).map_err(|source| LoadError::Io {
            step: "open",
            path: path.into(),
            source,
        })?;
        Archive::from_file(file, name)
    }

    /// A tarball already open (from its start), named `name` in messages.
    pub(crate) fn from_file(file: File, name: String) -> Result<Archive> {
        let mut members = HashMap::new();
        let mut links = HashMap::new();
        {
            let mut ar = tar::Archive::new(&file);
            // The tar reader's message may quote the bytes it choked on.
            let fmt = |e: io::Error| LoadError::Format {
                file: name.clone(),
                why: match crate::printable(&e.to_string()) {
                    m if m == e.to_string() => {
                        format!("not a tar archive (nor gzip, bzip2, xz or zstd): {m}")
                    }
                    _ => "not a tar archive (nor gzip, bzip2, xz or zstd)".to_string(),
                },
            };
            for e in ar.entries_with_seek().map_err(fmt)? {
                let e = e.map_err(fmt)?;
                let p = norm(&e.path().map_err(fmt)?);
                match e.header().entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        members.insert(
                            p,
                            Member {
                                offset: e.raw_file_position(),
                                size: e.size(),
                            },
                        );
                    }
                    tar::EntryType::Symlink => {
                        // Old docker saves link duplicate layer.tar files.
                        if let Ok(Some(t)) = e.link_name() {
                            let base = Path::new(&p).parent().unwrap_or(Path::new("")).join(t);
                            links.insert(p, norm(&base));
                        }
                    }
                    tar::EntryType::Link => {
                        if let Ok(Some(t)) = e.link_name() {
                            links.insert(p, norm(&t));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Archive {
            file: Some(file),
            dir: None,
            name,
            members,
            links,
        })
    }

    fn member(&self, path: &str) -> Result<Member> {
        let mut p = norm(Path::new(path));
        if let Some(dir) = &self.dir {
            // Paths come from the image's own JSON: keep them inside its dir.
            let inside = Path::new(path)
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
            let meta = std::fs::symlink_metadata(dir.join(&p))
                .ok()
                .filter(|m| m.is_file());
            return match (inside, meta) {
                (true, Some(m)) => Ok(Member {
                    offset: 0,
                    size: m.len(),
                }),
                _ => Err(LoadError::Format {
                    file: self.name.clone(),
                    why: format!("{path} is missing from the image dir"),
                }),
            };
        }
        for _ in 0..8 {
            if let Some(m) = self.members.get(&p) {
                return Ok(*m);
            }
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        Err(LoadError::Format {
            file: self.name.clone(),
            why: format!("{path} is missing from the archive"),
        })
    }

    pub(crate) fn has(&self, path: &str) -> bool {
        self.member(path).is_ok()
    }

    /// A reader over one member's bytes.
    pub(crate) fn open_member(&self, path: &str) -> Result<Box<dyn Read + Send + '_>> {
        let m = self.member(path)?;
        if let Some(dir) = &self.dir {
            let p = dir.join(norm(Path::new(path)));
            let f = File::open(&p).map_err(|source| LoadError::Io {
                step: "open",
                path: p,
                source,
            })?;
            return Ok(Box::new(f.take(m.size)));
        }
        let mut f = self.file.as_ref().expect("a tarball has its file");
        f.seek(SeekFrom::Start(m.offset))
            .map_err(|source| LoadError::Io {
                step: "seek",
                path: self.name.clone().into(),
                source,
            })?;
        Ok(Box::new(f.take(m.size)))
    }

    /// A small member (manifest, config) read whole.
    pub(crate) fn read_small(&self, path: &str) -> Result<Vec<u8>> {
        let m = self.member(path)?;
        if m.size > 64 << 20 {
            return Err(LoadError::Format {
                file: self.name.clone(),
                why: format!("{path} is too large ({} bytes)", m.size),
            });
        }
        let mut buf = Vec::with_capacity(m.size as usize);
        self.open_member(path)?
            .read_to_end(&mut buf)
            .map_err(|source| LoadError::Io {
                step: "read",
                path: format!("{}:{path}", self.name).into(),
                source,
            })?;
        Ok(buf)
    }

    pub(crate) fn format_err(&self, why: String) -> LoadError {
        LoadError::Format {
            file: self.name.clone(),
            why,
        }
    }
}

/// `./a//b/` -> `a/b`.
fn norm(p: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.join("/")
}

/// One image to add, validated before anything is written.
pub(crate) struct Plan {
    pub config_bytes: Vec<u8>,
    pub config: Value,
    pub id: String,
    pub diff_ids: Vec<String>,
    /// Member path of each layer blob, bottom first.
    pub layer_paths: Vec<String>,
    pub tags: Vec<String>,
    /// Manifest digests (`sha256:<hex>`) the image was found under.
    pub digests: Vec<String>,
}

/// Loads a `docker save` tarball (or an OCI layout, see `oci`) at `path`.
pub fn load(layout: &Layout, path: &Path) -> Result<Loaded> {
    load_archive(layout, Archive::open(path)?)
}

fn load_archive(layout: &Layout, ar: Archive) -> Result<Loaded> {
    let plans = if ar.has("manifest.json") {
        docker_plans(&ar)?
    } else if ar.has("oci-layout") {
        crate::oci::plans(&ar)?
    } else {
        return Err(ar.format_err(
            "neither manifest.json (docker save) nor oci-layout (OCI layout) found".into(),
        ));
    };
    apply(layout, &ar, plans)
}

fn docker_plans(ar: &Archive) -> Result<Vec<Plan>> {
    let manifest: Vec<ManifestEntry> = serde_json::from_slice(&ar.read_small("manifest.json")?)
        .map_err(|e| ar.format_err(format!("manifest.json: {e}")))?;
    let mut plans = Vec::new();
    for m in manifest {
        let tags = m.repo_tags.unwrap_or_default();
        plans.push(plan(ar, &m.config, m.layers, &tags)?);
    }
    // docker >= 25 saves an OCI index beside manifest.json: the manifest
    // digests come from there (a broken one only costs the digests).
    if ar.has("index.json") {
        if let Ok(oci) = crate::oci::plans(ar) {
            for p in plans.iter_mut() {
                for o in oci.iter().filter(|o| o.id == p.id) {
                    p.digests.extend(o.digests.iter().cloned());
                }
            }
        }
    }
    Ok(plans)
}

/// Checks one image's config and layer list against each other.
pub(crate) fn plan(
    ar: &Archive,
    config_path: &str,
    layer_paths: Vec<String>,
    tags: &[String],
) -> Result<Plan> {
    let config_bytes = ar.read_small(config_path)?;
    let id = sha256_of(&config_bytes);
    // A config named by its digest (`<hex>.json`, `blobs/sha256/<hex>`) must match it.
    let stem = Path::new(config_path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem.len() == 64 && reference::is_hex(&stem) && stem != id["sha256:".len()..] {
        return Err(ar.format_err(format!(
            "config {config_path}: digest mismatch: content is {id}"
        )));
    }
    let config: Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| ar.format_err(format!("config {config_path}: {e}")))?;
    let diff_ids: Vec<String> = config
        .pointer("/rootfs/diff_ids")
        .and_then(|v| v.as_array())
        .ok_or_else(|| ar.format_err(format!("config {config_path}: no rootfs.diff_ids")))?
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    if let Some(bad) = diff_ids.iter().find(|d| reference::sha256_hex(d).is_none()) {
        return Err(ar.format_err(format!("config {config_path}: bad diff id {bad:?}")));
    }
    if diff_ids.len() != layer_paths.len() {
        return Err(ar.format_err(format!(
            "config {config_path} lists {} diff ids but the manifest {} layers",
            diff_ids.len(),
            layer_paths.len()
        )));
    }
    for p in &layer_paths {
        ar.member(p)?;
    }
    let tags = tags
        .iter()
        .map(|t| reference::normalize(t))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Plan {
        config_bytes,
        config,
        id,
        diff_ids,
        layer_paths,
        tags,
        digests: vec![],
    })
}

/// Stores the planned layers and images under the store lock; on failure
/// removes the layers this call added.
pub(crate) fn apply(layout: &Layout, ar: &Archive, plans: Vec<Plan>) -> Result<Loaded> {
    let _lock = crate::atomic::take_lock(&layout.lock(), true).map_err(|source| LoadError::Io {
        step: "lock",
        path: layout.lock(),
        source,
    })?;
    layer::sweep_tmp(layout);
    let mut added: Vec<String> = Vec::new();
    let res = (|| {
        let mut index = Index::load(layout)?;
        let mut out = Loaded {
            loaded: vec![],
            ids: vec![],
            untagged: vec![],
        };
        for p in &plans {
            let mut size = 0;
            for (diff_id, path) in p.diff_ids.iter().zip(&p.layer_paths) {
                let hex = &diff_id["sha256:".len()..];
                if layer::exists(layout, hex) {
                    size += layer::size(layout, hex);
                    continue;
                }
                let total = ar.member(path)?.size;
                let reader = crate::progress::wrap(ar.open_member(path)?, total, &hex[..12]);
                let (info, new) = layer::ensure(layout, reader, Some(diff_id), path)?;
                if new {
                    added.push(hex.to_string());
                }
                size += info.size;
            }
            let blob = layout.config_blob(&p.id["sha256:".len()..]);
            crate::atomic::write_atomic(&blob, &p.config_bytes).map_err(|source| {
                LoadError::Io {
                    step: "write",
                    path: blob,
                    source,
                }
            })?;
            let created = p
                .config
                .get("created")
                .and_then(|c| c.as_str())
                .unwrap_or_default()
                .to_string();
            let rec = index
                .images
                .entry(p.id.clone())
                .or_insert_with(|| ImageRecord {
                    id: p.id.clone(),
                    repo_tags: vec![],
                    repo_digests: vec![],
                    layers: p.diff_ids.clone(),
                    config: p.config.clone(),
                    created,
                    size,
                });
            rec.size = size;
            for t in &p.tags {
                let name = t.rsplit_once(':').map_or(t.as_str(), |(n, _)| n);
                for d in &p.digests {
                    let rd = format!("{name}@{d}");
                    if !rec.repo_digests.contains(&rd) {
                        rec.repo_digests.push(rd);
                    }
                }
            }
            for t in &p.tags {
                index.tag(&p.id, t);
                out.loaded.push(t.clone());
            }
            if p.tags.is_empty() && !out.untagged.contains(&p.id) {
                out.untagged.push(p.id.clone());
            }
            out.ids.push(p.id.clone());
        }
        index.save(layout)?;
        Ok(out)
    })();
    if res.is_err() {
        for hex in &added {
            let _ = layer::remove(layout, hex);
        }
    }
    res
}

/// `load` from a path, or from stdin (`None` or `-`); a compressed
/// archive or a pipe is spooled to a plain temp file first (see `input`),
/// because the table of contents needs seeking.
pub fn load_input(layout: &Layout, input: Option<&Path>) -> Result<Loaded> {
    if let Some(p) = input.filter(|p| p.is_dir()) {
        return load(layout, p);
    }
    let shown = input
        .filter(|p| *p != Path::new("-"))
        .unwrap_or(Path::new("stdin"));
    let src = crate::input::open(input, &layout.layers_tmp(), false).map_err(|source| {
        use io::ErrorKind as K;
        match source.kind() {
            // Corrupt or cut compressed data is bad input, not a failure.
            K::InvalidData | K::InvalidInput | K::UnexpectedEof => LoadError::Format {
                file: shown.display().to_string(),
                why: crate::printable(&source.to_string()),
            },
            _ => LoadError::Io {
                step: "read",
                path: shown.into(),
                source,
            },
        }
    })?;
    let ar = Archive::from_file(src.file, src.name)?;
    load_archive(layout, ar)
}
