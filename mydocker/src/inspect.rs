//! `mydocker inspect`: a JSON array shaped like docker's.

use crate::context::Ctx;
use crate::error::Result;
use crate::records;
use crate::runconfig::RunConfig;
use ctrstate::record::{Record, Status};
use serde_json::{json, Value};

pub fn inspect(ctx: &Ctx, refs: &[String]) -> Result<i32> {
    let mut out = vec![];
    let mut code = 0;
    for r in refs {
        match records::get(ctx, r) {
            Ok(rec) => out.push(to_docker(ctx, &rec)),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Array(out)).unwrap()
    );
    Ok(code)
}

pub fn to_docker(ctx: &Ctx, r: &Record) -> Value {
    let cfg: RunConfig =
        serde_json::from_value(Value::Object(r.config.clone())).unwrap_or_default();
    let dir = ctx.container_dir(&r.id);
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.command.first().cloned().unwrap_or_default(),
        "Args": r.command.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": r.status,
            "Running": matches!(r.status, Status::Running | Status::Paused),
            "Paused": r.status == Status::Paused,
            "Restarting": false,
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
        "LogPath": dir.join(format!("{}-json.log", r.id)),
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
        },
        "HostConfig": host_config(&cfg),
        "NetworkSettings": network_settings(r),
    })
}

fn host_config(cfg: &RunConfig) -> Value {
    let mut h = cfg.security.host_config();
    h["AutoRemove"] = json!(cfg.auto_remove);
    h["ReadonlyRootfs"] = json!(cfg.read_only);
    h
}

fn network_settings(r: &Record) -> Value {
    if r.network.is_null() {
        return json!({"Networks": {}, "Ports": {}, "IPAddress": ""});
    }
    r.network.clone()
}
