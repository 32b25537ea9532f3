//! Health checks: docker's `--health-*` flags merged over the image's
//! HEALTHCHECK, and one probe run (`mydocker _health ID`, spawned by the
//! container's supervisor at every interval): the check runs in the
//! container through `nsrun exec`, bounded by the timeout, and the result
//! updates the record's `health` (docker's `State.Health`: Status
//! starting|healthy|unhealthy, FailingStreak, the last 5 probes in Log).

use crate::context::Ctx;
use crate::error::{fail, Error, Result};
use crate::records;
use crate::runconfig::RunConfig;
use clap::Args;
use ctrstate::record::Status;
use ctrstate::RecordPatch;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone, Default)]
pub struct HealthArgs {
    /// Command to run to check health.
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 30s).
    #[arg(long = "health-interval", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 30s).
    #[arg(long = "health-timeout", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s).
    #[arg(long = "health-start-period", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries", allow_negative_numbers = true)]
    pub health_retries: Option<i64>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
}

/// docker's `Config.Healthcheck` (durations in nanoseconds; 0 = default).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Healthcheck {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// docker's defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
/// Probes kept in `Log`, and the output kept per probe (docker's).
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

impl HealthArgs {
    /// The container's health check: these flags over the image's
    /// (`image_cfg["Healthcheck"]`, as docker merges them). Validates only.
    pub fn parse(&self, image_cfg: &Value) -> Result<Option<Healthcheck>> {
        let any = self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_start_period.is_some()
            || self.health_retries.is_some();
        let image: Option<Healthcheck> = image_cfg
            .get("Healthcheck")
            .filter(|v| !v.is_null())
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        if self.no_healthcheck {
            if any {
                return fail("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(Some(Healthcheck {
                test: vec!["NONE".into()],
                ..Default::default()
            }));
        }
        if !any {
            return Ok(image);
        }
        let dur = |v: &Option<String>, flag: &str| -> Result<i64> {
            let Some(s) = v else { return Ok(0) };
            let d = parse_duration(s).map_err(|e| {
                Error::Daemon(format!(
                    "invalid argument \"{s}\" for \"--{flag}\" flag: {e}"
                ))
            })?;
            if d < 0 {
                return fail(format!("--{flag} cannot be negative"));
            }
            Ok(d)
        };
        let mut h = Healthcheck {
            test: match &self.health_cmd {
                Some(c) => vec!["CMD-SHELL".into(), c.clone()],
                None => vec![],
            },
            interval: dur(&self.health_interval, "health-interval")?,
            timeout: dur(&self.health_timeout, "health-timeout")?,
            start_period: dur(&self.health_start_period, "health-start-period")?,
            retries: self.health_retries.unwrap_or(0),
        };
        if h.retries < 0 {
            return fail("--health-retries cannot be negative");
        }
        for (v, name) in [(h.interval, "Interval"), (h.timeout, "Timeout")] {
            if v != 0 && v < 1_000_000 {
                return fail(format!("{name} in Healthcheck cannot be less than 1ms"));
            }
        }
        if let Some(i) = image {
            // docker's merge: what the user left unset comes from the image.
            if h.test.is_empty() {
                h.test = i.test;
            }
            for (mine, theirs) in [
                (&mut h.interval, i.interval),
                (&mut h.timeout, i.timeout),
                (&mut h.start_period, i.start_period),
                (&mut h.retries, i.retries),
            ] {
                if *mine == 0 {
                    *mine = theirs;
                }
            }
        }
        Ok(Some(h))
    }
}

impl Healthcheck {
    /// The probe's argv in the container; None for `NONE` or no test.
    pub fn argv(&self) -> Option<Vec<String>> {
        match self.test.split_first()? {
            (k, rest) if k == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            (k, [cmd]) if k == "CMD-SHELL" => {
                Some(vec!["/bin/sh".into(), "-c".into(), cmd.clone()])
            }
            _ => None,
        }
    }
    pub fn interval(&self) -> Duration {
        nanos_or(self.interval, DEFAULT_INTERVAL)
    }
    pub fn timeout(&self) -> Duration {
        nanos_or(self.timeout, DEFAULT_TIMEOUT)
    }
    pub fn start_period(&self) -> Duration {
        nanos_or(self.start_period, Duration::ZERO)
    }
    pub fn retries(&self) -> u32 {
        if self.retries > 0 {
            self.retries as u32
        } else {
            DEFAULT_RETRIES
        }
    }
}

fn nanos_or(n: i64, default: Duration) -> Duration {
    if n > 0 {
        Duration::from_nanos(n as u64)
    } else {
        default
    }
}

/// The active health check of a run config, if any.
pub fn of(cfg: &RunConfig) -> Option<&Healthcheck> {
    cfg.healthcheck.as_ref().filter(|h| h.argv().is_some())
}

/// docker's `State.Health`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            status: "starting".into(),
            failing_streak: 0,
            log: vec![],
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

impl Health {
    /// docker's rule: a pass makes it healthy; a failure counts toward
    /// `retries` unless it falls in the start period before any pass.
    pub fn record(&mut self, p: Probe, retries: u32, in_start_period: bool) {
        if p.exit_code == 0 {
            self.failing_streak = 0;
            self.status = "healthy".into();
        } else if !(in_start_period && self.status == "starting") {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(p);
        let extra = self.log.len().saturating_sub(MAX_LOG);
        self.log.drain(..extra);
    }
}

/// Marks a container about to start as `starting` (when it has a check).
pub fn reset(ctx: &Ctx, id: &str, cfg: &RunConfig) {
    if of(cfg).is_some() {
        let _ = records::update(
            ctx,
            id,
            &RecordPatch {
                health: Some(Some(serde_json::to_value(Health::default()).unwrap())),
                ..Default::default()
            },
        );
    }
}

/// The record's health, when the container has a check.
pub fn state(r: &ctrstate::record::Record) -> Option<Health> {
    if r.health.is_null() {
        return None;
    }
    serde_json::from_value(r.health.clone()).ok()
}

/// `mydocker _health ID`: one probe, recorded.
pub fn check(ctx: &Ctx, id: &str) -> Result<i32> {
    let Some(rec) = records::peek(ctx, id) else {
        return Ok(0);
    };
    if rec.status != Status::Running {
        return Ok(0);
    }
    let cfg: RunConfig =
        serde_json::from_value(Value::Object(rec.config.clone())).unwrap_or_default();
    let Some(hc) = of(&cfg) else {
        return Ok(0);
    };
    let start = ctrstate::time::now_rfc3339();
    let (exit_code, output) = probe(ctx, &rec, &cfg, hc)?;
    let p = Probe {
        start,
        end: ctrstate::time::now_rfc3339(),
        exit_code,
        output,
    };
    let ran = crate::humanize::parse_rfc3339(&rec.started_at)
        .map(|t| crate::humanize::now() - t)
        .unwrap_or(f64::MAX);
    let mut h = state(&rec).unwrap_or_default();
    h.record(p, hc.retries(), ran < hc.start_period().as_secs_f64());
    // The container may have stopped meanwhile; docker keeps the result too.
    records::update(
        ctx,
        id,
        &RecordPatch {
            health: Some(Some(serde_json::to_value(&h).unwrap())),
            ..Default::default()
        },
    )?;
    Ok(0)
}

/// Runs the check in the container; its exit code (-1 on timeout) and
/// the first 4 KiB of its output.
fn probe(
    ctx: &Ctx,
    rec: &ctrstate::record::Record,
    cfg: &RunConfig,
    hc: &Healthcheck,
) -> Result<(i64, String)> {
    let mut call = ctx.nsrun().arg("exec");
    if !cfg.working_dir.is_empty() {
        call = call.arg("--cwd").arg(&cfg.working_dir);
    }
    if !cfg.user.is_empty() {
        let root = std::path::PathBuf::from(format!("/proc/{}/root", rec.pid));
        let ids = crate::spec::resolve_user(&root, &cfg.user)?;
        call = call.arg("--user").arg(format!("{}:{}", ids.uid, ids.gid));
    }
    let call = call
        .arg(&rec.id)
        .arg("--")
        .args(hc.argv().unwrap_or_default());
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::Daemon(format!("pipe: {e}")))?;
    let w2 = w
        .try_clone()
        .map_err(|e| Error::Daemon(format!("pipe: {e}")))?;
    let mut cmd = call.command();
    // Its own process group: a timeout kills nsrun and what it started.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(w))
        .stderr(Stdio::from(w2))
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Daemon(format!("nsrun exec: {e}")))?;
    // Our copies of the write ends go, or the reader never sees EOF.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut out = vec![];
        let _ = std::fs::File::from(r)
            .take(MAX_OUTPUT as u64)
            .read_to_end(&mut out);
        out
    });
    let timeout = hc.timeout();
    let until = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            let out = reader.join().unwrap_or_default();
            let code = st.code().map(i64::from).unwrap_or(1);
            return Ok((code, String::from_utf8_lossy(&out).into_owned()));
        }
        if Instant::now() >= until {
            // SAFETY: a signal to the probe's own process group.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return Ok((
                -1,
                format!("Health check exceeded timeout ({})", go_duration(timeout)),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Go's `time.Duration.String()` for whole and fractional seconds.
fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// Go's `time.ParseDuration`: `1h30m`, `1.5s`, `300ms`, `10us`, `0`;
/// nanoseconds, negative allowed.
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration \"{s}\""))?;
        let num: f64 = rest[..n].parse().map_err(|_| bad())?;
        let u = rest[n..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .map(|i| n + i)
            .unwrap_or(rest.len());
        let mult = match &rest[n..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => return Err(format!("time: unknown unit \"{unit}\" in duration \"{s}\"")),
        };
        total += num * mult;
        rest = &rest[u..];
    }
    Ok(if neg { -(total as i64) } else { total as i64 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("1s"), Ok(1_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("-2s"), Ok(-2_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn flags_merge_over_the_image() {
        let img = json!({"Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000i64, "Retries": 7}});
        let a = HealthArgs {
            health_interval: Some("1s".into()),
            ..Default::default()
        };
        let h = a.parse(&img).unwrap().unwrap();
        assert_eq!(h.test, vec!["CMD", "true"]);
        assert_eq!(h.interval(), Duration::from_secs(1));
        assert_eq!(h.retries(), 7);
        assert_eq!(h.timeout(), DEFAULT_TIMEOUT);
        // No flags: the image's as is; none at all: none.
        assert_eq!(
            HealthArgs::default().parse(&img).unwrap().unwrap().retries,
            7
        );
        assert_eq!(HealthArgs::default().parse(&json!({})).unwrap(), None);
        let no = HealthArgs {
            no_healthcheck: true,
            ..Default::default()
        };
        assert_eq!(no.parse(&img).unwrap().unwrap().argv(), None);
        let c = HealthArgs {
            health_cmd: Some("exit 1".into()),
            ..Default::default()
        };
        assert_eq!(
            c.parse(&json!({})).unwrap().unwrap().argv().unwrap(),
            vec!["/bin/sh", "-c", "exit 1"]
        );
    }

    #[test]
    fn bad_flags_are_refused() {
        let with = |f: fn(&mut HealthArgs)| {
            let mut a = HealthArgs::default();
            f(&mut a);
            a.parse(&json!({}))
        };
        assert!(with(|a| {
            a.no_healthcheck = true;
            a.health_cmd = Some("true".into())
        })
        .is_err());
        assert!(with(|a| a.health_interval = Some("-1s".into())).is_err());
        assert!(with(|a| a.health_interval = Some("10us".into())).is_err());
        assert!(with(|a| a.health_timeout = Some("soon".into())).is_err());
        assert!(with(|a| a.health_retries = Some(-1)).is_err());
    }

    #[test]
    fn status_follows_dockers_rules() {
        let p = |code| Probe {
            exit_code: code,
            ..Default::default()
        };
        let mut h = Health::default();
        // Failures in the start period before any pass do not count.
        h.record(p(1), 2, true);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        h.record(p(0), 2, true);
        assert_eq!(h.status, "healthy");
        h.record(p(1), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 1));
        h.record(p(1), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("unhealthy", 2));
        for _ in 0..5 {
            h.record(p(0), 2, false);
        }
        assert_eq!(
            (h.status.as_str(), h.failing_streak, h.log.len()),
            ("healthy", 0, 5)
        );
    }
}
