//! `mydocker logs`: the json-file log back as the streams it came from.
//! `--details` puts docker's log attributes before each line: the
//! `--log-opt labels/labels-regex/env/env-regex` picks of the container's
//! labels and environment, `k=v` URL-query-escaped, comma-joined, sorted
//! (docker's json-file stores them per line; they are fixed for the
//! container's life, so they are computed here from its config), then a
//! space (a lone space when there are none), after any timestamp.

use crate::cli::LogsArgs;
use crate::context::Ctx;
use crate::error::{fail, Result};
use crate::logfile::Entry;
use crate::records;
use ctrstate::record::Status;
use std::io::{BufRead, BufReader, Seek, Write};
use std::time::Duration;

pub fn logs(ctx: &Ctx, a: &LogsArgs) -> Result<i32> {
    let rec = records::get(ctx, &a.container)?;
    let cfg: crate::runconfig::RunConfig =
        serde_json::from_value(serde_json::Value::Object(rec.config.clone())).unwrap_or_default();
    if !cfg.log_config.enabled() {
        return fail("configured logging driver does not support reading");
    }
    let details = if a.details {
        Some(attrs(&cfg)? + " ")
    } else {
        None
    };
    let details = details.as_deref();
    let path = crate::logfile::path(&ctx.container_dir(&rec.id), &rec.id);
    let tail = match a.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => match n.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => return fail(format!("invalid value for --tail: {n}")),
        },
    };
    let entries = crate::logfile::read_entries(&path)
        .map_err(|e| crate::error::Error::Daemon(format!("read {}: {e}", path.display())))?;
    let now = crate::humanize::now();
    let since = a
        .since
        .as_deref()
        .map(|s| crate::cmds::parse_log_time(s, now))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| crate::cmds::parse_log_time(s, now))
        .transpose()?;
    // docker: --since and --until pick the window, --tail counts within it.
    let in_window = |e: &Entry| {
        let t = crate::humanize::parse_rfc3339(&e.time).unwrap_or(0.0);
        since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
    };
    let entries: Vec<&Entry> = entries.iter().filter(|e| in_window(e)).collect();
    let skip = tail.map(|n| entries.len().saturating_sub(n)).unwrap_or(0);
    for e in &entries[skip..] {
        emit(e, a.timestamps, details);
    }
    if until.is_some() {
        // docker: --until ends a follow too.
        return Ok(0);
    }
    if !a.follow {
        return Ok(0);
    }
    // Follow: read what is appended until the container is no longer running.
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(_) => return Ok(0),
    };
    let _ = f.seek(std::io::SeekFrom::End(0));
    let mut reader = BufReader::new(f);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => {
                let running = records::peek(ctx, &rec.id).is_some_and(|r| {
                    matches!(
                        r.status,
                        Status::Running | Status::Paused | Status::Restarting
                    )
                });
                if running && rotated_away(&path, reader.get_ref()) {
                    // max-size rotated the file we read to `.1`; it is
                    // complete (the writer rotates before it writes).
                    match std::fs::File::open(&path) {
                        Ok(f) => reader = BufReader::new(f),
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                    continue;
                }
                if !running {
                    // One more read: the last lines land just before the exit is recorded.
                    let mut rest = String::new();
                    while reader.read_line(&mut rest).unwrap_or(0) > 0 {
                        if let Ok(e) = serde_json::from_str::<Entry>(&rest) {
                            emit(&e, a.timestamps, details);
                        }
                        rest.clear();
                    }
                    return Ok(0);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(_) if line.ends_with('\n') => {
                if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                    emit(&e, a.timestamps, details);
                }
            }
            Ok(_) => {
                // A torn line: wait for the rest of it.
                let pos = reader.stream_position().unwrap_or(0) - line.len() as u64;
                std::thread::sleep(Duration::from_millis(20));
                let _ = reader.seek(std::io::SeekFrom::Start(pos));
            }
            Err(_) => return Ok(0),
        }
    }
}

/// Whether `path` is no longer the file `f` reads.
fn rotated_away(path: &std::path::Path, f: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), f.metadata()) {
        (Ok(p), Ok(m)) => p.ino() != m.ino() || p.dev() != m.dev(),
        _ => false,
    }
}

/// docker's `ExtraAttributes` of the container's log options, as
/// `--details` prints them.
fn attrs(cfg: &crate::runconfig::RunConfig) -> Result<String> {
    let opts = &cfg.log_config.config;
    let labels = &cfg.extra.labels;
    let env: std::collections::BTreeMap<&str, &str> =
        cfg.env.iter().filter_map(|e| e.split_once('=')).collect();
    let mut out = std::collections::BTreeMap::new();
    let keys = |o: &str| -> Vec<String> {
        opts.get(o)
            .map(|v| {
                v.split(',')
                    .filter(|k| !k.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let regex = |o: &str| -> Result<Option<regex::Regex>> {
        match opts.get(o).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(r) => regex::Regex::new(r)
                .map(Some)
                .map_err(|e| crate::error::Error::Daemon(format!("{o}: {e}"))),
        }
    };
    for k in keys("labels") {
        if let Some(v) = labels.get(&k) {
            out.insert(k, v.clone());
        }
    }
    if let Some(re) = regex("labels-regex")? {
        for (k, v) in labels.iter().filter(|(k, _)| re.is_match(k)) {
            out.insert(k.clone(), v.clone());
        }
    }
    for k in keys("env") {
        if let Some(v) = env.get(k.as_str()) {
            out.insert(k, v.to_string());
        }
    }
    if let Some(re) = regex("env-regex")? {
        for (k, v) in env.iter().filter(|(k, _)| re.is_match(k)) {
            out.insert(k.to_string(), v.to_string());
        }
    }
    Ok(out
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join(","))
}

/// Go's `url.QueryEscape`: space is `+`, unreserved bytes stay, the rest `%XX`.
fn query_escape(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        match b {
            b' ' => o.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

fn emit(e: &Entry, timestamps: bool, details: Option<&str>) {
    let line = match details {
        Some(d) => format!("{d}{}", e.log),
        None => e.log.clone(),
    };
    let text = if timestamps {
        format!("{} {line}", e.time)
    } else {
        line
    };
    let r = if e.stream == "stderr" {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(text.as_bytes()).and_then(|_| o.flush())
    };
    if r.is_err() {
        // A closed pipe (`logs | head`) ends us quietly.
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_escape_is_gos() {
        assert_eq!(super::query_escape("a b/c=d,e~f"), "a+b%2Fc%3Dd%2Ce~f");
    }
}
