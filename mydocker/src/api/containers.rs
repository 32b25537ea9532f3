//! Container endpoints: list, create, inspect, start, wait, stop, kill,
//! restart, remove. Create builds the same `run` flags a person would type
//! and goes through the CLI's own parser and checks; every other action is
//! the `mydocker` command itself, run with the service's root.

use super::http::{Conn, Request};
use super::{send_empty, send_json, ApiError, ApiResult, Service};
use crate::runconfig::RunConfig;
use ctrstate::record::{Record, Status};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Largest create body accepted (a config is a few KiB).
const MAX_CONFIG: u64 = 4 << 20;

/// The record `r` names (id, prefix or name), or docker's 404.
pub fn resolve(svc: &Service, r: &str) -> ApiResult<Record> {
    crate::records::get(&svc.ctx, r).map_err(|e| {
        let m = e.to_string();
        if m.contains("no such container") {
            ApiError::new(404, format!("No such container: {r}"))
        } else {
            ApiError::from_message(m)
        }
    })
}

/// `mydocker --root ROOT ARGS...`: its stdout, or its error with docker's status.
pub fn cli(svc: &Service, args: &[&str]) -> ApiResult<String> {
    let out = mydocker(svc)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ApiError::new(500, format!("run mydocker: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(ApiError::from_message(cli_message(&out.stderr)))
}

/// The `mydocker` binary with the service's root.
pub fn mydocker(svc: &Service) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "mydocker".into());
    // A binary replaced under the running service (an upgrade, a rebuild)
    // reads as "PATH (deleted)": the new one at PATH is the CLI now.
    let exe = match exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
        Some(p) => std::path::PathBuf::from(p),
        None => exe,
    };
    let mut c = Command::new(exe);
    c.arg("--root").arg(&svc.ctx.root);
    c
}

/// The CLI's error line without its prefix (the last line that says something).
pub fn cli_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("mydocker failed");
    ["Error response from daemon: ", "mydocker: ", "Error: "]
        .iter()
        .fold(line, |l, p| l.strip_prefix(p).unwrap_or(l))
        .to_string()
}

fn unix_time(t: &str) -> i64 {
    crate::humanize::parse_rfc3339(t).unwrap_or(0.0) as i64
}

fn config_of(r: &Record) -> RunConfig {
    serde_json::from_value(Value::Object(r.config.clone())).unwrap_or_default()
}

/// `GET /containers/json`: docker's summaries (`all`, `limit`, and
/// `filters` as `ps --filter` takes them: id, name, label, status, exited,
/// ancestor, network, volume, before, since).
pub fn list(svc: &Arc<Service>, conn: &mut Conn, req: &Request) -> ApiResult<()> {
    let filters: Value = match req.q("filters") {
        Some(f) if !f.is_empty() => serde_json::from_str(f)
            .map_err(|e| ApiError::new(400, format!("invalid filter: {e}")))?,
        _ => json!({}),
    };
    let mut specs = vec![];
    let (mut before, mut since) = (None, None);
    for (k, v) in filters.as_object().into_iter().flatten() {
        for val in super::ctrops::filter_values(v) {
            match k.as_str() {
                "before" => before = Some(val),
                "since" => since = Some(val),
                _ => specs.push(format!("{k}={val}")),
            }
        }
    }
    let f = crate::ps::Filters::parse(&specs).map_err(|e| ApiError::new(400, e.to_string()))?;
    let recs = crate::records::list(&svc.ctx)?;
    let created = |r: &str| -> ApiResult<f64> {
        let rec = resolve(svc, r)?;
        Ok(crate::humanize::parse_rfc3339(&rec.created).unwrap_or(0.0))
    };
    let before = before.map(|b| created(&b)).transpose()?;
    let since = since.map(|b| created(&b)).transpose()?;
    let all = req.flag("all")
        || filters.get("status").is_some()
        || filters.get("exited").is_some()
        || before.is_some()
        || since.is_some();
    let mut out: Vec<(f64, Value)> = recs
        .iter()
        .filter(|r| all || matches!(r.status, Status::Running | Status::Paused))
        .filter(|r| f.matches(r))
        .filter_map(|r| {
            let t = crate::humanize::parse_rfc3339(&r.created).unwrap_or(0.0);
            let keep = before.is_none_or(|b| t < b) && since.is_none_or(|s| t > s);
            keep.then(|| (t, summary(r)))
        })
        .collect();
    // Newest first, as docker lists them.
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    if let Some(n) = req
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        out.truncate(n);
    }
    send_json(
        conn,
        200,
        &Value::Array(out.into_iter().map(|x| x.1).collect()),
    )
}

fn status_word(r: &Record) -> String {
    serde_json::to_value(r.status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn summary(r: &Record) -> Value {
    let cfg = config_of(r);
    let command = r
        .command
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let ports: Vec<Value> = r
        .ports
        .iter()
        .map(|p| {
            json!({
                "IP": p["hostIP"].as_str().filter(|s| !s.is_empty()).unwrap_or("0.0.0.0"),
                "PrivatePort": p["containerPort"],
                "PublicPort": p["hostPort"],
                "Type": p["protocol"].as_str().unwrap_or("tcp"),
            })
        })
        .collect();
    let networks = r.network.get("Networks").cloned().unwrap_or(json!({}));
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": command,
        "Created": unix_time(&r.created),
        "Ports": ports,
        "Labels": crate::ps::labels(r),
        "State": status_word(r),
        "Status": crate::ps::status_text(r),
        "HostConfig": {"NetworkMode": if cfg.network.is_empty() { "bridge".to_string() } else { cfg.network.clone() }},
        "NetworkSettings": {"Networks": networks},
        "Mounts": r.mounts,
    })
}

/// `GET /containers/{id}/json`: the CLI's inspect, plus the fields docker's
/// clients read that it leaves out.
pub fn inspect(svc: &Arc<Service>, conn: &mut Conn, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let mut v = crate::inspect::to_docker(&svc.ctx, &rec);
    let cfg = config_of(&rec);
    v["Config"]["AttachStdin"] = json!(false);
    v["Config"]["AttachStdout"] = json!(true);
    v["Config"]["AttachStderr"] = json!(true);
    v["Config"]["StdinOnce"] = json!(false);
    v["HostConfig"]["NetworkMode"] = json!(if cfg.network.is_empty() {
        "bridge"
    } else {
        &cfg.network
    });
    v["State"]["Status"] = json!(status_word(&rec));
    v["Platform"] = json!("linux");
    send_json(conn, 200, &v)
}

/// `POST /containers/create?name=`: the body's Config and HostConfig as
/// `run` flags, checked by the CLI's parser and `RunConfig`, then recorded
/// as created (not started) exactly as `run` records it.
pub fn create(svc: &Arc<Service>, conn: &mut Conn, req: &mut Request) -> ApiResult<()> {
    let body = conn
        .read_body(req, MAX_CONFIG)
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(400, format!("invalid JSON: {e}")))?;
    if !body.is_object() {
        return Err(ApiError::new(
            400,
            "config cannot be empty in order to create a container",
        ));
    }
    let argv = run_flags(&body, req.q("name"))?;
    let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&argv).map_err(|e| {
        let m = e.to_string();
        ApiError::new(
            400,
            m.lines()
                .next()
                .unwrap_or("bad parameter")
                .trim_start_matches("error: ")
                .to_string(),
        )
    })?;
    let crate::cli::Cmd::Run(a) = cli.cmd else {
        return Err(ApiError::new(500, "create: flags did not parse as run"));
    };
    let ctx = &svc.ctx;
    let image = ctx
        .layerfs()
        .args(["inspect", &a.image])
        .json()
        .map_err(|_| ApiError::new(404, format!("No such image: {}", full_ref(&a.image))))?;
    let image_id = image["id"].as_str().unwrap_or_default().to_string();
    let mut cfg = RunConfig::from_run(&a, &image_id, &image["config"]["config"])
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    // container:X namespaces and --volumes-from, as `mydocker create`
    // resolves them (the targets need only run at start).
    // A missing target is a 400 here, not docker's 404: the docker CLI
    // takes any 404 at create for a missing image and would try a pull.
    crate::nsjoin::resolve(ctx, &a, &mut cfg, false)
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let warnings = crate::runflags::oom_kill_disable(&mut cfg.extra, &mut cfg.resources);
    // The API's Entrypoint is a list (the CLI's flag takes one word).
    if let Some(ep) = strings(&body["Entrypoint"]) {
        cfg.entrypoint = ep.into_iter().filter(|s| !s.is_empty()).collect();
        cfg.cmd = strings(&body["Cmd"]).unwrap_or_default();
        if cfg.args().is_empty() {
            return Err(ApiError::new(400, "no command specified"));
        }
    }
    let record_in = json!({
        "name": a.name.clone().unwrap_or_default(),
        "image": a.image,
        "imageId": image_id,
        "command": cfg.args(),
        "config": serde_json::to_value(&cfg).unwrap(),
    });
    let rec = ctx
        .ctrstate()
        .arg("create")
        .stdin_json(&record_in)
        .json()
        .map_err(|e| {
            let m = e.to_string();
            if m.contains("already in use") {
                let name = a.name.clone().unwrap_or_default();
                ApiError::new(409, format!("Conflict. The container name \"/{name}\" is already in use. You have to remove (or rename) that container to be able to reuse that name."))
            } else {
                ApiError::from_message(m)
            }
        })?;
    send_json(conn, 201, &json!({"Id": rec["id"], "Warnings": warnings}))
}

/// `busybox` as docker names it in errors: `busybox:latest`.
fn full_ref(r: &str) -> String {
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') || r.contains('@') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

/// A JSON list of strings (or one string) as strings; None when absent.
fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect(),
        ),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

/// The HostConfig fields create reads (or knows to ignore: `ConsoleSize`
/// comes back as a resize, `ContainerIDFile` is the client's to write).
/// Any other field with a value is refused rather than silently dropped.
const HOST_CONFIG: &[&str] = &[
    "Binds",
    "Mounts",
    "PortBindings",
    "PublishAllPorts",
    "NetworkMode",
    "RestartPolicy",
    "Memory",
    "MemoryReservation",
    "MemorySwap",
    "NanoCpus",
    "CpuShares",
    "CpuPeriod",
    "CpuQuota",
    "CpusetCpus",
    "CpusetMems",
    "PidsLimit",
    "CapAdd",
    "CapDrop",
    "Privileged",
    "SecurityOpt",
    "Devices",
    "DeviceCgroupRules",
    "Init",
    "AutoRemove",
    "Dns",
    "DnsSearch",
    "DnsOptions",
    "ExtraHosts",
    "Tmpfs",
    "ShmSize",
    "Ulimits",
    "Sysctls",
    "LogConfig",
    "ReadonlyRootfs",
    "CgroupnsMode",
    "CgroupParent",
    "GroupAdd",
    "OomScoreAdj",
    "PidMode",
    "IpcMode",
    "UTSMode",
    "ConsoleSize",
    "ContainerIDFile",
    "VolumesFrom",
    "OomKillDisable",
];

/// True when a JSON value carries something (not null, zero, empty or false).
fn is_set(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Bool(true) => true,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_set),
        Value::Object(o) => o.values().any(is_set),
    }
}

/// The create body's fields mydocker has no flag for, refused with docker's
/// 400 (a log driver, more than one network at create).
fn refuse_unsupported(body: &Value) -> ApiResult<()> {
    let h = &body["HostConfig"];
    for (k, v) in h.as_object().into_iter().flatten() {
        // -1 is docker's "not set" for the swappiness.
        let unset = k == "MemorySwappiness" && v.as_i64() == Some(-1);
        if !HOST_CONFIG.contains(&k.as_str()) && is_set(v) && !unset {
            return Err(ApiError::new(
                400,
                format!("HostConfig.{k} is not supported by mydocker"),
            ));
        }
    }
    if let Some(eps) = body["NetworkingConfig"]["EndpointsConfig"].as_object() {
        if eps.len() > 1 {
            let mut names: Vec<&str> = eps.keys().map(String::as_str).collect();
            names.sort();
            return Err(ApiError::new(
                400,
                format!(
                    "Container cannot be connected to network endpoints: {}",
                    names.join(", ")
                ),
            ));
        }
        for (n, ep) in eps {
            if is_set(&ep["Links"]) {
                return Err(ApiError::new(
                    400,
                    format!("EndpointsConfig.{n}.Links is not supported by mydocker"),
                ));
            }
        }
    }
    Ok(())
}

/// An exec-form command as one shell line (the health flag takes a shell
/// command): each word single-quoted unless plain.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && n.len() > 1
        && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}

/// The `mydocker run` argv for a create body.
fn run_flags(body: &Value, name: Option<&str>) -> ApiResult<Vec<String>> {
    let mut f: Vec<String> = vec!["mydocker".into(), "run".into()];
    let mut push = |flag: &str, v: String| {
        f.push(format!("--{flag}={v}"));
    };
    let s = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        let n = n.trim_start_matches('/');
        if !valid_name(n) {
            return Err(ApiError::new(
                400,
                format!("Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
            ));
        }
        push("name", n.to_string());
    }
    for e in strings(&body["Env"]).unwrap_or_default() {
        push("env", e);
    }
    if let Some(w) = s(&body["WorkingDir"]) {
        push("workdir", w);
    }
    if let Some(u) = s(&body["User"]) {
        push("user", u);
    }
    if let Some(h) = s(&body["Hostname"]) {
        push("hostname", h);
    }
    if let Some(d) = s(&body["Domainname"]) {
        push("domainname", d);
    }
    let h = &body["HostConfig"];
    refuse_unsupported(body)?;
    // (serde_json's maps are sorted: the flags come in a stable order.)
    for (k, v) in body["Labels"].as_object().into_iter().flatten() {
        push("label", format!("{k}={}", v.as_str().unwrap_or("")));
    }
    if let Some(sig) = s(&body["StopSignal"]) {
        push("stop-signal", sig);
    }
    if let Some(t) = body["StopTimeout"].as_i64() {
        push("stop-timeout", t.to_string());
    }
    let restart = &h["RestartPolicy"];
    match restart["Name"].as_str().unwrap_or("") {
        "" | "no" => {}
        n => match restart["MaximumRetryCount"].as_u64().filter(|c| *c > 0) {
            Some(c) => push("restart", format!("{n}:{c}")),
            None => push("restart", n.to_string()),
        },
    }
    for (key, flag) in [("PidMode", "pid"), ("IpcMode", "ipc"), ("UTSMode", "uts")] {
        if let Some(m) = s(&h[key]) {
            push(flag, m);
        }
    }
    // The driver and options are checked by the run flags' parser.
    let log = &h["LogConfig"];
    if let Some(t) = s(&log["Type"]) {
        push("log-driver", t);
    }
    for (k, v) in log["Config"].as_object().into_iter().flatten() {
        push("log-opt", format!("{k}={}", v.as_str().unwrap_or("")));
    }
    if let Some(n) = h["ShmSize"].as_i64().filter(|n| *n != 0) {
        push("shm-size", n.to_string());
    }
    if let Some(n) = h["OomScoreAdj"].as_i64().filter(|n| *n != 0) {
        push("oom-score-adj", n.to_string());
    }
    for u in h["Ulimits"].as_array().into_iter().flatten() {
        let name = u["Name"].as_str().unwrap_or("");
        push(
            "ulimit",
            format!(
                "{name}={}:{}",
                u["Soft"].as_i64().unwrap_or(0),
                u["Hard"].as_i64().unwrap_or(0)
            ),
        );
    }
    for (k, v) in h["Sysctls"].as_object().into_iter().flatten() {
        push("sysctl", format!("{k}={}", v.as_str().unwrap_or("")));
    }
    for g in strings(&h["GroupAdd"]).unwrap_or_default() {
        push("group-add", g);
    }
    for v in strings(&h["VolumesFrom"]).unwrap_or_default() {
        push("volumes-from", v);
    }
    let hc = &body["Healthcheck"];
    let mut no_healthcheck = false;
    let test = strings(&hc["Test"]).unwrap_or_default();
    match test.first().map(String::as_str) {
        None => {}
        Some("NONE") => no_healthcheck = true,
        Some("CMD-SHELL") => push("health-cmd", test[1..].join(" ")),
        Some("CMD") => push("health-cmd", shell_words(&test[1..])),
        Some(k) => {
            return Err(ApiError::new(
                400,
                format!("Healthcheck.Test: unknown kind {k:?} (want NONE, CMD or CMD-SHELL)"),
            ))
        }
    }
    // Durations in ns, which the flags take as Go durations.
    for (key, flag) in [
        ("Interval", "health-interval"),
        ("Timeout", "health-timeout"),
        ("StartPeriod", "health-start-period"),
    ] {
        if let Some(n) = hc[key].as_i64().filter(|n| *n != 0) {
            push(flag, format!("{n}ns"));
        }
    }
    if let Some(n) = hc["Retries"].as_i64().filter(|n| *n != 0) {
        push("health-retries", n.to_string());
    }
    if body["NetworkDisabled"].as_bool() == Some(true) {
        push("network", "none".to_string());
    }
    let mode = h["NetworkMode"].as_str().unwrap_or("");
    for (net, ep) in body["NetworkingConfig"]["EndpointsConfig"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if matches!(mode, "" | "default") && !matches!(net.as_str(), "default" | "bridge") {
            push("network", net.clone());
        }
        for a in strings(&ep["Aliases"]).unwrap_or_default() {
            push("network-alias", a);
        }
        if let Some(ip) = s(&ep["IPAMConfig"]["IPv4Address"]) {
            push("ip", ip);
        }
        if let Some(ip) = s(&ep["IPAMConfig"]["IPv6Address"]) {
            push("ip6", ip);
        }
        if let Some(m) = s(&ep["MacAddress"]) {
            push("mac-address", m);
        }
    }
    match h["NetworkMode"].as_str() {
        None | Some("") | Some("default") => {}
        Some(n) => push("network", n.to_string()),
    }
    if let Some(pb) = h["PortBindings"].as_object() {
        for (port, binds) in pb {
            let binds = binds.as_array().cloned().unwrap_or_default();
            if binds.is_empty() {
                push("publish", port.clone());
            }
            for b in binds {
                let ip = b["HostIp"].as_str().unwrap_or("");
                let hp = b["HostPort"].as_str().unwrap_or("");
                push(
                    "publish",
                    match (ip.is_empty(), hp.is_empty()) {
                        (true, true) => port.clone(),
                        (true, false) => format!("{hp}:{port}"),
                        (false, _) => format!("{ip}:{hp}:{port}"),
                    },
                );
            }
        }
    }
    if h["PublishAllPorts"].as_bool() == Some(true) {
        f.push("--publish-all".into());
    }
    if h["OomKillDisable"].as_bool() == Some(true) {
        f.push("--oom-kill-disable".into());
    }
    if no_healthcheck {
        f.push("--no-healthcheck".into());
    }
    let mut push = |flag: &str, v: String| f.push(format!("--{flag}={v}"));
    for b in strings(&h["Binds"]).unwrap_or_default() {
        push("volume", b);
    }
    // Volumes (anonymous ones) in the Config; compose and the SDK also
    // name there the targets of their Binds and Mounts: those are not new.
    let bound: Vec<String> = strings(&h["Binds"])
        .unwrap_or_default()
        .iter()
        .filter_map(|b| b.split(':').nth(1).map(String::from))
        .chain(
            h["Mounts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["Target"].as_str().map(String::from)),
        )
        .collect();
    if let Some(vols) = body["Volumes"].as_object() {
        for v in vols.keys().filter(|v| !bound.contains(v)) {
            push("volume", v.clone());
        }
    }
    if let Some(mounts) = h["Mounts"].as_array() {
        for m in mounts {
            let mut spec = format!(
                "type={},target={}",
                m["Type"].as_str().unwrap_or("volume"),
                m["Target"].as_str().unwrap_or("")
            );
            if let Some(src) = s(&m["Source"]) {
                spec.push_str(&format!(",source={src}"));
            }
            if m["ReadOnly"].as_bool() == Some(true) {
                spec.push_str(",readonly");
            }
            push("mount", spec);
        }
    }
    if let Some(t) = h["Tmpfs"].as_object() {
        for (path, opts) in t {
            let o = opts.as_str().unwrap_or("");
            push(
                "tmpfs",
                if o.is_empty() {
                    path.clone()
                } else {
                    format!("{path}:{o}")
                },
            );
        }
    }
    let num = |k: &str| h[k].as_i64().filter(|n| *n != 0);
    if let Some(m) = num("Memory") {
        push("memory", m.to_string());
    }
    if let Some(m) = num("MemoryReservation") {
        push("memory-reservation", m.to_string());
    }
    if let Some(m) = num("MemorySwap") {
        push("memory-swap", m.to_string());
    }
    if let Some(n) = num("NanoCpus") {
        push("cpus", format!("{}", n as f64 / 1e9));
    }
    if let Some(n) = num("CpuShares") {
        push("cpu-shares", n.to_string());
    }
    if let Some(n) = num("CpuPeriod") {
        push("cpu-period", n.to_string());
    }
    if let Some(n) = num("CpuQuota") {
        push("cpu-quota", n.to_string());
    }
    if let Some(c) = s(&h["CpusetCpus"]) {
        push("cpuset-cpus", c);
    }
    if let Some(c) = s(&h["CpusetMems"]) {
        push("cpuset-mems", c);
    }
    if let Some(n) = num("PidsLimit") {
        push("pids-limit", n.to_string());
    }
    for (key, flag) in [
        ("CapAdd", "cap-add"),
        ("CapDrop", "cap-drop"),
        ("SecurityOpt", "security-opt"),
        ("Dns", "dns"),
        ("DnsSearch", "dns-search"),
        ("DnsOptions", "dns-option"),
        ("ExtraHosts", "add-host"),
        ("DeviceCgroupRules", "device-cgroup-rule"),
    ] {
        for v in strings(&h[key]).unwrap_or_default() {
            push(flag, v);
        }
    }
    if let Some(devs) = h["Devices"].as_array() {
        for d in devs {
            let host = d["PathOnHost"].as_str().unwrap_or("");
            let ctr = d["PathInContainer"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(host);
            let perms = d["CgroupPermissions"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("rwm");
            push("device", format!("{host}:{ctr}:{perms}"));
        }
    }
    if let Some(c) = s(&h["CgroupnsMode"]) {
        push("cgroupns", c);
    }
    if let Some(c) = s(&h["CgroupParent"]) {
        push("cgroup-parent", c);
    }
    if let Some(m) = s(&body["MacAddress"]) {
        push("mac-address", m);
    }
    for (key, flag) in [
        ("Tty", "--tty"),
        ("OpenStdin", "--interactive"),
        ("AutoRemove", "--rm"),
        ("Privileged", "--privileged"),
        ("ReadonlyRootfs", "--read-only"),
        ("Init", "--init"),
    ] {
        let v = if body[key].is_boolean() {
            &body[key]
        } else {
            &h[key]
        };
        if v.as_bool() == Some(true) {
            f.push(flag.into());
        }
    }
    if let Some(ep) = strings(&body["Entrypoint"]) {
        // Replaced by the whole list after parsing; this resets the image's.
        f.push(format!(
            "--entrypoint={}",
            ep.first().cloned().unwrap_or_default()
        ));
    }
    let image = s(&body["Image"]).ok_or_else(|| ApiError::new(400, "Config.Image is required"))?;
    f.push("--".into());
    f.push(image);
    f.extend(strings(&body["Cmd"]).unwrap_or_default());
    Ok(f)
}

/// `POST /containers/{id}/start`: 304 when running; an attach waiting for
/// this container makes it a `start -a` child relayed to that client.
pub fn start(svc: &Arc<Service>, conn: &mut Conn, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    if matches!(rec.status, Status::Running | Status::Paused) {
        return send_empty(conn, 304);
    }
    let pending = svc.attaches.lock().unwrap().remove(&rec.id);
    let started = match pending {
        Some(p) => super::stream::start_attached(svc, &rec, p),
        None => cli(svc, &["start", &rec.id]).map(|_| ()),
    };
    if let Err(e) = started {
        // docker removes an AutoRemove container whose start failed (its
        // client waits for the removal).
        if config_of(&rec).auto_remove {
            let _ = cli(svc, &["rm", "--force", &rec.id]);
        }
        return Err(e);
    }
    send_empty(conn, 204)
}

/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`:
/// the head goes at once (docker's `run` waits for it before it starts the
/// container), `{"StatusCode": N}` when the condition holds.
pub fn wait(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let cond = req.q("condition").unwrap_or("not-running").to_string();
    if !["not-running", "next-exit", "removed", ""].contains(&cond.as_str()) {
        return Err(ApiError::new(400, format!("invalid condition: \"{cond}\"")));
    }
    let id = rec.id.clone();
    let first_finish = rec.finished_at.clone();
    let peer = conn
        .writer
        .try_clone()
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let mut out = conn
        .start_chunked(200, "application/json")
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let mut gone_since: Option<std::time::Instant> = None;
    let code = loop {
        if super::http::peer_gone(&peer) {
            return Ok(());
        }
        let now = crate::records::peek(&svc.ctx, &id);
        let ours = svc.exits.lock().unwrap().get(&id).cloned();
        match &now {
            None => {
                // Removed (--rm): the exit code is known only to the child
                // this service ran; give it a moment to report.
                let since = *gone_since.get_or_insert_with(std::time::Instant::now);
                match ours {
                    Some(Some(c)) => break c,
                    Some(None) if since.elapsed() < Duration::from_secs(10) => {}
                    _ => break rec.exit_code,
                }
            }
            Some(n) => {
                let stopped = !matches!(n.status, Status::Running | Status::Paused);
                let done = match cond.as_str() {
                    "next-exit" => {
                        stopped && n.status != Status::Created && n.finished_at != first_finish
                    }
                    "removed" => false,
                    _ => stopped,
                };
                if done {
                    break n.exit_code;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let body = json!({"StatusCode": code, "Error": null}).to_string();
    // A client gone by now needs no answer.
    let _ = out.send(body.as_bytes()).and_then(|_| out.finish());
    Ok(())
}

fn stop_time(req: &Request) -> ApiResult<String> {
    match req.q("t").or(req.q("timeout")) {
        None | Some("") => Ok("10".into()),
        Some(t) => t
            .parse::<i64>()
            .map(|t| t.max(0).to_string())
            .map_err(|_| ApiError::new(400, format!("invalid value for t: {t}"))),
    }
}

/// `POST /containers/{id}/stop?t=`: 304 when not running.
pub fn stop(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let t = stop_time(req)?;
    if !matches!(rec.status, Status::Running | Status::Paused) {
        return send_empty(conn, 304);
    }
    cli(svc, &["stop", "-t", &t, &rec.id])?;
    send_empty(conn, 204)
}

/// `POST /containers/{id}/kill?signal=`: 409 when not running.
pub fn kill(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    if !matches!(rec.status, Status::Running | Status::Paused) {
        return Err(ApiError::new(
            409,
            format!(
                "Cannot kill container: {r}: Container {} is not running",
                rec.id
            ),
        ));
    }
    let sig = req.q("signal").filter(|s| !s.is_empty()).unwrap_or("KILL");
    cli(svc, &["kill", "-s", sig, &rec.id])?;
    send_empty(conn, 204)
}

/// `POST /containers/{id}/restart?t=`.
pub fn restart(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let t = stop_time(req)?;
    cli(svc, &["restart", "-t", &t, &rec.id])?;
    send_empty(conn, 204)
}

/// `DELETE /containers/{id}?force=&v=`: 409 for a running one without force.
pub fn remove(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    if !req.flag("force") && matches!(rec.status, Status::Running | Status::Paused) {
        return Err(ApiError::new(409, format!("You cannot remove a running container {}. Stop the container before attempting removal or force remove", rec.id)));
    }
    let mut args = vec!["rm"];
    if req.flag("force") {
        args.push("--force");
    }
    if req.flag("v") {
        args.push("--volumes");
    }
    args.push(&rec.id);
    cli(svc, &args)?;
    send_empty(conn, 204)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_becomes_run_flags() {
        let body = json!({
            "Image": "busybox", "Cmd": ["echo", "hi"], "Env": ["A=1"], "Tty": true,
            "HostConfig": {"AutoRemove": true, "NetworkMode": "none", "Memory": 1048576,
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, "Binds": ["/tmp:/x:ro"],
                "NanoCpus": 500000000}
        });
        let f = run_flags(&body, Some("web")).unwrap();
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&f).unwrap();
        let crate::cli::Cmd::Run(a) = cli.cmd else {
            panic!()
        };
        assert_eq!(a.name.as_deref(), Some("web"));
        assert!(a.rm && a.tty && !a.interactive);
        assert_eq!(a.network, "none");
        assert_eq!(a.publish, vec!["8080:80/tcp"]);
        assert_eq!(a.volume, vec!["/tmp:/x:ro"]);
        assert_eq!(
            (a.image.as_str(), a.command.clone()),
            ("busybox", vec!["echo".to_string(), "hi".to_string()])
        );
        assert_eq!(a.env, vec!["A=1"]);
    }

    #[test]
    fn unsupported_host_config_is_refused() {
        let body = json!({"Image": "busybox", "HostConfig": {"Runtime": "runc"}});
        assert_eq!(run_flags(&body, None).unwrap_err().status, 400);
        // The docker CLI's zero values are not "set".
        let body = json!({"Image": "busybox", "HostConfig": {"Runtime": "", "ConsoleSize": [0, 0],
            "BlkioWeight": 0, "Links": null, "LogConfig": {"Type": "", "Config": {}}}});
        assert!(run_flags(&body, None).is_ok());
        for bad in [
            json!({"Image": "b", "Healthcheck": {"Test": ["WHAT", "true"]}}),
            json!({"Image": "b", "NetworkingConfig": {"EndpointsConfig": {"a": {}, "b": {}}}}),
        ] {
            assert_eq!(run_flags(&bad, None).unwrap_err().status, 400, "{bad}");
        }
        let body = json!({"HostConfig": {}});
        assert_eq!(run_flags(&body, None).unwrap_err().status, 400);
        let e = run_flags(&json!({"Image": "b"}), Some("a b")).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (
                400,
                "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        );
        assert!(run_flags(&json!({"Image": "b"}), Some("/a")).is_err());
        assert!(run_flags(&json!({"Image": "b"}), Some("/a.b_c-1")).is_ok());
    }

    #[test]
    fn log_config_and_container_modes_become_the_run_flags() {
        let body = json!({"Image": "b", "HostConfig": {
            "LogConfig": {"Type": "json-file", "Config": {"max-file": "2", "max-size": "1k"}},
            "PidMode": "container:c1", "IpcMode": "container:c1", "NetworkMode": "container:c1"}});
        let f = run_flags(&body, None).unwrap();
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&f).unwrap();
        let crate::cli::Cmd::Run(a) = cli.cmd else {
            panic!()
        };
        assert_eq!(a.log.log_driver.as_deref(), Some("json-file"));
        assert_eq!(a.log.log_opt, vec!["max-file=2", "max-size=1k"]);
        assert_eq!(a.network, "container:c1");
        let oom = json!({"Image": "b", "HostConfig": {"OomKillDisable": true}});
        assert!(run_flags(&oom, None)
            .unwrap()
            .contains(&"--oom-kill-disable".to_string()));
        let none = json!({"Image": "b", "HostConfig": {"LogConfig": {"Type": "none"}}});
        assert!(run_flags(&none, None)
            .unwrap()
            .contains(&"--log-driver=none".to_string()));
    }

    #[test]
    fn labels_policies_and_endpoints_become_flags() {
        let body = json!({
            "Image": "busybox", "Labels": {"a": "1", "com.x": ""}, "StopSignal": "SIGINT",
            "StopTimeout": 3,
            "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
                "Init": true, "ShmSize": 1048576, "Sysctls": {"net.ipv4.ip_forward": "1"},
                "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}]},
            "NetworkingConfig": {"EndpointsConfig": {"appnet": {"Aliases": ["db", "x"]}}}
        });
        let f = run_flags(&body, None).unwrap();
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&f).unwrap();
        let crate::cli::Cmd::Run(a) = cli.cmd else {
            panic!()
        };
        assert_eq!(a.extra.label, vec!["a=1", "com.x="]);
        assert_eq!(a.extra.restart.as_deref(), Some("on-failure:2"));
        assert_eq!(a.extra.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(a.extra.stop_timeout, Some(3));
        assert!(a.extra.init);
        assert_eq!(a.extra.ulimit, vec!["nofile=100:200"]);
        assert_eq!(a.extra.sysctl, vec!["net.ipv4.ip_forward=1"]);
        assert_eq!(a.network, "appnet");
        assert_eq!(a.net.network_alias, vec!["db", "x"]);
    }

    #[test]
    fn healthchecks_and_volumes_from_become_the_run_flags() {
        // (The flags come with the health and volumes-from work; only the
        // argv is checked here.)
        let body = json!({"Image": "b", "Healthcheck": {"Test": ["CMD", "wget", "-q", "a b"],
            "Interval": 2_000_000_000i64, "Retries": 2}, "HostConfig": {"VolumesFrom": ["c1:ro"]}});
        let f = run_flags(&body, None).unwrap();
        for want in [
            "--health-cmd=wget -q 'a b'",
            "--health-interval=2000000000ns",
            "--health-retries=2",
            "--volumes-from=c1:ro",
        ] {
            assert!(f.contains(&want.to_string()), "{want} in {f:?}");
        }
        let none = json!({"Image": "b", "Healthcheck": {"Test": ["NONE"]}});
        assert!(run_flags(&none, None)
            .unwrap()
            .contains(&"--no-healthcheck".to_string()));
    }

    #[test]
    fn refs_are_named_as_docker_names_them() {
        assert_eq!(full_ref("busybox"), "busybox:latest");
        assert_eq!(full_ref("localhost:5000/a"), "localhost:5000/a:latest");
        assert_eq!(full_ref("a:1"), "a:1");
    }
}
