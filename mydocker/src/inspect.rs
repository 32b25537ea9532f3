//! `mydocker inspect`: a JSON array shaped like docker's.

use crate::context::Ctx;
use crate::error::Result;
use crate::gotmpl::{Data, Template};
use crate::records;
use crate::runconfig::RunConfig;
use ctrstate::record::{Record, Status};
use serde_json::{json, Value};

/// `inspect [-f FORMAT] [--type container|image] REF...`: containers
/// first, then images, as docker does; a JSON array indented by four
/// spaces, or the template once per object.
pub fn inspect(ctx: &Ctx, a: &crate::cli::InspectArgs) -> Result<i32> {
    let kind = a.kind.as_deref().unwrap_or("");
    if !["", "container", "image"].contains(&kind) {
        eprintln!("\"{kind}\" is not a valid value for --type");
        return Ok(1);
    }
    let tmpl = match a.format.as_deref().filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => match Template::parse(f) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("template parsing error: {e}");
                return Ok(1);
            }
        },
    };
    let mut out = vec![];
    let mut code = 0;
    for r in &a.containers {
        let found = match kind {
            "image" => image(ctx, r),
            "container" => records::get(ctx, r)
                .ok()
                .map(|rec| container(ctx, &rec, a.size)),
            _ => records::get(ctx, r)
                .ok()
                .map(|rec| container(ctx, &rec, a.size))
                .or_else(|| image(ctx, r)),
        };
        match found {
            Some(v) => out.push(v),
            None => {
                let what = match kind {
                    "image" => "image",
                    "container" => "container",
                    _ => "object",
                };
                eprintln!("Error: No such {what}: {r}");
                code = 1;
            }
        }
    }
    print_objects(&out, tmpl.as_ref(), code)
}

/// A container's inspect object; with `size` docker's SizeRw and SizeRootFs.
fn container(ctx: &Ctx, rec: &Record, size: bool) -> Value {
    let mut v = to_docker(ctx, rec);
    if size {
        let (rw, root) = crate::ps::sizes(ctx, rec, &mut Default::default());
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(root);
    }
    v
}

/// The array or the template's output per object; the exit code.
pub fn print_objects(out: &[Value], tmpl: Option<&Template>, mut code: i32) -> Result<i32> {
    match tmpl {
        None => println!("{}", indent4(&Value::Array(out.to_vec()))),
        Some(t) => {
            for v in out {
                match t.execute(&Data::map(v), false) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
        }
    }
    Ok(code)
}

/// JSON indented by four spaces, as docker prints inspect output.
pub fn indent4(v: &Value) -> String {
    let mut buf = vec![];
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("JSON values serialize");
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

/// `image inspect IMAGE...`.
pub fn image_inspect(ctx: &Ctx, refs: &[String], format: Option<&str>) -> Result<i32> {
    let tmpl = match format.filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => match Template::parse(f) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("template parsing error: {e}");
                return Ok(1);
            }
        },
    };
    let mut out = vec![];
    let mut code = 0;
    for r in refs {
        match image(ctx, r) {
            Some(v) => out.push(v),
            None => {
                eprintln!("Error response from daemon: No such image: {r}");
                code = 1;
            }
        }
    }
    print_objects(&out, tmpl.as_ref(), code)
}

/// An image as docker's `image inspect` shows it; None when there is none.
pub fn image(ctx: &Ctx, r: &str) -> Option<Value> {
    let v = ctx.layerfs().args(["inspect", r]).json().ok()?;
    let c = &v["config"];
    let diff_ids = c["rootfs"]["diff_ids"].clone();
    Some(json!({
        "Id": v["id"],
        "RepoTags": v["repoTags"].as_array().cloned().unwrap_or_default(),
        "RepoDigests": v["repoDigests"].as_array().cloned().unwrap_or_default(),
        "Parent": "",
        "Comment": c["comment"].as_str().unwrap_or(""),
        "Created": c["created"].as_str().or(v["created"].as_str()).unwrap_or(""),
        "DockerVersion": c["docker_version"].as_str().unwrap_or(""),
        "Author": c["author"].as_str().unwrap_or(""),
        "Config": c["config"],
        "Architecture": c["architecture"].as_str().unwrap_or(""),
        "Os": c["os"].as_str().unwrap_or(""),
        "Size": v["size"],
        "GraphDriver": {"Data": null, "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": if diff_ids.is_array() { diff_ids } else { json!([]) }},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }))
}

pub fn to_docker(ctx: &Ctx, r: &Record) -> Value {
    let cfg: RunConfig =
        serde_json::from_value(Value::Object(r.config.clone())).unwrap_or_default();
    let dir = ctx.container_dir(&r.id);
    let mut v = json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.command.first().cloned().unwrap_or_default(),
        "Args": r.command.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": r.status,
            // docker counts a container in its restart backoff as running.
            "Running": matches!(r.status, Status::Running | Status::Paused | Status::Restarting),
            "Paused": r.status == Status::Paused,
            "Restarting": r.status == Status::Restarting,
            "OOMKilled": r.oom_killed,
            "Dead": r.status == Status::Dead,
            "Pid": r.pid,
            "ExitCode": r.exit_code,
            "Error": r.error.clone().unwrap_or_default(),
            "StartedAt": r.started_at,
            "FinishedAt": r.finished_at,
        },
        "Image": r.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": if cfg.log_config.enabled() { json!(crate::logfile::path(&dir, &r.id)) } else { json!("") },
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": "overlay2",
        "Mounts": r.mounts,
        "Config": {
            "Hostname": if cfg.hostname.is_empty() { r.id[..12].to_string() } else { cfg.hostname.clone() },
            "User": cfg.user,
            "Tty": cfg.tty,
            "OpenStdin": cfg.open_stdin,
            "Env": cfg.env,
            "Cmd": cfg.cmd,
            "Entrypoint": if cfg.entrypoint.is_empty() { Value::Null } else { json!(cfg.entrypoint) },
            "Image": r.image,
            "WorkingDir": cfg.working_dir,
            "Labels": cfg.extra.labels,
            "StopSignal": if cfg.extra.stop_signal.is_empty() { Value::Null } else { json!(cfg.extra.stop_signal) },
            "StopTimeout": cfg.extra.stop_timeout,
        },
        "HostConfig": host_config(&cfg),
        "NetworkSettings": network_settings(r),
    });
    if let Some(h) = crate::health::state(r) {
        v["State"]["Health"] = json!(h);
    }
    if let Some(h) = &cfg.healthcheck {
        v["Config"]["Healthcheck"] = json!(h);
    }
    v
}

fn host_config(cfg: &RunConfig) -> Value {
    let mut h = cfg.security.host_config();
    h["AutoRemove"] = json!(cfg.auto_remove);
    h["ReadonlyRootfs"] = json!(cfg.read_only);
    let x = &cfg.extra;
    let restart = if x.restart.name.is_empty() {
        "no"
    } else {
        &x.restart.name
    };
    h["RestartPolicy"] =
        json!({"Name": restart, "MaximumRetryCount": x.restart.maximum_retry_count});
    h["Ulimits"] =
        json!(x.ulimits.iter().map(|u| json!({
        "Name": u["type"].as_str().unwrap_or("").trim_start_matches("RLIMIT_").to_lowercase(),
        "Soft": u["soft"], "Hard": u["hard"],
    })).collect::<Vec<_>>());
    h["ShmSize"] = json!(if x.shm_size > 0 { x.shm_size } else { 64 << 20 });
    h["Sysctls"] = json!(x.sysctls);
    h["GroupAdd"] = json!(x.group_add);
    h["OomScoreAdj"] = json!(x.oom_score_adj.unwrap_or(0));
    h["Init"] = json!(x.init.is_some());
    h["PidMode"] = json!(match (x.pid_host, x.pid_container.as_str()) {
        (true, _) => "host".to_string(),
        (_, "") => String::new(),
        (_, c) => format!("container:{c}"),
    });
    h["IpcMode"] = json!(match (x.ipc_host, x.ipc_container.as_str()) {
        (true, _) => "host".to_string(),
        (_, "") => "private".to_string(),
        (_, c) => format!("container:{c}"),
    });
    h["NetworkMode"] = json!(match cfg.network.as_str() {
        "" | "default" => "bridge",
        n => n,
    });
    h["VolumesFrom"] = json!(x.volumes_from);
    h["Annotations"] = json!(x.annotations);
    h["OomKillDisable"] = json!(x.oom_kill_disable);
    h["UTSMode"] = json!(if x.uts_host { "host" } else { "" });
    h["LogConfig"] = json!(cfg.log_config);
    h
}

fn network_settings(r: &Record) -> Value {
    if r.network.is_null() {
        return json!({"Networks": {}, "Ports": {}, "IPAddress": ""});
    }
    r.network.clone()
}
