//! New images from a container's writable layer (`commit`) or from a flat
//! rootfs tarball (`import`).

use crate::atomic::{write_atomic, Lock};
use crate::digest::sha256_of;
use crate::index::{ImageRecord, Index, IndexError};
use crate::layer::{self, LayerError, TempLayer};
use crate::layout::Layout;
use crate::mount::{self, MountError};
use crate::pack::{self, PackError};
use crate::reference::{self, ReferenceError};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("container {0} has no rootfs made by layerfs (no layerfs.json)")]
    NoContainer(String),
    #[error("the change JSON must be an object of image config fields (Cmd, Env, ...): {0}")]
    BadChange(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Pack(#[from] PackError),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, CommitError>;

/// What `commit` and `import` print.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The new layer's diff id.
    pub layer: String,
}

/// Parses a config patch: `{"Cmd":[...],"Env":[...],...}` merged key by key
/// into the image's `config` (a `null` removes the key).
pub fn parse_change(text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(CommitError::BadChange(format!("got {other}"))),
        Err(e) => Err(CommitError::BadChange(e.to_string())),
    }
}

/// `commit ID [NAME:TAG]`: the container's upper dir as a new layer on top
/// of its image's layers; config from the image, patched by `change`.
pub fn commit(
    layout: &Layout,
    id: &str,
    tag: Option<&str>,
    message: Option<&str>,
    created_by: Option<&str>,
    change: Option<Map<String, Value>>,
) -> Result<Created> {
    mount::check_id(id)?;
    let tag = tag.map(reference::normalize).transpose()?;
    let dir = layout.container(id);
    let rec = mount::read_record(&dir).map_err(|_| CommitError::NoContainer(id.into()))?;
    let _lock = lock(layout)?;
    let mut index = Index::load(layout)?;
    let parent = index.resolve(&rec.image)?.clone();
    let (info, new) = layer_from(layout, &dir.join("upper"))?;
    let mut config = parent.config.clone();
    extend(
        &mut config,
        &info.diff_id,
        created_by.unwrap_or_default(),
        message,
        change,
    );
    let mut layers = parent.layers.clone();
    layers.push(info.diff_id.clone());
    let new_id = add(layout, &mut index, config, layers, tag.as_deref())
        .inspect_err(|_| undo_layer(layout, &info.diff_id, new))?;
    Ok(Created {
        id: new_id,
        tag,
        layer: info.diff_id,
    })
}

/// `import FILE [NAME:TAG]`: a flat rootfs tarball (plain or gzip) as a
/// one-layer image with an empty config (patched by `change`).
pub fn import(
    layout: &Layout,
    file: &Path,
    tag: Option<&str>,
    change: Option<Map<String, Value>>,
) -> Result<Created> {
    let tag = tag.map(reference::normalize).transpose()?;
    let f = File::open(file).map_err(|source| CommitError::Io {
        step: "open",
        path: file.into(),
        source,
    })?;
    let _lock = lock(layout)?;
    let mut index = Index::load(layout)?;
    let (info, new) = layer::ensure(layout, f, None, &file.display().to_string())?;
    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    });
    extend(
        &mut config,
        &info.diff_id,
        &format!("layerfs import {}", file.display()),
        None,
        change,
    );
    let new_id = add(
        layout,
        &mut index,
        config,
        vec![info.diff_id.clone()],
        tag.as_deref(),
    )
    .inspect_err(|_| undo_layer(layout, &info.diff_id, new))?;
    Ok(Created {
        id: new_id,
        tag,
        layer: info.diff_id,
    })
}

/// Files a container gets bind-mounted from its own dir (docker keeps
/// their mount points in an init layer that is never committed).
const BIND_MOUNTED: [&str; 4] = ["etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv"];

/// Packs the upper dir `upper` into a layer tar in a temp file, then
/// stores it.
fn layer_from(layout: &Layout, upper: &Path) -> Result<(layer::LayerInfo, bool)> {
    let tmp = TempLayer::new(layout)?;
    let tar = tmp.path().join("layer.tar");
    let f = File::create(&tar).map_err(|source| CommitError::Io {
        step: "create",
        path: tar.clone(),
        source,
    })?;
    // The runtime's mount points for its bind-mounted files are not content.
    drop(pack::pack_file_skipping(upper, f, &BIND_MOUNTED)?);
    let f = File::open(&tar).map_err(|source| CommitError::Io {
        step: "open",
        path: tar.clone(),
        source,
    })?;
    Ok(layer::ensure(layout, f, None, "new layer")?)
}

/// Appends the layer, a history entry and the patch to an image config.
fn extend(
    config: &mut Value,
    diff_id: &str,
    created_by: &str,
    message: Option<&str>,
    change: Option<Map<String, Value>>,
) {
    let now = now_rfc3339();
    let Some(obj) = config.as_object_mut() else {
        return;
    };
    obj.insert("created".into(), json!(now));
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    if let Some(ids) = rootfs.get_mut("diff_ids").and_then(|d| d.as_array_mut()) {
        ids.push(json!(diff_id));
    }
    let mut h = json!({"created": now, "created_by": created_by});
    if let Some(m) = message {
        h["comment"] = json!(m);
    }
    match obj.get_mut("history").and_then(|h| h.as_array_mut()) {
        Some(hist) => hist.push(h),
        None => {
            obj.insert("history".into(), json!([h]));
        }
    }
    if let Some(change) = change {
        let cfg = obj.entry("config").or_insert_with(|| json!({}));
        if !cfg.is_object() {
            *cfg = json!({});
        }
        let cfg = cfg.as_object_mut().expect("object");
        for (k, v) in change {
            if v.is_null() {
                cfg.remove(&k);
            } else {
                cfg.insert(k, v);
            }
        }
    }
}

/// Stores a config blob and its index record (lock held by the caller).
fn add(
    layout: &Layout,
    index: &mut Index,
    config: Value,
    layers: Vec<String>,
    tag: Option<&str>,
) -> Result<String> {
    let bytes = serde_json::to_vec(&config).expect("config serializes");
    let id = sha256_of(&bytes);
    let blob = layout.config_blob(&id["sha256:".len()..]);
    write_atomic(&blob, &bytes).map_err(|source| CommitError::Io {
        step: "write",
        path: blob,
        source,
    })?;
    let size = layers
        .iter()
        .map(|l| layer::size(layout, &l["sha256:".len()..]))
        .sum();
    let created = config
        .get("created")
        .and_then(|c| c.as_str())
        .unwrap_or_default()
        .to_string();
    // The same content committed again within a second is the same
    // image: it keeps the tags it has.
    index
        .images
        .entry(id.clone())
        .or_insert_with(|| ImageRecord {
            id: id.clone(),
            repo_tags: vec![],
            repo_digests: vec![],
            layers,
            config,
            created,
            size,
        });
    if let Some(t) = tag {
        index.tag(&id, t);
    }
    index.save(layout)?;
    Ok(id)
}

/// Removes a layer this call stored when the image could not be recorded.
fn undo_layer(layout: &Layout, diff_id: &str, new: bool) {
    if new {
        let _ = layer::remove(layout, &diff_id["sha256:".len()..]);
    }
}

fn lock(layout: &Layout) -> Result<Lock> {
    crate::atomic::take_lock(&layout.lock(), true).map_err(|source| CommitError::Io {
        step: "lock",
        path: layout.lock(),
        source,
    })
}

/// Now as RFC 3339 UTC to the second (`2024-01-02T03:04:05Z`), the form
/// of image configs' `created`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_rfc3339_to_the_second() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }

    #[test]
    fn extend_patches_config_and_appends_history() {
        let mut c = json!({"config": {"Cmd": ["sh"], "Env": ["A=1"]}, "rootfs": {"diff_ids": ["sha256:a"]}, "history": [{}]});
        let change = parse_change(r#"{"Cmd":["httpd"],"Env":null,"WorkingDir":"/w"}"#).unwrap();
        extend(&mut c, "sha256:b", "test", Some("msg"), Some(change));
        assert_eq!(c["config"], json!({"Cmd": ["httpd"], "WorkingDir": "/w"}));
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:a", "sha256:b"]));
        assert_eq!(c["history"][1]["comment"], json!("msg"));
        assert!(parse_change("[1]").is_err());
    }
}
