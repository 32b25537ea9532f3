//! OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/...`) as
//! tarballs, read through the same table of contents as `docker save`.

use crate::load::{plan, Archive, LoadError, Plan};
use crate::reference;
use serde_json::Value;

type Result<T> = std::result::Result<T, LoadError>;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// One plan per image manifest reachable from `index.json`.
pub(crate) fn plans(ar: &Archive) -> Result<Vec<Plan>> {
    let index = json(ar, "index.json")?;
    let mut out = Vec::new();
    walk(ar, &index, None, &mut out, 0)?;
    if out.is_empty() {
        return Err(ar.format_err("index.json lists no image manifest".into()));
    }
    Ok(out)
}

fn walk(
    ar: &Archive,
    index: &Value,
    inherited: Option<String>,
    out: &mut Vec<Plan>,
    depth: usize,
) -> Result<()> {
    if depth > 4 {
        return Err(ar.format_err("index.json nests indexes too deeply".into()));
    }
    for desc in index
        .get("manifests")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
    {
        let media = desc
            .get("mediaType")
            .and_then(|m| m.as_str())
            .unwrap_or_default();
        let path = blob_path(ar, desc)?;
        let tag = ref_name(desc).or_else(|| inherited.clone());
        if media == MANIFEST || media == DOCKER_MANIFEST {
            let m = json(ar, &path)?;
            let config = m
                .get("config")
                .ok_or_else(|| ar.format_err(format!("{path}: no config")))?;
            let layers = m
                .get("layers")
                .and_then(|l| l.as_array())
                .into_iter()
                .flatten()
                .map(|l| blob_path(ar, l))
                .collect::<Result<Vec<_>>>()?;
            let tags: Vec<String> = tag.into_iter().collect();
            out.push(plan(ar, &blob_path(ar, config)?, layers, &tags)?);
        } else if media.contains("index") || media.contains("manifest.list") {
            let nested = json(ar, &path)?;
            walk(ar, &nested, tag, out, depth + 1)?;
        }
    }
    Ok(())
}

/// The tag an index descriptor names: containerd's full name, or the OCI
/// ref name (a bare tag gets no repository, so it is skipped).
fn ref_name(desc: &Value) -> Option<String> {
    let ann = desc.get("annotations")?;
    if let Some(n) = ann.get("io.containerd.image.name").and_then(|v| v.as_str()) {
        return Some(n.to_string());
    }
    let n = ann.get("org.opencontainers.image.ref.name")?.as_str()?;
    (n.contains('/') || n.contains(':')).then(|| n.to_string())
}

fn blob_path(ar: &Archive, desc: &Value) -> Result<String> {
    let digest = desc
        .get("digest")
        .and_then(|d| d.as_str())
        .unwrap_or_default();
    let hex = reference::sha256_hex(digest)
        .ok_or_else(|| ar.format_err(format!("bad descriptor digest {digest:?}")))?;
    Ok(format!("blobs/sha256/{hex}"))
}

fn json(ar: &Archive, path: &str) -> Result<Value> {
    serde_json::from_slice(&ar.read_small(path)?).map_err(|e| ar.format_err(format!("{path}: {e}")))
}
