//! `stats`, `pause`/`unpause`, `top`, `update`: the container's cgroup, through cgctl.

use crate::cli::{StatsArgs, UpdateArgs};
use crate::context::Ctx;
use crate::error::{fail, Result};
use crate::records;
use ctrstate::record::{Record, Status};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub fn stats(ctx: &Ctx, a: &StatsArgs) -> Result<i32> {
    let recs: Vec<Record> = if a.containers.is_empty() {
        records::list(ctx)?
            .into_iter()
            .filter(|r| matches!(r.status, Status::Running | Status::Paused))
            .collect()
    } else {
        a.containers
            .iter()
            .map(|r| records::get(ctx, r))
            .collect::<Result<_>>()?
    };
    let json_out = a
        .format
        .as_deref()
        .is_some_and(|f| f == "json" || f == "{{json .}}");
    loop {
        let first: Vec<(Option<Value>, Instant)> = recs
            .iter()
            .map(|r| (sample(ctx, r), Instant::now()))
            .collect();
        std::thread::sleep(Duration::from_millis(if a.no_stream { 200 } else { 1000 }));
        let mut rows = vec![];
        for (r, (s0, t0)) in recs.iter().zip(first) {
            let s1 = sample(ctx, r);
            let wall = t0.elapsed().as_nanos() as f64;
            let (cpu, usage, limit, pids) = match (s0, s1) {
                (Some(s0), Some(s1)) => {
                    let d = s1["cpu"]["usageNs"].as_f64().unwrap_or(0.0)
                        - s0["cpu"]["usageNs"].as_f64().unwrap_or(0.0);
                    let limit = s1["memory"]["limit"].as_u64().unwrap_or_else(host_memory);
                    (
                        d.max(0.0) / wall * 100.0,
                        s1["memory"]["usage"].as_u64().unwrap_or(0),
                        limit,
                        s1["pids"]["current"].as_u64().unwrap_or(0),
                    )
                }
                _ => (0.0, 0, 0, 0),
            };
            let mem_pct = if limit > 0 {
                usage as f64 / limit as f64 * 100.0
            } else {
                0.0
            };
            rows.push(json!({
                "ID": r.id[..12], "Name": r.name,
                "CPUPerc": format!("{cpu:.2}%"),
                "MemUsage": format!("{} / {}", bin_size(usage), bin_size(limit)),
                "MemPerc": format!("{mem_pct:.2}%"),
                "PIDs": pids.to_string(),
            }));
        }
        if !a.no_stream && !json_out {
            print!("\x1b[2J\x1b[H");
        }
        if json_out {
            for r in &rows {
                println!("{r}");
            }
        } else {
            println!(
                "{:<14}{:<20}{:<9}{:<24}{:<9}PIDS",
                "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %"
            );
            for r in &rows {
                let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
                println!(
                    "{:<14}{:<20}{:<9}{:<24}{:<9}{}",
                    s("ID"),
                    s("Name"),
                    s("CPUPerc"),
                    s("MemUsage"),
                    s("MemPerc"),
                    s("PIDs")
                );
            }
        }
        if a.no_stream {
            return Ok(0);
        }
    }
}

fn sample(ctx: &Ctx, r: &Record) -> Option<Value> {
    if !matches!(r.status, Status::Running | Status::Paused) {
        return None;
    }
    ctx.cgctl().args(["stats", &ctx.cgroup(r)]).json().ok()
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// docker stats' binary units: "1.5MiB".
fn bin_size(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.4}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
        + units[i]
}

pub fn pause(ctx: &Ctx, refs: &[String], freeze: bool) -> Result<i32> {
    let mut code = 0;
    for r in refs {
        let res = (|| -> Result<()> {
            let rec = records::get(ctx, r)?;
            let want = if freeze {
                Status::Running
            } else {
                Status::Paused
            };
            if rec.status != want || !records::alive(rec.pid, rec.pid_start_time) {
                return fail(format!(
                    "container {} is not {}",
                    rec.id,
                    if freeze { "running" } else { "paused" }
                ));
            }
            ctx.cgctl()
                .args([if freeze { "freeze" } else { "thaw" }, &ctx.cgroup(&rec)])
                .output()?;
            let status = if freeze { "paused" } else { "running" };
            ctx.ctrstate()
                .args(["update", &rec.id])
                .stdin_json(&json!({ "status": status }))
                .output()?;
            Ok(())
        })();
        match res {
            Ok(()) => println!("{r}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn top(ctx: &Ctx, r: &str) -> Result<i32> {
    let rec = records::get(ctx, r)?;
    if !matches!(rec.status, Status::Running | Status::Paused) {
        return fail(format!("container {} is not running", rec.id));
    }
    let pids = ctx.cgctl().args(["procs", &ctx.cgroup(&rec)]).json()?;
    println!("{:<8}{:<10}{:<10}CMD", "UID", "PID", "PPID");
    for p in pids
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_u64())
    {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("?")
                .to_string()
        };
        let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd)
            .replace('\0', " ")
            .trim()
            .to_string();
        println!("{:<8}{:<10}{:<10}{}", field("Uid:"), p, field("PPid:"), cmd);
    }
    Ok(0)
}

pub fn update(ctx: &Ctx, a: &UpdateArgs) -> Result<i32> {
    let res = a.resources.to_oci()?;
    let mut code = 0;
    for r in &a.containers {
        let out = (|| -> Result<()> {
            let rec = records::get(ctx, r)?;
            let mut cfg = rec.config.clone();
            let mut merged = cfg
                .get("resources")
                .cloned()
                .filter(|v| v.is_object())
                .unwrap_or(json!({}));
            for (k, v) in res.as_object().into_iter().flatten() {
                let slot = merged
                    .as_object_mut()
                    .unwrap()
                    .entry(k.clone())
                    .or_insert(json!({}));
                for (k2, v2) in v.as_object().into_iter().flatten() {
                    slot[k2] = v2.clone();
                }
            }
            if matches!(rec.status, Status::Running | Status::Paused) {
                ctx.cgctl()
                    .args(["set", &ctx.cgroup(&rec)])
                    .stdin_json(&merged)
                    .output()?;
            }
            cfg.insert("resources".into(), merged);
            ctx.ctrstate()
                .args(["update", &rec.id])
                .stdin_json(&json!({ "config": cfg }))
                .output()?;
            Ok(())
        })();
        match out {
            Ok(()) => println!("{r}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}
