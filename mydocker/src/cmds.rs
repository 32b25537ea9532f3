//! Small docker commands: `rename`, `port`, `version`, `info`,
//! `container prune`, and the time arguments of `logs --since/--until`.

use crate::context::Ctx;
use crate::error::{fail, Error, Result};
use crate::gotmpl::{Data, Template};
use crate::records;
use ctrstate::record::Status;
use serde_json::{json, Value};
use std::io::{BufRead, Write};

/// `rename CONTAINER NEW_NAME`.
pub fn rename(ctx: &Ctx, container: &str, new: &str) -> Result<i32> {
    let rec = records::get(ctx, container)?;
    if rec.name == new.trim_start_matches('/') {
        return fail("Renaming a container with the same name as its current name");
    }
    ctx.ctrstate()
        .args(["update", &rec.id])
        .stdin_json(&json!({"name": new}))
        .json()
        .map_err(|e| match e {
            Error::Tool { msg, .. } => {
                Error::Daemon(format!("Error when allocating new name: {msg}"))
            }
            e => e,
        })?;
    // names on user networks follow (docker's embedded DNS does)
    crate::names::rename(ctx, &rec.id, &rec.name, new.trim_start_matches('/'))?;
    Ok(0)
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`: docker's `80/tcp -> 0.0.0.0:8080`
/// lines, or just the host side for one port.
pub fn port(ctx: &Ctx, container: &str, which: Option<&str>) -> Result<i32> {
    let rec = records::get(ctx, container)?;
    let want = match which {
        None => None,
        Some(p) => {
            let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            let n: u16 = n
                .parse()
                .map_err(|_| Error::Daemon(format!("Error: invalid port ({p})")))?;
            Some((n, proto.to_string()))
        }
    };
    let mut rows: Vec<(u64, String, String)> = rec
        .ports
        .iter()
        .filter_map(|p| {
            let ip = p["hostIP"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("0.0.0.0");
            let ip = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            Some((
                p["containerPort"].as_u64()?,
                p["protocol"].as_str().unwrap_or("tcp").to_string(),
                format!("{ip}:{}", p["hostPort"].as_u64()?),
            ))
        })
        .collect();
    rows.sort();
    match want {
        None => {
            for (cp, proto, host) in rows {
                println!("{cp}/{proto} -> {host}");
            }
        }
        Some((n, proto)) => {
            let hits: Vec<_> = rows
                .iter()
                .filter(|(cp, pr, _)| *cp == n as u64 && *pr == proto)
                .collect();
            if hits.is_empty() {
                eprintln!("Error: No public port '{n}/{proto}' published for {container}");
                return Ok(1);
            }
            for (_, _, host) in hits {
                println!("{host}");
            }
        }
    }
    Ok(0)
}

fn uname() -> (String, String) {
    let u = nix::sys::utsname::uname().ok();
    let f = |g: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        u.as_ref()
            .map(|u| g(u).to_string_lossy().to_string())
            .unwrap_or_default()
    };
    (f(|u| u.release()), f(|u| u.machine()))
}

/// Go's GOARCH for a machine name.
fn goarch(m: &str) -> &str {
    match m {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        m => m,
    }
}

/// Runs `format` over `data` (a plain map, as docker's structs marshal)
/// or prints `plain`; exit 1 on a template error.
fn formatted(format: Option<&str>, data: &Value, plain: impl FnOnce() -> String) -> i32 {
    let Some(f) = format.filter(|f| !f.is_empty()) else {
        print!("{}", plain());
        return 0;
    };
    let f = if f == "json" { "{{json .}}" } else { f };
    match Template::parse(f).and_then(|t| t.execute(&Data::map(data), false)) {
        Ok(s) => {
            println!("{s}");
            0
        }
        Err(e) => {
            eprintln!("template parsing error: {e}");
            1
        }
    }
}

/// `version [--format]`.
pub fn version(format: Option<&str>) -> Result<i32> {
    let v = env!("CARGO_PKG_VERSION");
    let (kernel, machine) = uname();
    let arch = goarch(&machine).to_string();
    let data = json!({
        "Client": {"Platform": {"Name": "mydocker"}, "Version": v, "ApiVersion": "1.47",
            "GoVersion": "n/a (Rust)", "GitCommit": "", "BuildTime": "", "Os": "linux", "Arch": arch, "Context": "default"},
        "Server": {"Platform": {"Name": "mydocker (no daemon)"}, "Version": v, "ApiVersion": "1.47",
            "MinAPIVersion": "1.24", "Os": "linux", "Arch": arch, "KernelVersion": kernel},
    });
    Ok(formatted(format, &data, || {
        format!(
            "Client:\n Version:           {v}\n API version:       1.47\n Go version:        n/a (Rust)\n OS/Arch:           linux/{arch}\n Context:           default\n\nServer: mydocker (no daemon)\n Engine:\n  Version:          {v}\n  API version:      1.47 (minimum version 1.24)\n  OS/Arch:          linux/{arch}\n  Kernel Version:   {kernel}\n"
        )
    }))
}

/// `info [--format]`: docker's server section, from the store and the host.
pub fn info(ctx: &Ctx, format: Option<&str>) -> Result<i32> {
    let recs = records::list(ctx)?;
    let count = |f: fn(Status) -> bool| recs.iter().filter(|r| f(r.status)).count();
    let running = count(|s| s == Status::Running);
    let paused = count(|s| s == Status::Paused);
    let images = ctx
        .layerfs()
        .arg("images")
        .json()
        .ok()
        .and_then(|v| v.as_array().map(|a| a.len()))
        .unwrap_or(0);
    let (kernel, machine) = uname();
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .unwrap_or(0)
        * 1024;
    let cgv2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let name = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().to_string())
        .unwrap_or_default();
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let data = json!({
        "ID": "", "Containers": recs.len(), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": recs.len() - running - paused,
        "Images": images, "Driver": "overlay2", "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": if cgv2 { "2" } else { "1" },
        "KernelVersion": kernel, "OperatingSystem": os, "OSType": "linux",
        "Architecture": machine, "NCPU": ncpu, "MemTotal": mem, "Name": name,
        "DockerRootDir": ctx.root, "ServerVersion": env!("CARGO_PKG_VERSION"),
        "DefaultRuntime": "nsrun",
    });
    Ok(formatted(format, &data, || {
        let d = |k: &str| crate::gotmpl::print(&data[k]);
        format!(
            "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\nServer:\n Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: overlay2\n Logging Driver: json-file\n Cgroup Driver: cgroupfs\n Cgroup Version: {}\n Default Runtime: nsrun\n Kernel Version: {}\n Operating System: {}\n OSType: linux\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n Docker Root Dir: {}\n Debug Mode: false\n",
            d("ServerVersion"), d("Containers"), d("ContainersRunning"), d("ContainersPaused"),
            d("ContainersStopped"), d("Images"), d("ServerVersion"), d("CgroupVersion"),
            d("KernelVersion"), d("OperatingSystem"), d("Architecture"), d("NCPU"),
            gib(mem), d("Name"), d("DockerRootDir"),
        )
    }))
}

/// docker's binary size for Total Memory: "7.76GiB".
fn gib(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    let s = format!("{v:.2}");
    format!(
        "{}{}",
        s.trim_end_matches('0').trim_end_matches('.'),
        units[i]
    )
}

/// Asks docker's question on the terminal; anything but y/yes is no.
pub fn confirm(warning: &str) -> bool {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

/// `logs --since/--until`: RFC 3339 (date-only too), Unix seconds
/// (fractional), or a duration back from now (`10m`, `1h30m`, `90s`);
/// as seconds since the epoch.
pub fn parse_log_time(s: &str, now: f64) -> Result<f64> {
    if let Ok(n) = s.parse::<f64>() {
        return Ok(n);
    }
    if let Some(t) = crate::humanize::parse_rfc3339(s) {
        return Ok(t);
    }
    for suffix in ["T00:00:00Z", ":00Z", "Z"] {
        if let Some(t) = crate::humanize::parse_rfc3339(&format!("{s}{suffix}")) {
            return Ok(t);
        }
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - d.as_secs_f64());
    }
    fail(format!(
        "invalid value for \"since\"/\"until\": {s}: want an RFC 3339 time, Unix seconds or a duration like 10m"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_parse_in_docker_forms() {
        let now = 2_000_000_000.0;
        assert_eq!(parse_log_time("1700000000", now).unwrap(), 1_700_000_000.0);
        assert_eq!(
            parse_log_time("1700000000.5", now).unwrap(),
            1_700_000_000.5
        );
        assert_eq!(parse_log_time("10m", now).unwrap(), now - 600.0);
        assert_eq!(parse_log_time("1h30m", now).unwrap(), now - 5400.0);
        assert_eq!(
            parse_log_time("1970-01-02T00:00:00Z", now).unwrap(),
            86400.0
        );
        assert_eq!(parse_log_time("1970-01-02", now).unwrap(), 86400.0);
        assert!(parse_log_time("yesterday", now).is_err());
    }

    #[test]
    fn memory_reads_like_docker() {
        assert_eq!(gib(8_331_165_696), "7.76GiB");
    }
}
