//! OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/...`) as
//! tarballs, read through the same table of contents as `docker save`.
//!
//! An index listing several platforms of one image yields only the
//! manifest for this host (os, architecture, then variant), as docker's
//! load does; attestation manifests and other platforms are skipped.

use crate::load::{plan, Archive, LoadError, Plan};
use crate::reference;
use serde_json::Value;

type Result<T> = std::result::Result<T, LoadError>;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// This host's platform in OCI terms: (os, architecture, variant).
pub fn host_platform() -> (&'static str, &'static str, &'static str) {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", ""),
        "aarch64" => ("arm64", "v8"),
        "arm" => ("arm", "v7"),
        "x86" => ("386", ""),
        "powerpc64" => ("ppc64le", ""),
        "s390x" => ("s390x", ""),
        "riscv64" => ("riscv64", ""),
        other => (other, ""),
    };
    ("linux", arch, variant)
}

/// One plan per image manifest reachable from `index.json` that fits
/// this host.
pub(crate) fn plans(ar: &Archive) -> Result<Vec<Plan>> {
    let index = json(ar, "index.json")?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    walk(ar, &index, (None, None), &mut out, &mut skipped, 0)?;
    if out.is_empty() {
        let (os, arch, _) = host_platform();
        if !skipped.is_empty() {
            return Err(ar.format_err(format!(
                "no image manifest for {os}/{arch} in index.json (it has {})",
                skipped.join(", ")
            )));
        }
        return Err(ar.format_err("index.json lists no image manifest".into()));
    }
    // The same image reached twice (e.g. a tagged and a nested entry):
    // one plan, with every tag and digest.
    let mut merged: Vec<Plan> = Vec::new();
    for p in out {
        match merged.iter_mut().find(|m| m.id == p.id) {
            Some(m) => {
                for t in p.tags {
                    if !m.tags.contains(&t) {
                        m.tags.push(t);
                    }
                }
                for d in p.digests {
                    if !m.digests.contains(&d) {
                        m.digests.push(d);
                    }
                }
            }
            None => merged.push(p),
        }
    }
    Ok(merged)
}

/// A descriptor's platform: `Some((os, arch, variant))` when it says one.
fn desc_platform(desc: &Value) -> Option<(String, String, String)> {
    let p = desc.get("platform")?;
    let s = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    Some((s("os"), s("architecture"), s("variant")))
}

/// How well a platform fits this host: None = not at all; higher is better.
fn fit(os: &str, arch: &str, variant: &str) -> Option<u8> {
    let (hos, harch, hvariant) = host_platform();
    if os != hos || arch != harch {
        return None;
    }
    Some(match variant {
        v if v == hvariant => 2,
        // amd64 has no variant by default; arm64's default is v8.
        "" => 1,
        _ if hvariant.is_empty() => 0,
        _ => return None,
    })
}

fn walk(
    ar: &Archive,
    index: &Value,
    // The tag and manifest digest a parent index descriptor gave.
    inherited: (Option<String>, Option<String>),
    out: &mut Vec<Plan>,
    skipped: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    if depth > 4 {
        return Err(ar.format_err("index.json nests indexes too deeply".into()));
    }
    let descs: Vec<&Value> = index
        .get("manifests")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .collect();
    // Among the image manifests that state a platform, only the best fit
    // for this host is taken (first one on a tie).
    let media = |d: &Value| {
        d.get("mediaType")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let is_image = |d: &Value| {
        let m = media(d);
        m == MANIFEST || m == DOCKER_MANIFEST
    };
    let attestation = |d: &Value| {
        d.pointer("/annotations/vnd.docker.reference.type")
            .and_then(|v| v.as_str())
            == Some("attestation-manifest")
    };
    let mut best: Option<(u8, usize)> = None;
    for (i, d) in descs.iter().enumerate() {
        if !is_image(d) || attestation(d) {
            continue;
        }
        if let Some((os, arch, variant)) = desc_platform(d) {
            match fit(&os, &arch, &variant) {
                Some(f) if best.is_none_or(|(b, _)| f > b) => best = Some((f, i)),
                Some(_) => {}
                None => {
                    let v = if variant.is_empty() {
                        String::new()
                    } else {
                        format!("/{variant}")
                    };
                    skipped.push(format!("{os}/{arch}{v}"));
                }
            }
        }
    }
    for (i, desc) in descs.iter().enumerate() {
        let media = media(desc);
        if attestation(desc) {
            continue;
        }
        let path = blob_path(ar, desc)?;
        let tag = ref_name(desc).or_else(|| inherited.0.clone());
        // The digest one pulls by is the top descriptor's (an index's for
        // a multi-platform image), as docker records it.
        let digest = inherited
            .1
            .clone()
            .unwrap_or_else(|| desc["digest"].as_str().unwrap_or_default().to_string());
        if media == MANIFEST || media == DOCKER_MANIFEST {
            if desc_platform(desc).is_some() && best.map(|(_, b)| b) != Some(i) {
                continue;
            }
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
            let mut p = plan(ar, &blob_path(ar, config)?, layers, &tags)?;
            // Without a platform on the descriptor, the config says it.
            if desc_platform(desc).is_none() {
                let s = |k: &str| {
                    p.config
                        .get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                };
                let (os, arch, variant) = (s("os"), s("architecture"), s("variant"));
                if !os.is_empty() && fit(&os, &arch, &variant).is_none() {
                    skipped.push(format!("{os}/{arch}"));
                    continue;
                }
            }
            p.digests.push(digest);
            out.push(p);
        } else if media.contains("index") || media.contains("manifest.list") {
            let nested = json(ar, &path)?;
            walk(ar, &nested, (tag, Some(digest)), out, skipped, depth + 1)?;
        }
    }
    Ok(())
}

/// The tag an index descriptor names: containerd's full name, or the OCI
/// ref name. A ref name that is only a tag (`1.36`, `v2`: it starts with
/// a digit or is not a valid repository) names no repository and is
/// skipped; a bare repository name (`busybox`) becomes `busybox:latest`.
fn ref_name(desc: &Value) -> Option<String> {
    let ann = desc.get("annotations")?;
    if let Some(n) = ann.get("io.containerd.image.name").and_then(|v| v.as_str()) {
        return Some(n.to_string());
    }
    let n = ann.get("org.opencontainers.image.ref.name")?.as_str()?;
    if n.contains('/') || n.contains(':') {
        return Some(n.to_string());
    }
    let looks_like_tag = n.starts_with(|c: char| c.is_ascii_digit())
        || (n.starts_with('v') && n[1..].starts_with(|c: char| c.is_ascii_digit()));
    (!looks_like_tag && reference::normalize(n).is_ok()).then(|| n.to_string())
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
