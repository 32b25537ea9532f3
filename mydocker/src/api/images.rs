//! Image endpoints: list and inspect (layerfs's records in docker's shape),
//! load (the body piped into `mydocker load`), and pull, which answers
//! that no registry is reachable, as docker does when offline.

use super::containers::{cli_message, mydocker};
use super::http::{Conn, Request};
use super::{send_json, ApiError, ApiResult, Service};
use serde_json::{json, Value};
use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;

fn unix_time(t: &str) -> i64 {
    crate::humanize::parse_rfc3339(t).unwrap_or(0.0) as i64
}

/// `GET /images/json`.
pub fn list(svc: &Arc<Service>, conn: &mut Conn) -> ApiResult<()> {
    let imgs = svc.ctx.layerfs().arg("images").json()?;
    let out: Vec<Value> = imgs
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let size = i["size"].as_u64().unwrap_or(0);
            json!({
                "Id": i["id"],
                "ParentId": "",
                "RepoTags": i["repoTags"].as_array().cloned().unwrap_or_default(),
                "RepoDigests": [],
                "Created": unix_time(i["created"].as_str().unwrap_or("")),
                "Size": size,
                "VirtualSize": size,
                "SharedSize": -1,
                "Labels": {},
                "Containers": -1,
            })
        })
        .collect();
    send_json(conn, 200, &Value::Array(out))
}

/// `GET /images/{name}/json`.
pub fn inspect(svc: &Arc<Service>, conn: &mut Conn, name: &str) -> ApiResult<()> {
    let i = svc
        .ctx
        .layerfs()
        .args(["inspect", name])
        .json()
        .map_err(|_| ApiError::new(404, format!("No such image: {name}")))?;
    let cfg = &i["config"];
    let size = i["size"].as_u64().unwrap_or(0);
    let v = json!({
        "Id": i["id"],
        "RepoTags": i["repoTags"].as_array().cloned().unwrap_or_default(),
        "RepoDigests": [],
        "Parent": "",
        "Comment": "",
        "Created": cfg["created"].as_str().or(i["created"].as_str()).unwrap_or(""),
        "Config": docker_config(&cfg["config"]),
        "Architecture": cfg["architecture"].as_str().unwrap_or("amd64"),
        "Os": cfg["os"].as_str().unwrap_or("linux"),
        "Size": size,
        "VirtualSize": size,
        "GraphDriver": {"Name": "overlay2", "Data": {}},
        "RootFS": {"Type": "layers", "Layers": i["layers"].as_array().cloned().unwrap_or_default()},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    });
    send_json(conn, 200, &v)
}

/// The image config's `config` with the keys docker's clients expect present.
fn docker_config(c: &Value) -> Value {
    let mut v = if c.is_object() { c.clone() } else { json!({}) };
    for (k, d) in [
        ("Env", json!([])),
        ("Cmd", Value::Null),
        ("Entrypoint", Value::Null),
        ("WorkingDir", json!("")),
        ("User", json!("")),
        ("Labels", Value::Null),
    ] {
        if v.get(k).is_none() {
            v[k] = d;
        }
    }
    v
}

/// `POST /images/load`: the tar body into `mydocker load`; its lines come
/// back as docker's JSON progress messages.
pub fn load(svc: &Arc<Service>, conn: &mut Conn, req: &mut Request) -> ApiResult<()> {
    let mut child = mydocker(svc)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ApiError::new(500, format!("run mydocker load: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let copied = std::io::copy(&mut conn.body(req), &mut stdin);
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| ApiError::new(500, format!("mydocker load: {e}")))?;
    if let Err(e) = copied {
        if out.status.success() {
            return Err(ApiError::new(400, format!("read the archive: {e}")));
        }
    }
    if !out.status.success() {
        return Err(ApiError::new(500, cli_message(&out.stderr)));
    }
    let mut body = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let _ = writeln!(body, "{}", json!({"stream": format!("{line}\n")}));
    }
    conn.respond(false, 200, &[("Content-Type", "application/json")], &body)
        .map_err(|e| ApiError::new(500, e.to_string()))
}

/// `POST /images/create` (pull): mydocker has no registry client.
pub fn pull(req: &Request) -> ApiResult<()> {
    let image = req.q("fromImage").unwrap_or("");
    let tag = req.q("tag").unwrap_or("latest");
    Err(ApiError::new(
        404,
        format!("pull access denied for {image}:{tag}: mydocker cannot reach a registry; use `docker load` (POST /images/load)"),
    ))
}
