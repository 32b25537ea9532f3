//! The other container endpoints: top, stats (docker's JSON, one sample or
//! a stream), pause/unpause, rename, update, prune and resize. Reads go
//! through the store and cgctl as the CLI's do; actions run the `mydocker`
//! command with the service's root.

use super::containers::{cli, resolve};
use super::http::{Conn, Request};
use super::{send_empty, send_json, ApiError, ApiResult, Service};
use ctrstate::record::{Record, Status};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Largest update body accepted.
const MAX_BODY: u64 = 1 << 20;

fn running(r: &Record) -> bool {
    matches!(r.status, Status::Running | Status::Paused)
        && crate::records::alive(r.pid, r.pid_start_time)
}

fn not_running(r: &Record) -> ApiError {
    ApiError::new(409, format!("Container {} is not running", r.id))
}

/// `GET /containers/{id}/top?ps_args=`: docker's way, the host's `ps` with
/// those arguments, its rows kept for the container's pids (the CLI's
/// `stats::top_table`).
pub fn top(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    if !running(&rec) {
        return Err(not_running(&rec));
    }
    let ps_args: Vec<String> = req
        .q("ps_args")
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let (titles, procs) = crate::stats::top_table(&svc.ctx, &rec, &ps_args)
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    send_json(conn, 200, &json!({"Titles": titles, "Processes": procs}))
}

/// Host CPU time in ns (docker's `system_cpu_usage`, from /proc/stat).
fn system_cpu() -> u64 {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let l = s.lines().next()?.to_string();
            let jiffies: u64 = l
                .split_ascii_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|n| n.parse::<u64>().ok())
                .sum();
            Some(jiffies * (1_000_000_000 / tick))
        })
        .unwrap_or(0)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// The container's interfaces' counters, from its netns's /proc/net/dev.
fn networks(pid: u32) -> Value {
    let mut m = serde_json::Map::new();
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let n: Vec<u64> = rest
            .split_ascii_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if n.len() < 12 {
            continue;
        }
        m.insert(
            name.to_string(),
            json!({
                "rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2], "rx_dropped": n[3],
                "tx_bytes": n[8], "tx_packets": n[9], "tx_errors": n[10], "tx_dropped": n[11],
            }),
        );
    }
    Value::Object(m)
}

fn rfc3339_now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One sample: (read time, cpu_stats, memory_stats, pids_stats, networks,
/// cgctl's block I/O counters).
struct Sample {
    read: String,
    io: Value,
    cpu: Value,
    memory: Value,
    pids: Value,
    networks: Value,
}

fn sample(svc: &Service, rec: &Record) -> Sample {
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let live = crate::records::peek(&svc.ctx, &rec.id).is_some_and(|r| running(&r));
    let s = if live {
        svc.ctx
            .cgctl()
            .args(["stats", &svc.ctx.cgroup(rec)])
            .json()
            .ok()
    } else {
        None
    };
    let Some(s) = s else {
        return Sample {
            read: rfc3339_now(),
            io: json!({"serviceBytes": null, "serviced": null}),
            cpu: json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}),
            memory: json!({}),
            pids: json!({}),
            networks: json!({}),
        };
    };
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    // docker's null for no entries (what it sends without blkio counters).
    let entries = |v: &Value| match v.as_array() {
        Some(a) if !a.is_empty() => v.clone(),
        _ => Value::Null,
    };
    Sample {
        read: rfc3339_now(),
        io: json!({"serviceBytes": entries(&s["io"]["serviceBytes"]),
            "serviced": entries(&s["io"]["serviced"])}),
        cpu: json!({
            "cpu_usage": {"total_usage": u(&s["cpu"]["usageNs"]), "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": system_cpu(),
            "online_cpus": ncpu,
            "throttling_data": {"periods": 0, "throttled_periods": u(&s["cpu"]["throttledPeriods"]),
                "throttled_time": u(&s["cpu"]["throttledNs"])},
        }),
        memory: json!({
            "usage": u(&s["memory"]["usage"]),
            "max_usage": s["memory"]["maxUsage"],
            "limit": s["memory"]["limit"].as_u64().unwrap_or_else(host_memory),
            "failcnt": 0,
            "stats": if s["memory"]["stat"].is_object() { s["memory"]["stat"].clone() } else { json!({}) },
        }),
        pids: json!({"current": u(&s["pids"]["current"]), "limit": s["pids"]["limit"]}),
        networks: networks(rec.pid),
    }
}

fn stats_doc(rec: &Record, pre: Option<&Sample>, now: &Sample) -> Value {
    let zero_cpu = json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}});
    json!({
        "name": format!("/{}", rec.name),
        "id": rec.id,
        "read": now.read,
        "preread": pre.map(|p| p.read.as_str()).unwrap_or(ZERO_TIME),
        "pids_stats": now.pids,
        "blkio_stats": {"io_service_bytes_recursive": now.io["serviceBytes"],
            "io_serviced_recursive": now.io["serviced"], "io_queue_recursive": null, "io_service_time_recursive": null, "io_wait_time_recursive": null,
            "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": now.cpu,
        "precpu_stats": pre.map(|p| p.cpu.clone()).unwrap_or(zero_cpu),
        "memory_stats": now.memory,
        "networks": now.networks,
    })
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: docker's stats JSON;
/// streamed once a second until the container stops or the client
/// leaves, else one document (with `precpu_stats` from a sample taken
/// just before, unless one-shot).
pub fn stats(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let stream = req.q("stream").is_none_or(|_| req.flag("stream"));
    let one_shot = req.flag("one-shot");
    if one_shot && stream {
        return Err(ApiError::new(
            400,
            "cannot have stream=true and one-shot=true",
        ));
    }
    if !stream {
        let first = sample(svc, &rec);
        let (pre, now) = if one_shot || !running(&rec) {
            (None, first)
        } else {
            std::thread::sleep(Duration::from_millis(500));
            (Some(first), sample(svc, &rec))
        };
        return send_json(conn, 200, &stats_doc(&rec, pre.as_ref(), &now));
    }
    let peer = conn
        .writer
        .try_clone()
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let mut out = conn
        .start_chunked(200, "application/json")
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let mut pre: Option<Sample> = None;
    loop {
        let now = sample(svc, &rec);
        let doc = stats_doc(&rec, pre.as_ref(), &now).to_string() + "\n";
        if out.send(doc.as_bytes()).is_err() {
            return Ok(());
        }
        pre = Some(now);
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(100));
            if super::http::peer_gone(&peer) {
                return Ok(());
            }
        }
        let live = crate::records::peek(&svc.ctx, &rec.id).is_some_and(|r| running(&r));
        if !live {
            let _ = out.finish();
            return Ok(());
        }
    }
}

/// `POST /containers/{id}/pause` and `/unpause`.
pub fn pause(svc: &Arc<Service>, conn: &mut Conn, r: &str, freeze: bool) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    match (freeze, rec.status) {
        (_, _) if !running(&rec) => return Err(not_running(&rec)),
        (true, Status::Paused) => {
            return Err(ApiError::new(
                409,
                format!("Container {} is already paused", rec.id),
            ))
        }
        (false, Status::Running) => {
            return Err(ApiError::new(
                409,
                format!("Container {} is not paused", rec.id),
            ))
        }
        _ => {}
    }
    cli(svc, &[if freeze { "pause" } else { "unpause" }, &rec.id])?;
    send_empty(conn, 204)
}

/// `POST /containers/{id}/rename?name=`.
pub fn rename(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let name = req.q("name").unwrap_or("").trim_start_matches('/');
    if name.is_empty() {
        return Err(ApiError::new(400, "Neither old nor new names may be empty"));
    }
    if name == rec.name {
        return Err(ApiError::new(
            400,
            "Renaming a container with the same name as its current name",
        ));
    }
    cli(svc, &["rename", &rec.id, name])?;
    send_empty(conn, 204)
}

/// True when a JSON value carries something (not null, zero, empty or false).
fn is_set(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Bool(true) => true,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => o.values().any(is_set),
    }
}

/// The `mydocker update` flags for an update body (docker's Resources and
/// RestartPolicy); a field mydocker cannot change is docker's 400.
fn update_flags(body: &Value) -> ApiResult<Vec<String>> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::new(400, "update: the body must be a JSON object"));
    };
    let mut f = vec![];
    for (k, v) in obj {
        if !is_set(v) || (k == "MemorySwappiness" && v.as_i64() == Some(-1)) {
            continue;
        }
        let num = || -> ApiResult<i64> {
            v.as_i64()
                .ok_or_else(|| ApiError::new(400, format!("invalid value for {k}: {v}")))
        };
        let flag = match k.as_str() {
            "Memory" => format!("--memory={}", num()?),
            "MemorySwap" => format!("--memory-swap={}", num()?),
            "MemoryReservation" => format!("--memory-reservation={}", num()?),
            "CpuShares" => format!("--cpu-shares={}", num()?),
            "CpuPeriod" => format!("--cpu-period={}", num()?),
            "CpuQuota" => format!("--cpu-quota={}", num()?),
            "NanoCpus" => format!("--cpus={}", num()? as f64 / 1e9),
            "PidsLimit" => format!("--pids-limit={}", num()?),
            "CpusetCpus" => format!("--cpuset-cpus={}", v.as_str().unwrap_or("")),
            "CpusetMems" => format!("--cpuset-mems={}", v.as_str().unwrap_or("")),
            "RestartPolicy" => {
                return Err(ApiError::new(
                    400,
                    "updating the restart policy is not supported by mydocker (it applies from the next run)",
                ))
            }
            _ => {
                return Err(ApiError::new(
                    400,
                    format!("{k} is not supported by mydocker's update"),
                ))
            }
        };
        f.push(flag);
    }
    Ok(f)
}

/// `POST /containers/{id}/update`: `mydocker update` with the body's limits.
pub fn update(svc: &Arc<Service>, conn: &mut Conn, req: &mut Request, r: &str) -> ApiResult<()> {
    let body = conn
        .read_body(req, MAX_BODY)
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(400, format!("invalid JSON: {e}")))?;
    let rec = resolve(svc, r)?;
    let flags = update_flags(&body)?;
    if !flags.is_empty() {
        let mut args: Vec<&str> = vec!["update"];
        args.extend(flags.iter().map(String::as_str));
        args.push(&rec.id);
        cli(svc, &args)?;
    }
    send_json(conn, 200, &json!({"Warnings": []}))
}

/// docker's prune filters: `until` (a time) and `label` / `label!`.
struct PruneFilter {
    until: Option<f64>,
    labels: Vec<String>,
    not_labels: Vec<String>,
}

fn prune_filter(req: &Request) -> ApiResult<PruneFilter> {
    let f: Value = match req.q("filters") {
        Some(s) if !s.is_empty() => serde_json::from_str(s)
            .map_err(|e| ApiError::new(400, format!("invalid filter: {e}")))?,
        _ => json!({}),
    };
    let mut pf = PruneFilter {
        until: None,
        labels: vec![],
        not_labels: vec![],
    };
    for (k, v) in f.as_object().into_iter().flatten() {
        let vals = filter_values(v);
        match k.as_str() {
            "until" => {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                for u in vals {
                    let t = crate::cmds::parse_log_time(&u, now)
                        .map_err(|e| ApiError::new(400, e.to_string()))?;
                    pf.until = Some(t);
                }
            }
            "label" => pf.labels.extend(vals),
            "label!" => pf.not_labels.extend(vals),
            _ => return Err(ApiError::new(400, format!("Invalid filter '{k}'"))),
        }
    }
    Ok(pf)
}

/// A filter's values: `["a"]` or the old `{"a": true}`.
pub fn filter_values(v: &Value) -> Vec<String> {
    match v {
        Value::Object(m) => m.keys().cloned().collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

fn label_match(labels: &std::collections::BTreeMap<String, String>, spec: &str) -> bool {
    match spec.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(spec),
    }
}

/// `POST /containers/prune?filters=`: `mydocker rm` for each stopped
/// container the filters keep.
pub fn prune(svc: &Arc<Service>, conn: &mut Conn, req: &Request) -> ApiResult<()> {
    let pf = prune_filter(req)?;
    let mut deleted = vec![];
    for r in crate::records::list(&svc.ctx)? {
        let stopped = matches!(r.status, Status::Exited | Status::Created | Status::Dead)
            && !crate::records::alive(r.pid, r.pid_start_time);
        if !stopped {
            continue;
        }
        let labels = crate::ps::labels(&r);
        if !pf.labels.iter().all(|l| label_match(&labels, l))
            || pf.not_labels.iter().any(|l| label_match(&labels, l))
        {
            continue;
        }
        if let Some(until) = pf.until {
            if crate::humanize::parse_rfc3339(&r.created).unwrap_or(0.0) >= until {
                continue;
            }
        }
        // One that cannot go (removed meanwhile, a busy mount) stays out of the list.
        if cli(svc, &["rm", &r.id]).is_ok() {
            deleted.push(r.id);
        }
    }
    send_json(
        conn,
        200,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}),
    )
}

/// `POST /containers/{id}/resize?h=&w=`: the size of a tty container's
/// terminal, set on the pty its process holds (reopened through /proc, so
/// the supervisor that owns the master need not be reached); a container
/// without a tty has nothing to resize.
pub fn resize(svc: &Arc<Service>, conn: &mut Conn, req: &Request, r: &str) -> ApiResult<()> {
    let rec = resolve(svc, r)?;
    let (h, w) = super::exec::size(req)?;
    if !running(&rec) {
        return Err(not_running(&rec));
    }
    let tty = rec
        .config
        .get("tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if tty {
        use std::os::unix::fs::OpenOptionsExt;
        for fd in 0..3 {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(format!("/proc/{}/fd/{fd}", rec.pid));
            if let Ok(f) = f {
                use std::os::fd::AsFd;
                if nix::unistd::isatty(f.as_fd()).unwrap_or(false) {
                    super::exec::set_winsize(f.as_fd(), h, w);
                    break;
                }
            }
        }
    }
    send_empty(conn, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_takes_what_is_set() {
        let body = json!({"Memory": 67108864, "CpuShares": 0, "Ulimits": null,
            "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}, "PidsLimit": 50});
        let mut f = update_flags(&body).unwrap();
        f.sort();
        assert_eq!(f, vec!["--memory=67108864", "--pids-limit=50"]);
        let bad = json!({"RestartPolicy": {"Name": "always"}});
        assert_eq!(update_flags(&bad).unwrap_err().status, 400);
        assert_eq!(
            update_flags(&json!({"BlkioWeight": 10}))
                .unwrap_err()
                .status,
            400
        );
    }
}
