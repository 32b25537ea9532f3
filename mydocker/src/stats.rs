//! `stats`, `pause`/`unpause`, `top`, `update`: the container's cgroup, through cgctl.

use crate::cli::{StatsArgs, UpdateArgs};
use crate::context::Ctx;
use crate::error::{fail, Result};
use crate::records;
use ctrstate::record::{Record, Status};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// docker's stats table (Linux columns).
const STATS_TABLE: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// `stats [-a] [--no-stream] [--no-trunc] [--format F] [CONTAINER...]`:
/// docker's statsContext fields (Container, Name, ID, CPUPerc, MemUsage,
/// MemPerc, NetIO, BlockIO, PIDs); `Container` is the reference given, or
/// the full ID when none is.
pub fn stats(ctx: &Ctx, a: &StatsArgs) -> Result<i32> {
    let fmt = match crate::gotmpl::ListFormat::new(a.format.as_deref(), STATS_TABLE) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    let recs: Vec<(String, Record)> = if a.containers.is_empty() {
        records::list(ctx)?
            .into_iter()
            .filter(|r| a.all || matches!(r.status, Status::Running | Status::Paused))
            .map(|r| (r.id.clone(), r))
            .collect()
    } else {
        a.containers
            .iter()
            .map(|c| Ok((c.clone(), records::get(ctx, c)?)))
            .collect::<Result<_>>()?
    };
    let header = json!({
        "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    });
    let json_out = a
        .format
        .as_deref()
        .is_some_and(|f| f == "json" || f == "{{json .}}");
    loop {
        let first: Vec<(Option<Value>, Instant)> = recs
            .iter()
            .map(|(_, r)| (sample(ctx, r), Instant::now()))
            .collect();
        std::thread::sleep(Duration::from_millis(if a.no_stream { 200 } else { 1000 }));
        let mut rows = vec![];
        for ((given, r), (s0, t0)) in recs.iter().zip(first) {
            let s1 = sample(ctx, r);
            let wall = t0.elapsed().as_nanos() as f64;
            let (cpu, usage, limit, pids) = match (s0, &s1) {
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
            let live = s1.is_some();
            let (rx, tx) = if live { net_io(r.pid) } else { (0, 0) };
            let (rd, wr) = if live { block_io(r.pid) } else { (0, 0) };
            let id = if a.no_trunc { &r.id[..] } else { &r.id[..12] };
            let name = if r.name.is_empty() { "--" } else { &r.name };
            rows.push((
                json!({
                    "Container": given, "ID": id, "Name": name,
                    "CPUPerc": format!("{cpu:.2}%"),
                    "MemUsage": format!("{} / {}", bin_size(usage), bin_size(limit)),
                    "MemPerc": format!("{mem_pct:.2}%"),
                    "NetIO": format!("{} / {}", dec_size(rx), dec_size(tx)),
                    "BlockIO": format!("{} / {}", dec_size(rd), dec_size(wr)),
                    "PIDs": pids.to_string(),
                }),
                json!({}),
            ));
        }
        let out = match fmt.render(&rows, "*container.statsContext", &header) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{e}");
                return Ok(1);
            }
        };
        if !a.no_stream && !json_out {
            print!("\x1b[2J\x1b[H");
        }
        print!("{out}");
        if a.no_stream {
            return Ok(0);
        }
    }
}

/// Bytes received and sent by the container's network namespace (its
/// interfaces but `lo`), from /proc/PID/net/dev; a host-network container
/// has none of its own: 0.
fn net_io(pid: u32) -> (u64, u64) {
    let ns = |p: &str| std::fs::read_link(p).ok();
    if ns(&format!("/proc/{pid}/ns/net")) == ns("/proc/1/ns/net") {
        return (0, 0);
    }
    let Ok(dev) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    let mut sum = (0, 0);
    for line in dev.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        sum.0 += f.first().copied().unwrap_or(0);
        sum.1 += f.get(8).copied().unwrap_or(0);
    }
    sum
}

/// Bytes read and written by the container's cgroup: v1 blkio's
/// `throttle.io_service_bytes_recursive` (Read/Write totals) or v2's
/// `io.stat` (rbytes/wbytes); 0 when neither can be read.
fn block_io(pid: u32) -> (u64, u64) {
    let Ok(cg) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return (0, 0);
    };
    for line in cg.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if ctrls.split(',').any(|c| c == "blkio") {
            let file =
                format!("/sys/fs/cgroup/blkio{path}/blkio.throttle.io_service_bytes_recursive");
            if let Ok(t) = std::fs::read_to_string(file) {
                return sum_ops(&t);
            }
        }
        if ctrls.is_empty() {
            if let Ok(t) = std::fs::read_to_string(format!("/sys/fs/cgroup{path}/io.stat")) {
                return sum_io_stat(&t);
            }
        }
    }
    (0, 0)
}

/// `MAJ:MIN Read N` / `MAJ:MIN Write N` lines summed over devices.
fn sum_ops(t: &str) -> (u64, u64) {
    let mut sum = (0, 0);
    for l in t.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [_, op, n] = f[..] {
            let n: u64 = n.parse().unwrap_or(0);
            match op {
                "Read" => sum.0 += n,
                "Write" => sum.1 += n,
                _ => {}
            }
        }
    }
    sum
}

/// `MAJ:MIN rbytes=N wbytes=N ...` lines summed over devices.
fn sum_io_stat(t: &str) -> (u64, u64) {
    let mut sum = (0, 0);
    for kv in t.split_whitespace() {
        match kv.split_once('=') {
            Some(("rbytes", n)) => sum.0 += n.parse().unwrap_or(0),
            Some(("wbytes", n)) => sum.1 += n.parse().unwrap_or(0),
            _ => {}
        }
    }
    sum
}

/// Go's `%.Ng`: N significant digits, trailing zeros dropped.
fn go_g(v: f64, n: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let int_digits = v.abs().log10().floor() as i64 + 1;
    let decimals = (n as i64 - int_digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// docker's `units.HumanSizeWithPrecision(n, 3)`: "1.23kB", "648B".
fn dec_size(b: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    go_g(v, 3) + units[i]
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

/// docker's `units.BytesSize` (`%.4g`, binary units): "1.5MiB", "7.684GiB".
fn bin_size(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    go_g(v, 4) + units[i]
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

/// `top CONTAINER [ps OPTIONS]`: docker's table (Go's tabwriter with
/// minwidth 20, padding 3).
pub fn top(ctx: &Ctx, r: &str, ps_options: &[String]) -> Result<i32> {
    let rec = records::get(ctx, r)?;
    let (titles, rows) = top_table(ctx, &rec, ps_options)?;
    print!("{}", top_text(&titles, &rows));
    Ok(0)
}

/// The container's processes as docker's daemon lists them: the host's
/// `ps` with `ps_args` (`-ef` when none), keeping the rows of the
/// container's pids (its cgroup's); (titles, rows), the last column
/// keeping its spaces (the command line). Shared by `top` and the
/// Engine API's top.
pub fn top_table(
    ctx: &Ctx,
    rec: &Record,
    ps_args: &[String],
) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    if !matches!(rec.status, Status::Running | Status::Paused)
        || !records::alive(rec.pid, rec.pid_start_time)
    {
        return fail(format!("container {} is not running", rec.id));
    }
    let pids: Vec<u64> = ctx
        .cgctl()
        .args(["procs", &ctx.cgroup(rec)])
        .json()?
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    let default = ["-ef".to_string()];
    let args = if ps_args.is_empty() {
        &default[..]
    } else {
        ps_args
    };
    let out = std::process::Command::new("ps")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| crate::error::Error::Daemon(format!("Error running ps: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return fail(format!("ps: {}", err.lines().next().unwrap_or("failed")));
    }
    ps_rows(&String::from_utf8_lossy(&out.stdout), &pids)
}

/// `ps` output split into titles and the rows of `pids`.
fn ps_rows(text: &str, pids: &[u64]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let Some(pid_col) = titles.iter().position(|t| t == "PID") else {
        return fail("Couldn't find PID field in ps output");
    };
    let mut rows = vec![];
    for l in lines {
        let f: Vec<&str> = l.split_ascii_whitespace().collect();
        let Some(p) = f.get(pid_col).and_then(|p| p.parse::<u64>().ok()) else {
            continue;
        };
        if !pids.contains(&p) || f.len() < titles.len() {
            continue;
        }
        let last = titles.len() - 1;
        let mut row: Vec<String> = f[..last].iter().map(|s| s.to_string()).collect();
        row.push(f[last..].join(" "));
        rows.push(row);
    }
    Ok((titles, rows))
}

/// Go's tabwriter as docker's top sets it: every column but the last at
/// least 20 wide, 3 past its longest cell.
fn top_text(titles: &[String], rows: &[Vec<String>]) -> String {
    let all: Vec<&[String]> = std::iter::once(titles)
        .chain(rows.iter().map(|r| &r[..]))
        .collect();
    let n = titles.len();
    let widths: Vec<usize> = (0..n.saturating_sub(1))
        .map(|c| {
            let longest = all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
            (longest + 3).max(20)
        })
        .collect();
    let mut out = String::new();
    for r in all {
        for (c, cell) in r.iter().enumerate() {
            match widths.get(c) {
                Some(w) => out.push_str(&format!("{cell:<w$}")),
                None => out.push_str(cell),
            }
        }
        out.push('\n');
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_go_units() {
        assert_eq!(dec_size(0), "0B");
        assert_eq!(dec_size(648), "648B");
        assert_eq!(dec_size(1234), "1.23kB");
        assert_eq!(dec_size(12_000_000), "12MB");
        assert_eq!(bin_size(1536 * 1024), "1.5MiB");
        assert_eq!(bin_size(8_250_000_000), "7.683GiB");
        assert_eq!(
            sum_ops("8:0 Read 10\n8:0 Write 5\n8:16 Read 1\nTotal 16\n"),
            (11, 5)
        );
        assert_eq!(sum_io_stat("8:0 rbytes=3 wbytes=4 rios=1\n"), (3, 4));
    }

    #[test]
    fn top_keeps_the_containers_rows_and_aligns_like_docker() {
        let ps = "UID PID PPID C STIME TTY TIME CMD\n\
                  root 1 0 0 10:00 ? 00:00:01 /sbin/init\n\
                  root 42 7 0 10:01 ? 00:00:00 sleep 600 now\n";
        let (t, rows) = ps_rows(ps, &[42]).unwrap();
        assert_eq!(t.len(), 8);
        assert_eq!(
            rows,
            vec![vec![
                "root",
                "42",
                "7",
                "0",
                "10:01",
                "?",
                "00:00:00",
                "sleep 600 now"
            ]]
        );
        assert!(ps_rows("COMMAND\nsleep\n", &[1]).is_err());
        let text = top_text(&t[..2], &[vec!["root".into(), "42".into()]]);
        assert_eq!(text, format!("{:<20}PID\n{:<20}42\n", "UID", "root"));
    }
}
