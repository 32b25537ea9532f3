//! Network endpoints: list, inspect (netbr's store in docker's shape, with
//! the containers from their records), and create, remove, connect,
//! disconnect and prune, each the `mydocker network` command. A network's
//! id is its name (what `mydocker network create` prints).

use super::containers::{cli_message, mydocker, resolve};
use super::filters::Filters;
use super::http::{Conn, Request};
use super::{send_empty, send_json, ApiError, ApiResult, Service};
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::Arc;

/// The network docker never prunes nor lets remove (ours is made on first use).
const PREDEFINED: &str = crate::network::DEFAULT;
/// docker's predefined networks: the bridge, and the host's and no
/// network (modes here, listed as docker lists them).
const BUILTIN: [&str; 3] = [PREDEFINED, "host", "none"];

/// `host` or `none` (or the bridge before its first use) in docker's
/// shape, with the running containers in that mode.
fn builtin(svc: &Service, name: &str) -> Option<Value> {
    let driver = match name {
        "host" => "host",
        "none" => "null",
        PREDEFINED => "bridge",
        _ => return None,
    };
    let mut containers = serde_json::Map::new();
    for r in crate::records::list(&svc.ctx).unwrap_or_default() {
        let mode = r
            .config
            .get("network")
            .and_then(Value::as_str)
            .unwrap_or("");
        if mode == name && r.status == ctrstate::record::Status::Running {
            containers.insert(
                r.id.clone(),
                json!({"Name": r.name, "EndpointID": "", "MacAddress": "",
                    "IPv4Address": "", "IPv6Address": ""}),
            );
        }
    }
    let options = if name == PREDEFINED {
        json!({"com.docker.network.bridge.default_bridge": "true"})
    } else {
        json!({})
    };
    Some(json!({
        "Name": name,
        "Id": name,
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": {},
    }))
}

/// A network by name in docker's shape: netbr's, else a builtin one; 404.
fn find(svc: &Service, name: &str) -> ApiResult<Value> {
    match netbr_inspect(svc, name) {
        Ok(v) => Ok(docker_network(svc, &v)),
        Err(e) => builtin(svc, name).ok_or(e),
    }
}

/// `mydocker network ARGS...` with the error as docker's status: 404 for an
/// unknown network, 409 for a name taken, 403 while endpoints are active.
fn network_cli(svc: &Service, args: &[&str]) -> ApiResult<String> {
    let out = mydocker(svc)
        .arg("network")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ApiError::new(500, format!("run mydocker: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let m = cli_message(&out.stderr);
    let status = if m.contains("already exists") {
        409
    } else if m.contains("allocated") || m.contains("in use") {
        403
    } else {
        ApiError::from_message(&*m).status
    };
    Err(ApiError::new(status, m))
}

/// netbr's view of network `name` (summary, allocations, conflist), or
/// docker's 404.
fn netbr_inspect(svc: &Service, name: &str) -> ApiResult<Value> {
    svc.ctx
        .netbr()
        .args(["inspect", name])
        .json()
        .map_err(|_| ApiError::new(404, format!("network {name} not found")))
}

/// docker's network JSON from `netbr inspect`.
fn docker_network(svc: &Service, v: &Value) -> Value {
    let name = v["name"].as_str().unwrap_or("");
    let subnets: Vec<&str> = v["subnets"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let config: Vec<Value> = subnets
        .iter()
        .enumerate()
        .map(|(i, s)| match v["gateways"][i].as_str() {
            Some(g) => json!({"Subnet": s, "Gateway": g}),
            None => json!({"Subnet": s}),
        })
        .collect();
    let conf = svc.ctx.root.join("networks").join(format!("{name}.json"));
    let created = std::fs::metadata(&conf)
        .and_then(|m| m.modified())
        .ok()
        .map(|t| humantime::format_rfc3339_nanos(t).to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    let held: Vec<&str> = v["allocations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_str())
        .collect();
    let mut containers = serde_json::Map::new();
    for r in crate::records::list(&svc.ctx).unwrap_or_default() {
        let e = &r.network["Networks"][name];
        if !e.is_object() || !held.contains(&r.id.as_str()) {
            continue;
        }
        let cidr = |ip: &str, len: &Value| match ip {
            "" => String::new(),
            ip => format!("{ip}/{}", len.as_u64().unwrap_or(0)),
        };
        containers.insert(
            r.id.clone(),
            json!({
                "Name": r.name,
                "EndpointID": r.id,
                "MacAddress": e["MacAddress"].as_str().unwrap_or(""),
                "IPv4Address": cidr(e["IPAddress"].as_str().unwrap_or(""), &e["IPPrefixLen"]),
                "IPv6Address": cidr(e["GlobalIPv6Address"].as_str().unwrap_or(""), &e["GlobalIPv6PrefixLen"]),
            }),
        );
    }
    json!({
        "Name": name,
        "Id": name,
        "Created": created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": subnets.iter().any(|s| s.contains(':')),
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": v["bridge"]},
        "Labels": crate::network::labels_of(&v["config"]),
    })
}

/// Every network in docker's shape, the builtin ones included.
fn all(svc: &Service) -> ApiResult<Vec<Value>> {
    let ls = svc.ctx.netbr().arg("ls").json()?;
    let mut out: Vec<Value> = ls
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["name"].as_str())
        // One removed between ls and inspect is not listed.
        .filter_map(|n| netbr_inspect(svc, n).ok())
        .map(|v| docker_network(svc, &v))
        .collect();
    for b in BUILTIN {
        if !out.iter().any(|n| n["Name"] == b) {
            out.extend(builtin(svc, b));
        }
    }
    Ok(out)
}

fn matches(f: &Filters, n: &Value) -> bool {
    let s = |k: &str| n[k].as_str().unwrap_or("").to_string();
    f.any("name", |x| s("Name").contains(x))
        && f.any("id", |x| s("Id").starts_with(x))
        && f.any("driver", |x| x == s("Driver"))
        && f.any("scope", |x| x == "local")
        && f.any("type", |x| match x {
            "builtin" => BUILTIN.contains(&s("Name").as_str()),
            "custom" => !BUILTIN.contains(&s("Name").as_str()),
            _ => false,
        })
        && f.any("dangling", |x| {
            let unused = n["Containers"].as_object().is_some_and(|c| c.is_empty());
            matches!(x, "true" | "1") == unused
        })
        && f.labels_match(&n["Labels"])
}

/// `GET /networks`.
pub fn list(svc: &Arc<Service>, conn: &mut Conn, req: &Request) -> ApiResult<()> {
    let f = Filters::parse(
        req,
        &[
            "name", "id", "label", "label!", "driver", "scope", "type", "dangling",
        ],
    )?;
    let out: Vec<Value> = all(svc)?.into_iter().filter(|n| matches(&f, n)).collect();
    send_json(conn, 200, &Value::Array(out))
}

/// `GET /networks/{id}`.
pub fn inspect(svc: &Arc<Service>, conn: &mut Conn, id: &str) -> ApiResult<()> {
    send_json(conn, 200, &find(svc, id)?)
}

/// `POST /networks/create`: the body's fields as `network create` flags;
/// what mydocker's bridge networks cannot be is refused before anything is made.
pub fn create(svc: &Arc<Service>, conn: &mut Conn, req: &mut Request) -> ApiResult<()> {
    let body = conn
        .read_body(req, 1 << 20)
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let b: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(400, format!("invalid JSON: {e}")))?;
    let name = b["Name"].as_str().unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::new(400, "network name must be specified"));
    }
    let driver = b["Driver"].as_str().unwrap_or("");
    if !matches!(driver, "" | "bridge") {
        return Err(ApiError::new(
            404,
            format!("plugin \"{driver}\" not found: only the bridge driver is supported"),
        ));
    }
    for k in ["Internal", "Ingress", "ConfigOnly"] {
        if b[k].as_bool() == Some(true) {
            return Err(ApiError::new(
                400,
                format!("{k}: not supported by mydocker"),
            ));
        }
    }
    if let Some(k) = b["Options"].as_object().and_then(|o| o.keys().next()) {
        return Err(ApiError::new(
            400,
            format!("Options: {k}: not supported by mydocker"),
        ));
    }
    let ipam = &b["IPAM"];
    if !matches!(ipam["Driver"].as_str().unwrap_or(""), "" | "default") {
        return Err(ApiError::new(
            400,
            "IPAM.Driver: only the default driver is supported",
        ));
    }
    let mut args = vec!["create".to_string(), "--driver".into(), "bridge".into()];
    for c in ipam["Config"].as_array().into_iter().flatten() {
        for k in ["IPRange", "AuxiliaryAddresses"] {
            if c[k].as_str().is_some_and(|s| !s.is_empty())
                || c[k].as_object().is_some_and(|o| !o.is_empty())
            {
                return Err(ApiError::new(
                    400,
                    format!("IPAM.Config.{k}: not supported by mydocker"),
                ));
            }
        }
        if let Some(s) = c["Subnet"].as_str().filter(|s| !s.is_empty()) {
            args.extend(["--subnet".into(), s.into()]);
        }
        if let Some(g) = c["Gateway"].as_str().filter(|s| !s.is_empty()) {
            args.extend(["--gateway".into(), g.into()]);
        }
    }
    if b["EnableIPv6"].as_bool() == Some(true) {
        args.push("--ipv6".into());
    }
    for (k, v) in b["Labels"].as_object().into_iter().flatten() {
        let v = v.as_str().ok_or_else(|| {
            ApiError::new(400, format!("Labels: the value of {k} is not a string"))
        })?;
        args.extend(["--label".into(), format!("{k}={v}")]);
    }
    args.push(name.to_string());
    if find(svc, name).is_ok() {
        return Err(ApiError::new(
            409,
            format!("network with name {name} already exists"),
        ));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    network_cli(svc, &argv)?;
    send_json(conn, 201, &json!({"Id": name, "Warning": ""}))
}

/// `DELETE /networks/{id}`.
pub fn remove(svc: &Arc<Service>, conn: &mut Conn, id: &str) -> ApiResult<()> {
    if BUILTIN.contains(&id) {
        return Err(ApiError::new(
            403,
            format!("{id} is a pre-defined network and cannot be removed"),
        ));
    }
    let v = netbr_inspect(svc, id)?;
    if v["allocations"].as_array().is_some_and(|a| !a.is_empty()) {
        return Err(ApiError::new(
            403,
            format!("error while removing network: network {id} id {id} has active endpoints"),
        ));
    }
    network_cli(svc, &["rm", id])?;
    send_empty(conn, 204)
}

/// The `Container` of a connect/disconnect body, resolved to its record.
fn body_container(svc: &Service, b: &Value) -> ApiResult<ctrstate::record::Record> {
    let c = b["Container"].as_str().unwrap_or("");
    if c.is_empty() {
        return Err(ApiError::new(400, "Container: must be specified"));
    }
    resolve(svc, c)
}

fn read_json(conn: &mut Conn, req: &mut Request) -> ApiResult<Value> {
    let body = conn
        .read_body(req, 1 << 20)
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    serde_json::from_slice(&body).map_err(|e| ApiError::new(400, format!("invalid JSON: {e}")))
}

/// `POST /networks/{id}/connect` (`EndpointConfig.Aliases`; a fixed
/// address is refused rather than ignored).
pub fn connect(svc: &Arc<Service>, conn: &mut Conn, req: &mut Request, id: &str) -> ApiResult<()> {
    let b = read_json(conn, req)?;
    netbr_inspect(svc, id)?;
    let rec = body_container(svc, &b)?;
    let ep = &b["EndpointConfig"];
    if ep["IPAMConfig"].as_object().is_some_and(|o| {
        o.values()
            .any(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    }) {
        return Err(ApiError::new(
            400,
            "EndpointConfig.IPAMConfig: a fixed address on connect is not supported by mydocker",
        ));
    }
    let mut args = vec!["connect".to_string()];
    for a in ep["Aliases"].as_array().into_iter().flatten() {
        if let Some(a) = a.as_str() {
            args.extend(["--alias".into(), a.into()]);
        }
    }
    args.extend([id.to_string(), rec.id.clone()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    network_cli(svc, &argv)?;
    send_empty(conn, 200)
}

/// `POST /networks/{id}/disconnect`.
pub fn disconnect(
    svc: &Arc<Service>,
    conn: &mut Conn,
    req: &mut Request,
    id: &str,
) -> ApiResult<()> {
    let b = read_json(conn, req)?;
    netbr_inspect(svc, id)?;
    let rec = body_container(svc, &b)?;
    network_cli(svc, &["disconnect", id, &rec.id])?;
    send_empty(conn, 200)
}

/// `POST /networks/prune`: every network but the predefined ones without
/// a container (`label` and `until` filters).
pub fn prune(svc: &Arc<Service>, conn: &mut Conn, req: &Request) -> ApiResult<()> {
    let f = Filters::parse(req, &["label", "label!", "until"])?;
    let until = match f.values("until") {
        [] => None,
        [u] => Some(super::system::parse_until(u)?),
        _ => return Err(ApiError::new(400, "invalid filter 'until': one value")),
    };
    let mut deleted = vec![];
    for n in all(svc)? {
        let name = n["Name"].as_str().unwrap_or("").to_string();
        let unused = n["Containers"].as_object().is_some_and(|c| c.is_empty());
        let created =
            crate::humanize::parse_rfc3339(n["Created"].as_str().unwrap_or("")).unwrap_or(0.0);
        if BUILTIN.contains(&name.as_str())
            || !unused
            || !f.labels_match(&n["Labels"])
            || until.is_some_and(|u| created >= u)
        {
            continue;
        }
        // One a container joined meanwhile stays (rm refuses it).
        if network_cli(svc, &["rm", &name]).is_ok() {
            deleted.push(name);
        }
    }
    send_json(conn, 200, &json!({"NetworksDeleted": deleted}))
}
