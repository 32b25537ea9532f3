//! Image endpoints: list, inspect and history (layerfs's records in
//! docker's shape), load (the body piped into `mydocker load`), get (the
//! `mydocker save` tar streamed), tag, remove and prune (the `mydocker`
//! commands), and pull, which answers that no registry is reachable, as
//! docker does when offline.

use super::containers::{cli_message, mydocker};
use super::filters::Filters;
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
pub fn list(svc: &Arc<Service>, conn: &mut Conn, req: &Request) -> ApiResult<()> {
    let f = Filters::parse(req, &["reference", "dangling"])?;
    let imgs = svc.ctx.layerfs().arg("images").json()?;
    let out: Vec<Value> = imgs
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|i| {
            let all: Vec<&str> = i["repoTags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            // docker lists only the tags a reference filter matched.
            let tags: Vec<&str> = all
                .iter()
                .copied()
                .filter(|t| f.any("reference", |p| reference_matches(p, t)))
                .collect();
            let dangling = all.is_empty();
            let keep = (f.values("reference").is_empty() || !tags.is_empty())
                && f.any("dangling", |x| matches!(x, "true" | "1") == dangling);
            if !keep {
                return None;
            }
            let size = i["size"].as_u64().unwrap_or(0);
            Some(json!({
                "Id": i["id"],
                "ParentId": "",
                "RepoTags": tags,
                "RepoDigests": [],
                "Created": unix_time(i["created"].as_str().unwrap_or("")),
                "Size": size,
                "VirtualSize": size,
                "SharedSize": -1,
                "Labels": {},
                "Containers": -1,
            }))
        })
        .collect();
    send_json(conn, 200, &Value::Array(out))
}

/// docker's `reference` filter: a glob (`*`, `?`) over the tag
/// (`name:tag`) or its name alone.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let name = tag
        .rsplit_once(':')
        .map_or(tag, |(n, t)| if t.contains('/') { tag } else { n });
    glob(pattern.as_bytes(), tag.as_bytes()) || glob(pattern.as_bytes(), name.as_bytes())
}

/// `*` (not across `/`, as path.Match) and `?`.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..])),
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
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

/// `POST /images/create` (pull): mydocker has no registry client; the
/// error is docker's for a registry it cannot reach (500, `Get
/// "https://REGISTRY/v2/": ...`), naming why.
pub fn pull(req: &Request) -> ApiResult<()> {
    let image = req.q("fromImage").unwrap_or("");
    if image.is_empty() {
        return Err(ApiError::new(
            400,
            "fromImage: must be specified (import from a file is not supported)",
        ));
    }
    let first = image.split('/').next().unwrap_or("");
    let registry = if image.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost")
        && !matches!(first, "docker.io" | "index.docker.io")
    {
        first
    } else {
        "registry-1.docker.io"
    };
    Err(ApiError::new(
        500,
        format!("Get \"https://{registry}/v2/\": mydocker has no registry client (load images with `docker load`)"),
    ))
}

/// No such image, in docker's words.
fn no_such(name: &str) -> ApiError {
    ApiError::new(404, format!("No such image: {name}"))
}

/// `mydocker ARGS...`: stdout, or the error with docker's status (404
/// unknown image, 409 an image in use or with several tags).
fn image_cli(svc: &Service, args: &[&str]) -> ApiResult<String> {
    let out = mydocker(svc)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ApiError::new(500, format!("run mydocker: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let m = cli_message(&out.stderr);
    let status = if m.contains("in use") || m.contains("must be forced") || m.contains("multiple") {
        409
    } else {
        ApiError::from_message(&*m).status
    };
    Err(ApiError::new(status, m))
}

/// The image `name` refers to (layerfs inspect), or docker's 404.
fn image(svc: &Service, name: &str) -> ApiResult<Value> {
    svc.ctx
        .layerfs()
        .args(["inspect", name])
        .json()
        .map_err(|_| no_such(name))
}

/// `GET /images/{name}/history`: newest step first, the image id on it
/// and `<missing>` below, as docker's.
pub fn history(svc: &Arc<Service>, conn: &mut Conn, name: &str) -> ApiResult<()> {
    let img = image(svc, name)?;
    let rows = svc
        .ctx
        .layerfs()
        .args(["history", name])
        .json()
        .map_err(|_| no_such(name))?;
    let out: Vec<Value> = rows
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, h)| {
            json!({
                "Id": if i == 0 { img["id"].clone() } else { json!("<missing>") },
                "Created": unix_time(h["created"].as_str().unwrap_or("")),
                "CreatedBy": h["createdBy"],
                "Tags": if i == 0 { img["repoTags"].clone() } else { Value::Null },
                "Size": h["size"].as_u64().unwrap_or(0),
                "Comment": h["comment"],
            })
        })
        .collect();
    send_json(conn, 200, &Value::Array(out))
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub fn tag(svc: &Arc<Service>, conn: &mut Conn, req: &Request, name: &str) -> ApiResult<()> {
    let repo = req.q("repo").unwrap_or("");
    if repo.is_empty() {
        return Err(ApiError::new(400, "repo: must be specified"));
    }
    if repo.rsplit('/').next().is_some_and(|r| r.contains(':')) {
        return Err(ApiError::new(
            400,
            format!("invalid reference format: repo {repo} has a tag; pass it as tag"),
        ));
    }
    let tag = req.q("tag").filter(|t| !t.is_empty()).unwrap_or("latest");
    image(svc, name)?;
    image_cli(svc, &["tag", name, &format!("{repo}:{tag}")])?;
    super::send_empty(conn, 201)
}

/// `DELETE /images/{name}?force=`: docker's list of untagged and deleted.
pub fn remove(svc: &Arc<Service>, conn: &mut Conn, req: &Request, name: &str) -> ApiResult<()> {
    image(svc, name)?;
    let mut args = vec!["rmi"];
    if req.flag("force") {
        args.push("--force");
    }
    args.push(name);
    let out = image_cli(svc, &args)?;
    send_json(conn, 200, &Value::Array(rmi_items(&out)))
}

/// `Untagged: x` / `Deleted: y` lines as docker's items.
fn rmi_items(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            match k.to_ascii_lowercase().as_str() {
                "untagged" => Some(json!({"Untagged": v.trim()})),
                "deleted" => Some(json!({"Deleted": v.trim()})),
                _ => None,
            }
        })
        .collect()
}

/// `GET /images/{name}/get` and `GET /images/get?names=a&names=b`: the
/// `mydocker save` tar, streamed as it is written.
pub fn save(svc: &Arc<Service>, conn: &mut Conn, names: &[String]) -> ApiResult<()> {
    if names.is_empty() {
        return Err(ApiError::new(400, "names: must name at least one image"));
    }
    for n in names {
        image(svc, n)?;
    }
    let mut child = mydocker(svc)
        .arg("save")
        .args(names)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ApiError::new(500, format!("run mydocker save: {e}")))?;
    let mut out = child.stdout.take().expect("piped");
    // The first bytes (or the error) decide the status; nothing is sent before.
    let mut first = vec![0u8; 64 * 1024];
    let n = read_some(&mut out, &mut first);
    if n == 0 {
        let o = child
            .wait_with_output()
            .map_err(|e| ApiError::new(500, format!("mydocker save: {e}")))?;
        return Err(ApiError::new(500, cli_message(&o.stderr)));
    }
    let mut body = conn
        .start_chunked(200, "application/x-tar")
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let mut ok = body.send(&first[..n]).is_ok();
    let mut buf = vec![0u8; 64 * 1024];
    while ok {
        let n = read_some(&mut out, &mut buf);
        if n == 0 {
            break;
        }
        ok = body.send(&buf[..n]).is_ok();
    }
    drop(out);
    let status = child.wait();
    // A save that failed midway ends the stream without its last chunk,
    // so the client sees a broken transfer rather than a short tar.
    if ok && status.is_ok_and(|s| s.success()) {
        let _ = body.finish();
    } else {
        let _ = child.kill();
    }
    Ok(())
}

fn read_some(r: &mut impl std::io::Read, buf: &mut [u8]) -> usize {
    loop {
        match r.read(buf) {
            Ok(n) => return n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return 0,
        }
    }
}

/// `POST /images/prune`: dangling images (`dangling=false`: every image)
/// no container uses, through `mydocker image prune -f [-a]`.
pub fn prune(svc: &Arc<Service>, conn: &mut Conn, req: &Request) -> ApiResult<()> {
    let f = Filters::parse(req, &["dangling"])?;
    let all = f.boolean("dangling")? == Some(false);
    // Layer sizes before, to count what went.
    let mut sizes = std::collections::HashMap::new();
    let imgs = svc.ctx.layerfs().arg("images").json()?;
    for i in imgs.as_array().into_iter().flatten() {
        for l in i["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let hex = l.trim_start_matches("sha256:");
            let size = std::fs::read(svc.ctx.root.join("layers/meta").join(format!("{hex}.json")))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| v["size"].as_u64())
                .unwrap_or(0);
            sizes.insert(l.to_string(), size);
        }
    }
    let mut args = vec!["image", "prune", "-f"];
    if all {
        args.push("-a");
    }
    let out = image_cli(svc, &args)?;
    let items = rmi_items(&out);
    let reclaimed: u64 = items
        .iter()
        .filter_map(|i| i["Deleted"].as_str())
        .map(|d| sizes.get(d).copied().unwrap_or(0))
        .sum();
    send_json(
        conn,
        200,
        &json!({"ImagesDeleted": if items.is_empty() { Value::Null } else { Value::Array(items) }, "SpaceReclaimed": reclaimed}),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn reference_filters_match_as_dockers() {
        use super::reference_matches as m;
        assert!(m("copy", "copy:v1"));
        assert!(m("copy:v1", "copy:v1"));
        assert!(!m("copy:v2", "copy:v1"));
        assert!(m("bus*", "busybox:latest"));
        assert!(m("*:latest", "busybox:latest"));
        assert!(!m("*", "a/b:1"));
        assert!(m("localhost:5000/a", "localhost:5000/a:1"));
        assert!(!m("cop", "copy:v1"));
    }
}
