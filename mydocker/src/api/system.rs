//! `GET /system/df`: images, containers and volumes with the sizes the
//! docker CLI turns into its `system df` table (the same figures as
//! `mydocker system df`), and the small helpers the prunes share.

use super::http::Conn;
use super::{send_json, ApiError, ApiResult, Service};
use ctrstate::record::Status;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// docker's `until` filter: a unix time, an RFC 3339 time or a duration
/// before now (`10m`, `24h`); seconds since the epoch.
pub fn parse_until(u: &str) -> ApiResult<f64> {
    if let Ok(t) = u.parse::<f64>() {
        return Ok(t);
    }
    if let Some(t) = crate::humanize::parse_rfc3339(u) {
        return Ok(t);
    }
    let d = humantime::parse_duration(u)
        .map_err(|_| ApiError::new(400, format!("invalid filter 'until={u}'")))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(now.saturating_sub(d).as_secs_f64())
}

/// A layer's size as the store recorded it (`layers/meta/<hex>.json`).
fn layer_size(svc: &Service, diff_id: &str) -> u64 {
    let hex = diff_id.trim_start_matches("sha256:");
    std::fs::read(svc.ctx.root.join("layers/meta").join(format!("{hex}.json")))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["size"].as_u64())
        .unwrap_or(0)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// `GET /system/df`.
pub fn df(svc: &Arc<Service>, conn: &mut Conn) -> ApiResult<()> {
    let images = svc.ctx.layerfs().arg("images").json()?;
    let images = images.as_array().cloned().unwrap_or_default();
    let recs = crate::records::list(&svc.ctx)?;
    // Each layer once, with how many images hold it.
    let mut layers: HashMap<String, (u64, usize)> = HashMap::new();
    for img in &images {
        for l in strings(&img["layers"]) {
            let size = layer_size(svc, &l);
            layers.entry(l).or_insert((size, 0)).1 += 1;
        }
    }
    let layers_size: u64 = layers.values().map(|(s, _)| s).sum();
    let image_rows: Vec<Value> = images
        .iter()
        .map(|img| {
            let id = img["id"].as_str().unwrap_or("");
            let ls = strings(&img["layers"]);
            let size: u64 = ls.iter().map(|l| layers[l].0).sum();
            let shared: u64 = ls
                .iter()
                .filter(|l| layers[*l].1 > 1)
                .map(|l| layers[l].0)
                .sum();
            let users = recs.iter().filter(|r| r.image_id == id).count();
            json!({
                "Id": id,
                "ParentId": "",
                "RepoTags": img["repoTags"].as_array().cloned().unwrap_or_default(),
                "RepoDigests": [],
                "Created": crate::humanize::parse_rfc3339(img["created"].as_str().unwrap_or("")).unwrap_or(0.0) as i64,
                "Size": size,
                "VirtualSize": size,
                "SharedSize": shared,
                "Labels": {},
                "Containers": users,
            })
        })
        .collect();
    let ctr_rows: Vec<Value> = recs
        .iter()
        .map(|r| {
            let rw = crate::ps::dir_size(&svc.ctx.container_dir(&r.id).join("upper"));
            let image_size = images
                .iter()
                .find(|i| i["id"].as_str() == Some(r.image_id.as_str()))
                .map(|i| {
                    strings(&i["layers"])
                        .iter()
                        .map(|l| layers[l].0)
                        .sum::<u64>()
                })
                .unwrap_or(0);
            let state = match r.status {
                Status::Running | Status::Paused
                    if !crate::records::alive(r.pid, r.pid_start_time) =>
                {
                    "exited".to_string()
                }
                s => serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
            };
            json!({
                "Id": r.id,
                "Names": [format!("/{}", r.name)],
                "Image": r.image,
                "ImageID": r.image_id,
                "Command": r.command.join(" "),
                "Created": crate::humanize::parse_rfc3339(&r.created).unwrap_or(0.0) as i64,
                "State": state,
                "Status": crate::ps::status_text(r),
                "SizeRw": rw,
                "SizeRootFs": rw + image_size,
                "Labels": {},
                "Mounts": r.mounts,
            })
        })
        .collect();
    let vols = svc.ctx.layerfs().args(["volume", "ls"]).json()?;
    let vol_rows: Vec<Value> = vols
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let size = crate::ps::dir_size(Path::new(v["mountpoint"].as_str().unwrap_or("")));
            let refs = v["inUseBy"].as_array().map_or(0, |a| a.len());
            json!({
                "Name": v["name"],
                "Driver": "local",
                "Mountpoint": v["mountpoint"],
                "CreatedAt": v["createdAt"],
                "Labels": v["labels"].as_object().cloned().unwrap_or_default(),
                "Scope": "local",
                "Options": {},
                "UsageData": {"Size": size, "RefCount": refs},
            })
        })
        .collect();
    send_json(
        conn,
        200,
        &json!({
            "LayersSize": layers_size,
            "Images": image_rows,
            "Containers": ctr_rows,
            "Volumes": vol_rows,
            "BuildCache": [],
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_times_and_durations() {
        assert_eq!(parse_until("1700000000").unwrap(), 1.7e9);
        assert_eq!(parse_until("2023-11-14T22:13:20Z").unwrap(), 1.7e9);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((now - 3600.0 - parse_until("1h").unwrap()).abs() < 5.0);
        assert_eq!(parse_until("soon").unwrap_err().status, 400);
    }
}
