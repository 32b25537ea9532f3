//! Image operations on the index: list, inspect, tag, remove.

use crate::atomic::Lock;
use crate::index::{ImageRecord, Index, IndexError};
use crate::layer::{self, LayerError};
use crate::layout::Layout;
use crate::mount;
use crate::reference::{self, ReferenceError};
use serde::Serialize;
use std::collections::HashSet;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("image {image} is in use by container {container} (use --force)")]
    InUse { image: String, container: String },
    #[error("image {image} has several tags ({tags}): remove them by name, or use --force")]
    MultipleTags { image: String, tags: String },
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, ImageError>;

/// What `rmi` prints.
#[derive(Debug, Default, Serialize)]
pub struct Removed {
    pub untagged: Vec<String>,
    pub deleted: Vec<String>,
}

/// What `tag` prints.
#[derive(Debug, Serialize)]
pub struct Tagged {
    pub id: String,
    pub tagged: String,
}

/// `images`: the records without their config, newest first.
pub fn list(layout: &Layout) -> Result<Vec<serde_json::Value>> {
    let index = Index::load(layout)?;
    let mut imgs: Vec<&ImageRecord> = index.images.values().collect();
    imgs.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(imgs
        .into_iter()
        .map(|i| {
            serde_json::json!({
                "id": i.id, "repoTags": i.repo_tags, "repoDigests": i.repo_digests, "created": i.created, "size": i.size, "layers": i.layers,
            })
        })
        .collect())
}

/// `inspect IMAGE`: the whole record.
pub fn inspect(layout: &Layout, image: &str) -> Result<ImageRecord> {
    Ok(Index::load(layout)?.resolve(image)?.clone())
}

/// `tag SOURCE TARGET`.
pub fn tag(layout: &Layout, source: &str, target: &str) -> Result<Tagged> {
    let target = reference::normalize(target)?;
    let _lock = lock(layout)?;
    let mut index = Index::load(layout)?;
    let id = index.resolve(source)?.id.clone();
    index.tag(&id, &target);
    index.save(layout)?;
    Ok(Tagged { id, tagged: target })
}

/// `rmi IMAGE [--force]`: by tag, removes that tag, and the image with its
/// last tag; by id, the image. Refused while a container uses the image,
/// unless forced. Layers no image or container uses any more are deleted.
pub fn remove(layout: &Layout, image: &str, force: bool) -> Result<Removed> {
    let _lock = lock(layout)?;
    let mut index = Index::load(layout)?;
    let img = index.resolve(image)?.clone();
    let by_tag = reference::normalize(image)
        .ok()
        .filter(|t| img.repo_tags.contains(t));
    let mut out = Removed::default();
    if let Some(t) = &by_tag {
        if img.repo_tags.len() > 1 {
            let rec = index.images.get_mut(&img.id).expect("resolved");
            rec.repo_tags.retain(|x| x != t);
            // A name with no tag left loses its digests too (as docker).
            let name = |r: &str| match r.split_once('@') {
                Some((n, _)) => Some(n.to_string()),
                None => r.rsplit_once(':').map(|(n, _)| n.to_string()),
            };
            let left: Vec<_> = rec.repo_tags.iter().filter_map(|x| name(x)).collect();
            rec.repo_digests
                .retain(|x| name(x).is_some_and(|n| left.contains(&n)));
            index.save(layout)?;
            out.untagged.push(t.clone());
            return Ok(out);
        }
    } else if img.repo_tags.len() > 1 && !force {
        return Err(ImageError::MultipleTags {
            image: image.into(),
            tags: img.repo_tags.join(", "),
        });
    }
    let records = mount::records(layout);
    if !force {
        if let Some((cid, _)) = records.iter().find(|(_, r)| r.image == img.id) {
            return Err(ImageError::InUse {
                image: image.into(),
                container: cid.clone(),
            });
        }
    }
    index.images.remove(&img.id);
    index.save(layout)?;
    out.untagged = img.repo_tags.clone();
    out.deleted.push(img.id.clone());
    let _ = std::fs::remove_file(layout.config_blob(&img.id["sha256:".len()..]));
    let in_use: HashSet<&String> = records.iter().flat_map(|(_, r)| r.layers.iter()).collect();
    for diff_id in &img.layers {
        if index.layer_used(diff_id, &img.id)
            || in_use.contains(diff_id)
            || out.deleted.contains(diff_id)
        {
            continue;
        }
        layer::remove(layout, &diff_id["sha256:".len()..])?;
        out.deleted.push(diff_id.clone());
    }
    Ok(out)
}

/// One row of `history`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    pub created: String,
    pub created_by: String,
    pub comment: String,
    pub empty_layer: bool,
    /// The diff id this step added, None for an empty layer.
    pub layer: Option<String>,
    pub size: u64,
}

/// `history IMAGE`: the config's history, newest first, each step paired
/// with the layer it added (steps with `empty_layer` add none).
pub fn history(layout: &Layout, image: &str) -> Result<Vec<HistoryRow>> {
    let img = inspect(layout, image)?;
    let hist = img
        .config
        .get("history")
        .and_then(|h| h.as_array())
        .cloned()
        .unwrap_or_default();
    let mut layers = img.layers.iter();
    let mut rows = Vec::new();
    for h in &hist {
        let s = |k: &str| {
            h.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let empty = h
            .get("empty_layer")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let layer = if empty { None } else { layers.next().cloned() };
        let size = layer
            .as_deref()
            .map(|l| layer::size(layout, l.strip_prefix("sha256:").unwrap_or(l)))
            .unwrap_or(0);
        rows.push(HistoryRow {
            created: s("created"),
            created_by: s("created_by"),
            comment: s("comment"),
            empty_layer: empty,
            layer,
            size,
        });
    }
    // Layers without a history entry (hand-made configs) still show up.
    for l in layers {
        let size = layer::size(layout, l.strip_prefix("sha256:").unwrap_or(l));
        rows.push(HistoryRow {
            created: String::new(),
            created_by: String::new(),
            comment: String::new(),
            empty_layer: false,
            layer: Some(l.clone()),
            size,
        });
    }
    rows.reverse();
    Ok(rows)
}

fn lock(layout: &Layout) -> Result<Lock> {
    crate::atomic::take_lock(&layout.lock(), true).map_err(|source| ImageError::Io {
        step: "lock",
        path: layout.lock(),
        source,
    })
}
