//! The image index `images/index.json`: image id -> tags, layers, config.
//! Writers hold the store lock (`images/index.lock`) and replace the file
//! atomically; readers just read it.

use crate::layout::Layout;
use crate::reference::{self, ReferenceError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("image reference {0} is ambiguous: it matches {1} images")]
    Ambiguous(String, usize),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

type Result<T> = std::result::Result<T, IndexError>;

/// One image as recorded and as printed by `images` / `inspect`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// `sha256:<hex of the config blob>`.
    pub id: String,
    #[serde(default)]
    pub repo_tags: Vec<String>,
    /// `name@sha256:<manifest digest>` for each manifest this image was
    /// loaded from (OCI layout, or a `docker save` that names one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
    /// Diff ids, bottom layer first.
    #[serde(default)]
    pub layers: Vec<String>,
    /// The image config JSON as loaded.
    #[serde(default)]
    pub config: Value,
    #[serde(default)]
    pub created: String,
    /// Sum of the uncompressed layer sizes, in bytes.
    #[serde(default)]
    pub size: u64,
}

impl ImageRecord {
    /// The hex digests of the layers, bottom first.
    pub fn layer_hexes(&self) -> Vec<&str> {
        self.layers
            .iter()
            .map(|l| l.strip_prefix("sha256:").unwrap_or(l))
            .collect()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Index {
    #[serde(default)]
    pub images: BTreeMap<String, ImageRecord>,
}

impl Index {
    /// Reads the index; a missing file is an empty index.
    pub fn load(layout: &Layout) -> Result<Index> {
        let path = layout.index();
        match std::fs::read(&path) {
            Ok(b) => {
                let mut ix: Index = serde_json::from_slice(&b)
                    .map_err(|source| IndexError::Parse { path, source })?;
                // Tags stored verbatim by older versions
                // (`docker.io/library/x:1`) read as their familiar form.
                for img in ix.images.values_mut() {
                    for t in img.repo_tags.iter_mut() {
                        if let Ok(n) = reference::normalize(t) {
                            *t = n;
                        }
                    }
                }
                Ok(ix)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(source) => Err(IndexError::Io {
                step: "read",
                path,
                source,
            }),
        }
    }

    /// Atomically replaces the index file (the caller holds the lock).
    pub fn save(&self, layout: &Layout) -> Result<()> {
        let path = layout.index();
        let bytes = serde_json::to_vec_pretty(self).expect("index serializes");
        crate::atomic::write_atomic(&path, &bytes).map_err(|source| IndexError::Io {
            step: "write",
            path,
            source,
        })
    }

    /// The image id `reference` names: a tag (`name` means `name:latest`),
    /// `sha256:<hex>`, or a unique prefix of an id's hex.
    pub fn resolve(&self, reference: &str) -> Result<&ImageRecord> {
        if let Some(img) = self.images.get(reference) {
            return Ok(img);
        }
        if let Some(d) = reference::digest_ref(reference) {
            let (name, digest) = d?;
            let want = format!("{name}@{digest}");
            return self
                .images
                .values()
                .find(|i| i.repo_digests.contains(&want))
                .ok_or_else(|| IndexError::NoSuchImage(reference.into()));
        }
        if let Ok(tag) = reference::normalize(reference) {
            if let Some(img) = self.images.values().find(|i| i.repo_tags.contains(&tag)) {
                return Ok(img);
            }
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if reference::is_hex(hex) {
            let hits: Vec<&ImageRecord> = self
                .images
                .values()
                .filter(|i| i.id["sha256:".len()..].starts_with(hex))
                .collect();
            match hits.len() {
                1 => return Ok(hits[0]),
                0 => {}
                n => return Err(IndexError::Ambiguous(reference.into(), n)),
            }
        }
        Err(IndexError::NoSuchImage(reference.into()))
    }

    /// Puts `tag` (normalized) on image `id`, taking it off any other image.
    /// Returns the image that lost it, if any.
    pub fn tag(&mut self, id: &str, tag: &str) -> Option<String> {
        let mut lost = None;
        for (other, img) in self.images.iter_mut() {
            if other != id && img.repo_tags.iter().any(|t| t == tag) {
                img.repo_tags.retain(|t| t != tag);
                lost = Some(other.clone());
            }
        }
        if let Some(img) = self.images.get_mut(id) {
            if !img.repo_tags.iter().any(|t| t == tag) {
                img.repo_tags.push(tag.to_string());
            }
        }
        lost
    }

    /// True when any image other than `except` uses layer `diff_id`.
    pub fn layer_used(&self, diff_id: &str, except: &str) -> bool {
        self.images
            .values()
            .any(|i| i.id != except && i.layers.iter().any(|l| l == diff_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(hex: char, tags: &[&str]) -> ImageRecord {
        ImageRecord {
            id: format!("sha256:{}", hex.to_string().repeat(64)),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: vec![],
            layers: vec![],
            config: Value::Null,
            created: String::new(),
            size: 0,
        }
    }

    fn index(imgs: Vec<ImageRecord>) -> Index {
        Index {
            images: imgs.into_iter().map(|i| (i.id.clone(), i)).collect(),
        }
    }

    #[test]
    fn resolves_tags_ids_and_prefixes() {
        let ix = index(vec![img('a', &["busybox:latest"]), img('b', &["app:v1"])]);
        assert_eq!(ix.resolve("busybox").unwrap().id, img('a', &[]).id);
        assert_eq!(ix.resolve("app:v1").unwrap().id, img('b', &[]).id);
        assert_eq!(ix.resolve("bbb").unwrap().id, img('b', &[]).id);
        assert_eq!(ix.resolve(&img('a', &[]).id).unwrap().id, img('a', &[]).id);
        assert!(matches!(ix.resolve("app"), Err(IndexError::NoSuchImage(_))));
        assert!(matches!(ix.resolve("c"), Err(IndexError::NoSuchImage(_))));
        assert_eq!(
            ix.resolve("docker.io/library/busybox").unwrap().id,
            img('a', &[]).id
        );
        assert_eq!(
            ix.resolve("library/busybox:latest").unwrap().id,
            img('a', &[]).id
        );
    }

    #[test]
    fn resolves_digests() {
        let mut a = img('a', &[]);
        let d = format!("sha256:{}", "c".repeat(64));
        a.repo_digests = vec![format!("x/y@{d}")];
        let ix = index(vec![a]);
        assert!(ix.resolve(&format!("docker.io/x/y@{d}")).is_ok());
        assert!(matches!(
            ix.resolve(&format!("x/z@{d}")),
            Err(IndexError::NoSuchImage(_))
        ));
    }

    #[test]
    fn ambiguous_prefix_is_an_error() {
        let mut a = img('a', &[]);
        a.id = format!("sha256:ab{}", "0".repeat(62));
        let mut b = img('a', &[]);
        b.id = format!("sha256:ac{}", "0".repeat(62));
        let ix = index(vec![a, b]);
        assert!(matches!(ix.resolve("a"), Err(IndexError::Ambiguous(_, 2))));
    }

    #[test]
    fn tag_moves_between_images() {
        let mut ix = index(vec![img('a', &["x:1"]), img('b', &[])]);
        let b = img('b', &[]).id;
        assert_eq!(ix.tag(&b, "x:1"), Some(img('a', &[]).id));
        assert!(ix.images[&img('a', &[]).id].repo_tags.is_empty());
        assert_eq!(ix.images[&b].repo_tags, vec!["x:1"]);
    }
}
