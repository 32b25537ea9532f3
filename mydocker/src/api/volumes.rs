//! Volume endpoints: list and inspect (layerfs's volumes in docker's
//! shape), create, remove and prune, each the `mydocker volume` command.

use super::filters::Filters;
use super::http::{Conn, Request};
use super::{send_empty, send_json, ApiError, ApiResult, Service};
use serde_json::{json, Value};
use std::sync::Arc;

fn docker_volume(v: &Value) -> Value {
    json!({
        "Name": v["name"],
        "Driver": v["driver"].as_str().filter(|d| !d.is_empty()).unwrap_or("local"),
        "Mountpoint": v["mountpoint"],
        "CreatedAt": v["createdAt"],
        "Labels": v["labels"].as_object().cloned().unwrap_or_default(),
        "Scope": "local",
        "Options": {},
    })
}

fn in_use(v: &Value) -> bool {
    v["inUseBy"].as_array().is_some_and(|u| !u.is_empty())
}

fn layerfs_volume(svc: &Service, name: &str) -> ApiResult<Value> {
    svc.ctx
        .layerfs()
        .args(["volume", "inspect", name])
        .json()
        .map_err(|_| ApiError::new(404, format!("get {name}: no such volume")))
}

fn all(svc: &Service) -> ApiResult<Vec<Value>> {
    let v = svc.ctx.layerfs().args(["volume", "ls"]).json()?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// `mydocker volume ARGS...`, its error with docker's status.
fn volume_cli(svc: &Service, args: &[&str]) -> ApiResult<String> {
    let args: Vec<&str> = ["volume"].iter().chain(args).copied().collect();
    super::containers::cli_with(svc, &args, |m: &str| m.contains("in use").then_some(409))
}

/// `GET /volumes` (`name`, `label`, `dangling`, `driver` filters).
pub fn list(svc: &Arc<Service>, conn: &mut Conn, req: &Request) -> ApiResult<()> {
    let f = Filters::parse(req, &["name", "label", "label!", "dangling", "driver"])?;
    let dangling = f.boolean("dangling")?;
    let out: Vec<Value> = all(svc)?
        .iter()
        .filter(|v| {
            let d = docker_volume(v);
            let name = d["Name"].as_str().unwrap_or("");
            f.any("name", |x| name.contains(x))
                && f.any("driver", |x| x == d["Driver"])
                && f.labels_match(&d["Labels"])
                && dangling.is_none_or(|want| want != in_use(v))
        })
        .map(docker_volume)
        .collect();
    send_json(conn, 200, &json!({"Volumes": out, "Warnings": null}))
}

/// `GET /volumes/{name}`.
pub fn inspect(svc: &Arc<Service>, conn: &mut Conn, name: &str) -> ApiResult<()> {
    let v = layerfs_volume(svc, name)?;
    send_json(conn, 200, &docker_volume(&v))
}

/// `POST /volumes/create`: an existing name answers the volume as it is,
/// as docker does.
pub fn create(svc: &Arc<Service>, conn: &mut Conn, req: &mut Request) -> ApiResult<()> {
    let body = conn
        .read_body(req, 1 << 20)
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let b: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(400, format!("invalid JSON: {e}")))?
    };
    let driver = b["Driver"].as_str().unwrap_or("");
    if !matches!(driver, "" | "local") {
        return Err(ApiError::new(
            404,
            format!("plugin \"{driver}\" not found: only the local driver is supported"),
        ));
    }
    if let Some(k) = b["DriverOpts"].as_object().and_then(|o| o.keys().next()) {
        return Err(ApiError::new(
            400,
            format!("DriverOpts: {k}: not supported by mydocker"),
        ));
    }
    let mut args = vec!["create".to_string()];
    for (k, v) in b["Labels"].as_object().into_iter().flatten() {
        let v = v.as_str().ok_or_else(|| {
            ApiError::new(400, format!("Labels: the value of {k} is not a string"))
        })?;
        args.extend(["--label".into(), format!("{k}={v}")]);
    }
    if let Some(n) = b["Name"].as_str().filter(|n| !n.is_empty()) {
        args.push(n.to_string());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let name = volume_cli(svc, &argv)?.trim().to_string();
    let v = layerfs_volume(svc, &name)?;
    send_json(conn, 201, &docker_volume(&v))
}

/// `DELETE /volumes/{name}?force=`: force makes a missing volume success.
pub fn remove(svc: &Arc<Service>, conn: &mut Conn, req: &Request, name: &str) -> ApiResult<()> {
    let v = match layerfs_volume(svc, name) {
        Ok(v) => v,
        Err(_) if req.flag("force") => return send_empty(conn, 204),
        Err(e) => return Err(e),
    };
    if in_use(&v) {
        let users: Vec<&str> = v["inUseBy"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        return Err(ApiError::new(
            409,
            format!("remove {name}: volume is in use - [{}]", users.join(", ")),
        ));
    }
    volume_cli(svc, &["rm", name])?;
    send_empty(conn, 204)
}

/// `POST /volumes/prune`: every volume no container uses (API 1.41's
/// meaning; `all` is accepted for newer clients), `label` filters.
pub fn prune(svc: &Arc<Service>, conn: &mut Conn, req: &Request) -> ApiResult<()> {
    let f = Filters::parse(req, &["label", "label!", "all"])?;
    let mut deleted = vec![];
    let mut reclaimed = 0u64;
    for v in all(svc)? {
        let d = docker_volume(&v);
        if in_use(&v) || !f.labels_match(&d["Labels"]) {
            continue;
        }
        let name = d["Name"].as_str().unwrap_or("").to_string();
        let size =
            crate::ps::dir_size(std::path::Path::new(v["mountpoint"].as_str().unwrap_or("")));
        // One a container took meanwhile stays (rm refuses it).
        if volume_cli(svc, &["rm", &name]).is_ok() {
            reclaimed += size;
            deleted.push(name);
        }
    }
    send_json(
        conn,
        200,
        &json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}),
    )
}
